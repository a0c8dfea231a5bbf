"""The gevent runtime: how a peer waits on gevent.  Everything that decides is the core's
``PeerDriver`` (``zmqraft.core.driver``); the sockets are ``zmqraft.client.sockets``'s
``PeerSockets``, shared with the asyncio runtime.  This module only waits:

* inbound: a hub ``io`` watcher on each socket's ``zmq.FD`` only sets a wake-up event; the
  serving greenlet then runs ``sockets.pump``, which drains every socket into the driver
  and acts on its rounds until nothing moves and ``zmq.EVENTS`` shows no input (which also
  re-arms ZeroMQ's edge-triggered FD after our own sends);
* one timer: the serving greenlet waits for the wake-up event at most until
  ``driver.next_deadline()``;
* work: each lane (storage, apply) is a greenlet that hands one ``Work`` at a time to a
  thread of the hub's threadpool, so an fsync never blocks the hub, reports it with
  ``driver.complete`` and wakes the serving greenlet.  Lanes are never killed: a shutdown
  waits for the work in flight;
* shutdown (``close()``): stop reading, let the lanes finish the work in flight, send what
  that releases, close the sockets (the ROUTER and PUB linger 2 s for replies already
  queued), then the state machine, the log and the persistence.

The sockets are plain ``zmq`` sockets, not ``zmq.green`` ones: this runtime only ever sends and
receives with ``NOBLOCK`` and waits on ``zmq.FD`` itself, which is all ``zmq.green`` adds, while
its per-call ``EVENTS`` bookkeeping made each message 3 to 10 times slower (measured).

Everything here runs in the hub's thread; call ``close()`` from a greenlet of that thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import zmq
from zmqraft.client.sockets import Handover, PeerSockets, pump
from zmqraft.core import metrics as core_metrics
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.driver import Lane, PeerDriver, Work

import gevent
import gevent.event
import gevent.lock
import gevent.monkey
import gevent.queue

if TYPE_CHECKING:
    from .metrics import MetricsServer, PeerMetrics
    from .webmonitor import WebMonitorServer

log = logging.getLogger("zmqraft.gevent")

_READ = 1  # the hub loop's READ event (libev and libuv alike)


class _Stop:
    """Wakes an idle worker at shutdown."""


_native_lock = gevent.monkey.get_original("_thread", "allocate_lock")  # blocks the thread itself


class _Waited:
    """Work the serving greenlet may wait for (``Work.wait``), run in a threadpool thread at
    once; its outcome is handed over natively (``Handover`` with an unpatched lock), so that
    waiting blocks the hub's thread itself instead of going through the hub, which is what
    spares the hand-offs; if the wait gives up, ``result`` reports it through the hub."""

    def __init__(self, work: Work, pool: Any) -> None:
        self.work = work
        self.reported = False
        self.handover = Handover(_native_lock)
        self.handover.expect(work)
        self.result = pool.spawn(self._run)

    def _run(self) -> Any:  # in the pool's thread
        outcome = self.work.run()
        self.handover.deliver(self.work, outcome)
        return outcome


class ZmqRaft:
    """One peer: the sockets and greenlets around an ``AssembledPeer`` (see ``build``).

    ``start()`` opens the sockets and spawns the greenlets; ``close()`` shuts down gracefully
    and (from any greenlet but the peer's own) waits until it is done; ``wait_closed()``
    waits for that.  ``with build(options) as raft:`` starts it and closes it on leaving."""

    def __init__(
        self,
        peer: AssembledPeer,
        *,
        listeners: dict[str, Callable[..., Any] | None] | None = None,
        dealer_hwm: int | None = None,
        inline_storage: bool = False,
    ) -> None:
        self._hub: Any = None  # gevent's hub and its threadpool, of the thread that starts us
        self._pool: Any = None
        self._watchers: dict[int, Any] = {}  # socket FD -> the hub's io watcher
        self._wake = gevent.event.Event()
        self._close_requested = gevent.event.Event()
        self._closed = gevent.event.Event()
        self._lanes: dict[Lane, gevent.queue.Queue[Work | _Stop]] = {
            lane: gevent.queue.Queue() for lane in Lane
        }
        self._greenlets: list[gevent.Greenlet] = []  # serve, lanes
        self._workers: list[gevent.Greenlet] = []
        self._closing = False
        self._started = False
        self._completed = False  # a lane finished work since the last pump
        self._gates = {lane: gevent.lock.Semaphore() for lane in Lane}  # one item per lane at a time
        self._waited: _Waited | None = None  # started work the serving greenlet may wait for
        self.peer = peer
        self.driver = PeerDriver.of(peer, listeners=listeners, logger=log, inline_storage=inline_storage)
        self.state_machine = peer.state_machine
        self.error: BaseException | None = None
        self.sockets = PeerSockets.of(peer, watch=self._watch, unwatch=self._unwatch, dealer_hwm=dealer_hwm)
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

    @property
    def closed(self) -> bool:
        return bool(self._closed.is_set())

    def start(self) -> ZmqRaft:
        """Bind and connect the sockets, spawn the greenlets and return at once.  A failure to
        bind raises here, after everything was closed."""
        if self._started:
            raise RuntimeError("a ZmqRaft serves once")
        self._started = True
        self._hub = gevent.get_hub()  # of the thread that runs the peer
        self._pool = self._hub.threadpool
        try:
            peer = self.peer
            self.sockets.open(peer.router_bind, self.state_machine.broadcast_bind, peer.others)
            if self.metrics_server is not None:
                self.metrics_server.start()
        except BaseException:
            self._closing = True
            self._stop_reading()
            self._close_all()
            self._finish()
            raise
        self._workers = [gevent.spawn(self._lane, queue) for queue in self._lanes.values()]
        self._greenlets = [gevent.spawn(self._serve), *self._workers]
        if self.web is not None:
            self.web.start()
        log.info("%s: listening at %s", self.id, self.url)
        return self

    def close(self, error: BaseException | None = None, *, wait: bool = True) -> None:
        """Shut down gracefully (idempotent); ``error`` is kept in ``self.error``.  Waits until
        closed when ``wait`` and when not called from the peer's own greenlets (a listener or
        the state machine may call it too)."""
        if error is not None and self.error is None:
            self.error = error
        if not self._started:  # built, never started: release the files
            self._started = self._closing = True
            self._close_all()
            self._finish()
            return
        self._close_requested.set()
        self._wake.set()
        if wait and gevent.getcurrent() not in self._greenlets:
            self._closed.wait()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block this greenlet until the peer is closed; False if ``timeout`` passed first."""
        return bool(self._closed.wait(timeout))

    def __enter__(self) -> ZmqRaft:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ================================================================ sockets

    def _watch(self, sock: zmq.Socket[bytes]) -> None:
        fd = sock.fileno()
        watcher = self._hub.loop.io(fd, _READ)
        watcher.start(self._readable, sock)
        self._watchers[fd] = watcher

    def _readable(self, sock: zmq.Socket[bytes]) -> None:
        self.sockets.readable(sock)
        self._wake.set()

    def _unwatch(self, sock: zmq.Socket[bytes]) -> None:
        """Before the socket closes: a watcher must not outlive its FD."""
        if sock.closed:
            return
        watcher = self._watchers.pop(sock.fileno(), None)
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def _stop_reading(self) -> None:
        self.sockets.stop_reading()

    def _close_all(self) -> None:
        try:
            self.sockets.close()
            self.peer.close()
        except Exception as exc:  # logged in one line by the peer; the exit status shows it
            if self.error is None:
                self.error = exc
        finally:
            ctx = self.sockets.ctx
            if ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                self._pool.apply(ctx.term)

    def _finish(self) -> None:
        self._closed.set()
        self.driver.close()
        log.info("%s: closed", self.id)

    # ================================================================ the serving greenlet

    def _serve(self) -> None:
        """Pump on every wake-up and at the driver's deadline until ``close()``; then shut down."""
        driver = self.driver
        input_only = False  # woken by socket readiness alone: see zmqraft.client.sockets.pump
        try:
            while True:
                pump(self.sockets, driver, self._start, self._wait, input_only=input_only)
                if driver.failure is not None:
                    self.close(driver.failure, wait=False)
                if self._close_requested.is_set():
                    break
                deadline = driver.next_deadline()
                delay = None if deadline is None else deadline - time.monotonic()
                if delay is not None and delay <= 0:
                    gevent.sleep(0)  # overdue: still let the hub run (I/O, finished work) first
                else:
                    self._wake.wait(delay)
                self._wake.clear()
                if self._close_requested.is_set():
                    break
                input_only = not self._completed
                self._completed = False
                now = time.monotonic()
                deadline = driver.next_deadline()
                if deadline is not None and now >= deadline:
                    driver.handle_timer(now, time.time())
                    input_only = False
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc, wait=False)
        finally:
            self._closing = True
            self._stop_reading()
            if self.web is not None:
                self.web.close()
            if self.metrics_server is not None:
                self.metrics_server.close()
            for queue in self._lanes.values():
                queue.put_nowait(_Stop())
            gevent.joinall(self._workers)  # they finish the work in flight, then stop
            waited = self._waited
            if waited is not None:  # a write not waited for to its end: it ends first
                self._report(waited, waited.result.get())
            try:
                self.sockets.send(driver.round(time.monotonic(), time.time()))  # what it released
            finally:
                try:
                    self._close_all()
                finally:
                    self._finish()

    def _start(self, work: Work) -> None:
        if work.wait and self._gates[work.lane].acquire(blocking=False):  # its lane is idle
            self._waited = _Waited(work, self._pool)
            return
        self._lanes[work.lane].put_nowait(work)

    def _wait(self, work: Work, timeout: float) -> bool:
        """Block the hub until ``work`` has run, at most ``timeout`` seconds; report it."""
        waited = self._waited
        if waited is None or waited.work is not work:
            return False
        done, outcome = waited.handover.wait(work, timeout)
        if done:
            self._report(waited, outcome)
            return True
        waited.result.rawlink(lambda result: self._report(waited, result.value, wake=True))
        return False

    def _report(self, waited: _Waited, outcome: Any, wake: bool = False) -> None:
        """Waited-for work has run: free its lane and complete it (once)."""
        if waited.reported:
            return
        waited.reported = True
        if self._waited is waited:
            self._waited = None
        work = waited.work
        self._gates[work.lane].release()
        self.driver.complete(work, outcome, time.monotonic(), time.time())
        if self.driver.failure is not None:
            self.close(self.driver.failure, wait=False)
        elif wake:
            self._completed = True
            self._wake.set()  # the serving greenlet sends what this released

    # ================================================================ lanes

    def _lane(self, queue: gevent.queue.Queue[Work | _Stop]) -> None:
        """One work item at a time, each in a threadpool thread; a failure closes the peer."""
        driver = self.driver
        while True:
            work = queue.get()
            if isinstance(work, _Stop) or self._closing:
                return
            with self._gates[work.lane]:  # after work the serving greenlet waited for
                outcome = self._pool.apply(work.run)
            driver.complete(work, outcome, time.monotonic(), time.time())
            if driver.failure is not None:
                self.close(driver.failure, wait=False)
                return
            self._completed = True
            self._wake.set()  # the serving greenlet sends what this released
