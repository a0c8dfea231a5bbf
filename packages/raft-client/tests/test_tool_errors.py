"""Every zr-* tool reports ordinary mistakes as one line and a non-zero status (the traceback
only with -v), says whom it is connecting to, and Ctrl-C on a blocking zr-console line cancels
the line, not the console.  The real commands run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_zr_monitor import HAVE_HARNESS, Terminal, started
from test_zr_monitor import terminal as terminal  # the fixture

pytestmark = [pytest.mark.timeout(120)]

TOOLS = {
    "zr-config": "zmqraft.client.tools.zr_config",
    "zr-monitor": "zmqraft.client.tools.zr_monitor",
    "zr-console": "zmqraft.client.tools.zr_console",
    "zr-log-compact": "zmqraft.client.tools.zr_log_compact",
}


def tool(name: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", TOOLS[name], *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line(result: subprocess.CompletedProcess[str], prog: str) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("connecting to ")]
    assert len(errors) == 1 and errors[0].startswith(f"{prog}: "), result.stderr
    return errors[0][len(prog) + 2 :]


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_missing_config_file(prog: str, tmp_path: Path) -> None:
    line = one_line(tool(prog, "-c", "nope.yaml", cwd=tmp_path), prog)
    assert line == "config file not found: nope.yaml (check the -c path)"


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_yaml_syntax_error_and_typos(prog: str, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("raft:\n  peers: [\n")
    assert one_line(tool(prog, "-c", "bad.yaml", cwd=tmp_path), prog).startswith(
        "bad.yaml, line 3: syntax error: "
    )
    (tmp_path / "typo.yaml").write_text("raft:\n  peer: []\n")
    assert one_line(tool(prog, "-c", "typo.yaml", cwd=tmp_path), prog).startswith(
        "typo.yaml: unknown option peer (did you mean peers?)"
    )


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = tool("zr-config", "-v", "-c", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == "zr-config: config file not found: nope.yaml (check the -c path)"


@pytest.mark.parametrize("prog", ["zr-config", "zr-monitor"])
def test_timeout_says_whom_it_tried(prog: str, tmp_path: Path) -> None:
    from raft_harness import free_ports

    url = f"tcp://127.0.0.1:{free_ports(1)[0]}"  # nobody there
    args = ["-t", "1000"] if prog == "zr-config" else ["-t", "1", "--once"]
    result = tool(prog, *args, url, cwd=tmp_path)
    assert result.stderr.splitlines()[0] == f"connecting to {url} ..."
    line = one_line(result, prog)  # the client's timeout: the peers tried and the likely causes
    assert line.startswith("requestConfig: no peer answered within ")
    assert f"(tried {url}); likely causes: a wrong secret" in line


@pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness")
def test_monitor_with_a_config_file_and_json(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    config = cluster.root / "config.json"  # its peers and its secret
    result = tool("zr-monitor", "-c", str(config), "--once", "-w", "json", cwd=cluster.root)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(p["id"] for p in doc["peers"]) == ["1", "2", "3"]
    assert doc["leader"] in ("1", "2", "3") and all(p["error"] is None for p in doc["peers"])
    alias = tool("zr-monitor", "-c", str(config), "--once", "--json", cwd=cluster.root)
    assert alias.returncode == 0 and json.loads(alias.stdout)["leader"] in ("1", "2", "3")
    peers = tool("zr-config", "-c", str(config), "-w", "json", cwd=cluster.root)
    assert peers.returncode == 0, peers.stderr
    assert [p["id"] for p in json.loads(peers.stdout)["peers"]] == ["1", "2", "3"]


def test_ctrl_c_cancels_a_blocking_console_line(terminal: Callable[..., Terminal], tmp_path: Path) -> None:
    from raft_harness import free_ports

    url = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    term = terminal([sys.executable, "-m", TOOLS["zr-console"], "--history", str(tmp_path / "h"), url])
    term.wait(lambda s: s.rstrip().endswith("zr>"))
    # a line that blocks for longer than any test (a request's deadline could pass first on a
    # loaded machine): Ctrl-C must cancel it
    term.type('__import__("time").sleep(600)')
    term.wait('zr> __import__("time").sleep(600)')
    term.keys("C-c")
    term.wait("// cancelled (Ctrl-C)")
    term.type(".secret")
    screen = term.wait(lambda s: s.count("zr>") >= 3)  # still running: a new prompt after .secret
    assert "[exit" not in screen
    term.type(".exit")
    term.wait("[exit 0]")
