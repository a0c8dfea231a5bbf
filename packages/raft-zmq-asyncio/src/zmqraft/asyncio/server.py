"""The asyncio runtime: how a peer waits on asyncio.  Everything that decides is the core's
``PeerDriver`` (``zmqraft.core.driver``); the sockets are ``zmqraft.client.sockets``'s
``PeerSockets``, shared with the gevent runtime.  This module only waits:

* inbound: the ROUTER and every DEALER are watched with ``loop.add_reader(socket.FD)``; a
  wake-up runs ``sockets.pump``, which drains every socket into the driver and acts on its
  rounds until nothing moves;
* one timer, ``loop.call_later``, re-armed from ``driver.next_deadline()`` after each pump;
* work: each lane (storage, apply) is a task that runs one ``Work`` at a time in a worker
  thread (``anyio.to_thread``), reports it with ``driver.complete`` and pumps.  Work in
  flight is shielded from cancellation, so a shutdown waits for its fsync;
* shutdown (``close()``): stop reading, let the lanes finish the work in flight, send what
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
from zmqraft.client.sockets import PeerSockets, pump
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.driver import Lane, PeerDriver, Work
from zmqraft.core.server import PeerServer

if TYPE_CHECKING:
    from .webmonitor import WebMonitorServer

log = logging.getLogger("zmqraft.asyncio")

Lanes = dict[Lane, MemoryObjectSendStream[Work]]


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
        inline_storage: bool = False,
    ) -> None:
        self.peer = peer
        self.driver = PeerDriver.of(peer, listeners=listeners, logger=log)
        self.driver.inline_storage = inline_storage  # see build()
        self.state_machine = peer.state_machine
        self.error: BaseException | None = None
        self.sockets = PeerSockets(
            peer.id,
            dealer_hwm=dealer_hwm or peer.dealer_hwm,
            reconnect_ivl=peer.raft_options.rpc_timeout,
            watch=self._watch,
            unwatch=self._unwatch,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._lanes: Lanes = {}
        self._receivers: dict[Lane, MemoryObjectReceiveStream[Work]] = {}
        for lane in Lane:
            self._lanes[lane], self._receivers[lane] = anyio.create_memory_object_stream[Work](math.inf)
        self._close_requested = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._started = False
        self.web: WebMonitorServer | None = None
        if self.driver.monitor is not None:
            from .webmonitor import WebMonitorServer  # its HTTP library only when enabled

            self.web = WebMonitorServer(self.driver.monitor, self.driver.watchers, peer.secret)

    @property
    def id(self) -> str:
        return self.peer.id

    @property
    def server(self) -> PeerServer:
        """The peer's endpoint (``server.node`` is its Raft node: role, term, log)."""
        return self.peer.server

    @property
    def secret(self) -> bytes:
        return self.peer.secret

    @property
    def url(self) -> str:
        """The address clients and peers reach this peer at."""
        return self.peer.url or self.sockets.bound_url or self.peer.router_bind

    @property
    def dropped_sends(self) -> int:
        """Messages a full queue (or a peer without a connection) dropped."""
        return self.sockets.dropped_sends

    # ================================================================ public

    def close(self, error: BaseException | None = None) -> None:
        """Ask for a graceful shutdown (idempotent); ``error`` is kept in ``self.error``."""
        if error is not None and self.error is None:
            self.error = error
        if not self._started:  # built, never served: release the files now
            self._started = self._closing = True
            self.peer.close()
            self._closed.set()
            self.driver.close()
            return
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
            peer = self.peer
            self.sockets.open(peer.router_bind, self.state_machine.broadcast_bind, peer.others)
            async with anyio.create_task_group() as tg:
                for lane in Lane:
                    tg.start_soon(self._lane, self._receivers[lane])
                self._pump()
                if self.web is not None:
                    await self.web.start()
                log.info("%s: listening at %s", self.id, self.url)
                task_status.started(self)
                await self._close_requested.wait()
                self._closing = True
                self._stop_reading()
                tg.cancel_scope.cancel()  # the lanes finish the work they are in first
            self.sockets.send(self.driver.round(time.monotonic(), time.time()))  # what it released
        finally:
            self._closing = True
            self._stop_reading()
            with anyio.CancelScope(shield=True):  # also when serve() itself is cancelled
                if self.web is not None:
                    await self.web.close()
                await self._close_all()
            self._closed.set()
            self.driver.close()
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
            self.sockets.close()
            self.peer.close()
        finally:
            ctx = self.sockets.ctx
            if ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                await anyio.to_thread.run_sync(ctx.term)

    # ================================================================ waiting

    def _pump(self) -> None:
        """Drain, act, re-arm the timer (see ``zmqraft.client.sockets.pump``)."""
        if self._closing:
            return
        try:
            pump(self.sockets, self.driver, self._start)
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc)
            return
        if self.driver.failure is not None:
            self.close(self.driver.failure)
            return
        self._arm_timer()

    def _start(self, work: Work) -> None:
        self._lanes[work.lane].send_nowait(work)

    def _arm_timer(self) -> None:
        deadline = self.driver.next_deadline()
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
            self.driver.handle_timer(time.monotonic(), time.time())
        except Exception as exc:
            log.exception("%s: fatal error in a timer", self.id)
            self.close(exc)
            return
        self._pump()

    async def _lane(self, works: MemoryObjectReceiveStream[Work]) -> None:
        """One work item at a time, each in a worker thread; a failure closes the peer."""
        async for work in works:
            with anyio.CancelScope(shield=True):  # a started fsync is always finished
                outcome = await anyio.to_thread.run_sync(work.run)
            self.driver.complete(work, outcome, time.monotonic(), time.time())
            if self.driver.failure is not None:
                self.close(self.driver.failure)
                return
            if self._closing:
                self.sockets.send(self.driver.round(time.monotonic(), time.time()))
            else:
                self._pump()
