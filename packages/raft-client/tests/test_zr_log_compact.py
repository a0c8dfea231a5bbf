"""``zr-log-compact``: a snapshot built offline from a running peer's files and installed by
that peer (``data.compact.watch``), a second compaction on top of the first, and every
documented exit status on a data directory written here."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from zmqraft.client import Client, Entry
from zmqraft.client.tools import zr_log_compact
from zmqraft.core.protocol.entry import EntryType, encode_entry
from zmqraft.core.storage.files import FileLog, SnapshotFile

INTEGRATION = Path(__file__).resolve().parents[3] / "tests" / "integration"
HAVE_HARNESS = (INTEGRATION / "raft_harness.py").is_file()
PASSTHROUGH = "zmqraft.client.tools.passthrough_state"

pytestmark = [pytest.mark.timeout(90)]


def compact(*args: str | Path, code: int = 0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_log_compact", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def snapshot_data(path: Path) -> tuple[int, int, bytes]:
    snap = SnapshotFile.open(str(path))
    try:
        return snap.index, snap.term, snap.read(0, snap.data_size)
    finally:
        snap.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness")
def test_a_running_peer_installs_the_snapshot(cluster_factory: Callable[..., Any]) -> None:
    # a request-id cache of 50: after a restart the prune index is (last index - 50)
    cluster = cluster_factory(
        data={"compact": {"watch": True, "watchInterval": 50}},
        indexFileCapacity=64,
        requestIdTtl=None,
        requestIdCacheMax=50,
    )
    cluster.start()
    cluster.leader()
    u = cluster.peers["1"].url
    sec = cluster.secret.decode()  # each test cluster has a secret of its own
    with Client(list(cluster.urls().values()), secret=sec) as client:
        last = 0
        for n in range(300):
            last = client.request_update(b"d%03d," % n, timeout=10)
        cluster.wait_applied(last)
        log = [e for e in client.request_entries(0) if isinstance(e, Entry)]
    cluster.peers["1"].stop()
    cluster.peers["1"].start()
    with Client([u], secret=sec) as client:
        info = wait_for("peer 1 back", lambda: client.request_log_info(url=u, timeout=5))
    index = min(info.commit_index, info.prune_index)
    assert 0 < index < last

    data_dir = cluster.data_dir("1")
    out = compact("-d", data_dir, "-p", u, "-k", sec, "-m", PASSTHROUGH)
    assert f"compaction index from {u}: {index} (commit " in out.stderr
    assert "a peer installs it only with data.compact.watch: true" in out.stderr
    # the files below the one holding the index (capacity 64: 1, 0x40, 0x80 when index >= 0xc0)
    files = out.stdout.split()
    holder = FileLog(str(data_dir / "log"), str(data_dir / "snap"), read_only=True)
    try:
        assert files == holder.prunable_files(index)
        assert len(files) == index // 64 and all(Path(f).is_file() for f in files)
    finally:
        holder.close()

    # the peer watches compact/snap.new and installs it
    with Client([u], secret=sec) as client:
        info = wait_for(
            "the install", lambda: (i := client.request_log_info(url=u, timeout=5)).first_index > 1 and i
        )
    assert info.first_index == index + 1 and info.snapshot_size > 0
    assert not (data_dir / "compact" / "snap.new").exists()
    snap_index, snap_term, data = snapshot_data(data_dir / "snap")
    expected = b"".join(e.data for e in log if e.index <= index and e.type == EntryType.STATE)
    assert (snap_index, snap_term) == (index, log[index - 1].term)
    assert gzip.decompress(data) == expected

    # a second compaction (peer stopped) starts from that snapshot: unzipped, then the rest
    cluster.peers["1"].stop()
    target = data_dir / "again.snap"
    out = compact("-d", data_dir, "-i", last, "-m", PASSTHROUGH, "-t", target, "-N")
    assert out.stdout == ""
    assert snapshot_data(target)[0] == last
    everything = b"".join(e.data for e in log if e.type == EntryType.STATE)
    assert gzip.decompress(snapshot_data(target)[2]) == everything


def test_the_readme_command_says_what_to_do_while_request_ids_are_kept(
    cluster_factory: Callable[..., Any],
) -> None:
    """With the default requestIdTtl (8 h) the prune index stays 0: ``-p`` alone has nothing
    to compact and says so (with the commit index to give to -i); ``-i`` compacts."""
    cluster = cluster_factory()
    cluster.start()
    cluster.leader()
    u = cluster.peers["1"].url
    sec = cluster.secret.decode()
    with Client(list(cluster.urls().values()), secret=sec) as client:
        last = [client.request_update(b"r%d" % n, timeout=10) for n in range(5)][-1]
    cluster.wait_applied(last)
    data_dir = cluster.data_dir("1")
    out = compact("-d", data_dir, "-p", u, "-k", sec, "-m", PASSTHROUGH, code=5)
    errors = out.stderr.splitlines()
    assert errors[0] == f"connecting to {u} ..." and "Traceback" not in out.stderr
    commit = int(errors[1].split("(commit ")[1].split(",")[0])
    assert commit >= last
    assert errors[-1] == (
        f"zr-log-compact: nothing to compact up to index 0: {u} reports commit index {commit} and "
        "prune index 0 (the log keeps the request ids of requestIdTtl, 8 h by default; the snapshot "
        f"is at 0); give -i INDEX (at most {commit}) to compact anyway"
    )
    done = compact("-d", data_dir, "-i", last, "-m", PASSTHROUGH)
    assert "a peer installs it only with data.compact.watch: true" in done.stderr
    assert snapshot_data(data_dir / "compact" / "snap.new")[0] == last


# ---- offline ----------------------------------------------------------------------------------


def make_datadir(root: Path, count: int = 120) -> list[bytes]:
    log = FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=32)
    datas = [b"e%03d;" % n for n in range(count)]
    try:
        log.append(1, [encode_entry(bytes(12), EntryType.CHECKPOINT, 1, b"\xc0")])
        log.append(2, [encode_entry(b"%012d" % n, EntryType.STATE, 2, d) for n, d in enumerate(datas)])
    finally:
        log.close()
    return datas


SERIALIZING = """
from zmqraft.core.statemachine import StateMachine

