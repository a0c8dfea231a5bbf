"""Compaction through the watched install path, and a lagging peer receiving the snapshot."""

from __future__ import annotations

import os

import pytest
from raft_harness import Cluster, check_acknowledged, stored_log, wait_for
from zmqraft.core.protocol.entry import entry_term
from zmqraft.core.storage.files import SnapshotFile

pytestmark = pytest.mark.timeout(120)


def compact(data_dir: os.PathLike[str], index: int, term: int, data: bytes) -> None:
    """What zr-log-compact does: a complete snapshot file renamed into compact/snap.new."""
    target = os.path.join(data_dir, "compact", "snap.new")
    tmp = target + ".tmp"
    SnapshotFile.create(tmp, index, term, len(data), data).close()
    os.rename(tmp, target)


def test_lagging_peer_receives_the_snapshot(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(data={"compact": {"watch": True, "watchInterval": 100}})
    cluster.start()
    leader, _ = cluster.leader()
    client = cluster.client
    url = lambda: cluster.peers[cluster.leader(running)[0]].url  # noqa: E731
    running = list(cluster.peers)
    acked = client.pipelined_updates(url, [f"early {n}".encode() for n in range(200)])

    lagging = next(p for p in cluster.peers if p != leader)
    cluster.peers[lagging].stop()
    running.remove(lagging)
    # 8 KiB each: more than the AppendEntries the leader can have queued for the stopped peer
    # (16 messages of at most 64 KiB, which ZeroMQ delivers when it reconnects), so it cannot
    # catch up from them and must be sent the snapshot
    late = [f"late {n} ".encode().ljust(8192, b".") for n in range(300)]
    acked.update(client.pipelined_updates(url, late))

    # compact every running peer at an index they all applied
    info = client.log_info(url())
    assert info is not None
    index = info.last_applied - 10
    entries, _ = client.entries(url(), index - 1, 1)
    term = entry_term(entries[0][1])
    snapshot = os.urandom(200_000)  # four InstallSnapshot chunks of 64 KiB
    for p in running:
        applied = lambda p=p: (i := client.log_info(cluster.peers[p].url)) and i.last_applied >= index  # noqa: E731
        wait_for(f"{p} to apply", applied, 5)
        compact(cluster.data_dir(p), index, term, snapshot)
    for p in running:
        wait_for(
            f"{p} to install the compaction",
            lambda p=p: (i := client.log_info(cluster.peers[p].url)) and i.first_index == index + 1 and i,
            10,
        )
    entries, chunk = client.entries(url(), 0)
    assert chunk is not None and chunk.last_index == index and chunk.snapshot_size == len(snapshot)
    assert entries[0][0] == index + 1

    # the lagging peer is behind the leader's first index: it gets the snapshot, then entries
    cluster.peers[lagging].start()
    running.append(lagging)
    leader_info = client.log_info(url())
    assert leader_info is not None

    def caught_up() -> bool:
        i = client.log_info(cluster.peers[lagging].url, 0.3)
        return i is not None and i.first_index == index + 1 and i.last_applied >= leader_info.commit_index

    wait_for("the lagging peer to install the snapshot and catch up", caught_up, 20)
    acked.update(client.pipelined_updates(url, [f"after {n}".encode() for n in range(50)]))
    later = [(i, e) for i, e in client.entries(url(), index)[0]]
    check_acknowledged(later, {r: v for r, v in acked.items() if v[1] > index})

    last = max(i for _, i in acked.values())
    cluster.wait_applied(last)
    cluster.stop()
    log, first, applied = stored_log(cluster.data_dir(lagging))
    assert first == index + 1 and applied >= max(i for _, i in acked.values())
    assert log == [e for i, e in later if i <= first + len(log) - 1]
    from zmqraft.core.storage.files import open_data_dir

    d = open_data_dir(str(cluster.data_dir(lagging)), read_only=True)
    try:
        assert d.log.snapshot.index == index and d.log.read_snapshot(0, len(snapshot)) == snapshot
    finally:
        d.close()
