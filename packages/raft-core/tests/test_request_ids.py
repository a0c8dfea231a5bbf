"""The request-id cache: expiry, size cap, truncation, prune index, freshness window."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zmqraft.core import request_ids
from zmqraft.core.request_ids import (
    DEFAULT_CACHE_MAX,
    GENERATION_MAX,
    RequestIdCache,
    is_expired,
    is_fresh,
    scan_request_ids,
)

HOUR_MS = 3_600_000


def rid(seconds: int, n: int = 0) -> bytes:
    return seconds.to_bytes(4, "big") + n.to_bytes(8, "big")


def test_expired_ids_are_not_cached_and_are_swept_oldest_first() -> None:
    now = 10_000 * 1000
    cache = RequestIdCache(ttl_ms=HOUR_MS, max_size=None)
    cache.add(rid(10_000 - 7200), 1, now)  # already expired: ignored
    cache.add(rid(10_000 - 3000), 2, now)
    cache.add(rid(10_000 - 10), 3, now)
    assert len(cache) == 2 and cache.get(rid(10_000 - 7200)) is None
    cache.sweep(now + 700 * 1000)  # the first one is now older than the ttl
    assert cache.get(rid(10_000 - 3000)) is None and cache.get(rid(10_000 - 10)) == 3


def test_size_cap_and_truncation_and_prune_index() -> None:
    cache = RequestIdCache(ttl_ms=None, max_size=2)
    for n in range(1, 5):
        cache.add(rid(5, n), 10 + n, 100_000)  # added 95 s after they were made
    assert len(cache) == 2 and cache.prune_index(99) == 12  # the cap holds at every add
    cache.truncate_after(13)
    assert cache.get(rid(5, 4)) is None and cache.get(rid(5, 3)) == 13
    cache.clear()
    assert cache.prune_index(99) == 99  # nothing cached: everything may be compacted


def test_zero_request_id_is_never_cached() -> None:
    cache = RequestIdCache(ttl_ms=None, max_size=10)
    cache.add(bytes(12), 5, 0)
    assert len(cache) == 0


def test_freshness_window_is_ttl_minus_margin_back_and_margin_ahead() -> None:
    now = 100_000 * 1000
    ttl, margin = 8 * HOUR_MS, 15 * 60 * 1000
    assert is_fresh(rid(100_000 - (8 * 3600 - 900)), now, ttl, margin)
    assert not is_fresh(rid(100_000 - (8 * 3600 - 899) - 2), now, ttl, margin)
    assert is_fresh(rid(100_000 + 900), now, ttl, margin)
    assert not is_fresh(rid(100_000 + 901), now, ttl, margin)
    assert is_fresh(rid(0), now, None, margin)
    assert is_expired(rid(0), now, ttl) and not is_expired(rid(0), now, None)


def test_rebuild_stops_after_a_file_capacity_of_expired_ids() -> None:
    now = 100_000 * 1000
    backwards = [(10, rid(100_000, 1), 4), (9, bytes(12), 4)]
    backwards += [(8 - k, rid(1, k), 4) for k in range(6)]  # expired
    backwards += [(1, rid(100_000, 2), 4)]  # fresh but beyond the stop
    assert scan_request_ids(backwards, now, HOUR_MS, None) == [(rid(100_000, 1), 10)]
    assert scan_request_ids(backwards[:1], now, HOUR_MS, 0) == []


def test_add_entries_keeps_the_cache_rules_in_order() -> None:
    """The batched hot path (``add`` is one entry of it): zero ids skipped, expired ids
    skipped (by the seconds inside the id against the ttl), a re-added id moves to the end."""
    wall_ms = 1_800_000_000_000
    ttl_ms = 3_600_000

    def rid(seconds: int, n: int) -> bytes:
        return seconds.to_bytes(4, "big") + n.to_bytes(8, "big")

    now_s = wall_ms // 1000
    ids = [
        rid(now_s, 1),
        bytes(12),  # zero: no request id
        rid(now_s - 3600, 2),  # exactly at the ttl: kept
        rid(now_s - 3601, 3),  # expired
        rid(now_s, 1),  # again: moves to the end with its new index
        rid(now_s + 5, 4),
    ]
    entries = [i + b"\x00" * 8 + b"data" for i in ids]
    one, batch = RequestIdCache(ttl_ms, None), RequestIdCache(ttl_ms, None)
    for pos, entry in enumerate(entries):
        one.add(entry[:12], 10 + pos, wall_ms)
    batch.add_entries(10, entries, wall_ms)
    assert list(batch._young.items()) == list(one._young.items())
    assert list(batch._young) == [rid(now_s - 3600, 2), rid(now_s, 1), rid(now_s + 5, 4)]
    assert batch.get(rid(now_s, 1)) == 14
    no_ttl = RequestIdCache(None, None)
    no_ttl.add_entries(1, entries, wall_ms)
    assert len(no_ttl) == 4


# ---- the compact generations, the cap and the eviction horizon ------------------------------


def test_a_cached_id_costs_at_most_40_bytes_at_the_default_cap() -> None:
    """The issue's memory bound: fill a default cache to its cap with the ids of a busy peer
    and measure what Python allocated for it."""
    wall_ms = 1_800_000_120_000  # two minutes after the newest id: none is within the retention
    count = DEFAULT_CACHE_MAX + 50_000
    ids = [rid(1_800_000_000 - (count - n) // 20_000, n) for n in range(count)]  # 20,000 a second
    entries = [i + b"payload-" for i in ids]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = RequestIdCache(8 * HOUR_MS, DEFAULT_CACHE_MAX)
        for start in range(0, len(entries), 64):
            cache.add_entries(1 + start, entries[start : start + 64], wall_ms)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert DEFAULT_CACHE_MAX - GENERATION_MAX <= len(cache) <= DEFAULT_CACHE_MAX
    assert used / len(cache) <= 40, f"{used / len(cache):.1f} bytes per cached id"
    back = GENERATION_MAX * 3  # frozen by now
    assert cache.get(ids[-1]) == count and cache.get(ids[-back]) == count - back + 1
    assert cache.get(ids[0]) is None and cache.may_be_evicted(ids[0])


def test_the_cap_drops_the_oldest_generation_and_raises_the_horizon() -> None:
    cache = RequestIdCache(ttl_ms=HOUR_MS, max_size=8)  # generations of 1
    now_s = 10_000
    for n in range(1, 11):
        cache.add(rid(now_s - 100 + n, n), n, now_s * 1000)
    assert len(cache) == 8 and cache.get(rid(now_s - 99, 1)) is None
    assert cache.horizon_s == now_s - 98 and cache.may_be_evicted(rid(now_s - 98, 77))
    assert not cache.may_be_evicted(rid(now_s - 97, 77)) and cache.get(rid(now_s - 97, 3)) == 3
    assert cache.prune_index(99) == 0  # the evicted ids are not expired: compaction waits for them
    cache.sweep((now_s + 3600 - 97) * 1000)  # ids up to now-98 expired, evicted ones included
    assert cache.prune_index(99) == 2 and cache.get(rid(now_s - 97, 3)) == 3


def test_the_cap_keeps_the_last_10_s_so_a_fresh_request_is_never_refused() -> None:
    """At 1,000 writes a second a cap of 100 would put the horizon at the current second and
    refuse every new request made in it; the retention keeps the last 10 s instead."""
    cache = RequestIdCache(ttl_ms=HOUR_MS, max_size=100)
    now_s = 50_000
    for n in range(3000):  # three seconds of writes
        cache.add(rid(now_s + n // 1000, n), n + 1, (now_s + n // 1000) * 1000)
    assert len(cache) == 3000 and cache.horizon_s < now_s
    assert not cache.may_be_evicted(rid(now_s + 2, 99_999)) and cache.get(rid(now_s, 0)) == 1
    cache.add(rid(now_s + 70, 5), 3001, (now_s + 70) * 1000)  # later: the old ones go
    assert len(cache) <= 100 and cache.horizon_s >= now_s and cache.may_be_evicted(rid(now_s, 0))


def test_frozen_ids_are_found_re_added_ids_win_and_truncation_reaches_generations() -> None:
    cache = RequestIdCache(ttl_ms=None, max_size=40)  # generations of 5
    for n in range(1, 31):
        cache.add(rid(5, n), n, 0)
    cache.add(rid(5, 3), 31, 0)  # a later entry with the same id
    assert cache.get(rid(5, 3)) == 31 and cache.get(rid(5, 4)) == 4
    assert cache.get(rid(6, 4)) is None and cache.get(rid(4, 4)) is None
    cache.truncate_after(15)  # cuts into the second generation
    assert cache.get(rid(5, 15)) == 15 and cache.get(rid(5, 16)) is None and cache.get(rid(5, 3)) == 3
    assert len(cache) == 15


def test_a_hash_collision_is_told_apart_by_the_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generations are searched by a hash of the id; equal hashes must not answer for
    another id (every hash made equal here)."""
    monkeypatch.setattr(request_ids, "_hash", lambda _: 7)
    cache = RequestIdCache(ttl_ms=None, max_size=None)
    ids = [rid(7, n) for n in range(5)]
    cache.load([(r, n + 1) for n, r in enumerate(ids)])
    cache._freeze_warm()
    cache._warm, cache._young = cache._young, {}
    cache._freeze_warm()
    assert cache._frozen and [cache.get(r) for r in ids] == [1, 2, 3, 4, 5] and cache.get(rid(7, 9)) is None


