"""One behavioural suite run against MemoryLog and FileLog: they must behave alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import T0, entries, entry, rid
from zmqraft.core.protocol.entry import encode_entry, entry_term
from zmqraft.core.storage.base import LogStorage, SnapshotMeta, StorageError
from zmqraft.core.storage.files import FileLog
from zmqraft.core.storage.memory import MemoryLog

Factory = Callable[..., Any]


class Logs:
    """Makes logs of one kind; ``reopen`` simulates a restart (FileLog) or is the identity."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.n = 0

    def make(self, capacity: int = 4) -> Any:
        if self.kind == "memory":
            return MemoryLog(index_file_capacity=capacity)
        self.n += 1
        d = self.root / f"d{self.n}"
        return FileLog(str(d / "log"), str(d / "snap"), index_file_capacity=capacity)

    def twice(self, log: Any) -> Iterator[Any]:
        """The log, then the same log after a restart."""
        yield log
        yield self.reopen(log)

    def reopen(self, log: Any) -> Any:
        if self.kind == "memory":
            return log
        log.close()
        return FileLog(log.log_dir, log.snapshot_path, index_file_capacity=log.index_file_capacity)


@pytest.fixture(params=["memory", "file"])
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Logs:
    return Logs(request.param, tmp_path)


def state(log: Any) -> tuple[int, int, int, SnapshotMeta]:
    return log.first_index, log.last_index, log.last_term, log.snapshot


