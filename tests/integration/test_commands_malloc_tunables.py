"""The peer commands re-execute themselves once with glibc's malloc tunables
(``zmqraft.core.malloc_tuning``): the real commands, as subprocesses, with ``-v``, which logs
the ``GLIBC_TUNABLES`` the peer runs with."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest
from raft_harness import SERVER_PYTHON, free_ports

COMMANDS = {"zmq-raft": "zmqraft.asyncio", "zmq-raft-gevent": "zmqraft.gevent"}

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the tunables are glibc's: nothing to set elsewhere"
)


@pytest.fixture(params=sorted(COMMANDS))
def command(request: pytest.FixtureRequest) -> list[str]:
    return [SERVER_PYTHON, "-m", COMMANDS[request.param]]


def tunables_seen(command: list[str], tmp_path: Path, **env: str) -> str:
    """The GLIBC_TUNABLES a peer command logs at start (``--check-config``: it exits at once)."""
    port = free_ports(1)[0]
    (tmp_path / "one.yaml").write_text(
        f'raft:\n  peers:\n    - {{id: "1", url: "tcp://127.0.0.1:{port}"}}\n  data: {{path: raft}}\n'
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "ZMQRAFT_MALLOC_TUNING")}
    result = subprocess.run(
        [*command, "-v", "--check-config", "one.yaml", "1"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "GLIBC_TUNABLES=" in line]
    assert len(lines) == 1, result.stderr
    return lines[0].partition("GLIBC_TUNABLES=")[2]


def test_a_peer_runs_with_the_tunables(command: list[str], tmp_path: Path) -> None:
    assert tunables_seen(command, tmp_path) == "glibc.malloc.mxfast=160:glibc.malloc.tcache_count=256"


def test_the_users_tunables_win(command: list[str], tmp_path: Path) -> None:
    seen = tunables_seen(command, tmp_path, GLIBC_TUNABLES="glibc.malloc.mxfast=64")
    assert seen == "glibc.malloc.mxfast=64:glibc.malloc.tcache_count=256"


def test_the_switch_keeps_glibcs_defaults(command: list[str], tmp_path: Path) -> None:
    assert tunables_seen(command, tmp_path, ZMQRAFT_MALLOC_TUNING="0") == "(unset)"
