"""The client side of zmq-raft as a sans-IO state machine (spec/client.md §3–§6).

Theory of operation
-------------------

A ``ClientProtocol`` knows the cluster's peers (from seed URLs, or a known configuration)
and which of them leads.  Every call (``request_update``, ``request_entries``, ...) returns an
``Operation`` handle at once; the protocol then decides, attempt by attempt, where the
request goes and what to do with each answer.  The runtime wrapper only moves bytes and
time::

    op = proto.request_update(b"data", now, wall)
    loop:
        for url, frames in proto.frames_to_send():  send frames to the peer at url
        wait for a reply or until proto.get_timer()
        proto.receive(reply_frames, now)   or   proto.handle_timer(now)
        drain proto.next_event()            (Completed, Readable, PeersChanged, LeaderChanged)
    op.result()   # the log index, or raises a ClientError

Every outbound message names its peer URL: the wrapper keeps one DEALER per URL, so the
protocol (not ZeroMQ's round-robin) chooses "the leader" or "the next peer".  Replies are
matched by request id (frame 1): a per-client ``uint32`` counter for reads and entries
streams, the caller's 12-byte id for updates (the same id on every retry, which the leader
uses to apply an update once, spec/protocol.md §9.3).

Retry rules (client.md §5.1), shared by every cluster operation:

* unknown configuration: ask ``RequestConfig`` first (one discovery shared by all callers);
* "not the leader, the leader is X": send again at once, to X; if X is unknown (or after two
  redirects in a row, which happens while an election settles), wait the election grace
  delay, rediscover, send again;
* no answer within the response timeout: forget the leader and send again to the next peer.

An operation's ``timeout`` is an overall deadline for all of that: it fails with
``RequestTimeoutError`` only when an attempt fails (or a wait ends) after the deadline.
Final answers (committed, expired, configuration errors) end it at once.  Requests pinned
to one ``url`` make a single attempt and surface ``NotLeaderError`` instead of following.

RequestEntries streams (client.md §4.1, §6) acknowledge every status-2 message and every
non-final snapshot chunk as soon as it arrives, so the leader's pipeline keeps flowing, and
buffer the items for the consumer (``take``).  When the buffer holds more than
``high_water`` bytes the stream is stopped (a count-0 follow-up); messages already in flight
are still kept, and the next ``take`` that brings the buffer under half of ``high_water``
starts a new RPC where the data ends.  Interrupted streams (leader change, timeout) continue
the same way at the next peer, so the consumer sees every entry once and in order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from ..cluster import parse_peers
from ..protocol import messages as m
from ..protocol import mpack
from ..protocol.errors import ProtocolError
from ..protocol.frames import encode_uint
from ..protocol.reqid import RequestIdGenerator, as_request_id
from .errors import (
    BroadcastUrlMissingError,
    ClientClosedError,
    ClientError,
    ClusterBusyError,
    ConfigUpdateError,
    ExpiredRequestError,
    NotLeaderError,
    OutOfOrderError,
    RequestTimeoutError,
    ResumeState,
)
from .items import ConfigInfo, Entry, Item, LogInfo, SnapshotChunk

log = logging.getLogger("zmqraft.client")

RESPONSE_TIMEOUT = 0.5  # client.md §1 SERVER_RESPONSE_TIMEOUT
ELECTION_GRACE_DELAY = 0.3  # client.md §1 SERVER_ELECTION_GRACE_DELAY
ENTRIES_TIMEOUT_GROWTH = 5  # per-attempt RequestEntries timeout grows up to 5 x timeout
HEARTBEAT_TIMEOUT_FACTOR = 5  # a config refresh may take 5 x timeout
HIGH_WATER = 4 << 20  # bytes buffered per entries stream before it is stopped
MAX_REDIRECTS = 2  # not-leader answers in a row before waiting for the election to settle

T = TypeVar("T")
OpT = TypeVar("OpT", bound="Operation[Any]")
Peer = tuple[str, str]


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Completed:
    """``operation`` finished: ``operation.result()`` returns or raises without blocking."""

    operation: Operation[Any]


@dataclass(frozen=True, slots=True)
class Readable:
    """``stream`` has items for ``take`` (or has ended)."""

    stream: EntriesStream


@dataclass(frozen=True, slots=True)
class PeersChanged:
    """The known configuration changed; ``urls`` are all the URLs requests may now go to
    (a wrapper may close connections to any other URL)."""

    peers: tuple[Peer, ...]
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaderChanged:
    leader_id: str | None
    url: str | None


Event = Completed | Readable | PeersChanged | LeaderChanged


# ---- operations ---------------------------------------------------------------------------


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


class _LeaderWrite(Operation[int]):
    """An update or a membership change: the caller's request id on every attempt (the
    leader applies it once); "accepted" answers come before the final one."""

    fixed_rid = True

    def __init__(self, deadline: float | None, request_id: bytes, url: str | None) -> None:
        super().__init__(deadline, url)
        self.rid = request_id

    def _interim(self, proto: ClientProtocol, now: float, accepted: bool, leader_id: str | None) -> None:
        if self.phase is not Phase.SENT:
            return  # a late answer to an earlier attempt: only final answers matter now
        if accepted:
            self.redirects = 0
            self.expires = now + proto.timeout  # wait on (every "accepted" refreshes)
        else:
            proto._end_attempt(self)
            proto._not_leader(self, leader_id, now)


class UpdateOperation(_LeaderWrite):
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
            proto._fail(self, ExpiredRequestError(self.name, self.rid), now)
        else:
            self._interim(proto, now, status is m.UpdateStatus.ACCEPTED, reply.leader_id)


class ConfigUpdateOperation(_LeaderWrite):
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
            proto._fail(self, ExpiredRequestError(self.name, self.rid), now)
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


class EntriesStream(Operation[bool]):
    """A RequestEntries stream (client.md §4.1, §6); items come out of ``ClientProtocol.take``.

    ``result()`` is True when everything asked for was received, False when the consumer
    stopped it.  ``prev_index``/``count``/``snapshot_offset`` always describe where the stream
    would continue (after the items already buffered).
    """

    name = "requestEntries"

    def __init__(
        self,
        deadline: float | None,
        prev_index: int,
        count: int | None,
        snapshot_offset: int | None,
        high_water: int,
        url: str | None = None,
    ) -> None:
        super().__init__(deadline, url)
        self.prev_index = prev_index
        self.count = count
        self.snapshot_offset = snapshot_offset or None
        self.snapshot: tuple[int, int, int] | None = None  # (index, term, size) being received
        self.buffer: deque[Item] = deque()
        self.buffered = 0  # bytes in ``buffer``
        self.high_water = high_water
        self.stop_requested = False
        self.timeout_factor = 1
        self.paused_rid = b""  # the stopped RPC whose in-flight messages are still welcome
        self.received = 0  # items received over the stream's life

    @property
    def resume_state(self) -> ResumeState:
        return ResumeState(self.prev_index, self.count, self.snapshot_offset)

    def attempt_timeout(self, proto: ClientProtocol) -> float:
        return proto.timeout * self.timeout_factor

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestEntries(rid, self.prev_index, self.count, self.snapshot_offset).encode(ident)

    def _follow_up(
        self, proto: ClientProtocol, now: float, count: int | None, offset: int | None = None
    ) -> None:
        assert self.url is not None
        proto._out.append(
            (self.url, m.RequestEntries(self.rid, self.prev_index, count, offset).encode(proto.ident))
        )
        self.expires = now + self.attempt_timeout(proto)

    def _push(self, item: Item, size: int) -> None:
        self.buffer.append(item)
        self.buffered += size
        self.received += 1

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestEntriesReply.decode(frames)
        status = reply.status
        if self.phase is Phase.PAUSED:
            self._late(proto, reply, now)
            return
        if status is m.EntriesStatus.NOT_LEADER:
            proto._end_attempt(self)
            proto._not_leader(self, reply.leader_id, now)
            return
        self.redirects = 0
        if status is m.EntriesStatus.SNAPSHOT_CHUNK:
            self._on_chunk(proto, reply, now)
        else:
            self._on_entries(proto, reply, now)

    def _on_entries(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        entries = reply.entries
        last = reply.last_index
        if not entries:
            if reply.status is m.EntriesStatus.LAST:
                # nothing (more) up to the leader's last applied index; when it is behind the
                # position asked for (a new leader still applying), that too means "no more yet"
                proto._end_attempt(self)
                proto._finish(self, True, now)
                return
            if last != self.prev_index:
                self._out_of_order(proto, now, f"an empty message ends at {last}, expected {self.prev_index}")
                return
        else:
            if self.snapshot_offset is not None or self.snapshot is not None:
                # the leader streams entries where we were receiving a snapshot (its log
                # reaches further back than the snapshot's index): the partial snapshot is void
                self.snapshot_offset = None
                self.snapshot = None
            first = last - len(entries) + 1
            if first != self.prev_index + 1:
                self._out_of_order(
                    proto,
                    now,
                    f"log entries received out of order: got {first}..{last} after {self.prev_index}",
                )
                return
            for i, raw in enumerate(entries):
                self._push(Entry(raw, first + i), len(raw))
            self.prev_index = last
            if self.count is not None:
                self.count -= len(entries)
            proto._readable(self)
        if reply.status is m.EntriesStatus.LAST:
            proto._end_attempt(self)  # a status-1 message is never acknowledged
            proto._finish(self, True, now)
        elif self.count is not None and self.count <= 0:
            self._follow_up(proto, now, 0)
            proto._end_attempt(self)
            proto._finish(self, True, now)
        else:
            self._acknowledge(proto, now, self.count)

    def _acknowledge(
        self, proto: ClientProtocol, now: float, count: int | None, offset: int | None = None
    ) -> None:
        if self.stop_requested:
            self._follow_up(proto, now, 0, offset)
            proto._end_attempt(self)
            proto._finish(self, False, now)
        elif self.buffered >= self.high_water:
            self._follow_up(proto, now, 0, offset)
            proto._pause(self)
        else:
            self._follow_up(proto, now, count, offset)

    def _on_chunk(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        snapshot = (reply.last_index, reply.snapshot_term, reply.snapshot_size)
        if self.snapshot_offset is None and reply.last_index <= self.prev_index:
            # the last acknowledgement of a finished transfer restarted it on the leader (it
            # closes a snapshot stream on sending the final chunk): a duplicate, ignore
            return
        expected = self.snapshot_offset or 0
        if self.snapshot is not None and snapshot != self.snapshot:
            if reply.snapshot_offset != 0:
                # the leader compacted again in the middle of our transfer: start over
                self._follow_up(proto, now, 0)
                proto._end_attempt(self)
                self.snapshot_offset = None
                self.snapshot = None
                proto._attempt(self, now)
                return
            expected = 0  # a new snapshot from its beginning: the consumer sees is_first
        if reply.snapshot_offset != expected:
            self._out_of_order(
                proto,
                now,
                "snapshot chunks received out of order: "
                f"got offset {reply.snapshot_offset}, expected {expected}",
            )
            return
        chunk = bytes(reply.chunk)
        self._push(
            SnapshotChunk(
                reply.last_index, reply.snapshot_term, reply.snapshot_offset, reply.snapshot_size, chunk
            ),
            len(chunk),
        )
        proto._readable(self)
        end = expected + len(chunk)
        if end < reply.snapshot_size and chunk:
            self.snapshot = snapshot
            self.snapshot_offset = end
            # acknowledge with the original prevIndex and the next offset (protocol.md §9.5)
            self._acknowledge(proto, now, self.count, end)
            return
        # final chunk: the leader has closed its snapshot stream; the entries after the
        # snapshot come from a request with prevIndex = snapshot index on the same request id
        self.prev_index = reply.last_index
        self.snapshot_offset = None
        self.snapshot = None
        if self.count is not None:
            self.count -= 1  # a snapshot counts as one entry
        if self.count is not None and self.count <= 0:
            proto._end_attempt(self)
            proto._finish(self, True, now)
        elif self.stop_requested:
            proto._end_attempt(self)
            proto._finish(self, False, now)
        elif self.buffered >= self.high_water:
            proto._pause(self)
        else:
            self._follow_up(proto, now, self.count)

    def _late(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        """A message that was in flight when back-pressure stopped the RPC: keep it if it
        continues the data exactly (no acknowledgement: the stream is gone on the leader)."""
        if reply.status is m.EntriesStatus.SNAPSHOT_CHUNK:
            snapshot = (reply.last_index, reply.snapshot_term, reply.snapshot_size)
            if self.snapshot != snapshot or reply.snapshot_offset != self.snapshot_offset:
                return
            chunk = bytes(reply.chunk)
            self._push(
                SnapshotChunk(
                    reply.last_index, reply.snapshot_term, reply.snapshot_offset, reply.snapshot_size, chunk
                ),
                len(chunk),
            )
            end = reply.snapshot_offset + len(chunk)
            if end >= reply.snapshot_size or not chunk:
                self.prev_index = reply.last_index
                self.snapshot_offset = None
                self.snapshot = None
                if self.count is not None:
                    self.count -= 1
            else:
                self.snapshot_offset = end
        elif reply.entries and self.snapshot is None:
            first = reply.last_index - len(reply.entries) + 1
            if first != self.prev_index + 1:
                return
            for i, raw in enumerate(reply.entries):
                self._push(Entry(raw, first + i), len(raw))
            self.prev_index = reply.last_index
            if self.count is not None:
                self.count -= len(reply.entries)
        else:
            return
        proto._readable(self)
        if self.count is not None and self.count <= 0:
            proto._finish(self, True, now)

    def _out_of_order(self, proto: ClientProtocol, now: float, reason: str) -> None:
        if self.url is not None and self.phase is Phase.SENT:
            self._follow_up(proto, now, 0)  # stop the leader's stream
        proto._end_attempt(self)
        proto._fail(self, OutOfOrderError(f"{reason}; ask again from prev_index={self.prev_index}"), now)


# ---- the protocol -------------------------------------------------------------------------


class ClientProtocol:
    """One client's view of a cluster; see the module docstring for how to drive it."""

    def __init__(
        self,
        urls: str | Iterable[str] = (),
        *,
        now: float,
        peers: Any = None,
        secret: bytes | str = b"",
        timeout: float = RESPONSE_TIMEOUT,
        election_grace_delay: float = ELECTION_GRACE_DELAY,
        heartbeat: float | None = None,
        high_water: int = HIGH_WATER,
        request_ids: RequestIdGenerator | None = None,
    ) -> None:
        seeds = [urls] if isinstance(urls, str) else list(urls)
        if not seeds and not peers:
            raise ValueError("give the cluster's seed urls or its peers ([id, url] pairs)")
        if any(not isinstance(u, str) or not u for u in seeds):
            raise ValueError("seed urls must be non-empty strings such as 'tcp://127.0.0.1:8047'")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self.ident = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        self.timeout = float(timeout)
        self.grace = float(election_grace_delay)
        self.heartbeat = heartbeat if heartbeat and heartbeat > 0 else None
        self.high_water = high_water
        self.now = now
        self._seeds = tuple(dict.fromkeys(seeds))
        self._peers: dict[str, str] = {}
        self.leader_id: str | None = None
        self._rr = -1
        self._counter = 0
        self._ids = request_ids or RequestIdGenerator()
        self._ops: dict[Operation[Any], None] = {}
        self._pending: dict[bytes, Operation[Any]] = {}
        self._out: list[tuple[str, list[bytes]]] = []
        self._events: deque[Event] = deque()
        self._discovery: ConfigOperation | None = None
        self._discovery_waiters: list[Operation[Any]] = []
        self._heartbeat_due: float | None = now if self.heartbeat else None
        self._heartbeat_op: ConfigOperation | None = None
        self.closed = False
        self.dropped_replies = 0
        self.malformed_replies = 0
        if peers:
            self._peers = dict(parse_peers(_peer_list(peers)))

    # ------------------------------------------------------------ state

    @property
    def peers(self) -> tuple[Peer, ...]:
        return tuple(self._peers.items())

    @property
    def leader_url(self) -> str | None:
        return None if self.leader_id is None else self._peers.get(self.leader_id)

    @property
    def seeds(self) -> tuple[str, ...]:
        """The seed URLs the client was given."""
        return self._seeds

    @property
    def urls(self) -> tuple[str, ...]:
        """Where requests may go now: the peers' URLs once known, else the seeds."""
        return tuple(self._peers.values()) if self._peers else self._seeds

    @property
    def operations(self) -> tuple[Operation[Any], ...]:
        return tuple(self._ops)

    # ------------------------------------------------------------ operations

    def request_config(
        self, now: float, *, timeout: float | None = None, url: str | None = None
    ) -> ConfigOperation:
        """The cluster's peers and leader; asks until the leader itself answers (unless
        pinned to ``url``)."""
        return self._start(ConfigOperation(self._deadline(now, timeout), url), now)

    def request_log_info(
        self, now: float, *, any_peer: bool = False, timeout: float | None = None, url: str | None = None
    ) -> LogInfoOperation:
        """The leader's log state (or the first peer's that answers, with ``any_peer``)."""
        return self._start(LogInfoOperation(self._deadline(now, timeout), url, any_peer), now)

    def request_update(
        self,
        data: bytes,
        now: float,
        wall: float,
        *,
        request_id: bytes | str | None = None,
        timeout: float | None = None,
        url: str | None = None,
    ) -> UpdateOperation:
        """Append ``data`` as a STATE entry; the result is its log index once applied.

        ``request_id`` (12 bytes or 24 hex digits) defaults to a fresh one stamped with
        ``wall`` (seconds since the epoch); it is reused for every retry.  Pinned to ``url``:
        one attempt, ``NotLeaderError`` when that peer does not lead.
        """
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
            raise ValueError("update data must be non-empty bytes")
        rid = self._ids.next(wall) if request_id is None else as_request_id(request_id)
        self._check_rid(rid)
        return self._start(UpdateOperation(self._deadline(now, timeout), rid, bytes(data), url), now)

    def config_update(
        self,
        peers: Any,
        now: float,
        wall: float,
        *,
        request_id: bytes | str | None = None,
        timeout: float | None = None,
        url: str | None = None,
    ) -> ConfigUpdateOperation:
        """Change the membership to ``peers`` (``[id, url]`` pairs, ``{id, url}`` maps or URLs;
        msgpack bytes are sent as they are).  The result is the index of the joint
        configuration entry; raises ``cluster.ConfigError`` at once for a malformed list."""
        if isinstance(peers, bytes | bytearray | memoryview):
            value = mpack.unpack(bytes(peers))
        else:
            value = [[peer_id, url] for peer_id, url in parse_peers(_peer_list(peers))]
        rid = self._ids.next(wall) if request_id is None else as_request_id(request_id)
        self._check_rid(rid)
        return self._start(ConfigUpdateOperation(self._deadline(now, timeout), rid, value, url), now)

    def request_entries(
        self,
        now: float,
        prev_index: int = 0,
        count: int | None = None,
        *,
        snapshot_offset: int | None = None,
        timeout: float | None = None,
        high_water: int | None = None,
        url: str | None = None,
    ) -> EntriesStream:
        """Stream committed entries after ``prev_index`` (``count`` of them, or up to the
        leader's last applied index); take them with ``take``.  Pinned to ``url``: from that
        peer only; it fails with ``NotLeaderError`` or ``RequestTimeoutError`` instead of
        moving on, with ``error.resume`` saying where to continue."""
        if prev_index < 0 or (count is not None and count < 0) or (snapshot_offset or 0) < 0:
            raise ValueError("prev_index, count and snapshot_offset must not be negative")
        stream = EntriesStream(
            self._deadline(now, timeout),
            prev_index,
            count,
            snapshot_offset,
            high_water or self.high_water,
            url,
        )
        if count == 0:
            self._ops[stream] = None
            self._finish(stream, True, now)
            return stream
        return self._start(stream, now)

    def request_broadcast_url(
        self, now: float, *, timeout: float | None = None, url: str | None = None
    ) -> BroadcastUrlOperation:
        """The leader's broadcast (PUB) URL."""
        return self._start(BroadcastUrlOperation(self._deadline(now, timeout), url), now)

    def request_webmonitor_url(
        self, now: float, *, timeout: float | None = None, url: str | None = None
    ) -> WebmonitorUrlOperation:
        """A peer's web monitor URL (``url``: that peer's)."""
        return self._start(WebmonitorUrlOperation(self._deadline(now, timeout), url), now)

    def request(
        self,
        msg_type: bytes,
        args: Sequence[bytes],
        now: float,
        *,
        timeout: float | None = None,
        url: str | None = None,
        to_leader: bool = True,
    ) -> CustomOperation:
        """A custom (ClientDispatch) request for the state machine."""
        if len(msg_type) == 0 or msg_type in m.BUILTIN_TYPES:
            raise ValueError(f"a custom request type must be non-empty and not built-in, got {msg_type!r}")
        op = CustomOperation(self._deadline(now, timeout), url, bytes(msg_type), tuple(args), to_leader)
        return self._start(op, now)

    def take(self, stream: EntriesStream, now: float, limit: int | None = None) -> list[Item]:
        """Items the stream has received, oldest first (at most ``limit``).  Taking makes room:
        a stream stopped by back-pressure resumes here."""
        buffer = stream.buffer
        n = len(buffer) if limit is None else min(limit, len(buffer))
        items = [buffer.popleft() for _ in range(n)]
        for item in items:
            stream.buffered -= len(item.raw) if isinstance(item, Entry) else len(item.data)
        if stream.phase is Phase.PAUSED and stream.buffered <= stream.high_water // 2:
            self.now = now
            self._pending.pop(stream.paused_rid, None)
            stream.paused_rid = b""
            self._attempt(stream, now)
        return items

    def stop(self, stream: EntriesStream, now: float) -> None:
        """The consumer wants no more: end the stream (result False) and drop its buffer."""
        self.now = now
        stream.buffer.clear()
        stream.buffered = 0
        if stream.done:
            return
        stream.stop_requested = True
        if stream.phase is Phase.SENT and stream.url is not None:
            stream._follow_up(self, now, 0)
        self._end_attempt(stream)
        self._finish(stream, False, now)

    def cancel(self, op: Operation[Any], now: float) -> None:
        """Forget ``op``: it ends with ``ClientClosedError`` (an entries stream is stopped)."""
        if isinstance(op, EntriesStream):
            self.stop(op, now)
            return
        if op.done:
            return
        self._end_attempt(op)
        op._error = ClientClosedError(f"{op.name} cancelled")
        self._retire(op)
        self._prune_discovery()

    def close(self, now: float) -> None:
        """Fail every pending operation with ``ClientClosedError``."""
        self.now = now
        self.closed = True
        for op in list(self._ops):
            if not op.done:
                self._end_attempt(op)
                self._fail(op, ClientClosedError(), now)
        self._heartbeat_due = None

    # ------------------------------------------------------------ runtime interface

    def receive(self, frames: list[bytes], now: float) -> None:
        """A message that arrived on any of the client's DEALER sockets."""
        self.now = now
        if not frames:
            return
        op = self._pending.get(bytes(frames[0]))
        if op is None:
            self.dropped_replies += 1  # late answer to a finished attempt, or not ours
            return
        try:
            op.on_reply(self, frames, now)
        except ProtocolError as exc:
            self.malformed_replies += 1
            log.warning("dropped a malformed reply to %s: %s", op.name, exc)

    def handle_timer(self, now: float) -> None:
        """Call when ``get_timer()`` has passed (calling earlier is harmless)."""
        self.now = now
        for op in list(self._ops):
            if op.done or op.expires is None or op.expires > now:
                continue
            if op.phase is Phase.SENT:
                self._timed_out(op, now)
            elif op.deadline is not None and now >= op.deadline:
                self._fail(op, self._timeout_error(op), now)
            elif op.phase is Phase.WAITING:
                op.expires = None
                if isinstance(op, EntriesStream):
                    op.timeout_factor = 1  # a grace wait resets the grown timeout
                if op.discover_after_wait:
                    self._join_discovery(op, now)
                else:
                    self._attempt(op, now)
        self._prune_discovery()
        if self._heartbeat_due is not None and now >= self._heartbeat_due and self._heartbeat_op is None:
            self._heartbeat_due = None
            op = ConfigOperation(now + HEARTBEAT_TIMEOUT_FACTOR * self.timeout)
            op.internal = True
            op.on_done = self._heartbeat_done
            self._heartbeat_op = op
            self._start(op, now)

    def get_timer(self) -> float | None:
        """The next time ``handle_timer`` must be called, or None."""
        wake = self._heartbeat_due
        for op in self._ops:  # (finished operations have left ``_ops``)
            expires = op.expires
            if expires is not None and (wake is None or expires < wake):
                wake = expires
        return wake

    def frames_to_send(self) -> list[tuple[str, list[bytes]]]:
        """``(peer url, frames)`` for the DEALER connected to that URL, in order."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------ internals: attempts

    def _deadline(self, now: float, timeout: float | None) -> float | None:
        if self.closed:
            raise ClientClosedError()
        self.now = now
        return None if timeout is None or timeout <= 0 else now + timeout

    def _check_rid(self, rid: bytes) -> None:
        if rid in self._pending:
            raise ValueError(f"request id {rid.hex()} is already in use by a pending request")

    def _start(self, op: OpT, now: float) -> OpT:
        self._ops[op] = None
        self._attempt(op, now)
        return op

    def _next_rid(self) -> bytes:
        while True:
            self._counter = (self._counter + 1) & 0xFFFFFFFF
            rid = encode_uint(self._counter)
            if rid not in self._pending:
                return rid

    def _target(self) -> str:
        leader = self.leader_url
        if leader is not None:
            return leader
        urls = self.urls
        self._rr = (self._rr + 1) % len(urls)
        return urls[self._rr]

    def _attempt(self, op: Operation[Any], now: float) -> None:
        """Send ``op`` once more, or first find out where to."""
        if op.done:
            return
        url = op.pinned_url
        if url is None:
            if (op.needs_config and not self._peers) or (op.needs_leader and self.leader_url is None):
                self._join_discovery(op, now)
                return
            url = self._target()
        if not op.fixed_rid:
            op.rid = self._next_rid()
        self._pending[op.rid] = op
        op.phase = Phase.SENT
        op.url = url
        op.tried[url] = None
        op.expires = now + op.attempt_timeout(self)
        self._out.append((url, op.frames(op.rid, self.ident)))

    def _end_attempt(self, op: Operation[Any]) -> str:
        """The current attempt is over; returns where it went."""
        url = op.url or ""
        if op.rid and not op.fixed_rid:
            self._pending.pop(op.rid, None)
        op.expires = None
        if op.phase is Phase.SENT:
            op.phase = Phase.NEW
        return url

    def _may_retry(self, op: Operation[Any], now: float) -> bool:
        if op.pinned_url is not None or (op.deadline is not None and now >= op.deadline):
            self._fail(op, self._timeout_error(op), now)
            return False
        return True

    def _wait(self, op: Operation[Any], now: float, *, discover: bool) -> None:
        op.phase = Phase.WAITING
        op.discover_after_wait = discover
        wake = now + self.grace
        op.expires = wake if op.deadline is None else min(wake, op.deadline)

    def _retry_after_answer(self, op: Operation[Any], now: float, leader_id: str | None) -> None:
        """A peer answered but was not the leader (RequestConfig / RequestLogInfo)."""
        if not self._may_retry(op, now):
            return
        op.redirects += 1
        if self.leader_url is not None and op.redirects < MAX_REDIRECTS:
            self._attempt(op, now)
        else:
            op.redirects = 0
            self._wait(op, now, discover=not isinstance(op, ConfigOperation))

    def _not_leader(self, op: Operation[Any], leader_id: str | None, now: float) -> None:
        """Scenario 1 of client.md §5.1: follow the named leader, or wait and rediscover."""
        if op.pinned_url is not None:
            self._fail(op, NotLeaderError(leader_id, op.pinned_url), now)
            return
        if not self._may_retry(op, now):
            return
        self._set_leader(leader_id)
        op.redirects += 1
        if self.leader_url is not None and op.redirects < MAX_REDIRECTS:
            self._attempt(op, now)
        else:
            op.redirects = 0
            self._set_leader(None)
            self._wait(op, now, discover=True)

    def _timed_out(self, op: Operation[Any], now: float) -> None:
        """Scenario 2 of client.md §5.1: forget the leader, try the next peer."""
        url = self._end_attempt(op)
        urls = self.urls
        if url in urls:
            self._rr = urls.index(url)  # the rotation continues after the silent peer
        if isinstance(op, EntriesStream):
            op.timeout_factor = min(op.timeout_factor + 1, ENTRIES_TIMEOUT_GROWTH)
        if not self._may_retry(op, now):
            return
        op.redirects = 0
        self._set_leader(None)
        self._attempt(op, now)

    def _join_discovery(self, op: Operation[Any], now: float) -> None:
        op.phase = Phase.DISCOVERY
        op.expires = op.deadline
        self._discovery_waiters.append(op)
        if self._discovery is None:
            discovery = ConfigOperation(None)
            discovery.internal = True
            discovery.on_done = self._discovery_done
            self._discovery = discovery
            self._start(discovery, now)

    def _prune_discovery(self) -> None:
        """Stop a discovery nobody waits for any more (their deadlines passed)."""
        discovery = self._discovery
        if discovery is None or any(
            not op.done and op.phase is Phase.DISCOVERY for op in self._discovery_waiters
        ):
            return
        self._discovery = None
        self._discovery_waiters = []
        self._end_attempt(discovery)
        discovery._error = ClientClosedError("discovery no longer needed")
        self._retire(discovery)

    def _discovery_done(self, discovery: Operation[ConfigInfo], now: float) -> None:
        self._discovery = None
        waiters, self._discovery_waiters = self._discovery_waiters, []
        for op in waiters:
            if op.done or op.phase is not Phase.DISCOVERY:
                continue
            op.expires = None
            if discovery.error is not None:
                self._fail(op, discovery.error, now)
            else:
                self._attempt(op, now)

    def _heartbeat_done(self, op: Operation[ConfigInfo], now: float) -> None:
        self._heartbeat_op = None
        if op.error is not None and not isinstance(op.error, ClientClosedError):
            log.info("configuration refresh failed: %s", op.error)
        if not self.closed and self.heartbeat is not None:
            self._heartbeat_due = now + self.heartbeat

    # ------------------------------------------------------------ internals: outcomes

    def _finish(self, op: Operation[Any], value: Any, now: float) -> None:
        if op.done:
            return
        op._value = value
        self._retire(op)
        if isinstance(op, EntriesStream):
            self._readable(op)
        if op.on_done is not None:
            op.on_done(op, now)

    def _fail(self, op: Operation[Any], error: ClientError, now: float) -> None:
        if op.done:
            return
        self._end_attempt(op)
        if isinstance(op, EntriesStream):
            error.resume = op.resume_state
        op._error = error
        self._retire(op)
        if isinstance(op, EntriesStream):
            self._readable(op)
        if op.on_done is not None:
            op.on_done(op, now)

    def _retire(self, op: Operation[Any]) -> None:
        if (op.fixed_rid or op.rid) and self._pending.get(op.rid) is op:
            del self._pending[op.rid]
        if isinstance(op, EntriesStream) and op.paused_rid:
            self._pending.pop(op.paused_rid, None)
        op.phase = Phase.DONE
        op.expires = None
        self._ops.pop(op, None)
        if not op.internal:
            self._events.append(Completed(op))

    def _pause(self, stream: EntriesStream) -> None:
        """Back-pressure: the stream's RPC was stopped; in-flight data is still welcome."""
        stream.paused_rid = stream.rid
        stream.phase = Phase.PAUSED
        stream.expires = None

    def _readable(self, stream: EntriesStream) -> None:
        self._events.append(Readable(stream))

    def _timeout_error(self, op: Operation[Any]) -> RequestTimeoutError:
        tried = ", ".join(op.tried) or ", ".join(self.urls)
        if op.pinned_url is not None:
            text = f"{op.name}: no answer from {op.pinned_url}"
        elif isinstance(op, EntriesStream | _LeaderWrite | BroadcastUrlOperation):
            text = f"{op.name}: no leader answered before the deadline (tried {tried})"
        else:
            text = f"{op.name}: no answer before the deadline (tried {tried})"
        return RequestTimeoutError(
            f"{text}; check that the peers run and are reachable and that the secret matches the "
            "cluster's (a wrong secret looks exactly like this)"
        )

    # ------------------------------------------------------------ internals: cluster view

    def _set_peers(self, peers: Sequence[Peer], leader_id: str | None) -> bool:
        """Adopt a RequestConfig answer's peers; False if they are unusable."""
        try:
            parsed = dict(parse_peers([list(p) for p in peers]))
        except ValueError as exc:
            log.info("ignoring a configuration answer: %s", exc)
            return False
        if parsed != self._peers:
            self._peers = parsed
            self._events.append(PeersChanged(self.peers, self.urls))
        self._set_leader(leader_id)
        return True

    def _set_leader(self, leader_id: str | None) -> None:
        if leader_id is not None and leader_id not in self._peers:
            leader_id = None
        if leader_id != self.leader_id:
            self.leader_id = leader_id
            self._events.append(LeaderChanged(leader_id, self.leader_url))


def _peer_list(peers: Any) -> list[Any]:
    """Accept a mapping {id: url} as well as the list shapes ``parse_peers`` takes."""
    if isinstance(peers, dict):
        return [[peer_id, url] for peer_id, url in peers.items()]
    if isinstance(peers, list | tuple):
        return [list(p) if isinstance(p, tuple) else p for p in peers]
    return list(peers)


__all__ = [
    "ELECTION_GRACE_DELAY",
    "RESPONSE_TIMEOUT",
    "BroadcastUrlOperation",
    "ClientProtocol",
    "Completed",
    "ConfigOperation",
    "ConfigUpdateOperation",
    "CustomOperation",
    "EntriesStream",
    "Event",
    "LeaderChanged",
    "LogInfoOperation",
    "Operation",
    "PeersChanged",
    "Phase",
    "Readable",
    "UpdateOperation",
    "WebmonitorUrlOperation",
]
