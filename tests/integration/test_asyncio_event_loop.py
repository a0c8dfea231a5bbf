"""The ``zmq-raft`` command runs its peer on uvloop (``zmqraft.asyncio.event_loop``), and on
asyncio's own loop with ``ZMQRAFT_UVLOOP=0``: a real one-peer cluster each way, which takes an
update, and the loop it logs with ``-v``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from raft_harness import Cluster, wait_for


def loop_of_a_working_peer(tmp_path: Path) -> str:
    cluster = Cluster(tmp_path, ["1"])
    peer = cluster.peers["1"]
    peer.args = ["-v"]
    try:
        cluster.start()
        cluster.leader(timeout=20.0)
        assert cluster.client.update(peer.url, b"on this loop") == 1
        found = wait_for("the event loop line", lambda: re.search(r"event loop: (\w+)", peer.output()), 10.0)
        return found.group(1)
    finally:
        cluster.close()


def test_the_command_runs_on_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop", reason="uvloop is a dependency on POSIX only")
    monkeypatch.delenv("ZMQRAFT_UVLOOP", raising=False)
    assert loop_of_a_working_peer(tmp_path) == "uvloop"


def test_the_switch_runs_it_on_asyncios_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZMQRAFT_UVLOOP", "0")
    assert loop_of_a_working_peer(tmp_path) == "asyncio"
