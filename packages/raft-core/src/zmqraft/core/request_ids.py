"""The request-id cache: which log index carries a client's request id (spec/raft.md §11).

It makes RequestUpdate idempotent: a retried request is answered with the index of the entry
it already produced instead of appending it again.  Ids expire after ``ttl`` (by the
timestamp inside the id) and the cache holds at most ``max_size`` ids.

Memory is what shapes it: a peer writing 15,000 updates a second would otherwise keep
hundreds of millions of ids for the 8-hour ttl.  The newest ids live in two dicts (young and
warm; the hot path is one C-level insert per entry and one or two lookups per request).  Each
time the young dict holds ``generation`` ids the warm one is frozen into a packed generation
(sorted by hash: 4 bytes of hash, 12 of id, 8 of index, searched by bisection) and the
young one becomes warm, so a cached id costs about 25 bytes instead of ~110.  A request
newer than every frozen id needs no search at all.  When the cap is passed the oldest generation is
dropped whole, and the newest timestamp it held becomes the *eviction horizon*: an id at or
below the horizon that is not in the cache may have been evicted, so it is refused as
expired rather than appended twice.  At-most-once holds; what the cap trades away is how
long a retry may come late at high write rates (``max_size`` / write rate).  The cap never
drops ids younger than ``retain`` seconds (by the peer's clock, 10 s by default): the
horizon then trails the clock, so a fresh request is never refused by it (unless its client's
clock is behind by more than that), and above
``max_size / retain`` writes a second the cache holds the last ``retain`` seconds instead.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from .protocol.entry import REQUEST_ID_SIZE, ZERO_REQUEST_ID

GENERATION_MAX = 8192  # ids per frozen generation (and the most a dict holds)
DEFAULT_CACHE_MAX = 250_000  # ~30 bytes an id: ~7.5 MB a peer at most
DEFAULT_RETAIN = 10.0  # seconds: the cap never drops ids younger than this
_hash = hash  # a module name, so a test can force collisions
_MAX_EVICTIONS = 64  # eviction records kept for the prune index (merged beyond)


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
    the newest timestamp and the oldest index among them (a restart takes longer than the
    second a horizon is counted in, so it never refuses a request made after it).  An id may
    occur twice (the later index wins when the pairs are loaded in order)."""
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


_request_id_of = itemgetter(slice(0, REQUEST_ID_SIZE))  # an entry's first 12 bytes
# 30 bits of ``hash(id)``: 4 bytes a frozen id (ties are compared).  A 30-bit int is one
# CPython digit, for which sorting takes half the time of 31 bits (a freeze: 0.41 -> 0.25 µs an id)
_HASH_MASK = 0x3FFFFFFF


def _gather(items: list[Any], order: list[int]) -> Sequence[Any]:
    return (items[order[0]],) if len(order) == 1 else itemgetter(*order)(items)


