"""Prometheus metrics of an asyncio peer: the core's metric families
(``zmqraft.core.metrics.families``) read at scrape time through a ``prometheus_client``
collector, served at ``/metrics`` by the web monitor and, with ``metrics.enable``, by a small
aiohttp server of their own (docs/metrics.md).  Each peer has a registry of its own, so
several peers in one process do not mix."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from zmqraft.client.sockets import PeerSockets
from zmqraft.core.driver import PeerDriver
from zmqraft.core.metrics import Family, families

log = logging.getLogger("zmqraft.asyncio.metrics")


class PeerCollector:
    """A ``prometheus_client`` collector of one peer: nothing is copied until a scrape."""

    def __init__(self, driver: PeerDriver, sockets: PeerSockets, label: str | None = None) -> None:
        self.driver = driver
        self.sockets = sockets
        self.label = label

    def collect(self) -> Iterator[Metric]:
        server = self.driver.server
        for family in families(server, time.monotonic(), self.sockets.dropped_sends, self.label):
            yield prometheus_family(family)


def prometheus_family(family: Family) -> Metric:
    """A core ``Family`` as a ``prometheus_client`` metric family."""
    if family.kind == "histogram":
        return HistogramMetricFamily(
            family.name,
            family.help,
            buckets=[(le, float(n)) for le, n in family.buckets],
            sum_value=family.sum,
        )
    labels = [name for name, _ in family.samples[0][0]] if family.samples else []
    metric: GaugeMetricFamily | CounterMetricFamily
    if family.kind == "counter":
        metric = CounterMetricFamily(family.name, family.help, labels=labels)
    else:
        metric = GaugeMetricFamily(family.name, family.help, labels=labels)
    for sample_labels, value in family.samples:
        metric.add_metric([v for _, v in sample_labels], value)
    return metric


class PeerMetrics:
    """The registry of one peer and its exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, driver: PeerDriver, sockets: PeerSockets, label: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PeerCollector(driver, sockets, label))  # type: ignore[arg-type]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


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
