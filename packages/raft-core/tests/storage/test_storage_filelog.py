"""FileLog specifics: directory layout, start-up rules, capacities, snapshots, polling,
group commit and the reader/writer thread rule."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from storage_helpers import T0, entries, tree_bytes
from zmqraft.core.storage.base import SnapshotMeta, StorageError
from zmqraft.core.storage.files import FileLog, IndexFile, SnapshotFile, indexfile
from zmqraft.core.storage.files.fsutil import history_names


def open_log(root: Path, capacity: int = 4, **kw: object) -> FileLog:
    return FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=capacity, **kw)  # type: ignore[arg-type]


def rlogs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root / "log")) for p in (root / "log").rglob("*.rlog"))


def test_fresh_directory(tmp_path: Path) -> None:
    log = open_log(tmp_path, 16)
    assert rlogs(tmp_path) == ["00000/00/00/00000000000001.rlog"]
    snap = SnapshotFile.open(str(tmp_path / "snap"))
    assert snap.meta == SnapshotMeta(0, 0, 0) and (tmp_path / "snap").stat().st_size == 100
    assert IndexFile.open(str(tmp_path / "log/00000/00/00/00000000000001.rlog")).capacity == 15
    assert log.index_file_capacity == 16 and log.lowest_index == 1
    assert sorted(os.listdir(tmp_path)) == ["log", "snap"]


def test_files_tile_the_index_space(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 10))
    assert rlogs(tmp_path) == [
        "00000/00/00/00000000000001.rlog",
        "00000/00/00/00000000000004.rlog",
        "00000/00/00/00000000000008.rlog",
    ]
    assert log.find_index_file_path(8).endswith("00000000000008.rlog")
    assert [Path(p).name for p in log.prunable_files(9)] == ["00000000000001.rlog", "00000000000004.rlog"]


def test_capacity_is_rederived_from_the_first_file(tmp_path: Path) -> None:
    """spec §6.3: fixed at start; a replacing snapshot's first file only matters after a restart."""
    log = open_log(tmp_path, 16)
    log.append(1, entries(1, 3))
    log.install_snapshot(SnapshotMeta(26, 1, 1), b"s")  # new first file 27 with C = 16 - 27 % 16 = 5
    log.append(27, entries(27, 5 + 16 + 3))
    names = rlogs(tmp_path)
    assert names == [
        "00000/00/00/0000000000001b.rlog",
        "00000/00/00/00000000000020.rlog",
        "00000/00/00/00000000000030.rlog",
    ]
    assert IndexFile.open(str(tmp_path / "log" / names[1])).capacity == 16
    log.close()
    log = open_log(tmp_path, 16)
    assert log.index_file_capacity == 8  # nextPowerOfTwo(5)
    log.append(51, entries(51, 13 + 2))  # fills 48..63, then a new file at 64 with C=8
    assert IndexFile.open(str(tmp_path / "log/00000/00/00/00000000000040.rlog")).capacity == 8
    assert log.entries(27, 65) == entries(27, 24) + entries(51, 15)


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="power of two"):
        open_log(tmp_path, 12)
    with pytest.raises(ValueError, match="power of two"):
        open_log(tmp_path, 0)
    with pytest.raises(ValueError, match="inside the log"):
        FileLog(str(tmp_path / "log"), str(tmp_path / "log" / "snap"))
    assert not (tmp_path / "log").exists()


def test_empty_trailing_files_are_deleted(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 5))
    log.close()
    IndexFile.create(str(tmp_path / "log"), 8, 4)  # crash right after rolling over, twice
    IndexFile.create(str(tmp_path / "log"), 12, 4)
    ro = open_log(tmp_path, read_only=True)
    assert ro.last_index == 5 and len(rlogs(tmp_path)) == 4  # read-only deletes nothing
    log = open_log(tmp_path)
    assert log.last_index == 5 and rlogs(tmp_path)[-1].endswith("00000000000004.rlog")
    log.append(6, entries(6, 4))
    assert open_log(tmp_path).entries(1, 9) == entries(1, 9)


def test_empty_only_file_with_snapshot(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 3, term=2))
    log.install_snapshot(SnapshotMeta(3, 2, 0), b"")
    log.close()
    log = open_log(tmp_path)
    assert (log.first_index, log.last_index, log.last_term) == (4, 3, 2)


