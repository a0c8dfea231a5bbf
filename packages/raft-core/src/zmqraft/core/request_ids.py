"""The request-id cache: which log index carries a client's request id (spec/raft.md §11).

It makes RequestUpdate idempotent: a retried request is answered with the index of the entry
it already produced instead of appending it again.  Ids expire after ``ttl`` (by the
timestamp inside the id) and the cache is capped at ``max_size``; both are swept oldest-first.
"""

from __future__ import annotations

from collections.abc import Iterable

from .protocol.entry import ZERO_REQUEST_ID


def request_id_ms(request_id: bytes) -> int:
    """The timestamp inside a request id (first 4 bytes, big-endian seconds) in ms."""
    return int.from_bytes(request_id[:4], "big") * 1000


def is_expired(request_id: bytes, wall_ms: int, ttl_ms: int | None) -> bool:
    """``seconds * 1000 < now - ttl`` (never expired without a ttl)."""
    return ttl_ms is not None and request_id_ms(request_id) < wall_ms - ttl_ms


def is_fresh(request_id: bytes, wall_ms: int, ttl_ms: int | None, margin_ms: int) -> bool:
    """May a request id that is not in the cache be accepted (spec/protocol.md §9.3)?  The
    window is ``[now - (ttl - margin), now + margin]``: an id older than that could already
    have been swept from the cache, so appending it again could apply it twice."""
    if ttl_ms is None:
        return True
    t = request_id_ms(request_id)
    return wall_ms - (ttl_ms - margin_ms) <= t <= wall_ms + margin_ms


def scan_request_ids(
    backwards: Iterable[tuple[int, bytes, int]], wall_ms: int, ttl_ms: int | None, cache_max: int | None
) -> list[tuple[bytes, int]]:
    """The start-up rebuild (spec/storage.md §6.8): fresh ``(request id, index)`` pairs,
    oldest first, from entries fed backwards as ``(index, request id, capacity of the index
    file holding it)``.

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


class RequestIdCache:
    def __init__(self, ttl_ms: int | None, max_size: int | None) -> None:
        self.ttl_ms = ttl_ms
        self.max_size = max_size
        self._index: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._index)

    def get(self, request_id: bytes) -> int | None:
        return self._index.get(request_id)

    def is_expired(self, request_id: bytes, wall_ms: int) -> bool:
        return is_expired(request_id, wall_ms, self.ttl_ms)

    def add(self, request_id: bytes, index: int, wall_ms: int) -> None:
        """``request_id`` is at ``index`` (zero and expired ids are not kept)."""
        self.add_entries(index, (request_id,), wall_ms)

    def add_entries(self, first_index: int, entries: Iterable[bytes | memoryview], wall_ms: int) -> None:
        """The request id of every entry (its first 12 bytes) from ``first_index`` on: one call
        per appended batch, the hot path of every peer.  Zero ids (CHECKPOINT) and expired ids
        are not kept; an id added again moves to the young end with its new index."""
        cache = self._index
        ttl_ms = self.ttl_ms
        oldest_s = -1 if ttl_ms is None else (wall_ms - ttl_ms) / 1000  # older ids are expired
        index = first_index
        for entry in entries:
            rid = bytes(entry[:12])
            if rid != ZERO_REQUEST_ID and int.from_bytes(rid[:4], "big") >= oldest_s:
                if rid in cache:
                    del cache[rid]  # re-added: it moves to the young end
                cache[rid] = index
            index += 1

    def load(self, pairs: Iterable[tuple[bytes, int]]) -> None:
        for request_id, index in pairs:
            self._index[request_id] = index

    def truncate_after(self, last_kept: int) -> None:
        doomed = [rid for rid, index in self._index.items() if index > last_kept]
        for rid in doomed:
            del self._index[rid]

    def clear(self) -> None:
        self._index.clear()

    def sweep(self, wall_ms: int) -> None:
        """Drop expired ids and the oldest beyond ``max_size``, stopping at the first kept
        (oldest first, without copying the cache: it may hold millions of ids)."""
        while self._index:
            rid = next(iter(self._index))
            over = self.max_size is not None and len(self._index) > self.max_size
            if not over and not self.is_expired(rid, wall_ms):
                break
            del self._index[rid]

    def prune_index(self, last_index: int) -> int:
        """Index below which no cached id lives: compaction up to here keeps idempotency."""
        for index in self._index.values():
            return index - 1
        return last_index
