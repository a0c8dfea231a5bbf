"""CPU of the sans-IO core per committed update, per role, without ZeroMQ, threads or disks.

Three in-process peers (``PeerServer`` + ``PeerDriver`` over ``MemoryLog``, the default
``BroadcastStateMachine``) wired frame by frame: the leader gets ``--batch`` RequestUpdates per
round, its AppendEntries go to both followers, their acknowledgements come back, replies are
counted.  Each peer's calls are timed with ``time.process_time`` so the figures are CPU µs per
committed update of the leader and of a follower (less the cost of the clock reads
themselves, ~1.6 µs a pair here, measured at the start): the part of the cluster bench's CPU column
that is Python in the core (the rest is pyzmq, the event loop, syscalls and fdatasync).

    python bench/bench_core_path.py [--updates 60000] [--batch 16] [--profile leader|follower]

Deterministic and I/O-free, so it is a stable A/B for a change to the core's hot path even
on a busy machine (take the best of ``--repeat`` runs)."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.driver import PeerDriver
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.reqid import RequestIdGenerator
from zmqraft.core.raft.options import RaftOptions
from zmqraft.core.raft.roles import Role
from zmqraft.core.server import PeerServer, hard_state_from
from zmqraft.core.statemachine import BroadcastStateMachine
from zmqraft.core.storage.memory import MemoryLog, MemoryState

WALL = 1_800_000_000.0
_clock = time.process_time
PEERS = (("a", "tcp://127.0.0.1:9001"), ("b", "tcp://127.0.0.1:9002"), ("c", "tcp://127.0.0.1:9003"))


class Peer:
    """One peer and the CPU its calls took."""

    def __init__(self, me: str) -> None:
        self.id = me
        self.log = MemoryLog()
        state = MemoryState()
        state.update({"peers": ClusterConfig(PEERS).to_json()})
        self.server = PeerServer(
            me,
            self.log,
            hard_state_from(dict(state.load())),
            now=0.0,
            wall=WALL,
            options=RaftOptions(),
            rng=random.Random(me),
        )
        machine = BroadcastStateMachine(MemoryState(), "tcp://127.0.0.1:9100")
        self.driver = PeerDriver(self.server, machine, self.log, state)
        self.cpu = 0.0
        self.calls = 0
        self.router: list[tuple[bytes, list[bytes]]] = []
        self.peers: list[tuple[str, list[bytes]]] = []

    def timed(self, call: Callable[[], Any]) -> None:
        began = _clock()
        call()
        self.cpu += _clock() - began
        self.calls += 1

    def cpu_us(self, updates: int) -> float:
        return (self.cpu - self.calls * CLOCK_COST) / updates * 1e6

    def round(self, now: float) -> None:
        """One round with every piece of work done at once (inline, as a follower does)."""

        def run() -> None:
            for _ in range(100):
                out = self.driver.round(now, WALL)
                self.router += out.router
                self.peers += out.peers
                if not out.work:
                    return
                for work in out.work:
                    self.driver.complete(work, work.run(), now, WALL)

        self.timed(run)


def _clock_cost() -> float:
    """What one timed call adds by reading the clock twice (the best of a few tries)."""
    best = 1.0
    for _ in range(5):
        began = _clock()
        for _ in range(20_000):
            start = _clock()
            _clock() - start
        best = min(best, (_clock() - began) / 20_000)
    return best


CLOCK_COST = _clock_cost()


def elect(peers: dict[str, Peer]) -> float:
    """Make ``a`` the leader: its election timer fires, b and c vote for it."""
    now = 1.0
    a = peers["a"]
    a.timed(lambda: a.driver.handle_timer(now, WALL))
    for _ in range(20):
        deliver(peers, now)
        if a.server.node.role is Role.LEADER and not a.peers and not any(p.router for p in peers.values()):
            break
    if a.server.node.role is not Role.LEADER:
        raise SystemExit("a did not become the leader")
    return now


def deliver(peers: dict[str, Peer], now: float) -> int:
    """Rounds everywhere, then carry peer frames: DEALER -> ROUTER and the replies back."""
    replies = 0
    for peer in peers.values():
        peer.round(now)
    for sender in peers.values():
        outgoing, sender.peers = sender.peers, []
        for target, frames in outgoing:
            receiver = peers[target]
            receiver.timed(partial(receiver.driver.receive_router, sender.id.encode(), frames, now, WALL))
    for receiver in peers.values():
        answers, receiver.router = receiver.router, []
        for routing_id, frames in answers:
            if routing_id.decode() in peers:
                origin = peers[routing_id.decode()]
                origin.timed(partial(origin.driver.receive_peer, receiver.id, frames, now, WALL))
            else:
                replies += 1
    return replies


def run(updates: int, batch: int, profile: str | None) -> dict[str, float]:
    peers = {pid: Peer(pid) for pid, _ in PEERS}
    now = elect(peers)
    for p in peers.values():
        p.cpu, p.calls = 0.0, 0
    leader, follower = peers["a"], peers["b"]
    ids = RequestIdGenerator(random.Random(5), hostname="bench", pid=1)
    payload = b"x" * 100
    profiler = cProfile.Profile() if profile else None
    target = {"leader": leader, "follower": follower}.get(profile or "")
    if profiler is not None and target is not None:
        original = target.timed

        def profiled(call: Callable[[], Any]) -> None:
            profiler.enable()
            try:
                original(call)
            finally:
                profiler.disable()

        target.timed = profiled  # type: ignore[method-assign]
    sent = answered = 0
    for _ in range(updates * 10):
        if sent < updates:
            now += 0.0005
            drained = []  # one drained batch, as the runtimes feed it
            for _ in range(min(batch, updates - sent)):
                rid = ids.next(WALL)
                drained.append([b"client", *m.RequestUpdate(rid, payload).encode(b"")])
                sent += 1
            leader.timed(partial(leader.driver.receive_router_batch, drained, now, WALL))
        answered += deliver(peers, now)
        if answered >= updates and sent >= updates:
            break
    committed = leader.server.node.commit_index
    if committed < updates:
        raise SystemExit(f"only {committed} of {updates} committed")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return {
        "leader_us": leader.cpu_us(updates),
        "follower_us": follower.cpu_us(updates),
        "replies": answered,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=16, help="RequestUpdates the leader gets per round")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--profile", choices=("leader", "follower"), default=None)
    args = parser.parse_args(argv if argv is not None else [])
    results = [run(args.updates, args.batch, args.profile) for _ in range(1 if args.profile else args.repeat)]
    best = {key: min(r[key] for r in results) for key in ("leader_us", "follower_us")}
    print(
        f"core CPU per committed update ({args.updates} updates, {args.batch} a round, best of "
        f"{len(results)}): leader {best['leader_us']:.1f} µs, follower {best['follower_us']:.1f} µs"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
