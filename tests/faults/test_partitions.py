"""Network partitions between real peer processes, each in a network namespace of its own.

Topology: a bridge in a hub namespace; every peer in its own namespace, joined to the bridge by
a veth pair, at an address of a /24 the test picks; the test process (the client) joins the
bridge from the root namespace by one more veth pair.  A cut is a blackhole route: inside a's
namespace, ``ip route add blackhole B/32`` drops everything a sends to b, while b's packets still
reach a (one direction).  Over TCP that is also what a one-way cut does to ZeroMQ: a's requests
and its replies to b stop; b's messages still arrive on the connections already open.  (No
iptables, tc filters or netem here: blackhole routes need only ``ip``.)

Every test writes through the majority side during the cut, sends updates to the cut-off side
too, heals, and then checks that every acknowledged update is in the log exactly once at its
index and that every peer's stored log is the same.  Then what the extensions promise:

* check-quorum: a leader cut off from everyone steps down within two election timeouts;
* pre-vote: a peer cut off one way, either way, or from the leader only, never changes the
  term (neither while cut off nor when it comes back).

Needs root and ``ip netns`` (skipped with the reason otherwise); namespaces, links and peer
processes are removed by the fixture, also when a test fails.  About 30 s in all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from raft_harness import Client, Cluster, check_acknowledged, new_rid, stored_log, wait_for
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(120)

ELECTION_MAX = 0.3  # electionTimeoutMax of the peers (the default), seconds


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"zrprobe{os.getpid()}"
    try:
        result = _ip("netns", "add", probe, check=False)
        if result.returncode != 0:
            return f"`ip netns add` fails: {result.stderr.strip()}"
        bridge = _ip("netns", "exec", probe, "ip", "link", "add", "zrbr", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"no bridge devices: {bridge.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


class Lab:
    """The namespaces, the bridge and the cuts of one test (names short: links <= 15 chars)."""

    def __init__(self, ids: list[str]) -> None:
        self.tag = f"zr{os.getpid() % 1000}{random.randrange(100):02d}"
        self.net = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
        self.hub = f"{self.tag}hub"
        self.ns = {p: f"{self.tag}p{p}" for p in ids}
        self.addr = {p: f"{self.net}.{10 + n}" for n, p in enumerate(ids)}
        self.namespaces: list[str] = []
        self.root_link: str | None = None
        self.cuts: set[tuple[str, str]] = set()

    def up(self) -> None:
        hub = self.hub
        _ip("netns", "add", hub)
        self.namespaces.append(hub)
        _ip("netns", "exec", hub, "ip", "link", "add", "br0", "type", "bridge")
        _ip("netns", "exec", hub, "ip", "link", "set", "br0", "up")
        for n, (peer, ns) in enumerate(self.ns.items()):
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            inner, outer = f"{self.tag}v{n}", f"{self.tag}h{n}"
            _ip("link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", hub)
            _ip("netns", "exec", hub, "ip", "link", "set", outer, "master", "br0", "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{self.addr[peer]}/24", "dev", inner)
            _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
        self.root_link = f"{self.tag}c"
        _ip("link", "add", self.root_link, "type", "veth", "peer", "name", f"{self.tag}hc", "netns", hub)
        _ip("netns", "exec", hub, "ip", "link", "set", f"{self.tag}hc", "master", "br0", "up")
        _ip("addr", "add", f"{self.net}.1/24", "dev", self.root_link)
        _ip("link", "set", self.root_link, "up")

    def down(self) -> None:
        if self.root_link is not None:
            _ip("link", "del", self.root_link, check=False)
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)

    def cut(self, src: str, dst: str) -> None:
        """Drop everything ``src`` sends to ``dst`` (``dst`` still reaches ``src``)."""
        _ip("netns", "exec", self.ns[src], "ip", "route", "add", "blackhole", f"{self.addr[dst]}/32")
        self.cuts.add((src, dst))

    def heal(self) -> None:
        for src, dst in sorted(self.cuts):
            _ip("netns", "exec", self.ns[src], "ip", "route", "del", "blackhole", f"{self.addr[dst]}/32")
        self.cuts.clear()


Make = Callable[..., tuple[Cluster, Lab]]


@pytest.fixture
def netns_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Make]:
    """``make(**raft_options) -> (cluster, lab)``: peers 1, 2, 3 in namespaces of their own."""
    reason = _netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    made: list[tuple[Cluster, Lab]] = []

    def make(**options: Any) -> tuple[Cluster, Lab]:
        ids = ["1", "2", "3"]
        cluster = Cluster(tmp_path, ids, **options)
        lab = Lab(ids)
        made.append((cluster, lab))
        lab.up()
        config = json.loads(cluster.peers[ids[0]].config.read_text())
        for entry in config["raft"]["peers"]:
            peer = cluster.peers[entry["id"]]
            port = peer.url.rsplit(":", 1)[1]
            peer.url = entry["url"] = f"tcp://{lab.addr[peer.id]}:{port}"
            peer.prefix = ["ip", "netns", "exec", lab.ns[peer.id]]
        cluster.peers[ids[0]].config.write_text(json.dumps(config, indent=1))
        cluster.start()
        return cluster, lab

    yield make
    failed = getattr(request.node, "rep_call", None)
    for cluster, lab in made:
        if failed is not None and failed.failed:
            print(cluster.dump())
        cluster.close()
        lab.down()


def write(cluster: Cluster, ids: list[str], prefix: str, count: int) -> dict[bytes, tuple[bytes, int]]:
    """``count`` updates through whichever of ``ids`` leads."""
    urls = [cluster.peers[p].url for p in ids]
    client = cluster.client
    return client.pipelined_updates(
        lambda: client.find_leader(urls), [f"{prefix}{n}".encode() for n in range(count)], timeout=30
    )


def send_stale(client: Client, url: str, secret: bytes) -> dict[bytes, bytes]:
    """Updates sent to a peer on the wrong side of a cut: whatever it does with them, none may
    be acknowledged there nor committed twice later."""
    rids = {new_rid(): f"stale {n}".encode() for n in range(5)}
    for rid, data in rids.items():
        client.send(url, m.RequestUpdate(rid, data).encode(secret))
    return rids


def finish(cluster: Cluster, acked: dict[bytes, tuple[bytes, int]], stale: dict[bytes, bytes]) -> None:
    """The stale updates re-sent (same ids) to the leader commit once; then every acknowledged
    update sits once at its index, and every peer stores the same log."""
    leader, _ = cluster.leader(timeout=15)
    client = cluster.client
    urls = [cluster.peers[p].url for p in cluster.members]
    for rid, data in stale.items():

        def commit(rid: bytes = rid, data: bytes = data) -> int | None:
            return client.update(client.find_leader(urls), data, rid)

        acked[rid] = (data, wait_for(f"{data!r} to commit", commit, 15))
    leader, _ = cluster.leader(timeout=15)
    entries, _ = client.entries(cluster.peers[leader].url, 0)
    check_acknowledged(entries, acked)
    last = max(index for _, index in acked.values())
    cluster.wait_applied(last, timeout=30)
    cluster.stop()
    logs = {p: stored_log(cluster.data_dir(p), last) for p in cluster.members}
    for peer, (log, first, applied) in logs.items():
        assert first == 1 and applied >= last, peer
        assert log == [e for _, e in entries[:last]], f"peer {peer} holds another log"


def terms(cluster: Cluster) -> dict[str, int | None]:
    infos = {p: cluster.client.log_info(cluster.peers[p].url, 0.3) for p in cluster.members}
    return {p: None if i is None else i.term for p, i in infos.items()}


def test_a_leader_cut_off_steps_down_and_the_majority_goes_on(netns_cluster: Make) -> None:
    cluster, lab = netns_cluster(preVote=True)
    leader, term = cluster.leader(timeout=15)
    others = [p for p in cluster.members if p != leader]
    acked = write(cluster, cluster.members, "before ", 100)
    # a new leader gives its followers an election timeout of slack (their replies may wait
    # for a slow disk); prompt replies wear it down within about 1.5 s (raft/leader.py)
    time.sleep(1.5)
    assert cluster.leader(timeout=5) == (leader, term)

    for other in others:  # both ways; the client (root namespace) still reaches everyone
        lab.cut(leader, other)
        lab.cut(other, leader)
    cut_at = time.monotonic()
    stale = send_stale(cluster.client, cluster.peers[leader].url, cluster.secret)

    def stepped_down() -> float | None:
        info = cluster.client.log_info(cluster.peers[leader].url, 0.2)
        return time.monotonic() - cut_at if info is not None and not info.is_leader else None

    took = wait_for("the cut-off leader to step down", stepped_down, 5, interval=0.01)
    assert took <= 2 * ELECTION_MAX + 0.1, f"check-quorum: still leading {took:.2f}s after the cut"
    new_leader, new_term = cluster.leader(others, timeout=10)
    assert new_term > term
    acked.update(write(cluster, others, "during ", 100))

    lab.heal()
    assert cluster.leader(timeout=15)[0] == new_leader  # it rejoins as a follower
    acked.update(write(cluster, cluster.members, "after ", 50))
    finish(cluster, acked, stale)


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
def test_a_one_way_cut_changes_no_term(netns_cluster: Make, direction: str) -> None:
    """A follower that cannot send (outbound) keeps hearing its leader; one that cannot hear
    (inbound) asks for pre-votes nobody grants.  Neither raises the term, then or on return."""
    cluster, lab = netns_cluster(preVote=True)
    leader, term = cluster.leader(timeout=15)
    follower = next(p for p in cluster.members if p != leader)
    rest = [p for p in cluster.members if p != follower]
    acked = write(cluster, cluster.members, "before ", 100)

    for other in rest:
        if direction == "outbound":
            lab.cut(follower, other)
        else:
            lab.cut(other, follower)
    stale = send_stale(cluster.client, cluster.peers[follower].url, cluster.secret)
    acked.update(write(cluster, rest, "during ", 100))
    deadline = time.monotonic() + 4 * ELECTION_MAX
    while time.monotonic() < deadline:
        assert cluster.leader(rest, timeout=5) == (leader, term)
    lab.heal()
    acked.update(write(cluster, cluster.members, "after ", 50))
    assert cluster.leader(timeout=15) == (leader, term)
    assert set(terms(cluster).values()) == {term}
    finish(cluster, acked, stale)


def test_a_cut_between_the_leader_and_one_follower_changes_no_term(netns_cluster: Make) -> None:
    """The follower hears nobody it could follow, but its pre-votes find the other follower
    still hearing the leader: no election, and the cluster writes on with two of three."""
    cluster, lab = netns_cluster(preVote=True)
    leader, term = cluster.leader(timeout=15)
    follower = next(p for p in cluster.members if p != leader)
    lab.cut(leader, follower)
    lab.cut(follower, leader)
    acked = write(cluster, cluster.members, "during ", 150)
    deadline = time.monotonic() + 4 * ELECTION_MAX
    while time.monotonic() < deadline:
        assert cluster.leader([p for p in cluster.members if p != follower], timeout=5) == (leader, term)
    info = cluster.client.log_info(cluster.peers[follower].url)
    assert info is not None and info.term == term and not info.is_leader
    lab.heal()
    acked.update(write(cluster, cluster.members, "after ", 50))
    assert cluster.leader(timeout=15) == (leader, term)
    finish(cluster, acked, {})
