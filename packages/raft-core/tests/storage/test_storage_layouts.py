"""The byte layouts of spec/storage.md as vectors: index files, paths, chunks, snapshots,
state files, names."""

from __future__ import annotations

import calendar
import re
import struct
from pathlib import Path

import pytest
from zmqraft.core.protocol import mpack
from zmqraft.core.protocol.entry import checkpoint_entry, encode_entry
from zmqraft.core.storage.base import StorageError
from zmqraft.core.storage.files import fsutil, logdir, tokenfile
from zmqraft.core.storage.files.indexfile import IndexFile, aligned_capacity
from zmqraft.core.storage.files.persistence import RaftPersistence
from zmqraft.core.storage.files.snapshotfile import SnapshotFile

CREATED = "2026-11-29T07:03:22.043Z"
CREATED_MS = calendar.timegm((2026, 11, 29, 7, 3, 22)) * 1000 + 43


def meta_bytes(created: str = CREATED, host: str = "vm") -> bytes:
    blob = b"\x82\xa7created" + bytes([0xA0 | len(created)]) + created.encode() + b"\xa8hostname"
    blob += bytes([0xA0 | len(host)]) + host.encode()
    return b"META" + struct.pack("<I", len(blob)) + blob + bytes(-len(blob) & 3)


def test_iso_timestamp_matches_the_meta_example() -> None:
    assert fsutil.iso_timestamp(CREATED_MS) == CREATED


def test_index_file_spec_example(tmp_path: Path) -> None:
    """spec §4.1: capacity 8 requested at index 1 -> C=7; entries of 21, 2 and 3 bytes."""
    f = IndexFile.create(str(tmp_path), 1, 8, now_ms=CREATED_MS, host="vm")
    assert f.capacity == 7 and f.data_pos == 116
    assert f.append([b"hello world, 21 bytes", b"ab"]) == 2
    assert f.append([b"cde"]) == 1
    raw = (tmp_path / "00000/00/00/00000000000001.rlog").read_bytes()
    expected = (
        bytes.fromhex("524c4f47 2c000000 01000000 07000000 01000000 00000000")
        + struct.pack("<7I", 21, 23, 26, 0, 0, 0, 0)
        + meta_bytes()
        + b"ITMZ\x00\x00\x00\x00"
        + b"hello world, 21 bytesabcde"
    )
    assert raw[0x34:0x38] == b"META" and raw[0x38:0x3C] == b"\x2e\x00\x00\x00"
    assert raw[0x6C:0x74] == b"ITMZ\x00\x00\x00\x00"
    assert raw == expected


@pytest.mark.parametrize(
    ("index", "requested", "capacity"),
    [
        (1, 16384, 16383),
        (0, 16384, 16384),
        (0x1FFFFFFF02, 0x4000, 0xFE),
        (10001, 16384, 6383),
        (16383, 16384, 1),
    ],
)
def test_capacity_alignment(index: int, requested: int, capacity: int) -> None:
    assert aligned_capacity(index, requested) == capacity
    assert (index + capacity) % requested == 0


def test_capacity_alignment_on_create(tmp_path: Path) -> None:
    f = IndexFile.create(str(tmp_path), 0x1FFFFFFF02, 0x4000)
    assert f.capacity == 0xFE
    raw = Path(f.path).read_bytes()
    assert struct.unpack_from("<IIIII", raw, 4) == (16 + 4 * 0xFE, 1, 0xFE, 0xFFFFFF02, 0x1F)


@pytest.mark.parametrize(
    ("index", "path"),
    [
        (1, "00000/00/00/00000000000001.rlog"),
        (0, "00000/00/00/00000000000000.rlog"),
        (0x123456, "00000/00/01/00000000123456.rlog"),
        (137_438_953_218, "00001/ff/ff/00001fffffff02.rlog"),
        ((1 << 53) - 1, "1ffff/ff/ff/1fffffffffffff.rlog"),
    ],
)
def test_index_file_paths(index: int, path: str) -> None:
    assert logdir.index_file_path("log", index) == "log/" + path
    assert logdir.parse_index_path("log/" + path) == index


@pytest.mark.parametrize(
    "bad",
    ["log/00000/00/01/00000000000001.rlog", "log/00000/00/00/0000000000001.rlog", "log/00000/00/00/x.rlog"],
)
def test_invalid_log_filenames(bad: str) -> None:
    with pytest.raises(StorageError, match="invalid log filename"):
        logdir.parse_index_path(bad)


def test_scan_order_and_filters(tmp_path: Path) -> None:
    for index in (0x100000, 5, 0x2F, 0x1FFFFFFF02):
        IndexFile.create(str(tmp_path), index, 4)
    (tmp_path / "00000/00/00/junk.rlog").write_bytes(b"")
    (tmp_path / "0000g").mkdir()
    (tmp_path / "00002/00/00").mkdir(parents=True)  # empty intermediate directories are skipped
    names = [Path(p).name for p in logdir.iter_index_files(str(tmp_path))]
    assert names == [
        "00000000000005.rlog",
        "0000000000002f.rlog",
        "00000000100000.rlog",
        "00001fffffff02.rlog",
    ]
    assert [Path(p).name for p in logdir.iter_index_files(str(tmp_path), reverse=True)] == names[::-1]


