"""File-system helpers shared by every file format: exact reads and writes, syncing, and the
names of backups and temporary files (spec/storage.md §10, §11).

Every descriptor is wrapped in an ``Fd`` whose lifetime closes it: an index file or snapshot
that a reader thread is still using stays open until the reader drops its reference, even if
the writer thread has already replaced or forgotten it.  That (and ``os.pread``/``os.pwrite``,
which never touch a shared file position) is what lets the event-loop thread read entries
while the storage worker appends, without locks (see ``filelog`` for the full rule).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Sequence

from ..base import StorageError

HISTORY_KEEP = 60
_TIMESTAMP_SUFFIX = re.compile(r"^(\d{4}-\d{2}-\d{2}-\d{6}-\d{3})([0-9a-z]+)$")
_IOV_MAX = 1024


class Fd:
    """An OS file descriptor closed when the last reference goes (or on ``close()``)."""

    __slots__ = ("fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


def io_error(err: OSError, path: str, what: str, offset: int | None = None) -> StorageError:
    return StorageError(f"{what} failed: {err.strerror or err}", path, offset)


def open_fd(path: str, flags: int, mode: int = 0o666) -> Fd:
    return Fd(os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode), path)


def pread_exact(fd: Fd, size: int, offset: int) -> bytes:
    """Exactly ``size`` bytes at ``offset``; a short read is a ``StorageError`` at that offset."""
    try:
        data = os.pread(fd.fd, size, offset)
    except OSError as err:
        raise io_error(err, fd.path, "read", offset) from err
    if len(data) < size:
        got = len(data)
        while got < size:  # pread may return less than asked for on some file systems
            try:
                more = os.pread(fd.fd, size - got, offset + got)
            except OSError as err:
                raise io_error(err, fd.path, "read", offset + got) from err
            if not more:
                raise StorageError(f"unexpected end of file (wanted {size} bytes)", fd.path, offset + got)
            data += more
            got += len(more)
    return data


def pwrite_all(fd: Fd, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd.fd, view, offset)
        view = view[n:]
        offset += n


def pwritev_all(fd: Fd, buffers: Sequence[bytes], offset: int) -> int:
    """Write ``buffers`` contiguously at ``offset`` with as few system calls as possible
    (one ``pwritev`` per 1024 buffers); returns the number of bytes written."""
    total = 0
    for start in range(0, len(buffers), _IOV_MAX):
        part = buffers[start : start + _IOV_MAX]
        want = sum(map(len, part))
        n = os.pwritev(fd.fd, part, offset)
        if n < want:  # short write (rare): finish the rest in one joined write
            pwrite_all(fd, memoryview(b"".join(part))[n:], offset + n)
        offset += want
        total += want
    return total


def fdatasync(fd: Fd) -> None:
    try:
        os.fdatasync(fd.fd)
    except OSError as err:
        raise io_error(err, fd.path, "fdatasync") from err


def fsync(fd: Fd) -> None:
    try:
        os.fsync(fd.fd)
    except OSError as err:
        raise io_error(err, fd.path, "fsync") from err


def fsync_dir(path: str) -> None:
    """Make a directory's entries durable; skipped where directories cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        dfd = os.open(path, flags)
    except OSError as err:
        if err.errno in (errno.EISDIR, errno.EACCES, errno.EPERM):
            return
        raise io_error(err, path, "open directory") from err
    try:
        os.fsync(dfd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise io_error(err, path, "fsync directory") from err
    finally:
        os.close(dfd)


def mkdir_p(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def file_size(fd: Fd) -> int:
    return os.fstat(fd.fd).st_size


def parent_dir(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


# ---- names: backups (§11), temporary files ---------------------------------------------------

_last_ms = -1
_same_ms = 0
_temp_counter = 0


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out))


def timestamp_suffix(now_ms: int | None = None) -> str:
    """``YYYY-MM-DD-HHMMSS-mmm<c>`` in UTC; ``<c>`` (base 36) counts names made within the
    same millisecond by this process."""
    global _last_ms, _same_ms
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if ms == _last_ms:
        _same_ms += 1
    else:
        _last_ms, _same_ms = ms, 0
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%d-%H%M%S", time.gmtime(seconds)) + f"-{millis:03d}{base36(_same_ms)}"


def backup_name(path: str) -> str:
    return f"{path}-{timestamp_suffix()}"


def temp_name(path: str) -> str:
    """``<path>.tmp-<pid>-<n36>`` with a per-process counter starting at 1."""
    global _temp_counter
    _temp_counter += 1
    return f"{path}.tmp-{os.getpid()}-{base36(_temp_counter)}"


def iso_timestamp(now_ms: int | None = None) -> str:
    """``2026-11-29T07:03:22.043Z`` (the ``created`` value of META chunks)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def hostname() -> str:
    return os.uname().nodename


def remove_stale_temps(path: str) -> list[str]:
    """Delete ``<basename>.tmp-<digits>-<[0-9a-z]+>`` beside ``path``; returns what was removed."""
    directory, base = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(base) + r"\.tmp-\d+-[0-9a-z]+$")
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        if pattern.match(name):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
    return removed


def history_names(path: str) -> list[str]:
    """Backup names of ``path`` (``<basename>-<timestamp suffix>``), oldest first."""
    directory, base = os.path.split(os.path.abspath(path))
    found: list[tuple[str, int, str]] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    prefix = base + "-"
    for name in names:
        if not name.startswith(prefix):
            continue
        m = _TIMESTAMP_SUFFIX.match(name[len(prefix) :])
        if m and not os.path.isdir(os.path.join(directory, name)):  # renamed log dirs stay
            found.append((m.group(1), int(m.group(2), 36), name))
    found.sort()
    return [name for _, _, name in found]


def cleanup_history(path: str, keep: int = HISTORY_KEEP) -> list[str]:
    """Delete all but the newest ``keep`` backups of ``path`` (spec/storage.md §11).

    The original debounces this by 5 s; it is cheap enough to run after every replace."""
    directory = os.path.dirname(os.path.abspath(path))
    names = history_names(path)
    doomed = names[: max(0, len(names) - keep)]
    for name in doomed:
        full = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(full)
    return doomed
