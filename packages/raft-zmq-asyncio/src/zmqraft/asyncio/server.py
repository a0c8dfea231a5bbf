"""The asyncio runtime: how a peer waits on asyncio.  Everything that decides is the core's
``PeerDriver`` (``zmqraft.core.driver``); the sockets are ``zmqraft.client.sockets``'s
``PeerSockets``, shared with the gevent runtime.  This module only waits:

* inbound: the ROUTER and every DEALER are watched with ``loop.add_reader(socket.FD)``; a
  wake-up runs ``sockets.pump``, which drains every socket into the driver and acts on its
  rounds until nothing moves;
* one timer, ``loop.call_later``, re-armed from ``driver.next_deadline()`` after each pump;
* work: each lane (storage, apply) is a thread of its own (``LaneThread``) that runs one
  ``Work`` at a time; the loop hears of each outcome through ``call_soon_threadsafe``,
  reports it with ``driver.complete`` and pumps.  A shutdown, even a cancelled one, waits for
  the work the lanes hold (a started fsync is always finished);
* shutdown (``close()``): stop reading, let the lanes finish the work in flight, send what
  that releases, close the sockets (the ROUTER and PUB linger 2 s for replies already
  queued), then the state machine, the log and the persistence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import zmq
from anyio.abc import TaskStatus
from zmqraft.client.sockets import Handover, PeerSockets, pump
from zmqraft.core import metrics as core_metrics
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.driver import Lane, PeerDriver, Work

if TYPE_CHECKING:
    from .metrics import MetricsServer, PeerMetrics
    from .webmonitor import WebMonitorServer

log = logging.getLogger("zmqraft.asyncio")


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
        self.driver = PeerDriver.of(peer, listeners=listeners, logger=log, inline_storage=inline_storage)
        self.state_machine = peer.state_machine
        self.error: BaseException | None = None
        self.sockets = PeerSockets.of(peer, watch=self._watch, unwatch=self._unwatch, dealer_hwm=dealer_hwm)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._lanes: dict[Lane, LaneThread] = {}  # started by serve()
        self._close_requested = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._started = False
        self.web: WebMonitorServer | None = None
        self.metrics: PeerMetrics | None = None
        self.metrics_server: MetricsServer | None = None
        metrics_bind = core_metrics.metrics_bind(peer.options)
        if self.driver.monitor is not None or metrics_bind is not None:
            from .metrics import MetricsServer, PeerMetrics  # its libraries only when enabled

            self.metrics = PeerMetrics(self.driver, self.sockets, peer.options.get("label"))
            if metrics_bind is not None:
                self.metrics_server = MetricsServer(self.metrics, *metrics_bind)
        if self.driver.monitor is not None:
            from .webmonitor import WebMonitorServer  # its HTTP library only when enabled

            self.web = WebMonitorServer(self.driver.monitor, self.driver.watchers, peer.secret, self.metrics)

    @property
    def id(self) -> str:
        return self.peer.id

    @property
    def url(self) -> str:
        """The address clients and peers reach this peer at."""
        return self.sockets.url_of(self.peer)

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
        loop = self._loop = asyncio.get_running_loop()
        try:
            peer = self.peer
            self.sockets.open(peer.router_bind, self.state_machine.broadcast_bind, peer.others)
            self._lanes = {lane: LaneThread(f"{self.id}-{lane.value}", loop, self._done) for lane in Lane}
            self._pump()
            if self.web is not None:
                await self.web.start()
            if self.metrics_server is not None:
                await self.metrics_server.start()
            log.info("%s: listening at %s", self.id, self.url)
            task_status.started(self)
            await self._close_requested.wait()
        finally:
            self._closing = True
            self._stop_reading()
            with anyio.CancelScope(shield=True):  # also when serve() itself is cancelled
                for lane in self._lanes.values():
                    await lane.stop()  # the work they hold is finished (a started fsync too)
                self.sockets.send(self.driver.round(time.monotonic(), time.time()))  # what it released
                if self.web is not None:
                    await self.web.close()
                if self.metrics_server is not None:
                    await self.metrics_server.close()
                await self._close_all()
            self._closed.set()
            self.driver.close()
            log.info("%s: closed", self.id)

    # ================================================================ sockets

    def _watch(self, sock: zmq.Socket[bytes]) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._readable, sock)

    def _readable(self, sock: zmq.Socket[bytes]) -> None:
        self.sockets.readable(sock)
        self._pump(True)

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
        except Exception as exc:  # logged in one line by the peer; the exit status shows it
            if self.error is None:
                self.error = exc
        finally:
            ctx = self.sockets.ctx
            if ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                await anyio.to_thread.run_sync(ctx.term)

    # ================================================================ waiting

    def _pump(self, input_only: bool = False) -> None:
        """Drain, act, re-arm the timer (see ``zmqraft.client.sockets.pump``)."""
        if self._closing:
            return
        try:
            pump(self.sockets, self.driver, self._start, self._wait, input_only=input_only)
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc)
            return
        if self.driver.failure is not None:
            self.close(self.driver.failure)
            return
        self._arm_timer()

    def _start(self, work: Work) -> None:
        self._lanes[work.lane].put(work, waited=work.wait > 0)

    def _wait(self, work: Work, timeout: float) -> bool:
        done, outcome = self._lanes[work.lane].wait(work, timeout)
        if done:
            self.driver.complete(work, outcome, time.monotonic(), time.time())
        return done

    def _arm_timer(self) -> None:
        deadline = self.driver.next_deadline()
        armed = self._timer_at
        if self._timer is not None and armed is not None and (deadline is None or armed <= deadline):
            # the armed timer fires first: early is harmless (nothing is due yet, and it arms
            # again), while moving it on every pump cost a cancel and a call_later a wake-up
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

    def _done(self, work: Work, outcome: Any) -> None:
        """A lane finished ``work`` (on the loop): report it, then pump what it released."""
        self.driver.complete(work, outcome, time.monotonic(), time.time())
        if self.driver.failure is not None:
            self.close(self.driver.failure)
        elif self._closing:
            self.sockets.send(self.driver.round(time.monotonic(), time.time()))
        else:
            self._pump()


class LaneThread:
    """One lane: a thread that runs its work in the order handed out; each outcome comes back
    to the event loop through ``call_soon_threadsafe``.  Cheaper than a task awaiting
    ``anyio.to_thread`` per item (no task switch, no capacity limiter, no worker hand-over),
    which showed up in the leader's profile.

    Work put with ``waited`` may instead be waited for by the loop (``wait``): its outcome
    then goes straight to the waiting thread (``Handover``), and only to the loop if the
    wait gave up first."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, done: Callable[[Work, Any], None]) -> None:
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._loop = loop
        self._done = done
        self._handover = Handover()
        self._thread = threading.Thread(target=self._run, name=f"zmqraft-{name}", daemon=True)
        self._thread.start()

    def put(self, work: Work, *, waited: bool = False) -> None:
        if waited:
            self._handover.expect(work)
        self._queue.put(work)

    def wait(self, work: Work, timeout: float) -> tuple[bool, Any]:
        """See ``Handover.wait``."""
        return self._handover.wait(work, timeout)

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            outcome = work.run()  # never raises: a failure is a Failure outcome
            if self._handover.deliver(work, outcome):
                continue
            try:
                self._loop.call_soon_threadsafe(self._done, work, outcome)
            except RuntimeError:  # the loop is closed: nobody to tell
                return

    async def stop(self) -> None:
        """Finish what was handed out, then end the thread (its last outcomes are reported
        before this returns: they were queued on the loop first)."""
        self._queue.put(None)
        await anyio.to_thread.run_sync(self._thread.join)