def test_snapshot_must_precede_the_first_file(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.install_snapshot(SnapshotMeta(9, 1, 0), b"")
    log.close()
    SnapshotFile.create(str(tmp_path / "other"), 5, 1, 0).replace(str(tmp_path / "snap"))
    before = tree_bytes(tmp_path)
    with pytest.raises(StorageError, match="does not precede") as err:
        open_log(tmp_path)
    assert err.value.path is not None and err.value.path.endswith("0000000000000a.rlog")
    assert err.value.offset == 16
    assert tree_bytes(tmp_path) == before


def test_interrupted_replacement_is_finished_at_open(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 10, term=1))
    log.close()
    # crash between installing the snapshot and setting the old log aside
    SnapshotFile.create(str(tmp_path / "snap.new"), 50, 3, 2, b"xy").replace(str(tmp_path / "snap"))
    ro = open_log(tmp_path, read_only=True)
    assert (ro.first_index, ro.last_index, ro.last_term) == (51, 50, 3)
    log = open_log(tmp_path)
    assert (log.first_index, log.last_index, log.last_term) == (51, 50, 3)
    assert rlogs(tmp_path) == ["00000/00/00/00000000000033.rlog"]
    aside = [p for p in os.listdir(tmp_path) if p.startswith("log-")]
    assert len(aside) == 1 and len(list((tmp_path / aside[0]).rglob("*.rlog"))) == 3
    log.append(51, entries(51, 2, term=4))
    assert open_log(tmp_path).entries(51, 52) == entries(51, 2, term=4)


def test_stale_temp_snapshots_are_removed(tmp_path: Path) -> None:
    open_log(tmp_path).close()
    (tmp_path / "snap.tmp-123-a").write_bytes(b"x")
    (tmp_path / "snap.tmp-x-a").write_bytes(b"x")
    open_log(tmp_path, read_only=True)
    assert (tmp_path / "snap.tmp-123-a").exists()
    open_log(tmp_path)
    assert not (tmp_path / "snap.tmp-123-a").exists() and (tmp_path / "snap.tmp-x-a").exists()


