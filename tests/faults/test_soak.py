"""Long runs (``ZMQRAFT_LONG=1``): repeated kill -9 of the leader under a steady write load."""

from __future__ import annotations

import threading
import time

import pytest
from raft_harness import LONG, Client, Cluster, check_acknowledged, wait_for

pytestmark = [
    pytest.mark.skipif(not LONG, reason="long run: set ZMQRAFT_LONG=1"),
    pytest.mark.timeout(900),
]

ROUNDS = 8
UPDATES = 20_000


def test_repeated_leader_kills_under_load(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(["1", "2", "3", "4", "5"])
    cluster.start()
    cluster.leader()
    acked: dict[bytes, tuple[bytes, int]] = {}
    failure: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        client = Client(cluster.secret)
        try:
            live = lambda: [u for p, u in cluster.urls().items() if cluster.peers[p].running]  # noqa: E731
            datas = [f"soak {n}".encode() for n in range(UPDATES)]
            leader = lambda: client.find_leader(live(), 20)  # noqa: E731
            client.pipelined_updates(leader, datas, window=32, timeout=600, resend_after=0.5, done=acked)
        except BaseException as exc:
            failure.append(exc)
        finally:
            stop.set()
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    failovers = []
    try:
        for _ in range(ROUNDS):
            count = len(acked)
            wait_for("writes to progress", lambda c=count: len(acked) >= c + 500 or stop.is_set(), 60)
            if stop.is_set():
                break
            leader, term = cluster.leader()
            cluster.peers[leader].kill()
            killed = time.monotonic()
            others = [p for p in cluster.running() if p != leader]

            def elected(others: list[str] = others, term: int = term) -> bool:
                infos = [cluster.client.log_info(cluster.peers[p].url, 0.1) for p in others]
                return any(i is not None and i.is_leader and i.term > term for i in infos)

            wait_for("a new leader", elected, 5, interval=0.005)
            failovers.append(time.monotonic() - killed)
            cluster.peers[leader].start()
    finally:
        thread.join(600)
    assert not failure, failure
    print(f"\nfail-overs: {', '.join(f'{t:.2f}' for t in failovers)} s")
    assert max(failovers) < 2.0
    assert len(acked) == UPDATES
    leader, _ = cluster.leader()
    last = max(i for _, i in acked.values())
    cluster.wait_applied(last, timeout=60)
    entries, _ = cluster.client.entries(cluster.peers[leader].url, 0, timeout=60)
    check_acknowledged(entries, acked)
