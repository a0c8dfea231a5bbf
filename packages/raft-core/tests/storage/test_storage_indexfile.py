"""IndexFile: append / commit / rollback per spec/storage.md §4.5, validation at open."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from storage_helpers import entries
from zmqraft.core.storage.base import StorageError
from zmqraft.core.storage.files import indexfile
from zmqraft.core.storage.files.indexfile import TABLE_POSITION, IndexFile


def table(path: str, capacity: int) -> list[int]:
    raw = Path(path).read_bytes()
    return list(struct.unpack_from(f"<{capacity}I", raw, TABLE_POSITION))


def test_append_read_reopen(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 8, 8)
    batch = entries(8, 5, size=7)
    assert f.append(batch) == 5
    assert f.next_index == 13 and f.read_entries(0, 5) == batch
    assert f.term_of(4) == 1 and f.read_slice(2, 0, 12) == batch[2][:12]
    g = IndexFile.open(f.path)
    assert (g.first_index, g.capacity, g.next_at) == (8, 8, 5)
    assert g.read_entries(1, 3) == batch[1:4]
    assert table(f.path, 8) == [27, 54, 81, 108, 135, 0, 0, 0]
    assert g.meta() is not None and set(g.meta() or {}) == {"created", "hostname"}


def test_capacity_limits_a_batch(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 1, 4)  # C = 3
    assert f.append(entries(1, 5)) == 3
    assert f.append(entries(4, 1)) == 0
    assert f.next_index == 4


def test_max_datasize_limits_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexfile, "MAX_DATASIZE", 100)
    f = IndexFile.create(str(tmp_path), 0, 16)
    assert f.append(entries(0, 5, size=10)) == 3  # 30 bytes each
    assert f.append(entries(3, 1, size=10)) == 0
    assert f.data_size == 90


def test_empty_entry_is_refused(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 4)
    with pytest.raises(ValueError):
        f.append([b"x", b""])
    assert f.next_at == 0


def test_rollback_zeroes_offsets_keeps_data(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 16, 16)
    f.append(entries(16, 6, size=8))
    size = os.path.getsize(f.path)
    f.rollback(3)
    assert f.next_at == 3 and os.path.getsize(f.path) == size
    assert table(f.path, 16)[:7] == [28, 56, 84, 0, 0, 0, 0]
    assert IndexFile.open(f.path).next_at == 3
    f.rollback(3)  # no-op
    with pytest.raises(StorageError, match="out of bounds"):
        f.rollback(4)


def test_append_after_rollback_syncs_data_before_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = IndexFile.create(str(tmp_path), 0, 16)
    f.append(entries(0, 4))
    f.rollback(2)
    calls: list[str] = []
    real_pwrite, real_pwritev, real_sync = os.pwrite, os.pwritev, os.fdatasync
    monkeypatch.setattr(os, "pwrite", lambda fd, d, o: calls.append(f"pwrite@{o}") or real_pwrite(fd, d, o))
    monkeypatch.setattr(
        os, "pwritev", lambda fd, b, o: calls.append(f"pwritev@{o}") or real_pwritev(fd, b, o)
    )
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("sync") or real_sync(fd))
    new = entries(10, 1, size=12)
    f.append(new)
    # data overwrites stale bytes: data, sync, offsets, sync
    assert calls == [f"pwritev@{f.data_pos + 60}", "sync", f"pwrite@{TABLE_POSITION + 8}", "sync"]
    assert IndexFile.open(f.path).read_entries(2, 1) == new


def test_group_commit_is_one_write_and_one_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = IndexFile.create(str(tmp_path), 0, 128)
    calls: list[str] = []
    real_pwrite, real_pwritev, real_sync = os.pwrite, os.pwritev, os.fdatasync
    monkeypatch.setattr(os, "pwrite", lambda fd, d, o: calls.append("pwrite") or real_pwrite(fd, d, o))
    monkeypatch.setattr(os, "pwritev", lambda fd, b, o: calls.append("pwritev") or real_pwritev(fd, b, o))
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("sync") or real_sync(fd))
    assert f.append(entries(0, 64, size=80)) == 64
    assert calls == ["pwritev", "pwrite", "sync"]  # data, offset words, one fdatasync


def test_dirty_offsets_are_cleared_before_commit(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    f.append(entries(0, 2))
    # leftovers after a zero (e.g. a torn rollback): slots 3 and 4 non-zero behind a zero at 2
    with open(f.path, "r+b") as h:
        h.seek(TABLE_POSITION + 12)
        h.write(struct.pack("<2I", 200, 300))
    g = IndexFile.open(f.path, writable=True)
    assert g.next_at == 2
    g.append(entries(2, 2))
    assert table(f.path, 8) == [30, 60, 90, 120, 0, 0, 0, 0]
    g.append(entries(4, 1))
    assert IndexFile.open(f.path).next_at == 5


def test_dirty_offsets_right_after_the_batch(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    f.append(entries(0, 1))
    with open(f.path, "r+b") as h:
        h.seek(TABLE_POSITION + 8)
        h.write(struct.pack("<3I", 55, 66, 77))  # slot 2..4 dirty, slot 1 zero
    g = IndexFile.open(f.path, writable=True)
    g.append(entries(1, 1))
    assert table(f.path, 8) == [30, 60, 0, 0, 0, 0, 0, 0]


def test_uncommitted_writes_and_commit(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 4)
    batch = entries(0, 3)
    assert f.write_uncommitted(0, batch[0]) and f.write_uncommitted(1, batch[1])
    assert f.next_at == 0 and table(f.path, 4) == [0, 0, 0, 0]
    assert IndexFile.open(f.path).next_at == 0
    with pytest.raises(StorageError, match="non linear"):
        f.write_uncommitted(3, batch[2])
    assert f.commit() == 2
    assert table(f.path, 4) == [30, 60, 0, 0]
    f.write_uncommitted(1, batch[2])  # overwriting a committed slot rolls back first
    assert f.next_at == 1 and f.commit() == 2
    assert IndexFile.open(f.path).read_entries(0, 2) == [batch[0], batch[2]]
    assert f.write_uncommitted(2, batch[0]) and f.write_uncommitted(3, batch[1])
    assert not f.write_uncommitted(4, batch[2])  # table full
    assert f.commit() == 4


def test_destroy_unlinks(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 4)
    f.append(entries(0, 2))
    f.destroy()
    assert not os.path.exists(f.path)


def test_create_refuses_existing(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 5, 4)
    f.append(entries(5, 1))
    before = Path(f.path).read_bytes()
    with pytest.raises(StorageError, match="already exists"):
        IndexFile.create(str(tmp_path), 5, 4)
    assert Path(f.path).read_bytes() == before


def test_read_only_refuses_writes(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 4)
    g = IndexFile.open(f.path)
    with pytest.raises(StorageError, match="read-only"):
        g.append(entries(0, 1))


def test_reads_outside_the_committed_run(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 4)
    f.append(entries(0, 2))
    with pytest.raises(StorageError, match="out of bounds"):
        f.read_entries(1, 2)
    assert f.read_entries(0, 0) == []


def test_torn_tail_by_file_size(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    batch = entries(0, 4)
    f.append(batch)
    os.truncate(f.path, f.data_pos + 100)  # entries end at 30, 60, 90, 120
    g = IndexFile.open(f.path)
    assert g.next_at == 3 and g.read_entries(0, 3) == batch[:3]


def _corrupt(path: str, offset: int, value: bytes) -> None:
    with open(path, "r+b") as h:
        h.seek(offset)
        h.write(value)


@pytest.mark.parametrize(
    ("offset", "value", "reported", "message"),
    [
        (0, b"XLOG", 0, "no RLOG token"),
        (4, b"\x31\x00\x00\x00", 4, "RLOG length"),
        (8, b"\x02\x00\x00\x00", 8, "version"),
        (12, b"\x09\x00\x00\x00", 4, "RLOG length"),
        (12, b"\x00\x00\x00\x00", 12, "capacity"),
        (16, b"\x01\x00\x00\x00", 16, "index"),
        (20, b"\x01\x00\x00\x00", 16, "index"),
        (TABLE_POSITION + 4, b"\x05\x00\x00\x00", TABLE_POSITION + 4, "sanity index check"),
        (TABLE_POSITION + 8, b"\x10\x00\x00\x00", TABLE_POSITION + 8, "sanity index check"),
    ],
)
def test_corruption_names_file_and_offset(
    tmp_path: Path, offset: int, value: bytes, reported: int, message: str
) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    f.append(entries(0, 3))
    _corrupt(f.path, offset, value)
    before = Path(f.path).read_bytes()
    with pytest.raises(StorageError, match=message) as err:
        IndexFile.open(f.path, writable=True)
    assert err.value.path == f.path and err.value.offset == reported
    assert str(f.path) in str(err.value) and f"offset {reported}" in str(err.value)
    assert Path(f.path).read_bytes() == before


def test_corrupt_offset_beyond_eof_followed_by_smaller_is_not_a_torn_tail(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    f.append(entries(0, 3))
    _corrupt(f.path, TABLE_POSITION + 4, struct.pack("<I", 0x7FFFFFFF))
    with pytest.raises(StorageError, match="sanity") as err:
        IndexFile.open(f.path)
    assert err.value.offset == TABLE_POSITION + 8


def test_truncated_header_is_an_error(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 8)
    for cut in (0, 10, 23, 40, f.data_pos - 8, f.data_pos - 1):
        os.truncate(f.path, cut)
        with pytest.raises(StorageError) as err:
            IndexFile.open(f.path)
        assert err.value.path == f.path and err.value.offset is not None


def test_missing_itmz_is_an_error(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0, 2)
    f.append(entries(0, 1))
    _corrupt(f.path, f.data_pos - 8, b"ITMX")
    with pytest.raises(StorageError, match="end of file") as err:
        IndexFile.open(f.path)
    assert err.value.offset is not None and err.value.offset >= f.data_pos


def test_extra_chunks_before_itmz_are_skipped(tmp_path: Path) -> None:
    """Readers walk chunks from the end of the table to ITMZ (spec §4.1)."""
    f = IndexFile.create(str(tmp_path), 0, 2)
    raw = Path(f.path).read_bytes()
    extra = b"XTRA\x05\x00\x00\x00hello\x00\x00\x00"
    itmz = f.data_pos - 8
    Path(f.path).write_bytes(raw[:itmz] + extra + raw[itmz:])
    g = IndexFile.open(f.path, writable=True)
    assert g.data_pos == f.data_pos + len(extra)
    g.append(entries(0, 2))
    assert IndexFile.open(f.path).read_entries(0, 2) == entries(0, 2)
