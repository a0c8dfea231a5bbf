"""The request-id cache: expiry, size cap, truncation, prune index, freshness window."""

from __future__ import annotations

from zmqraft.core.request_ids import RequestIdCache, is_expired, is_fresh, scan_request_ids

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
        cache.add(rid(5, n), 10 + n, 0)
    assert cache.prune_index(99) == 10
    cache.sweep(0)
    assert len(cache) == 2 and cache.prune_index(99) == 12
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
    assert list(batch._index.items()) == list(one._index.items())
    assert list(batch._index) == [rid(now_s - 3600, 2), rid(now_s, 1), rid(now_s + 5, 4)]
    assert batch.get(rid(now_s, 1)) == 14
    no_ttl = RequestIdCache(None, None)
    no_ttl.add_entries(1, entries, wall_ms)
    assert len(no_ttl) == 4
