"""A full disk under a real peer (both runtimes): its data directory is a tiny tmpfs.  The
peer exits with one clear ``StorageError`` line naming the file, the other two go on
committing, and once space is freed (the tmpfs remounted bigger) the restarted peer catches
up with nothing lost.  Needs root (mount); skipped otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from raft_harness import Cluster, check_acknowledged, new_rid, stored_log, wait_for

pytestmark = pytest.mark.timeout(180)

VICTIM = "3"
SMALL = "256k"  # the 64 KiB offset table of the first index file and ~190 updates of 1 KiB
BIG = "8m"


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount command"
    return None


@pytest.fixture
def tmpfs(cluster_factory, tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:  # type: ignore[no-untyped-def]
    """``mount(path, size)``: a tmpfs at ``path``; ``mount(path, size)`` again remounts it
    with a new size.  Unmounted at the end, also when the test fails (after the peers of
    ``cluster_factory`` are killed: this fixture depends on it, so it is torn down first)."""
    reason = _can_mount()
    if reason:
        pytest.skip(reason)
    probe = tmp_path / "probe"
    probe.mkdir()
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
    )
    if tried.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {tried.stderr.decode().strip()}")
    mounted = [probe]

    def mount(path: Path, size: str) -> None:
        if path in mounted:
            subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)
            return
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        mounted.append(path)

    try:
        yield mount
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def commit(
    cluster: Cluster, data: bytes, acked: dict[bytes, tuple[bytes, int]], timeout: float = 15.0
) -> int:
    """Commit ``data`` through whichever running peer leads (same request id on retries)."""
    rid = new_rid()

    def attempt() -> int | None:
        for peer_id in cluster.running():
            info = cluster.client.log_info(cluster.peers[peer_id].url, 0.2)
            if info is not None and info.is_leader:
                return cluster.client.update(cluster.peers[peer_id].url, data, rid, timeout=2.0)
        return None

    index = wait_for("an update to commit", attempt, timeout)
    acked[rid] = (data, index)
    return index


def test_a_full_disk_stops_one_peer_the_others_go_on_and_it_catches_up(cluster_factory, tmpfs) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    victim = cluster.peers[VICTIM]
    tmpfs(cluster.data_dir(VICTIM), SMALL)
    cluster.start()
    cluster.leader()
    acked: dict[bytes, tuple[bytes, int]] = {}
    for n in range(2000):
        commit(cluster, b"%06d" % n + b"x" * 1000, acked)
        if not victim.running:
            break
    assert not victim.running, "the peer on the small tmpfs never ran out of space"
    assert victim.proc is not None and victim.proc.returncode != 0
    output = victim.output()
    line = re.search(r"^RAFT ERROR: .*$", output, re.MULTILINE)  # one line: file and reason
    assert line is not None, output[-3000:]
    assert str(cluster.data_dir(VICTIM)) in line.group() and "No space left on device" in line.group()
    assert "Traceback" not in output, output[-3000:]

    # the other two go on
    last = max(index for _, index in acked.values())
    for n in range(50):
        last = commit(cluster, b"without %d" % n, acked)

    # free space, restart: it catches up
    tmpfs(cluster.data_dir(VICTIM), BIG)
    victim.start()
    for n in range(20):
        last = commit(cluster, b"after %d" % n, acked)
    cluster.wait_applied(last, timeout=60)
    leader, _ = cluster.leader()
    entries, _ = cluster.client.entries(cluster.peers[leader].url, 0, timeout=30)
    check_acknowledged(entries, acked)
    cluster.stop()
    logs = {p: stored_log(cluster.data_dir(p), last)[0] for p in cluster.members}
    assert logs[VICTIM] == logs[leader]
