"""A peer's data directory with the builder's default names (spec/storage.md §1,
server-and-tools.md b.2)::

    <path>/raft.pers  state.pers  snap  log/  compact/snap.new
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..base import LogStorage, SnapshotWriter, StateStorage
from .filelog import FileLog, FileSnapshotWriter
from .fsutil import mkdir_p
from .indexfile import DEFAULT_CAPACITY
from .persistence import RaftPersistence, StateMachinePersistence


@dataclass(frozen=True, slots=True)
class DataPaths:
    root: str
    raft: str
    log: str
    snapshot: str
    state: str
    install: str

    @classmethod
    def of(
        cls,
        root: str,
        *,
        raft: str = "raft.pers",
        log: str = "log",
        snapshot: str = "snap",
        state: str = "state.pers",
        install: str = "compact/snap.new",
    ) -> DataPaths:
        root = os.path.abspath(root)

        def at(name: str) -> str:
            return os.path.join(root, name)

        return cls(root, at(raft), at(log), at(snapshot), at(state), at(install))


@dataclass(slots=True)
class DataDir:
    paths: DataPaths
    log: FileLog
    raft: RaftPersistence
    state: StateMachinePersistence | None

    def close(self) -> None:
        self.log.close()
        self.raft.close()
        if self.state is not None:
            self.state.close()


def open_data_dir(
    root: str,
    *,
    peers: Any = None,
    read_only: bool = False,
    index_file_capacity: int = DEFAULT_CAPACITY,
    with_state: bool = True,
    paths: DataPaths | None = None,
) -> DataDir:
    """Open (creating what is missing unless ``read_only``) raft.pers, the log with its
    snapshot and state.pers, in the builder's order (persistence, log, state)."""
    p = paths or DataPaths.of(root)
    if not read_only:
        mkdir_p(p.root)
    raft = RaftPersistence(p.raft, peers, read_only=read_only)
    try:
        log = FileLog(
            p.log,
            p.snapshot,
            read_only=read_only,
            index_file_capacity=index_file_capacity,
            install_path=p.install,
        )
    except BaseException:
        raft.close()
        raise
    state = None
    if with_state and (not read_only or os.path.exists(p.state)):
        state = StateMachinePersistence(p.state, read_only=read_only)
    return DataDir(p, log, raft, state)


def _conforms(d: DataDir, writer: FileSnapshotWriter) -> tuple[object, ...]:
    """Static proof (mypy) that the file classes implement the protocols of ``base``."""
    assert d.state is not None
    checked: tuple[LogStorage, StateStorage, StateStorage, SnapshotWriter] = (d.log, d.raft, d.state, writer)
    return checked
