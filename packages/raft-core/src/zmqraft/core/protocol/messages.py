"""One small immutable class per request and response of every RPC (spec/protocol.md §6–§9).

CONTRACT (fields are fixed; the codec helper fills in encode/decode):

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Self, TypeAlias

from .entry import HEADER_SIZE, EntryType, validate_entry
from .errors import ProtocolError
from .frames import (
    FALSE_FRAME,
    JSON_NULL,
    TRUE_FRAME,
    FrameReader,
    encode_bool,
    encode_json,
    encode_nuint,
    encode_reqid,
    encode_string,
    encode_uint,
    frame_error,
    json_int,
    json_optional_string,
)

Frames: TypeAlias = Sequence[bytes]

# message type bytes
REQUEST_VOTE = b"?"
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
    }
)
"""The only types the server handles itself; everything else goes to the state machine."""

PEER_TYPES = frozenset({REQUEST_VOTE, APPEND_ENTRIES, INSTALL_SNAPSHOT})
MAX_MSG_ID = 0xFFFFFF
"""Peer message ids are a 24-bit counter (1..3 bytes on the wire)."""

_MAX_ENTRY_TYPE = int(EntryType.CHECKPOINT)


# ---- helpers ----------------------------------------------------------------------------------


def _encode_msg_id(msg_id: int) -> bytes:
    if not isinstance(msg_id, int) or isinstance(msg_id, bool) or not 0 <= msg_id <= MAX_MSG_ID:
        raise ValueError(f"peer message id must be an int in 0..{MAX_MSG_ID}, got {msg_id!r}")
    return encode_uint(msg_id)


def _entries(frames: Frames, first: int, name: str) -> tuple[bytes, ...]:
    """Frames ``first``.. (0-based) as log entries, validated but not copied."""
    entries = tuple(frames[first:])
    for entry in entries:  # hot path: a plain loop is the fastest check on CPython 3.11
        if len(entry) <= HEADER_SIZE or entry[12] > _MAX_ENTRY_TYPE:
            break
    else:
        return entries
    for i, entry in enumerate(entries):  # slow path: find the first bad one and word the error
        validate_entry(entry, f"{name} frame {first + 1 + i}")
    raise AssertionError("unreachable: validate_entry raised")  # pragma: no cover


def _json_leader(r: FrameReader, frame_no: int) -> str | None:
    return json_optional_string(r.json(frame_no), r.name, frame_no, "leader id")


def _rid(request_id: bytes) -> str:
    return bytes(request_id).hex() or "-"


def _leader(leader_id: str | None) -> str:
    return "-" if leader_id is None else leader_id


def _check_str_or_none(value: object, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None")


# ---- peer RPCs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestVote:
    msg_id: int
    candidate_id: str
    term: int
    last_log_index: int
    last_log_term: int

    def encode(self, ident: bytes) -> list[bytes]:
        return [
            _encode_msg_id(self.msg_id),
            REQUEST_VOTE,
            ident,
            encode_string(self.candidate_id),
            encode_uint(self.term),
            encode_uint(self.last_log_index),
            encode_uint(self.last_log_term),
        ]

    @classmethod
    def decode(cls, frames: Frames) -> RequestVote:
        r = FrameReader("RequestVote", frames)
        r.require(7)
        msg_id = r.msg_id(1)
        r.msg_type(REQUEST_VOTE)
        return cls(msg_id, r.string(4), r.uint(5), r.uint(6), r.uint(7))

    def __str__(self) -> str:
        return (
            f"RequestVote(id={self.msg_id} candidate={self.candidate_id} term={self.term}"
            f" last={self.last_log_index}/{self.last_log_term})"
        )


@dataclass(frozen=True, slots=True)
class RequestVoteReply:
    msg_id: int
    term: int
    vote_granted: bool

    def encode(self) -> list[bytes]:
        return [_encode_msg_id(self.msg_id), encode_uint(self.term), encode_bool(self.vote_granted)]

    @classmethod
    def decode(cls, frames: Frames) -> RequestVoteReply:
        r = FrameReader("RequestVoteReply", frames)
        r.require(3)
        return cls(r.msg_id(1), r.uint(2), r.bool(3))

    def __str__(self) -> str:
        granted = "granted" if self.vote_granted else "denied"
        return f"RequestVoteReply(id={self.msg_id} term={self.term} {granted})"


@dataclass(frozen=True, slots=True)
class AppendEntries:
    msg_id: int
    leader_id: str
    term: int
    prev_log_index: int
    prev_log_term: int
    commit_index: int
    entries: tuple[bytes, ...] = ()

    def encode(self, ident: bytes) -> list[bytes]:
        frames = [
            _encode_msg_id(self.msg_id),
            APPEND_ENTRIES,
            ident,
            encode_string(self.leader_id),
            encode_uint(self.term),
            encode_uint(self.prev_log_index),
            encode_uint(self.prev_log_term),
            encode_uint(self.commit_index),
        ]
        frames.extend(self.entries)
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> AppendEntries:
        r = FrameReader("AppendEntries", frames)
        r.require(8)
        msg_id = r.msg_id(1)
        r.msg_type(APPEND_ENTRIES)
        return cls(
            msg_id,
            r.string(4),
            r.uint(5),
            r.uint(6),
            r.uint(7),
            r.uint(8),
            _entries(frames, 8, "AppendEntries"),
        )

    def __str__(self) -> str:
        return (
            f"AppendEntries(id={self.msg_id} leader={self.leader_id} term={self.term}"
            f" prev={self.prev_log_index}/{self.prev_log_term} commit={self.commit_index}"
            f" entries={len(self.entries)})"
        )


@dataclass(frozen=True, slots=True)
class AppendEntriesReply:
    msg_id: int
    term: int
    success: bool
    conflict_index: int | None = None
    conflict_term: int | None = None  # decoded if present; never sent by the original

    def encode(self) -> list[bytes]:
        frames = [_encode_msg_id(self.msg_id), encode_uint(self.term), encode_bool(self.success)]
        if self.conflict_term is not None:
            # frame 4 must exist for frame 5 to exist: an empty frame 4 stands for "no index"
            frames.append(encode_nuint(self.conflict_index))
            frames.append(encode_uint(self.conflict_term))
        elif self.conflict_index is not None:
            frames.append(encode_uint(self.conflict_index))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> AppendEntriesReply:
        r = FrameReader("AppendEntriesReply", frames)
        r.require(3)
        return cls(
            r.msg_id(1),
            r.uint(2),
            r.bool(3),
            r.nuint(4) if r.has(4) else None,
            r.nuint(5) if r.has(5) else None,
        )

    def __str__(self) -> str:
        text = f"AppendEntriesReply(id={self.msg_id} term={self.term} {'ok' if self.success else 'fail'}"
        if self.conflict_index is not None:
            text += f" conflict_index={self.conflict_index}"
        if self.conflict_term is not None:
            text += f" conflict_term={self.conflict_term}"
        return text + ")"


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    msg_id: int
    leader_id: str
    term: int
    last_index: int
    last_term: int
    offset: int
    total_size: int
    chunk: bytes

    def encode(self, ident: bytes) -> list[bytes]:
        return [
            _encode_msg_id(self.msg_id),
            INSTALL_SNAPSHOT,
            ident,
            encode_string(self.leader_id),
            encode_uint(self.term),
            encode_uint(self.last_index),
            encode_uint(self.last_term),
            encode_uint(self.offset),
            encode_uint(self.total_size),
            self.chunk,
        ]

    @classmethod
    def decode(cls, frames: Frames) -> InstallSnapshot:
        r = FrameReader("InstallSnapshot", frames)
        r.require(10)
        msg_id = r.msg_id(1)
        r.msg_type(INSTALL_SNAPSHOT)
        return cls(msg_id, r.string(4), r.uint(5), r.uint(6), r.uint(7), r.uint(8), r.uint(9), frames[9])

    def __str__(self) -> str:
        return (
            f"InstallSnapshot(id={self.msg_id} leader={self.leader_id} term={self.term}"
            f" snapshot={self.last_index}/{self.last_term} offset={self.offset}"
            f" size={self.total_size} chunk={len(self.chunk)})"
        )


@dataclass(frozen=True, slots=True)
class InstallSnapshotReply:
    msg_id: int
    term: int
    reposition: int | None = None

    def encode(self) -> list[bytes]:
        frames = [_encode_msg_id(self.msg_id), encode_uint(self.term)]
        if self.reposition is not None:
            frames.append(encode_uint(self.reposition))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> InstallSnapshotReply:
        r = FrameReader("InstallSnapshotReply", frames)
        r.require(2)
        return cls(r.msg_id(1), r.uint(2), r.uint(3) if r.has(3) else None)

    def __str__(self) -> str:
        extra = "" if self.reposition is None else f" reposition={self.reposition}"
        return f"InstallSnapshotReply(id={self.msg_id} term={self.term}{extra})"


# ---- client RPCs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _IdOnlyRequest:
    """A request that is only ``[id, type, ident]``; subclasses name the type byte."""

    TYPE: ClassVar[bytes]
    request_id: bytes

    def encode(self, ident: bytes) -> list[bytes]:
        return [self.request_id, self.TYPE, ident]

    @classmethod
    def decode(cls, frames: Frames) -> Self:
        r = FrameReader(cls.__name__, frames)
        r.require(3)
        r.msg_type(cls.TYPE)
        return cls(frames[0])

    @classmethod
    def from_dispatch(cls, dispatch: ClientDispatch) -> Self:
        """What a state machine sees of ``*`` and ``W`` is a ClientDispatch of that type."""
        if dispatch.type != cls.TYPE:
            reason = f"message type must be {cls.TYPE!r}, got {dispatch.type!r}"
            raise frame_error(cls.__name__, 2, reason)
        return cls(dispatch.request_id)

    def __str__(self) -> str:
        return f"{type(self).__name__}(id={_rid(self.request_id)})"


@dataclass(frozen=True, slots=True)
class RequestConfig(_IdOnlyRequest):
    TYPE: ClassVar[bytes] = REQUEST_CONFIG


@dataclass(frozen=True, slots=True)
class RequestConfigReply:
    request_id: bytes
    is_leader: bool
    leader_id: str | None
    peers: tuple[tuple[str, str], ...]

    def encode(self) -> list[bytes]:
        _check_str_or_none(self.leader_id, "leader_id")
        return [
            self.request_id,
            encode_bool(self.is_leader),
            encode_json(self.leader_id),
            encode_json([[peer_id, url] for peer_id, url in self.peers]),
        ]

    @classmethod
    def decode(cls, frames: Frames) -> RequestConfigReply:
        r = FrameReader("RequestConfigReply", frames)
        r.require(4)
        value = r.json(4)
        if not isinstance(value, list):
            raise r.error(4, "peers must be an array")
        peers: list[tuple[str, str]] = []
        for peer in value:
            if not (isinstance(peer, list) and len(peer) == 2 and all(isinstance(v, str) for v in peer)):
                raise r.error(4, f"peer must be an [id, url] pair of strings, got {peer!r:.60}")
            peers.append((peer[0], peer[1]))
        return cls(frames[0], r.bool(2), _json_leader(r, 3), tuple(peers))

    def __str__(self) -> str:
        return (
            f"RequestConfigReply(id={_rid(self.request_id)} is_leader={int(self.is_leader)}"
            f" leader={_leader(self.leader_id)} peers={len(self.peers)})"
        )


@dataclass(frozen=True, slots=True)
class RequestLogInfo(_IdOnlyRequest):
    TYPE: ClassVar[bytes] = REQUEST_LOG_INFO


@dataclass(frozen=True, slots=True)
class RequestLogInfoReply:
    request_id: bytes
    is_leader: bool
    leader_id: str | None
    term: int
    first_index: int
    last_applied: int
    commit_index: int
    last_index: int
    snapshot_size: int
    prune_index: int

    def encode(self) -> list[bytes]:
        _check_str_or_none(self.leader_id, "leader_id")
        return [
            self.request_id,
            encode_bool(self.is_leader),
            encode_json(self.leader_id),
            encode_uint(self.term),
            encode_uint(self.first_index),
            encode_uint(self.last_applied),
            encode_uint(self.commit_index),
            encode_uint(self.last_index),
            encode_uint(self.snapshot_size),
            encode_uint(self.prune_index),
        ]

    @classmethod
    def decode(cls, frames: Frames) -> RequestLogInfoReply:
        r = FrameReader("RequestLogInfoReply", frames)
        r.require(10)
        return cls(
            frames[0],
            r.bool(2),
            _json_leader(r, 3),
            r.uint(4),
            r.uint(5),
            r.uint(6),
            r.uint(7),
            r.uint(8),
            r.uint(9),
            r.uint(10),
        )

    def __str__(self) -> str:
        return (
            f"RequestLogInfoReply(id={_rid(self.request_id)} is_leader={int(self.is_leader)}"
            f" leader={_leader(self.leader_id)} term={self.term} first={self.first_index}"
            f" applied={self.last_applied} commit={self.commit_index} last={self.last_index}"
            f" snapshot_size={self.snapshot_size} prune={self.prune_index})"
        )


class UpdateStatus(IntEnum):
    NOT_LEADER = 0  # [false, leader_id|nil]
    EXPIRED = 1  # [false]
    ACCEPTED = 2  # [true]
    COMMITTED = 3  # [true, index]


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    request_id: bytes  # 12-byte reqid
    data: bytes

    def encode(self, ident: bytes) -> list[bytes]:
        if len(self.data) == 0:
            raise ValueError("RequestUpdate data must not be empty")
        return [encode_reqid(self.request_id), REQUEST_UPDATE, ident, self.data]

    @classmethod
    def decode(cls, frames: Frames) -> RequestUpdate:
        r = FrameReader("RequestUpdate", frames)
        r.require(4)
        request_id = r.reqid(1)
        r.msg_type(REQUEST_UPDATE)
        data = frames[3]
        if len(data) == 0:
            raise r.error(4, "update data must not be empty")
        return cls(request_id, data)

    def __str__(self) -> str:
        return f"RequestUpdate(id={_rid(self.request_id)} data={len(self.data)})"


@dataclass(frozen=True, slots=True)
class RequestUpdateReply:
    request_id: bytes
    status: UpdateStatus
    leader_id: str | None = None  # NOT_LEADER only
    index: int | None = None  # COMMITTED only

    def encode(self) -> list[bytes]:
        status = self.status
        if status == UpdateStatus.NOT_LEADER:
            _check_str_or_none(self.leader_id, "leader_id")
            return [self.request_id, FALSE_FRAME, encode_json(self.leader_id)]
        if status == UpdateStatus.EXPIRED:
            return [self.request_id, FALSE_FRAME]
        if status == UpdateStatus.ACCEPTED:
            return [self.request_id, TRUE_FRAME]
        if status == UpdateStatus.COMMITTED:
            if self.index is None or self.index < 0:
                raise ValueError("COMMITTED RequestUpdateReply needs a non-negative index")
            return [self.request_id, TRUE_FRAME, encode_json(self.index)]
        raise ValueError(f"unknown update status {status!r}")

    @classmethod
    def decode(cls, frames: Frames) -> RequestUpdateReply:
        r = FrameReader("RequestUpdateReply", frames)
        r.require(2)
        request_id = frames[0]
        if r.bool(2):
            if not r.has(3):
                return cls(request_id, UpdateStatus.ACCEPTED)
            return cls(request_id, UpdateStatus.COMMITTED, index=json_int(r.json(3), r.name, 3, "log index"))
        if not r.has(3):
            return cls(request_id, UpdateStatus.EXPIRED)
        return cls(request_id, UpdateStatus.NOT_LEADER, leader_id=_json_leader(r, 3))

    def __str__(self) -> str:
        text = f"RequestUpdateReply(id={_rid(self.request_id)} {self.status.name}"
        if self.status == UpdateStatus.NOT_LEADER:
            text += f" leader={_leader(self.leader_id)}"
        elif self.status == UpdateStatus.COMMITTED:
            text += f" index={self.index}"
        return text + ")"


class ConfigUpdateStatus(IntEnum):
    NOT_LEADER = 0
    ACCEPTED = 1  # frame 3 omitted (in progress) or the C(old,new) index (done)
    ERROR = 2
    BUSY = 3
    EXPIRED = 4


@dataclass(frozen=True, slots=True)
class ConfigUpdate:
    request_id: bytes  # 12-byte reqid
    peers: Any  # the decoded msgpack value, validated by the cluster module

    def encode(self, ident: bytes) -> list[bytes]:
        return [encode_reqid(self.request_id), CONFIG_UPDATE, ident, encode_json(self.peers)]

    @classmethod
    def decode(cls, frames: Frames) -> ConfigUpdate:
        r = FrameReader("ConfigUpdate", frames)
        r.require(4)
        request_id = r.reqid(1)
        r.msg_type(CONFIG_UPDATE)
        return cls(request_id, r.json(4))

    def __str__(self) -> str:
        peers = self.peers
        size = f"peers={len(peers)}" if isinstance(peers, list) else f"peers={type(peers).__name__}"
        return f"ConfigUpdate(id={_rid(self.request_id)} {size})"


@dataclass(frozen=True, slots=True)
class ConfigUpdateReply:
    request_id: bytes
    status: ConfigUpdateStatus
    leader_id: str | None = None  # NOT_LEADER
    index: int | None = None  # ACCEPTED and done
    error_name: str | None = None  # ERROR
    error_message: str | None = None  # ERROR

    def encode(self) -> list[bytes]:
        status = self.status
        if not isinstance(status, int) or not 0 <= status <= ConfigUpdateStatus.EXPIRED:
            raise ValueError(f"unknown config update status {status!r}")
        frames = [self.request_id, encode_uint(int(status))]
        if status == ConfigUpdateStatus.NOT_LEADER:
            _check_str_or_none(self.leader_id, "leader_id")
            frames.append(encode_json(self.leader_id))
        elif status == ConfigUpdateStatus.ACCEPTED:
            if self.index is not None:
                if self.index < 0:
                    raise ValueError("index must not be negative")
                frames.append(encode_json(self.index))
        elif status == ConfigUpdateStatus.ERROR:
            if not isinstance(self.error_name, str) or not isinstance(self.error_message, str):
                raise TypeError("ERROR ConfigUpdateReply needs error_name and error_message strings")
            # key order name, message: byte-identical to the original's error objects
            frames.append(encode_json({"name": self.error_name, "message": self.error_message}))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> ConfigUpdateReply:
        r = FrameReader("ConfigUpdateReply", frames)
        r.require(2)
        request_id = frames[0]
        code = r.uint(2)
        if code > ConfigUpdateStatus.EXPIRED:
            raise r.error(2, f"unknown config update status {code}")
        status = ConfigUpdateStatus(code)
        if status == ConfigUpdateStatus.NOT_LEADER:
            r.require(3)
            return cls(request_id, status, leader_id=_json_leader(r, 3))
        if status == ConfigUpdateStatus.ACCEPTED:
            if not r.has(3):
                return cls(request_id, status)
            return cls(request_id, status, index=json_int(r.json(3), r.name, 3, "log index"))
        if status == ConfigUpdateStatus.ERROR:
            r.require(3)
            value = r.json(3)
            if not isinstance(value, dict):
                raise r.error(3, "error must be a map {name, message}")
            name, message = value.get("name"), value.get("message")
            if not isinstance(name, str) or not isinstance(message, str):
                raise r.error(3, "error name and message must be strings")
            return cls(request_id, status, error_name=name, error_message=message)
        return cls(request_id, status)

    def __str__(self) -> str:
        text = f"ConfigUpdateReply(id={_rid(self.request_id)} {self.status.name}"
        if self.status == ConfigUpdateStatus.NOT_LEADER:
            text += f" leader={_leader(self.leader_id)}"
        elif self.index is not None:
            text += f" index={self.index}"
        elif self.status == ConfigUpdateStatus.ERROR:
            text += f" {self.error_name}: {self.error_message}"
        return text + ")"


class EntriesStatus(IntEnum):
    NOT_LEADER = 0
    LAST = 1
    MORE = 2
    SNAPSHOT_CHUNK = 3


@dataclass(frozen=True, slots=True)
class RequestEntries:
    request_id: bytes
    prev_index: int
    count: int | None = None
    snapshot_offset: int | None = None
    # Added by the codec: send frame 5 as an empty (null) frame even without a count or offset.
    # The reference client sends both shapes; this keeps re-encoding byte-identical.  Decoding
    # sets it when frame 5 was present and empty.  Not part of equality.
    null_count_frame: bool = field(default=False, compare=False)

    def encode(self, ident: bytes) -> list[bytes]:
        frames = [self.request_id, REQUEST_ENTRIES, ident, encode_uint(self.prev_index)]
        if self.count is not None:
            frames.append(encode_uint(self.count))
        elif self.snapshot_offset is not None or self.null_count_frame:
            frames.append(b"")
        if self.snapshot_offset is not None:
            frames.append(encode_uint(self.snapshot_offset))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> RequestEntries:
        r = FrameReader("RequestEntries", frames)
        r.require(4)
        r.msg_type(REQUEST_ENTRIES)
        prev_index = r.uint(4)
        count = r.nuint(5) if r.has(5) else None
        offset = r.uint(6) if r.has(6) else None
        return cls(frames[0], prev_index, count, offset, r.has(5) and len(frames[4]) == 0)

    def __str__(self) -> str:
        text = f"RequestEntries(id={_rid(self.request_id)} prev={self.prev_index}"
        text += f" count={'-' if self.count is None else self.count}"
        if self.snapshot_offset is not None:
            text += f" offset={self.snapshot_offset}"
        return text + ")"


@dataclass(frozen=True, slots=True)
class RequestEntriesReply:
    request_id: bytes
    status: EntriesStatus
    leader_id: str | None = None  # NOT_LEADER
    last_index: int = 0  # LAST/MORE: index of last entry (or effective last); CHUNK: snapshot index
    entries: tuple[bytes, ...] = ()  # LAST/MORE
    snapshot_offset: int = 0  # CHUNK
    snapshot_size: int = 0  # CHUNK
    snapshot_term: int = 0  # CHUNK
    chunk: bytes = b""  # CHUNK

    def encode(self) -> list[bytes]:
        status = self.status
        if status == EntriesStatus.NOT_LEADER:
            _check_str_or_none(self.leader_id, "leader_id")
            return [self.request_id, b"\x00", encode_json(self.leader_id)]
        if status == EntriesStatus.LAST or status == EntriesStatus.MORE:
            frames = [self.request_id, encode_uint(int(status)), JSON_NULL, encode_uint(self.last_index)]
            frames.extend(self.entries)
            return frames
        if status == EntriesStatus.SNAPSHOT_CHUNK:
            for value in (self.snapshot_offset, self.snapshot_size, self.snapshot_term):
                encode_uint(value)  # same range checks as the uint frames
            return [
                self.request_id,
                b"\x03",
                encode_json([self.snapshot_offset, self.snapshot_size, self.snapshot_term]),
                encode_uint(self.last_index),
                self.chunk,
            ]
        raise ValueError(f"unknown entries status {status!r}")

    @classmethod
    def decode(cls, frames: Frames) -> RequestEntriesReply:
        r = FrameReader("RequestEntriesReply", frames)
        r.require(3)
        request_id = frames[0]
        code = r.uint(2)
        if code > EntriesStatus.SNAPSHOT_CHUNK:
            raise r.error(2, f"unknown entries status {code}")
        if code == EntriesStatus.NOT_LEADER:
            return cls(request_id, EntriesStatus.NOT_LEADER, leader_id=_json_leader(r, 3))
        r.require(4)
        last_index = r.uint(4)
        if code != EntriesStatus.SNAPSHOT_CHUNK:
            # frame 3 carries nothing for status 1/2 (the leader sends nil): ignored
            return cls(
                request_id,
                EntriesStatus(code),
                last_index=last_index,
                entries=_entries(frames, 4, "RequestEntriesReply"),
            )
        r.require(5)
        arg = r.json(3)
        if not isinstance(arg, list) or len(arg) != 3:
            raise r.error(3, "snapshot chunk argument must be [offset, size, term]")
        return cls(
            request_id,
            EntriesStatus.SNAPSHOT_CHUNK,
            last_index=last_index,
            snapshot_offset=json_int(arg[0], r.name, 3, "snapshot offset"),
            snapshot_size=json_int(arg[1], r.name, 3, "snapshot size"),
            snapshot_term=json_int(arg[2], r.name, 3, "snapshot term"),
            chunk=frames[4],
        )

    def __str__(self) -> str:
        text = f"RequestEntriesReply(id={_rid(self.request_id)} {self.status.name}"
        if self.status == EntriesStatus.NOT_LEADER:
            text += f" leader={_leader(self.leader_id)}"
        elif self.status == EntriesStatus.SNAPSHOT_CHUNK:
            text += (
                f" snapshot={self.last_index}/{self.snapshot_term} offset={self.snapshot_offset}"
                f" size={self.snapshot_size} chunk={len(self.chunk)}"
            )
        else:
            text += f" last={self.last_index} entries={len(self.entries)}"
        return text + ")"


@dataclass(frozen=True, slots=True)
class RequestBroadcastStateUrl(_IdOnlyRequest):
    TYPE: ClassVar[bytes] = REQUEST_BROADCAST_STATE_URL


@dataclass(frozen=True, slots=True)
class RequestBroadcastStateUrlReply:
    request_id: bytes
    url: str | None  # None: frame 2 omitted ("ask the leader again")

    def encode(self) -> list[bytes]:
        if self.url is None:
            return [self.request_id]
        return [self.request_id, encode_string(self.url)]

    @classmethod
    def decode(cls, frames: Frames) -> RequestBroadcastStateUrlReply:
        r = FrameReader("RequestBroadcastStateUrlReply", frames)
        r.require(1)
        return cls(frames[0], r.string(2) if r.has(2) else None)

    def __str__(self) -> str:
        return f"RequestBroadcastStateUrlReply(id={_rid(self.request_id)} url={_leader(self.url)})"


@dataclass(frozen=True, slots=True)
class RequestWebmonitorUrl(_IdOnlyRequest):
    """``W`` (spec §9.6.1): not a built-in type; it reaches the state machine as a ClientDispatch."""

    TYPE: ClassVar[bytes] = REQUEST_WEBMONITOR_URL


@dataclass(frozen=True, slots=True)
class RequestWebmonitorUrlReply:
    """``[id, url]``: the web monitor's announced URL."""

    request_id: bytes
    url: str

    def encode(self) -> list[bytes]:
        return [self.request_id, encode_string(self.url)]

    @classmethod
    def decode(cls, frames: Frames) -> RequestWebmonitorUrlReply:
        r = FrameReader("RequestWebmonitorUrlReply", frames)
        r.require(2)
        return cls(frames[0], r.string(2))

    def __str__(self) -> str:
        return f"RequestWebmonitorUrlReply(id={_rid(self.request_id)} url={self.url})"