class Joined(StateMachine):
    def __init__(self, options):
        super().__init__(0)
        self.options = options
        self.parts = []

    def apply_entries(self, entries, next_index, term, snapshot=None):
        self.parts += [bytes(e[20:]) for e in entries if e[12] == 0]
        self.last_applied = next_index + len(entries) - 1
        return self.last_applied

    def serialize(self):
        return repr(sorted(self.options.items())).encode() + b"|" + b"".join(self.parts)

class Helper:
    pass
"""

NO_HOOK = """
from zmqraft.core.statemachine import StateMachine

class Plain(StateMachine):
    def __init__(self, options):
        super().__init__(0)
"""


def test_offline_hooks_options_and_exit_codes(tmp_path: Path) -> None:
    root = tmp_path / "raft"
    datas = make_datadir(root)
    (tmp_path / "joined.py").write_text(SERIALIZING)
    (tmp_path / "plain.py").write_text(NO_HOOK)
    config = tmp_path / "c.json"
    config.write_text(
        '{"raft": {"data": {"path": "raft", "compact": {"state": {"path": "joined.py:Joined",'
        ' "options": {"compressionLevel": 0, "x": 1}}}}}}'
    )

    # everything from the config file (paths relative to its directory / the cwd), -z, serialize()
    out = compact("-c", config, "-i", 50, "-z", "3", cwd=tmp_path)
    index, term, data = snapshot_data(root / "compact" / "snap.new")
    assert (index, term) == (50, 2)
    # config level 0 -> no unzipSnapshot default; -z overrides the level
    options = repr(sorted({"compressionLevel": 3, "x": 1}.items())).encode()
    assert data == options + b"|" + b"".join(datas[:49])
    assert out.stdout.split() == [str(root / "log" / "00000" / "00" / "00" / "00000000000001.rlog")]

    # the passthrough example at level 0: the data itself; -U; a backup of the old target
    compact("-d", root, "-i", 121, "-m", PASSTHROUGH, "-z", "0", "-U", "-N")
    assert snapshot_data(root / "compact" / "snap.new")[2] == b"".join(datas)
    assert len(list((root / "compact").glob("snap.new-*"))) == 1
    assert not list((root / "compact").glob("*.tmp-*"))

    sm = ["-m", PASSTHROUGH]
    assert "no such raft data dir" in compact("-d", tmp_path / "none", "-i", 5, *sm, code=8).stderr
    assert "no state machine" in compact("-d", root, "-i", 5, code=3).stderr
    assert "can not import" in compact("-d", root, "-i", 5, "-m", "no_such_module_zr", code=3).stderr
    assert "give the compaction index" in compact("-d", root, *sm, code=4).stderr
    assert "last index: 500 not found in the file log" in compact("-d", root, "-i", 500, *sm, code=5).stderr
    assert "offers no snapshot" in compact("-d", root, "-i", 5, "-m", tmp_path / "plain.py", code=6).stderr
    assert "0..9" in compact("-d", root, "-i", 5, *sm, "-z", "10", code=7).stderr
    err = compact("-d", root, "-i", 5, "-m", f"{tmp_path / 'joined.py'}:Nope", code=3).stderr
    assert "has no Nope" in err


def test_progress_bar_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "raft"
    datas = make_datadir(root, 300)
    shown: list[int] = []
    real = zr_log_compact.progress

    def spy(total: int) -> Any:
        bar = real(total)
        shown.append(total if bar.__class__.__name__ == "Progress" else -1)
        return bar

    monkeypatch.setattr(zr_log_compact, "BATCH", 16)
    monkeypatch.setattr(zr_log_compact, "progress", spy)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert zr_log_compact.main(["-d", str(root), "-i", "301", "-m", PASSTHROUGH]) == 0
    assert shown == [301]
    assert gzip.decompress(snapshot_data(root / "compact" / "snap.new")[2]) == b"".join(datas)
    assert capsys.readouterr().out.split()[-1].endswith("00000000000100.rlog")
