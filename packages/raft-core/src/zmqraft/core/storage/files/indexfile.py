"""Index files (``*.rlog``): a fixed table of entry end offsets followed by the entries
(spec/storage.md §4).

Layout: ``RLOG`` chunk (version, capacity ``C``, first index, ``C`` u32 offsets), ``META``
chunk, empty ``ITMZ`` chunk, then the raw entries from the data position ``P``.  ``off[i]``
is the end of slot ``i`` relative to ``P``; a zero ends the committed run.

Crash safety (§4.5).  An append writes the entry bytes past the committed end, zeroes any
stale non-zero offsets after the new run (its own fdatasync, only when there were any), then
writes the new offset words in one write and fdatasyncs: one data write and one fdatasync per
batch.  Offset words are 4-aligned, so a torn write leaves each word old or new.  Two
additions that do not change any byte the original writes:

* at open, a committed offset that points beyond the end of the file ends the committed run
  (the data write of the last batch was torn while its offsets reached the disk);
* when the data write overwrites bytes already in the file (the first append after a
  rollback, which never shrinks the file) the data is fdatasynced before the offsets are
  written, so stale bytes of rolled-back entries can never become committed entries.

A new file is built under a temporary name, synced, then linked into place (never replacing
anything), so a crash can never leave a half-written header under an index file name.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ..base import StorageError
from .fsutil import (
    Fd,
    fdatasync,
    file_size,
    fsync,
    fsync_dir,
    io_error,
    open_fd,
    pread_exact,
    pwrite_all,
    pwritev_all,
)
from .logdir import MAX_INDEX, index_file_path, parse_index_path
from .tokenfile import HEADER, find_token, meta_chunk, read_meta

VERSION = 1
DEFAULT_CAPACITY = 0x4000
MIN_CAPACITY = 1
MAX_CAPACITY = 0x00FFFFFF
MAX_DATASIZE = 0x3FFFFFFF
TABLE_POSITION = 24
RLOG = b"RLOG"
_HEAD = struct.Struct("<4sIIIII")  # token, length, version, capacity, index lo, index hi


def aligned_capacity(index: int, requested: int) -> int:
    """Capacity of a new file at ``index`` so that ``index + C`` is a multiple of
    ``requested`` (§4.2)."""
    return requested - index % requested


def _words(values: Sequence[int] | array[int]) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)


def _table(raw: bytes) -> array[int]:
    table = array("I")
    if table.itemsize != 4:  # pragma: no cover - every supported platform has 4-byte "I"
        table = array("L")
    table.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover
        table.byteswap()
    return table


def header_bytes(index: int, capacity: int, now_ms: int | None = None, host: str | None = None) -> bytes:
    """RLOG (zero table), META and ITMZ of a new index file: everything before the data."""
    head = _HEAD.pack(RLOG, 16 + 4 * capacity, VERSION, capacity, index & 0xFFFFFFFF, index >> 32)
    return b"".join((head, bytes(4 * capacity), meta_chunk(now_ms, host), HEADER.pack(b"ITMZ", 0)))


def _mkdirs_synced(directory: str) -> None:
    """mkdir -p, fsyncing the parent of every directory created so the new file's path is
    durable (the original does not sync intermediate directories)."""
    missing = []
    d = os.path.abspath(directory)
    while not os.path.isdir(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            continue
        fsync_dir(os.path.dirname(d))


class IndexFile:
    """One open index file.  Reads use ``os.pread`` and only look at slots below the committed
    count the caller has seen, so they are safe while the owner appends beyond it."""

    __slots__ = (
        "_fd",
        "capacity",
        "claimed",
        "data_pos",
        "first_index",
        "next_at",
        "offsets",
        "path",
        "size",
        "writable",
    )

    def __init__(
        self,
        fd: Fd,
        path: str,
        first_index: int,
        capacity: int,
        data_pos: int,
        offsets: array[int],
        next_at: int,
        size: int,
        writable: bool,
        claimed: int | None = None,
    ) -> None:
        self._fd = fd
        self.path = path
        self.first_index = first_index
        self.capacity = capacity
        self.data_pos = data_pos
        self.offsets = offsets
        self.next_at = next_at
        self.size = size
        self.writable = writable
        # slots the offset table claims at open (> next_at when the tail is torn: those
        # entries' data does not reach the end of the file)
        self.claimed = next_at if claimed is None else claimed

    # ---- creating and opening -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        log_dir: str,
        index: int,
        capacity: int = DEFAULT_CAPACITY,
        *,
        now_ms: int | None = None,
        host: str | None = None,
    ) -> IndexFile:
        """Create the file for ``index`` with ``capacity`` aligned per §4.2.  Fails if it exists."""
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise ValueError(f"index file capacity must be {MIN_CAPACITY}..{MAX_CAPACITY}, got {capacity}")
        if not 0 <= index <= MAX_INDEX - capacity:
            raise ValueError(f"index file first index out of range: {index}")
        cap = aligned_capacity(index, capacity)
        path = index_file_path(log_dir, index)
        directory = os.path.dirname(path)
        _mkdirs_synced(directory)
        data = header_bytes(index, cap, now_ms, host)
        tmp = path + ".tmp"
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a leftover of a crash while creating this very file
            fd = open_fd(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            try:
                pwrite_all(fd, data, 0)
                fsync(fd)
                os.link(tmp, path)  # exclusive: never replaces an existing index file
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            fsync_dir(directory)
        except FileExistsError as err:
            raise StorageError("index file already exists", path) from err
        except OSError as err:
            raise io_error(err, path, "create") from err
        fd.path = path
        return cls(fd, path, index, cap, len(data), _table(bytes(4 * cap)), 0, len(data), True)

    @classmethod
    def open(cls, path: str, writable: bool = False) -> IndexFile:
        """Open and validate an existing file; a torn tail is left out of the committed run,
        anything inconsistent raises ``StorageError`` naming the file and offset.  Opening
        never writes."""
        first_index = parse_index_path(path)
        try:
            fd = open_fd(path, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as err:
            raise io_error(err, path, "open") from err
        size = file_size(fd)
        token, length, version, capacity, lo, hi = _HEAD.unpack(pread_exact(fd, _HEAD.size, 0))
        if token != RLOG:
            raise StorageError("index file type mismatch: no RLOG token", path, 0)
        if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise StorageError(f"index file type mismatch: capacity {capacity}", path, 12)
        if length != 16 + 4 * capacity:
            raise StorageError(f"index file type mismatch: RLOG length {length}", path, 4)
        if version != VERSION:
            raise StorageError(f"index file type mismatch: version {version}", path, 8)
        if lo | (hi << 32) != first_index:
            raise StorageError(
                f"index file type mismatch: index {lo | (hi << 32)} in a file named for {first_index}",
                path,
                16,
            )
        offsets = _table(pread_exact(fd, 4 * capacity, TABLE_POSITION))
        found = find_token(fd, b"ITMZ", TABLE_POSITION + 4 * capacity)
        assert found is not None
        data_pos = found[0]
        limit = size - data_pos
        if limit < 0:
            raise StorageError("unexpected end of file in the ITMZ chunk", path, size)
        # the committed run: leading non-zero offsets, strictly increasing; the first one
        # pointing beyond the end of the file starts a torn tail (all later ones must then
        # lie beyond it too, else the table is corrupt, not torn)
        run = 0
        torn: int | None = None
        previous = 0
        for value in offsets:
            if value == 0:
                break
            if value <= previous:
                raise StorageError(
                    f"sanity index check failed: offset {value} after {previous}",
                    path,
                    TABLE_POSITION + 4 * run,
                )
            if torn is None and value > limit:
                torn = run
            previous = value
            run += 1
        next_at = run if torn is None else torn
        return cls(fd, path, first_index, capacity, data_pos, offsets, next_at, size, writable, run)

    def close(self) -> None:
        self._fd.close()

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def meta(self) -> dict[str, object] | None:
        return read_meta(self._fd, TABLE_POSITION + 4 * self.capacity, self.data_pos)

    # ---- reading ------------------------------------------------------------------------------

    @property
    def next_index(self) -> int:
        return self.first_index + self.next_at

    @property
    def last_allowed_index(self) -> int:
        return self.first_index + self.capacity - 1

    @property
    def data_size(self) -> int:
        return self.offsets[self.next_at - 1] if self.next_at else 0

    def contains(self, index: int) -> bool:
        return self.first_index <= index < self.first_index + self.capacity

    def start_of(self, slot: int) -> int:
        return self.offsets[slot - 1] if slot else 0

    def entry_size(self, slot: int) -> int:
        return self.offsets[slot] - (self.offsets[slot - 1] if slot else 0)

    def byte_offset(self, slot: int) -> int:
        """Absolute file offset of slot ``slot`` (valid for ``0 <= slot <= next_at``)."""
        return self.data_pos + self.start_of(slot)

    def _check(self, slot: int, count: int, limit: int | None) -> None:
        top = self.next_at if limit is None else limit
        if slot < 0 or count < 0 or slot + count > top:
            raise StorageError(f"index out of bounds: slots {slot}..{slot + count - 1} of {top}", self.path)

    def read_entries(self, slot: int, count: int, limit: int | None = None) -> list[bytes]:
        """Entries in slots ``slot..slot+count-1`` with one read."""
        if count <= 0:
            return []
        self._check(slot, count, limit)
        start = self.start_of(slot)
        offs = self.offsets
        buf = pread_exact(self._fd, offs[slot + count - 1] - start, self.data_pos + start)
        out = []
        prev = 0
        for value in offs[slot : slot + count]:  # (twice as fast as map() over slice objects)
            end = value - start
            out.append(buf[prev:end])
            prev = end
        return out

    def read_raw(self, position: int, size: int) -> bytes:
        return pread_exact(self._fd, size, position)

    def read_slice(self, slot: int, start: int, stop: int, limit: int | None = None) -> bytes:
        """Bytes ``[start, stop)`` of the entry in ``slot``."""
        self._check(slot, 1, limit)
        begin = self.start_of(slot)
        size = self.offsets[slot] - begin
        stop = min(stop, size)
        if start >= stop:
            return b""
        return pread_exact(self._fd, stop - start, self.data_pos + begin + start)

    def term_of(self, slot: int, limit: int | None = None) -> int:
        return int.from_bytes(self.read_slice(slot, 13, 20, limit), "little")

    # ---- writing (§4.5) -----------------------------------------------------------------------

    def _writable(self) -> None:
        if not self.writable:
            raise StorageError("index file is read-only", self.path)

    def _clear_dirty(self, slot: int) -> bool:
        """Zero the stale non-zero offsets from ``slot`` to the first zero (durably)."""
        offs = self.offsets
        end = slot
        while end < self.capacity and offs[end] != 0:
            end += 1
        if end == slot:
            return False
        try:
            pwrite_all(self._fd, bytes(4 * (end - slot)), TABLE_POSITION + 4 * slot)
        except OSError as err:
            raise io_error(err, self.path, "write", TABLE_POSITION + 4 * slot) from err
        fdatasync(self._fd)
        offs[slot:end] = array(offs.typecode, bytes(offs.itemsize * (end - slot)))
        return True

    def _commit_words(self, slot: int, ends: Sequence[int]) -> None:
        offs = self.offsets
        k = len(ends)
        offs[slot : slot + k] = array(offs.typecode, ends)
        try:
            try:
                pwrite_all(self._fd, _words(ends), TABLE_POSITION + 4 * slot)
            except OSError as err:
                raise io_error(err, self.path, "write", TABLE_POSITION + 4 * slot) from err
            fdatasync(self._fd)
        except StorageError:
            offs[slot : slot + k] = array(offs.typecode, bytes(offs.itemsize * k))
            raise
        self.next_at = slot + k

    def append(self, entries: Sequence[bytes], start: int = 0) -> int:
        """Append ``entries[start:]`` at the committed end: as many as fit in the table and
        under ``MAX_DATASIZE``; one data write, one fdatasync.  Returns how many were written
        (0: the file is full)."""
        self._writable()
        slot = self.next_at
        base = self.offsets[slot - 1] if slot else 0
        room = min(self.capacity - slot, len(entries) - start)
        sizes = list(map(len, entries[start : start + room] if start or room < len(entries) else entries))
        if sizes and min(sizes) == 0:
            raise ValueError("log entry must not be empty")
        ends = list(accumulate(sizes, initial=base))[1:]  # per-entry work at C speed: hot path
        if ends and ends[-1] > MAX_DATASIZE:
            del ends[bisect_right(ends, MAX_DATASIZE) :]
        k = len(ends)
        if k == 0:
            return 0
        end = ends[-1]
        position = self.data_pos + base
        overwrite = position < self.size
        batch = entries[start : start + k] if start or k < len(entries) else entries
        try:
            pwritev_all(self._fd, batch, position)
        except OSError as err:
            raise io_error(err, self.path, "write", position) from err
        self.size = max(self.size, position + end - base)
        synced = self._clear_dirty(slot + k)
        if overwrite and not synced:
            fdatasync(self._fd)
        self._commit_words(slot, ends)
        return k

    def write_uncommitted(self, slot: int, entry: bytes) -> bool:
        """Write one entry without committing it (the original's download path): the offset
        is set in memory only; ``commit()`` makes it (and following ones) durable.  Returns
        False when it does not fit (table full or ``MAX_DATASIZE``)."""
        self._writable()
        if not entry:
            raise ValueError("log entry must not be empty")
        if slot < self.next_at:
            self.rollback(slot)
        if slot >= self.capacity:
            return False
        if slot > self.next_at and self.offsets[slot - 1] == 0:
            raise StorageError(f"non linear addition at slot {slot}", self.path)
        base = self.offsets[slot - 1] if slot else 0
        if base + len(entry) > MAX_DATASIZE:
            return False
        position = self.data_pos + base
        try:
            pwrite_all(self._fd, entry, position)
        except OSError as err:
            raise io_error(err, self.path, "write", position) from err
        self.size = max(self.size, position + len(entry))
        self._clear_dirty(slot + 1)
        self.offsets[slot] = base + len(entry)
        return True

    def commit(self) -> int:
        """Make the uncommitted offsets after the committed run durable; the new next index."""
        self._writable()
        slot = self.next_at
        end = slot
        while end < self.capacity and self.offsets[end] != 0:
            end += 1
        if end > slot:
            ends = list(self.offsets[slot:end])
            fdatasync(self._fd)  # uncommitted data may overwrite stale bytes: sync it first
            self._commit_words(slot, ends)
        return self.next_index

    def rollback(self, slot: int) -> None:
        """Drop the committed slots from ``slot`` on (zeroing their offsets durably; the data
        stays, the file is never shrunk)."""
        self._writable()
        if slot > self.next_at or slot < 0:
            raise StorageError(
                f"index out of bounds: cannot truncate to slot {slot} of {self.next_at}", self.path
            )
        if slot == self.next_at:
            return
        count = self.next_at - slot
        self.next_at = slot
        try:
            pwrite_all(self._fd, bytes(4 * count), TABLE_POSITION + 4 * slot)
        except OSError as err:
            raise io_error(err, self.path, "write", TABLE_POSITION + 4 * slot) from err
        fdatasync(self._fd)
        offs = self.offsets
        offs[slot : slot + count] = array(offs.typecode, bytes(offs.itemsize * count))

    @property
    def torn(self) -> bool:
        """The offset table claims entries whose data the file does not hold (cut entries)."""
        return self.claimed > self.next_at

    def drop_torn_tail(self) -> None:
        """Repair (never automatic, see ``repair``): zero the offsets of the cut entries
        durably and cut the file after the last whole entry; the whole entries stay."""
        self._writable()
        if not self.torn:
            return
        self._clear_dirty(self.next_at)
        end = self.data_pos + self.data_size
        try:
            os.ftruncate(self._fd.fd, end)
        except OSError as err:
            raise io_error(err, self.path, "truncate", end) from err
        fdatasync(self._fd)
        self.size = end
        self.claimed = self.next_at

    def destroy(self) -> None:
        """Roll back everything, close and unlink the file."""
        self.rollback(0)
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
