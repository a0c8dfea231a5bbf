"""A slow disk under real peer processes: every log append of every peer takes 0.4 s, longer
than the 0.2–0.3 s election timeout, while a client keeps writing.

The command-line peers write on their event loop while they follow (``inline_storage``): a
follower's loop is then blocked for the whole write.  What must hold: the leader's writes run
in its storage thread, so its heartbeats keep going; a follower drains everything that arrived
during its write before any timer of its runs, so it never campaigns against a live leader.
The first leader stays the leader, in its first term, and the writes commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from raft_harness import Client, Cluster, new_rid, wait_for
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(120)

SLOW_CONFIG = """\
import json
import time

from zmqraft.core.builder import default_log

raft = json.loads({document!r})["raft"]


def slow_log(options):
    log = default_log(options)
    append = log.append

    def slow_append(first_index, entries):
        time.sleep({seconds})
        append(first_index, entries)

    log.append = slow_append
    return log


raft["factory"] = {{"log": slow_log}}
"""


def slow_disks(cluster: Cluster, seconds: float) -> None:
    """Every peer reads a Python config: the cluster's own, with a log whose appends sleep."""
    document = next(iter(cluster.peers.values())).config.read_text()
    slow = cluster.root / "slow_config.py"
    slow.write_text(SLOW_CONFIG.format(document=json.dumps(json.loads(document)), seconds=seconds))
    for peer in cluster.peers.values():
        peer.config = Path(slow)


def test_a_slow_disk_does_not_depose_a_live_leader(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    slow_disks(cluster, 0.4)
    cluster.start()
    leader, term = cluster.leader(timeout=20.0)
    url = cluster.peers[leader].url
    client = Client(cluster.secret)
    try:
        sent = []
        for _ in range(30):  # 3 s of writes, 32 at a time
            for _ in range(32):
                rid = new_rid()
                client.send(url, m.RequestUpdate(rid, b"x" * 100).encode(cluster.secret))
                sent.append(rid)
            while client.recv(url, 0.1) is not None:  # the acknowledgements so far
                pass
        infos = {p: client.log_info(peer.url, 1.0) for p, peer in cluster.peers.items()}
        assert all(i is not None for i in infos.values()), infos
        assert {p: (i.term, i.leader_id) for p, i in infos.items() if i} == {
            p: (term, leader) for p in cluster.peers
        }, "a follower campaigned while the leader was alive"
        # the writes commit, however slowly
        wait_for("the updates to commit", lambda: _commit(client, url) >= len(sent) // 2, 30.0)
        assert _term(client, url) == term
        logs = "".join(peer.output() for peer in cluster.peers.values())
        assert "slow disk?" in logs  # the writes really were slow
    finally:
        client.close()


def _commit(client: Client, url: str) -> int:
    info = client.log_info(url, 1.0)
    return 0 if info is None else info.commit_index


def _term(client: Client, url: str) -> int:
    info = client.log_info(url, 1.0)
    return -1 if info is None else info.term
