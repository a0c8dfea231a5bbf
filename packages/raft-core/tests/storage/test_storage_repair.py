"""Damage detection and the explicit repair (``storage.files.repair``) on real files."""

from __future__ import annotations

import os
from pathlib import Path

from zmqraft.core.storage.files import IndexFile, open_data_dir
from zmqraft.core.storage.files.damage import check_data_dir, check_index_file
from zmqraft.core.storage.files.datadir import DataPaths
from zmqraft.core.storage.files.repair import apply_repair, backup_dir, plan_repair


def _dir(root: Path, entries: int, capacity: int = 16384) -> DataPaths:
    d = open_data_dir(str(root), index_file_capacity=capacity)
    try:
        for i in range(1, entries + 1):
            d.log.append_entry(os.urandom(12), 0, 1, b"entry %d" % i)
        assert d.state is not None
        d.state.set_last_applied(entries)
    finally:
        d.close()
    return DataPaths.of(str(root))


def _last_rlog(paths: DataPaths) -> str:
    return str(max(Path(paths.log).rglob("*.rlog")))


def test_opening_a_cut_file_hides_the_cut_entries_but_says_so(tmp_path: Path) -> None:
    paths = _dir(tmp_path, 10)
    rlog = _last_rlog(paths)
    before = Path(rlog).read_bytes()
    os.truncate(rlog, len(before) - 25)  # the last entry (28 bytes) and nothing else
    f = IndexFile.open(rlog)
    try:
        assert (f.next_at, f.claimed, f.torn) == (9, 10, True)
    finally:
        f.close()
    check = check_index_file(rlog)
    assert (check.next_index, check.claimed_next) == (10, 11)
    [damage] = check.damage
    assert damage.path == rlog and damage.repairable
    assert damage.offset == len(before) - 28  # where entry 10 starts
    assert Path(rlog).read_bytes() == before[:-25]  # opening and checking never write


def test_a_repair_interrupted_half_way_is_finished_by_the_next_one(tmp_path: Path) -> None:
    paths = _dir(tmp_path, 10)
    rlog = _last_rlog(paths)
    os.truncate(rlog, os.path.getsize(rlog) - 3)
    # as if a repair died after fixing the index file, before lowering lastApplied
    f = IndexFile.open(rlog, writable=True)
    f.drop_torn_tail()
    f.drop_torn_tail()  # idempotent
    f.close()
    plan = plan_repair(paths)
    assert plan.torn_file is None and plan.last_applied == 9 and not plan.refusals
    apply_repair(plan, backup_dir(paths))
    assert check_data_dir(paths).ok


def test_a_clean_directory_plans_nothing(tmp_path: Path) -> None:
    paths = _dir(tmp_path, 3)
    plan = plan_repair(paths)
    assert plan.check.ok and not plan.actions and not plan.refusals


def test_a_cut_file_before_a_full_one_is_a_hole_and_refused(tmp_path: Path) -> None:
    paths = _dir(tmp_path, 40, capacity=16)
    files = sorted(Path(paths.log).rglob("*.rlog"))
    assert len(files) == 3
    os.truncate(files[0], files[0].stat().st_size - 1)
    plan = plan_repair(paths)
    assert plan.refusals and not plan.check.repairable
    assert any("hole in the log" in r for r in plan.refusals)
