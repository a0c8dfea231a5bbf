"""gevent peers as real processes (``python -m zmqraft.gevent``) on 127.0.0.1: replication in
order and the files after a graceful stop, a cluster mixing both runtimes, graceful SIGTERM
(fail-over and the rest: tests/integration, which runs every test with each runtime).

The processes come from the integration harness (tests/integration/raft_harness.py) with
``runtime="gevent"``; its ``cluster_factory`` kills every one of them at the end, and every wait
is a poll with a deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from zmqraft.client import Client, Entry

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]

if HAVE_HARNESS:
    from raft_harness import Client as RawClient
    from raft_harness import Cluster, check_acknowledged, new_rid, stored_log, wait_for
    from zmqraft.core.protocol import messages as m

Acked = dict[bytes, tuple[bytes, int]]


def leader_url(cluster: Cluster) -> Callable[[], str]:
    return lambda: cluster.peers[cluster.leader()[0]].url


def same_log_everywhere(cluster: Cluster, entries: list[tuple[int, bytes]], last: int) -> None:
    """Stop every peer gracefully; each one's files hold ``entries[:last]`` and its state
    machine applied at least ``last``."""
    cluster.stop()
    for peer in cluster.peers.values():
        assert peer.proc is not None and peer.proc.returncode == 0, peer.output()[-3000:]
    for peer_id in cluster.peers:
        log, first, applied = stored_log(cluster.data_dir(peer_id), last)
        assert first == 1 and applied >= last, peer_id
        assert log == [e for _, e in entries[:last]], f"peer {peer_id} holds another log"


def test_three_gevent_peers_commit_in_order(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(runtime="gevent")
    cluster.start()
    leader, term = cluster.leader()
    seeds = [p.url for p in cluster.peers.values()]
    with Client(seeds, secret=cluster.secret, rpc_timeout=10.0) as client:
        datas = [f"gevent {n}".encode() for n in range(300)]
        indexes = [client.request_update(data) for data in datas]
        assert indexes == sorted(indexes) and len(set(indexes)) == 300
        last = indexes[-1]

        # every peer applies and commits all of it (each one asked on its own url)
        def applied(url: str) -> bool:
            info = client.request_log_info(url=url, timeout=1.0)
            return info.last_applied >= last and info.commit_index >= last and info.leader_id == leader

        for url in seeds:
            wait_for(f"{url} to apply {last}", lambda url=url: applied(url), 10.0)  # type: ignore[misc]

        # RequestEntries (only the leader serves it) gives them back in the order they were sent
        stream = [e for e in client.request_entries(0, url=cluster.peers[leader].url) if isinstance(e, Entry)]
        assert [e.index for e in stream] == list(range(1, len(stream) + 1))
        state = [e for e in stream if e.is_state]
        assert [e.data for e in state] == datas and [e.index for e in state] == indexes
        assert client.request_log_info().term == term  # no election meanwhile
    # and every peer's files hold that same log, applied by its state machine
    same_log_everywhere(cluster, [(e.index, bytes(e.raw)) for e in stream], last)


def test_mixed_cluster_asyncio_and_gevent(cluster_factory: Callable[..., Cluster]) -> None:
    """Peers 1 and 2 run asyncio, peer 3 gevent; leadership is moved so that each runtime
    leads the other: the wire protocol is the same."""
    cluster = cluster_factory()
    cluster.peers["3"].runtime = "gevent"
    cluster.start()
    client = cluster.client
    acked: Acked = {}
    leaders: list[str] = []

    def write(count: int) -> None:
        leaders.append(cluster.leader()[0])
        datas = [f"mixed {len(acked) + n}".encode() for n in range(count)]
        client.pipelined_updates(leader_url(cluster), datas, window=32, timeout=20, done=acked)

    def hand_over(target: str) -> None:
        """Make ``target`` the leader: the third peer misses some entries, so that once the
        leader stops only ``target`` can win an election (Raft §5.4.1)."""
        leader = cluster.leader()[0]
        third = next(p for p in cluster.peers if p not in (leader, target))
        assert cluster.peers[third].stop() == 0
        write(30)
        assert cluster.peers[leader].stop() == 0
        cluster.peers[third].start()
        assert cluster.leader([target, third], timeout=10)[0] == target
        cluster.peers[leader].start()

    write(100)
    first = leaders[0]
    hand_over("3" if cluster.peers[first].runtime == "asyncio" else "1")
    write(100)
    assert {cluster.peers[p].runtime for p in leaders} == {"asyncio", "gevent"}, leaders

    url = leader_url(cluster)()
    info = client.log_info(url)
    assert info is not None
    cluster.wait_applied(info.commit_index, timeout=15)
    entries, _ = client.entries(url, 0)
    check_acknowledged(entries, acked)
    assert len(acked) == 230
    same_log_everywhere(cluster, entries, max(i for _, i in acked.values()))


def test_sigterm_while_writing_closes_cleanly(cluster_factory: Callable[..., Cluster]) -> None:
    """SIGTERM under a flood of updates: the peer finishes the write in flight and exits 0;
    every update it acknowledged is in its files, which open again."""
    cluster = cluster_factory(ids=["1"], runtime="gevent")
    peer = cluster.peers["1"]
    cluster.start()
    cluster.leader()
    acked: Acked = {}
    stop = threading.Event()

    def writer() -> None:
        client = RawClient(cluster.secret)
        pending: dict[bytes, bytes] = {}
        deadline = time.monotonic() + 30
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                while len(pending) < 32:
                    rid, data = new_rid(), f"flood {len(acked) + len(pending)}".encode()
                    client.send(peer.url, m.RequestUpdate(rid, data).encode(cluster.secret))
                    pending[rid] = data
                raw = client.recv(peer.url, 0.05)
                while raw is not None:
                    reply = m.RequestUpdateReply.decode(raw)
                    if reply.status is m.UpdateStatus.COMMITTED and raw[0] in pending:
                        assert reply.index is not None
                        acked[raw[0]] = (pending.pop(raw[0]), reply.index)
                    raw = client.recv(peer.url, 0)
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for("acknowledged updates", lambda: len(acked) >= 300, 20)
        assert peer.proc is not None
        peer.proc.send_signal(signal.SIGTERM)
        assert peer.proc.wait(15) == 0, peer.output()[-3000:]
    finally:
        stop.set()
        thread.join(10)
    assert "SIGTERM received: closing" in peer.output() and "bye bye" in peer.output()

    log, first, applied = stored_log(cluster.data_dir("1"))
    check_acknowledged(list(enumerate(log, first)), acked)
    last = max(i for _, i in acked.values())
    assert applied >= last

    # the files open again: the peer leads, keeps its log and commits after it
    peer.start()
    cluster.leader(timeout=10)
    index = cluster.client.update(peer.url, b"after the restart", timeout=5)
    assert index is not None and index > first - 1 + len(log)
    assert peer.stop() == 0