@dataclass(frozen=True, slots=True)
class ClientDispatch:
    request_id: bytes
    type: bytes
    args: tuple[bytes, ...] = ()

    def encode(self, ident: bytes) -> list[bytes]:
        if len(self.type) == 0 or self.type in BUILTIN_TYPES:
            raise ValueError(f"ClientDispatch type must be non-empty and not built-in, got {self.type!r}")
        return [self.request_id, self.type, ident, *self.args]

    @classmethod
    def decode(cls, frames: Frames) -> ClientDispatch:
        r = FrameReader("ClientDispatch", frames)
        r.require(3)
        msg_type = frames[1]
        if len(msg_type) == 0:
            raise r.error(2, "message type must not be empty")
        if msg_type in BUILTIN_TYPES:
            raise r.error(2, f"message type {bytes(msg_type)!r} is built-in, not a dispatch")
        return cls(frames[0], msg_type, tuple(frames[3:]))

    def __str__(self) -> str:
        return f"ClientDispatch(id={_rid(self.request_id)} type={bytes(self.type)!r} args={len(self.args)})"


@dataclass(frozen=True, slots=True)
class StateBroadcast:
    """A PUB message: ``[ident, term, last_applied, *entries]`` (no request id)."""

    ident: bytes
    term: int
    last_applied: int
    entries: tuple[bytes, ...] = ()

    def encode(self) -> list[bytes]:
        frames = [self.ident, encode_uint(self.term), encode_uint(self.last_applied)]
        frames.extend(self.entries)
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> StateBroadcast:
        r = FrameReader("StateBroadcast", frames)
        r.require(3)
        return cls(frames[0], r.uint(2), r.uint(3), _entries(frames, 3, "StateBroadcast"))

    def __str__(self) -> str:
        return f"StateBroadcast(term={self.term} applied={self.last_applied} entries={len(self.entries)})"


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
)
Message: TypeAlias = (
    Request
    | Reply
    | RequestBroadcastStateUrl
    | RequestWebmonitorUrl
    | StateBroadcast
)

REQUEST_CLASSES: dict[bytes, type[Request]] = {
    REQUEST_VOTE: RequestVote,
    APPEND_ENTRIES: AppendEntries,
    INSTALL_SNAPSHOT: InstallSnapshot,
    REQUEST_CONFIG: RequestConfig,
    REQUEST_LOG_INFO: RequestLogInfo,
    REQUEST_UPDATE: RequestUpdate,
    CONFIG_UPDATE: ConfigUpdate,
    REQUEST_ENTRIES: RequestEntries,
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
