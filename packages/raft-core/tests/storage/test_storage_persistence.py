"""State files (spec/storage.md §8, §9): updates, roll-over, torn tails, validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from zmqraft.core.protocol import mpack
from zmqraft.core.storage.base import StorageError
from zmqraft.core.storage.files import persistence
from zmqraft.core.storage.files.fsutil import history_names
from zmqraft.core.storage.files.persistence import (
    FilePersistence,
    RaftPersistence,
    StateMachinePersistence,
    read_records,
)
from zmqraft.core.storage.memory import MemoryState

SEED = [["1", "tcp://127.0.0.1:8047"], ["2", "tcp://127.0.0.1:8147"]]


def test_fresh_file_is_empty_and_defaults_apply(tmp_path: Path) -> None:
    p = RaftPersistence(str(tmp_path / "raft.pers"), SEED)
    assert (tmp_path / "raft.pers").read_bytes() == b""
    assert p.load() == {
        "currentTerm": 0,
        "votedFor": None,
        "peers": SEED,
        "peersUpdateRequest": None,
        "peersIndex": None,
    }


def test_updates_append_maps_in_fixed_key_order(tmp_path: Path) -> None:
    path = tmp_path / "raft.pers"
    p = RaftPersistence(str(path), SEED)
    p.update({"votedFor": "1", "currentTerm": 1})
    p.update({"current_term": 2, "voted_for": None})  # snake case is accepted too
    p.update({"peersIndex": 12})
    p.update({"currentTerm": 4294967296})
    assert path.read_bytes() == b"".join(
        mpack.pack(m)
        for m in (
            {"currentTerm": 1, "votedFor": "1"},
            {"currentTerm": 2, "votedFor": None},
            {"peersIndex": 12},
            {"currentTerm": 4294967296},
        )
    )
    again = RaftPersistence(str(path), SEED)
    assert again.load() == p.load()
    assert (again.current_term, again.voted_for, again.peers_index) == (4294967296, None, 12)
    assert isinstance(again.current_term, int) and again.peers == SEED


def test_validation(tmp_path: Path) -> None:
    p = RaftPersistence(str(tmp_path / "raft.pers"))
    for bad in (
        {"currentTerm": -1},
        {"currentTerm": 2**53},
        {"currentTerm": "1"},
        {"votedFor": 5},
        {"peersIndex": 1.5},
        {"peers": "x"},
        {"peers": {"old": []}},
        {"peersUpdateRequest": b"short"},
        {"bogus": 1},
    ):
        with pytest.raises(ValueError):
            p.update(bad)
    assert (tmp_path / "raft.pers").read_bytes() == b""
    p.update({"peersUpdateRequest": bytes(range(12)), "peers": [("a", "tcp://h:1")]})
    assert p.peers_update_request == "AAECAwQFBgcICQoL" and p.peers == [["a", "tcp://h:1"]]


def test_roll_over_at_the_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence, "ROLL_THRESHOLD", 60)
    path = tmp_path / "raft.pers"
    p = RaftPersistence(str(path), SEED)
    p.update({"currentTerm": 5, "votedFor": "a"})
    p.update({"currentTerm": 6, "votedFor": "b"})
    p.update({"currentTerm": 7, "votedFor": "c"})  # 75 bytes now
    old = path.read_bytes()
    assert len(old) >= 60
    p.update({"votedFor": None})  # becomes a roll-over with all properties
    state = {
        "currentTerm": 7,
        "votedFor": None,
        "peers": SEED,
        "peersUpdateRequest": None,
        "peersIndex": None,
    }
    assert path.read_bytes() == mpack.pack(state)
    backups = history_names(str(path))
    assert len(backups) == 1 and (tmp_path / backups[0]).read_bytes() == old
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    assert RaftPersistence(str(path)).load() == state
    p.update({"currentTerm": 8})
    assert RaftPersistence(str(path)).current_term == 8


def test_history_keeps_60_backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_sync: None) -> None:
    monkeypatch.setattr(persistence, "ROLL_THRESHOLD", 1)
    p = StateMachinePersistence(str(tmp_path / "state.pers"))
    for i in range(65):
        p.set_last_applied(i)
    assert len(history_names(str(tmp_path / "state.pers"))) == 60
    assert StateMachinePersistence(str(tmp_path / "state.pers")).last_applied == 64


def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    path = tmp_path / "raft.pers"
    p = RaftPersistence(str(path))
    p.update({"currentTerm": 3, "votedFor": "2"})
    good = path.read_bytes()
    p.update({"peers": SEED, "peersUpdateRequest": "WVbciCbyfhDczKsg", "peersIndex": 9})
    full = path.read_bytes()
    p.close()
    for cut in range(len(good), len(full)):
        path.write_bytes(full[:cut])
        q = RaftPersistence(str(path))
        assert q.load()["currentTerm"] == 3 and q.load()["peersIndex"] is None
        assert q.torn_at == (len(good) if cut > len(good) else None)
        if cut > len(good):
            assert q.size >= persistence.ROLL_THRESHOLD  # the next update rolls the file over
            q.update({"votedFor": None})
            assert path.read_bytes() == mpack.pack(
                {
                    "currentTerm": 3,
                    "votedFor": None,
                    "peers": [],
                    "peersUpdateRequest": None,
                    "peersIndex": None,
                }
            )
        q.close()
        for backup in history_names(str(path)):
            (tmp_path / backup).unlink()


def test_zero_filled_tail_is_torn(tmp_path: Path) -> None:
    path = tmp_path / "state.pers"
    path.write_bytes(mpack.pack({"lastApplied": 7}) + bytes(9))
    p = StateMachinePersistence(str(path))
    assert p.last_applied == 7 and p.torn_at == 14


@pytest.mark.parametrize(
    ("content", "offset"),
    [
        (mpack.pack({"lastApplied": 1}) + b"\x05" + mpack.pack({"lastApplied": 2}), 14),
        (mpack.pack({"lastApplied": 1}) + b"\xc0", 14),
        (b"\xc1" + mpack.pack({"lastApplied": 1}), 0),
        (mpack.pack({"lastApplied": 1}) + b"\xa3abc", 14),
        (mpack.pack({"lastApplied": "x"}), 0),
        (mpack.pack({"lastApplied": 1}) + mpack.pack({"lastApplied": -5}), 14),
    ],
)
def test_corruption_names_file_and_offset(tmp_path: Path, content: bytes, offset: int) -> None:
    path = tmp_path / "state.pers"
    path.write_bytes(content)
    with pytest.raises(StorageError) as err:
        StateMachinePersistence(str(path))
    assert err.value.path == str(path) and err.value.offset == offset
    assert path.read_bytes() == content and os.listdir(tmp_path) == ["state.pers"]


def test_arrays_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.pers"
    path.write_bytes(mpack.pack([1, 2]) + mpack.pack({"lastApplied": 3, "other": 1, 5: 6}))
    assert StateMachinePersistence(str(path)).load() == {"lastApplied": 3}


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "raft.pers.tmp-123-1a").write_bytes(b"x")
    (tmp_path / "raft.pers.tmp-abc-1").write_bytes(b"x")
    RaftPersistence(str(tmp_path / "raft.pers"))
    assert sorted(os.listdir(tmp_path)) == ["raft.pers", "raft.pers.tmp-abc-1"]


def test_read_only(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not found"):
        RaftPersistence(str(tmp_path / "raft.pers"), read_only=True)
    RaftPersistence(str(tmp_path / "raft.pers")).update({"currentTerm": 2})
    ro = RaftPersistence(str(tmp_path / "raft.pers"), read_only=True)
    assert ro.current_term == 2
    with pytest.raises(StorageError, match="read-only"):
        ro.update({"currentTerm": 3})


def test_failed_write_forces_a_roll_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.pers"
    p = StateMachinePersistence(str(path))
    p.set_last_applied(1)
    real = os.write

    def failing(fd: int, data: bytes) -> int:
        real(fd, bytes(data)[:3])  # a partial map reaches the file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(StorageError, match="No space"):
        p.set_last_applied(2)
    monkeypatch.setattr(os, "write", real)
    assert p.last_applied == 1 and p.size >= persistence.ROLL_THRESHOLD
    p.set_last_applied(3)
    assert path.read_bytes() == mpack.pack({"lastApplied": 3})


def test_generic_file_persistence(tmp_path: Path) -> None:
    p = FilePersistence(str(tmp_path / "x.pers"), {"b": 1, "a": None})
    p.update({"a": "z", "b": 2})
    assert (tmp_path / "x.pers").read_bytes() == mpack.pack({"b": 2, "a": "z"})
    assert list(FilePersistence.records(str(tmp_path / "x.pers"))) == [{"b": 2, "a": "z"}]
    assert p["a"] == "z"


def test_read_records_reports_offsets() -> None:
    data = mpack.pack({"a": 1}) + mpack.pack({"b": 2}) + b"\x81"
    records, torn = read_records(data)
    assert records == [(0, {"a": 1}), (4, {"b": 2})] and torn == 8


def test_memory_state() -> None:
    s = MemoryState()
    s.update({"peers": [["1", "u"]]})
    s.update({"currentTerm": 2})
    assert s.load() == {"peers": [["1", "u"]], "currentTerm": 2} and len(s.records) == 2
    s.rotate({"votedFor": "1"})
    assert s.records == [{"peers": [["1", "u"]], "currentTerm": 2, "votedFor": "1"}]
    fixed = MemoryState({"lastApplied": 0})
    with pytest.raises(ValueError):
        fixed.update({"other": 1})
    fixed.update({"lastApplied": 4})
    assert fixed.load() == {"lastApplied": 4}
