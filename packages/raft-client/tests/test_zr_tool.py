"""zr-tool run as a subprocess against a copy of the original's data directory and one we
write ourselves."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from zmqraft.client.tools import zr_tool
from zmqraft.core.protocol.entry import encode_entry
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.files import FileLog, RaftPersistence

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "interop" / "golden"
MANIFEST = json.loads((GOLDEN / "datadir-2.manifest.json").read_text())
SRC = [REPO / "packages" / "raft-core" / "src", REPO / "packages" / "raft-client" / "src"]


def zr(*args: str | Path, cwd: Path | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in SRC))
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_tool", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    return proc


@pytest.fixture(scope="module")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("golden") / "datadir-2"
    shutil.copytree(GOLDEN / "datadir-2", root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def entry_json(e: dict[str, Any]) -> str:
    doc = {
        "index": e["index"],
        "term": e["term"],
        "type": e["type"],
        "request_id": e["requestId"],
        "data": e["dataHex"],
    }
    return json.dumps(doc)


def test_dump_json_of_the_golden_datadir(datadir: Path) -> None:
    proc = zr("dump", "--json", datadir)
    expected = [entry_json(e) for e in MANIFEST["entries"] if e["index"] >= 281]
    assert proc.stdout.splitlines() == expected and proc.stderr == ""
    assert len(expected) == 740
    # entries still on disk below the snapshot, by range; global options after the path too
    proc = zr("dump", datadir, "-i", "256:258,1020", "--json")
    wanted = [e for e in MANIFEST["entries"] if e["index"] in (256, 257, 258, 1020)]
    assert proc.stdout.splitlines() == [entry_json(e) for e in wanted]


def test_inspect_json(datadir: Path) -> None:
    s = MANIFEST["snapshot"]
    snap = json.loads(zr("inspect", "--json", datadir / "snap").stdout)
    assert snap == {"index": 280, "term": 8, "size": 9428, "sha256": s["dataSha256"]}
    raft = json.loads(zr("--json", "inspect", datadir / "raft.pers").stdout)
    assert raft == MANIFEST["raftPersistence"]["mergedByLibrary"]
    state = json.loads(zr("--json", "inspect", datadir / "state.pers").stdout)
    assert state == {"lastApplied": 1020}
    d = json.loads(zr("--json", "inspect", datadir).stdout)
    assert d == {"firstIndex": 281, "lastIndex": 1020, "lastTerm": 10, "snapshot": snap}


def test_inspect_pretty(datadir: Path) -> None:
    out = zr("inspect", datadir).stdout
    assert out.startswith('{\n  "type": "dir:log",\n')
    doc = json.loads(out)
    assert doc["snapshot"]["logIndex"] == 280 and doc["snapshot"]["meta"]["hostname"] == "vm"
    assert doc["snapshot"]["path"] == str(datadir / "snap")
    implicit = zr(datadir).stdout  # zr-tool PATH means inspect
    assert implicit == out
    f = MANIFEST["indexFiles"][-1]
    doc = json.loads(zr("*", datadir / f["path"]).stdout)
    assert doc == {
        "type": "file:index",
        "path": str(datadir / f["path"]),
        "fileSize": f["size"],
        "dataSize": f["offsets"][f["numEntries"] - 1],
        "indexSize": 4 * f["capacity"],
        "capacity": f["capacity"],
        "basename": f["basename"],
        "firstAllowedIndex": f["firstIndex"],
        "lastAllowedIndex": f["firstIndex"] + f["capacity"] - 1,
        "nextIndex": f["nextIndex"],
        "entryCount": f["numEntries"],
        "freeCount": f["capacity"] - f["numEntries"],
        "meta": f["segments"][1]["decoded"],
    }
    snap = json.loads(zr("inspect", datadir / "snap").stdout)
    assert snap["type"] == "file:snapshot" and snap["fileSize"] == 9528 and snap["dataSize"] == 9428
    state = json.loads(zr("inspect", datadir / "raft.pers").stdout)
    assert state["type"] == "file:state" and state["data"] == MANIFEST["raftPersistence"]["mergedByLibrary"]


def test_list(datadir: Path) -> None:
    lines = zr("list", datadir).stdout.splitlines()
    assert lines == [str(datadir / f["path"]) for f in MANIFEST["indexFiles"]]
    f = MANIFEST["indexFiles"][3]  # 640..767, file size 4243 (4 hex digits)
    out = zr("l", datadir / f["path"], "-i", "640:642,767").stdout.splitlines()
    expected = []
    for index in (640, 641, 642, 767):
        slot = index - 640
        start = f["offsets"][slot - 1] if slot else 0
        size = f["offsets"][slot] - start
        expected.append(f"{index:03x}:{f['dataPosition'] + start:04x}:{size:04x}")
    assert out == expected
    assert len(zr("list", datadir / f["path"]).stdout.splitlines()) == 128


def test_dump_index_file_to_files(datadir: Path, tmp_path: Path) -> None:
    f = MANIFEST["indexFiles"][0]  # 256..383
    dest = tmp_path / "out"
    proc = zr("dump", datadir / f["path"], "-i", "256:259", "-d", dest)
    assert proc.stdout.splitlines() == [f"{i:016x}" for i in range(256, 260)]
    by_index = {e["index"]: e for e in MANIFEST["entries"]}
    for i in range(256, 260):
        e = by_index[i]
        assert (dest / f"{i:016x}.data").read_bytes().hex() == e["dataHex"]
        rid = base64.b64encode(bytes.fromhex(e["requestId"])).decode()
        assert (dest / f"{i:016x}.meta").read_text() == f"{e['type']}:{rid}:{e['term']}"
    # -m: msgpack data as JSON (index 283 is a msgpack map)
    zr("d", datadir / f["path"], "-i", "283", "-m", "-d", tmp_path / "m")
    decoded = json.loads((tmp_path / "m" / f"{283:016x}.data").read_text())
    assert decoded == msgpack.unpackb(bytes.fromhex(by_index[283]["dataHex"]))
    assert decoded["tag"] == "c"
    # -d .: the current directory
    zr("dump", datadir / f["path"], "-i", "300", "-d", ".", cwd=tmp_path)
    assert (tmp_path / f"{300:016x}.data").exists()


def test_dump_prints_a_table_without_a_destination(datadir: Path, tmp_path: Path) -> None:
    """Plain ``dump`` prints the entries (and writes no file); ``-w json`` is ``--json``."""
    by_index = {e["index"]: e for e in MANIFEST["entries"]}
    lines = zr("dump", datadir, "-i", "283:284", "-m", cwd=tmp_path).stdout.splitlines()
    assert lines[0].split() == ["index", "term", "type", "request", "id", "size", "data"]
    cells = lines[1].split(None, 5)
    e = by_index[283]
    assert cells[:5] == ["283", str(e["term"]), "state", e["requestId"], str(len(e["dataHex"]) // 2)]
    assert '"tag": "c"' in cells[5]
    assert list(tmp_path.iterdir()) == []
    as_json = zr("dump", datadir, "-i", "283", "-w", "json").stdout
    assert as_json == zr("dump", datadir, "-i", "283", "--json").stdout
    assert json.loads(as_json)["index"] == 283


def test_dump_snapshot(datadir: Path, tmp_path: Path) -> None:
    s = MANIFEST["snapshot"]
    raw = (datadir / "snap").read_bytes()[100:]
    zr("-o", tmp_path / "raw", "dump", "-U", datadir / "snap")
    assert hashlib.sha256((tmp_path / "raw").read_bytes()).hexdigest() == s["dataSha256"]
    zr("dump", datadir / "snap", "-o", tmp_path / "plain")
    assert (tmp_path / "plain").read_bytes() == gzip.decompress(raw)
    lines = zr("dump", "-m", datadir / "snap").stdout.splitlines()
    first = json.loads(lines[0])
    assert first == {"tag": "a", "n": 0, "ts": 1700000000000, "ok": True, "list": [0, 0, 0]}


def test_dump_state_history(datadir: Path) -> None:
    lines = zr("dump", datadir / "raft.pers").stdout.splitlines()
    assert [json.loads(x) for x in lines] == MANIFEST["raftPersistence"]["records"]
    lines = zr("dump", datadir / "state.pers").stdout.splitlines()
    assert [json.loads(x) for x in lines] == MANIFEST["statePersistence"]["records"]


def test_errors(datadir: Path, tmp_path: Path) -> None:
    assert zr("list", datadir / "snap", code=1).stderr.startswith("Error: list works on")
    assert "outside of" in zr("dump", datadir, "-i", "5", code=1).stderr
    assert "invalid index range" in zr("dump", datadir, "-i", "9:3", code=1).stderr
    bad = tmp_path / "00000/00/00/00000000000001.rlog"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RLOG" + bytes(30))
    err = zr("inspect", bad, code=1).stderr
    assert err.startswith("StorageError: ") and str(bad) in err and "offset" in err
    assert zr("inspect", tmp_path / "missing", code=1).stderr.startswith("FileNotFoundError: ")
    (tmp_path / "tiny").write_bytes(b"\x80")
    assert zr("inspect", tmp_path / "tiny", code=1).stderr.startswith("Error: unrecognized file")


def make_datadir(root: Path) -> list[bytes]:
    log = FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=4)
    written = []
    for i in range(1, 12):
        rid = bytes(12) if i == 5 else bytes([i]) * 12
        written.append(encode_entry(rid, 2 if i == 5 else i % 2, 1 + i // 4, msgpack.packb({"i": i})))
    log.append(1, written)
    log.install_snapshot(SnapshotMeta(3, 1, 5), b"hello", compact_only=True)
    log.close()
    RaftPersistence(str(root / "raft.pers")).update({"currentTerm": 3, "votedFor": "x"})
    return written


def test_a_datadir_written_by_us(tmp_path: Path) -> None:
    written = make_datadir(tmp_path / "raft")
    out = zr("dump", "--json", tmp_path / "raft").stdout.splitlines()
    assert out == [
        json.dumps(
            {
                "index": i,
                "term": 1 + i // 4,
                "type": 2 if i == 5 else i % 2,
                "request_id": ("00" if i == 5 else f"{i:02x}") * 12,
                "data": written[i - 1][20:].hex(),
            }
        )
        for i in range(4, 12)
    ]
    d = json.loads(zr("inspect", "--json", tmp_path / "raft").stdout)
    assert d == {
        "firstIndex": 4,
        "lastIndex": 11,
        "lastTerm": 3,
        "snapshot": {"index": 3, "term": 1, "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
    }
    assert len(zr("list", tmp_path / "raft").stdout.splitlines()) == 3
    # dump of a directory to files (all entries of the log)
    lines = zr("dump", tmp_path / "raft", "-d", tmp_path / "files").stdout.splitlines()
    assert lines == [f"{i:016x}" for i in range(4, 12)]
    assert (
        tmp_path / "files" / f"{5:016x}.meta"
    ).read_text() == f"2:{base64.b64encode(bytes(12)).decode()}:2"
    assert zr("-l", "nolog", "list", tmp_path / "raft", code=1).stderr.startswith("Error: no log directory")


def test_main_in_process_with_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_datadir(tmp_path / "raft")
    monkeypatch.setattr(zr_tool, "PROGRESS_THRESHOLD", 1)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert zr_tool.main(["dump", "--json", str(tmp_path / "raft")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["index"] for x in out] == list(range(4, 12))
    assert zr_tool.main(["list", str(tmp_path / "raft" / "snap")]) == 1
