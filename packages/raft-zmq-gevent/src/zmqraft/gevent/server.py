"""The gevent runtime: ZeroMQ sockets, one greenlet and two workers around a ``PeerServer``.

Theory of operation.  Everything that decides lives in the core (``zmqraft.core.server``; what
its events mean: ``zmqraft.core.runtime``); the sockets are ``zmqraft.client.serving``'s
``PeerSockets``, shared with the asyncio runtime.  This module only waits and moves data:

* inbound: the ROUTER (clients and other peers' requests) and one DEALER per other peer
  (their replies).  A hub ``io`` watcher on each socket's ``zmq.FD`` only sets a wake-up
  event; the serving greenlet then drains every socket with non-blocking receives until all
  are empty, feeds the whole batch to the core and only then drains the core's outputs once
  (DESIGN.md property 5).  A round repeats until it finds nothing and ``zmq.EVENTS`` shows no
  input, which also re-arms ZeroMQ's edge-triggered FD after our own sends;
* outputs, in this order: jobs (storage jobs go to the storage worker, apply jobs to the
  state-machine worker), events (DEALERs are connected or closed to match the configuration
  before frames to a new peer are sent), frames;
* one timer: the serving greenlet waits for the wake-up event at most until
  ``server.get_timer()``;
* storage: a worker greenlet hands each ``Job`` to a thread of the hub's threadpool and waits
  for it, so an fsync never blocks the hub: one job in flight, and the core puts everything
  that arrived meanwhile into the next job (group commit).  Workers are never killed: a
  shutdown waits for the job in flight;
* shutdown (``close()``): stop reading, let the workers finish the job in flight, send what
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
from zmqraft.client.serving import PollInstallPath, RuntimePeer
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.jobs import ApplyJob, Job
from zmqraft.core.statemachine import run_apply_job

import gevent
import gevent.event
import gevent.queue

if TYPE_CHECKING:
    from .webmonitor import WebMonitorServer

log = logging.getLogger("zmqraft.gevent")

_READ = 1  # the hub loop's READ event (libev and libuv alike)


class _Stop:
    """Wakes an idle worker at shutdown."""


class ZmqRaft(RuntimePeer):
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
    ) -> None:
        self._hub: Any = None  # gevent's hub and its threadpool, of the thread that starts us
        self._pool: Any = None
        self._watchers: dict[int, Any] = {}  # socket FD -> the hub's io watcher
        self._wake = gevent.event.Event()
        self._close_requested = gevent.event.Event()
        self._closed = gevent.event.Event()
        self._storage_q: gevent.queue.Queue[Job | PollInstallPath | _Stop] = gevent.queue.Queue()
        self._apply_q: gevent.queue.Queue[ApplyJob | _Stop] = gevent.queue.Queue()
        self._greenlets: list[gevent.Greenlet] = []  # serve, workers, watcher
        self._workers: list[gevent.Greenlet] = []
        self._closing = False
        self._started = False
        super().__init__(peer, log, listeners=listeners, dealer_hwm=dealer_hwm)
        self.web: WebMonitorServer | None = None
        if self.monitor is not None:
            from .webmonitor import WebMonitorServer  # its HTTP library only when enabled

            self.web = WebMonitorServer(self.monitor, self._events, self.secret)

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
            self._open_sockets()
        except BaseException:
            self._closing = True
            self._stop_reading()
            self._close_all()
            self._finish()
            raise
        self._workers = [gevent.spawn(self._storage_worker), gevent.spawn(self._apply_worker)]
        self._greenlets = [gevent.spawn(self._serve), *self._workers]
        if self.peer.install_path is not None:
            self._greenlets.append(gevent.spawn(self._compaction_watcher))
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
        watcher.start(self._wake.set)
        self._watchers[fd] = watcher

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
            self._close_files()
        finally:
            ctx = self.sockets.ctx
            if ctx is not None:  # waits for lingering messages (at most the 2 s LINGER)
                self._pool.apply(ctx.term)

    def _finish(self) -> None:
        self._closed.set()
        self._events.call("close")
        log.info("%s: closed", self.id)

    # ================================================================ the serving greenlet

    def _serve(self) -> None:
        """Pump on every wake-up and at the core's deadline until ``close()``; then shut down."""
        server = self.server
        try:
            while True:
                self._round()
                if self._close_requested.is_set():
                    break
                deadline = server.get_timer()
                delay = None if deadline is None else deadline - time.monotonic()
                if delay is not None and delay <= 0:
                    gevent.sleep(0)  # overdue: still let the hub run (I/O, finished jobs) first
                else:
                    self._wake.wait(delay)
                self._wake.clear()
                if self._close_requested.is_set():
                    break
                now = time.monotonic()
                deadline = server.get_timer()
                if deadline is not None and now >= deadline:
                    server.handle_timer(now, time.time())
        except Exception as exc:
            log.exception("%s: fatal error in the event loop", self.id)
            self.close(exc, wait=False)
        finally:
            self._closing = True
            self._stop_reading()
            if self.web is not None:
                self.web.close()
            for queue in (self._storage_q, self._apply_q):
                queue.put_nowait(_Stop())
            for greenlet in self._greenlets[3:]:  # the compaction watcher only sleeps
                greenlet.kill()
            gevent.joinall(self._workers)  # they finish the job in flight, then stop
            try:
                self._send_outputs()  # what the last durable job released
            finally:
                try:
                    self._close_all()
                finally:
                    self._finish()

    def _store(self, job: Job) -> None:
        self._storage_q.put_nowait(job)

    def _apply(self, job: ApplyJob) -> None:
        self._apply_q.put_nowait(job)

    # ================================================================ workers

    def _storage_worker(self) -> None:
        """One storage job (or compaction poll) at a time, each in a threadpool thread."""
        while True:
            item = self._storage_q.get()
            if isinstance(item, _Stop) or self._closing:
                return
            if isinstance(item, PollInstallPath):
                self._polled(self._pool.apply(self._poll_install_path))
                continue
            try:
                self._pool.apply(self._write, (item,))
            except Exception as exc:
                log.exception("%s: storage failed", self.id)
                self.close(exc, wait=False)
                return
            self.server.complete_job(item, time.monotonic(), time.time())
            self._wake.set()  # the serving greenlet sends what this released

    def _apply_worker(self) -> None:
        """One batch of committed entries at a time, applied in a threadpool thread."""
        machine = self.state_machine
        while True:
            job = self._apply_q.get()
            if isinstance(job, _Stop) or self._closing:
                return
            try:
                last = self._pool.apply(run_apply_job, (machine, job, self.peer.log))
                self.server.complete_job(job, time.monotonic(), time.time(), last)
            except Exception as exc:
                log.exception("%s: the state machine failed", self.id)
                self.close(exc, wait=False)
                return
            self._wake.set()

    def _compaction_watcher(self) -> None:
        while self._watching and not self._closing:
            gevent.sleep(self.watch_interval)
            self._storage_q.put_nowait(PollInstallPath())