def test_read_only_mode(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no log files"):
        open_log(tmp_path, read_only=True)
    assert not (tmp_path / "log").exists()
    (tmp_path / "log").mkdir()
    with pytest.raises(StorageError, match="snapshot file not found"):
        open_log(tmp_path, read_only=True)
    log = open_log(tmp_path)
    log.append(1, entries(1, 2))
    log.close()
    ro = open_log(tmp_path, read_only=True)
    assert ro.entries(1, 2) == entries(1, 2)
    for call in (
        lambda: ro.append(3, entries(3, 1)),
        lambda: ro.truncate(1),
        lambda: ro.install_snapshot(SnapshotMeta(2, 1, 0), b""),
        lambda: ro.snapshot_writer(SnapshotMeta(2, 1, 0)),
    ):
        with pytest.raises(StorageError, match="read-only"):
            call()


def test_compaction_keeps_a_backup_of_the_old_snapshot(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(1, entries(1, 6))
    log.install_snapshot(SnapshotMeta(3, 1, 2), b"ab")
    log.install_snapshot(SnapshotMeta(5, 1, 3), b"cde")
    backups = history_names(str(tmp_path / "snap"))
    assert len(backups) == 2
    assert SnapshotFile.open(str(tmp_path / backups[0])).meta == SnapshotMeta(0, 0, 0)
    assert SnapshotFile.open(str(tmp_path / backups[1])).read(0, 9) == b"ab"
    assert [p for p in os.listdir(tmp_path) if ".tmp-" in p] == []


def test_old_snapshot_stays_readable_after_install(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(1, entries(1, 6))
    log.install_snapshot(SnapshotMeta(3, 1, 5), b"first")
    held = log.snapshot_file
    log.install_snapshot(SnapshotMeta(5, 1, 6), b"second")
    assert held.read(0, 10) == b"first" and log.read_snapshot(0, 10) == b"second"


def test_install_from_a_finished_file(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(1, entries(1, 6, term=2))
    stream = log.create_snapshot_stream(4, 2)
    stream.write(b"abc")
    f = stream.finish()
    with pytest.raises(ValueError):
        log.install_snapshot(SnapshotMeta(4, 2, 4), path=f.path)
    log.install_snapshot(SnapshotMeta(4, 2, 3), path=f.path, compact_only=True)
    assert log.snapshot == SnapshotMeta(4, 2, 3) and not os.path.exists(f.path)
    tmp = log.create_tmp_snapshot(6, 2, 2)
    tmp.write(0, b"zz")
    assert log.install_snapshot_file(tmp, compact_only=True)
    assert open_log(tmp_path).read_snapshot(0, 5) == b"zz"


def test_poll_install_path(tmp_path: Path) -> None:
    log = open_log(tmp_path, install_path=str(tmp_path / "compact" / "snap.new"))
    assert (tmp_path / "compact").is_dir()
    assert log.poll_install_path() is None
    log.append(1, entries(1, 8, term=2))
    target = tmp_path / "compact" / "snap.new"
    # an incomplete file (being written by a tool) is left for a later poll
    partial = SnapshotFile.create(str(target), 5, 2, 10)
    partial.write(0, b"12345")
    assert log.poll_install_path() is None and target.exists()
    partial.write(5, b"67890")
    assert log.poll_install_path() == SnapshotMeta(5, 2, 10)
    assert not target.exists() and log.snapshot == SnapshotMeta(5, 2, 10)
    assert log.first_index == 6 and log.read_snapshot(0, 10) == b"1234567890"
    SnapshotFile.create(str(target), 7, 9, 0)  # wrong term: not a compaction
    with pytest.raises(StorageError, match="not a compaction"):
        log.poll_install_path()
    assert target.exists() and log.snapshot == SnapshotMeta(5, 2, 10)


def test_data_area_limit_starts_a_file_at_the_next_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original fails here (spec §6.3); we roll over at the next index instead."""
    monkeypatch.setattr(indexfile, "MAX_DATASIZE", 100)
    log = open_log(tmp_path, 16)
    want = entries(1, 10, size=10)  # 30 bytes: 3 per file
    log.append(1, want)
    assert [Path(p).name for p in log.index_file_paths()] == [
        "00000000000001.rlog",
        "00000000000004.rlog",
        "00000000000007.rlog",
        "0000000000000a.rlog",
    ]
    for log in (log, open_log(tmp_path, 16)):  # noqa: B020
        assert log.entries(1, 10) == want and log.term_at(5) == 1
        assert [i for _, i in log.request_ids(T0 * 1000, None, None)] == list(range(1, 11))
    log.truncate(5)
    log.append(6, entries(60, 3, size=10, term=2))
    assert open_log(tmp_path, 16).entries(1, 8) == want[:5] + entries(60, 3, size=10, term=2)
    with pytest.raises(ValueError, match="does not fit"):
        log.append(9, entries(9, 1, size=200))


def test_one_data_write_and_one_sync_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(tmp_path, 128)
    log.append(1, entries(1, 120))
    calls: list[str] = []
    for name in ("pwritev", "fdatasync", "fsync", "pwrite"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real: calls.append(_n) or _r(*a))
    log.append(121, entries(121, 5))
    assert calls == ["pwritev", "pwrite", "fdatasync"]
    calls.clear()
    log.append(126, entries(126, 10))  # 2 fit, then a new file: created (header, fsync, dir fsync)
    assert calls == [
        "pwritev",
        "pwrite",
        "fdatasync",
        "pwrite",
        "fsync",
        "fsync",
        "pwritev",
        "pwrite",
        "fdatasync",
    ]


def test_a_reader_thread_sees_only_durable_entries(tmp_path: Path) -> None:
    log = open_log(tmp_path, 8)
    want = entries(1, 600, size=5)
    errors: list[BaseException] = []
    done = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        try:
            while not done.is_set() or reads == 0:
                last = log.last_index
                if last:
                    first = max(1, last - 20)
                    assert log.entries(first, last) == want[first - 1 : last]
                    assert log.term_at(last) == 1
                    reads += 1
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for start in range(0, 600, 7):
            log.append(start + 1, want[start : start + 7])
    finally:
        done.set()
        t.join()
    assert not errors and reads > 0


def test_lru_cache_of_open_files(tmp_path: Path, no_sync: None) -> None:
    log = open_log(tmp_path, 1)  # one entry per file
    want = entries(1, 160)
    log.append(1, want)
    log.close()
    log = open_log(tmp_path, 1)
    for i in list(range(1, 161)) + list(range(160, 0, -3)):
        assert log.entry(i) == want[i - 1]
        assert len(log._files) < 75
    assert [i for _, i in log.request_ids(T0 * 1000, None, None)] == list(range(1, 161))


def test_missing_middle_file_is_reported(tmp_path: Path) -> None:
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 12))
    log.close()
    os.unlink(tmp_path / "log/00000/00/00/00000000000004.rlog")
    log = open_log(tmp_path, 4)
    assert log.entry(2) == entries(2, 1)[0]
    with pytest.raises(StorageError, match=r"could not find index file for: 00000000000005"):
        log.entry(5)
    log.close()
    # a file whose offset table ends before the entries the log claims (torn in the middle)
    IndexFile.create(str(tmp_path / "log"), 4, 4).close()
    log = open_log(tmp_path, 4)
    with pytest.raises(StorageError, match="missing from the index file") as err:
        log.entry(5)
    assert err.value.path is not None and err.value.path.endswith("00000000000004.rlog")
    assert err.value.offset == 24 + 4 * 0


def test_a_stale_directory_listing_is_refreshed(tmp_path: Path) -> None:
    """A reader may cache a leaf listing made just before the writer created a file."""
    log = open_log(tmp_path, 4)
    log.append(1, entries(1, 10))
    log._leaves["000000000"] = ["00000000000001.rlog"]
    assert log.entry(5) == entries(5, 1)[0]
    assert "00000000000004.rlog" in log._leaves["000000000"]
