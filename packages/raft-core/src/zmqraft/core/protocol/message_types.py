"""The message type bytes (frame 2 of every request, spec/protocol.md §6).

A type is built-in only if frame 2 is exactly one of the nine single bytes of
``BUILTIN_TYPES``; every other non-empty type (``*``, ``W`` and application types included)
reaches the state machine as a ClientDispatch.  The four ``PEER_TYPES`` carry a peer message
id in frame 1 (spec §8.1); the others carry a client request id (spec §9).

This table is shared by every message module and re-exported by ``messages``, the protocol's
index; it lives apart only so that the message modules can import it without importing the
index.
"""

from __future__ import annotations

REQUEST_VOTE = b"?"
PRE_VOTE = b"!"  # beyond the original: docs/protocol-extensions.md (an original peer forwards it)
APPEND_ENTRIES = b"+"
INSTALL_SNAPSHOT = b"$"
REQUEST_CONFIG = b"^"
REQUEST_LOG_INFO = b"%"
REQUEST_UPDATE = b"="
CONFIG_UPDATE = b"&"
REQUEST_ENTRIES = b"<"
REQUEST_BROADCAST_STATE_URL = b"*"
REQUEST_WEBMONITOR_URL = b"W"

BUILTIN_TYPES = frozenset(
    {
        REQUEST_VOTE,
        APPEND_ENTRIES,
        INSTALL_SNAPSHOT,
        REQUEST_CONFIG,
        REQUEST_LOG_INFO,
        REQUEST_UPDATE,
        CONFIG_UPDATE,
        REQUEST_ENTRIES,
        PRE_VOTE,
    }
)
"""The only types the server handles itself; everything else goes to the state machine (the
original's eight, and PRE_VOTE, which an original peer hands its state machine)."""

PEER_TYPES = frozenset({REQUEST_VOTE, APPEND_ENTRIES, INSTALL_SNAPSHOT, PRE_VOTE})

__all__ = [
    "APPEND_ENTRIES",
    "BUILTIN_TYPES",
    "CONFIG_UPDATE",
    "INSTALL_SNAPSHOT",
    "PEER_TYPES",
    "PRE_VOTE",
    "REQUEST_BROADCAST_STATE_URL",
    "REQUEST_CONFIG",
    "REQUEST_ENTRIES",
    "REQUEST_LOG_INFO",
    "REQUEST_UPDATE",
    "REQUEST_VOTE",
    "REQUEST_WEBMONITOR_URL",
]
