"""A peer's Prometheus metrics, for both server runtimes: the core's metric families
(``zmqraft.core.metrics.families``) read at scrape time through a ``prometheus_client``
collector, one registry per peer so that several peers in one process do not mix.  Only the
HTTP serving is a runtime's (docs/metrics.md).  It lives beside ``sockets`` for the same
reason: every runtime depends on this package; ``prometheus_client`` comes with the
``metrics`` extra, which the runtimes require."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from zmqraft.core.metrics import Family, families


class Driven(Protocol):
    """The peer driver (``zmqraft.core.driver.PeerDriver``): its endpoint is what is read."""

    @property
    def server(self) -> Any: ...


class Counted(Protocol):
    """The peer's sockets (``PeerSockets``): the sends they dropped."""

    @property
    def dropped_sends(self) -> int: ...


class PeerCollector:
    """A ``prometheus_client`` collector of one peer: nothing is copied until a scrape."""

    def __init__(self, driver: Driven, sockets: Counted, label: str | None = None) -> None:
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

    def __init__(self, driver: Driven, sockets: Counted, label: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PeerCollector(driver, sockets, label))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["PeerCollector", "PeerMetrics", "prometheus_family"]
