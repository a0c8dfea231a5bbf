"""``zr-console`` driven in a real terminal (tmux, see ``Terminal`` in test_zr_monitor.py)
and through piped stdin, against real peers (the integration harness's ``cluster_factory``)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_zr_monitor import HAVE_HARNESS, Terminal, started
from test_zr_monitor import terminal as terminal  # the fixture
from zmqraft.client import Client, Entry
from zmqraft.client.tools.zr_console import trim_history_file, unpack

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]

CONSOLE = [sys.executable, "-m", "zmqraft.client.tools.zr_console"]


def prompt(screen: str) -> bool:
    """The console waits for a command (tmux drops the space after the prompt)."""
    return screen.rstrip().endswith("zr>")


def max_index(screen: str, prefix: str) -> int:
    return max((int(n) for n in re.findall(prefix + r" logIndex: (\d+)", screen)), default=0)


def test_console_in_a_terminal(
    cluster_factory: Callable[..., Any], terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    cluster = started(cluster_factory, spare=["4"])
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()  # each test cluster has a secret of its own
    history = tmp_path / "history"
    # an old history: 1,100 lines with repeats; the console keeps the newest 1,000 distinct
    history.write_text("".join(f"\n# 2026-01-01 {n}\n+.data old{n % 1050}\n" for n in range(1100)))
    term = terminal([*CONSOLE, "-k", sec, "--history", str(history), u["1"]], height=50)
    term.wait(prompt)
    assert f"connected to: {u['1']}" in term.screen()

    # completion: ".pee" + Tab is ".peers"
    term.type(".pee", enter=False)
    term.keys("Tab")
    term.wait("zr> .peers")
    term.keys("Enter")
    screen = term.wait("Cluster peers:")
    # (the leader may change meanwhile: one of the three is marked)
    assert len(re.findall(r"  [123]: tcp://\S+ \(leader\)", screen)) == 1
    assert all(f"  {p}: {u[p]}" in screen for p in "123")

    # history: Up brings the last line back
    term.type(".info")
    term.wait("prune index:")
    term.keys("Up")
    term.wait(lambda s: s.rstrip().endswith("zr> .info"))
    term.keys("Enter")
    term.wait(lambda s: s.count("prune index:") == 2)
    term.type(".cls")
    term.wait(lambda s: "Cluster peers:" not in s and prompt(s))

    # subscribe, then flood: the subscriber prints the updates as they are committed
    term.type(".subscribe")
    term.wait("subscribed to:")
    term.type(".data hello")
    term.type(".start")
    term.wait("flooding started: data 'hello'", history=True)  # the subscriber scrolls it off fast
    screen = term.wait(lambda s: max_index(s, "entry") >= 20, timeout=30)
    assert "'data': 'hello'" in screen and "'iteration':" in screen
    term.type(".stop")
    screen = term.wait("flooding stopped:", history=True)
    sent = int(re.search(r"flooding stopped: (\d+) updates", screen).group(1))  # type: ignore[union-attr]
    assert sent >= 20
    term.type(".close")
    term.wait("closed")
    term.type(".cls")
    term.wait(lambda s: "flooding stopped" not in s)

    # verify: the log holds every flood item in order
    term.type(f".connect {u['2']}")
    term.type(".verify")
    screen = term.wait("verify ok:")
    assert f"verify ok: {sent} items" in screen
    with Client([u["2"]], secret=sec) as client:
        items = [unpack(e.data) for e in client.request_entries(0) if isinstance(e, Entry) and e.is_state]
    assert [i["iteration"] for i in items] == list(range(1, sent + 1))
    assert {i["data"] for i in items} == {"hello"}

    # a membership change
    term.type(f".config add {u['4']}/4")
    screen = term.wait("Cluster final configuration changed at index", timeout=30)
    assert f"  {u['4']}/4 (added)" in screen
    with Client([u["1"]], secret=sec) as client:
        assert dict(client.request_config(timeout=5).peers) == u

    term.type(".exit")
    term.wait("[exit 0]")
    assert "bye bye" in term.screen()
    lines = history.read_text().split("\n")
    assert lines.count("+.info") == 1 and "+.pee" not in lines and "+.peers" in lines
    kept = [line for line in lines if line.startswith("+")]
    assert len(kept) == 1000 and len(set(kept)) == 1000  # trimmed on exit
    # old0..old49 were repeated last (kept); the oldest, old50 on, made room for the new lines
    assert kept[-1] == "+.exit" and "+.data old49" in kept and "+.data old50" not in kept


def test_console_with_piped_stdin(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()
    script = "\n".join(
        [
            ".peers",  # not connected yet
            ".secret",
            f".secret {sec}",  # for the connections made after it
            f".connect 127.0.0.1:{u['3'].rsplit(':', 1)[1]}",
            "peers",  # the dot is optional
            ".info 3",
            ".info 9",
            ".data piped",
            ".start +3",
            ".stop",
            ".read 0 1",
            ".decode other",
            ".read 0 1",
            ".verify 1 99",  # the first flood item is iteration 1..3, not 99
            ".bogus",
            ".exit",
            ".peers",  # not run: after .exit
        ]
    )
    out = subprocess.run([*CONSOLE], input=script, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "not connected: use .connect host[:port]" in text
    assert f"connected to: {u['3']}" in text
    assert "secret: ''" in text and f"secret: {sec!r}" in text
    assert text.count("Cluster peers:") == 1
    assert len(re.findall(r"  [123]: tcp://\S+ \(leader\)", text)) == 1
    assert f"url:              {u['3']}" in text
    assert "unknown peer id: 9" in text
    assert "flooding started: data 'piped', iteration 1, 3 at a time" in text
    assert re.search(r"flooding stopped: \d+ updates", text)
    assert re.search(r"state logIndex: 1 logTerm: \d+ data: \{'iteration': \d+, 'data': 'piped'", text)
    assert re.search(r"state logIndex: 1 logTerm: \d+ data: <\d+ bytes>", text)
    assert text.count("read server log done: ok (1 entries)") == 2
    assert re.search(r"verify FAILED at logIndex \d+: iteration [123], expected 99", text)
    assert "unknown command: .bogus" in text
    assert text.rstrip().endswith("bye bye")


def test_console_peer_client_python_lines_and_scripts(
    cluster_factory: Callable[..., Any], tmp_path: Path
) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()
    follower = next(p for p in cluster.members if p != leader)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()
    saved = tmp_path / "session.zr"
    script = tmp_path / "script.zr"
    script.write_text(".data from-a-script\nx = 40 + 2\n.exit\n.data never\n")
    lines = [
        ".cpeer",  # not connected
        f".cpeer {u[follower]}",
        ".cpeer",
        ".info",
        ".start",  # a follower refuses: the single-peer client does not follow
        ".stop",
        f".cpeer {u[leader]}",
        "n = 3",
        "[client.request_update(mp.packb(i)) for i in range(n)]",  # Python, with the context
        "res[-1] - res[0]",
        "type(client).__name__",
        "len(gen_id())",
        "undefined_name",
        f".load {script}",
        "x",
        ".editor",
        ".data edited",
        "y = x * 2",
        ".end",
        "y",
        ".decompress",
        ".decompress no",
        f".save {saved}",
        ".exit",
    ]
    out = subprocess.run(
        [*CONSOLE, "-k", sec], input="\n".join(lines), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "not connected" in text
    assert f"connected to peer: {u[follower]} (a single-peer client: no fail-over)" in text
    assert f"connected to peer: {u[follower]}\n" in text
    assert f"url:              {u[follower]}" in text and "leader:           no" in text
    assert "flooding started: data" in text and "through the peer" in text
    assert "flooding stopped by an error: NotLeaderError" in text
    indexes = re.search(r"\[(\d+), (\d+), (\d+)\]", text)
    assert indexes is not None
    first, _, last = (int(g) for g in indexes.groups())
    assert f"\n{last - first}\n" in text and last - first == 2
    assert "'PeerClient'" in text and "\n24\n" in text  # a request id in hex
    assert "NameError: name 'undefined_name' is not defined" in text
    assert "flood data: from-a-script" in text and "flood data: never" not in text
    assert "\n42\n" in text  # the script's x
    assert "flood data: edited" in text and "\n84\n" in text
    assert "decompress: yes" in text and "decompress: no" in text
    assert f"session saved to: {saved}" in text
    saved_lines = saved.read_text().splitlines()
    assert saved_lines[:3] == [".cpeer", f".cpeer {u[follower]}", ".cpeer"]
    assert "n = 3" in saved_lines and ".data edited" in saved_lines and ".decompress no" in saved_lines
    assert not any(ln.startswith((".save", ".load", ".editor")) for ln in saved_lines)


def test_console_flood_through_the_subscriber_and_the_peer_subscriber(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()
    proc = subprocess.Popen(
        [*CONSOLE, "-k", sec],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(
            "\n".join(
                [
                    f".subscribe {u['1']} {u['2']} {u['3']}",
                    ".data subflood",
                    ".start +2",
                    # piped lines run at once: give the flood and the subscriber a moment through
                    # a bounded Python wait on what the subscriber has handed out
                    "import time; t = time.monotonic()",
                    "while (subs.last_index < 20) and time.monotonic() - t < 20: time.sleep(0.05)",
                    ".stop",
                    ".pulse on",
                    f".subp {u[leader]}",
                    "t2 = time.monotonic()",
                    "while time.monotonic() - t2 < 1.5: time.sleep(0.05)",  # a few heartbeats
                    ".subp 0",
                    "t3 = time.monotonic()",
                    "while time.monotonic() - t3 < 1.5: time.sleep(0.05)",
                    ".close",
                    ".exit",
                ]
            ),
            timeout=90,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "through the subscriber" in out
    stopped = re.search(r"flooding stopped: (\d+) updates, .* through the subscriber", out)
    assert stopped is not None and int(stopped.group(1)) >= 20
    assert max_index(out, "entry") >= 20 and "'data': 'subflood'" in out
    assert f"PUB {cluster.peers[leader].pub}" in out
    assert re.search(r"\(\( \)\) \d+, \d+, 0", out)  # heartbeats of the leader
    # .subp 0: the leader's whole log, every flood item among it
    assert max_index(out, "peer entry") >= int(stopped.group(1))


def test_trim_history_file(tmp_path: Path) -> None:
    path = tmp_path / "h"
    entries = [".a", ".b", "multi\n+line", ".a", ".c"]
    path.write_text("".join(f"\n# t{n}\n+{e}\n" for n, e in enumerate(entries)))
    assert trim_history_file(path, keep=3) == 3
    text = path.read_text()
    assert text == "\n# t2\n+multi\n+line\n\n# t3\n+.a\n\n# t4\n+.c\n"
    assert trim_history_file(tmp_path / "missing") == 0
