"""Membership changes through ConfigUpdate: a peer added, a follower removed, the leader removed."""

from __future__ import annotations

import time

import pytest
from raft_harness import Cluster, check_acknowledged, wait_for
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(150)


def test_add_remove_follower_and_leader(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(["1", "2", "3"], spare=["4"])
    cluster.start(["1", "2", "3", "4"])
    leader, _ = cluster.leader(["1", "2", "3"])
    client = cluster.client
    peers = cluster.peers
    members = ["1", "2", "3"]

    def leader_url() -> str:
        return peers[cluster.leader(members)[0]].url

    acked = client.pipelined_updates(leader_url, [f"a{n}".encode() for n in range(200)])

    # a peer outside the configuration waits in the CLIENT state: it may have fetched
    # committed entries through its start-up catch-up (spec/raft.md §10.4), but commits nothing
    info = client.log_info(peers["4"].url)
    assert info is not None and not info.is_leader and info.commit_index == 0 and info.last_applied == 0
    cfg = client.config(peers["4"].url)
    assert cfg is not None and [p for p, _ in cfg.peers] == members

    # added: it catches up and becomes a follower of the leader
    wanted = [[p, peers[p].url] for p in ["1", "2", "3", "4"]]
    reply = client.config_update(leader_url, wanted)
    assert reply.status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None, reply
    members = ["1", "2", "3", "4"]
    commit = client.log_info(leader_url())
    assert commit is not None

    def joined() -> bool:
        i = client.log_info(peers["4"].url, 0.3)
        c = client.config(peers["4"].url, 0.3)
        return (
            i is not None
            and c is not None
            and i.last_applied >= commit.commit_index
            and i.leader_id == leader
            and [p for p, _ in c.peers] == members
        )

    wait_for("peer 4 to join", joined, 15)
    acked.update(client.pipelined_updates(leader_url, [f"b{n}".encode() for n in range(100)]))

    # a follower removed: the others carry on without it
    leader, _ = cluster.leader(members)
    follower = next(p for p in ["1", "2", "3"] if p != leader)
    members = [p for p in members if p != follower]
    reply = client.config_update(leader_url, [[p, peers[p].url] for p in members])
    assert reply.status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None, reply
    peers[follower].stop()
    acked.update(client.pipelined_updates(leader_url, [f"c{n}".encode() for n in range(100)]))
    for p in members:
        c = client.config(peers[p].url)
        assert c is not None and follower not in dict(c.peers)

    # the leader removed: it commits the change, steps down, and the others elect a new one
    leader, _ = cluster.leader(members)
    members = [p for p in members if p != leader]
    everyone = [*members, leader]
    reply = client.config_update(
        lambda: peers[cluster.leader(everyone)[0]].url, [[p, peers[p].url] for p in members]
    )
    assert reply.status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None, reply
    new_leader, _ = cluster.leader(members, timeout=10)
    assert new_leader != leader
    wait_for(
        "the old leader to step down",
        lambda: (i := client.log_info(peers[leader].url, 0.3)) is not None and not i.is_leader,
        5,
    )
    acked.update(client.pipelined_updates(leader_url, [f"d{n}".encode() for n in range(100)]))
    entries, _ = client.entries(leader_url(), 0)
    check_acknowledged(entries, acked)
    assert len(acked) == 500


def test_a_removed_peer_learns_it_and_stops_campaigning(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """Defect: a removed follower that kept running campaigned forever (CANDIDATE, its term
    above the cluster's, nothing logged).  It must hear that its removal committed, say so
    once and stay passive: its term stays the leader's and it never claims to lead."""
    cluster: Cluster = cluster_factory(["1", "2", "3"])
    cluster.start()
    leader, term = cluster.leader()
    peers = cluster.peers
    removed = next(p for p in cluster.members if p != leader)
    members = [p for p in cluster.members if p != removed]
    reply = cluster.client.config_update(peers[leader].url, [[p, peers[p].url] for p in members])
    assert reply.status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None, reply

    def said_so() -> bool:
        return "removed from the cluster" in peers[removed].output()

    wait_for("the removed peer to say it was removed", said_so, 5)
    # three election timeouts and more: a campaigning peer would have raised its term
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        info = cluster.client.log_info(peers[removed].url, 0.3)
        assert info is not None and not info.is_leader and info.term == term, info
        time.sleep(0.1)
    assert cluster.leader(members) == (leader, term)
    assert peers[removed].output().count("removed from the cluster") == 1
