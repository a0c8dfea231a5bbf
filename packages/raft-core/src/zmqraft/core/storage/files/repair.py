"""The one repair an operator may ask for (``zr-tool repair --yes``; never automatic).

``plan_repair`` turns the damage ``damage.check_data_dir`` finds into an exact list of
actions, or refuses (a hole in the middle of the log, a corrupt header...); ``apply_repair``
copies every file it will change into a backup directory first, then drops the cut entries
of the last index file (truncating after the last whole entry), lowers ``lastApplied`` (and
moves the configuration back to the last whole CONFIG entry) when they point beyond the
repaired log, and cuts the torn tail of a state file.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...protocol import mpack
from ...protocol.entry import EntryType, entry_request_id, entry_type
from .damage import DirCheck, check_data_dir, entries_text
from .datadir import DataPaths
from .fsutil import fsync_dir, timestamp_suffix
from .indexfile import TABLE_POSITION, IndexFile
from .persistence import RaftPersistence, StateMachinePersistence, read_records

log = logging.getLogger("zmqraft.storage.repair")

_CONFIG_SCAN_BATCH = 1024


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
                f"drop the cut {entries_text(first_cut, last_cut).rsplit(' ', 1)[0]} from {tail.path} "
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
