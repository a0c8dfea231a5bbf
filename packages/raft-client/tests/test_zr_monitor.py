"""``zr-monitor`` against real peers: ``--once`` for scripts, and the live view driven in a
real terminal (tmux): what a person would see, redrawn in place as the cluster changes.

``Terminal`` (tmux on a private server socket, killed at the end) is shared with
test_zr_console.py.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from zmqraft.client import Client

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()
HAVE_TMUX = shutil.which("tmux") is not None

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]

_sessions = itertools.count()


class Terminal:
    """A command in a tmux pane of its own tmux server: type into it, read its screen.

    The command runs under ``sh`` which prints ``[exit N]`` when it ends, so the exit status
    is on the screen too (it traps SIGINT, so Ctrl-C ends the command, not the pane)."""

    def __init__(
        self, argv: list[str], *, width: int = 160, height: int = 40, cwd: Path | None = None
    ) -> None:
        self._dir = tempfile.mkdtemp(prefix=f"zrtest-{os.getpid()}-{next(_sessions)}-")
        self.socket = os.path.join(self._dir, "tmux.sock")  # a tmux server of its own
        # COLUMNS/LINES (pytest's terminal) would override the pane's size
        command = (
            f'unset COLUMNS LINES; trap true INT; {shlex.join(argv)}; echo "[exit $?]"; exec cat >/dev/null'
        )
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(width),
            "-y",
            str(height),
            *(["-c", str(cwd)] if cwd else []),
            "sh",
            "-c",
            command,
        )

    def _tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, timeout=10
        )
        assert out.returncode == 0, f"tmux {args[0]}: {out.stderr}"
        return out.stdout

    def screen(self, history: bool = False) -> str:
        """The visible pane, or with ``history`` everything that scrolled off it too."""
        return self._tmux("capture-pane", "-p", *(["-S", "-"] if history else []), "-t", "t")

    def type(self, text: str, enter: bool = True) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait(self, what: str | Callable[[str], Any], timeout: float = 15.0, history: bool = False) -> str:
        """The screen once it shows ``what`` (a text, or a predicate of the screen); with
        ``history``, lines that already scrolled off count too (fast output)."""
        check = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(history)
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what!r}; the screen:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    if not HAVE_TMUX:
        pytest.skip("needs tmux (apt-get install tmux)")
    made: list[Terminal] = []

    def make(argv: list[str], **kw: Any) -> Terminal:
        made.append(Terminal(argv, **kw))
        return made[-1]

    yield make
    for t in made:
        t.close()


def started(cluster_factory: Callable[..., Any], **options: Any) -> Any:
    cluster = cluster_factory(**options)
    cluster.start()
    cluster.leader()
    return cluster


MONITOR = [sys.executable, "-m", "zmqraft.client.tools.zr_monitor"]


def rows(screen: str) -> dict[str, list[str]]:
    """The table rows on a screen by peer id: ``[role, term, commit, applied, last, lag, snap, url]``."""
    out = {}
    for line in screen.splitlines():
        cells = line.split()
        if len(cells) == 9 and cells[-1].startswith("tcp://"):
            out[cells[0]] = cells[1:]
    return out


def test_once(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()  # each test cluster has a secret of its own
    leader, term = cluster.leader()
    with Client(list(u.values()), secret=sec) as client:
        last = [client.request_update(b"x%d" % n, timeout=10) for n in range(5)][-1]
    cluster.wait_applied(last)

    out = subprocess.run([*MONITOR, "-k", sec, "--once", u["1"]], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    table = rows(out.stdout)
    assert set(table) == {"1", "2", "3"}
    for p, (role, t, commit, applied, last_index, lag, _snap, url) in table.items():
        assert role == ("leader" if p == leader else "follower")
        assert (int(t), url) == (term, u[p])
        assert int(commit) >= last and int(applied) >= last and int(last_index) >= last
        assert lag == "0"
    assert f"leader {leader}" in out.stdout

    # -p: the urls are the peers, no RequestConfig; one of them down: an error row, status 1
    follower = next(p for p in "123" if p != leader)
    cluster.peers[follower].kill()
    out = subprocess.run(
        [*MONITOR, "-k", sec, "--once", "-t", "1", "-p", "a", "b", "c", "--", u["1"], u["2"], u["3"]],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    table = rows(out.stdout)
    by_url = {cells[-1]: (name, cells) for name, cells in table.items()}
    assert set(table) == {"a", "b", "c"}
    assert by_url[u[follower]][1][0] == "error"
    assert by_url[u[leader]][1][0] == "leader"
    assert "no answer from" in out.stdout

    bad = subprocess.run(
        [*MONITOR, "--once", "-p", "a", "--", u["1"], u["2"]], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 1 and "one id per url" in bad.stderr


def test_live_view_in_a_terminal(
    cluster_factory: Callable[..., Any], terminal: Callable[..., Terminal]
) -> None:
    cluster = started(cluster_factory, spare=["4"])
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()
    leader, _ = cluster.leader()
    term = terminal([*MONITOR, "-k", sec, "-i", "0.2", "-t", "1", u["1"]])

    screen = term.wait(lambda s: len(rows(s)) == 3 and all(r[0] != "?" for r in rows(s).values()))
    assert rows(screen)[leader][0] == "leader"
    assert "Ctrl-C to quit" in screen

    # writes show up in the same table (redrawn in place, not scrolled)
    with Client(list(u.values()), secret=sec) as client:
        for n in range(20):
            index = client.request_update(b"y%d" % n, timeout=10)
    screen = term.wait(lambda s: all(int(r[3]) >= index for r in rows(s).values() if r[3] != "-"))
    assert screen.count("peer ID") == 1
    assert len(rows(screen)) == 3

    # a follower dies: its row turns into an error row
    follower = next(p for p in "123" if p != leader)
    cluster.peers[follower].kill()
    screen = term.wait(lambda s: rows(s).get(follower, ["?"])[0] == "error")
    assert f"{follower}: " in screen and "no answer from" in screen

    # a peer joins: the monitor asks for the configuration again and shows it
    cluster.peers["4"].start()
    cluster.peers[follower].start()
    with Client(list(u.values()), secret=sec) as client:
        client.config_update([*client.request_config(timeout=5).peers, ("4", u["4"])], timeout=20)
    screen = term.wait(lambda s: rows(s).get("4", ["?"])[0] == "follower", timeout=20)
    assert re.search(r"4 peers, leader \w", screen)

    term.keys("C-c")
    term.wait("[exit 0]")
