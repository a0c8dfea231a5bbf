"""The metrics endpoint of a gevent peer: ``GET /metrics`` from a small ``gevent.pywsgi`` server of its
own (``metrics.enable``); the registry and collector are shared by both runtimes
(``zmqraft.client.prometheus``, docs/metrics.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from zmqraft.client.prometheus import PeerMetrics

from gevent.pywsgi import WSGIServer

__all__ = ["MetricsServer", "PeerMetrics"]

log = logging.getLogger("zmqraft.gevent.metrics")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class MetricsServer:
    """``GET /metrics`` on ``host:port`` without the web monitor (``metrics.enable``).  A port
    that is taken fails the start, as the ROUTER's bind does."""

    def __init__(self, metrics: PeerMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: WSGIServer | None = None

    def start(self) -> None:
        server = WSGIServer((self.host, self.port), self._app, log=None)
        server.start()  # raises OSError when the port is taken
        self._server = server
        log.info("metrics at http://%s:%s/metrics", self.host, self.port)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not Found"]
        body = self.metrics.exposition()
        headers = [("Content-Type", self.metrics.content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop(timeout=1)
