"""The start-up rebuild of the request-id cache (spec/storage.md §6.8, raft.md §11).

Pure logic shared by ``FileLog`` and ``MemoryLog``: the caller feeds entries backwards from
the last one, each as ``(index, request id, capacity of the index file holding it)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...protocol.entry import ZERO_REQUEST_ID


def request_id_seconds(request_id: bytes) -> int:
    """The timestamp inside a request id: the first 4 bytes, big-endian Unix seconds."""
    return int.from_bytes(request_id[:4], "big")


def is_expired(request_id: bytes, wall_ms: int, ttl_ms: int | None) -> bool:
    """``seconds * 1000 < now - ttl`` (never expired without a ttl)."""
    return ttl_ms is not None and request_id_seconds(request_id) * 1000 < wall_ms - ttl_ms


def scan_request_ids(
    backwards: Iterable[tuple[int, bytes, int]], wall_ms: int, ttl_ms: int | None, cache_max: int | None
) -> list[tuple[bytes, int]]:
    """Fresh ``(request id, index)`` pairs, oldest first.

    Zero ids are skipped; expired ids are counted and the scan stops once the count exceeds
    the capacity of the file being read (everything older is assumed expired); the scan also
    stops once ``cache_max`` fresh ids were collected.  An id may occur twice (the later
    index wins when the pairs are loaded in order)."""
    found: list[tuple[bytes, int]] = []
    if cache_max is not None and cache_max <= 0:
        return found
    expired = 0
    for index, request_id, capacity in backwards:
        if request_id == ZERO_REQUEST_ID:
            continue
        if is_expired(request_id, wall_ms, ttl_ms):
            expired += 1
            if expired > capacity:
                break
            continue
        found.append((request_id, index))
        if cache_max is not None and len(found) >= cache_max:
            break
    found.reverse()
    return found
