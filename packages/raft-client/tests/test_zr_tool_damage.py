"""zr-tool on damaged data directories (real files, the tool as a subprocess): a cut last
index file is reported with file and offset and a non-zero exit by every command that reads
it, and ``zr-tool repair`` fixes it only when confirmed, keeping a backup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from zmqraft.core.protocol import mpack
from zmqraft.core.storage.files import open_data_dir
from zmqraft.core.storage.files.logdir import index_file_path

REPO = Path(__file__).resolve().parents[3]
SRC = [REPO / "packages" / "raft-core" / "src", REPO / "packages" / "raft-client" / "src"]
DAMAGE = 3  # zr-tool's exit status when it found damage
ENTRIES = 450


def zr(*args: str | Path, code: int | None = 0, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in SRC))
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_tool", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
    )
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def make_dir(
    root: Path, entries: int = ENTRIES, capacity: int = 16384, config_at: tuple[int, ...] = ()
) -> Path:
    """A peer's data directory with ``entries`` entries, all applied; CONFIG entries at
    ``config_at`` (each adding a peer)."""
    d = open_data_dir(str(root), peers=[["a", "tcp://127.0.0.1:1"]], index_file_capacity=capacity)
    try:
        for i in range(1, entries + 1):
            if i in config_at:
                peers = [[p, f"tcp://127.0.0.1:{n}"] for n, p in enumerate("abcd"[: 2 + config_at.index(i)])]
                d.log.append_entry(os.urandom(12), 1, 1, mpack.pack(peers))
                d.raft.update({"peers": peers, "peersUpdateRequest": None, "peersIndex": i})
            else:
                d.log.append_entry(os.urandom(12), 0, 1, f"update {i}".encode())
        assert d.state is not None
        d.state.set_last_applied(entries)
    finally:
        d.close()
    return root


def last_rlog(root: Path) -> Path:
    return max((root / "log").rglob("*.rlog"))


def cut(path: Path, nbytes: int) -> int:
    size = path.stat().st_size - nbytes
    os.truncate(path, size)
    return size


@pytest.fixture
def cut_dir(tmp_path: Path) -> Path:
    root = make_dir(tmp_path / "peer")
    cut(last_rlog(root), 7)
    return root


def test_a_clean_directory_exits_0(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "peer")
    assert '"lastIndex": 450' in zr("inspect", root).stdout
    assert zr("verify", root).stdout.strip().endswith("no damage found")


def test_every_reading_command_reports_the_cut_entry(cut_dir: Path) -> None:
    rlog = last_rlog(cut_dir)
    for args in (["inspect"], ["verify"], ["dump", "--json"], ["list"]):
        proc = zr(*args, cut_dir, code=DAMAGE)
        assert str(rlog) in proc.stderr and "at offset" in proc.stderr, (args, proc.stderr)
        assert "entry 450 is cut" in proc.stderr, (args, proc.stderr)
    for args in (["inspect"], ["list"], ["dump", "--json"]):
        proc = zr(*args, rlog, code=DAMAGE)
        assert "entry 450 is cut" in proc.stderr, (args, proc.stderr)
    proc = zr("verify", cut_dir, code=DAMAGE)
    assert "lastApplied 450 is beyond the log's last whole entry 449" in proc.stdout


def test_repair_needs_confirmation_and_changes_nothing_without_it(cut_dir: Path) -> None:
    before = {p: p.read_bytes() for p in cut_dir.rglob("*") if p.is_file()}
    proc = zr("repair", cut_dir, code=DAMAGE)
    assert "--yes" in proc.stdout + proc.stderr
    assert "lower lastApplied" in proc.stdout and "drop the cut entry 450" in proc.stdout
    assert {p: p.read_bytes() for p in cut_dir.rglob("*") if p.is_file()} == before


def test_repair_truncates_to_the_last_whole_entry_and_keeps_a_backup(cut_dir: Path) -> None:
    rlog = last_rlog(cut_dir)
    damaged = rlog.read_bytes()
    proc = zr("repair", "--yes", cut_dir)
    assert "repaired" in proc.stdout
    backups = list(cut_dir.glob("repair-*"))
    assert len(backups) == 1
    assert (backups[0] / rlog.relative_to(cut_dir)).read_bytes() == damaged
    assert "lowered lastApplied" in (backups[0] / "REPAIR.log").read_text()
    zr("verify", cut_dir)  # clean now
    # the repaired file is the damaged one with the cut entry's offset word zeroed, cut
    # after the last whole entry (449)
    repaired = rlog.read_bytes()
    expected = bytearray(damaged[: len(repaired)])
    expected[24 + 4 * 449 : 24 + 4 * 450] = bytes(4)
    assert repaired == expected and len(damaged) - len(repaired) == len(b"update 450") + 20 - 7
    d = open_data_dir(str(cut_dir))
    try:
        assert d.log.last_index == 449
        assert d.state is not None and d.state.last_applied == 449
        # every whole entry is still there, byte for byte; appending works again
        assert d.log.entry(449)[20:] == b"update 449"
        d.log.append_entry(os.urandom(12), 0, 2, b"after the repair")
        assert d.log.last_index == 450
    finally:
        d.close()


def test_a_cut_configuration_entry_moves_back_to_the_previous_one(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "peer", entries=20, config_at=(10, 20))
    cut(last_rlog(root), 3)
    proc = zr("repair", "--yes", root)
    assert "back from entry 20 to the CONFIG entry 10" in proc.stdout
    d = open_data_dir(str(root), read_only=True)
    try:
        assert (d.log.last_index, d.raft.peers_index) == (19, 10)
        assert [p[0] for p in d.raft.peers] == ["a", "b"]
    finally:
        d.close()


def test_without_an_earlier_config_entry_the_history_of_raft_pers_is_used(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "peer", entries=20, config_at=(20,))
    seed = [["a", "tcp://127.0.0.1:1"]]
    # what a peer's start writes: the seed configuration, before the CONFIG entry's record
    raft = (root / "raft.pers").read_bytes()
    (root / "raft.pers").write_bytes(
        mpack.pack({"peers": seed, "peersUpdateRequest": None, "peersIndex": None}) + raft
    )
    cut(last_rlog(root), 3)
    proc = zr("repair", "--yes", root)
    assert "to the seed configuration" in proc.stdout
    d = open_data_dir(str(root), read_only=True)
    try:
        assert (d.raft.peers_index, d.raft.peers) == (None, seed)
    finally:
        d.close()


def test_a_hole_in_the_middle_is_refused(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "peer", entries=40, capacity=16)  # files at 1, 16, 32
    middle = Path(index_file_path(str(root / "log"), 16))
    cut(middle, 5)
    proc = zr("verify", root, code=DAMAGE)
    assert "a hole in the log" in proc.stdout
    before = middle.read_bytes()
    proc = zr("repair", "--yes", root, code=1)
    assert "cannot repair" in proc.stdout + proc.stderr
    assert middle.read_bytes() == before


def test_a_torn_state_file_tail_is_reported_and_cut(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "peer", entries=5)
    state = root / "state.pers"
    whole = state.stat().st_size
    with open(state, "ab") as f:
        f.write(b"\x81\xab")  # the start of another map
    proc = zr("inspect", state, code=DAMAGE)
    assert f"{state} at offset {whole}: torn tail" in proc.stderr
    zr("repair", "--yes", root)
    assert state.stat().st_size == whole
    zr("verify", root)


def test_zr_log_compact_refuses_a_damaged_log(cut_dir: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in SRC))
    args = ["-d", str(cut_dir), "-i", "100", "-m", "zmqraft.client.tools.passthrough_state"]
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_log_compact", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 9, proc.stderr
    assert f"zr-log-compact: damage: {last_rlog(cut_dir)} at offset" in proc.stderr
    assert not (cut_dir / "compact" / "snap.new").exists()