@dataclass(slots=True)
class _Generation:
    """Frozen ids sorted by a 30-bit hash, so a lookup is a C-level bisection however many
    ids share a second: ``hashes``, the ids packed 12 bytes each in the same order, and their
    indexes (24 bytes an id); ``oldest_s``/``newest_s`` bound their timestamps."""

    hashes: array[int]
    rids: bytes
    indexes: array[int]
    oldest_s: int
    newest_s: int
    first_index: int
    last_index: int
    #: the newest timestamp in this generation and every older one: a lookup walking from
    #: the newest generation stops at the first whose ``upto_s`` is older than its id
    upto_s: int = -1

    @classmethod
    def freeze(cls, ids: dict[bytes, int]) -> _Generation:
        keys, values = list(ids), list(ids.values())
        hashes = [h & _HASH_MASK for h in map(_hash, keys)]
        order = sorted(range(len(keys)), key=hashes.__getitem__)
        rids = b"".join(_gather(keys, order))
        seconds = bytearray(4 * len(keys))  # the 4 timestamp bytes of every id, at C speed
        for k in range(4):
            seconds[k::4] = rids[k::REQUEST_ID_SIZE]
        stamps = array("I", seconds)
        if stamps.itemsize != 4:
            raise RuntimeError("array('I') is not 32 bits here")
        if sys.byteorder == "little":
            stamps.byteswap()  # big-endian in the id
        return cls(
            array("i", _gather(hashes, order)),
            rids,
            array("q", _gather(values, order)),
            min(stamps),
            max(stamps),
            min(values),
            max(values),
        )

    def __len__(self) -> int:
        return len(self.indexes)

    def find(self, request_id: bytes) -> int | None:
        hashes, rids = self.hashes, self.rids
        key = _hash(request_id) & _HASH_MASK
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
    def __init__(self, ttl_ms: int | None, max_size: int | None, retain: float = DEFAULT_RETAIN) -> None:
        self.ttl_ms = ttl_ms
        self.max_size = max_size
        self.retain = retain
        self.generation = GENERATION_MAX if max_size is None else max(1, min(GENERATION_MAX, max_size // 8))
        self._cap = (1 << 62) if max_size is None else max_size
        self._young: dict[bytes, int] = {}
        self._warm: dict[bytes, int] = {}  # the previous young dict: older, not frozen yet
        self._frozen: deque[_Generation] = deque()  # oldest first
        self._frozen_count = 0
        self._frozen_newest = b"\x00\x00\x00\x00"  # the newest frozen timestamp, as id bytes
        self.horizon_s = -1  # ids not cached at or below this may have been evicted
        self._evictions: deque[tuple[int, int]] = deque()  # (oldest index, newest seconds)

    def __len__(self) -> int:
        return len(self._young) + len(self._warm) + self._frozen_count

    def get(self, request_id: bytes) -> int | None:
        """The newest index holding ``request_id`` (None if not cached)."""
        index = self._young.get(request_id)
        if index is None:
            index = self._warm.get(request_id)
        if index is not None or not self._frozen or request_id[:4] > self._frozen_newest:
            return index  # a fresh id is newer than every frozen one
        seconds = int.from_bytes(request_id[:4], "big")
        for generation in reversed(self._frozen):
            if generation.upto_s < seconds:
                break  # it and every older one hold only older ids
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
        young, warm = self._young, self._warm
        ttl_ms = self.ttl_ms
        oldest_s = -1 if ttl_ms is None else (wall_ms - ttl_ms) / 1000  # older ids are expired
        rids = list(map(bytes, map(_request_id_of, entries)))  # at C speed: the hot path
        lowest = min(rids, default=ZERO_REQUEST_ID)  # the oldest timestamp; a zero id if any
        if (
            lowest != ZERO_REQUEST_ID
            and int.from_bytes(lowest[:4], "big") >= oldest_s
            and not any(map(young.__contains__, rids))
            and not any(map(warm.__contains__, rids))
        ):
            young.update(zip(rids, range(first_index, first_index + len(rids))))  # all new and fresh
        else:
            for index, rid in enumerate(rids, first_index):
                if rid != ZERO_REQUEST_ID and int.from_bytes(rid[:4], "big") >= oldest_s:
                    if rid in young:
                        del young[rid]  # re-added: it moves to the young end
                    elif rid in warm:
                        del warm[rid]
                    young[rid] = index
        if len(young) >= self.generation or (len(self) > self._cap and self._droppable(wall_ms)):
            self._settle(wall_ms)

    def load(self, pairs: Iterable[tuple[bytes, int]], wall_ms: int = 0) -> None:
        """The start-up rebuild (a ``RequestIdScan``, or plain pairs, oldest first)."""
        for request_id, index in pairs:
            if request_id in self._warm:
                del self._warm[request_id]
            young = self._young
            if request_id in young:
                del young[request_id]
            young[request_id] = index
            if len(young) >= self.generation:
                self._settle(wall_ms)
        newest_s = getattr(pairs, "evicted_newest_s", -1)
        if newest_s >= 0:
            self._evicted(getattr(pairs, "evicted_oldest_index", 1), newest_s)

    def _droppable(self, wall_ms: int) -> bool:
        """Is the oldest generation past the retention (so the cap may drop it)?"""
        frozen = self._frozen
        if not frozen:
            return bool(self._warm)  # freezing the warm ids may make one
        return frozen[0].newest_s < wall_ms / 1000 - self.retain

    def _settle(self, wall_ms: int) -> None:
        """Age a full young dict (warm -> frozen, young -> warm); drop the oldest generations
        while past the cap and older than the retention."""
        if len(self._young) >= self.generation:
            self._freeze_warm()
            self._warm, self._young = self._young, {}
        if len(self) > self._cap:
            if not self._frozen:
                self._freeze_warm()  # the dicts alone passed the cap
            keep_from = wall_ms / 1000 - self.retain
            while len(self) > self._cap and self._frozen and self._frozen[0].newest_s < keep_from:
                oldest = self._frozen.popleft()
                self._frozen_count -= len(oldest)
                self._evicted(oldest.first_index, oldest.newest_s)
        self._reset_newest()

    def _freeze_warm(self) -> None:
        if not self._warm:
            return
        generation = _Generation.freeze(self._warm)
        self._warm = {}
        self._append_generation(generation)
        self._frozen_newest = max(self._frozen_newest, generation.newest_s.to_bytes(4, "big"))

    def _append_generation(self, generation: _Generation) -> None:
        frozen = self._frozen
        generation.upto_s = max(generation.newest_s, frozen[-1].upto_s if frozen else -1)
        frozen.append(generation)
        self._frozen_count += len(generation)

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
        for ids in (self._young, self._warm):
            doomed = [rid for rid, index in ids.items() if index > last_kept]
            for rid in doomed:
                del ids[rid]
        while self._frozen and self._frozen[-1].last_index > last_kept:
            generation = self._frozen.pop()
            self._frozen_count -= len(generation)
            kept = {rid: index for rid, index in generation.items() if index <= last_kept}
            if kept:
                self._append_generation(_Generation.freeze(kept))
                break
        self._reset_newest()
        while self._evictions and self._evictions[-1][0] > last_kept:
            self._evictions.pop()  # the horizon stays: refusing an id is always safe

    def clear(self) -> None:
        """Forget every id (a snapshot replaced the log); the horizon stays."""
        self._young.clear()
        self._warm.clear()
        self._frozen.clear()
        self._frozen_count = 0
        self._evictions.clear()
        self._reset_newest()

    def sweep(self, wall_ms: int) -> None:
        """Drop expired ids: whole generations once their newest id expired, then the warm
        and young ids oldest first (without copying: a dict may be large)."""
        ttl_ms = self.ttl_ms
        if ttl_ms is None:
            return
        oldest_s = (wall_ms - ttl_ms) / 1000
        while self._frozen and self._frozen[0].newest_s < oldest_s:
            self._frozen_count -= len(self._frozen.popleft())
        while self._evictions and self._evictions[0][1] < oldest_s:
            self._evictions.popleft()
        self._reset_newest()
        for ids in (self._warm, self._young):
            while ids:
                rid = next(iter(ids))
                if not self.is_expired(rid, wall_ms):
                    return
                del ids[rid]

    def prune_index(self, last_index: int) -> int:
        """Index below which no unexpired id lives, cached or evicted: compaction up to here
        keeps idempotency, also across a restart (the rebuild must see evicted ids again to
        restore the horizon).  Without a ttl evicted ids are not held back: the horizon then
        lasts while the peer runs."""
        if self._evictions:
            return self._evictions[0][0] - 1
        if self._frozen:
            return self._frozen[0].first_index - 1
        for ids in (self._warm, self._young):
            for index in ids.values():
                return index - 1
        return last_index
