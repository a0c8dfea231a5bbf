"""The asyncio runtime: ZeroMQ sockets, a timer and two worker threads around a ``PeerServer``.

Theory of operation.  Everything that decides lives in the core (``zmqraft.core.server``; what
its events mean: ``zmqraft.core.runtime``); the sockets are ``zmqraft.client.serving``'s
``PeerSockets``, shared with the gevent runtime.  This module only waits and moves data:

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
from typing import TYPE_CHECKING, Any

import anyio
import zmq
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from zmqraft.client.serving import PollInstallPath, RuntimePeer
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.jobs import ApplyJob, Job
from zmqraft.core.statemachine import run_apply_job

if TYPE_CHECKING:
    from .webmonitor import WebMonitorServer

log = logging.getLogger("zmqraft.asyncio")

class ZmqRaft(RuntimePeer):
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._storage_tx: MemoryObjectSendStream[Job | PollInstallPath]
        self._storage_rx: MemoryObjectReceiveStream[Job | PollInstallPath]
        self._apply_tx: MemoryObjectSendStream[ApplyJob]
        self._apply_rx: MemoryObjectReceiveStream[ApplyJob]
        self._storage_tx, self._storage_rx = anyio.create_memory_object_stream(math.inf)
        self._apply_tx, self._apply_rx = anyio.create_memory_object_stream(math.inf)
        self._close_requested = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._started = False
        super().__init__(peer, log, listeners=listeners, dealer_hwm=dealer_hwm)
        self.web: WebMonitorServer | None = None
        if self.monitor is not None:
            from .webmonitor import WebMonitorServer  # its HTTP library only when enabled

            self.web = WebMonitorServer(self.monitor, self._events, self.secret)

    # ================================================================ public

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
                if self.web is not None:
                    await self.web.start()
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
                if self.web is not None:
                    await self.web.close()
                await self._close_all()
            self._closed.set()
            self._events.call("close")
            log.info("%s: closed", self.id)

    # ================================================================ sockets

    def _watch(self, sock: zmq.Socket[bytes]) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._pump)

    def _unwatch(self, sock: zmq.Socket[bytes]) -> None:
        if self._loop is not None and not sock.closed:
            self._loop.remove_reader(sock.fileno())

    def _stop_reading(self) -> None:
        self.sockets.stop_reading()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _close_all(self) -> None:
        try:
            self._close_files()
        finally:
            ctx = self.sockets.ctx
            if ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                await anyio.to_thread.run_sync(ctx.term)

    # ================================================================ the pump

    def _pump(self) -> None:
        """One round (``RuntimePeer._round``), then the timer re-armed."""
        if self._closing:
            return
        try:
            self._round()
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc)
            return
        self._arm_timer()

    def _store(self, job: Job) -> None:
        self._storage_tx.send_nowait(job)

    def _apply(self, job: ApplyJob) -> None:
        self._apply_tx.send_nowait(job)

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
            if isinstance(item, PollInstallPath):
                with anyio.CancelScope(shield=True):
                    self._polled(await anyio.to_thread.run_sync(self._poll_install_path))
                continue
            with anyio.CancelScope(shield=True):  # a started fsync is always finished
                try:
                    await anyio.to_thread.run_sync(self._write, item)
                except Exception as exc:
                    log.exception("%s: storage failed", self.id)
                    self.close(exc)
                    return
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
        while self._watching:
            await anyio.sleep(self.watch_interval)
            self._storage_tx.send_nowait(PollInstallPath())
