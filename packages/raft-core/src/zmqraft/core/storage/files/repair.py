"""Finding damage in a peer's data directory, and the one repair an operator may ask for.

Opening a log leaves a torn tail (offsets that point past the end of the file) out of the
committed run, so a damaged log looks shorter, not broken.  That is right for a crash, but a
tool must not report it as health: ``check_data_dir`` walks every file (not only the first and
the last the peer opens) and lists each problem with its file and byte offset.

``plan_repair`` turns the damage into an exact list of actions, or refuses; ``apply_repair``
copies every file it will change into a backup directory first, then drops the cut entries
of the last index file (truncating after the last whole entry), lowers ``lastApplied`` (and
moves the configuration back to the last whole CONFIG entry) when they point beyond the
repaired log, and rolls over state files with a torn tail.  Nothing is ever repaired
automatically: only ``zr-tool repair --yes`` calls ``apply_repair``.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ...protocol import mpack
from ...protocol.entry import EntryType, entry_request_id, entry_type
from ..base import StorageError
from .datadir import DataPaths
from .fsutil import fsync_dir, timestamp_suffix
from .indexfile import TABLE_POSITION, IndexFile
from .logdir import iter_index_files
from .persistence import RaftPersistence, StateMachinePersistence, read_records
from .snapshotfile import SnapshotFile

log = logging.getLogger("zmqraft.storage.repair")

_CONFIG_SCAN_BATCH = 1024


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
                    f"torn tail: {_entries(first_cut, last_cut)} cut: the offset table claims "
                    f"{'it' if first_cut == last_cut else 'them'} but "
                    f"the file ends at byte {f.size} (entry {first_cut} needs bytes {start}..{end}); "
                    f"the log ends at {first_cut - 1}",
                    repairable=True,
                )
            )
        return check
    finally:
        f.close()


def _entries(first: int, last: int) -> str:
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
                        f"hole in the log: {_entries(a.next_index, b.first_index - 1)} missing "
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


# ---- repair ------------------------------------------------------------------------------------


@dataclass(slots=True)
class RepairPlan:
    """Exactly what ``apply_repair`` will do (``actions``, in order), or why it will not
    (``refusals``)."""

    check: DirCheck
    actions: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    torn_file: str | None = None
    last_index: int | None = None
    last_applied: int | None = None
    config: tuple[int | None, Any, str | None] | None = None  # (peersIndex, peers, request id)
    cut_state: list[tuple[str, int]] = field(default_factory=list)  # (state file, torn_at)

    @property
    def changes(self) -> list[str]:
        """The files that will change (copied to the backup first)."""
        out = [p for p in (self.torn_file,) if p is not None]
        if self.last_applied is not None:
            out.append(self.check.paths.state)
        if self.config is not None:
            out.append(self.check.paths.raft)
        return out + [p for p, _ in self.cut_state if p not in out]


def plan_repair(paths: DataPaths) -> RepairPlan:
    check = check_data_dir(paths)
    plan = RepairPlan(check)
    for d in check.damage:
        if not d.repairable:
            plan.refusals.append(f"cannot repair: {d}")
    if plan.refusals or check.ok:
        return plan
    assert check.log is not None or check.snapshot_index is not None
    tail = check.log.tail if check.log is not None else None
    last = check.snapshot_index or 0
    if tail is not None:
        last = max(last, tail.next_index - 1)
        if tail.claimed_next > tail.next_index:
            plan.torn_file = tail.path
            first_cut, last_cut = tail.next_index, tail.claimed_next - 1
            plan.actions.append(
                f"drop the cut {_entries(first_cut, last_cut).rsplit(' ', 1)[0]} from {tail.path} "
                f"(zero their offsets, truncate the file after the last whole entry {tail.next_index - 1}); "
                f"the log will end at {last}"
            )
    plan.last_index = last
    if check.last_applied is not None and check.last_applied > last:
        plan.last_applied = last
        plan.actions.append(f"lower lastApplied in {paths.state} from {check.last_applied} to {last}")
    if check.peers_index is not None and check.peers_index > last:
        found = _last_config(paths, last) or _earlier_config_record(paths.raft, last)
        if found is None:
            plan.refusals.append(
                f"cannot repair: the configuration entry {check.peers_index} is cut and no earlier "
                f"CONFIG entry is in the log or in the history of {paths.raft}; restore it by hand"
            )
        else:
            index, peers, _rid = found
            plan.config = found
            plan.actions.append(
                f"move the configuration in {paths.raft} back from entry {check.peers_index} "
                f"to {'the seed configuration' if index is None else f'the CONFIG entry {index}'}: "
                f"peers {peers}"
            )
    for d in check.damage:
        if d.message.startswith("torn tail") and d.path in (paths.raft, paths.state):
            assert d.offset is not None
            plan.cut_state.insert(0, (d.path, d.offset))
            plan.actions.insert(0, f"cut {d.path} at offset {d.offset} (its torn tail)")
    return plan


def _last_config(paths: DataPaths, last: int) -> tuple[int | None, Any, str | None] | None:
    """The newest CONFIG entry at or below ``last`` still in the log (read-only)."""
    from .filelog import FileLog

    flog = FileLog(paths.log, paths.snapshot, read_only=True)
    try:
        top = min(last, flog.last_index)
        low = max(flog.lowest_index, 1)
        for first, entries in _backwards(flog, low, top):
            for k in range(len(entries) - 1, -1, -1):
                e = entries[k]
                if entry_type(e) == EntryType.CONFIG:
                    rid = entry_request_id(e)
                    key = base64.b64encode(rid).decode() if any(rid) else None
                    return first + k, mpack.unpack(e[20:]), key
        return None
    finally:
        flog.close()


def _earlier_config_record(path: str, last: int) -> tuple[int | None, Any, str | None] | None:
    """The newest configuration in the update history of ``raft.pers`` whose ``peersIndex``
    is at or below ``last`` (or null: the seed configuration)."""
    with open(path, "rb") as f:
        records = [value for _, value in read_records(f.read(), path)[0] if isinstance(value, dict)]
    for value in reversed(records):
        if "peers" in value and "peersIndex" in value:
            index = mpack.as_int(value["peersIndex"]) if value["peersIndex"] is not None else None
            if index is None or index <= last:
                return index, value["peers"], value.get("peersUpdateRequest")
    return None


def _backwards(flog: Any, low: int, top: int) -> Iterator[tuple[int, list[bytes]]]:
    while top >= low:
        first = max(low, top - _CONFIG_SCAN_BATCH + 1)
        yield first, flog.entries(first, top)
        top = first - 1


def backup_dir(paths: DataPaths) -> str:
    return os.path.join(paths.root, f"repair-{timestamp_suffix()}")


def apply_repair(plan: RepairPlan, backup: str) -> list[str]:
    """Do what ``plan`` says (it must have no refusals): copy each file that changes into
    ``backup`` (relative to the data directory), write ``backup/REPAIR.log``, then repair.
    Returns the lines logged.  The peer must not be running."""
    if plan.refusals:
        raise ValueError("the repair plan has refusals: " + "; ".join(plan.refusals))
    paths = plan.check.paths
    os.makedirs(backup)
    for src in plan.changes:
        dest = os.path.join(backup, os.path.relpath(src, paths.root))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)
        with open(dest, "rb+") as f:
            os.fsync(f.fileno())
    fsync_dir(backup)
    done: list[str] = []

    def record(line: str) -> None:
        log.info("repair %s: %s", paths.root, line)
        done.append(line)
        with open(os.path.join(backup, "REPAIR.log"), "a") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    record(f"backup of {len(plan.changes)} file(s) before the repair: {backup}")
    for damage in plan.check.damage:
        record(f"found: {damage}")
    for path, offset in plan.cut_state:  # first: the updates below append to these files
        os.truncate(path, offset)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        record(f"cut the torn tail of {path} at offset {offset}")
    if plan.torn_file is not None:
        index_file = IndexFile.open(plan.torn_file, writable=True)
        try:
            claimed = index_file.claimed
            index_file.drop_torn_tail()
        finally:
            index_file.close()
        kept = index_file.next_at
        record(
            f"dropped the cut slots {kept}..{claimed - 1} of {plan.torn_file} (offsets zeroed "
            f"from offset {TABLE_POSITION + 4 * kept}, file cut to {index_file.size} bytes)"
        )
    if plan.last_applied is not None:
        state = StateMachinePersistence(paths.state)
        try:
            old = state.last_applied
            state.set_last_applied(plan.last_applied)
        finally:
            state.close()
        record(f"lowered lastApplied in {paths.state} from {old} to {plan.last_applied}")
    if plan.config is not None:
        index, peers, rid = plan.config
        raft = RaftPersistence(paths.raft)
        try:
            raft.update({"peers": peers, "peersUpdateRequest": rid, "peersIndex": index})
        finally:
            raft.close()
        record(f"set peersIndex {index}, peers {peers}, peersUpdateRequest {rid} in {paths.raft}")
    return done
