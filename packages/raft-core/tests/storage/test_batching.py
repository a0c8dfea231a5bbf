"""The original's grouping of log entries into arrays (spec/storage.md §6.7), against the
rule read entry by entry."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st
from zmqraft.core.storage.batching import MIN_PIECE, group_counts, group_sizes


def grouped_one_by_one(sizes: Sequence[int], max_count: int, max_bytes: int) -> list[int]:
    """The rule as the spec words it: read pieces of max(8 KiB, max_bytes); group the
    entries each piece completes, closing a group at max_count entries, at >= max_bytes
    bytes, and where the piece ends."""
    piece = max(MIN_PIECE, max_bytes)
    counts: list[int] = []
    i = done = read_to = count = size = 0
    while i < len(sizes):
        read_to += piece
        while i < len(sizes) and done + sizes[i] <= read_to:
            done += sizes[i]
            size += sizes[i]
            count += 1
            i += 1
            if count >= max_count or size >= max_bytes:
                counts.append(count)
                count = size = 0
        if count:
            counts.append(count)
            count = size = 0
    return counts


@settings(max_examples=400, deadline=None)
@given(
    sizes=st.lists(st.one_of(st.integers(1, 3000), st.integers(1, 70_000)), max_size=300),
    max_count=st.sampled_from([1, 2, 7, 100, 4096]),
    max_bytes=st.sampled_from([1, 100, 8192, 65536, 100_000]),
)
def test_groups_match_the_rule_read_entry_by_entry(sizes: list[int], max_count: int, max_bytes: int) -> None:
    assert group_sizes(sizes, max_count, max_bytes) == grouped_one_by_one(sizes, max_count, max_bytes)


def test_small_entries_close_groups_at_piece_ends_and_counts() -> None:
    assert group_sizes([100] * 200, max_count=4096, max_bytes=65536) == [200]
    # a piece ends after 65 entries; the next group reaches 65536 bytes at its 66th
    assert group_sizes([1000] * 200, max_count=4096, max_bytes=65536) == [65, 66, 65, 4]
    assert group_sizes([10] * 10, max_count=4, max_bytes=65536) == [4, 4, 2]


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.one_of(st.integers(1, 3000), st.integers(1, 70_000)), min_size=1, max_size=200),
    cut=st.data(),
    max_count=st.sampled_from([1, 7, 4096]),
    max_bytes=st.sampled_from([100, 8192, 65536]),
)
def test_groups_read_off_an_offset_table_match_those_of_the_sizes(
    sizes: list[int], cut: st.DataObject, max_count: int, max_bytes: int
) -> None:
    """A log file groups a range of its slots straight from its table of entry ends."""
    ends = list(accumulate(sizes))
    lo = cut.draw(st.integers(0, len(sizes) - 1))
    hi = cut.draw(st.integers(lo, len(sizes)))
    base = ends[lo - 1] if lo else 0
    expected = group_sizes(sizes[lo:hi], max_count, max_bytes)
    assert group_counts(ends, lo, hi, base, max_count, max_bytes) == expected
