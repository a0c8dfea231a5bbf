"""The peer commands run every thread under ``SCHED_BATCH`` (``zmqraft.core.cpu_scheduling``),
and under the default policy with ``ZMQRAFT_SCHED_BATCH=0``: a real one-peer cluster of each
command, which takes an update, and the policy of each of its threads (the loop, ZeroMQ's
I/O thread, the storage lanes), read from the running process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from raft_harness import Cluster

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this system")


@pytest.fixture(params=["asyncio", "gevent"])
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def thread_policies(runtime: str, tmp_path: Path) -> set[int]:
    cluster = Cluster(tmp_path, ["1"], runtime=runtime)
    peer = cluster.peers["1"]
    try:
        cluster.start()
        cluster.leader(timeout=20.0)
        assert cluster.client.update(peer.url, b"scheduled") == 1
        assert peer.proc is not None
        tids = [int(tid) for tid in os.listdir(f"/proc/{peer.proc.pid}/task")]
        assert len(tids) >= 3, tids  # the loop, ZeroMQ's I/O thread and a lane at least
        return {os.sched_getscheduler(tid) for tid in tids}
    finally:
        cluster.close()


def test_every_thread_runs_as_batch(runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZMQRAFT_SCHED_BATCH", raising=False)
    assert thread_policies(runtime, tmp_path) == {os.SCHED_BATCH}


def test_the_switch_keeps_the_default_policy(
    runtime: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZMQRAFT_SCHED_BATCH", "0")
    assert thread_policies(runtime, tmp_path) == {os.SCHED_OTHER}
