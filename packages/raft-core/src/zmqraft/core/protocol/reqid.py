"""The 12-byte request id (spec/protocol.md §3, MongoDB ObjectId layout)::

    0..3   seconds since the Unix epoch, big-endian
    4..6   machine id: first 3 bytes of md5(hostname)
    7..8   process id & 0xffff, big-endian
    9..11  counter, big-endian, random start, +1 per id, wraps at 2^24

Only the timestamp has meaning (request freshness); the rest makes ids unique across
machines, processes and threads.  The caller passes the wall-clock time: the core never reads
clocks.  Textual forms: 24 lowercase hex digits (client APIs) and 16 base64 characters (the
"request key" of the server's request-id cache and of ``peersUpdateRequest`` in raft.pers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import platform
import random
import re

REQUEST_ID_SIZE = 12
ZERO_REQUEST_ID = bytes(REQUEST_ID_SIZE)
COUNTER_MASK = 0xFFFFFF

_HEX_RE = re.compile(r"[0-9a-f]{24}")
_KEY_RE = re.compile(r"[A-Za-z0-9+/]{16}")


def machine_id(hostname: str | None = None) -> bytes:
    """First 3 bytes of md5(hostname), as the original's ``os.hostname()`` based id."""
    name = platform.node() if hostname is None else hostname
    return hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest()[:3]


class RequestIdGenerator:
    """Makes unique request ids; ``next`` is safe to call from several threads.

    Thread safety comes from ``itertools.count``: its ``__next__`` is one C call, so two threads
    never get the same counter value.  Different processes differ in the pid bytes.
    """

    __slots__ = ("_counter", "_prefix", "_rng")

    def __init__(
        self,
        rng: random.Random | None = None,
        *,
        hostname: str | None = None,
        pid: int | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._prefix = b""
        self._counter = itertools.count()
        self._reset(hostname, pid)

    def _reset(self, hostname: str | None = None, pid: int | None = None) -> None:
        process = os.getpid() if pid is None else pid
        self._prefix = machine_id(hostname) + (process & 0xFFFF).to_bytes(2, "big")
        self._counter = itertools.count(self._rng.getrandbits(24))

    def reseed_after_fork(self) -> None:
        """A forked child must not repeat the parent's ids: new pid, new random counter."""
        self._rng = random.Random()
        self._reset()

    @property
    def prefix(self) -> bytes:
        """Bytes 4..8 (machine id + pid) shared by every id of this generator."""
        return self._prefix

    def next(self, wall_seconds: float) -> bytes:
        """A fresh id stamped with ``wall_seconds`` (seconds since the epoch)."""
        if wall_seconds < 0:
            raise ValueError("wall_seconds must not be negative")
        seconds = int(wall_seconds) & 0xFFFFFFFF
        count = next(self._counter) & COUNTER_MASK
        return seconds.to_bytes(4, "big") + self._prefix + count.to_bytes(3, "big")


_default = RequestIdGenerator()
if hasattr(os, "register_at_fork"):  # POSIX: a forked child gets its own pid bytes and counter
    os.register_at_fork(after_in_child=_default.reseed_after_fork)


def default_generator() -> RequestIdGenerator:
    return _default


def new_request_id(wall_seconds: float) -> bytes:
    """A fresh id from the process-wide generator."""
    return _default.next(wall_seconds)


def request_id_seconds(reqid: bytes) -> int:
    """The timestamp part (the only part with semantics: freshness, spec §9.3)."""
    if len(reqid) != REQUEST_ID_SIZE:
        raise ValueError(f"request id must be {REQUEST_ID_SIZE} bytes")
    return int.from_bytes(reqid[:4], "big")


def is_request_id(value: object) -> bool:
    """Like the original's ``isIdent``: 12 bytes, or 24 lowercase hex digits."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value) == REQUEST_ID_SIZE
    if isinstance(value, str):
        return _HEX_RE.fullmatch(value) is not None
    return False


def to_hex(reqid: bytes) -> str:
    if len(reqid) != REQUEST_ID_SIZE:
        raise ValueError(f"request id must be {REQUEST_ID_SIZE} bytes")
    return bytes(reqid).hex()


def from_hex(text: str) -> bytes:
    if not isinstance(text, str) or _HEX_RE.fullmatch(text) is None:
        raise ValueError("request id must be 24 lowercase hex digits")
    return bytes.fromhex(text)


def to_key(reqid: bytes) -> str:
    """16-char standard base64: the request-id cache key (the original's ``toString('base64')``)."""
    if len(reqid) != REQUEST_ID_SIZE:
        raise ValueError(f"request id must be {REQUEST_ID_SIZE} bytes")
    return base64.b64encode(reqid).decode("ascii")


def from_key(key: str) -> bytes:
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise ValueError("request key must be 16 base64 characters")
    try:
        return base64.b64decode(key, validate=True)
    except binascii.Error as exc:  # unreachable after the regex, kept for safety
        raise ValueError(f"invalid request key: {exc}") from None


def as_request_id(value: bytes | str) -> bytes:
    """Accept the two forms clients use (12 bytes or 24 hex digits) and return the bytes."""
    if isinstance(value, str):
        return from_hex(value)
    if isinstance(value, bytes | bytearray | memoryview) and len(value) == REQUEST_ID_SIZE:
        return bytes(value)
    raise ValueError("request id must be 12 bytes or 24 lowercase hex digits")