def test_an_id_straddling_two_packed_ids_is_not_a_match() -> None:
    """``bytes.find`` over packed ids may match across a boundary; only aligned hits count."""
    cache = RequestIdCache(ttl_ms=None, max_size=None)
    a, b = rid(7, 0x0102030405060708), rid(7, 0x1112131415161718)
    cache.load([(a, 1), (b, 2)])
    cache._freeze_warm()
    cache._warm, cache._young = cache._young, {}
    cache._freeze_warm()
    straddling = (a + b)[6:18]
    assert cache._frozen and cache.get(straddling) is None and cache.get(b) == 2


def test_rebuild_past_the_cap_learns_the_horizon_and_a_restarted_cache_keeps_it() -> None:
    now = 100_100 * 1000  # the ids are 100-109 s old: past the retention
    backwards = [(10 - k, rid(100_000 - k, k), 100) for k in range(10)]  # indexes 10..1
    scan = scan_request_ids(backwards, now, HOUR_MS, 4)
    assert [i for _, i in scan] == [7, 8, 9, 10]
    assert scan.evicted_newest_s == 100_000 - 4 and scan.evicted_oldest_index == 1
    cache = RequestIdCache(HOUR_MS, 4)
    cache.load(scan)
    assert cache.may_be_evicted(rid(100_000 - 4, 99)) and not cache.may_be_evicted(rid(100_000 - 3, 99))
    assert cache.prune_index(10) == 0
    assert scan_request_ids(backwards, now, None, 4).evicted_newest_s == -1  # no ttl: no horizon


