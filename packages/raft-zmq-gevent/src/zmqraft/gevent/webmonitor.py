"""The web monitor of a gevent peer: ``gevent.pywsgi`` serving ``zmqraft.core.webmonitor``.

The core decides what every request gets; this module only speaks WSGI.  Event streams
(``GET /monitor``) are generators reading a queue each: the peer's role and configuration
changes are pushed into it, and a state message goes out whenever a second passes without
one.  ``/peer`` lookups ask the other peer's ROUTER with a single-peer client on a
``zmq.green`` context, so the hub keeps running; ``/status`` asks every other peer for its log
info at the same time (a greenlet and a cached client per peer); ``/metrics`` is the peer's
Prometheus exposition (``metrics.PeerMetrics``).  When the port is taken the server retries
every second, as the original does (and logs that once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import zmq.green
from zmqraft.client import ClientError, PeerClient
from zmqraft.core.client.items import LogInfo
from zmqraft.core.driver import Watcher
from zmqraft.core.raft.node import ConfigChanged, StateChanged
from zmqraft.core.webmonitor import (
    BIND_RETRY,
    PEER_URL_RETRIES,
    PEER_URL_TIMEOUT,
    STATE_INTERVAL,
    STATUS_PEER_TIMEOUT,
    ClusterQuery,
    MetricsRequest,
    PeerLookup,
    Response,
    Stream,
    WebMonitor,
    listen_failed,
    text,
    webmonitor_ssl,
)

import gevent
import gevent.lock
import gevent.queue
from gevent.pywsgi import WSGIServer

if TYPE_CHECKING:
    from .metrics import PeerMetrics

log = logging.getLogger("zmqraft.gevent.webmonitor")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class WebMonitorServer:
    def __init__(
        self, monitor: WebMonitor, watchers: list[Watcher], secret: bytes, metrics: PeerMetrics | None = None
    ) -> None:
        self.monitor = monitor
        self.metrics = metrics
        # peer url -> its /status client, and the lock that lets one greenlet at a time use it
        self._status_clients: dict[str, tuple[PeerClient, gevent.lock.Semaphore]] = {}
        watchers.append(self._on_event)  # the driver's: role and configuration changes
        self.secret = secret
        self._streams: set[gevent.queue.Queue[bytes | None]] = set()
        self._server: WSGIServer | None = None
        self._binder: gevent.Greenlet | None = None
        self._ctx: Any = None  # the zmq.green context of /peer lookups

    @property
    def url(self) -> str:
        return self.monitor.url

    def start(self) -> None:
        """Listen (in the background while the port is taken)."""
        self._binder = gevent.spawn(self._listen)

    def _listen(self) -> None:
        address = self.monitor.address
        context = webmonitor_ssl(address)
        failures = 0
        while True:
            ssl_args = {"ssl_context": context} if context is not None else {}
            server = WSGIServer((address.host, address.port), self._app, log=None, **ssl_args)
            try:
                server.start()
            except OSError as exc:
                failures += 1
                line, again = listen_failed(address, exc, failures)
                if line is not None:
                    log.error("%s", line)
                if not again:
                    return
                gevent.sleep(BIND_RETRY)
                continue
            self._server = server
            log.info("web monitor at %s (listening on %s:%s)", self.url, address.host, address.port)
            return

    def close(self) -> None:
        if self._binder is not None:
            self._binder.kill()
        for queue in list(self._streams):
            queue.put_nowait(None)  # ends the stream
        if self._server is not None:
            self._server.stop(timeout=1)
        for client, _lock in self._status_clients.values():
            client.close()
        self._status_clients.clear()
        if self._ctx is not None:
            self._ctx.term()

    # ---- events of the peer

    def _on_event(self, event: StateChanged | ConfigChanged) -> None:
        message = self.monitor.event_message(event)
        for queue in self._streams:
            queue.put_nowait(message)

    # ---- requests

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        headers = {
            key[5:].replace("_", "-"): str(value) for key, value in environ.items() if key.startswith("HTTP_")
        }
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        result = self.monitor.handle(method, environ.get("PATH_INFO", "/"), query, headers)
        if isinstance(result, PeerLookup):
            result = self.monitor.peer_found(result, self._lookup(result))
        elif isinstance(result, ClusterQuery):
            result = self.monitor.cluster_response(self._log_infos(result), time.monotonic(), time.time())
        elif isinstance(result, MetricsRequest):
            if self.metrics is None:
                result = text(404)
            else:
                result = Response(200, self.metrics.content_type, self.metrics.exposition())
        if isinstance(result, str):
            result = text(404)  # no assets directory: the page is self-contained
        if isinstance(result, Stream):
            start_response("200 OK", list(result.headers))
            return self._stream()
        length = str(len(result.body))
        start_response(
            _status_line(result),
            [("Content-Type", result.content_type), ("Content-Length", length), *result.headers],
        )
        return [] if method == "HEAD" else [result.body]

    def _lookup(self, lookup: PeerLookup) -> str | None:
        if self._ctx is None:
            self._ctx = zmq.green.Context()
        peer = PeerClient(lookup.url, secret=self.secret, timeout=PEER_URL_TIMEOUT, context=self._ctx)
        with peer as client:
            for _ in range(PEER_URL_RETRIES):
                try:
                    return client.request_webmonitor_url()
                except ClientError as exc:
                    log.debug("web monitor of %s: %s", lookup.peer_id, exc)
        return None

    def _log_infos(self, query: ClusterQuery) -> dict[str, LogInfo | None]:
        """Every other peer's log info, asked at the same time (None: no answer in time)."""
        if self._ctx is None:
            self._ctx = zmq.green.Context()

        def ask(url: str) -> LogInfo | None:
            found = self._status_clients.get(url)
            if found is None:
                client = PeerClient(url, secret=self.secret, timeout=STATUS_PEER_TIMEOUT, context=self._ctx)
                found = self._status_clients[url] = (client, gevent.lock.Semaphore())
            client, lock = found
            with lock:  # a blocking client: one request at a time (several pages may poll)
                try:
                    return client.request_log_info()
                except ClientError as exc:
                    log.debug("status of %s: %s", url, exc)
                    return None

        asks = [gevent.spawn(ask, url) for _, url in query.peers]
        gevent.joinall(asks)
        return {peer_id: g.value for (peer_id, _), g in zip(query.peers, asks, strict=True)}

    def _stream(self) -> Iterator[bytes]:
        queue: gevent.queue.Queue[bytes | None] = gevent.queue.Queue()
        self._streams.add(queue)
        try:
            yield self.monitor.open_message()
            while True:
                try:
                    message = queue.get(timeout=STATE_INTERVAL)
                except gevent.queue.Empty:
                    message = self.monitor.state_message()
                if message is None:
                    return
                yield message
        finally:
            self._streams.discard(queue)


def _status_line(response: Response) -> str:
    return f"{response.status} {HTTPStatus(response.status).phrase}"
