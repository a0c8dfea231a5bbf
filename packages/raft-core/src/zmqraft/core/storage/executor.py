"""Carry out the Raft node's storage jobs against a log and a state store.

Shared by both runtimes (which call ``run`` from a worker thread or greenlet) and the
simulator, so the order of the parts of a job is decided once: the hard state first, then the
log truncation and append, then snapshot chunks; all durable when ``run`` returns.
"""

from __future__ import annotations

from ..jobs import Job
from .base import LogStorage, SnapshotMeta, SnapshotWriter, StateStorage


class StorageExecutor:
    def __init__(self, log: LogStorage, state: StateStorage) -> None:
        self.log = log
        self.state = state
        self._writer: SnapshotWriter | None = None
        self._writer_meta: SnapshotMeta | None = None

    def run(self, job: Job) -> None:
        if job.state:
            self.state.update(job.state)
        if job.log is not None:
            write = job.log
            if write.truncate_to is not None and write.truncate_to < self.log.last_index:
                self.log.truncate(write.truncate_to)
            if write.entries:
                self.log.append(write.first_index, write.entries)
        chunk = job.snapshot
        if chunk is not None:
            if self._writer is None or self._writer_meta != chunk.meta or chunk.offset == 0:
                if self._writer is not None:
                    self._writer.discard()  # an unfinished transfer of another snapshot
                self._writer = self.log.snapshot_writer(chunk.meta)
                self._writer_meta = chunk.meta
            self._writer.write(chunk.offset, chunk.data)
            if chunk.install:
                self._writer.install()
                self._writer = None
                self._writer_meta = None
