"""The request-id cache: which log index carries a client's request id (spec/raft.md §11).

It makes RequestUpdate idempotent: a retried request is answered with the index of the entry
it already produced instead of appending it again.  Ids expire after ``ttl`` (by the
timestamp inside the id) and the cache holds at most ``max_size`` ids.

Memory is what shapes it: a peer writing 15,000 updates a second would otherwise keep
hundreds of millions of ids for the 8-hour ttl.  The newest ids live in a dict (the hot path:
one C-level insert per entry); every ``generation`` ids the dict is frozen into a packed
generation (8 bytes of hash, 12 of id, 8 of index, searched by bisection), so a cached id
costs about 30 bytes instead of ~110.  When the cap is passed the oldest generation is
dropped whole, and the newest timestamp it held becomes the *eviction horizon*: an id at or
below the horizon that is not in the cache may have been evicted, so it is refused as
expired rather than appended twice.  At-most-once holds; what the cap trades away is how
long a retry may come late at high write rates (``max_size`` / write rate).
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .protocol.entry import REQUEST_ID_SIZE, ZERO_REQUEST_ID

GENERATION_MAX = 16384  # ids per frozen generation (and the most the dict holds)
DEFAULT_CACHE_MAX = 250_000  # ~30 bytes an id: ~7.5 MB a peer at most
_MAX_EVICTIONS = 64  # eviction records kept for the prune index (merged beyond)
_SECONDS = struct.Struct(">I8x")
_hash = hash  # a module name, so a test can force collisions


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


class RequestIdScan(list[tuple[bytes, int]]):
    """The start-up rebuild's result: fresh ``(request id, index)`` pairs, oldest first, and
    what the cap left out (so the rebuilt cache knows its eviction horizon)."""

    evicted_newest_s: int = -1  # newest timestamp (s) of a fresh id left out by the cap
    evicted_oldest_index: int = 0  # oldest index of such an id (0: none left out)


def scan_request_ids(
    backwards: Iterable[tuple[int, bytes, int]], wall_ms: int, ttl_ms: int | None, cache_max: int | None
) -> RequestIdScan:
    """The start-up rebuild (spec/storage.md §6.8): fresh ``(request id, index)`` pairs,
    oldest first, from entries fed backwards as ``(index, request id, capacity of the index
    file holding it)``.

    Zero ids are skipped; expired ids are counted and the scan stops once the count exceeds
    the capacity of the file being read (everything older is assumed expired).  Past
    ``cache_max`` fresh ids the scan goes on (with a ttl) without keeping them, only to learn
    the newest timestamp and the oldest index among them.  An id may occur twice (the later index wins
    when the pairs are loaded in order)."""
    found = RequestIdScan()
    limit = -1 if cache_max is None else max(cache_max, 0)
    expired = 0
    for index, request_id, capacity in backwards:
        if request_id == ZERO_REQUEST_ID:
            continue
        if is_expired(request_id, wall_ms, ttl_ms):
            expired += 1
            if expired > capacity:
                break
            continue
        if len(found) != limit:
            found.append((request_id, index))
            continue
        if ttl_ms is None:
            break  # nothing expires: no horizon to learn (it would mean reading the whole log)
        seconds = int.from_bytes(request_id[:4], "big")
        found.evicted_newest_s = max(found.evicted_newest_s, seconds)
        found.evicted_oldest_index = index
    found.reverse()
    return found


@dataclass(slots=True)
class _Generation:
    """Frozen ids, sorted by ``hash(id)`` so a lookup is a C-level bisection: ``hashes``,
    the ids packed 12 bytes each in the same order, and their indexes."""

    hashes: array[int]
    rids: bytes
    indexes: array[int]
    oldest_s: int
    newest_s: int
    first_index: int
    last_index: int

    @classmethod
    def freeze(cls, ids: dict[bytes, int]) -> _Generation:
        keys, values = list(ids), list(ids.values())
        hashes = list(map(_hash, keys))
        order = sorted(range(len(keys)), key=hashes.__getitem__)
        rids = b"".join([keys[k] for k in order])
        seconds = [s for (s,) in _SECONDS.iter_unpack(rids)]
        return cls(
            array("q", [hashes[k] for k in order]),
            rids,
            array("q", [values[k] for k in order]),
            min(seconds),
            max(seconds),
            min(values),
            max(values),
        )

    def __len__(self) -> int:
        return len(self.indexes)

    def find(self, request_id: bytes) -> int | None:
        hashes, rids = self.hashes, self.rids
        key = _hash(request_id)
        at = bisect_left(hashes, key)
        while at < len(hashes) and hashes[at] == key:
            if rids[at * REQUEST_ID_SIZE : (at + 1) * REQUEST_ID_SIZE] == request_id:
                return self.indexes[at]
            at += 1
        return None

    def items(self) -> list[tuple[bytes, int]]:
        rids, size = self.rids, REQUEST_ID_SIZE
        return [(rids[k * size : (k + 1) * size], index) for k, index in enumerate(self.indexes)]


class RequestIdCache:
    def __init__(self, ttl_ms: int | None, max_size: int | None) -> None:
        self.ttl_ms = ttl_ms
        self.max_size = max_size
        self.generation = GENERATION_MAX if max_size is None else max(1, min(GENERATION_MAX, max_size // 4))
        self._cap = (1 << 62) if max_size is None else max_size
        self._young: dict[bytes, int] = {}
        self._frozen: deque[_Generation] = deque()  # oldest first
        self._frozen_count = 0
        self._frozen_newest = b"\x00\x00\x00\x00"  # the newest frozen timestamp, as id bytes
        self.horizon_s = -1  # ids not cached at or below this may have been evicted
        self._evictions: deque[tuple[int, int]] = deque()  # (oldest index, newest seconds)

    def __len__(self) -> int:
        return len(self._young) + self._frozen_count

    def get(self, request_id: bytes) -> int | None:
        """The newest index holding ``request_id`` (None if not cached)."""
        index = self._young.get(request_id)
        if index is not None or not self._frozen or request_id[:4] > self._frozen_newest:
            return index  # a fresh id is newer than every frozen one: one dict lookup
        seconds = int.from_bytes(request_id[:4], "big")
        for generation in reversed(self._frozen):
            if generation.oldest_s <= seconds <= generation.newest_s:
                index = generation.find(request_id)
                if index is not None:
                    return index
        return None

    def is_expired(self, request_id: bytes, wall_ms: int) -> bool:
        return is_expired(request_id, wall_ms, self.ttl_ms)

    def may_be_evicted(self, request_id: bytes) -> bool:
        """Could this uncached id have been dropped by the cap (so it must not be appended)?"""
        return int.from_bytes(request_id[:4], "big") <= self.horizon_s

    def add(self, request_id: bytes, index: int, wall_ms: int) -> None:
        """``request_id`` is at ``index`` (zero and expired ids are not kept)."""
        self.add_entries(index, (request_id,), wall_ms)

    def add_entries(self, first_index: int, entries: Iterable[bytes | memoryview], wall_ms: int) -> None:
        """The request id of every entry (its first 12 bytes) from ``first_index`` on: one call
        per appended batch, the hot path of every peer.  Zero ids (CHECKPOINT) and expired ids
        are not kept; an id added again moves to the young end with its new index."""
        young = self._young
        ttl_ms = self.ttl_ms
        oldest_s = -1 if ttl_ms is None else (wall_ms - ttl_ms) / 1000  # older ids are expired
        index = first_index
        for entry in entries:
            rid = bytes(entry[:12])
            if rid != ZERO_REQUEST_ID and int.from_bytes(rid[:4], "big") >= oldest_s:
                if rid in young:
                    del young[rid]  # re-added: it moves to the young end
                young[rid] = index
            index += 1
        if len(young) >= self.generation or len(young) + self._frozen_count > self._cap:
            self._settle()

    def load(self, pairs: Iterable[tuple[bytes, int]]) -> None:
        """The start-up rebuild (a ``RequestIdScan``, or plain pairs, oldest first)."""
        young = self._young
        for request_id, index in pairs:
            if request_id in young:
                del young[request_id]
            young[request_id] = index
            if len(young) >= self.generation or len(young) + self._frozen_count > self._cap:
                self._settle()
                young = self._young
        newest_s = getattr(pairs, "evicted_newest_s", -1)
        if newest_s >= 0:
            self._evicted(getattr(pairs, "evicted_oldest_index", 1), newest_s)

    def _settle(self) -> None:
        """Freeze a full young dict; drop the oldest generations while past the cap."""
        if len(self._young) >= self.generation:
            self._freeze()
        while len(self) > self._cap:
            if not self._frozen:
                self._freeze()  # one batch alone passed the cap
            oldest = self._frozen.popleft()
            self._frozen_count -= len(oldest)
            self._evicted(oldest.first_index, oldest.newest_s)
        self._reset_newest()

    def _freeze(self) -> None:
        generation = _Generation.freeze(self._young)
        self._young = {}
        self._frozen.append(generation)
        self._frozen_count += len(generation)
        self._frozen_newest = max(self._frozen_newest, generation.newest_s.to_bytes(4, "big"))

    def _evicted(self, oldest_index: int, newest_s: int) -> None:
        self.horizon_s = max(self.horizon_s, newest_s)
        if self.ttl_ms is None:
            return  # never expiring, they would hold compaction back forever
        evictions = self._evictions
        evictions.append((oldest_index, newest_s))
        if len(evictions) > _MAX_EVICTIONS:  # merge the two oldest: the prune index only needs the oldest
            a, b = evictions.popleft(), evictions.popleft()
            evictions.appendleft((min(a[0], b[0]), max(a[1], b[1])))

    def _reset_newest(self) -> None:
        newest = max((g.newest_s for g in self._frozen), default=0)
        self._frozen_newest = newest.to_bytes(4, "big")

    def truncate_after(self, last_kept: int) -> None:
        """Forget ids at indexes past ``last_kept`` (a follower's log was cut)."""
        doomed = [rid for rid, index in self._young.items() if index > last_kept]
        for rid in doomed:
            del self._young[rid]
        while self._frozen and self._frozen[-1].last_index > last_kept:
            generation = self._frozen.pop()
            self._frozen_count -= len(generation)
            kept = {rid: index for rid, index in generation.items() if index <= last_kept}
            if kept:
                self._frozen.append(_Generation.freeze(kept))
                self._frozen_count += len(kept)
                break
        self._reset_newest()
        while self._evictions and self._evictions[-1][0] > last_kept:
            self._evictions.pop()  # the horizon stays: refusing an id is always safe

    def clear(self) -> None:
        """Forget every id (a snapshot replaced the log); the horizon stays."""
        self._young.clear()
        self._frozen.clear()
        self._frozen_count = 0
        self._evictions.clear()
        self._reset_newest()

    def sweep(self, wall_ms: int) -> None:
        """Drop expired ids: whole generations once their newest id expired, then the young
        ids oldest first (without copying: the dict may be large)."""
        ttl_ms = self.ttl_ms
        if ttl_ms is None:
            return
        oldest_s = (wall_ms - ttl_ms) / 1000
        while self._frozen and self._frozen[0].newest_s < oldest_s:
            self._frozen_count -= len(self._frozen.popleft())
        while self._evictions and self._evictions[0][1] < oldest_s:
            self._evictions.popleft()
        self._reset_newest()
        young = self._young
        while young:
            rid = next(iter(young))
            if not self.is_expired(rid, wall_ms):
                break
            del young[rid]

    def prune_index(self, last_index: int) -> int:
        """Index below which no unexpired id lives, cached or evicted: compaction up to here
        keeps idempotency, also across a restart (the rebuild must see evicted ids again to
        restore the horizon).  Without a ttl evicted ids are not held back: the horizon then
        lasts while the peer runs."""
        if self._evictions:
            return self._evictions[0][0] - 1
        if self._frozen:
            return self._frozen[0].first_index - 1
        for index in self._young.values():
            return index - 1
        return last_index
