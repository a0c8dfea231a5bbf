"""The node's view of its log: durable entries in storage plus an unstable in-memory tail.

After etcd-io/raft's ``unstable``: entries at ``offset`` and above live in memory until a
storage job has made them durable; entries below ``offset`` are read from storage.  A
truncation only moves ``offset`` down and replaces the tail; storage still holds the stale
entries until the next job truncates them, which is why the core never reads storage at or
above ``offset``.  The worker thread only ever writes at or above the offset the job was
formed with, so reads below it are safe while a job runs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ..jobs import LogWrite
from ..protocol.entry import entry_term
from ..storage.base import LogStorage, SnapshotMeta


class RaftLog:
    def __init__(self, storage: LogStorage) -> None:
        self.storage = storage
        self.offset = storage.last_index + 1
        self.unstable: list[bytes] = []
        self._stale_from: int | None = None  # storage holds entries >= this that are void
        self._taken = 0  # unstable entries (from offset) handed to the write in flight
        # the entries the last two writes made durable, from this index: the next apply
        # reads them here instead of back from storage (a follower learns that a write is
        # committed with the AppendEntries that brings the next one)
        self._recent: list[bytes] = []
        self._recent_first = 0
        self._last_written = 0  # how many of them the last write made durable

    # ---- reading ----------------------------------------------------------------------------

    @property
    def snapshot(self) -> SnapshotMeta:
        return self.storage.snapshot

    @property
    def first_index(self) -> int:
        return self.storage.first_index

    @property
    def last_index(self) -> int:
        return self.offset + len(self.unstable) - 1

    @property
    def last_term(self) -> int:
        term = self.term_at(self.last_index)
        return term if term is not None else 0

    def term_at(self, index: int) -> int | None:
        if index >= self.offset:
            pos = index - self.offset
            return entry_term(self.unstable[pos]) if pos < len(self.unstable) else None
        return self.storage.term_at(index)

    def entry(self, index: int) -> bytes:
        if index >= self.offset:
            return self.unstable[index - self.offset]
        return self.storage.entries(index, index)[0]

    def recent(self, first: int, last: int) -> list[bytes] | None:
        """Durable entries from ``first`` (up to ``last``) if the last two writes still
        hold them in memory, else None (read them from storage)."""
        at = first - self._recent_first
        if not 0 <= at < len(self._recent) or last < first:
            return None
        return self._recent[at : last - self._recent_first + 1]

    def entries(
        self, first: int, last: int, max_bytes: int = 1 << 62, max_count: int = 1 << 62
    ) -> list[bytes]:
        """Entries ``first..last`` within the limits; at least one if ``first <= last``."""
        last = min(last, self.last_index, first + max_count - 1)
        if first > last:
            return []
        out: list[bytes] = []
        recent, held_from = self._recent, self._recent_first
        if held_from <= first < self.offset and held_from + len(recent) == self.offset:
            # durable, and still held by the last writes: an AppendEntries that waited for an
            # acknowledgement (coalescing) would otherwise read back what the leader just wrote
            window = recent[first - held_from : last - held_from + 1]
            if last >= self.offset:
                window += self.unstable[: last - self.offset + 1]
        else:
            if first < self.offset:
                out = self.storage.entries(first, min(last, self.offset - 1), max_bytes, max_count)
                got = first + len(out)
                if got < self.offset or got > last:
                    return out
                first = got
                max_bytes -= sum(len(e) for e in out)
                if max_bytes <= 0:
                    return out
            window = self.unstable[first - self.offset : last - self.offset + 1]
        ends = list(accumulate(map(len, window)))  # per-entry work at C speed: every AppendEntries
        fit = max(bisect_right(ends, max_bytes), 0 if out else 1)
        out.extend(window[:fit])
        return out

    # ---- changing (in memory; made durable by storage jobs) -------------------------------

    def append(self, entries: Sequence[bytes]) -> int:
        self.unstable.extend(entries)
        return self.last_index

    def truncate_after(self, last_kept: int) -> None:
        """Forget entries after ``last_kept`` (the next storage job truncates them on disk)."""
        if last_kept >= self.last_index:
            return
        del self._recent[max(last_kept + 1 - self._recent_first, 0) :]
        self._last_written = min(self._last_written, len(self._recent))
        if last_kept + 1 >= self.offset:
            del self.unstable[last_kept + 1 - self.offset :]
            self._taken = min(self._taken, len(self.unstable))
        else:
            self.unstable = []
            self._taken = 0
            self.offset = last_kept + 1
            self._stale_from = (
                last_kept + 1 if self._stale_from is None else min(self._stale_from, last_kept + 1)
            )

    def reset_to_snapshot(self, meta: SnapshotMeta) -> None:
        """After a snapshot replaced the whole log in storage."""
        self._recent = []
        self._last_written = 0
        self.unstable = []
        self._taken = 0
        self.offset = meta.index + 1
        self._stale_from = None

    # ---- storage jobs -------------------------------------------------------------------------

    def has_unstable_work(self) -> bool:
        """Is there anything that the write in flight (if any) does not cover?"""
        return len(self.unstable) > self._taken or self._stale_from is not None

    def take_write(self) -> LogWrite | None:
        """The write that makes the current view durable; ``None`` if nothing to do."""
        if not self.has_unstable_work():
            return None
        truncate_to = None
        if self._stale_from is not None or self.storage.last_index >= self.offset:
            truncate_to = self.offset - 1
        self._stale_from = None
        self._taken = len(self.unstable)
        return LogWrite(truncate_to, self.offset, list(self.unstable))

    def write_done(self, write: LogWrite) -> int:
        """Storage now holds ``write``; move the entries still in the view out of memory.

        Returns the highest index that is both durable and still part of the view."""
        self._taken = 0
        if self.offset != write.first_index:
            # truncated below the write meanwhile: storage's tail beyond offset is stale
            if self.offset < write.first_index:
                self._stale_from = (
                    self.offset if self._stale_from is None else min(self._stale_from, self.offset)
                )
            return self.offset - 1
        same = 0
        for ours, theirs in zip(self.unstable, write.entries):
            if ours is not theirs:
                break
            same += 1
        written = self.unstable[:same]
        recent = self._recent
        if recent and self._recent_first + len(recent) == self.offset:  # the write before: kept
            kept = recent[len(recent) - self._last_written :] if self._last_written else []
            self._recent, self._recent_first = kept + written, self.offset - len(kept)
        else:
            self._recent, self._recent_first = written, self.offset
        self._last_written = same
        del self.unstable[:same]
        self.offset += same
        if same < len(write.entries):
            self._stale_from = self.offset if self._stale_from is None else min(self._stale_from, self.offset)
        return self.offset - 1