@settings(max_examples=150, deadline=None)
@given(
    cap=st.integers(1, 30),
    ops=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), min_size=1, max_size=120),
)
def test_an_added_id_is_found_or_refusable_never_forgotten(cap: int, ops: list[tuple[int, int]]) -> None:
    """At-most-once: every id ever added is either found at its newest index or at or below
    the horizon (so a retry is refused as expired), whatever the cap and truncations."""
    cache = RequestIdCache(ttl_ms=None, max_size=cap)
    model: dict[bytes, int] = {}
    last = 0
    for kind, n in ops:
        if kind == 0 and last:  # a follower's log is cut
            last = max(0, last - n % 5)
            cache.truncate_after(last)
            model = {r: i for r, i in model.items() if i <= last}
        else:
            last += 1
            r = rid(1000 + last // 3, n)
            cache.add(r, last, 10_000_000)  # well past the retention: the cap drops freely
            model[r] = last
        assert len(cache) <= cap
    for r, index in model.items():
        found = cache.get(r)
        assert found == index or (found is None and cache.may_be_evicted(r)), (r, index, found)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=400), st.integers(2, 16))
def test_a_lookup_finds_every_id_whatever_the_order_of_their_timestamps(
    offsets: list[int], generation: int
) -> None:
    """A lookup walks the frozen generations from the newest and stops at the first whose
    ids (and every older one's) are all older than the id sought: clients' clocks differ, so
    a newer generation may hold older timestamps and an older one newer ones."""
    cache = RequestIdCache(None, None)
    cache.generation = generation
    base = 1_800_000_000
    added = [rid(base + offset, n) for n, offset in enumerate(offsets)]
    for index, request_id in enumerate(added, 1):
        cache.add_entries(index, [request_id], base * 1000)
    assert len(cache._frozen) > 0 or len(added) < 2 * generation
    for index, request_id in enumerate(added, 1):
        assert cache.get(request_id) == index
    for offset in range(0, 42, 3):
        assert cache.get(rid(base + offset, 10_000)) is None


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), min_size=0, max_size=12),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_appended_batches_keep_the_newest_index_of_each_fresh_id(
    batches: list[list[tuple[int, int]]], expiring: bool
) -> None:
    """Batches of all-new fresh ids take a fast path; any zero, expired or repeated id the
    entry-by-entry one: either way each fresh, non-zero id maps to its newest index."""
    base = 1_800_000_000
    cache = RequestIdCache(10_000 if expiring else None, None)  # 10 s: offsets < 2 expired
    wall_ms = (base + 12) * 1000
    newest: dict[bytes, int] = {}
    index = 1
    for batch in batches:
        ids = [bytes(12) if n == 0 else rid(base + offset, n) for offset, n in batch]
        cache.add_entries(index, [request_id + b"entry" for request_id in ids], wall_ms)
        for request_id in ids:
            fresh = not expiring or int.from_bytes(request_id[:4], "big") >= base + 2
            if request_id != bytes(12) and fresh:
                newest[request_id] = index
            index += 1
    for offset in range(13):
        for n in range(6):
            request_id = bytes(12) if n == 0 else rid(base + offset, n)
            assert cache.get(request_id) == newest.get(request_id)
