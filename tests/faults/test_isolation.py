"""A leader cut off from the cluster (its process paused with SIGSTOP: it neither sends nor
receives, like a partition around it) while a client writes; the rest elect a new leader and
go on; then the old leader comes back still believing it leads, and is sent updates first.

Raft must keep every acknowledged update exactly once at its index: whatever the old leader
does with the updates sent to it as it resumes (in practice it has read the new term from the
messages queued while it was paused, and refuses them), they commit only through the new
leader, once, when re-sent with the same request ids.  A pause is the partition that
processes on one machine allow without privileges: the peer is cut off both ways at once."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from raft_harness import Client, Cluster, check_acknowledged, new_rid, stored_log, wait_for
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(120)


def test_isolated_leader_rejoins_without_losing_or_doubling_updates(  # type: ignore[no-untyped-def]
    cluster_factory,
) -> None:
    cluster: Cluster = cluster_factory()
    cluster.start()
    old_leader, old_term = cluster.leader()
    old = cluster.peers[old_leader]
    others = [p for p in cluster.members if p != old_leader]
    acked: dict[bytes, tuple[bytes, int]] = {}
    failure: list[BaseException] = []
    paused = threading.Event()

    def writer() -> None:
        client = Client(cluster.secret)
        try:
            datas = [f"write {n}".encode() for n in range(1200)]

            def leader() -> str:  # while the old leader is paused only the others can answer
                live = others if paused.is_set() else cluster.members
                return client.find_leader([cluster.peers[p].url for p in live])

            client.pipelined_updates(leader, datas, window=16, timeout=60, resend_after=0.5, done=acked)
        except BaseException as exc:
            failure.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert old.proc is not None
    try:
        wait_for("the first acknowledgements", lambda: len(acked) >= 200, 30)
        paused.set()
        os.kill(old.proc.pid, signal.SIGSTOP)
        try:
            _, new_term = cluster.leader(others, timeout=10.0)
            assert new_term > old_term
            count = len(acked)
            wait_for("writes to continue without the old leader", lambda: len(acked) >= count + 200, 30)
        finally:
            os.kill(old.proc.pid, signal.SIGCONT)
        # the old leader is back and may still think it leads: send it updates at once
        stale = Client(cluster.secret)
        try:
            rids = {new_rid(): f"stale {n}".encode() for n in range(5)}
            for rid, data in rids.items():
                stale.send(old.url, m.RequestUpdate(rid, data).encode(cluster.secret))
            paused.clear()
            _, term = cluster.leader(timeout=10.0)  # every peer, the old leader too, agrees
            # the resumed peer reads what came while it was stopped with the time it reads it
            # at: it follows the new leader instead of campaigning against it
            assert term == new_term, f"elections after the resume: term {new_term} -> {term}"
            urls = [cluster.peers[p].url for p in cluster.members]
            for rid, data in rids.items():  # the same request ids, to the leader: applied once

                def commit(rid: bytes = rid, data: bytes = data) -> int | None:
                    return stale.update(stale.find_leader(urls), data, rid)

                acked[rid] = (data, wait_for(f"{data!r} to commit", commit, 15))
        finally:
            stale.close()
    finally:
        thread.join(90)
    assert not failure, failure
    assert len(acked) == 1200 + 5

    leader_url = cluster.peers[cluster.leader()[0]].url
    entries, _ = cluster.client.entries(leader_url, 0)
    check_acknowledged(entries, acked)
    last = max(i for _, i in acked.values())
    cluster.wait_applied(last, timeout=20)
    cluster.stop()
    for p in cluster.members:
        log, first, applied = stored_log(cluster.data_dir(p), last)
        assert first == 1 and applied >= last, p
        assert log == [e for _, e in entries[:last]], f"peer {p} holds another log"