def test_token_chunks() -> None:
    assert tokenfile.pad4(0) == 0 and tokenfile.pad4(5) == 8 and tokenfile.pad4(8) == 8
    assert tokenfile.chunk(b"ABCD", b"xyz") == b"ABCD\x03\x00\x00\x00xyz\x00"
    # declared length larger than the data: header says 12, the data is padded to pad4(3)
    assert tokenfile.chunk(b"RLOG", b"xyz", 12) == b"RLOG\x0c\x00\x00\x00xyz\x00"


def test_snapshot_header_layout(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    s = SnapshotFile.create(
        str(tmp_path / "snap"), 0x123456789, 42, len(data), data, now_ms=CREATED_MS, host="vm"
    )
    raw = (tmp_path / "snap").read_bytes()
    assert raw[:36] == b"SNAP" + struct.pack("<IIQQQ", 28, 1, 0x123456789, 42, 1024)
    assert raw[36:92] == meta_bytes()
    assert raw[92:100] == b"DATA\x00\x00\x00\x00"
    assert raw[100:] == data and s.data_offset == 100


def test_snapshot_stream_patches_the_size(tmp_path: Path) -> None:
    from zmqraft.core.storage.files.snapshotfile import SnapshotStreamWriter

    w = SnapshotStreamWriter(str(tmp_path / "s"), 7, 3)
    w.write(b"stream-chunk-1;")
    with pytest.raises(StorageError, match="invalid snapshot file") as err:
        SnapshotFile.open(str(tmp_path / "s"))  # size field still 0: not openable yet
    assert err.value.offset == 28
    w.write(b"stream-chunk-2;")
    f = w.finish()
    again = SnapshotFile.open(str(tmp_path / "s"))
    assert (f.data_size, again.meta.size, again.read(0, 100)) == (30, 30, b"stream-chunk-1;stream-chunk-2;")


def test_log_entry_layout() -> None:
    e = encode_entry(bytes.fromhex("5956dc8826f27e10dccc0004"), 0, 1250999896491, b"\x00")
    assert e.hex() == "5956dc8826f27e10dccc000400ab89674523010000"
    cp = checkpoint_entry(2)
    assert cp.hex() == "0000000000000000000000000202000000000000c0" and len(cp) == 21


def test_rolled_raft_pers_example(tmp_path: Path) -> None:
    """spec §9: a rolled raft.pers is one 93-byte map, currentTerm 3e9 as float64."""
    p = RaftPersistence(str(tmp_path / "raft.pers"), [["a", "tcp://127.0.0.1:1"]])
    p.rotate({"currentTerm": 3_000_000_000, "votedFor": "a"})
    raw = (tmp_path / "raft.pers").read_bytes()
    expected = (
        b"\x85\xabcurrentTerm\xcb\x41\xe6\x5a\x0b\xc0\x00\x00\x00\xa8votedFor\xa1a\xa5peers\x91\x92\xa1a"
        b"\xb1tcp://127.0.0.1:1\xb2peersUpdateRequest\xc0\xaapeersIndex\xc0"
    )
    assert raw == expected and len(raw) == 93


@pytest.mark.parametrize(
    ("value", "hexed"),
    [
        (127, "7f"),
        (128, "cc80"),
        (65536, "ce00010000"),
        (2**31 - 1, "ce7fffffff"),
        (2**31, "cb41e0000000000000"),
        (4294967295, "cb41efffffffe00000"),
        (-33, "d0df"),
        (-(2**31) - 1, "cbc1e0000000200000"),
    ],
)
def test_msgpack_dialect(value: int, hexed: str) -> None:
    assert mpack.pack(value).hex() == hexed


def test_backup_and_temp_names() -> None:
    ms = calendar.timegm((2018, 9, 26, 14, 59, 36)) * 1000 + 817
    first = fsutil.timestamp_suffix(ms)
    second = fsutil.timestamp_suffix(ms)
    assert first == "2018-09-26-145936-8170"
    assert second == "2018-09-26-145936-8171"
    assert fsutil.timestamp_suffix(ms + 1) == "2018-09-26-145936-8180"
    assert re.fullmatch(r"/x/raft\.pers\.tmp-\d+-[0-9a-z]+", fsutil.temp_name("/x/raft.pers"))
    assert fsutil.base36(35) == "z" and fsutil.base36(36) == "10"


def test_history_cleanup_keeps_newest_60(tmp_path: Path) -> None:
    target = tmp_path / "snap"
    target.write_bytes(b"")
    names = [f"snap-2020-01-01-00{i // 60:02d}{i % 60:02d}-0000" for i in range(65)]
    names.insert(1, "snap-2020-01-01-000000-000a")  # same millisecond as the first, counter 10
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "snap-notes").write_bytes(b"")
    (tmp_path / "snap-2019-01-01-000000-0000").mkdir()  # directories (renamed logs) are kept
    assert fsutil.history_names(str(target))[:2] == names[:2]
    removed = fsutil.cleanup_history(str(target))
    assert removed == names[:6]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"snap-notes", "snap", "snap-2019-01-01-000000-0000", *names[6:]}
