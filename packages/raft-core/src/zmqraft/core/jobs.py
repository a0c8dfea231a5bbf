"""The work a peer hands out: storage jobs (``Job``) and state-machine work (``ApplyJob``).

These are plain data, shared by the Raft node that forms them, the storage executor that
carries a ``Job`` out, and the driver that routes both; they live below all three so that no
arrow points up (storage never imports the Raft node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .storage.base import SnapshotMeta


@dataclass(slots=True)
class LogWrite:
    """What one storage job does to the log: drop everything after ``truncate_to`` (if set),
    then append ``entries`` at ``first_index``."""

    truncate_to: int | None
    first_index: int
    entries: list[bytes]

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.entries) - 1


@dataclass(slots=True)
class SnapshotChunk:
    meta: SnapshotMeta
    offset: int
    data: bytes
    install: bool  # the last chunk: install the snapshot after writing it


@dataclass(slots=True)
class Job:
    """One storage job; the runtime performs the parts in this order, fsyncs, then calls
    ``storage_done(job, now)``."""

    number: int
    state: dict[str, Any] | None = None  # raft.pers update (original key names)
    log: LogWrite | None = None
    snapshot: SnapshotChunk | None = None

    def __str__(self) -> str:
        """A stable one-line rendering, shared by logs and the scenario tests."""
        parts = []
        if self.state:
            parts.append("state " + " ".join(f"{k}={v}" for k, v in sorted(self.state.items())))
        if self.log is not None:
            write = self.log
            cut = "" if write.truncate_to is None else f"after truncating to {write.truncate_to}"
            if write.entries:
                parts.append(f"entries {write.first_index}..{write.last_index}" + (f" {cut}" if cut else ""))
            elif cut:
                parts.append(cut)
        if self.snapshot is not None:
            chunk = self.snapshot
            what = "install" if chunk.install else "chunk"
            meta = chunk.meta
            parts.append(f"snapshot {what} {meta.index}/{meta.term} @{chunk.offset}+{len(chunk.data)}")
        return f"job {self.number}: " + "; ".join(parts)


@dataclass(slots=True)
class ApplyJob:
    """Committed entries ``first_index..`` (and first the snapshot, if given) for the state
    machine; acknowledged with ``apply_done(job, last_applied, now)``."""

    first_index: int
    entries: list[bytes]
    snapshot: SnapshotMeta | None = None
    term: int = 0

    @property
    def last_index(self) -> int:
        if self.entries:
            return self.first_index + len(self.entries) - 1
        return self.snapshot.index if self.snapshot else self.first_index - 1


__all__ = ["ApplyJob", "Job", "LogWrite", "SnapshotChunk"]
