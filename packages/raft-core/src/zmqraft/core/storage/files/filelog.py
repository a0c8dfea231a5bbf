"""``FileLog``: the Raft log in a directory of index files plus a snapshot file, byte
compatible with the original's ``lib/server/filelog.js`` (spec/storage.md §6).

(Over 500 lines on purpose: one class whose methods share the writer/reader thread rules
and the crash-recovery invariants below; the index-file format, the directory layout and the
snapshot file are modules of their own.)

Opening (``FileLog(log_dir, snapshot_path)``) validates the first and the last index file
and the snapshot before anything is written; then (unless read-only) it creates what is
missing (an empty snapshot, the first index file), deletes empty trailing index files and
stale temporary snapshots.  A log left older than its snapshot by a crash in the middle of a
log replacement is set aside (renamed ``<logdir>-<timestamp>``) and started afresh.

Threads.  One *writer* (the runtime's storage worker) calls ``append``, ``truncate``,
``install_snapshot``, ``snapshot_writer(...)`` methods and ``poll_install_path``; one
*reader* (the event loop) calls ``term_at``, ``entries``, ``entry_batches``,
``read_snapshot`` and the properties, concurrently.  No locks: the writer makes new entries
durable first and only then publishes them (``last_index`` and ``last_term`` change together
as one tuple), all reads use ``os.pread`` on descriptors that stay open as long as a reader
holds the file object, and shared caches are plain dicts changed by single atomic
operations.  The rule the reader must keep: never read entries the writer is removing, i.e.
nothing after the ``last_kept`` of a truncation in flight, and nothing of the old log while a
snapshot that replaces the whole log is being installed.  Reads of entries ``<= last_index``
are otherwise always safe.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from operator import itemgetter

from ...protocol.entry import HEADER_SIZE, REQUEST_ID_SIZE, entry_term
from ...request_ids import scan_request_ids
from ..base import SnapshotMeta, StorageError
from ..batching import group_counts
from .fsutil import backup_name, fsync_dir, mkdir_p, remove_stale_temps, temp_name
from .indexfile import DEFAULT_CAPACITY, MAX_CAPACITY, TABLE_POSITION, IndexFile
from .logdir import (
    first_and_last,
    index_file_path,
    index_name,
    iter_index_files,
    leaf_prefix,
    list_leaf,
    pick_name,
)
from .snapshotfile import SnapshotFile, SnapshotStreamWriter

_entry_type = itemgetter(12)  # the type byte after the request id

# open index files kept (each holds its offset table, 64 KiB at the default capacity): at 75
# as the original, a peer's memory grew ~5 MiB over its first 1.2M entries
CACHE_HIGH = 16
CACHE_LOW = 12
_SCAN_GROUP = 256
_SCAN_SPAN = 1 << 20


def next_power_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def check_entry(entry: bytes) -> None:
    if len(entry) <= HEADER_SIZE:
        raise ValueError(f"log entry must be longer than {HEADER_SIZE} bytes, got {len(entry)}")
    if entry[12] > 2:
        raise ValueError(f"unknown log entry type {entry[12]}")


class FileSnapshotWriter:
    """A snapshot received in chunks, written to ``<snap>.tmp-<pid>-<n>`` and installed over
    the current snapshot when complete (see ``LogStorage.snapshot_writer``)."""

    def __init__(self, log: FileLog, meta: SnapshotMeta) -> None:
        self._log = log
        self._meta = meta
        self._file: SnapshotFile | None = SnapshotFile.create(
            temp_name(log.snapshot_path), meta.index, meta.term, meta.size
        )
        self._written = 0

    @property
    def meta(self) -> SnapshotMeta:
        return self._meta

    @property
    def written(self) -> int:
        return self._written

    @property
    def path(self) -> str | None:
        return self._file.path if self._file is not None else None

    def _open_file(self) -> SnapshotFile:
        if self._file is None:
            raise ValueError("snapshot writer already installed or discarded")
        return self._file

    def write(self, offset: int, chunk: bytes | memoryview) -> int:
        f = self._open_file()
        if offset != self._written:
            raise ValueError(f"missing snapshot chunk: offset {offset}, expected {self._written}")
        if offset + len(chunk) > self._meta.size:
            raise ValueError(f"snapshot chunk beyond the snapshot size {self._meta.size}")
        f.write(offset, chunk)
        self._written += len(chunk)
        return self._written

    def install(self) -> None:
        f = self._open_file()
        if self._written != self._meta.size:
            raise ValueError(f"snapshot incomplete: {self._written} of {self._meta.size} bytes")
        self._log._install(f, compact_only=False)
        self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.unlink()
            self._file = None


class FileLog:
    """The log and its snapshot (implements ``LogStorage``).  See the module docstring for the
    thread rule."""

    def __init__(
        self,
        log_dir: str,
        snapshot_path: str,
        *,
        read_only: bool = False,
        index_file_capacity: int = DEFAULT_CAPACITY,
        install_path: str | None = None,
    ) -> None:
        cap = index_file_capacity
        if (
            isinstance(cap, bool)
            or not isinstance(cap, int)
            or not 1 <= cap <= MAX_CAPACITY
            or cap & (cap - 1)
        ):
            raise ValueError(f"index file capacity must be a power of two in 1..{MAX_CAPACITY}, got {cap!r}")
        self.log_dir = os.path.abspath(log_dir)
        self.snapshot_path = os.path.abspath(snapshot_path)
        if self.snapshot_path.startswith(self.log_dir):
            raise ValueError("the snapshot file must not be inside the log directory")
        self.read_only = read_only
        self.install_path = os.path.abspath(install_path) if install_path is not None else None
        self.index_file_capacity = cap
        self._files: dict[int, IndexFile] = {}
        self._head: tuple[int, SnapshotFile]
        self._tail: tuple[int, int]
        self._last_file: IndexFile
        self._leaves: dict[str, list[str]] = {}
        self._broken: str | None = None
        self._open()

    # ---- opening --------------------------------------------------------------------------------

    def _open(self) -> None:
        writable = not self.read_only
        if writable:
            mkdir_p(self.log_dir)
        elif not os.path.isdir(self.log_dir):
            raise StorageError("no log files found", self.log_dir)
        found = first_and_last(self.log_dir)
        try:
            snap: SnapshotFile | None = SnapshotFile.open(self.snapshot_path)
        except FileNotFoundError:
            if self.read_only:
                raise StorageError("snapshot file not found", self.snapshot_path) from None
            snap = None
        first: IndexFile | None = None
        last: IndexFile | None = None
        if found is None:
            if self.read_only:
                raise StorageError("no log files found", self.log_dir)
        else:
            first = IndexFile.open(found[0], writable)
            last = first if found[1] == found[0] else IndexFile.open(found[1], writable)
        snap_index = snap.index if snap is not None else 0
        if first is not None and snap_index + 1 < first.first_index:
            raise StorageError(
                f"snapshot last index {snap_index} does not precede immediately "
                f"first log index {first.first_index}",
                first.path,
                16,  # the first index field of its RLOG header
            )
        # validated: from here on we may write
        if snap is None:
            snap = self._create_initial_snapshot()
        if first is None or last is None:
            first = last = IndexFile.create(self.log_dir, snap.index + 1, self.index_file_capacity)
        self.index_file_capacity = next_power_of_two(first.capacity)
        self._remember(first)
        self._remember(last)
        self._last_file = last
        self._lowest = first.first_index
        while last is not first and last.next_at == 0:
            previous = self._lookup(last.first_index - 1)
            self._forget(last)
            if writable:
                last.destroy()
            else:
                last.close()
            last = previous
            self._last_file = last
        first_index = max(first.first_index, snap.index + 1)
        last_index = last.next_index - 1
        if last_index < snap.index:
            # the snapshot is newer than the whole log: a replacement was interrupted after the
            # snapshot was installed; finish it (the old log is kept under a new name)
            if writable:
                self._head = (snap.index + 1, snap)
                self._replace_log(snap)
                self._after_open()
                return
            last_index = snap.index
        last_term = snap.term if last_index == snap.index else last.term_of(last_index - last.first_index)
        self._head = (first_index, snap)
        self._tail = (last_index, last_term)
        self._after_open()

    def _after_open(self) -> None:
        if not self.read_only:
            remove_stale_temps(self.snapshot_path)
            if self.install_path is not None:
                mkdir_p(os.path.dirname(self.install_path))

    def _create_initial_snapshot(self) -> SnapshotFile:
        tmp = SnapshotFile.create(temp_name(self.snapshot_path), 0, 0, 0)
        try:
            os.link(tmp.path, self.snapshot_path)
        except FileExistsError as err:
            tmp.unlink()
            raise StorageError("snapshot file appeared while opening", self.snapshot_path) from err
        os.unlink(tmp.path)
        fsync_dir(os.path.dirname(self.snapshot_path))
        tmp.path = self.snapshot_path
        return tmp

    # ---- public state ---------------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self._head[0]

    @property
    def last_index(self) -> int:
        return self._tail[0]

    @property
    def last_term(self) -> int:
        return self._tail[1]

    @property
    def snapshot(self) -> SnapshotMeta:
        return self._head[1].meta

    @property
    def snapshot_file(self) -> SnapshotFile:
        """The current snapshot file object; a reader may keep using it (it stays readable)
        after a newer snapshot has been installed."""
        return self._head[1]

    @property
    def lowest_index(self) -> int:
        """First index of the first index file (entries below ``first_index`` may remain
        after compactions; they can be read and are scanned for request ids)."""
        return self._lowest

    # ---- locating index files (§6.6) ------------------------------------------------------------

    def _remember(self, f: IndexFile) -> None:
        files = self._files
        files[f.first_index] = f
        if len(files) >= CACHE_HIGH:
            keep = self._last_file.first_index if hasattr(self, "_last_file") else f.first_index
            for key in list(files)[: len(files) - CACHE_LOW]:
                if key != keep and key != f.first_index:
                    files.pop(key, None)

    def _forget(self, f: IndexFile) -> None:
        self._files.pop(f.first_index, None)
        self._leaves.pop(leaf_prefix(f.first_index), None)

    def _lookup(self, index: int) -> IndexFile:
        prefix = leaf_prefix(index)
        cached = self._leaves.get(prefix)
        # a cached listing may predate a file the writer just created (it drops the entry
        # after creating, but a reader may store a listing it made just before): on a miss,
        # list the directory again once
        for names in (cached, None) if cached is not None else (None,):
            if names is None:
                names = list_leaf(self.log_dir, prefix)
                self._leaves[prefix] = names
            name = pick_name(names, index)
            if name is None:
                continue
            first = int(name[:14], 16)
            f = self._files.get(first)
            if f is None or f.closed:
                f = IndexFile.open(index_file_path(self.log_dir, first), not self.read_only)
                self._remember(f)
            else:  # refresh its place in the LRU order
                self._files.pop(first, None)
                self._files[first] = f
            if f.contains(index):
                return f
        raise StorageError(f"could not find index file for: {index_name(index)}", self.log_dir)

    def _file_for(self, index: int) -> IndexFile:
        f = self._last_file
        if f.first_index <= index < f.first_index + f.capacity:
            return f
        return self._lookup(index)

    def find_index_file_path(self, index: int) -> str:
        return self._file_for(index).path

    def index_file_paths(self) -> list[str]:
        return list(iter_index_files(self.log_dir))

    def prunable_files(self, index: int) -> list[str]:
        """Index files wholly below the file holding ``index`` (safe to delete by hand after
        a compaction up to ``index``; compaction itself never deletes files)."""
        boundary = os.path.basename(self._file_for(index).path)
        return [p for p in iter_index_files(self.log_dir) if os.path.basename(p) < boundary]

    # ---- reading --------------------------------------------------------------------------------

    def _check_range(self, first: int, last: int) -> None:
        if first < max(self._lowest, 1) or last > self._tail[0]:
            raise IndexError(
                f"index out of index range: {first}..{last} not within {self._lowest}..{self._tail[0]}"
            )

    def _slots(self, f: IndexFile, index: int, count: int) -> int:
        slot = index - f.first_index
        if slot + count > f.next_at:
            raise StorageError(
                f"entries {index}..{index + count - 1} are missing from the index file (its offset table "
                f"ends at slot {f.next_at})",
                f.path,
                TABLE_POSITION + 4 * f.next_at,  # where the committed offsets end
            )
        return slot

    def term_at(self, index: int) -> int | None:
        last_index, last_term = self._tail
        first_index, snap = self._head
        if index == last_index:
            return last_term
        if index == snap.index:
            return snap.term
        if index < first_index or index > last_index:
            return None
        f = self._file_for(index)
        return f.term_of(self._slots(f, index, 1))

    def entry(self, index: int) -> bytes:
        return self.entries(index, index)[0]

    def entries(
        self, first: int, last: int, max_bytes: int = 1 << 62, max_count: int = 1 << 62
    ) -> list[bytes]:
        if last < first or max_count <= 0:
            return []
        self._check_range(first, last)
        out: list[bytes] = []
        remaining = min(last - first + 1, max_count)
        budget = max_bytes
        index = first
        while remaining > 0:
            f = self._file_for(index)
            n = min(remaining, f.next_at - (index - f.first_index))
            slot = self._slots(f, index, max(n, 1))
            offs = f.offsets
            start = f.start_of(slot)
            if offs[slot + n - 1] - start > budget:
                n = bisect_right(offs, start + budget, slot, slot + n) - slot
                if n == 0:
                    if not out:
                        n = 1
                    else:
                        break
                remaining = n
            got = f.read_entries(slot, n)
            out += got
            budget -= offs[slot + n - 1] - start
            remaining -= n
            index += n
        return out

    def entry_batches(
        self, first: int, last: int, max_count: int = 4096, max_bytes: int = 65536
    ) -> Iterator[list[bytes]]:
        if last < first:
            return
        self._check_range(first, last)
        index = first
        while index <= last:
            f = self._file_for(index)
            n = min(last - index + 1, f.next_at - (index - f.first_index))
            slot = self._slots(f, index, max(n, 1))
            base = f.offsets[slot - 1] if slot else 0
            for count in group_counts(f.offsets, slot, slot + n, base, max_count, max_bytes):
                yield f.read_entries(slot, count)
                slot += count
            index += n

    def read_snapshot(self, offset: int, length: int) -> bytes:
        return self._head[1].read(offset, length)

    def _request_ids_backwards(self) -> Iterator[tuple[int, bytes, int]]:
        index = self._tail[0]
        while index >= self._lowest and index >= 1:
            f = self._file_for(index)
            hi = self._slots(f, index, 1)
            cap = f.capacity
            base = f.first_index
            while hi >= 0:
                lo = max(0, hi - _SCAN_GROUP + 1)
                start = f.start_of(lo)
                if f.offsets[hi] - start <= _SCAN_SPAN:
                    buf = f.read_raw(f.data_pos + start, f.offsets[hi] - start)
                    for slot in range(hi, lo - 1, -1):
                        rel = f.start_of(slot) - start
                        yield base + slot, buf[rel : rel + REQUEST_ID_SIZE], cap
                else:
                    for slot in range(hi, lo - 1, -1):
                        yield base + slot, f.read_slice(slot, 0, REQUEST_ID_SIZE), cap
                hi = lo - 1
            index = base - 1

    def request_ids(self, wall_ms: int, ttl_ms: int | None, cache_max: int | None) -> list[tuple[bytes, int]]:
        """Rebuild of the request-id cache (§6.8): scans backwards from ``last_index`` down to
        the first entry still on disk (also below the snapshot)."""
        return scan_request_ids(self._request_ids_backwards(), wall_ms, ttl_ms, cache_max)

    # ---- writing --------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise StorageError("the log is read-only", self.log_dir)
        if self._broken is not None:
            raise StorageError(f"the log is unusable after an earlier failure: {self._broken}", self.log_dir)

    def _fail(self, err: Exception) -> None:
        self._broken = str(err)

    def append(self, first_index: int, entries: Sequence[bytes]) -> None:
        """Write raw entries at ``first_index`` (truncating first if ``first_index <=
        last_index``); durable on return.  Per index file touched: one data write and one
        fdatasync (plus file creation when rolling over)."""
        self._writable()
        if first_index <= self._tail[0]:
            self.truncate(first_index - 1)
        elif first_index != self._tail[0] + 1:
            raise IndexError(f"non linear addition: {first_index} after last index {self._tail[0]}")
        if not entries:
            return
        if min(map(len, entries)) <= HEADER_SIZE or max(map(_entry_type, entries)) > 2:
            for e in entries:
                check_entry(e)  # names the first bad one
        pos = 0
        n = len(entries)
        try:
            while pos < n:
                f = self._last_file
                k = f.append(entries, pos)
                if k:
                    pos += k
                    self._tail = (f.next_index - 1, entry_term(entries[pos - 1]))
                    continue
                if f.next_at == 0:
                    raise ValueError(f"log entry of {len(entries[pos])} bytes does not fit in an index file")
                # roll over: a full table starts the next aligned file; a full data area (1 GiB)
                # starts one at the next index (the original fails there, spec §6.3)
                full = f.next_at == f.capacity
                self._roll(f.first_index + f.capacity if full else f.next_index)
        except StorageError as err:
            self._fail(err)
            raise

    def _roll(self, first_index: int) -> None:
        f = IndexFile.create(self.log_dir, first_index, self.index_file_capacity)
        self._leaves.pop(leaf_prefix(first_index), None)
        self._remember(f)
        self._last_file = f

    def append_entry(self, request_id: bytes, entry_type: int, term: int, data: bytes) -> int:
        """Encode and append one entry; returns its index."""
        from ...protocol.entry import encode_entry

        index = self._tail[0] + 1
        self.append(index, [encode_entry(request_id, entry_type, term, data)])
        return index

    def truncate(self, last_kept: int) -> None:
        """Drop the entries after ``last_kept`` (``first_index - 1 <= last_kept``), durably."""
        self._writable()
        last_index = self._tail[0]
        first_index, _snap = self._head
        if last_kept >= last_index:
            return
        if last_kept < first_index - 1:
            raise IndexError(
                f"index out of index range: cannot truncate to {last_kept} below {first_index - 1}"
            )
        term = self.term_at(last_kept)
        assert term is not None
        self._tail = (last_kept, term)  # publish first: readers stop looking at what goes
        index = last_kept + 1
        try:
            while True:
                f = self._last_file
                if f.first_index <= index - 1:
                    f.rollback(index - f.first_index)
                    return
                if index == first_index == f.first_index or f.first_index <= self._lowest:
                    f.rollback(index - f.first_index)
                    return
                previous = self._lookup(f.first_index - 1)
                self._last_file = previous
                self._forget(f)
                f.destroy()
        except StorageError as err:
            self._fail(err)
            raise

    # ---- snapshots (§6.10, §6.12) ---------------------------------------------------------------

    def snapshot_writer(self, meta: SnapshotMeta) -> FileSnapshotWriter:
        self._writable()
        return FileSnapshotWriter(self, meta)

    def create_tmp_snapshot(self, index: int, term: int, size: int) -> SnapshotFile:
        """An empty temporary snapshot file beside the snapshot (fill with ``write``)."""
        self._writable()
        return SnapshotFile.create(temp_name(self.snapshot_path), index, term, size)

    def create_snapshot_stream(self, index: int, term: int) -> SnapshotStreamWriter:
        """A temporary snapshot of unknown size (``write`` chunks, then ``finish()``)."""
        self._writable()
        return SnapshotStreamWriter(temp_name(self.snapshot_path), index, term)

    def install_snapshot(
        self,
        meta: SnapshotMeta,
        data: bytes | None = None,
        path: str | None = None,
        compact_only: bool = False,
    ) -> None:
        self._writable()
        if path is not None:
            snap = SnapshotFile.open(path, writable=False)
            if snap.meta != meta:
                raise ValueError(f"snapshot file {path} holds {snap.meta}, expected {meta}")
            self._install(snap, compact_only)
            return
        if data is None:
            raise ValueError("install_snapshot needs data or a path")
        if len(data) != meta.size:
            raise ValueError(f"snapshot data is {len(data)} bytes, meta says {meta.size}")
        snap = SnapshotFile.create(temp_name(self.snapshot_path), meta.index, meta.term, meta.size, data)
        try:
            self._install(snap, compact_only)
        except BaseException:
            if snap.path != self.snapshot_path:
                snap.unlink()
            raise

    def install_snapshot_file(self, snap: SnapshotFile, compact_only: bool = False) -> bool:
        """Install an open snapshot file; True if it was a compaction."""
        self._writable()
        return self._install(snap, compact_only)

    def _install(self, snap: SnapshotFile, compact_only: bool) -> bool:
        first_index, current = self._head
        if snap is current:
            return True
        if self.term_at(snap.index) == snap.term:
            snap.replace(self.snapshot_path)
            self._head = (max(first_index, snap.index + 1), snap)
            return True
        if compact_only:
            raise StorageError(
                f"the snapshot is not a compaction of the log (index {snap.index} term {snap.term})",
                snap.path,
            )
        try:
            snap.replace(self.snapshot_path)
            self._head = (snap.index + 1, snap)
            self._replace_log(snap)
        except StorageError as err:
            self._fail(err)
            raise
        return False

    def _replace_log(self, snap: SnapshotFile) -> None:
        """Set the whole log aside (``<logdir>-<timestamp>``) and start an empty one after
        ``snap``."""
        parent = os.path.dirname(self.log_dir)
        if os.path.isdir(self.log_dir):
            os.rename(self.log_dir, backup_name(self.log_dir))
            fsync_dir(parent)
        os.mkdir(self.log_dir)
        fsync_dir(parent)
        old = list(self._files.values())
        f = IndexFile.create(self.log_dir, snap.index + 1, self.index_file_capacity)
        self._files = {f.first_index: f}
        self._leaves = {}
        self._last_file = f
        self._lowest = f.first_index
        self._tail = (snap.index, snap.term)
        del old  # their descriptors close when no reader holds them any more

    def poll_install_path(self) -> SnapshotMeta | None:
        """Install a compaction snapshot waiting at ``install_path`` (``compact/snap.new``).

        Returns its meta when installed (the file has moved to the snapshot path), None when
        there is nothing (complete) to install yet; raises ``StorageError`` when the file is
        not a compaction of this log (the caller should stop polling, as the original stops
        watching).  Call it every few seconds from the storage worker."""
        self._writable()
        path = self.install_path
        if path is None:
            raise ValueError("no install path configured")
        if not os.access(path, os.R_OK | os.W_OK):
            return None
        try:
            snap = SnapshotFile.open(path)
        except (StorageError, FileNotFoundError):
            return None  # not complete yet: try again later
        self._install(snap, compact_only=True)
        return snap.meta

    # ---- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        for f in list(self._files.values()):
            f.close()
        self._files = {}
        self._last_file.close()
        self._head[1].close()

    def __enter__(self) -> FileLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
