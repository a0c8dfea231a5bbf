"""Snapshot files: ``SNAP`` header (index, term, data size), ``META``, empty ``DATA`` chunk,
then the opaque snapshot data from offset ``D`` (spec/storage.md §7).

A snapshot file is valid only when ``file size - D == data size`` exactly, so a partially
written one can never be opened as complete.  Snapshots are built under temporary names and
installed with ``replace`` (the old file is kept as a timestamped hard link, the new one is
renamed over it, the directory is fsynced).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Iterator

from ..base import SnapshotMeta, StorageError
from .fsutil import (
    Fd,
    backup_name,
    cleanup_history,
    fdatasync,
    file_size,
    fsync,
    fsync_dir,
    io_error,
    mkdir_p,
    open_fd,
    pread_exact,
    pwrite_all,
)
from .logdir import MAX_INDEX
from .tokenfile import HEADER, find_token, meta_chunk, read_meta

VERSION = 1
SNAP = b"SNAP"
_HEAD = struct.Struct("<4sIIQQQ")  # token, 28, version, index, term, data size
SIZE_FIELD = 28


def header_bytes(
    index: int, term: int, data_size: int, now_ms: int | None = None, host: str | None = None
) -> bytes:
    for name, value in (("index", index), ("term", term), ("data size", data_size)):
        if not 0 <= value <= MAX_INDEX:
            raise ValueError(f"snapshot {name} must be 0..2^53-1, got {value}")
    head = _HEAD.pack(SNAP, 28, VERSION, index, term, data_size)
    return b"".join((head, meta_chunk(now_ms, host), HEADER.pack(b"DATA", 0)))


class SnapshotFile:
    """One snapshot file.  ``read`` uses ``os.pread`` so a reader thread may keep reading an
    old snapshot object after the writer installed a new one (its descriptor stays open
    until the last reference goes)."""

    __slots__ = ("_fd", "data_offset", "data_size", "index", "path", "term", "writable")

    def __init__(
        self, fd: Fd, path: str, index: int, term: int, data_size: int, data_offset: int, writable: bool
    ) -> None:
        self._fd = fd
        self.path = path
        self.index = index
        self.term = term
        self.data_size = data_size
        self.data_offset = data_offset
        self.writable = writable

    @property
    def meta(self) -> SnapshotMeta:
        return SnapshotMeta(self.index, self.term, self.data_size)

    # ---- creating and opening -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str,
        index: int,
        term: int,
        data_size: int,
        data: bytes | memoryview | None = None,
        *,
        now_ms: int | None = None,
        host: str | None = None,
    ) -> SnapshotFile:
        """Exclusive-create ``path`` with the header (and ``data`` if given), fsync it and its
        directory.  Without ``data`` fill it with ``write`` and finish with ``sync``."""
        head = header_bytes(index, term, data_size, now_ms, host)
        if data is not None and len(data) != data_size:
            raise ValueError(f"snapshot data is {len(data)} bytes, declared {data_size}")
        directory = os.path.dirname(os.path.abspath(path))
        mkdir_p(directory)
        try:
            fd = open_fd(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except FileExistsError as err:
            raise StorageError("snapshot file already exists", path) from err
        except OSError as err:
            raise io_error(err, path, "create") from err
        try:
            pwrite_all(fd, head, 0)
            if data is not None and data_size:
                pwrite_all(fd, data, len(head))
            fsync(fd)
            fsync_dir(directory)
        except OSError as err:
            raise io_error(err, path, "write") from err
        return cls(fd, path, index, term, data_size, len(head), True)

    @classmethod
    def open(cls, path: str, writable: bool = False) -> SnapshotFile:
        """Open and validate; a partial or inconsistent file raises ``StorageError``."""
        try:
            fd = open_fd(path, os.O_RDWR if writable else os.O_RDONLY)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise io_error(err, path, "open") from err
        size = file_size(fd)
        token, length, version, index, term, data_size = _HEAD.unpack(pread_exact(fd, _HEAD.size, 0))
        if token != SNAP:
            raise StorageError("invalid snapshot file: no SNAP token", path, 0)
        if length != 28:
            raise StorageError(f"invalid snapshot file: SNAP length {length}", path, 4)
        if version != VERSION:
            raise StorageError(f"invalid snapshot file: version {version}", path, 8)
        found = find_token(fd, b"DATA", _HEAD.size)
        assert found is not None
        data_offset = found[0]
        if size - data_offset != data_size:
            raise StorageError(
                f"invalid snapshot file: data size {data_size} but {size - data_offset} bytes present",
                path,
                SIZE_FIELD,
            )
        return cls(fd, path, index, term, data_size, data_offset, writable)

    def close(self) -> None:
        self._fd.close()

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def file_meta(self) -> dict[str, object] | None:
        return read_meta(self._fd, _HEAD.size, self.data_offset)

    # ---- data ---------------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of data from ``offset`` (clamped to the data size)."""
        if offset < 0 or length < 0:
            raise ValueError("negative snapshot offset or length")
        length = min(length, self.data_size - offset)
        if length <= 0:
            return b""
        return pread_exact(self._fd, length, self.data_offset + offset)

    def iter_data(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        offset = 0
        while offset < self.data_size:
            piece = self.read(offset, chunk_size)
            offset += len(piece)
            yield piece

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.iter_data():
            digest.update(piece)
        return digest.hexdigest()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write data at ``offset`` (relative to the data start), within the declared size."""
        if not self.writable:
            raise StorageError("snapshot file is read-only", self.path)
        if offset < 0 or offset + len(data) > self.data_size:
            raise ValueError(f"snapshot write {offset}+{len(data)} exceeds the data size {self.data_size}")
        try:
            pwrite_all(self._fd, data, self.data_offset + offset)
        except OSError as err:
            raise io_error(err, self.path, "write", self.data_offset + offset) from err

    def sync(self) -> None:
        fdatasync(self._fd)

    def replace(self, dest: str) -> None:
        """Install this file as ``dest``: sync, keep the old ``dest`` as
        ``dest-<timestamp>`` (hard link), rename over it, fsync the directories, prune
        history to the newest 60 backups."""
        if os.path.abspath(dest) == os.path.abspath(self.path):
            raise ValueError("snapshot replace: destination is the file itself")
        fdatasync(self._fd)
        try:
            os.link(dest, backup_name(dest))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise io_error(err, dest, "backup link") from err
        try:
            os.rename(self.path, dest)
        except OSError as err:
            raise io_error(err, self.path, "rename") from err
        dest_dir = os.path.dirname(os.path.abspath(dest))
        src_dir = os.path.dirname(os.path.abspath(self.path))
        fsync_dir(dest_dir)
        if src_dir != dest_dir:
            fsync_dir(src_dir)
        self.path = dest
        self._fd.path = dest
        cleanup_history(dest)

    def unlink(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class SnapshotStreamWriter:
    """A snapshot of unknown size: the header is written with size 0, data is appended, and
    ``finish()`` patches the size in and syncs (spec/storage.md §7.2, stream variant)."""

    def __init__(
        self, path: str, index: int, term: int, *, now_ms: int | None = None, host: str | None = None
    ) -> None:
        self._file = SnapshotFile.create(path, index, term, 0, now_ms=now_ms, host=host)
        self._size = 0

    @property
    def written(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        f = self._file
        try:
            pwrite_all(f._fd, data, f.data_offset + self._size)
        except OSError as err:
            raise io_error(err, f.path, "write", f.data_offset + self._size) from err
        self._size += len(data)

    def finish(self) -> SnapshotFile:
        f = self._file
        try:
            pwrite_all(f._fd, struct.pack("<Q", self._size), SIZE_FIELD)
        except OSError as err:
            raise io_error(err, f.path, "write", SIZE_FIELD) from err
        fsync(f._fd)
        fsync_dir(os.path.dirname(os.path.abspath(f.path)))
        f.data_size = self._size
        return f

    def abort(self) -> None:
        self._file.unlink()
