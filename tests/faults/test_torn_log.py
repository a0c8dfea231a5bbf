"""A peer whose last index file lost its last bytes (real peer processes, both runtimes):
the peer refuses to start, zr-tool reports the cut entry and exits non-zero, ``zr-tool
repair --yes`` drops it and lowers lastApplied, and the peer then starts and catches up with
the cluster.  When every peer carries the same damage, repairing each brings the cluster back
(without the cut entry, which no peer holds any more)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from raft_harness import Cluster, stored_log, wait_for

pytestmark = pytest.mark.timeout(180)

DAMAGE = 3  # zr-tool's exit status when it found damage


def zr_tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_tool", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(cluster: Cluster, count: int, tag: str) -> int:
    url = cluster.peers[cluster.leader()[0]].url
    last = 0
    for n in range(count):
        index = cluster.client.update(url, f"{tag} {n}".encode(), timeout=5.0)
        assert index is not None, f"update {tag} {n} not committed"
        last = index
    return last


def cut_last_index_file(data_dir: Path, nbytes: int = 7) -> Path:
    rlog = max((data_dir / "log").rglob("*.rlog"))
    os.truncate(rlog, rlog.stat().st_size - nbytes)
    return rlog


def refuses_to_start(cluster: Cluster, peer_id: str) -> str:
    peer = cluster.peers[peer_id]
    peer.start()
    assert peer.proc is not None
    wait_for(
        f"peer {peer_id} to refuse to start",
        lambda: peer.proc is not None and peer.proc.poll() is not None,
        20,
    )
    assert peer.proc.returncode != 0
    return peer.output()


def repair(data_dir: Path, rlog: Path, last_kept: int) -> None:
    inspect = zr_tool("inspect", data_dir)
    assert inspect.returncode == DAMAGE, inspect
    assert f"{rlog} at offset" in inspect.stderr and f"entry {last_kept + 1} is cut" in inspect.stderr
    fixed = zr_tool("repair", "--yes", data_dir)
    assert fixed.returncode == 0, fixed
    assert (
        f"lower lastApplied in {data_dir / 'state.pers'} from {last_kept + 1} to {last_kept}" in fixed.stdout
    )
    assert zr_tool("verify", data_dir).returncode == 0


def test_a_cut_follower_refuses_is_repaired_and_catches_up(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    last = write(cluster, 60, "before")
    cluster.wait_applied(last)
    leader, _ = cluster.leader()
    victim = next(p for p in cluster.members if p != leader)
    assert cluster.peers[victim].stop() == 0
    rlog = cut_last_index_file(cluster.data_dir(victim))

    output = refuses_to_start(cluster, victim)
    assert "last applied beyond the log" in output
    last = write(cluster, 20, "while it is down")  # the others go on
    repair(cluster.data_dir(victim), rlog, last - 21)

    cluster.peers[victim].start()
    last = write(cluster, 20, "after")
    cluster.wait_applied(last, timeout=30)
    cluster.stop()
    mine, _, applied = stored_log(cluster.data_dir(victim))
    theirs, _, _ = stored_log(cluster.data_dir(leader))
    assert applied == last
    assert mine[: len(theirs)] == theirs[: len(mine)] and len(mine) >= last


def test_the_same_damage_on_every_peer_is_repaired_peer_by_peer(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    last = write(cluster, 40, "before")
    cluster.wait_applied(last)
    cluster.stop()
    # the same last entry cut on every peer (the logs are identical)
    logs = {p: stored_log(cluster.data_dir(p))[0] for p in cluster.members}
    assert len({len(entries) for entries in logs.values()}) == 1
    rlogs = {p: cut_last_index_file(cluster.data_dir(p)) for p in cluster.members}
    kept = len(next(iter(logs.values()))) - 1
    for p in cluster.members:
        assert "last applied beyond the log" in refuses_to_start(cluster, p)
    for p in cluster.members:
        repair(cluster.data_dir(p), rlogs[p], kept)
    cluster.start()
    last = write(cluster, 10, "after")
    cluster.wait_applied(last, timeout=30)
    cluster.stop()
    after = {p: stored_log(cluster.data_dir(p))[0] for p in cluster.members}
    first = next(iter(after.values()))
    assert all(entries == first for entries in after.values())
    assert first[:kept] == next(iter(logs.values()))[:kept]
