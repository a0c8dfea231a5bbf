"""The protocol's index: every message class, type byte and decoder (spec/protocol.md §6–§9).

Call sites use this module as one namespace (``from zmqraft.core.protocol import messages as m``,
then ``m.AppendEntries``, ``m.decode_request(frames)``, ``m.REQUEST_VOTE``).  The classes live
by what they are for: ``peer_messages`` (what Raft peers send each other), ``client_messages``
(a client's one-answer requests and ClientDispatch), ``entries_messages`` (the RequestEntries
stream) and ``broadcast_messages`` (the leader's StateBroadcast); the type bytes are in
``message_types`` and the codec helpers they share in ``message_codec``.  Here: the tables
from type byte to class, the decoders that dispatch on them, and the re-exports.

CONTRACT (fields are fixed; each class encodes and decodes itself):

* Requests encode to the full frame list a DEALER sends: ``[request_id, type, ident, *args]``
  via ``msg.encode(ident: bytes) -> list[bytes]``.  ``Cls.decode(frames)`` takes that same
  list (the ROUTER's routing id already removed) and ignores the ident frame's content (the
  server checks the ident before decoding).
* Responses encode to ``[request_id, *response]`` via ``msg.encode() -> list[bytes]`` and
  ``Cls.decode(frames)`` takes that list.
* Peer message ids (RequestVote, AppendEntries, InstallSnapshot and their replies) are ints
  (``uint``, 1..3 bytes on decode).  Client request ids are the raw frame 1 bytes, echoed
  untouched; RequestUpdate/ConfigUpdate require 12 bytes.
* ``decode_request(frames)`` dispatches on frame 2 (type) to the right request class;
  unknown types (length >= 1, not a built-in single byte) give ``ClientDispatch``.
* Every decoder raises only ``ProtocolError`` (naming the message, the 1-based frame number
  and the reason).
* Log entries are kept as raw ``bytes`` (see entry.py), never copied into objects.

Codec notes:

* Each request class's ``decode`` checks that frame 2 is its own type byte, so
  ``RequestBroadcastStateUrl.decode`` can be applied to the frames of a ClientDispatch whose
  type is ``b"*"`` (or use ``RequestBroadcastStateUrl.from_dispatch``).
* Frames beyond the ones a message defines are ignored, as the original does.  Optional frames
  that change the meaning (RequestUpdateReply frame 3, ConfigUpdateReply frame 3,
  RequestEntries frames 5/6, AppendEntriesReply frames 4/5, InstallSnapshotReply frame 3) are
  decoded as present/omitted exactly.
* ``str(msg)`` (or ``render(msg)``) gives a short stable one-line rendering for logs and
  simulator traces, e.g. ``AppendEntries(id=5 leader=a term=3 prev=10/2 commit=9 entries=3)``.
* Encoders raise ``ValueError``/``TypeError`` for values the wire can't carry.
"""

from __future__ import annotations

from typing import TypeAlias

from .broadcast_messages import StateBroadcast
from .client_messages import (
    ClientDispatch,
    ConfigUpdate,
    ConfigUpdateReply,
    ConfigUpdateStatus,
    RequestBroadcastStateUrl,
    RequestBroadcastStateUrlReply,
    RequestConfig,
    RequestConfigReply,
    RequestLogInfo,
    RequestLogInfoReply,
    RequestUpdate,
    RequestUpdateReply,
    RequestWebmonitorUrl,
    RequestWebmonitorUrlReply,
    UpdateStatus,
    committed_update_reply,
)
from .entries_messages import EntriesStatus, RequestEntries, RequestEntriesReply
from .errors import ProtocolError
from .frames import frame_error
from .message_codec import MAX_MSG_ID, Frames
from .message_types import (
    APPEND_ENTRIES,
    BUILTIN_TYPES,
    CONFIG_UPDATE,
    INSTALL_SNAPSHOT,
    PEER_TYPES,
    PRE_VOTE,
    REQUEST_BROADCAST_STATE_URL,
    REQUEST_CONFIG,
    REQUEST_ENTRIES,
    REQUEST_LOG_INFO,
    REQUEST_UPDATE,
    REQUEST_VOTE,
    REQUEST_WEBMONITOR_URL,
)
from .peer_messages import (
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    PreVote,
    PreVoteReply,
    RequestVote,
    RequestVoteReply,
)

# ---- dispatch ---------------------------------------------------------------------------------

