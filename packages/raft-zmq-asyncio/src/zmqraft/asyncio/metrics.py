"""The metrics endpoint of an asyncio peer: ``GET /metrics`` from a small aiohttp server of its
own (``metrics.enable``); the registry and collector are shared by both runtimes
(``zmqraft.client.prometheus``, docs/metrics.md)."""

from __future__ import annotations

import logging

from aiohttp import web
from zmqraft.client.prometheus import PeerMetrics

__all__ = ["MetricsServer", "PeerMetrics"]

log = logging.getLogger("zmqraft.asyncio.metrics")


class MetricsServer:
    """``GET /metrics`` on ``host:port`` without the web monitor (``metrics.enable``).  A port
    that is taken fails the start, as the ROUTER's bind does."""

    def __init__(self, metrics: PeerMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self.close()
            raise
        log.info("metrics at http://%s:%s/metrics", self.host, self.port)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": self.metrics.content_type}
        )

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
