"""The client RPCs with one answer each, and ClientDispatch (spec/protocol.md §9).

RequestConfig, RequestLogInfo, RequestUpdate, ConfigUpdate, the ``*`` (broadcast URL) and ``W``
(web monitor URL) requests, their replies and the reply status enums; and ClientDispatch, which
carries any other type to the state machine.  Frame 1 is the client's request id, echoed
untouched in every reply (RequestUpdate and ConfigUpdate require a 12-byte reqid, the key the
leader uses to apply an update once, spec §9.3).

The replies' statuses are ``IntEnum``s whose values are the wire's codes (ConfigUpdateReply)
or name the shapes the wire tells apart by its frames (RequestUpdateReply, spec §9.3).
``*`` and ``W`` are not built-in types: a server hands them to the state machine as a
ClientDispatch, and ``from_dispatch`` reads them from there.  RequestEntries, a stream rather
than one answer, is in ``entries_messages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Self

from .frames import (
    FALSE_FRAME,
    REQUEST_ID_SIZE,
    TRUE_FRAME,
    FrameReader,
    encode_bool,
    encode_json,
    encode_reqid,
    encode_string,
    encode_uint,
    frame_error,
    json_int,
)
from .message_codec import Frames, check_str_or_none, json_leader, leader_text, rid_text
from .message_types import (
    BUILTIN_TYPES,
    CONFIG_UPDATE,
    REQUEST_BROADCAST_STATE_URL,
    REQUEST_CONFIG,
    REQUEST_LOG_INFO,
    REQUEST_UPDATE,
    REQUEST_WEBMONITOR_URL,
)


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
        return f"{type(self).__name__}(id={rid_text(self.request_id)})"


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
        check_str_or_none(self.leader_id, "leader_id")
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
        return cls(frames[0], r.bool(2), json_leader(r, 3), tuple(peers))

    def __str__(self) -> str:
        return (
            f"RequestConfigReply(id={rid_text(self.request_id)} is_leader={int(self.is_leader)}"
            f" leader={leader_text(self.leader_id)} peers={len(self.peers)})"
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
        check_str_or_none(self.leader_id, "leader_id")
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
            json_leader(r, 3),
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
            f"RequestLogInfoReply(id={rid_text(self.request_id)} is_leader={int(self.is_leader)}"
            f" leader={leader_text(self.leader_id)} term={self.term} first={self.first_index}"
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

    @staticmethod
    def fields(frames: Frames) -> tuple[bytes, bytes] | None:
        """The request id and data of well-formed RequestUpdate frames, without building the
        message (a leader reads one per update); None: ``decode`` says what is wrong."""
        if len(frames) < 4 or frames[1] != REQUEST_UPDATE:
            return None
        request_id, data = frames[0], frames[3]
        return (request_id, data) if len(request_id) == REQUEST_ID_SIZE and data else None

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
        return f"RequestUpdate(id={rid_text(self.request_id)} data={len(self.data)})"


def committed_update_reply(request_id: bytes, index: int) -> list[bytes]:
    """The frames of ``RequestUpdateReply(request_id, COMMITTED, index=index)`` without the
    object: a leader sends one per update."""
    return [request_id, TRUE_FRAME, encode_json(index)]


@dataclass(frozen=True, slots=True)
class RequestUpdateReply:
    request_id: bytes
    status: UpdateStatus
    leader_id: str | None = None  # NOT_LEADER only
    index: int | None = None  # COMMITTED only

    def encode(self) -> list[bytes]:
        status = self.status
        if status == UpdateStatus.NOT_LEADER:
            check_str_or_none(self.leader_id, "leader_id")
            return [self.request_id, FALSE_FRAME, encode_json(self.leader_id)]
        if status == UpdateStatus.EXPIRED:
            return [self.request_id, FALSE_FRAME]
        if status == UpdateStatus.ACCEPTED:
            return [self.request_id, TRUE_FRAME]
        if status == UpdateStatus.COMMITTED:
            if self.index is None or self.index < 0:
                raise ValueError("COMMITTED RequestUpdateReply needs a non-negative index")
            return committed_update_reply(self.request_id, self.index)
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
        return cls(request_id, UpdateStatus.NOT_LEADER, leader_id=json_leader(r, 3))

    def __str__(self) -> str:
        text = f"RequestUpdateReply(id={rid_text(self.request_id)} {self.status.name}"
        if self.status == UpdateStatus.NOT_LEADER:
            text += f" leader={leader_text(self.leader_id)}"
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
        return f"ConfigUpdate(id={rid_text(self.request_id)} {size})"


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
            check_str_or_none(self.leader_id, "leader_id")
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
            return cls(request_id, status, leader_id=json_leader(r, 3))
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
        text = f"ConfigUpdateReply(id={rid_text(self.request_id)} {self.status.name}"
        if self.status == ConfigUpdateStatus.NOT_LEADER:
            text += f" leader={leader_text(self.leader_id)}"
        elif self.index is not None:
            text += f" index={self.index}"
        elif self.status == ConfigUpdateStatus.ERROR:
            text += f" {self.error_name}: {self.error_message}"
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
        return f"RequestBroadcastStateUrlReply(id={rid_text(self.request_id)} url={leader_text(self.url)})"


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
        return f"RequestWebmonitorUrlReply(id={rid_text(self.request_id)} url={self.url})"


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
        args = len(self.args)
        return f"ClientDispatch(id={rid_text(self.request_id)} type={bytes(self.type)!r} args={args})"


__all__ = [
    "ClientDispatch",
    "ConfigUpdate",
    "ConfigUpdateReply",
    "ConfigUpdateStatus",
    "RequestBroadcastStateUrl",
    "RequestBroadcastStateUrlReply",
    "RequestConfig",
    "RequestConfigReply",
    "RequestLogInfo",
    "RequestLogInfoReply",
    "RequestUpdate",
    "RequestUpdateReply",
    "RequestWebmonitorUrl",
    "RequestWebmonitorUrlReply",
    "UpdateStatus",
]
