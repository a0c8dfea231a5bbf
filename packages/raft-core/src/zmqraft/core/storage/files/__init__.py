"""The original's on-disk formats, byte for byte (spec/storage.md); the only part of
``zmqraft.core`` that does file I/O.

* ``tokenfile``  chunk container shared by index and snapshot files
* ``indexfile``  ``*.rlog`` index files: offset table, append/commit/rollback
* ``logdir``     where the index file of an index lives, directory scans
* ``filelog``    ``FileLog``: the log + snapshot as a ``LogStorage``
* ``snapshotfile`` snapshot files, temporary snapshots, atomic install
* ``persistence``  ``raft.pers`` / ``state.pers`` state files
* ``datadir``    a peer's data directory (paths and opening everything)
* ``damage``     read-only checks of every file, each problem with file and offset
* ``repair``     the explicit repair of a torn log tail (``zr-tool repair``)
"""

from __future__ import annotations

from .datadir import DataDir, open_data_dir
from .filelog import FileLog, FileSnapshotWriter
from .indexfile import IndexFile
from .persistence import FilePersistence, RaftPersistence, StateMachinePersistence
from .snapshotfile import SnapshotFile, SnapshotStreamWriter

__all__ = [
    "DataDir",
    "FileLog",
    "FilePersistence",
    "FileSnapshotWriter",
    "IndexFile",
    "RaftPersistence",
    "SnapshotFile",
    "SnapshotStreamWriter",
    "StateMachinePersistence",
    "open_data_dir",
]
