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
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

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


# ---- peer RPCs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestVote:
    msg_id: int
    candidate_id: str
    term: int
    last_log_index: int
    last_log_term: int


@dataclass(frozen=True, slots=True)
class RequestVoteReply:
    msg_id: int
    term: int
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class AppendEntries:
    msg_id: int
    leader_id: str
    term: int
    prev_log_index: int
    prev_log_term: int
    commit_index: int
    entries: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class AppendEntriesReply:
    msg_id: int
    term: int
    success: bool
    conflict_index: int | None = None
    conflict_term: int | None = None  # decoded if present; never sent by the original


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


@dataclass(frozen=True, slots=True)
class InstallSnapshotReply:
    msg_id: int
    term: int
    reposition: int | None = None


# ---- client RPCs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestConfig:
    request_id: bytes


@dataclass(frozen=True, slots=True)
class RequestConfigReply:
    request_id: bytes
    is_leader: bool
    leader_id: str | None
    peers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RequestLogInfo:
    request_id: bytes


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


class UpdateStatus(IntEnum):
    NOT_LEADER = 0  # [false, leader_id|nil]
    EXPIRED = 1  # [false]
    ACCEPTED = 2  # [true]
    COMMITTED = 3  # [true, index]


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    request_id: bytes  # 12-byte reqid
    data: bytes


@dataclass(frozen=True, slots=True)
class RequestUpdateReply:
    request_id: bytes
    status: UpdateStatus
    leader_id: str | None = None  # NOT_LEADER only
    index: int | None = None  # COMMITTED only


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


@dataclass(frozen=True, slots=True)
class ConfigUpdateReply:
    request_id: bytes
    status: ConfigUpdateStatus
    leader_id: str | None = None  # NOT_LEADER
    index: int | None = None  # ACCEPTED and done
    error_name: str | None = None  # ERROR
    error_message: str | None = None  # ERROR


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


@dataclass(frozen=True, slots=True)
class RequestBroadcastStateUrl:
    request_id: bytes


@dataclass(frozen=True, slots=True)
class RequestBroadcastStateUrlReply:
    request_id: bytes
    url: str | None  # None: frame 2 omitted ("ask the leader again")


@dataclass(frozen=True, slots=True)
class ClientDispatch:
    request_id: bytes
    type: bytes
    args: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class StateBroadcast:
    """A PUB message: ``[ident, term, last_applied, *entries]`` (no request id)."""

    ident: bytes
    term: int
    last_applied: int
    entries: tuple[bytes, ...] = ()
