"""How the original's log stream groups entries into arrays (spec/storage.md §6.7).

Each index file is read separately in raw pieces of ``max(8 KiB, max_bytes)`` bytes from the
first wanted entry; after each piece the entries now complete are grouped, a group closing
at ``max_count`` entries, at ``>= max_bytes`` bytes, when the next entry is not complete yet,
and at the end of the file.  These groups are RequestEntries messages and state-machine
batches, so reproducing them keeps a Python leader's messages identical to the original's.
Pure logic shared by ``FileLog`` and ``MemoryLog``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

MIN_PIECE = 8192


def group_sizes(sizes: Sequence[int], max_count: int = 4096, max_bytes: int = 65536) -> list[int]:
    """Group lengths (entry counts) for consecutive entries of one index file, from their
    sizes."""
    ends = list(accumulate(sizes))  # ends[k]: bytes through entry k
    return group_counts(ends, 0, len(ends), 0, max_count, max_bytes)


def group_counts(
    ends: Sequence[int], lo: int, hi: int, base: int, max_count: int = 4096, max_bytes: int = 65536
) -> list[int]:
    """``group_sizes`` of the entries that end at ``ends[lo:hi]``, the first starting at
    ``base`` (an index file's offset table as it is, with no list made of it).  Work per
    group and per piece (bisections over the running byte count), not per entry: a
    RequestEntries stream of small entries spent an eighth of its time here."""
    piece = max(MIN_PIECE, max_bytes)
    counts: list[int] = []
    i = lo
    read_to = base
    while i < hi:
        read_to += piece
        stop = bisect_right(ends, read_to, i, hi)  # entries i..stop-1 are complete in what was read
        while i < stop:
            before = ends[i - 1] if i > lo else base
            full = bisect_left(ends, before + max_bytes, i, stop)  # the entry reaching max_bytes
            last = min(full, i + max_count - 1, stop - 1)
            counts.append(last - i + 1)
            i = last + 1
    return counts
