"""Moving frames between ZeroMQ sockets and a sans-IO client endpoint (no decisions here).

One DEALER per peer URL rather than one DEALER connected to every peer: the core then says
exactly which peer a request goes to ("the leader", "the peer after the one that timed
out") instead of relying on ZeroMQ's round-robin, which skips nothing and cannot be
steered; retries, fail-over and RequestEntries follow-ups stay deterministic and testable
in the core, and a reply's socket never matters (replies are matched by request id).

``pump`` is the whole loop body: receive everything that arrived (non-blocking, until each
socket is empty), fire due timers, send what the endpoint queued, apply its events
(close the sockets of removed peers, point the SUB socket at the leader's publisher), and
repeat until nothing moves.  ``SyncDriver`` sleeps in a ``zmq.Poller`` (a ``zmq.green``
poller for green contexts, so it yields to other greenlets); ``AsyncDriver`` watches the
sockets' file descriptors with ``loop.add_reader`` and arms one ``call_later`` timer.

Failures never hang an operation: a socket that cannot be opened (``Too many open files``)
ends the operation that needed it with ``ConnectError`` at once, and any other error inside
an ``AsyncDriver`` round (where no caller would see it) is logged once and closes the client,
failing every pending operation with that error as the cause.  The socket budget: clients
without a ``context`` share ``shared_context()``, which allows ``SHARED_MAX_SOCKETS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import zmq
from zmqraft.core.client import (
    ClientClosedError,
    ClientProtocol,
    Completed,
    ConnectError,
    ItemsReady,
    Operation,
    PeersChanged,
    Phase,
    Readable,
    Subscribe,
    SubscriberProtocol,
)
from zmqraft.core.curve_keys import ClientKeys, CurveKeyError

from .sockets import has_input, receive, send

log = logging.getLogger("zmqraft.client")
T = TypeVar("T")

clock = time.monotonic


# The original's DEALER takes 2 (one socket round-robins over every peer).  With one DEALER
# per peer, a deep queue lets 64 updates in flight reach the leader in one batch (0.63 -> 0.89
# of a raw DEALER's rate, bench/bench_client.py); what a dead peer's queue holds is re-sent
# elsewhere with the same request ids, and answers nobody waits for are dropped.
HIGHWATERMARK = 1000
SEND_QUEUE_LIMIT = 10000  # messages queued per peer beyond the socket's SNDHWM
# Sockets of the context clients share when given none: a client opens one DEALER per peer it
# talks to (2 or 3 for a 3-peer cluster; a subscriber adds a SUB), so ZeroMQ's default of
# 1023 ends near 400 clients; 8192 covers a few thousand (each socket also costs this process
# an open file or two: see the README's socket budget for ``ulimit -n``).
SHARED_MAX_SOCKETS = 8192
# The largest message part a client accepts (replies, entries, snapshot chunks, broadcasts):
# above any entry a cluster holds by default (maxLogEntryDataSize 10 MiB) and any chunk
# (peerMsgDataSize), so a misdirected or hostile sender cannot make it buffer gigabytes.
DEFAULT_MAX_MESSAGE_SIZE = 64 << 20

_shared: zmq.Context[Any] | None = None
_shared_lock = threading.Lock()


def shared_context() -> zmq.Context[Any]:
    """``zmq.Context.instance()``, with room for ``SHARED_MAX_SOCKETS`` sockets.  (ZeroMQ sizes
    a context when its first socket opens: if the application opened sockets on the instance
    before any client, the instance keeps the budget it had.)"""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            ctx: zmq.Context[Any] = zmq.Context.instance()
            if ctx.get(zmq.MAX_SOCKETS) < SHARED_MAX_SOCKETS:
                ctx.set(zmq.MAX_SOCKETS, min(SHARED_MAX_SOCKETS, ctx.get(zmq.SOCKET_LIMIT)))
            _shared = ctx
        return _shared


def peer_of(proto: ClientProtocol) -> Callable[[str], str | None]:
    """The peer id at a url, from the client's current view of the cluster."""

    def lookup(url: str) -> str | None:
        for peer_id, peer_url in proto.peers:
            if peer_url == url:
                return peer_id
        return None

    return lookup


