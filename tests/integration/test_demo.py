"""The README's first command: ``zmq-raft demo --updates N`` runs, fails over and ends cleanly
(also with a cluster mixing both runtimes)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("runtime", ["asyncio", "mixed"])
def test_demo_runs_to_the_end(runtime: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zmqraft.asyncio", "demo", "--updates", "150", "--runtime", runtime],
        capture_output=True,
        text=True,
        timeout=100,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"new leader: peer \d \(term \d+\) after \d+\.\d+ s", out), out
    assert "done: 150 updates committed" in out
    rows = re.findall(r"^  (\d)\s+(LEADER|follower)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    assert len(rows) == 3, out
    assert [r[1] for r in rows].count("LEADER") == 1
    assert len({(r[3], r[4], r[6]) for r in rows}) == 1, "the peers differ: " + out  # commit, applied, last
    assert out.rstrip().endswith("bye bye")
    kinds = re.findall(r"^  peer \d at tcp://\S+ on (\w+), web monitor http://127\.0\.0\.1:\d+/ ", out, re.M)
    assert kinds == (["asyncio"] * 3 if runtime == "asyncio" else ["asyncio", "gevent", "gevent"]), out
