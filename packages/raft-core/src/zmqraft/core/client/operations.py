"""What a client asks a cluster for: one ``Operation`` class per kind of request (spec/client.md §5.2).

Every ``ClientProtocol`` call returns an ``Operation`` at once: the handle the caller waits
on (``done``, then ``result()`` returns the value or raises the ``ClientError`` that ended
it).  An operation class says three things about its request and leaves the rest to the
protocol:

* how it is routed: ``needs_config`` (learn the peers first), ``needs_leader`` (send only to a
  known leader), ``fixed_rid`` (the caller's request id on every attempt) and ``pinned_url``
  (one peer, one attempt);
* its request: ``frames(rid, ident)``;
* what an answer means: ``on_reply(proto, frames, now)`` decodes it and ends the attempt with
  one of the protocol's outcomes (finish, fail, follow the named leader, wait and
  rediscover), so the retry rules of client.md §5.1 live once, in ``ClientProtocol``.

``phase`` (a ``Phase``) and ``expires`` are the protocol's bookkeeping for the current
attempt.  The reads are ``ConfigOperation``, ``LogInfoOperation``, ``BroadcastUrlOperation``
and ``WebmonitorUrlOperation``; ``UpdateOperation`` and ``ConfigUpdateOperation`` are leader
writes (``LeaderWrite``: one request id for every attempt, "accepted" answers before the
final one); ``CustomOperation`` carries a ClientDispatch.  The RequestEntries stream, an
operation with many answers, is ``entries_stream.EntriesStream``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..protocol import messages as m
from .errors import (
    BroadcastUrlMissingError,
    ClientError,
    ClusterBusyError,
    ConfigUpdateError,
    ExpiredRequestError,
)
from .items import ConfigInfo, LogInfo

if TYPE_CHECKING:
    from .protocol import ClientProtocol

T = TypeVar("T")


class Phase(Enum):
    NEW = "new"
    SENT = "sent"  # an attempt is waiting for its reply (``expires`` = response deadline)
    WAITING = "waiting"  # grace delay before the next attempt (``expires`` = wake-up time)
    DISCOVERY = "discovery"  # waiting for the shared RequestConfig discovery
    PAUSED = "paused"  # an entries stream stopped by back-pressure (no timer)
    DONE = "done"


_UNSET: Any = object()


class Operation(Generic[T]):
    """A pending client request.  ``done`` turns true once; then ``result()`` returns the
    value or raises the ``ClientError`` that ended it."""

    name = "request"
    fixed_rid = False  # updates reuse the caller's id on every attempt
    needs_leader = False  # send only to a known leader (discover one first)
    needs_config = True  # learn the peers first (client.md §5.1: all but RequestConfig)

    def __init__(self, deadline: float | None, url: str | None = None) -> None:
        self.deadline = deadline
        self.pinned_url = url
        self.phase = Phase.NEW
        self.rid = b""
        self.url: str | None = None  # where the current attempt went
        self.expires: float | None = None
        self.discover_after_wait = False
        self.redirects = 0
        self.tried: dict[str, None] = {}
        self.started: float | None = None  # when the protocol started it (for error messages)
        self.internal = False
        self.on_done: Callable[[Operation[T], float], None] | None = None
        self._value: Any = _UNSET
        self._error: ClientError | None = None

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def error(self) -> ClientError | None:
        return self._error

    def result(self) -> T:
        if self._error is not None:
            raise self._error
        if self._value is _UNSET:
            raise RuntimeError(f"{self.name} has not finished yet")
        value: T = self._value
        return value

    def attempt_timeout(self, proto: ClientProtocol) -> float:
        if self.pinned_url is not None and self.deadline is not None:
            return max(self.deadline - proto.now, 0.0)
        return proto.timeout

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        raise NotImplementedError

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.phase.value}>"


class ConfigOperation(Operation[ConfigInfo]):
    name = "requestConfig"
    needs_config = False

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestConfig(rid).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestConfigReply.decode(frames)
        url = proto._end_attempt(self)
        known = proto._set_peers(reply.peers, reply.leader_id)
        info = ConfigInfo(reply.leader_id, reply.is_leader, reply.peers, url)
        if self.pinned_url is not None or (reply.is_leader and known):
            proto._finish(self, info, now)
        else:
            proto._retry_after_answer(self, now, reply.leader_id)


class LogInfoOperation(Operation[LogInfo]):
    name = "requestLogInfo"

    def __init__(self, deadline: float | None, url: str | None, any_peer: bool) -> None:
        super().__init__(deadline, url)
        self.any_peer = any_peer
        self.needs_config = not any_peer

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestLogInfo(rid).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        r = m.RequestLogInfoReply.decode(frames)
        url = proto._end_attempt(self)
        info = LogInfo(
            r.is_leader,
            r.leader_id,
            r.term,
            r.first_index,
            r.last_applied,
            r.commit_index,
            r.last_index,
            r.snapshot_size,
            r.prune_index,
            url,
        )
        if self.pinned_url is not None or self.any_peer:
            proto._finish(self, info, now)
            return
        proto._set_leader(r.leader_id)
        if r.is_leader:
            proto._finish(self, info, now)
        else:
            proto._retry_after_answer(self, now, r.leader_id)


class LeaderWrite(Operation[int]):
    """An update or a membership change: the caller's request id on every attempt (the
    leader applies it once); "accepted" answers come before the final one."""

    fixed_rid = True

    def __init__(self, deadline: float | None, request_id: bytes, url: str | None) -> None:
        super().__init__(deadline, url)
        self.rid = request_id
        self.wall: float | None = None  # this machine's wall clock when it started

    def expired(self, proto: ClientProtocol, now: float) -> ExpiredRequestError:
        """The leader refused the id as not fresh: say how old it is by this machine's clock
        (an id fresh by it means the clocks differ by more than the window)."""
        age = None
        if self.wall is not None and self.started is not None:
            age = self.wall + (now - self.started) - int.from_bytes(self.rid[:4], "big")
        return ExpiredRequestError(self.name, self.rid, age)

    def _interim(self, proto: ClientProtocol, now: float, accepted: bool, leader_id: str | None) -> None:
        if self.phase is not Phase.SENT:
            return  # a late answer to an earlier attempt: only final answers matter now
        if accepted:
            self.redirects = 0
            self.expires = now + proto.timeout  # wait on (every "accepted" refreshes)
        else:
            proto._end_attempt(self)
            proto._not_leader(self, leader_id, now)


class UpdateOperation(LeaderWrite):
    name = "requestUpdate"

    def __init__(
        self, deadline: float | None, request_id: bytes, data: bytes, url: str | None = None
    ) -> None:
        super().__init__(deadline, request_id, url)
        self.data = data

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestUpdate(rid, self.data).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestUpdateReply.decode(frames)
        status = reply.status
        if status is m.UpdateStatus.COMMITTED:
            assert reply.index is not None
            proto._finish(self, reply.index, now)
        elif status is m.UpdateStatus.EXPIRED:
            proto._fail(self, self.expired(proto, now), now)
        else:
            self._interim(proto, now, status is m.UpdateStatus.ACCEPTED, reply.leader_id)


class ConfigUpdateOperation(LeaderWrite):
    name = "configUpdate"

    def __init__(self, deadline: float | None, request_id: bytes, peers: Any, url: str | None = None) -> None:
        super().__init__(deadline, request_id, url)
        self.peers = peers

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.ConfigUpdate(rid, self.peers).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.ConfigUpdateReply.decode(frames)
        status = reply.status
        if status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None:
            proto._finish(self, reply.index, now)
        elif status is m.ConfigUpdateStatus.ERROR:
            proto._fail(self, ConfigUpdateError(reply.error_name or "Error", reply.error_message or ""), now)
        elif status is m.ConfigUpdateStatus.BUSY:
            proto._fail(self, ClusterBusyError(), now)
        elif status is m.ConfigUpdateStatus.EXPIRED:
            proto._fail(self, self.expired(proto, now), now)
        else:
            self._interim(proto, now, status is m.ConfigUpdateStatus.ACCEPTED, reply.leader_id)


class BroadcastUrlOperation(Operation[str]):
    """``*`` (RequestBroadcastStateUrl): every peer answers with its own PUB URL, so ask the
    leader, the only one that publishes."""

    name = "requestBroadcastStateUrl"
    needs_leader = True

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestBroadcastStateUrl(rid).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestBroadcastStateUrlReply.decode(frames)
        url = proto._end_attempt(self)
        if reply.url:
            proto._finish(self, reply.url, now)
        elif self.pinned_url is not None:
            proto._fail(self, BroadcastUrlMissingError(url), now)
        elif proto._may_retry(self, now):
            proto._wait(self, now, discover=True)  # "ask the leader again" (protocol.md §9.6)


class WebmonitorUrlOperation(Operation[str]):
    """``W`` (protocol.md §9.6.1): the answering peer's web monitor URL (peers without one do
    not answer: that is a timeout)."""

    name = "requestWebmonitorUrl"

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestWebmonitorUrl(rid).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestWebmonitorUrlReply.decode(frames)
        proto._end_attempt(self)
        proto._finish(self, reply.url, now)


class CustomOperation(Operation[list[bytes]]):
    """A ClientDispatch request for the state machine; the result is the first reply's frames
    after the request id.  It may be delivered more than once (retries)."""

    name = "request"

    def __init__(
        self,
        deadline: float | None,
        url: str | None,
        msg_type: bytes,
        args: tuple[bytes, ...],
        to_leader: bool,
    ) -> None:
        super().__init__(deadline, url)
        self.msg_type = msg_type
        self.args = args
        self.needs_leader = to_leader

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.ClientDispatch(rid, self.msg_type, self.args).encode(ident)

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        proto._end_attempt(self)
        proto._finish(self, list(frames[1:]), now)


__all__ = [
    "BroadcastUrlOperation",
    "ConfigOperation",
    "ConfigUpdateOperation",
    "CustomOperation",
    "LeaderWrite",
    "LogInfoOperation",
    "Operation",
    "Phase",
    "UpdateOperation",
    "WebmonitorUrlOperation",
]