Request: TypeAlias = (
    RequestVote
    | AppendEntries
    | InstallSnapshot
    | RequestConfig
    | RequestLogInfo
    | RequestUpdate
    | ConfigUpdate
    | RequestEntries
    | PreVote
    | ClientDispatch
)
Reply: TypeAlias = (
    RequestVoteReply
    | AppendEntriesReply
    | InstallSnapshotReply
    | RequestConfigReply
    | RequestLogInfoReply
    | RequestUpdateReply
    | ConfigUpdateReply
    | RequestEntriesReply
    | RequestBroadcastStateUrlReply
    | RequestWebmonitorUrlReply
    | PreVoteReply
)
Message: TypeAlias = Request | Reply | RequestBroadcastStateUrl | RequestWebmonitorUrl | StateBroadcast

REQUEST_CLASSES: dict[bytes, type[Request]] = {
    REQUEST_VOTE: RequestVote,
    APPEND_ENTRIES: AppendEntries,
    INSTALL_SNAPSHOT: InstallSnapshot,
    REQUEST_CONFIG: RequestConfig,
    REQUEST_LOG_INFO: RequestLogInfo,
    REQUEST_UPDATE: RequestUpdate,
    CONFIG_UPDATE: ConfigUpdate,
    REQUEST_ENTRIES: RequestEntries,
    PRE_VOTE: PreVote,
}
"""Built-in type byte -> request class (what ``decode_request`` dispatches on)."""

REPLY_CLASSES: dict[bytes, type[Reply]] = {
    REQUEST_VOTE: RequestVoteReply,
    APPEND_ENTRIES: AppendEntriesReply,
    INSTALL_SNAPSHOT: InstallSnapshotReply,
    REQUEST_CONFIG: RequestConfigReply,
    REQUEST_LOG_INFO: RequestLogInfoReply,
    REQUEST_UPDATE: RequestUpdateReply,
    CONFIG_UPDATE: ConfigUpdateReply,
    REQUEST_ENTRIES: RequestEntriesReply,
    REQUEST_BROADCAST_STATE_URL: RequestBroadcastStateUrlReply,
    REQUEST_WEBMONITOR_URL: RequestWebmonitorUrlReply,
    PRE_VOTE: PreVoteReply,
}
"""Request type -> the class of its replies (clients decode responses with it)."""


def decode_request(frames: Frames) -> Request:
    """What the ROUTER received (routing id removed) -> the request object.

    Built-in only if frame 2 is exactly one of the eight single bytes; any other non-empty type
    (``*``, ``W`` and application types included) is a ClientDispatch.
    """
    if len(frames) < 3:
        raise frame_error("request", len(frames) + 1, f"missing (message has {len(frames)} frames)")
    cls = REQUEST_CLASSES.get(frames[1])
    if cls is not None:
        return cls.decode(frames)
    return ClientDispatch.decode(frames)


def decode_reply(request_type: bytes, frames: Frames) -> Reply:
    """Decode a response to a request of ``request_type`` (a DEALER's view: ``[id, ...]``)."""
    cls = REPLY_CLASSES.get(request_type)
    if cls is None:
        raise ProtocolError(f"no reply format known for message type {bytes(request_type)!r}")
    return cls.decode(frames)


def decode_state_broadcast(frames: Frames) -> StateBroadcast:
    """A SUB socket's message ``[ident, term, last_applied, *entries]``."""
    return StateBroadcast.decode(frames)


def render(msg: Message) -> str:
    """Short one-line rendering for logs and simulator traces."""
    return str(msg)


__all__ = [
    "APPEND_ENTRIES", "BUILTIN_TYPES", "CONFIG_UPDATE", "INSTALL_SNAPSHOT", "MAX_MSG_ID", "PEER_TYPES",
    "PRE_VOTE", "REPLY_CLASSES", "REQUEST_BROADCAST_STATE_URL", "REQUEST_CLASSES", "REQUEST_CONFIG",
    "REQUEST_ENTRIES",
    "REQUEST_LOG_INFO", "REQUEST_UPDATE", "REQUEST_VOTE", "REQUEST_WEBMONITOR_URL",
    "AppendEntries", "AppendEntriesReply", "ClientDispatch", "ConfigUpdate", "ConfigUpdateReply",
    "ConfigUpdateStatus", "EntriesStatus", "Frames", "InstallSnapshot", "InstallSnapshotReply", "Message",
    "PreVote", "PreVoteReply", "Reply", "Request", "RequestBroadcastStateUrl",
    "RequestBroadcastStateUrlReply", "RequestConfig",
    "RequestConfigReply", "RequestEntries", "RequestEntriesReply", "RequestLogInfo", "RequestLogInfoReply",
    "RequestUpdate", "RequestUpdateReply", "RequestVote", "RequestVoteReply", "RequestWebmonitorUrl",
    "RequestWebmonitorUrlReply", "StateBroadcast", "UpdateStatus",
    "committed_update_reply", "decode_reply", "decode_request", "decode_state_broadcast", "render",
]  # fmt: skip
