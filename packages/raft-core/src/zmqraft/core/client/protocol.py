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

RequestEntries streams are operations with many answers: ``take`` empties their buffer and
``stop`` ends them (flow control and resumption: ``entries_stream``).

Where things are
----------------

This module holds ``ClientProtocol`` only: the driver that owns the operations, sends their
attempts and applies the retry rules above.  What each request is and what each answer
means is in ``operations`` (and ``entries_stream``); the events are in ``events``.  It is over
500 lines because it is one class with one job, the retry and fail-over rules of client.md
§5.1 and the bookkeeping they share (attempts, outcomes, the cluster view); spread over
modules, those rules would no longer read as one state machine.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from ..cluster import parse_peers
from ..protocol import messages as m
from ..protocol import mpack
from ..protocol.errors import ProtocolError
from ..protocol.frames import encode_uint
from ..protocol.reqid import RequestIdGenerator, as_request_id, default_generator
from .entries_stream import EntriesStream
from .errors import ClientClosedError, ClientError, NotLeaderError, RequestTimeoutError, UpdateTooLargeError
from .events import Completed, Event, LeaderChanged, Peer, PeersChanged, Readable
from .items import ConfigInfo, Entry, Item
from .operations import (
    BroadcastUrlOperation,
    ConfigOperation,
    ConfigUpdateOperation,
    CustomOperation,
    LeaderWrite,
    LogInfoOperation,
    Operation,
    Phase,
    UpdateOperation,
    WebmonitorUrlOperation,
)

log = logging.getLogger("zmqraft.client")

RESPONSE_TIMEOUT = 0.5  # client.md §1 SERVER_RESPONSE_TIMEOUT
ELECTION_GRACE_DELAY = 0.3  # client.md §1 SERVER_ELECTION_GRACE_DELAY
ENTRIES_TIMEOUT_GROWTH = 5  # per-attempt RequestEntries timeout grows up to 5 x timeout
HEARTBEAT_TIMEOUT_FACTOR = 5  # a config refresh may take 5 x timeout
HIGH_WATER = 4 << 20  # bytes buffered per entries stream before it is stopped
MAX_REDIRECTS = 2  # not-leader answers in a row before waiting for the election to settle
# The server's default maxLogEntryDataSize: a peer drops a larger update without an answer
# (protocol.md §9.3), so the client refuses it before sending (``max_update_size``).
DEFAULT_MAX_UPDATE_SIZE = 10 * 1024 * 1024

