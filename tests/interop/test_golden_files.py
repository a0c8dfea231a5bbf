"""Byte-compatibility of the storage formats with the original (tests/interop/golden).

Every file in ``vectors/`` and ``datadir-2/`` reads back exactly as the manifests say, and
writing the same content with our code gives byte-identical files (META chunks carry a
creation time and host name: we write the ones recorded in the golden file).
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import msgpack
import pytest
from zmqraft.core.protocol.entry import entry_term
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.files import (
    FileLog,
    IndexFile,
    RaftPersistence,
    SnapshotFile,
    StateMachinePersistence,
)
from zmqraft.core.storage.files.persistence import read_records
from zmqraft.core.storage.files.snapshotfile import SnapshotStreamWriter

GOLDEN = Path(__file__).parent / "golden"
VECTORS = GOLDEN / "vectors"
DATADIR = GOLDEN / "datadir-2"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
DD = json.loads((GOLDEN / "datadir-2.manifest.json").read_text())
BY_NAME = {v["name"]: v for v in MANIFEST["vectors"]}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso_ms(created: str) -> int:
    """'2026-11-29T07:14:24.086Z' -> epoch milliseconds."""
    m = re.fullmatch(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d{3})Z", created)
    assert m, created
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000 + ms


def meta_of(f: IndexFile | SnapshotFile) -> tuple[int, str]:
    meta = f.meta() if isinstance(f, IndexFile) else f.file_meta()
    assert meta is not None and list(meta) == ["created", "hostname"]
    return iso_ms(str(meta["created"])), str(meta["hostname"])


def check_entries(got: list[bytes], expected: list[dict[str, Any]]) -> None:
    assert len(got) == len(expected)
    for raw, e in zip(got, expected):
        assert raw.hex() == e["entryHex"]
        assert raw[:12].hex() == e["requestId"] and raw[12] == e["type"]
        assert entry_term(raw) == e["term"] and raw[20:].hex() == e["dataHex"]


def segments_of(path: Path, start: int) -> list[dict[str, Any]]:
    """Chunk walk from ``start`` (for the manifests' ``segments``)."""
    raw = path.read_bytes()
    out: list[dict[str, Any]] = []
    pos = start
    while True:
        token = raw[pos : pos + 4].decode()
        size = int.from_bytes(raw[pos + 4 : pos + 8], "little")
        seg: dict[str, Any] = {"token": token, "offset": pos, "size": size}
        if token == "META":
            seg["decoded"] = msgpack.unpackb(raw[pos + 8 : pos + 8 + size])
        out.append(seg)
        if token in ("ITMZ", "DATA"):
            seg["dataStartsAt"] = pos + 8
            return out
        pos += 8 + size + (-size & 3)


# ---- vectors: index files -----------------------------------------------------------------------

INDEX_VECTORS = [v for v in MANIFEST["vectors"] if v["kind"] == "IndexFile"]


@pytest.mark.parametrize("v", INDEX_VECTORS, ids=lambda v: v["name"])
def test_index_file_vector_reads(v: dict[str, Any]) -> None:
    path = VECTORS / v["file"]
    raw = path.read_bytes()
    assert (len(raw), sha256(raw)) == (v["size"], v["sha256"])
    f = IndexFile.open(str(path))
    assert (f.first_index, f.capacity, f.next_index, f.data_pos) == (
        v["firstIndex"],
        v["capacity"],
        v["nextIndex"],
        v["dataPosition"],
    )
    assert list(f.offsets) == v["offsets"]
    check_entries(f.read_entries(0, f.next_at), v["entries"])
    for i, e in enumerate(v["entries"]):
        assert f.term_of(i) == e["term"]


def test_rolled_back_entries_stay_in_the_file_but_are_not_read() -> None:
    v = BY_NAME["indexfile-c"]
    f = IndexFile.open(str(VECTORS / v["file"]))
    raw = (VECTORS / v["file"]).read_bytes()
    before = v["offsetsBeforeTruncate"]
    for i, e in enumerate(v["rolledBackEntries"], start=len(v["entries"])):
        assert raw[f.data_pos + before[i - 1] : f.data_pos + before[i]].hex() == e["entryHex"]
    with pytest.raises(Exception, match="out of bounds"):
        f.read_entries(3, 1)


def write_index_vector(v: dict[str, Any], tmp_path: Path) -> Path:
    golden = IndexFile.open(str(VECTORS / v["file"]))
    now_ms, host = meta_of(golden)
    entries = [bytes.fromhex(e["entryHex"]) for e in v["entries"]]
    root = tmp_path / v["name"]
    if v["name"] == "indexfile-a":  # new IndexFile(dir, 1, 8); appended one by one
        f = IndexFile.create(str(root), 1, 8, now_ms=now_ms, host=host)
        for e in entries:
            assert f.append([e]) == 1
    elif v["name"] == "indexfile-b":  # requested capacity 4, one writev of 2
        f = IndexFile.create(str(root), v["firstIndex"], 4, now_ms=now_ms, host=host)
        assert f.append(entries) == 2
    else:  # capacity 16 at 16; 16..21 appended, then truncate(19)
        f = IndexFile.create(str(root), 16, 16, now_ms=now_ms, host=host)
        rolled = [bytes.fromhex(e["entryHex"]) for e in v["rolledBackEntries"]]
        assert f.append(entries + rolled) == 6
        f.rollback(3)
    f.close()
    return root / v["file"].split("/", 1)[1]


@pytest.mark.parametrize("v", INDEX_VECTORS, ids=lambda v: v["name"])
def test_index_file_vector_written_byte_identical(v: dict[str, Any], tmp_path: Path) -> None:
    ours = write_index_vector(v, tmp_path)
    assert ours.read_bytes() == (VECTORS / v["file"]).read_bytes()


# ---- vectors: snapshots -------------------------------------------------------------------------

SNAP_VECTORS = [v for v in MANIFEST["vectors"] if v["kind"] == "SnapshotFile"]


@pytest.mark.parametrize("v", SNAP_VECTORS, ids=lambda v: v["name"])
def test_snapshot_vector_reads(v: dict[str, Any]) -> None:
    path = VECTORS / v["file"]
    raw = path.read_bytes()
    assert (len(raw), sha256(raw)) == (v["size"], v["sha256"])
    s = SnapshotFile.open(str(path))
    assert s.meta == SnapshotMeta(v["logIndex"], v["logTerm"], v["dataSize"])
    assert s.data_offset == v["dataOffset"]
    data = s.read(0, s.data_size)
    assert sha256(data) == v["dataSha256"] == s.sha256()
    if "dataHex" in v:
        assert data.hex() == v["dataHex"]


@pytest.mark.parametrize("v", SNAP_VECTORS, ids=lambda v: v["name"])
def test_snapshot_vector_written_byte_identical(v: dict[str, Any], tmp_path: Path) -> None:
    golden = SnapshotFile.open(str(VECTORS / v["file"]))
    now_ms, host = meta_of(golden)
    data = golden.read(0, golden.data_size)
    out = tmp_path / "snap"
    if v["name"] == "snapshot-b":  # streamed: size patched in at the end
        w = SnapshotStreamWriter(str(out), v["logIndex"], v["logTerm"], now_ms=now_ms, host=host)
        for piece in (data[:15], data[15:30], data[30:]):
            w.write(piece)
        w.finish()
    else:
        s = SnapshotFile.create(str(out), v["logIndex"], v["logTerm"], len(data), now_ms=now_ms, host=host)
        s.write(0, data)
        s.sync()
    assert out.read_bytes() == (VECTORS / v["file"]).read_bytes()


# ---- vectors: state files -----------------------------------------------------------------------


def test_raft_persistence_vector() -> None:
    v = BY_NAME["persistence-raft"]
    raw = (VECTORS / v["file"]).read_bytes()
    assert (len(raw), sha256(raw), raw.hex()) == (v["size"], v["sha256"], v["fileHex"])
    records, torn = read_records(raw)
    assert torn is None
    assert [r for _, r in records] == v["updates"]
    assert [list(r) for _, r in records] == [list(u) for u in v["updates"]]  # key order
    p = RaftPersistence(str(VECTORS / v["file"]), read_only=True)
    assert p.load() == v["mergedState"]
    assert isinstance(p.current_term, int)


def test_raft_persistence_vector_written_byte_identical(tmp_path: Path) -> None:
    v = BY_NAME["persistence-raft"]
    p = RaftPersistence(str(tmp_path / "raft.pers"))
    for update in v["updates"]:
        p.update(update)
    assert (tmp_path / "raft.pers").read_bytes().hex() == v["fileHex"]
    assert p.load() == v["mergedState"]


def test_rotated_raft_persistence_vector(tmp_path: Path) -> None:
    v = BY_NAME["persistence-raft-rotated"]
    current, backup = v["files"]
    for f in v["files"]:
        raw = (VECTORS / f["file"]).read_bytes()
        assert (len(raw), sha256(raw), raw.hex()) == (f["size"], f["sha256"], f["fileHex"])
    assert RaftPersistence(str(VECTORS / current["file"]), read_only=True).load() == v["mergedState"]
    assert re.fullmatch(r"raft\.pers-\d{4}-\d{2}-\d{2}-\d{6}-\d{3}[0-9a-z]+", Path(backup["file"]).name)
    # the same three calls with our code
    p = RaftPersistence(str(tmp_path / "raft.pers"), [["a", "tcp://127.0.0.1:9000"]])
    p.update({"currentTerm": 5, "votedFor": "a"})
    p.rotate({"currentTerm": 6})
    p.update({"votedFor": None})
    assert (tmp_path / "raft.pers").read_bytes().hex() == current["fileHex"]
    backups = [q for q in tmp_path.iterdir() if q.name.startswith("raft.pers-")]
    assert len(backups) == 1 and backups[0].read_bytes().hex() == backup["fileHex"]
    assert p.load() == v["mergedState"]


def test_state_persistence_vector(tmp_path: Path) -> None:
    v = BY_NAME["persistence-state"]
    raw = (VECTORS / v["file"]).read_bytes()
    assert (len(raw), sha256(raw), raw.hex()) == (v["size"], v["sha256"], v["fileHex"])
    assert [r for _, r in read_records(raw)[0]] == v["updates"]
    assert StateMachinePersistence(str(VECTORS / v["file"]), read_only=True).load() == v["mergedState"]
    p = StateMachinePersistence(str(tmp_path / "state.pers"))
    for update in v["updates"]:
        p.set_last_applied(update["lastApplied"])
    assert (tmp_path / "state.pers").read_bytes() == raw


def test_torn_persistence_vector(tmp_path: Path) -> None:
    v = BY_NAME["persistence-torn"]
    raw = (VECTORS / v["file"]).read_bytes()
    assert (len(raw), sha256(raw), raw.hex()) == (v["size"], v["sha256"], v["fileHex"])
    p = RaftPersistence(str(VECTORS / v["file"]), read_only=True)
    assert p.load() == v["mergedState"] and p.torn_at == 49
    # writable: the torn tail is ignored and the next update rolls the file over
    copy = tmp_path / "raft.pers"
    copy.write_bytes(raw)
    w = RaftPersistence(str(copy))
    w.update({"votedFor": "9"})
    assert RaftPersistence(str(copy)).load() == {**v["mergedState"], "votedFor": "9"}
    assert read_records(copy.read_bytes())[1] is None
    backups = [q for q in tmp_path.iterdir() if q.name.startswith("raft.pers-")]
    assert [b.read_bytes() for b in backups] == [raw]


# ---- datadir-2 ----------------------------------------------------------------------------------


def test_datadir_files_are_as_recorded() -> None:
    listed = {f["path"]: f for f in DD["files"]}
    present = {str(p.relative_to(DATADIR)) for p in DATADIR.rglob("*") if p.is_file()}
    assert present == set(listed)
    for rel, f in listed.items():
        raw = (DATADIR / rel).read_bytes()
        assert (len(raw), sha256(raw)) == (f["size"], f["sha256"]), rel


@pytest.fixture(scope="module")
def golden_log() -> FileLog:
    return FileLog(str(DATADIR / "log"), str(DATADIR / "snap"), read_only=True)


def test_datadir_log(golden_log: FileLog) -> None:
    log = golden_log
    s = DD["snapshot"]
    assert log.snapshot == SnapshotMeta(s["logIndex"], s["logTerm"], s["dataSize"])
    assert log.first_index == s["logIndex"] + 1 == 281
    assert log.lowest_index == DD["summary"]["firstEntryIndex"] == 256
    assert log.last_index == DD["summary"]["lastEntryIndex"] == 1020
    expected = DD["entries"]
    assert log.last_term == expected[-1]["term"] == 10
    assert log.index_file_capacity == 128
    check_entries(log.entries(256, 1020), expected)
    for e in expected:
        term = log.term_at(e["index"])
        if e["coveredBySnapshot"] and e["index"] != 280:
            assert term is None
        else:
            assert term == e["term"]
    assert [e["index"] for e in expected if e["type"] == 2] == [1014]
    batches = list(log.entry_batches(281, 1020))
    assert [b for batch in batches for b in batch] == log.entries(281, 1020)
    assert max(len(b) for b in batches) <= 128  # never spanning index files


@pytest.mark.parametrize("f", DD["indexFiles"], ids=lambda f: f["basename"])
def test_datadir_index_files(f: dict[str, Any]) -> None:
    path = DATADIR / f["path"]
    ix = IndexFile.open(str(path))
    assert (ix.first_index, ix.capacity, ix.next_index, ix.next_at, ix.data_pos) == (
        f["firstIndex"],
        f["capacity"],
        f["nextIndex"],
        f["numEntries"],
        f["dataPosition"],
    )
    assert list(ix.offsets)[: len(f["offsets"])] == f["offsets"]
    assert Path(ix.path).name == f["basename"] + ".rlog"
    assert segments_of(path, 0)[:1] == f["segments"][:1]
    assert segments_of(path, 24 + 4 * ix.capacity) == f["segments"][1:]


@pytest.mark.parametrize("f", DD["indexFiles"], ids=lambda f: f["basename"])
def test_datadir_index_files_written_byte_identical(f: dict[str, Any], tmp_path: Path) -> None:
    golden = IndexFile.open(str(DATADIR / f["path"]))
    now_ms, host = meta_of(golden)
    ours = IndexFile.create(str(tmp_path), f["firstIndex"], 128, now_ms=now_ms, host=host)
    ours.append(golden.read_entries(0, golden.next_at))
    assert Path(ours.path).read_bytes() == (DATADIR / f["path"]).read_bytes()


def test_datadir_snapshot(tmp_path: Path) -> None:
    s = DD["snapshot"]
    snap = SnapshotFile.open(str(DATADIR / s["path"]))
    assert (snap.data_offset, snap.sha256()) == (s["dataOffset"], s["dataSha256"])
    assert segments_of(DATADIR / s["path"], 36) == s["segments"][1:]
    data = snap.read(0, snap.data_size)
    covered = b"".join(
        bytes.fromhex(e["dataHex"]) for e in DD["entries"] if e["index"] <= 280 and e["type"] == 0
    )
    assert gzip.decompress(data).endswith(covered)  # entries below 256 were pruned from the dir
    # the replaced empty snapshot kept as a timestamped backup
    backup = SnapshotFile.open(str(DATADIR / "snap-2026-11-29-071144-2810"))
    assert backup.meta == SnapshotMeta(0, 0, 0)
    now_ms, host = meta_of(snap)
    ours = SnapshotFile.create(str(tmp_path / "snap"), 280, 8, len(data), data, now_ms=now_ms, host=host)
    assert Path(ours.path).read_bytes() == (DATADIR / s["path"]).read_bytes()


def test_datadir_persistence(tmp_path: Path) -> None:
    rp = DD["raftPersistence"]
    raw = (DATADIR / "raft.pers").read_bytes()
    assert raw.hex() == rp["fileHex"]
    assert [r for _, r in read_records(raw)[0]] == rp["records"]
    assert RaftPersistence(str(DATADIR / "raft.pers"), read_only=True).load() == rp["mergedByLibrary"]
    ours = RaftPersistence(str(tmp_path / "raft.pers"))
    for record in rp["records"]:
        ours.update(record)
    assert (tmp_path / "raft.pers").read_bytes() == raw
    sp = DD["statePersistence"]
    raw = (DATADIR / "state.pers").read_bytes()
    assert [r for _, r in read_records(raw)[0]] == sp["records"]
    assert (
        StateMachinePersistence(str(DATADIR / "state.pers"), read_only=True).load() == sp["mergedByLibrary"]
    )
    state = StateMachinePersistence(str(tmp_path / "state.pers"))
    for record in sp["records"]:
        state.update(record)
    assert (tmp_path / "state.pers").read_bytes() == raw


def test_datadir_request_ids(golden_log: FileLog) -> None:
    expected = [(bytes.fromhex(e["requestId"]), e["index"]) for e in DD["entries"] if e["type"] != 2]
    assert golden_log.request_ids(0, None, None) == expected
    assert golden_log.request_ids(0, None, 10) == expected[-10:]
    # everything is older than 8 h a year later: the scan stops after more than a file's worth
    assert golden_log.request_ids(int(iso_ms("2027-11-29T00:00:00.000Z")), 28_800_000, None) == []


def test_datadir_opened_writable_is_left_unchanged_then_appends(tmp_path: Path) -> None:
    root = tmp_path / "datadir-2"
    shutil.copytree(DATADIR, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    log = FileLog(str(root / "log"), str(root / "snap"))
    after = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before
    assert (log.first_index, log.last_index, log.last_term, log.index_file_capacity) == (281, 1020, 10, 128)
    extra = [bytes.fromhex(e["entryHex"])[:13] + (10).to_bytes(7, "little") + b"x" for e in DD["entries"][:5]]
    log.append(1021, extra)
    log.close()
    again = FileLog(str(root / "log"), str(root / "snap"))
    assert again.entries(1019, 1025)[2:] == extra
    new = IndexFile.open(str(root / "log/00000/00/00/00000000000400.rlog"))
    assert (new.capacity, new.next_at) == (128, 2)
