"""Finding damage in a peer's data directory, read-only, every problem with file and offset.

Opening a log leaves a torn tail (offsets that point past the end of the file) out of the
committed run, so a damaged log looks shorter, not broken.  That is right for a crash, but a
tool must not report it as health: ``check_data_dir`` walks every file (not only the first and
the last the peer opens) and says what is wrong; ``repair`` acts on what it finds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ...protocol import mpack
from ..base import StorageError
from .datadir import DataPaths
from .indexfile import IndexFile
from .logdir import iter_index_files
from .persistence import read_records
from .snapshotfile import SnapshotFile


@dataclass(frozen=True, slots=True)
class Damage:
    """One problem: where it is and what it is; ``repairable`` by ``apply_repair``."""

    path: str
    offset: int | None
    message: str
    repairable: bool = False

    def __str__(self) -> str:
        where = self.path + (f" at offset {self.offset}" if self.offset is not None else "")
        return f"{where}: {self.message}"


@dataclass(slots=True)
class IndexFileCheck:
    """What one index file holds: whole entries ``first_index..next_index-1``; the table
    claims up to ``claimed_next - 1``."""

    path: str
    first_index: int
    next_index: int
    claimed_next: int
    damage: list[Damage] = field(default_factory=list)


def check_index_file(path: str) -> IndexFileCheck:
    """Open one index file read-only and report cut entries (torn tail) or corruption."""
    try:
        f = IndexFile.open(path)
    except StorageError as err:
        return IndexFileCheck(path, -1, -1, -1, [Damage(err.path or path, err.offset, _reason(err))])
    try:
        check = IndexFileCheck(path, f.first_index, f.next_index, f.first_index + f.claimed)
        if f.torn:
            first_cut = f.next_index
            last_cut = f.first_index + f.claimed - 1
            start = f.byte_offset(f.next_at)
            end = f.data_pos + f.offsets[f.next_at]
            check.damage.append(
                Damage(
                    path,
                    start,
                    f"torn tail: {entries_text(first_cut, last_cut)} cut: the offset table claims "
                    f"{'it' if first_cut == last_cut else 'them'} but "
                    f"the file ends at byte {f.size} (entry {first_cut} needs bytes {start}..{end}); "
                    f"the log ends at {first_cut - 1}",
                    repairable=True,
                )
            )
        return check
    finally:
        f.close()


def entries_text(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}..{last} are"


def _reason(err: StorageError) -> str:
    text = str(err)
    prefix = ""
    if err.path is not None:
        prefix = err.path + (f" at offset {err.offset}" if err.offset is not None else "") + ": "
    return text[len(prefix) :] if text.startswith(prefix) else text


@dataclass(slots=True)
class LogCheck:
    """All index files of a log directory, in order."""

    files: list[IndexFileCheck]
    damage: list[Damage]

    @property
    def tail(self) -> IndexFileCheck | None:
        """The last file whose table claims entries (later files are empty leftovers)."""
        for f in reversed(self.files):
            if f.claimed_next > f.first_index:
                return f
        return None

    @property
    def last_whole_index(self) -> int | None:
        tail = self.tail
        return None if tail is None else tail.next_index - 1


def check_log(log_dir: str) -> LogCheck:
    """Every index file; a torn file before the tail or a gap between files is a hole in the
    log (not repairable by truncation: entries after it would be lost)."""
    files = [check_index_file(p) for p in iter_index_files(log_dir)]
    damage = [d for f in files for d in f.damage]
    usable = [f for f in files if f.first_index >= 0]
    holding = [f for f in usable if f.claimed_next > f.first_index]
    for a, b in pairwise(holding):
        if a.next_index < b.first_index:
            if a.claimed_next == a.next_index:  # not torn: a real gap between files
                damage.append(
                    Damage(
                        b.path,
                        16,
                        f"hole in the log: {entries_text(a.next_index, b.first_index - 1)} missing "
                        f"between {os.path.basename(a.path)} and this file",
                    )
                )
        elif a.next_index > b.first_index:
            damage.append(
                Damage(
                    b.path,
                    16,
                    f"overlapping index files: this file starts at {b.first_index}, "
                    f"{os.path.basename(a.path)} holds entries up to {a.next_index - 1}",
                )
            )
    tail = holding[-1].path if holding else None
    # a torn file with entries after it is a hole: truncating would drop them
    damage = [
        d
        if not d.repairable or d.path == tail
        else Damage(d.path, d.offset, d.message + " (later index files hold entries: a hole in the log)")
        for d in damage
    ]
    return LogCheck(files, damage)


@dataclass(slots=True)
class DirCheck:
    """The whole data directory: every problem found, plus what repair needs to know."""

    paths: DataPaths
    log: LogCheck | None
    damage: list[Damage]
    last_applied: int | None = None
    peers_index: int | None = None
    snapshot_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def repairable(self) -> bool:
        return bool(self.damage) and all(d.repairable for d in self.damage)


def _state_file(path: str) -> tuple[dict[str, Any], list[Damage]]:
    """Merged maps of a state file and its torn tail (ignored by the peer, but damage)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}, []
    try:
        records, torn_at = read_records(data, path)
    except StorageError as err:
        return {}, [Damage(path, err.offset, _reason(err))]
    merged: dict[str, Any] = {}
    for _, value in records:
        if isinstance(value, dict):
            merged.update(value)
    damage = []
    if torn_at is not None:
        damage.append(
            Damage(
                path,
                torn_at,
                f"torn tail: {len(data) - torn_at} bytes after the last whole record "
                "(ignored by the peer; a repair cuts it off)",
                repairable=True,
            )
        )
    return merged, damage


def state_file_damage(path: str) -> list[Damage]:
    """A state file's torn tail or corruption."""
    return _state_file(path)[1]


def check_data_dir(paths: DataPaths) -> DirCheck:
    """Read-only: every index file, the snapshot, raft.pers and state.pers, and whether the
    state files point beyond the log's last whole entry."""
    damage: list[Damage] = []
    raft, raft_damage = _state_file(paths.raft)
    state, state_damage = _state_file(paths.state)
    damage += raft_damage + state_damage
    snapshot_index: int | None = None
    try:
        snap = SnapshotFile.open(paths.snapshot)
        snapshot_index = snap.index
        snap.close()
    except FileNotFoundError:
        pass
    except StorageError as err:
        damage.append(Damage(err.path or paths.snapshot, err.offset, _reason(err)))
    log_check: LogCheck | None = None
    if os.path.isdir(paths.log):
        log_check = check_log(paths.log)
        damage += log_check.damage
    check = DirCheck(paths, log_check, damage, snapshot_index=snapshot_index)
    last = log_check.last_whole_index if log_check is not None else None
    if last is None:
        last = snapshot_index
    elif snapshot_index is not None:
        last = max(last, snapshot_index)
    applied = mpack.as_int(state.get("lastApplied", 0))
    check.last_applied = applied
    if applied is not None and last is not None and applied > last:
        damage.append(
            Damage(
                paths.state, None, f"lastApplied {applied} is beyond the log's last whole entry {last}", True
            )
        )
    peers_index = raft.get("peersIndex")
    check.peers_index = mpack.as_int(peers_index) if peers_index is not None else None
    if check.peers_index is not None and last is not None and check.peers_index > last:
        damage.append(
            Damage(
                paths.raft,
                None,
                f"peersIndex {check.peers_index} is beyond the log's last whole entry {last}",
                True,
            )
        )
    return check
