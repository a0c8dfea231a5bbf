"""The counters a peer keeps and the metric families read from them (docs/metrics.md)."""

from __future__ import annotations

import pytest
from test_server import THREE, WALL, Endpoint, rid_at
from zmqraft.core.driver import Lane, Work
from zmqraft.core.jobs import Job, LogWrite
from zmqraft.core.metrics import Family, Histogram, families, quorum_healthy
from zmqraft.core.protocol import messages as m


def by_name(fams: list[Family]) -> dict[str, Family]:
    return {f.name: f for f in fams}


def value(fams: list[Family], name: str, **labels: str) -> float:
    for got, v in by_name(fams)[name].samples:
        if dict(got) == labels:
            return v
    raise KeyError((name, labels))


def test_histogram_buckets_are_prometheus_cumulative() -> None:
    h = Histogram((1.0, 2.0, 5.0))
    for v in (0.5, 1.0, 1.5, 4.0, 9.0):
        h.observe(v)
    assert h.counts == [2, 1, 1, 1] and h.count == 5 and h.sum == pytest.approx(16.0)
    assert h.cumulative() == [("1.0", 2), ("2.0", 3), ("5.0", 4), ("+Inf", 5)]


def test_a_sole_leader_counts_its_election_updates_and_writes() -> None:
    ep = Endpoint()
    for n in range(3):
        ep.update(b"u%d" % n)
    expired = ep.send(m.RequestUpdate(rid_at(WALL - 10 * 24 * 3600), b"old").encode(b""))
    assert m.RequestUpdateReply.decode(expired[-1]).status is m.UpdateStatus.EXPIRED
    ep.send(m.RequestUpdate(b"\x00" * 4 + b"\xff" * 8, b"\x00").encode(b"\x01"))  # wrong secret
    ep.server.receive_router(b"x", [b"\x01"], ep.now, WALL)  # malformed
    ep.driver.loop_round(0.002)
    fams = families(ep.server, ep.now, dropped_sends=4, label="lab")
    assert value(fams, "zmqraft_peer_info", id="a", label="lab") == 1
    assert (
        value(fams, "zmqraft_role", role="leader") == 1 and value(fams, "zmqraft_role", role="follower") == 0
    )
    assert value(fams, "zmqraft_term") >= 1
    node = ep.server.node
    assert value(fams, "zmqraft_commit_index") == node.commit_index == value(fams, "zmqraft_applied_index")
    assert value(fams, "zmqraft_last_index") == node.log.last_index >= 3
    assert value(fams, "zmqraft_first_index") == 1 and value(fams, "zmqraft_snapshot_index") == 0
    assert value(fams, "zmqraft_elections_won") == 1  # a sole member leads at once
    assert value(fams, "zmqraft_leader_changes") == 0  # the first leader it knows is no change
    assert value(fams, "zmqraft_updates_received") == 4
    assert value(fams, "zmqraft_updates_accepted") == 3 == value(fams, "zmqraft_updates_committed")
    assert value(fams, "zmqraft_updates_expired") == 1
    assert value(fams, "zmqraft_request_id_cache_entries") == 3
    assert value(fams, "zmqraft_dropped_sends") == 4
    assert value(fams, "zmqraft_bad_frames") == 1 and value(fams, "zmqraft_wrong_secret_messages") == 1
    assert value(fams, "zmqraft_quorum_healthy") == 1
    storage = by_name(fams)["zmqraft_storage_write_seconds"]
    assert storage.kind == "histogram" and storage.buckets[-1] == (
        "+Inf",
        ep.server.metrics.storage_seconds.count,
    )
    assert storage.buckets[-1][1] >= 3
    batches = by_name(fams)["zmqraft_append_batch_entries"]
    assert batches.buckets[0] == ("1.0", batches.buckets[-1][1])  # one entry per write here
    assert by_name(fams)["zmqraft_event_loop_round_seconds"].buckets[-1] == ("+Inf", 1)
    assert not by_name(fams)["zmqraft_follower_match_index"].samples  # no followers


def test_the_storage_histogram_times_hand_out_to_completion() -> None:
    ep = Endpoint()
    before = ep.server.metrics.storage_seconds.count
    job = Job(999, None, LogWrite(None, 1, []))
    work = Work(Lane.STORAGE, job, 10.0, lambda: None)
    ep.driver._storage_out += 1
    ep.server.node._job_inflight = job  # as if the node had handed it out
    ep.driver.complete(work, None, 10.03, WALL)
    h = ep.server.metrics.storage_seconds
    assert h.count == before + 1 and h.sum == pytest.approx(0.03, abs=1e-9)


def test_a_follower_counts_elections_leader_changes_and_last_heard() -> None:
    ep = Endpoint(THREE)
    node = ep.server.node
    fams = families(ep.server, ep.now, 0)
    assert value(fams, "zmqraft_peer_last_heard_seconds", peer="b") == -1  # never heard
    assert value(fams, "zmqraft_quorum_healthy") == 0
    ep.advance(1.0)  # the election timer runs out: a candidate
    assert ep.server.metrics.elections_started == 1
    term = node.term
    for leader, t in (("b", term), ("c", term + 1)):
        ae = m.AppendEntries(1, leader, t, node.log.last_index, node.log.last_term, 0, ())
        ep.send(ae.encode(b""), routing=leader.encode())
    fams = families(ep.server, ep.now + 0.05, 0)
    assert value(fams, "zmqraft_leader_changes") == 1  # b, then c
    assert value(fams, "zmqraft_elections_won") == 0
    assert value(fams, "zmqraft_peer_last_heard_seconds", peer="c") == pytest.approx(0.05)
    assert value(fams, "zmqraft_quorum_healthy") == 1 and quorum_healthy(ep.server, ep.now + 5) is False
    kinds = [e.kind for e in ep.server.metrics.timeline]
    assert kinds[:2] == ["role", "election"] and kinds.count("leader") == 2


def test_a_leader_reports_each_followers_match_and_lag() -> None:
    ep = Endpoint(THREE)
    ep.advance(1.0)
    for voter in "bc":
        ep.server.receive_peer(voter, m.RequestVoteReply(1, ep.server.node.term, True).encode(), ep.now, WALL)
    ep.pump()
    node = ep.server.node
    assert node.follower_match() == {"b": 0, "c": 0}
    fams = families(ep.server, ep.now, 0)
    assert value(fams, "zmqraft_follower_lag_entries", follower="b") == node.log.last_index
    assert value(fams, "zmqraft_elections_won") == 1