def connect_error(url: str, exc: zmq.ZMQError | CurveKeyError, context: zmq.Context[Any]) -> ConnectError:
    """A socket to ``url`` could not be opened or connected: say why and what to do."""
    if isinstance(exc, CurveKeyError):
        return ConnectError(url, str(exc), "give the client that peer's public key (curve=)")
    if exc.errno != errno.EMFILE:
        return ConnectError(url, str(exc), "check the url (tcp://host:port)")
    try:
        import resource  # not on Windows

        files = str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except ImportError:
        files = "a limited number of"
    return ConnectError(
        url,
        str(exc),
        f"the ZeroMQ context allows {context.get(zmq.MAX_SOCKETS)} sockets and this process "
        f"{files} open files (ulimit -n); every client holds a socket per peer it talks to: close "
        "clients no longer needed, share one client, or raise the limits (the zmq-raft-client "
        "README's 'Socket budget')",
    )


class Endpoint(Protocol):
    def receive(self, frames: list[bytes], now: float) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def get_timer(self) -> float | None: ...
    def frames_to_send(self) -> list[tuple[str, list[bytes]]]: ...
    def next_event(self) -> Any: ...
    def abort(self, error: Any, now: float) -> None: ...


def client_of(endpoint: Endpoint) -> ClientProtocol:
    if isinstance(endpoint, SubscriberProtocol):
        return endpoint.client
    assert isinstance(endpoint, ClientProtocol)
    return endpoint


