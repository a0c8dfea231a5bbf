"""zr-tool's damage reporting and its ``verify`` and ``repair`` commands.

Opening a log hides a torn tail (the cut entries are simply not there), so every command
that reads files checks them afterwards and reports each problem on stderr as
``zr-tool: damage: <file> at offset <n>: <what>``, exiting with ``DAMAGE_EXIT``.  ``repair``
prints exactly what it will do and does it only with ``--yes`` (or a "y" typed at a
terminal); it keeps a copy of every file it changes in ``<dir>/repair-<timestamp>/`` with a
``REPAIR.log``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from zmqraft.core.storage.files.damage import Damage, check_data_dir, check_index_file, state_file_damage
from zmqraft.core.storage.files.datadir import DataPaths
from zmqraft.core.storage.files.repair import apply_repair, backup_dir, plan_repair

if TYPE_CHECKING:
    from .zr_tool import Output

DAMAGE_EXIT = 3


def data_paths(args: argparse.Namespace) -> DataPaths:
    return DataPaths.of(args.path, log=args.log, snapshot=args.snapshot)


def damage_of(args: argparse.Namespace, kind: str) -> list[Damage]:
    """Every problem in what the command read: the whole directory, or the one file."""
    if kind == "dir":
        return check_data_dir(data_paths(args)).damage
    if kind == "index":
        return check_index_file(args.path).damage
    if kind == "state":
        return state_file_damage(args.path)
    return []  # a snapshot that does not validate cannot be opened at all


def report_damage(args: argparse.Namespace, kind: str) -> int:
    """Print the damage on stderr: ``DAMAGE_EXIT`` if there is any, else 0."""
    damage = damage_of(args, kind)
    for d in damage:
        print(f"zr-tool: damage: {d}", file=sys.stderr)
    if damage:
        hint = "zr-tool repair" if kind == "dir" else "zr-tool verify/repair on its data directory"
        print(f"zr-tool: {len(damage)} problem(s) found; see {hint}", file=sys.stderr)
        return DAMAGE_EXIT
    return 0


def cmd_verify(args: argparse.Namespace, kind: str, out: Output) -> int:
    damage = damage_of(args, kind)
    for d in damage:
        out.line(f"damage: {d}" + ("" if d.repairable else " (not repairable)"))
    if damage:
        return report_damage(args, kind)
    out.line(f"{args.path}: no damage found")
    return 0


def _confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    return input("Repair? This changes the files listed above [y/N] ").strip().lower() in ("y", "yes")


def cmd_repair(args: argparse.Namespace, kind: str, out: Output) -> int:
    """Print the plan; with confirmation back up, repair and verify."""
    if kind != "dir":
        raise ValueError("repair works on a peer's data directory (stop the peer first)")
    paths = data_paths(args)
    plan = plan_repair(paths)
    for d in plan.check.damage:
        out.line(f"found: {d}")
    if plan.check.ok:
        out.line(f"{args.path}: no damage found, nothing to repair")
        return 0
    if plan.refusals:
        for line in plan.refusals:
            out.line(line)
        out.line("nothing changed")
        return 1
    backup = backup_dir(paths)
    out.line("the repair will (the peer must be stopped):")
    out.line(f"  copy {', '.join(plan.changes)} to {backup}/")
    for n, action in enumerate(plan.actions, start=1):
        out.line(f"  {n}. {action}")
    if plan.torn_file is not None:
        out.line(
            "  the cut entries are lost from this peer; the cluster's leader sends them again "
            "if another peer holds them"
        )
    out.binary.flush()  # the plan is on screen before the question
    if not _confirmed(args):
        out.line("nothing changed: run again with --yes to repair")
        return DAMAGE_EXIT
    for line in apply_repair(plan, backup):
        out.line(line)
    remaining = check_data_dir(paths).damage
    for d in remaining:
        out.line(f"still damaged: {d}")
    if remaining:
        return DAMAGE_EXIT
    out.line(f"repaired {os.path.abspath(args.path)}; backup in {backup}")
    return 0
