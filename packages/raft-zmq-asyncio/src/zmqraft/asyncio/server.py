"""The asyncio runtime: ZeroMQ sockets, a timer and two worker threads around a ``PeerServer``.

Theory of operation.  Everything that decides lives in the core (``zmqraft.core.server``); this
module only moves data:

* inbound: the ROUTER (clients and other peers' requests) and one DEALER per other peer
  (their replies) are watched with ``loop.add_reader(socket.FD)``.  ZeroMQ signals that FD
  edge-triggered, so a wake-up drains every socket with non-blocking receives until all are
  empty, feeds the whole batch to the core and only then drains the core's outputs once
  (DESIGN.md property 5); the loop repeats until a round finds nothing, which also re-arms
  the edge after our own sends;
* outputs, in this order: jobs (storage jobs go to the storage worker, apply jobs to the
  state-machine worker), events (role and configuration changes: DEALERs are connected or
  closed to match the configuration before frames to a new peer are sent), frames;
* one timer, ``loop.call_later``, re-armed from ``server.get_timer()`` after every batch;
* storage: one worker task hands each ``Job`` to a thread (``anyio.to_thread``) and waits for
  it: one job in flight, and the core puts everything that arrived meanwhile into the next
  job (group commit).  A job in flight is shielded from cancellation, so a shutdown waits
  for its fsync;
* shutdown (``close()``): stop reading, let the workers finish the job in flight, send what
  that releases, close the sockets (the ROUTER and PUB linger 2 s for replies already
  queued), then the state machine, the log and the persistence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import anyio
import zmq
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.raft.node import ApplyJob, ConfigChanged, ConfigCommitted, Job, RaftError, StateChanged
from zmqraft.core.server import ChannelKind, ClientRequest
from zmqraft.core.statemachine import dispatch_client_request, run_apply_job
from zmqraft.core.storage.executor import StorageExecutor

log = logging.getLogger("zmqraft.asyncio")

RECV_BATCH = 1000  # messages taken from one socket before the outputs are drained
ROUTER_LINGER_MS = 2000
PUB_LINGER_MS = 2000
SLOW_PUMP = 0.1  # seconds: a round this long delays heartbeats noticeably (warned about)
SLOW_STORAGE = 0.15  # seconds: a write this slow holds acknowledgements near election timeouts


class _Poll:
    """The compaction watcher's request to the storage worker."""


