"""What each install pulls in, and that the client package holds no server code.

DESIGN.md: a client-only install (raft-core + raft-client) holds no server code and pulls no
terminal-UI libraries unless asked (``zmq-raft-client[tools]``); a server runtime pulls no
console libraries.  pip resolves each install without installing it (``--dry-run
--report``), and every module of raft-client is read for imports of server code.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
TERMINAL_UI = {"rich", "prompt-toolkit", "prompt_toolkit"}
# what a peer is made of: importing any of these from raft-client would ship server code
SERVER_MODULES = (
    "zmqraft.core.driver",
    "zmqraft.core.server",
    "zmqraft.core.builder",
    "zmqraft.core.command_line",
    "zmqraft.asyncio",
    "zmqraft.gevent",
)

INSTALLS: dict[str, tuple[list[str], set[str]]] = {
    # what is installed: (the pip arguments, distributions that must not be pulled in)
    "client only": (["raft-core", "raft-client"], TERMINAL_UI | {"zmq-raft-asyncio", "zmq-raft-gevent"}),
    "asyncio runtime": (["raft-core", "raft-client", "raft-zmq-asyncio"], TERMINAL_UI),
    "gevent runtime": (["raft-core", "raft-client", "raft-zmq-gevent"], TERMINAL_UI),
}


def resolved(folders: list[str]) -> set[str]:
    """The distributions pip would install for ``folders`` into an empty environment."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            "-",
            *(str(PACKAGES / f) for f in folders),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report = json.loads(out)
    return {item["metadata"]["name"].lower().replace("_", "-") for item in report["install"]}


def server_imports(src: Path) -> list[str]:
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith(SERVER_MODULES):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name}")
    return found


def main() -> int:
    problems = server_imports(PACKAGES / "raft-client" / "src")
    for what, (folders, forbidden) in INSTALLS.items():
        names = resolved(folders)
        bad = sorted(names & {f.lower().replace("_", "-") for f in forbidden})
        print(f"{what}: {len(names)} distributions: {', '.join(sorted(names))}")
        if bad:
            problems.append(f"{what} pulls in {', '.join(bad)}")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