class Sockets:
    """The DEALERs (one per peer URL, created on first use) and the optional SUB socket."""

    def __init__(
        self,
        context: zmq.Context[Any] | None,
        *,
        highwatermark: int = HIGHWATERMARK,
        sockopts: Mapping[int, Any] | None = None,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        curve: ClientKeys | None = None,
        peer_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.context: zmq.Context[Any] = context if context is not None else shared_context()
        #: CurveZMQ keys (None: plaintext); ``peer_of(url)``: the peer id at a url, if known
        self.curve = curve
        self.peer_of = peer_of or (lambda url: None)
        self.highwatermark = highwatermark
        # ZMQ_MAXMSGSIZE: libzmq drops a connection that sends a larger part before we see it
        limit = {int(zmq.MAXMSGSIZE): max_message_size} if max_message_size else {}
        self.sockopts = limit | dict(sockopts or {})
        self.dealers: dict[str, zmq.Socket[Any]] = {}
        self.sub: zmq.Socket[Any] | None = None
        self.sub_url: str | None = None
        self.version = 0  # changes whenever a socket is opened or closed
        self.on_open: Callable[[zmq.Socket[Any]], None] | None = None
        self.on_close: Callable[[zmq.Socket[Any]], None] | None = None
        self.queues: dict[str, deque[list[bytes]]] = {}  # per URL, what SNDHWM refused
        self.dropped_sends = 0

    @classmethod
    def for_client(
        cls,
        proto: ClientProtocol,
        curve: ClientKeys | str | os.PathLike[str] | None,
        context: zmq.Context[Any] | None,
        **options: Any,
    ) -> Sockets:
        """The sockets of a client speaking ``proto`` (``options``: as ``Sockets``).  ``curve``:
        keys, a certificate directory (its ``client.key_secret`` and every peer's ``ID.key``)
        or None (plaintext); every seed url and known peer must have a server key, a
        ``CurveKeyError`` now rather than a silent timeout later."""
        keys = curve if curve is None or isinstance(curve, ClientKeys) else ClientKeys.from_directory(curve)
        if keys is not None:
            known = {url: peer_id for peer_id, url in proto.peers}
            for url in [*known, *proto.seeds]:
                keys.server_key(url, known.get(url))
        proto.curve = keys is not None
        return cls(context, curve=keys, peer_of=peer_of(proto), **options)

    @property
    def all(self) -> list[zmq.Socket[Any]]:
        socks = list(self.dealers.values())
        if self.sub is not None:
            socks.append(self.sub)
        return socks

    def _opened(self, sock: zmq.Socket[Any]) -> None:
        self.version += 1
        if self.on_open is not None:
            self.on_open(sock)

    def _close(self, sock: zmq.Socket[Any]) -> None:
        self.version += 1
        if self.on_close is not None and not sock.closed:
            self.on_close(sock)
        sock.close(linger=0)

    def dealer(self, url: str) -> zmq.Socket[Any]:
        sock = self.dealers.get(url)
        if sock is None:
            server_key = None if self.curve is None else self.curve.server_key(url, self.peer_of(url))
            sock = self.context.socket(zmq.DEALER)
            try:
                if server_key is not None:
                    self._curve_client(sock, server_key)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.SNDHWM, self.highwatermark)
                for option, value in self.sockopts.items():
                    sock.setsockopt(option, value)
                sock.connect(url)
            except zmq.ZMQError:
                sock.close(0)
                raise
            self.dealers[url] = sock
            self._opened(sock)
        return sock

    def _curve_client(self, sock: zmq.Socket[Any], server_key: bytes) -> None:
        assert self.curve is not None
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.curve.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.curve.secret)

    def send(self, url: str, frames: list[bytes]) -> None:
        """Send now, or queue behind what the socket could not take yet (SNDHWM reached)."""
        sock = self.dealer(url)
        queue = self.queues.get(url)
        if queue:
            if len(queue) >= SEND_QUEUE_LIMIT:
                # an unreachable peer: the oldest requests have long been retried elsewhere
                queue.popleft()
                self.dropped_sends += 1
            queue.append(frames)
            return
        try:
            send(sock, frames)
        except zmq.Again:
            self.queues.setdefault(url, deque()).append(frames)

    def flush(self) -> int:
        """Move queued messages into sockets that can take them now; returns how many."""
        sent = 0
        for url, queue in list(self.queues.items()):
            sock = self.dealers.get(url)
            while queue and sock is not None:
                try:
                    send(sock, queue[0])
                except zmq.Again:
                    break
                queue.popleft()
                sent += 1
            if not queue or sock is None:
                del self.queues[url]
        return sent

    def waiting_to_send(self) -> list[zmq.Socket[Any]]:
        return [self.dealers[url] for url in self.queues if url in self.dealers]

    def keep_only(self, urls: set[str]) -> None:
        for url in [u for u in self.dealers if u not in urls]:
            self.queues.pop(url, None)
            self._close(self.dealers.pop(url))

    def subscribe(self, url: str, prefix: bytes, peer_url: str | None = None) -> None:
        """Connect the SUB socket to the publisher at ``url``; with CurveZMQ, with the key of
        the peer that publishes there (its ROUTER at ``peer_url``)."""
        if self.curve is not None and self.sub_url != url and self.sub is not None:
            self._close(self.sub)  # a CURVE client's server key is fixed per socket: a new one
            self.sub = None
            self.sub_url = None
        if self.sub is None:
            server_key = None if self.curve is None else self._publisher_key(url, peer_url)
            self.sub = self.context.socket(zmq.SUB)
            if server_key is not None:
                self._curve_client(self.sub, server_key)
            self.sub.setsockopt(zmq.LINGER, 0)
            if zmq.MAXMSGSIZE in self.sockopts:
                self.sub.setsockopt(zmq.MAXMSGSIZE, self.sockopts[zmq.MAXMSGSIZE])
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix)
            self._opened(self.sub)
        if self.sub_url != url:
            if self.sub_url is not None:
                with contextlib.suppress(zmq.ZMQError):
                    self.sub.disconnect(self.sub_url)
            self.sub.connect(url)
            self.sub_url = url
            log.debug("subscribed to %s", url)

    def _publisher_key(self, url: str, peer_url: str | None) -> bytes:
        """The key of the peer publishing at ``url``: keyed by the PUB url itself, else by the
        peer (its ROUTER url or id)."""
        assert self.curve is not None
        key = self.curve.servers.get(url)
        if key is not None or peer_url is None:
            return key if key is not None else self.curve.server_key(url)
        return self.curve.server_key(peer_url, self.peer_of(peer_url))

    def receive_all(self, endpoint: Endpoint, now: float) -> int:
        """Feed every waiting message to the endpoint; returns how many there were.  (Asking
        ``EVENTS`` first costs a fraction of the ``zmq.Again`` an empty receive raises.)"""
        count = 0
        for sock in list(self.dealers.values()):
            while has_input(sock):
                count += 1
                endpoint.receive(receive(sock), now)
        sub = self.sub
        if sub is not None and isinstance(endpoint, SubscriberProtocol):
            while has_input(sub):
                count += 1
                endpoint.receive_broadcast(receive(sub), now)
        return count

    def close(self) -> None:
        for sock in self.all:
            self._close(sock)
        self.dealers.clear()
        self.queues.clear()
        self.sub = None
        self.sub_url = None


