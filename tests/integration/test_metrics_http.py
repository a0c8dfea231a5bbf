"""Prometheus metrics and ``GET /status`` of real peers (both runtimes), scraped over HTTP
from a live cluster: the web monitor's ``/metrics``, the metrics-only endpoint
(``metrics.enable``), and the whole cluster as JSON in one request."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families
from raft_harness import Cluster, wait_for
from test_webmonitor_http import get, listening
from zmqraft.client import PeerClient

pytestmark = pytest.mark.timeout(90)


def scrape(base: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``name -> {sorted labels: value}`` of every sample (counters under ``_total``)."""
    status, headers, body = get(base, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def one(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


def test_metrics_of_a_live_cluster(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(web=True, metrics=True, label="metrics")
    cluster.start()
    leader, term = cluster.leader()
    for peer in cluster.peers.values():
        assert peer.www is not None and peer.metrics is not None
        wait_for("the web monitors", lambda url=peer.www: listening(url), 10.0)
    indexes = []
    with PeerClient(cluster.peers[leader].url, secret=cluster.secret, timeout=2.0) as client:
        for n in range(20):
            indexes.append(client.request_update(b"update %d" % n))
    cluster.wait_applied(indexes[-1])
    www, alone = cluster.peers[leader].www, cluster.peers[leader].metrics
    assert www is not None and alone is not None

    # what the peer that took the updates counted (whatever happened to its leadership since)
    samples = scrape(www)
    assert one(samples, "zmqraft_peer_info", id=leader, label="metrics") == 1
    assert one(samples, "zmqraft_updates_received_total") >= 20
    assert (
        one(samples, "zmqraft_updates_accepted_total")
        == 20
        == one(samples, "zmqraft_updates_committed_total")
    )
    assert one(samples, "zmqraft_updates_expired_total") == 0
    assert (
        one(samples, "zmqraft_elections_won_total") >= 1
        and one(samples, "zmqraft_elections_started_total") >= 1
    )
    if one(samples, "zmqraft_term") == term:  # no election since (a loaded machine may have had one)
        assert one(samples, "zmqraft_elections_won_total") == 1
        assert one(samples, "zmqraft_leader_changes_total") == 0
    assert one(samples, "zmqraft_request_id_cache_entries") >= 20

    # the leader's view, from the peer that leads now
    def leader_view() -> tuple[str, dict[str, dict[tuple[tuple[str, str], ...], float]]] | None:
        now_leader, now_term = cluster.leader()
        url = cluster.peers[now_leader].www
        assert url is not None
        got = scrape(url)
        others = [p for p in cluster.peers if p != now_leader]
        in_term = one(got, "zmqraft_role", role="leader") == 1 and one(got, "zmqraft_term") == now_term
        caught_up = in_term and all(
            one(got, "zmqraft_follower_match_index", follower=p) >= indexes[-1] for p in others
        )
        return (now_leader, got) if caught_up else None

    now_leader, view = wait_for("the leader's view", leader_view, 10.0)
    assert one(view, "zmqraft_commit_index") >= indexes[-1]
    assert one(view, "zmqraft_applied_index") >= indexes[-1]
    assert one(view, "zmqraft_last_index") >= indexes[-1] and one(view, "zmqraft_first_index") == 1
    assert one(view, "zmqraft_snapshot_index") == 0 and one(view, "zmqraft_snapshot_size_bytes") >= 0
    assert one(view, "zmqraft_quorum_healthy") == 1
    followers = sorted(p for p in cluster.peers if p != now_leader)
    for follower in followers:
        assert one(view, "zmqraft_follower_lag_entries", follower=follower) >= 0
        assert 0 <= one(view, "zmqraft_peer_last_heard_seconds", peer=follower) < 2.0
    assert one(samples, "zmqraft_storage_write_seconds_count") >= 20 / 2  # group commit may merge some
    assert one(samples, "zmqraft_storage_write_seconds_bucket", le="+Inf") == one(
        samples, "zmqraft_storage_write_seconds_count"
    )
    assert one(samples, "zmqraft_append_batch_entries_sum") >= 20
    assert one(samples, "zmqraft_event_loop_round_seconds_count") > 0
    assert one(samples, "zmqraft_dropped_sends_total") >= 0 and one(samples, "zmqraft_bad_frames_total") == 0

    # the same from the metrics-only endpoint; a follower's view
    assert one(scrape(alone), "zmqraft_peer_info", id=leader, label="metrics") == 1
    follower = cluster.peers[followers[0]]
    assert follower.metrics is not None
    theirs = scrape(follower.metrics)
    assert one(theirs, "zmqraft_role", role="follower") == 1 and one(theirs, "zmqraft_quorum_healthy") == 1
    assert (
        one(theirs, "zmqraft_applied_index") >= indexes[-1] and "zmqraft_follower_match_index" not in theirs
    )
    assert 0 <= one(theirs, "zmqraft_peer_last_heard_seconds", peer=now_leader) < 2.0
    assert get(follower.metrics, "/other")[0] == 404

    # a bad frame on the ROUTER is counted
    cluster.client.send(follower.url, [b"\x01", b"\x02"])
    wait_for(
        "the bad frame counted",
        lambda: one(scrape(follower.metrics or ""), "zmqraft_bad_frames_total") == 1,
        5.0,
    )


def test_status_is_the_whole_cluster_in_one_request(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(web=True, label="status")
    cluster.start()
    leader, term = cluster.leader()
    with PeerClient(cluster.peers[leader].url, secret=cluster.secret, timeout=2.0) as client:
        index = client.request_update(b"x")
    cluster.wait_applied(index)
    asked = next(p for p in sorted(cluster.peers) if p != leader)
    www = cluster.peers[asked].www
    assert www is not None
    wait_for("the web monitor", lambda: listening(www), 10.0)
    leader, term = cluster.leader()  # again: a loaded machine may have had an election since
    status, headers, body = get(www, "/status")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    cluster_status = json.loads(body)
    assert cluster_status["peers"] == [[p, cluster.peers[p].url] for p in "123"]  # the original's keys
    assert cluster_status["label"] == "status" and cluster_status["id"] == asked
    assert (cluster_status["leader"], cluster_status["term"]) == (leader, term)
    assert cluster_status["quorumHealthy"] is True and cluster_status["config"]["joint"] is False
    members = {m["id"]: m for m in cluster_status["members"]}
    assert set(members) == set("123")
    assert all(m["reachable"] and m["commitIndex"] >= index and m["lag"] == 0 for m in members.values())
    assert members[leader]["state"] == "Leader" and members[asked]["state"] == "Follower"
    assert 0 <= members[leader]["lastHeard"] < 1.0
    assert any(e["kind"] == "leader" for e in cluster_status["events"])
    assert cluster_status["commitHistory"]

    # several scripts (or pages) at once
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: get(www, "/status"), range(8)))
    assert all(status == 200 for status, _, _ in answers)
    assert all(all(m["reachable"] for m in json.loads(body)["members"]) for _, _, body in answers)

    # a peer that is down: unreachable, answered within the query timeout
    down = next(p for p in "123" if p not in (leader, asked))
    cluster.peers[down].kill()
    began = time.monotonic()
    members = {m["id"]: m for m in json.loads(get(www, "/status")[2])["members"]}
    assert time.monotonic() - began < 2.0
    assert members[down]["reachable"] is False and members[down]["lag"] is None
