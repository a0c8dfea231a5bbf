"""A message far over the size limits, sent raw at a live leader (issue 12, defect 3): libzmq
refuses it (``ZMQ_MAXMSGSIZE``, sized from maxLogEntryDataSize and peerMsgDataSize) before
Python sees it, so the leader neither stalls nor grows, and the cluster goes on committing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq
from raft_harness import Cluster, new_rid
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(90)

HUGE = 100 << 20  # 100 MiB, ten times the default maxLogEntryDataSize


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_100_mib_update_never_reaches_the_leader(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    leader, term = cluster.leader()
    peer = cluster.peers[leader]
    assert peer.proc is not None
    before = rss(peer.proc.pid)

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(peer.url)
        huge = b"x" * HUGE
        for _ in range(3):  # as a client retrying it would
            sock.send_multipart(m.RequestUpdate(new_rid(), huge).encode(cluster.secret), copy=False)
        del huge
        # the leader keeps leading in the same term while the bytes arrive and after
        deadline = time.monotonic() + 5.0
        peak = before
        while time.monotonic() < deadline:
            info = cluster.client.log_info(peer.url, 1.0)
            assert info is not None and info.is_leader and info.term == term, info
            peak = max(peak, rss(peer.proc.pid))
            time.sleep(0.2)
        assert peak - before < 30 << 20, f"the leader grew by {(peak - before) >> 20} MiB"
        # the cluster goes on committing, and the same connection still works
        index = cluster.client.update(peer.url, b"after the flood")
        assert index is not None
        assert cluster.leader() == (leader, term)
    finally:
        sock.close(0)
        ctx.term()
    cluster.stop()
    output = peer.output()
    assert "dropped a RequestUpdate" not in output  # it never reached Python
    assert "Traceback" not in output
