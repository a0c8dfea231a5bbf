"""In-memory storage for tests and the deterministic simulator.

``MemoryLog`` behaves like ``files.FileLog`` in everything the core can observe (the shared
behavioural tests prove it): the same index rules, truncation, compaction versus replacement
on install, request-id rebuild (entries below the snapshot stay, as index files do after a
compaction) and the same ``entry_batches`` grouping, with index files emulated by their
boundaries exactly as FileLog lays them out (capacity alignment, the capacity re-derived from
the first file at each start: call ``restart()`` where a FileLog would be reopened).
Everything is durable the moment a call returns; no clocks, no randomness.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..protocol.entry import HEADER_SIZE, REQUEST_ID_SIZE, entry_term
from ..request_ids import scan_request_ids
from .base import LogStorage, SnapshotMeta, SnapshotWriter, StateStorage, StorageError
from .batching import group_sizes

DEFAULT_CAPACITY = 0x4000


def _next_power_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


class MemorySnapshotWriter:
    """A snapshot received in chunks into memory (see ``LogStorage.snapshot_writer``)."""

    def __init__(self, log: MemoryLog, meta: SnapshotMeta) -> None:
        self._log = log
        self._meta = meta
        self._data: bytearray | None = bytearray()

    @property
    def meta(self) -> SnapshotMeta:
        return self._meta

    @property
    def written(self) -> int:
        return len(self._data) if self._data is not None else 0

    def _buffer(self) -> bytearray:
        if self._data is None:
            raise ValueError("snapshot writer already installed or discarded")
        return self._data

    def write(self, offset: int, chunk: bytes | memoryview) -> int:
        data = self._buffer()
        if offset != len(data):
            raise ValueError(f"missing snapshot chunk: offset {offset}, expected {len(data)}")
        if offset + len(chunk) > self._meta.size:
            raise ValueError(f"snapshot chunk beyond the snapshot size {self._meta.size}")
        data += chunk
        return len(data)

    def install(self) -> None:
        data = self._buffer()
        if len(data) != self._meta.size:
            raise ValueError(f"snapshot incomplete: {len(data)} of {self._meta.size} bytes")
        self._log.install_snapshot(self._meta, bytes(data))
        self._data = None

    def discard(self) -> None:
        self._data = None


class MemoryLog:
    """A ``LogStorage`` in a list of entry bytes."""

    def __init__(
        self,
        *,
        snapshot: SnapshotMeta | None = None,
        snapshot_data: bytes = b"",
        index_file_capacity: int = DEFAULT_CAPACITY,
        keep_compacted: bool = True,
    ) -> None:
        meta = snapshot or SnapshotMeta(0, 0, len(snapshot_data))
        if meta.size != len(snapshot_data):
            raise ValueError("snapshot size does not match its data")
        if index_file_capacity < 1:
            raise ValueError("index file capacity must be >= 1")
        self.index_file_capacity = index_file_capacity
        self.keep_compacted = keep_compacted
        self._snapshot = meta
        self._snapshot_data = snapshot_data
        self._base = meta.index + 1  # index of _entries[0]
        self._entries: list[bytes] = []
        self._first_index = meta.index + 1
        self._last_term = meta.term
        # emulated index files: first indexes and capacities (spec/storage.md §4.2, §6.3)
        self._file_firsts: list[int] = []
        self._file_caps: list[int] = []
        self._run_capacity = index_file_capacity
        self._new_files(meta.index + 1)
        self._run_capacity = _next_power_of_two(self._file_caps[0])

    # ---- state ----------------------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self._first_index

    @property
    def last_index(self) -> int:
        return self._base + len(self._entries) - 1

    @property
    def last_term(self) -> int:
        return self._last_term

    @property
    def snapshot(self) -> SnapshotMeta:
        return self._snapshot

    @property
    def lowest_index(self) -> int:
        return self._base

    def _new_files(self, first: int) -> None:
        cap = self._run_capacity
        self._file_firsts = [first]
        self._file_caps = [cap - first % cap]

    def _cover(self, last: int) -> None:
        """Roll over (add emulated files) until ``last`` has a file."""
        firsts, caps = self._file_firsts, self._file_caps
        while firsts[-1] + caps[-1] <= last:
            first = firsts[-1] + caps[-1]
            firsts.append(first)
            caps.append(self._run_capacity - first % self._run_capacity)

    def _file_of(self, index: int) -> tuple[int, int]:
        """(first index, capacity) of the emulated index file holding ``index``."""
        pos = max(0, bisect_right(self._file_firsts, index) - 1)
        return self._file_firsts[pos], self._file_caps[pos]

    def restart(self) -> None:
        """What reopening a FileLog does: empty trailing files go, and the capacity of new
        files is re-derived from the first file."""
        firsts, caps = self._file_firsts, self._file_caps
        while len(firsts) > 1 and firsts[-1] > self.last_index:
            firsts.pop()
            caps.pop()
        self._run_capacity = _next_power_of_two(caps[0])

    # ---- reading --------------------------------------------------------------------------------

    def term_at(self, index: int) -> int | None:
        last = self.last_index
        if index == last:
            return self._last_term
        if index == self._snapshot.index:
            return self._snapshot.term
        if index < self._first_index or index > last:
            return None
        return entry_term(self._entries[index - self._base])

    def entry(self, index: int) -> bytes:
        return self.entries(index, index)[0]

    def _check_range(self, first: int, last: int) -> None:
        if first < max(self._base, 1) or last > self.last_index:
            raise IndexError(
                f"index out of index range: {first}..{last} not within {self._base}..{self.last_index}"
            )

    def entries(
        self, first: int, last: int, max_bytes: int = 1 << 62, max_count: int = 1 << 62
    ) -> list[bytes]:
        if last < first or max_count <= 0:
            return []
        self._check_range(first, last)
        last = min(last, first + max_count - 1)
        out = self._entries[first - self._base : last - self._base + 1]
        if max_bytes < (1 << 62):
            total = 0
            for n, e in enumerate(out):
                total += len(e)
                if total > max_bytes:
                    return out[: max(n, 1)]
        return out

    def entry_batches(
        self, first: int, last: int, max_count: int = 4096, max_bytes: int = 65536
    ) -> Iterator[list[bytes]]:
        if last < first:
            return
        self._check_range(first, last)
        index = first
        while index <= last:
            start, cap = self._file_of(index)
            end = min(last, start + cap - 1)
            part = self._entries[index - self._base : end - self._base + 1]
            pos = 0
            for count in group_sizes([len(e) for e in part], max_count, max_bytes):
                yield part[pos : pos + count]
                pos += count
            index = end + 1

    def read_snapshot(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError("negative snapshot offset or length")
        return self._snapshot_data[offset : offset + length]

    @property
    def snapshot_data(self) -> bytes:
        return self._snapshot_data

    def _request_ids_backwards(self) -> Iterator[tuple[int, bytes, int]]:
        entries = self._entries
        base = self._base
        for pos in range(len(entries) - 1, -1, -1):
            index = base + pos
            yield index, entries[pos][:REQUEST_ID_SIZE], self._file_of(index)[1]

    def request_ids(self, wall_ms: int, ttl_ms: int | None, cache_max: int | None) -> list[tuple[bytes, int]]:
        return scan_request_ids(self._request_ids_backwards(), wall_ms, ttl_ms, cache_max)

    # ---- writing --------------------------------------------------------------------------------

    def append(self, first_index: int, entries: Sequence[bytes]) -> None:
        last = self.last_index
        if first_index <= last:
            self.truncate(first_index - 1)
        elif first_index != last + 1:
            raise IndexError(f"non linear addition: {first_index} after last index {last}")
        if not entries:
            return
        for e in entries:
            if len(e) <= HEADER_SIZE:
                raise ValueError(f"log entry must be longer than {HEADER_SIZE} bytes, got {len(e)}")
            if e[12] > 2:
                raise ValueError(f"unknown log entry type {e[12]}")
        self._entries.extend(bytes(e) if not isinstance(e, bytes) else e for e in entries)
        self._last_term = entry_term(self._entries[-1])
        self._cover(self.last_index)

    def truncate(self, last_kept: int) -> None:
        last = self.last_index
        if last_kept >= last:
            return
        if last_kept < self._first_index - 1:
            raise IndexError(
                f"index out of index range: cannot truncate to {last_kept} below {self._first_index - 1}"
            )
        term = self.term_at(last_kept)
        assert term is not None
        del self._entries[last_kept + 1 - self._base :]
        self._last_term = term
        # files after the one holding last_kept go, except the first file and an (empty) file
        # starting right at first_index (spec §6.5)
        firsts, caps = self._file_firsts, self._file_caps
        while len(firsts) > 1 and firsts[-1] > last_kept and firsts[-1] != self._first_index:
            firsts.pop()
            caps.pop()

    def install_snapshot(
        self,
        meta: SnapshotMeta,
        data: bytes | None = None,
        path: str | None = None,
        compact_only: bool = False,
    ) -> None:
        if data is None:
            raise ValueError("MemoryLog.install_snapshot needs the data (no files here)")
        if len(data) != meta.size:
            raise ValueError(f"snapshot data is {len(data)} bytes, meta says {meta.size}")
        if self.term_at(meta.index) == meta.term:
            self._snapshot = meta
            self._snapshot_data = bytes(data)
            self._first_index = max(self._first_index, meta.index + 1)
            if not self.keep_compacted and self._first_index > self._base:
                del self._entries[: self._first_index - self._base]
                self._base = self._first_index
            return
        if compact_only:
            raise StorageError(
                f"the snapshot is not a compaction of the log (index {meta.index} term {meta.term})"
            )
        self._snapshot = meta
        self._snapshot_data = bytes(data)
        self._entries = []
        self._base = self._first_index = meta.index + 1
        self._last_term = meta.term
        self._new_files(meta.index + 1)

    def snapshot_writer(self, meta: SnapshotMeta) -> MemorySnapshotWriter:
        return MemorySnapshotWriter(self, meta)

    def close(self) -> None:
        pass


class MemoryState:
    """A ``StateStorage`` in memory: the defaults merged with every update, which are also
    kept (``records``) as a state file keeps them.  Without ``defaults`` any key is accepted."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self._defaults = dict(defaults) if defaults is not None else None
        self._state: dict[str, Any] = dict(defaults or {})
        self.records: list[dict[str, Any]] = []

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def update(self, changes: Mapping[str, Any]) -> None:
        if self._defaults is not None:
            unknown = [k for k in changes if k not in self._defaults]
            if unknown:
                raise ValueError(f"unknown properties {unknown}")
            changes = {k: changes[k] for k in self._defaults if k in changes}
        record = dict(changes)
        self.records.append(record)
        self._state.update(record)

    def rotate(self, changes: Mapping[str, Any] | None = None) -> None:
        self.update(changes or {})
        self.records = [dict(self._state)]

    def close(self) -> None:
        pass


def _conforms(log: MemoryLog, state: MemoryState, writer: MemorySnapshotWriter) -> tuple[object, ...]:
    """Static proof (mypy) that the classes implement the protocols of ``base``."""
    checked: tuple[LogStorage, StateStorage, SnapshotWriter] = (log, state, writer)
    return checked