def pump(endpoint: Endpoint, sockets: Sockets, on_event: Callable[[Any], None] | None = None) -> None:
    """Run the endpoint until it is quiet: receive, fire timers, send, apply events."""
    client = client_of(endpoint)
    while True:
        now = clock()
        moved = sockets.flush()
        moved += sockets.receive_all(endpoint, now)
        timer = endpoint.get_timer()
        if timer is not None and timer <= now:
            endpoint.handle_timer(now)
            moved += 1
        for url, frames in endpoint.frames_to_send():
            try:
                sockets.send(url, frames)
            except (zmq.ZMQError, CurveKeyError) as exc:  # no socket for that peer: its operation fails now
                client.send_failed(frames, connect_error(url, exc, sockets.context), now)
            moved += 1
        while (event := endpoint.next_event()) is not None:
            if isinstance(event, PeersChanged):
                busy = {op.url for op in client.operations if op.url is not None and op.phase is Phase.SENT}
                sockets.keep_only(set(event.urls) | set(client.seeds) | busy)
            elif isinstance(event, Subscribe):
                try:
                    sockets.subscribe(event.url, event.prefix, event.peer_url)
                except (zmq.ZMQError, CurveKeyError) as exc:  # no SUB socket: the subscriber cannot go on
                    endpoint.abort(connect_error(event.url, exc, sockets.context), now)
            if on_event is not None:
                on_event(event)
        if not moved:
            return


def _poller_class(context: zmq.Context[Any]) -> type[zmq.Poller]:
    green = sys.modules.get("zmq.green")
    if green is not None and isinstance(context, green.Context):
        poller: type[zmq.Poller] = green.Poller
        return poller
    return zmq.Poller


class SyncDriver:
    """Blocking: poll the sockets until a condition holds (green-aware)."""

    def __init__(self, endpoint: Endpoint, sockets: Sockets) -> None:
        self.endpoint = endpoint
        self.sockets = sockets
        self._poller_class = _poller_class(sockets.context)
        self._poller: zmq.Poller | None = None
        self._version = -1
        self._writers = False
        self.listener: Callable[[Any], None] | None = None  # sees every event

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Drive until ``done()``; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else clock() + timeout
        while True:
            pump(self.endpoint, self.sockets, self.listener)
            if done():
                return True
            now = clock()
            if deadline is not None and now >= deadline:
                return False
            wake = self.endpoint.get_timer()
            if deadline is not None:
                wake = deadline if wake is None else min(wake, deadline)
            wait_ms = None if wake is None else max(0, int((wake - now) * 1000) + 1)
            self._poll(wait_ms)

    def run_op(self, op: Operation[T]) -> T:
        """Drive until ``op`` is done: its result, or its error raised.  Interrupted
        (KeyboardInterrupt, gevent.Timeout, ...), the request is forgotten."""
        try:
            self.run_until(lambda: op.done)
        except BaseException:
            if not op.done:
                client_of(self.endpoint).cancel(op, clock())
            raise
        return op.result()

    def _poll(self, wait_ms: int | None) -> None:
        waiting = self.sockets.waiting_to_send()
        if self._version != self.sockets.version or self._poller is None or waiting or self._writers:
            self._poller = self._poller_class()
            for sock in self.sockets.all:
                self._poller.register(sock, zmq.POLLIN | (zmq.POLLOUT if sock in waiting else 0))
            self._version = self.sockets.version
            self._writers = bool(waiting)
        if not self.sockets.all:
            # nothing to wait on (every request waits for a timer): sleep the green/plain way
            if wait_ms is None:
                raise RuntimeError("the client has nothing to wait for")
            sleep = _sleep_for(self.sockets.context)
            sleep(wait_ms / 1000)
            return
        self._poller.poll(wait_ms)


