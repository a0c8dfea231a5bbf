"""kill -9 of the leader while a client writes: fail-over, catch-up, no update lost or doubled."""

from __future__ import annotations

import threading
import time

import pytest
from raft_harness import Client, Cluster, check_acknowledged, stored_log, wait_for

pytestmark = pytest.mark.timeout(120)


def test_leader_killed_while_writing(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    old_leader, old_term = cluster.leader()

    acked: dict[bytes, tuple[bytes, int]] = {}
    failure: list[BaseException] = []

    def writer() -> None:
        client = Client(cluster.secret)
        try:
            datas = [f"write {n}".encode() for n in range(1500)]
            live = lambda: [u for p, u in cluster.urls().items() if cluster.peers[p].running]  # noqa: E731
            client.pipelined_updates(
                lambda: client.find_leader(live()), datas, window=16, timeout=60, resend_after=0.5, done=acked
            )
        except BaseException as exc:
            failure.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for("the first acknowledgements", lambda: len(acked) >= 300, 30)
        cluster.peers[old_leader].kill()
        killed_at = time.monotonic()
        others = [p for p in cluster.peers if p != old_leader]

        def new_leader() -> str | None:
            for p in others:
                info = cluster.client.log_info(cluster.peers[p].url, 0.1)
                if info is not None and info.is_leader and info.term > old_term:
                    return p
            return None

        leader = wait_for("a new leader", new_leader, 5.0, interval=0.005)
        failover = time.monotonic() - killed_at
        print(f"\nfail-over: {leader} leads {failover:.3f}s after the leader was killed")
        assert failover < 2.0
        count = len(acked)
        wait_for("writes to continue", lambda: len(acked) >= count + 200, 30)
        cluster.peers[old_leader].start()
    finally:
        thread.join(90)
    assert not failure, failure
    assert len(acked) == 1500

    leader_url = cluster.peers[cluster.leader()[0]].url
    info = cluster.client.log_info(leader_url)
    assert info is not None

    def caught_up() -> bool:
        mine = cluster.client.log_info(cluster.peers[old_leader].url, 0.5)
        return mine is not None and mine.last_applied >= info.commit_index

    wait_for("the old leader to catch up", caught_up, 20)
    entries, _ = cluster.client.entries(leader_url, 0)
    check_acknowledged(entries, acked)

    last = max(i for _, i in acked.values())
    cluster.wait_applied(last)
    cluster.stop()
    logs = {p: stored_log(cluster.data_dir(p), last) for p in cluster.peers}
    for p, (log, first, applied) in logs.items():
        assert first == 1 and applied >= last, p
        assert log == [e for _, e in entries[:last]], f"peer {p} holds another log"
