"""The latency budget of one update at 1 in flight, step by step, from a traced cluster.

Started with ``ZMQRAFT_TRACE=PREFIX`` in their environment, the peers write every message they
read or send, and every write they do on their loop, to ``PREFIX.<pid>`` with monotonic
nanoseconds (``zmqraft.client.sockets.Trace``; the clock is the machine's, shared by the
processes).  A client sends updates one at a time; each update's window is cut into the
steps below, taking the follower whose acknowledgement reached the leader first (the one the
commit waited for), and the medians over every update are printed in µs.

    python bench/bench_cluster.py --trace [--runtime asyncio|gevent] [--updates 500]
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import zmq
from _cluster_procs import Cluster, RequestIds, dealer
from zmqraft.core.protocol import messages as m

STEPS = (
    "client send -> leader has the request",
    "leader has it -> AppendEntries sent",
    "AppendEntries sent -> follower has it",
    "follower has it -> its write starts",
    "follower write + fdatasync",
    "write done -> acknowledgement sent",
    "acknowledgement sent -> leader has it",
    "leader has it -> reply sent (commit, apply)",
    "reply sent -> client has it",
)

Event = tuple[int, str, str]  # (monotonic ns, event, what)


def read_trace(path: Path) -> list[Event]:
    events = []
    for line in path.read_text().splitlines():
        t, event, what = line.split(" ", 2)
        events.append((int(t), event, what))
    return events


def first(events: Sequence[Event], after: int, event: str, what: str | None = None) -> int | None:
    for t, e, w in events:
        if t >= after and e == event and (what is None or w == what):
            return t
    return None


def budget(
    leader: list[Event], followers: dict[str, list[Event]], client: list[tuple[int, int]]
) -> dict[str, float]:
    """Median µs per step over the updates whose every step was found."""
    per_step: list[list[float]] = [[] for _ in STEPS]
    for sent, received in client:
        window = [e for e in leader if sent <= e[0] <= received]
        has_request = first(window, sent, "in", "b'='")
        if has_request is None:
            continue
        ae_sent = first(window, has_request, "rpc", "b'++'")
        if ae_sent is None:
            continue
        best: tuple[int, list[int]] | None = None
        for peer, events in followers.items():
            got = first(events, ae_sent, "in", "b'+'")
            start = got and first(events, got, "write", "'start'")
            end = start and first(events, start, "write", "'end'")
            acked = end and first(events, end, "answer")
            back = acked and first(window, acked, "reply", repr(peer))
            if got and start and end and acked and back and (best is None or back < best[0]):
                best = (back, [got, start, end, acked, back])
        if best is None:
            continue
        got, start, end, acked, back = best[1]
        answered = first(window, back, "answer")
        if answered is None:
            continue
        points = [sent, has_request, ae_sent, got, start, end, acked, back, answered, received]
        for n in range(len(STEPS)):
            per_step[n].append((points[n + 1] - points[n]) / 1000)
    return {step: statistics.median(v) for step, v in zip(STEPS, per_step) if v}


def run(command: list[str], root: Path, updates: int) -> tuple[dict[str, float], int]:
    """A traced cluster, ``updates`` sequential updates; the budget and how many were traced."""
    prefix = root / "trace"
    os.environ["ZMQRAFT_TRACE"] = str(prefix)
    cluster = Cluster(command, root)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        cluster.start()
        leader = cluster.wait_leader(ctx, 20.0)
        if leader is None:
            raise RuntimeError("no leader: " + cluster.tails())
        sock = dealer(ctx, cluster.urls[leader])
        ids = RequestIds()
        client: list[tuple[int, int]] = []
        for _ in range(updates + 20):
            rid = ids.next()
            sent = time.monotonic_ns()
            sock.send_multipart(m.RequestUpdate(rid, b"x" * 100).encode(b""))
            while True:
                if not sock.poll(5000):
                    raise RuntimeError("an update was not answered within 5 s")
                reply = sock.recv_multipart()
                if reply[0] == rid and len(reply) > 2:  # the final answer: [rid, true, index]
                    break
            client.append((sent, time.monotonic_ns()))
        sock.close(0)
        pids = cluster.pids()
    finally:
        del os.environ["ZMQRAFT_TRACE"]
        cluster.stop()
        ctx.term()
    traces = {peer: read_trace(Path(f"{prefix}.{pid}")) for peer, pid in pids.items()}
    followers = {peer: events for peer, events in traces.items() if peer != leader}
    client = client[20:]  # warm-up
    return budget(traces[leader], followers, client), len(client)


def print_budget(result: dict[str, float], traced: int, runtime: str) -> None:
    print(f"latency budget of one update at 1 in flight ({runtime}; medians over {traced} updates, µs)")
    total = 0.0
    for step in STEPS:
        value = result.get(step)
        total += value or 0.0
        print(f"  {step:<46} {'-' if value is None else f'{value:8.0f}'}")
    print(f"  {'sum of the medians':<46} {total:8.0f}")
