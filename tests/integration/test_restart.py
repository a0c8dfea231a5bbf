"""Peers restarted from their files; a data directory written by the original implementation."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from raft_harness import Client, Cluster, Peer, check_acknowledged, free_ports, wait_for
from zmqraft.core.storage.files import RaftPersistence

pytestmark = pytest.mark.timeout(120)

GOLDEN = Path(__file__).parent.parent / "interop" / "golden" / "datadir-2"


def test_restarted_cluster_resumes_from_its_files(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    _, term = cluster.leader()
    datas = [f"before {n}".encode() for n in range(300)]
    url = lambda: cluster.peers[cluster.leader()[0]].url  # noqa: E731
    acked = cluster.client.pipelined_updates(url, datas)
    before = max(i for _, i in acked.values())
    cluster.wait_applied(before)
    cluster.stop()
    for peer in cluster.peers.values():
        assert peer.proc is not None and peer.proc.returncode == 0
        assert "bye bye" in peer.output()
    cluster.start()
    _, new_term = cluster.leader()
    assert new_term > term
    for peer in cluster.peers.values():
        info = cluster.client.log_info(peer.url)
        assert info is not None and info.last_index >= before and info.last_applied >= before

    acked.update(cluster.client.pipelined_updates(url, [f"after {n}".encode() for n in range(100)]))
    after = [i for d, i in acked.values() if d.startswith(b"after")]
    assert min(after) > before
    entries, _ = cluster.client.entries(url(), 0)
    check_acknowledged(entries, acked)


def _golden_copy(dest: Path) -> Path:
    shutil.copytree(GOLDEN, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dest


def _peer(root: Path, config: dict[str, object], peer_id: str, url: str, *args: str) -> Peer:
    path = root / f"config-{peer_id}.json"
    path.write_text(json.dumps({"raft": config}))
    return Peer(peer_id, url, "", path, root / f"peer-{peer_id}.log", list(args))


def test_original_data_directory_starts_as_a_peer(tmp_path: Path) -> None:
    """datadir-2 (peer of a 3-peer cluster 1,2,3; snapshot at 280, log to 1020, term 10) starts
    as peer 1 and serves its log; alone (its configuration rewritten) it leads and grows it."""
    data = _golden_copy(tmp_path / "data")
    router, pub = free_ports(2)
    url = f"tcp://127.0.0.1:{router}"
    secret = os.urandom(6).hex()
    config = {"data": {"path": str(data)}, "broadcast": {"url": f"tcp://127.0.0.1:{pub}"}, "secret": secret}
    peer = _peer(tmp_path, config, "1", url, "--bind", url)
    client = Client(secret.encode())
    try:
        peer.start()
        info = wait_for("the golden peer to answer", lambda: client.log_info(url, 0.3), 15)
        assert not info.is_leader and info.leader_id is None  # peers 2 and 3 are not there
        assert info.term in (10, 11)
        assert (info.first_index, info.last_index) == (281, 1020)
        assert info.commit_index == info.last_applied == 1020  # state.pers: lastApplied 1020
        assert info.snapshot_size == 9428
        cfg = client.config(url)
        assert cfg is not None and [p for p, _ in cfg.peers] == ["1", "2", "3"]
        assert peer.stop() == 0

        # the same files as a one-peer cluster: peer 1 leads, streams and appends
        persistence = RaftPersistence(str(data / "raft.pers"))
        persistence.update({"peers": [["1", url]], "peersUpdateRequest": None, "peersIndex": None})
        persistence.close()
        peer.start()
        info = wait_for("peer 1 to lead", lambda: (i := client.log_info(url, 0.3)) and i.is_leader and i, 15)
        assert info.first_index == 281 and info.last_index >= 1020
        entries, snapshot = client.entries(url, 0)
        assert snapshot is not None and snapshot.last_index == 280 and snapshot.snapshot_term == 8
        assert entries[0][0] == 281 and entries[-1][0] == info.last_applied
        index = client.update(url, b"hello from python")
        assert index is not None and index > 1020
        assert peer.stop() == 0
    finally:
        peer.kill()
        client.close()
        print(peer.output()[-4000:])