class TestLogStorageBehaviour:
    """Every test runs once with MemoryLog and once with FileLog (the ``logs`` fixture)."""

    def test_protocol_conformance(self, logs: Logs) -> None:
        log: LogStorage = logs.make()
        assert isinstance(log.first_index, int)

    def test_empty_log(self, logs: Logs) -> None:
        log = logs.make()
        assert state(log) == (1, 0, 0, SnapshotMeta(0, 0, 0))
        assert log.term_at(0) == 0 and log.term_at(1) is None
        assert log.entries(1, 0) == [] and list(log.entry_batches(1, 0)) == []
        assert log.read_snapshot(0, 10) == b""
        assert log.request_ids(T0 * 1000, None, None) == []

    def test_append_read_across_files(self, logs: Logs) -> None:
        log = logs.make(capacity=4)
        want: list[bytes] = []
        for size in (1, 2, 5, 3, 8, 1, 4):
            batch = entries(len(want) + 1, size, term=len(want) // 5 + 1, size=len(want) % 7 + 1)
            log.append(len(want) + 1, batch)
            want += batch
            assert log.last_index == len(want) and log.last_term == entry_term(want[-1])
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert log.entries(1, len(want)) == want
            assert [log.term_at(i) for i in range(1, len(want) + 1)] == [entry_term(e) for e in want]
            assert log.entries(5, 9) == want[4:9]
            assert [len(b) for b in log.entry_batches(1, len(want))] == [3, 4, 4, 4, 4, 4, 1]
            assert log.entry(7) == want[6]

    def test_entries_limits(self, logs: Logs) -> None:
        log = logs.make(capacity=4)
        want = entries(1, 10, size=10)  # 30 bytes each
        log.append(1, want)
        assert log.entries(1, 10, max_count=3) == want[:3]
        assert log.entries(1, 10, max_bytes=95) == want[:3]  # spans the first file boundary
        assert log.entries(2, 10, max_bytes=120) == want[1:5]
        assert log.entries(2, 10, max_bytes=5) == want[1:2]  # always at least one
        assert log.entries(4, 10, max_bytes=90, max_count=2) == want[3:5]
        assert log.entries(3, 2) == []
        with pytest.raises(IndexError):
            log.entries(1, 11)
        with pytest.raises(IndexError):
            log.entries(0, 3)

    def test_entry_batches_follow_the_read_pieces(self, logs: Logs) -> None:
        """spec §6.7: 300 entries of 1000 bytes in one file -> 65, 66, 65, 66, 38."""
        log = logs.make(capacity=512)
        batch = [encode_entry(rid(i), 0, 1, bytes(980)) for i in range(1, 301)]
        log.append(1, batch)
        got = list(log.entry_batches(1, 300))
        assert [len(b) for b in got] == [65, 66, 65, 66, 38]
        assert [e for b in got for e in b] == batch
        assert [len(b) for b in log.entry_batches(1, 300, max_count=50)] == [
            50,
            15,
            50,
            16,
            50,
            15,
            50,
            16,
            38,
        ]
        assert [len(b) for b in log.entry_batches(100, 120)] == [21]

    def test_truncate_and_append(self, logs: Logs) -> None:
        log = logs.make(capacity=4)
        log.append(1, entries(1, 12, term=1))
        log.truncate(12)  # no-op
        log.truncate(9)
        assert state(log)[1:3] == (9, 1)
        log.truncate(2)  # across several files
        assert (log.last_index, log.term_at(3)) == (2, None)
        log.append(3, entries(3, 3, term=2))
        log.append(5, entries(50, 4, term=3))  # overlapping: truncates after 4 first
        assert log.last_index == 8 and log.last_term == 3
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert log.entries(1, 8) == entries(1, 2) + entries(3, 2, term=2) + entries(50, 4, term=3)
            assert [log.term_at(i) for i in range(1, 9)] == [1, 1, 2, 2, 3, 3, 3, 3]
        log.truncate(0)
        assert state(log) == (1, 0, 0, SnapshotMeta(0, 0, 0))
        log.append(1, entries(100, 5, term=4))
        assert logs.reopen(log).entries(1, 5) == entries(100, 5, term=4)

    def test_refusals(self, logs: Logs) -> None:
        log = logs.make()
        log.append(1, entries(1, 2))
        with pytest.raises(IndexError, match="non linear"):
            log.append(4, entries(4, 1))
        with pytest.raises(ValueError):
            log.append(3, [bytes(20)])
        with pytest.raises(ValueError):
            log.append(3, [bytes(12) + b"\x05" + bytes(8)])
        assert log.last_index == 2
        log.append(3, [])  # nothing
        assert log.last_index == 2

    def test_compaction_keeps_later_entries_and_older_files(self, logs: Logs) -> None:
        log = logs.make(capacity=4)
        log.append(1, entries(1, 10, term=1) + entries(11, 5, term=2))
        log.install_snapshot(SnapshotMeta(8, 1, 3), b"abc", compact_only=True)
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert state(log) == (9, 15, 2, SnapshotMeta(8, 1, 3))
            assert log.read_snapshot(1, 5) == b"bc"
            assert log.term_at(8) == 1 and log.term_at(7) is None and log.term_at(9) == 1
            assert log.entries(2, 3) == entries(2, 2)  # still on disk, still readable
            assert [i for _, i in log.request_ids(T0 * 1000, None, None)] == list(range(1, 16))
        log.truncate(8)  # everything after the snapshot
        assert state(log) == (9, 8, 1, SnapshotMeta(8, 1, 3))
        with pytest.raises(IndexError):
            log.truncate(6)
        log.append(9, entries(9, 1, term=5))
        assert logs.reopen(log).entries(8, 9) == [entries(8, 1)[0], entries(9, 1, term=5)[0]]

    def test_compaction_at_the_last_index(self, logs: Logs) -> None:
        log = logs.make()
        log.append(1, entries(1, 5, term=3))
        log.install_snapshot(SnapshotMeta(5, 3, 1), b"x")
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert state(log) == (6, 5, 3, SnapshotMeta(5, 3, 1))
        log.append(6, entries(6, 1, term=4))
        assert log.term_at(5) == 3 and log.term_at(6) == 4

    def test_compact_only_refuses_a_replacement(self, logs: Logs) -> None:
        log = logs.make()
        log.append(1, entries(1, 5, term=3))
        with pytest.raises(StorageError, match="not a compaction"):
            log.install_snapshot(SnapshotMeta(4, 2, 1), b"x", compact_only=True)
        with pytest.raises(StorageError, match="not a compaction"):
            log.install_snapshot(SnapshotMeta(9, 3, 1), b"x", compact_only=True)
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert state(log) == (1, 5, 3, SnapshotMeta(0, 0, 0))

    @pytest.mark.parametrize(("index", "term"), [(3, 9), (20, 3), (2, 7)])
    def test_replacement_discards_the_whole_log(self, logs: Logs, index: int, term: int) -> None:
        log = logs.make(capacity=4)
        log.append(1, entries(1, 9, term=3))
        log.install_snapshot(SnapshotMeta(index, term, 4), b"snap")
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert state(log) == (index + 1, index, term, SnapshotMeta(index, term, 4))
            assert log.term_at(index) == term and log.term_at(index + 1) is None
            assert log.request_ids(T0 * 1000, None, None) == []
            with pytest.raises(IndexError):
                log.entries(1, 1)
        log.append(index + 1, entries(100, 6, term=term + 1))
        log = logs.reopen(log)
        assert log.entries(index + 1, index + 6) == entries(100, 6, term=term + 1)
        assert log.term_at(index) == term

    def test_snapshot_writer(self, logs: Logs) -> None:
        log = logs.make()
        log.append(1, entries(1, 3, term=1))
        meta = SnapshotMeta(10, 4, 10)
        w = log.snapshot_writer(meta)
        assert w.written == 0 and w.meta == meta
        assert w.write(0, b"0123") == 4
        with pytest.raises(ValueError, match="missing snapshot chunk"):
            w.write(6, b"67")
        with pytest.raises(ValueError):
            w.write(4, b"4567890123")  # beyond the size
        with pytest.raises(ValueError, match="incomplete"):
            w.install()
        w.write(4, b"456789")
        assert state(log) == (1, 3, 1, SnapshotMeta(0, 0, 0))  # nothing changes before install
        w.install()
        with pytest.raises(ValueError):
            w.write(10, b"")
        for log in logs.twice(log):  # noqa: B020  (the reopened log is used afterwards)
            assert state(log) == (11, 10, 4, meta)
            assert log.read_snapshot(0, 100) == b"0123456789"
        other = log.snapshot_writer(SnapshotMeta(20, 5, 2))
        other.write(0, b"a")
        other.discard()
        with pytest.raises(ValueError):
            other.install()
        assert log.snapshot == meta

    def test_snapshot_writer_compaction(self, logs: Logs) -> None:
        log = logs.make()
        log.append(1, entries(1, 6, term=2))
        w = log.snapshot_writer(SnapshotMeta(4, 2, 0))
        w.install()
        assert state(log) == (5, 6, 2, SnapshotMeta(4, 2, 0))

    def test_request_ids(self, logs: Logs) -> None:
        log = logs.make(capacity=4)  # files 1..3, 4..7, 8..11, 12..15
        old, now = T0 - 100_000, T0
        batch = []
        for i in range(1, 15):
            fresh = i >= 10 or i in (2, 6)
            batch.append(entry(i, seconds=now if fresh else old, zero_id=i == 12))
        log.append(1, batch)
        ttl = 50_000_000
        wall = now * 1000
        # backwards: 14,13 fresh, 12 zero, 11,10 fresh, 9,8,7 expired (3), 6 fresh, 5 (4), 4 (5 > 4): stop
        got = log.request_ids(wall, ttl, None)
        assert got == [(rid(i, now), i) for i in (6, 10, 11, 13, 14)]
        assert [i for _, i in log.request_ids(wall, None, None)] == [i for i in range(1, 15) if i != 12]
        assert [i for _, i in log.request_ids(wall, ttl, 3)] == [11, 13, 14]
        assert [i for _, i in log.request_ids(wall, None, 4)] == [10, 11, 13, 14]
        assert log.request_ids(wall, ttl, 0) == []
        assert [i for _, i in logs.reopen(log).request_ids(wall, 10**9, None)] == [
            i for i in range(1, 15) if i != 12
        ]

    def test_read_snapshot_ranges(self, logs: Logs) -> None:
        log = logs.make()
        log.install_snapshot(SnapshotMeta(5, 1, 6), b"abcdef")
        assert log.read_snapshot(0, 3) == b"abc"
        assert log.read_snapshot(4, 10) == b"ef"
        assert log.read_snapshot(6, 1) == b""