OpT = TypeVar("OpT", bound="Operation[Any]")


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
        max_update_size: int | None = DEFAULT_MAX_UPDATE_SIZE,
    ) -> None:
        seeds = [urls] if isinstance(urls, str) else list(urls)
        if not seeds and not peers:
            raise ValueError("give the cluster's seed urls or its peers ([id, url] pairs)")
        if any(not isinstance(u, str) or not u for u in seeds):
            raise ValueError("seed urls must be non-empty strings such as 'tcp://127.0.0.1:8047'")
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        if max_update_size is not None and max_update_size < 1:
            raise ValueError("max_update_size must be >= 1 byte (None: no limit)")
        self.max_update_size = max_update_size
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
        # the process-wide counter by default: ids differ only in the counter within one
        # process and second, so clients with counters of their own (random starts) could
        # draw the same id, and the leader would take the second update for a retry of the first
        self._ids = request_ids or default_generator()
        self._ops: dict[Operation[Any], None] = {}
        self._pending: dict[bytes, Operation[Any]] = {}
        self._out: list[tuple[str, list[bytes]]] = []
        self._events: deque[Event] = deque()
        self._discovery: ConfigOperation | None = None
        self._discovery_waiters: list[Operation[Any]] = []
        self._heartbeat_due: float | None = now if self.heartbeat else None
        self._heartbeat_op: ConfigOperation | None = None
        self.closed = False
        self.closed_by: ClientError | None = None  # what ``abort`` closed it with
        self.dropped_replies = 0
        self.malformed_replies = 0
        self.last_answer: float | None = None  # when a peer last answered one of our requests
        self._answered: dict[str, float] = {}  # peer url -> when it last answered
        #: the sockets use CurveZMQ (set by the client): silence may be a refused handshake
        self.curve = False
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
        if self.max_update_size is not None and len(data) > self.max_update_size:
            raise UpdateTooLargeError(len(data), self.max_update_size)
        rid = self._ids.next(wall) if request_id is None else as_request_id(request_id)
        self._check_rid(rid)
        op = UpdateOperation(self._deadline(now, timeout), rid, bytes(data), url)
        op.wall = wall
        return self._start(op, now)

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
        op = ConfigUpdateOperation(self._deadline(now, timeout), rid, value, url)
        op.wall = wall
        return self._start(op, now)

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
        self.abort(ClientClosedError(), now)

    def abort(self, error: ClientError, now: float) -> None:
        """Close, failing every pending operation with ``error`` (the runtime broke down)."""
        self.now = now
        self.closed = True
        if self.closed_by is None:
            self.closed_by = error
        for op in list(self._ops):
            if not op.done:
                self._end_attempt(op)
                self._fail(op, error, now)
        self._heartbeat_due = None

    def send_failed(self, frames: list[bytes], error: ClientError, now: float) -> None:
        """The runtime could not send ``frames`` (from ``frames_to_send``): no socket could
        be opened for their peer.  The operation they belong to ends with ``error`` at once
        (operations waiting on a discovery that failed so end with it too)."""
        self.now = now
        op = self._pending.get(bytes(frames[0])) if frames else None
        if op is not None:
            self._fail(op, error, now)
            self._prune_discovery()

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
        self.last_answer = now
        if op.url is not None:
            self._answered[op.url] = now
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

    def closed_error(self) -> ClientClosedError:
        """What a call on the closed client raises: why it was closed, if it failed."""
        reason = self.closed_by
        if reason is None or (type(reason) is ClientClosedError and reason.__cause__ is None):
            return ClientClosedError()
        error = ClientClosedError(str(reason))
        error.__cause__ = reason.__cause__ or reason
        return error

    def _deadline(self, now: float, timeout: float | None) -> float | None:
        if self.closed:
            raise self.closed_error()
        self.now = now
        return None if timeout is None or timeout <= 0 else now + timeout

    def _check_rid(self, rid: bytes) -> None:
        if rid in self._pending:
            raise ValueError(f"request id {rid.hex()} is already in use by a pending request")

    def _start(self, op: OpT, now: float) -> OpT:
        self._ops[op] = None
        op.started = now
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
        """Name the peers tried and the likely cause: silence from every peer is a wrong
        secret, a wrong address or no cluster; answers without a leader are an election or a
        lost quorum."""
        tried = list(op.tried) or list(self.urls)
        began = op.started if op.started is not None else self.now
        waited = "" if op.deadline is None else f" within {op.deadline - began:g} s"
        answered = [url for url in tried if self._answered.get(url, -1.0) >= began]
        if op.pinned_url is not None:
            text = f"{op.name}: no answer from {op.pinned_url}{waited}"
        elif answered and isinstance(op, EntriesStream | LeaderWrite | BroadcastUrlOperation):
            text = (
                f"{op.name}: no leader answered{waited} (tried {', '.join(tried)}; "
                f"{', '.join(answered)} answered without leading): the cluster is electing a leader "
                "or has lost its quorum; check that a majority of its peers run"
            )
        elif answered:
            text = (
                f"{op.name}: no usable answer{waited} (tried {', '.join(tried)}; {', '.join(answered)} "
                "answered other requests meanwhile, so it is reachable and the secret matches: it may "
                "not handle this request)"
            )
        else:
            text = f"{op.name}: no peer answered{waited} (tried {', '.join(tried)})"
        if not answered:
            text += (
                "; likely causes: a wrong secret (a peer ignores requests with another cluster's "
                "secret without a word), a wrong address, or no peer running there"
            )
            if self.curve:
                text += (
                    "; CurveZMQ is on: the peer may have refused the handshake (this client's key "
                    "is not allowed there, or the server key given for that peer is wrong; the "
                    "peer logs a refused key), or the peer does not use CurveZMQ"
                )
        if op.deadline is not None:
            text += "; pass timeout=None to wait as long as it takes"
        return RequestTimeoutError(text)

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
    "DEFAULT_MAX_UPDATE_SIZE",
    "ELECTION_GRACE_DELAY",
    "RESPONSE_TIMEOUT",
    "ClientProtocol",
]
