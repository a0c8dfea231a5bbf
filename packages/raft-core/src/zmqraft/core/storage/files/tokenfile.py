"""Token files: sequences of 4-byte aligned chunks ``token | u32 length | data | pad``
(spec/storage.md §2).  Index files and snapshot files are token files.
"""

from __future__ import annotations

import struct

from ...protocol import mpack
from ..base import StorageError
from .fsutil import Fd, hostname, iso_timestamp, pread_exact

HEADER = struct.Struct("<4sI")
HEADER_SIZE = 8


def pad4(n: int) -> int:
    return n + (-n & 3)


def chunk(token: bytes, data: bytes, length: int | None = None) -> bytes:
    """One chunk: header, ``data`` and zero padding.  ``length`` may declare more bytes than
    given (the caller extends the file so the rest reads as zeros, as the RLOG table does)."""
    declared = len(data) if length is None else length
    return HEADER.pack(token, declared) + data + bytes(pad4(len(data)) - len(data))


def meta_chunk(now_ms: int | None = None, host: str | None = None) -> bytes:
    """The META chunk every index and snapshot file carries: ``{created, hostname}``."""
    blob = mpack.pack({"created": iso_timestamp(now_ms), "hostname": hostname() if host is None else host})
    return chunk(b"META", blob)


def read_header(fd: Fd, position: int) -> tuple[bytes, int]:
    token, length = HEADER.unpack(pread_exact(fd, HEADER_SIZE, position))
    return token, length


def find_token(fd: Fd, token: bytes, start: int, stop: int | None = None) -> tuple[int, int] | None:
    """Walk chunks from ``start``; ``(data position, length)`` of the first ``token`` chunk, or
    None when passing ``stop``.  Running into the end of the file is a ``StorageError``."""
    position = start
    while stop is None or position < stop:
        found, length = read_header(fd, position)
        if found == token:
            return position + HEADER_SIZE, length
        position += HEADER_SIZE + pad4(length)
    return None


def read_meta(fd: Fd, start: int, stop: int | None = None) -> dict[str, object] | None:
    """The decoded META chunk found from ``start`` (None if there is none before ``stop``)."""
    found = find_token(fd, b"META", start, stop)
    if found is None:
        return None
    position, length = found
    try:
        value = mpack.unpack(pread_exact(fd, length, position))
    except ValueError as err:
        raise StorageError(f"invalid META chunk: {err}", fd.path, position) from err
    return value if isinstance(value, dict) else {"value": value}
