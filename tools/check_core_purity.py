"""Fail if anything under zmqraft.core other than the file-storage module imports I/O.

The core must stay sans-IO (DESIGN.md, property 1): no sockets, threads, clocks, event loops
or ZeroMQ.  Only ``storage/files`` (the on-disk formats) may use the file system helpers it
needs; it still must not import sockets, threads or event loops.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FORBIDDEN = {
    "socket",
    "time",
    "threading",
    "_thread",
    "asyncio",
    "zmq",
    "gevent",
    "anyio",
    "select",
    "selectors",
    "subprocess",
    "multiprocessing",
    "concurrent",
    "signal",
}
FILE_STORAGE = ("storage/files",)
FILE_STORAGE_MAY = {"time"}  # timestamps in backup file names and META chunks
# The simulator's command-line runner spreads seeds over processes; the simulation itself
# (simulation/cluster.py and everything it drives) stays pure.
RUNNER = "simulation/cli.py"
RUNNER_MAY = {"concurrent"}


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def check(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        in_files = rel.startswith(FILE_STORAGE)
        for lineno, name in imported_roots(ast.parse(path.read_text(), str(path))):
            allowed = (in_files and name in FILE_STORAGE_MAY) or (rel == RUNNER and name in RUNNER_MAY)
            if name in FORBIDDEN and not allowed:
                problems.append(f"{path}:{lineno}: zmqraft.core must not import {name!r}")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "packages/raft-core/src/zmqraft/core")
    problems = check(root)
    for p in problems:
        print(p)
    print(f"core purity: {len(problems)} problem(s) in {root}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