class ZmqRaft:
    """One peer: the sockets and workers around an ``AssembledPeer`` (see ``build``).

    Use ``async with raft:`` (starts it; leaving the block closes it gracefully) or run
    ``await raft.serve()`` in a task group.  ``close()`` may be called from the event loop at
    any time; ``await raft.wait_closed()`` returns when everything is closed."""

    def __init__(
        self,
        peer: AssembledPeer,
        *,
        listeners: dict[str, Callable[..., Any] | None] | None = None,
        dealer_hwm: int | None = None,
    ) -> None:
        self.peer = peer
        self.server = peer.server
        self.state_machine = peer.state_machine
        self.listeners = dict(listeners if listeners is not None else peer.options.get("listeners") or {})
        opts = peer.raft_options
        # The original sends one RPC at a time on a DEALER with SNDHWM 1; this core pipelines
        # up to max_inflight_messages AppendEntries per follower, so the DEALER must hold that
        # many (a message over the limit is dropped and retransmitted by the core).
        self.dealer_hwm = dealer_hwm or opts.max_inflight_messages + 2
        self._executor = StorageExecutor(peer.log, peer.persistence)
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None  # made by serve()
        self._router: zmq.Socket[bytes] | None = None
        self._pub: zmq.Socket[bytes] | None = None
        self._dealers: dict[str, tuple[str, zmq.Socket[bytes]]] = {}  # peer id -> (url, socket)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._storage_tx: MemoryObjectSendStream[Job | _Poll]
        self._storage_rx: MemoryObjectReceiveStream[Job | _Poll]
        self._apply_tx: MemoryObjectSendStream[ApplyJob]
        self._apply_rx: MemoryObjectReceiveStream[ApplyJob]
        self._storage_tx, self._storage_rx = anyio.create_memory_object_stream(math.inf)
        self._apply_tx, self._apply_rx = anyio.create_memory_object_stream(math.inf)
        self._close_requested = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._started = False
        self._watching = False
        self._last_state: StateChanged | None = None
        self.error: BaseException | None = None
        self.dropped_sends = 0
        self.bound_url: str | None = None
        self.label: str | None = peer.options.get("label")

    # ================================================================ public

    @property
    def id(self) -> str:
        return self.server.id

    @property
    def url(self) -> str:
        """The address clients and peers reach this peer at."""
        return self.peer.url or self.bound_url or self.peer.router_bind

    def close(self, error: BaseException | None = None) -> None:
        """Ask for a graceful shutdown (idempotent); ``error`` is kept in ``self.error``."""
        if error is not None and self.error is None:
            self.error = error
        self._close_requested.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def __aenter__(self) -> ZmqRaft:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._tg.start(self.serve)
        except BaseException as exc:
            with contextlib.suppress(BaseException):  # the same failure in a group: raise it plain
                await self._tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()  # serve() ends gracefully; an exception of the body propagates as it is
        await self._tg.__aexit__(None, None, None)

    async def serve(self, *, task_status: TaskStatus[ZmqRaft] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the sockets and run until ``close()``; then shut down gracefully."""
        if self._started:
            raise RuntimeError("a ZmqRaft serves once")
        self._started = True
        self._loop = asyncio.get_running_loop()
        try:
            self._open_sockets()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._storage_worker)
                tg.start_soon(self._apply_worker)
                if self.peer.install_path is not None:
                    tg.start_soon(self._compaction_watcher)
                self._pump()
                log.info("%s: listening at %s", self.id, self.url)
                task_status.started(self)
                await self._close_requested.wait()
                self._closing = True
                self._stop_reading()
                tg.cancel_scope.cancel()  # the workers finish the job they are in first
            self._send_outputs()  # what the last durable job released
        finally:
            self._closing = True
            self._stop_reading()
            with anyio.CancelScope(shield=True):  # also when serve() itself is cancelled
                await self._close_all()
            self._closed.set()
            listener = self.listeners.get("close")
            if listener is not None:
                listener()
            log.info("%s: closed", self.id)

    # ================================================================ sockets

    def _open_sockets(self) -> None:
        ctx = self._ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, ROUTER_LINGER_MS)
        self._router = router
        bind = self.peer.router_bind
        router.bind(bind)
        self.bound_url = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._watch(router)
        pub_bind = self.state_machine.broadcast_bind
        if pub_bind is not None:
            pub = ctx.socket(zmq.PUB)
            pub.setsockopt(zmq.LINGER, PUB_LINGER_MS)
            pub.bind(pub_bind)
            self._pub = pub
        self._connect_peers(self.server.node.config)

    def _watch(self, sock: zmq.Socket[bytes]) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._pump)

    def _unwatch(self, sock: zmq.Socket[bytes]) -> None:
        if self._loop is not None and not sock.closed:
            self._loop.remove_reader(sock.fileno())

    def _connect_peers(self, config: ClusterConfig) -> None:
        """One DEALER per other peer of ``config`` (reconnected when its url changed)."""
        wanted = dict(config.others(self.id))
        for peer_id, (url, sock) in list(self._dealers.items()):
            if wanted.get(peer_id) != url:
                log.debug("%s: disconnect from %s at %s", self.id, peer_id, url)
                self._unwatch(sock)
                sock.close(0)
                del self._dealers[peer_id]
        for peer_id, url in wanted.items():
            if peer_id in self._dealers:
                continue
            assert self._ctx is not None
            sock = self._ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, self.dealer_hwm)
            sock.setsockopt(zmq.RECONNECT_IVL, max(1, int(self.peer.raft_options.rpc_timeout * 1000)))
            sock.connect(url)
            self._dealers[peer_id] = (url, sock)
            self._watch(sock)
            log.debug("%s: connected to %s at %s", self.id, peer_id, url)

    def _stop_reading(self) -> None:
        if self._router is not None:
            self._unwatch(self._router)
        for _url, sock in self._dealers.values():
            self._unwatch(sock)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _close_all(self) -> None:
        for _url, sock in self._dealers.values():
            sock.close(0)
        self._dealers.clear()
        for lingering in (self._router, self._pub):
            if lingering is not None:
                lingering.close()  # keeps its LINGER: queued replies still leave
        try:
            self.state_machine.close()
        finally:
            self.peer.log.close()
            close = getattr(self.peer.persistence, "close", None)
            if close is not None:
                close()
            if self._ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                await anyio.to_thread.run_sync(self._ctx.term)

    # ================================================================ the pump

    def _pump(self) -> None:
        """Drain every socket, feed the core, drain its outputs; until nothing moves."""
        if self._closing:
            return
        server = self.server
        router = self._router
        assert router is not None
        began = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                wall = time.time()
                received = 0
                for _ in range(RECV_BATCH):
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    received += 1
                    server.receive_router(frames[0], frames[1:], now, wall)
                for peer_id, (_url, sock) in list(self._dealers.items()):
                    for _ in range(RECV_BATCH):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        received += 1
                        server.receive_peer(peer_id, frames, now, wall)
                sent = self._drain(now, wall)
                if not received and not sent and not self._readable():
                    break
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc)
            return
        self._arm_timer()
        busy = time.monotonic() - began
        if busy > SLOW_PUMP:
            log.warning("%s: the event loop was busy for %.0f ms in one round", self.id, busy * 1000)

    def _readable(self) -> bool:
        """Does any socket hold input?  (Reading EVENTS also re-arms the edge-triggered FD.)"""
        assert self._router is not None
        if _events(self._router) & zmq.POLLIN:
            return True
        return any(_events(sock) & zmq.POLLIN for _url, sock in self._dealers.values())

    def _drain(self, now: float, wall: float) -> int:
        """Jobs, then events, then frames (see the module docstring); returns frames sent."""
        server = self.server
        machine = self.state_machine
        while (job := server.next_job()) is not None:
            if isinstance(job, Job):
                self._storage_tx.send_nowait(job)
            elif machine.blocking:
                self._apply_tx.send_nowait(job)
            else:
                server.complete_job(job, now, wall, run_apply_job(machine, job, self.peer.log))
        while (event := server.next_event()) is not None:
            self._on_event(event)
        return self._send_outputs()

    def _send_outputs(self) -> int:
        count = 0
        for channel, frames in self.server.frames_to_send():
            kind = channel.kind
            try:
                if kind is ChannelKind.ROUTER:
                    assert self._router is not None
                    self._router.send(channel.address, _MORE)
                    _send(self._router, frames)
                elif kind is ChannelKind.PEER:
                    dealer = self._dealers.get(channel.address)
                    if dealer is None:
                        self.dropped_sends += 1
                        continue
                    _send(dealer[1], frames)
                elif self._pub is not None:
                    _send(self._pub, frames)
                count += 1
            except zmq.Again:
                self.dropped_sends += 1  # a full queue: the core retransmits what matters
            except zmq.ZMQError as exc:
                if exc.errno == zmq.ENOTSOCK:
                    continue  # closed during shutdown
                raise
        return count

    def _on_event(self, event: Any) -> None:
        if isinstance(event, StateChanged):
            # the core repeats an unchanged state (e.g. once per RequestVote it answers)
            if event == self._last_state:
                return
            self._last_state = event
            log.info(
                "%s: %s term=%d leader=%s", self.id, event.role.value, event.term, event.leader_id or "-"
            )
            self._guarded("on_raft_state", self.state_machine.on_raft_state, event.role, event.term)
            self._call("state", event.role, event.term)
        elif isinstance(event, ConfigChanged):
            log.info("%s: configuration %s", self.id, event.config)
            self._connect_peers(event.config)
            self._call("config", event.config)
        elif isinstance(event, ClientRequest):
            machine = self.state_machine
            if not self._guarded("on_client_request", dispatch_client_request, machine, self.server, event):
                log.debug("%s: no handler for client request type %r", self.id, event.type[:16])
        elif isinstance(event, ConfigCommitted):
            log.info("%s: joint configuration committed at %d", self.id, event.joint_index)
        elif isinstance(event, RaftError):
            log.error("%s: raft error: %s", self.id, event.message)
            self._call("error", event)

    def _call(self, name: str, *args: Any) -> None:
        listener = self.listeners.get(name)
        if listener is not None:
            self._guarded(f"the {name} listener", listener, *args)

    def _guarded(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """User code called from the pump: a failure is logged, never fatal to the peer."""
        try:
            return call(*args)
        except Exception:
            log.exception("%s: %s failed", self.id, what)
            return None

    def _arm_timer(self) -> None:
        deadline = self.server.get_timer()
        if deadline == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None and not self._closing:
            self._timer = self._loop.call_later(max(0.0, deadline - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closing:
            return
        try:
            self.server.handle_timer(time.monotonic(), time.time())
        except Exception as exc:
            log.exception("%s: fatal error in a timer", self.id)
            self.close(exc)
            return
        self._pump()

    # ================================================================ workers

    async def _storage_worker(self) -> None:
        """One storage job (or compaction poll) at a time, each in a worker thread."""
        async for item in self._storage_rx:
            with anyio.CancelScope(shield=True):  # a started fsync is always finished
                try:
                    if isinstance(item, Job):
                        began = time.monotonic()
                        await anyio.to_thread.run_sync(self._executor.run, item)
                        took = time.monotonic() - began
                        if took > SLOW_STORAGE:
                            log.warning("%s: a storage job took %.0f ms (slow disk?)", self.id, took * 1000)
                    else:
                        meta = await anyio.to_thread.run_sync(self.peer.log.poll_install_path)  # type: ignore[attr-defined]
                        if meta is not None:
                            log.info("%s: compaction snapshot installed: %s", self.id, meta)
                            self.server.snapshot_installed(time.monotonic())
                except Exception as exc:
                    if isinstance(item, _Poll):
                        log.error("%s: compaction snapshot refused, no longer watching: %s", self.id, exc)
                        self._watching = False
                        continue
                    log.exception("%s: storage failed", self.id)
                    self.close(exc)
                    return
            if isinstance(item, Job):
                self.server.complete_job(item, time.monotonic(), time.time())
            if self._closing:
                self._send_outputs()
            else:
                self._pump()

    async def _apply_worker(self) -> None:
        machine = self.state_machine
        async for job in self._apply_rx:
            with anyio.CancelScope(shield=True):
                try:
                    last = await anyio.to_thread.run_sync(run_apply_job, machine, job, self.peer.log)
                except Exception as exc:
                    log.exception("%s: the state machine failed", self.id)
                    self.close(exc)
                    return
            self.server.complete_job(job, time.monotonic(), time.time(), last)
            if self._closing:
                self._send_outputs()
            else:
                self._pump()

    async def _compaction_watcher(self) -> None:
        interval = int(self.peer.options["data"]["compact"]["watchInterval"]) / 1000.0
        self._watching = True
        while self._watching:
            await anyio.sleep(interval)
            self._storage_tx.send_nowait(_Poll())


def _events(sock: zmq.Socket[bytes]) -> int:
    return int(sock.getsockopt(zmq.EVENTS))


# Plain-int flags: pyzmq's send_multipart combines its enum flags once per frame, which costs
# three times the send itself for an AppendEntries of ten entries.
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)


def _send(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send a multipart message without blocking (raises zmq.Again on a full queue; a ROUTER
    or PUB drops instead, a DEALER raises before the first frame leaves)."""
    send = sock.send
    for frame in frames[:-1]:
        send(frame, _MORE)
    send(frames[-1], _LAST)
