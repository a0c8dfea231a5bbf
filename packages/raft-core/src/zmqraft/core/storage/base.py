"""What the core needs from durable storage (read side) and hands to it (write side).

The Raft core reads the log synchronously (reads of entries already written are cheap and
never block on an fsync), but it never writes: every write is a job the runtime performs,
usually in a worker thread, and acknowledges back.  An implementation must therefore allow
reads of entries ``<= last_index`` while a worker appends entries beyond it.

Indexes are 1-based.  ``first_index == snapshot.index + 1``.  Entries are the raw wire form
(see ``zmqraft.core.protocol.entry``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class StorageError(Exception):
    """Corrupt or unusable durable state; names the file and the byte offset."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}" + (f" at offset {offset}" if offset is not None else "") + ": "
        super().__init__(where + message)
        self.path = path
        self.offset = offset


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int
    term: int
    size: int


class SnapshotWriter(Protocol):
    """A snapshot arriving in chunks (InstallSnapshot, RequestEntries catch-up).

    Obtained from ``LogStorage.snapshot_writer(meta)`` and used by the storage worker only.
    Chunks must arrive in order: ``write(offset, chunk)`` requires ``offset == written``.
    When ``written == meta.size`` call ``install()`` (a compaction if the log holds
    ``meta.index`` with ``meta.term``, otherwise the whole log is replaced); ``discard()``
    drops an unfinished transfer."""

    @property
    def meta(self) -> SnapshotMeta: ...

    @property
    def written(self) -> int: ...

    def write(self, offset: int, chunk: bytes | memoryview) -> int:
        """Write ``chunk`` at ``offset`` (must equal ``written``); returns the new ``written``."""
        ...

    def install(self) -> None: ...

    def discard(self) -> None: ...


class LogStorage(Protocol):
    """The log plus its snapshot, as the core sees them."""

    @property
    def first_index(self) -> int: ...

    @property
    def last_index(self) -> int: ...

    @property
    def last_term(self) -> int:
        """Term of ``last_index`` (the snapshot's term when the log is empty)."""
        ...

    @property
    def snapshot(self) -> SnapshotMeta: ...

    def term_at(self, index: int) -> int | None:
        """Term of entry ``index``; the snapshot term at ``snapshot.index`` (0 at 0); None
        outside ``[snapshot.index, last_index]``."""
        ...

    def entries(
        self, first: int, last: int, max_bytes: int = 1 << 62, max_count: int = 1 << 62
    ) -> list[bytes]:
        """Entries ``first..last`` inclusive, stopping before the total size would exceed
        ``max_bytes`` (always at least one entry) or after ``max_count`` entries."""
        ...

    def entry_batches(
        self, first: int, last: int, max_count: int = 4096, max_bytes: int = 65536
    ) -> Iterator[list[bytes]]:
        """Entries ``first..last`` grouped as the original's log stream groups them
        (spec/storage.md §6.7): never spanning index files, closed at ``max_count`` entries,
        at ``>= max_bytes`` bytes or at a read-piece boundary.  For RequestEntries messages
        and state-machine feeding."""
        ...

    def read_snapshot(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of the current snapshot's data from ``offset``."""
        ...

    def request_ids(self, wall_ms: int, ttl_ms: int | None, cache_max: int | None) -> list[tuple[bytes, int]]:
        """Rebuild of the request-id cache at start-up (spec/raft.md §11): fresh
        ``(reqid, index)`` pairs, oldest first."""
        ...

    # ---- write side: called by the runtime's storage worker only ----------------------------

    def append(self, first_index: int, entries: Sequence[bytes]) -> None:
        """Write entries at ``first_index`` (== last_index + 1 after any truncation) and make
        them durable before returning: one data write and one fsync for the batch."""
        ...

    def truncate(self, last_kept: int) -> None:
        """Drop every entry after ``last_kept`` (durably)."""
        ...

    def install_snapshot(
        self,
        meta: SnapshotMeta,
        data: bytes | None = None,
        path: str | None = None,
        compact_only: bool = False,
    ) -> None:
        """Install a snapshot (from bytes or a finished temporary file).  If the log holds an
        entry at ``meta.index`` with ``meta.term`` it is a compaction: later entries are kept;
        otherwise the whole log is replaced and ``last_index == meta.index`` (with
        ``compact_only`` a non-compaction raises ``StorageError`` instead)."""
        ...

    def snapshot_writer(self, meta: SnapshotMeta) -> SnapshotWriter:
        """Start receiving a snapshot in chunks (see ``SnapshotWriter``)."""
        ...

    def close(self) -> None: ...


class StateStorage(Protocol):
    """An append-only map of updates (raft.pers, state.pers): FIFO, atomic, durable."""

    def load(self) -> Mapping[str, Any]: ...

    def update(self, changes: Mapping[str, Any]) -> None: ...
