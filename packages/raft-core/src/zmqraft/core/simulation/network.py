"""A simulated ZeroMQ network: delays, loss, duplication, reordering and partitions.

Deliveries are events on the simulator's clock.  Every link (sender, receiver) may be made
FIFO: ZeroMQ over one TCP connection never reorders or duplicates, and followers that behave
like the original rely on that (see raft/progress.py).  Links to or from such peers are FIFO
and never duplicate; every other link suffers the full set of faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    delay_min: float = 0.0005
    delay_max: float = 0.004
    jitter: float = 0.0  # probability of an extra long delay (reordering)
    jitter_max: float = 0.05


@dataclass(slots=True)
class Partition:
    """Messages from a node in ``a`` to a node in ``b`` are lost (and back, if symmetric)."""

    a: frozenset[str]
    b: frozenset[str]
    symmetric: bool
    until: float

    def blocks(self, src: str, dst: str) -> bool:
        if src in self.a and dst in self.b:
            return True
        return self.symmetric and src in self.b and dst in self.a


@dataclass(slots=True)
class Network:
    rng: random.Random
    faults: Faults = field(default_factory=Faults)
    partitions: list[Partition] = field(default_factory=list)
    fifo_nodes: set[str] = field(default_factory=set)
    _last_delivery: dict[tuple[str, str], float] = field(default_factory=dict)

    def blocked(self, src: str, dst: str, now: float) -> bool:
        self.partitions = [p for p in self.partitions if p.until > now]
        return any(p.blocks(src, dst) for p in self.partitions)

    def schedule(self, src: str, dst: str, now: float) -> list[float]:
        """Delivery times for one message from ``src`` to ``dst`` (empty: lost)."""
        if self.blocked(src, dst, now):
            return []
        f = self.faults
        fifo = src in self.fifo_nodes or dst in self.fifo_nodes
        if self.rng.random() < f.loss:
            return []
        times = [now + self.rng.uniform(f.delay_min, f.delay_max)]
        if self.rng.random() < f.jitter:
            times[0] += self.rng.uniform(0, f.jitter_max)
        if not fifo and self.rng.random() < f.duplicate:
            times.append(now + self.rng.uniform(f.delay_min, f.delay_max + f.jitter_max))
        if fifo:
            key = (src, dst)
            at = max(times[0], self._last_delivery.get(key, 0.0))
            self._last_delivery[key] = at
            times = [at]
        return times

    def heal(self) -> None:
        self.partitions.clear()