def _sleep_for(context: zmq.Context[Any]) -> Callable[[float], None]:
    green = sys.modules.get("zmq.green")
    if green is not None and isinstance(context, green.Context):
        sleep: Callable[[float], None] = importlib.import_module("gevent").sleep
        return sleep
    return time.sleep


class AsyncDriver:
    """asyncio: readers on the sockets' file descriptors, one timer, futures per operation."""

    def __init__(self, endpoint: Endpoint, sockets: Sockets, loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint = endpoint
        self.sockets = sockets
        self.loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._futures: dict[Any, asyncio.Future[None]] = {}
        self._readers: dict[Any, asyncio.Event] = {}  # stream (or the subscriber) -> wake-up
        self._pumping = False
        self.closed = False
        self.listener: Callable[[Any], None] | None = None  # sees every event
        sockets.on_open = self._watch
        sockets.on_close = self._unwatch
        for sock in sockets.all:
            self._watch(sock)

    def _watch(self, sock: zmq.Socket[Any]) -> None:
        self.loop.add_reader(sock, self.pump)

    def _unwatch(self, sock: zmq.Socket[Any]) -> None:
        self.loop.remove_reader(sock)

    def pump(self) -> None:
        if self._pumping or self.closed:
            return
        self._pumping = True
        try:
            pump(self.endpoint, self.sockets, self._on_event)
        except Exception as exc:
            # a callback of the event loop: nobody would see this error, and every timer and
            # readable socket would raise it again; end the client, once, loudly
            self._pumping = False
            self._abort(exc)
            return
        finally:
            self._pumping = False
        self._arm()

    def _abort(self, exc: Exception) -> None:
        log.error("the client failed and was closed: %r", exc, exc_info=exc)
        error = ClientClosedError(f"the client failed and was closed: {exc!r}; create a new client")
        error.__cause__ = exc
        self.endpoint.abort(error, clock())
        with contextlib.suppress(Exception):
            while (event := self.endpoint.next_event()) is not None:
                self._on_event(event)
        self.close()
        with contextlib.suppress(Exception):
            self.sockets.close()

    def _arm(self) -> None:
        wake = self.endpoint.get_timer()
        if wake == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = wake
        if wake is not None:
            self._timer = self.loop.call_later(max(0.0, wake - clock()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self.pump()

    def _on_event(self, event: Any) -> None:
        if self.listener is not None:
            self.listener(event)
        if isinstance(event, Completed):
            fut = self._futures.pop(event.operation, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
            self._wake(event.operation)
        elif isinstance(event, Readable):
            self._wake(event.stream)
        elif isinstance(event, ItemsReady):
            self._wake(self.endpoint)

    def _wake(self, key: Any) -> None:
        flag = self._readers.get(key)
        if flag is not None:
            flag.set()

    async def wait(self, op: Any) -> None:
        """Until the core operation ``op`` is done."""
        self.pump()
        if op.done:
            return
        fut = self.loop.create_future()
        self._futures[op] = fut
        try:
            await fut
        except asyncio.CancelledError:
            self._futures.pop(op, None)
            if not op.done:
                client_of(self.endpoint).cancel(op, clock())
                self.pump()
            raise

    async def readable(self, key: Any, timeout: float | None = None) -> None:
        """Until ``key`` (a stream, or the endpoint itself) may have something new."""
        flag = self._readers.setdefault(key, asyncio.Event())
        flag.clear()
        self.pump()
        if flag.is_set():
            return
        if timeout is None:
            await flag.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flag.wait(), timeout)

    def forget(self, key: Any) -> None:
        self._readers.pop(key, None)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fut in self._futures.values():
            if not fut.done():
                fut.set_result(None)
        self._futures.clear()
        for flag in self._readers.values():
            flag.set()
