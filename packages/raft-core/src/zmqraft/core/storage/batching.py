"""How the original's log stream groups entries into arrays (spec/storage.md §6.7).

Each index file is read separately in raw pieces of ``max(8 KiB, max_bytes)`` bytes from the
first wanted entry; after each piece the entries now complete are grouped, a group closing
at ``max_count`` entries, at ``>= max_bytes`` bytes, when the next entry is not complete yet,
and at the end of the file.  These groups are RequestEntries messages and state-machine
batches, so reproducing them keeps a Python leader's messages identical to the original's.
Pure logic shared by ``FileLog`` and ``MemoryLog``.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_PIECE = 8192


def group_sizes(sizes: Sequence[int], max_count: int = 4096, max_bytes: int = 65536) -> list[int]:
    """Group lengths (entry counts) for consecutive entries of one index file."""
    piece = max(MIN_PIECE, max_bytes)
    counts: list[int] = []
    n = len(sizes)
    i = 0
    done = 0  # bytes of the entries consumed so far
    read_to = 0
    count = size = 0
    while i < n:
        read_to += piece
        while i < n and done + sizes[i] <= read_to:
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
