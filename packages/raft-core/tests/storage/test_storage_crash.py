"""Crash safety of the log (spec/storage.md §4.5): every state a crash can leave during a
trailing append or truncation reopens with no durable entry lost and no garbage entry
returned; corruption of the structure raises StorageError naming file and offset and leaves
every byte in place."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from storage_helpers import entries, tree_bytes
from zmqraft.core.storage.base import StorageError
from zmqraft.core.storage.files import FileLog, IndexFile
from zmqraft.core.storage.files.indexfile import TABLE_POSITION

FIRST = "log/00000/00/00/00000000000001.rlog"  # capacity 8 at index 1 -> C = 7 (1..7)
SECOND = "log/00000/00/00/00000000000008.rlog"


def open_log(root: Path, **kw: bool) -> FileLog:
    return FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=8, **kw)


@dataclass
class Trailing:
    """A template directory and the bytes of the last file before and after a trailing append."""

    root: Path
    durable: list[bytes]
    batch: list[bytes]
    before: bytes
    after: bytes
    second_after: bytes = b""


@pytest.fixture
def trailing(tmp_path: Path, no_sync: None) -> Trailing:
    root = tmp_path / "template"
    log = open_log(root)
    durable = entries(1, 5, size=9)
    log.append(1, durable[:3])
    log.append(4, durable[3:])
    before = (root / FIRST).read_bytes()
    batch = entries(6, 2, size=11)
    log.append(6, batch)
    log.close()
    return Trailing(root, durable, batch, before, (root / FIRST).read_bytes())


@pytest.fixture
def rolling(tmp_path: Path, no_sync: None) -> Trailing:
    """The trailing batch fills the first file and continues in a new one."""
    root = tmp_path / "template"
    log = open_log(root)
    durable = entries(1, 5, size=9)
    log.append(1, durable)
    before = (root / FIRST).read_bytes()
    batch = entries(6, 4, size=11)
    log.append(6, batch)
    log.close()
    t = Trailing(root, durable, batch, before, (root / FIRST).read_bytes())
    t.second_after = (root / SECOND).read_bytes()
    return t


class Cases:
    def __init__(self, base: Path, template: Path) -> None:
        self.base = base
        self.template = template
        self.n = 0

    def copy(self) -> Path:
        self.n += 1
        root = self.base / f"case{self.n}"
        shutil.copytree(self.template, root)
        return root


def reopen_and_check(root: Path, durable: list[bytes], batch: list[bytes]) -> list[bytes]:
    """No durable entry lost, nothing but a prefix of what was written, and the log keeps
    working (an append after the crash reads back after another restart)."""
    log = open_log(root)
    got = log.entries(1, log.last_index)
    assert got[: len(durable)] == durable
    assert got == (durable + batch)[: len(got)]
    extra = entries(100, 2, term=2, size=5)
    log.append(log.last_index + 1, extra)
    log.close()
    again = open_log(root)
    assert again.entries(1, again.last_index) == got + extra
    again.close()
    return got


def with_table(data: bytes, table_source: bytes, capacity: int = 7) -> bytes:
    end = TABLE_POSITION + 4 * capacity
    return data[:TABLE_POSITION] + table_source[TABLE_POSITION:end] + data[end:]


def test_offsets_durable_data_torn_at_every_byte(trailing: Trailing, tmp_path: Path) -> None:
    """The offset words reached the disk, the data write was cut short at every offset."""
    cases = Cases(tmp_path, trailing.root)
    ends = [len(trailing.before) + 31, len(trailing.before) + 62]
    seen = set()
    for cut in range(len(trailing.before), len(trailing.after) + 1):
        root = cases.copy()
        (root / FIRST).write_bytes(trailing.after[:cut])
        got = reopen_and_check(root, trailing.durable, trailing.batch)
        assert len(got) == 5 + sum(cut >= e for e in ends)
        seen.add(len(got))
    assert seen == {5, 6, 7}


def test_data_torn_offsets_not_written(trailing: Trailing, tmp_path: Path) -> None:
    """The commit never reached the disk: whatever the data region holds, only the durable
    entries come back, and the next append overwrites the garbage."""
    cases = Cases(tmp_path, trailing.root)
    old_table = with_table(trailing.after, trailing.before)
    for cut in range(len(trailing.before), len(trailing.after) + 1):
        root = cases.copy()
        (root / FIRST).write_bytes(old_table[:cut])
        assert reopen_and_check(root, trailing.durable, []) == trailing.durable
    for at in range(len(trailing.before), len(trailing.after)):
        root = cases.copy()
        garbage = bytearray(old_table)
        garbage[at] ^= 0xFF
        (root / FIRST).write_bytes(bytes(garbage))
        assert reopen_and_check(root, trailing.durable, []) == trailing.durable


@pytest.mark.parametrize(("words", "count"), [((0, 0), 5), ((1, 0), 6), ((1, 1), 7), ((0, 1), 5)])
def test_offset_words_written_in_any_order(
    trailing: Trailing, tmp_path: Path, words: tuple[int, int], count: int
) -> None:
    """Each 4-byte word is old or new; a new word behind an old one is a dirty leftover."""
    root = Cases(tmp_path, trailing.root).copy()
    data = bytearray(trailing.after)
    for slot, new in zip((5, 6), words):
        if not new:
            data[TABLE_POSITION + 4 * slot : TABLE_POSITION + 4 * slot + 4] = bytes(4)
    (root / FIRST).write_bytes(bytes(data))
    got = reopen_and_check(root, trailing.durable, trailing.batch)
    assert len(got) == count
    table = struct.unpack_from("<7I", (root / FIRST).read_bytes(), TABLE_POSITION)
    assert table.count(0) == 7 - min(7, count + 2)


def test_roll_over_crash_states(rolling: Trailing, tmp_path: Path) -> None:
    cases = Cases(tmp_path, rolling.root)
    full = rolling.durable + rolling.batch[:2]
    # the new file never appeared
    root = cases.copy()
    (root / SECOND).unlink()
    assert reopen_and_check(root, full, []) == full
    # the new file exists with its header only
    root = cases.copy()
    header = IndexFile.open(str(root / SECOND)).data_pos
    blank = with_table(rolling.second_after, bytes(len(rolling.second_after)), capacity=8)[:header]
    (root / SECOND).write_bytes(blank)
    assert reopen_and_check(root, full, []) == full
    assert not (root / "log/00000/00/00/0000000000000f.rlog").exists()
    # its data torn at every byte, offsets durable
    for cut in range(header, len(rolling.second_after) + 1):
        root = cases.copy()
        (root / SECOND).write_bytes(rolling.second_after[:cut])
        got = reopen_and_check(root, full, rolling.batch[2:])
        assert len(got) == 7 + (cut >= header + 31) + (cut >= header + 62)


@pytest.mark.parametrize(("zeroed", "count"), [((1, 0), 3), ((0, 1), 4), ((1, 1), 3)])
def test_truncation_crash(tmp_path: Path, no_sync: None, zeroed: tuple[int, int], count: int) -> None:
    """truncate(3) zeroes off[3] and off[4] in one write: any word-wise outcome reopens as
    either the old or the new log (never garbage)."""
    root = tmp_path / "t"
    log = open_log(root)
    durable = entries(1, 5)
    log.append(1, durable)
    log.close()
    data = bytearray((root / FIRST).read_bytes())
    for slot, z in zip((3, 4), zeroed):
        if z:
            data[TABLE_POSITION + 4 * slot : TABLE_POSITION + 4 * slot + 4] = bytes(4)
    (root / FIRST).write_bytes(bytes(data))
    got = reopen_and_check(root, durable[:3], durable[3:])
    assert len(got) == count


def test_truncation_across_files_crash(tmp_path: Path, no_sync: None) -> None:
    """A later file zeroed but not yet unlinked is an empty trailing file: removed at open."""
    root = tmp_path / "t"
    log = open_log(root)
    log.append(1, entries(1, 10))
    log.close()
    f = IndexFile.open(str(root / SECOND), writable=True)
    f.rollback(0)
    f.close()
    got = reopen_and_check(root, entries(1, 7), [])
    assert got == entries(1, 7)


def structural_offsets(path: Path) -> Iterator[int]:
    f = IndexFile.open(str(path))
    meta = TABLE_POSITION + 4 * f.capacity
    yield from range(TABLE_POSITION)  # RLOG header
    yield from range(meta + 4, meta + 8)  # META length
    yield from range(f.data_pos - 8, f.data_pos - 4)  # ITMZ token


@pytest.mark.parametrize("which", [FIRST, SECOND])
def test_structural_corruption_is_reported_and_nothing_changes(
    tmp_path: Path, no_sync: None, which: str
) -> None:
    root = tmp_path / "t"
    log = open_log(root)
    log.append(1, entries(1, 10))
    log.close()
    target = root / which
    pristine = target.read_bytes()
    offsets = list(structural_offsets(target))
    assert len(offsets) == 32
    for at in offsets:
        data = bytearray(pristine)
        data[at] ^= 0xFF
        target.write_bytes(bytes(data))
        before = tree_bytes(root)
        with pytest.raises(StorageError) as err:
            open_log(root)
        assert err.value.path == str(target), at
        assert err.value.offset is not None
        assert tree_bytes(root) == before
    target.write_bytes(pristine)
    assert open_log(root).entries(1, 10) == entries(1, 10)


def test_snapshot_corruption_is_reported_and_nothing_changes(tmp_path: Path, no_sync: None) -> None:
    root = tmp_path / "t"
    log = open_log(root)
    log.append(1, entries(1, 6))
    log.install_snapshot(log.snapshot.__class__(3, 1, 5), b"hello")
    log.close()
    snap = root / "snap"
    pristine = snap.read_bytes()
    for at in [*range(0, 12), *range(28, 36), *range(40, 44), *range(92, 96)]:
        data = bytearray(pristine)
        data[at] ^= 0xFF
        snap.write_bytes(bytes(data))
        before = tree_bytes(root)
        with pytest.raises(StorageError) as err:
            open_log(root)
        assert err.value.path == str(snap) and err.value.offset is not None, at
        assert tree_bytes(root) == before
    snap.write_bytes(pristine[:-1])  # a torn snapshot is never taken for a complete one
    with pytest.raises(StorageError, match="invalid snapshot file"):
        open_log(root)
