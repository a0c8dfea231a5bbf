"""CurveZMQ (issue 14), with real peer processes on 127.0.0.1: a curve cluster of mixed
runtimes elects, replicates and survives a leader kill; allowed client keys work, any other
key gets silence (and the peer logs the refused key once); a process with an unknown key, or
a client key, cannot disturb elections; a configuration change to a peer without a key is
refused by the leader.

Keys are made with ``zmq.auth.create_certificates`` in the test's folder; the config file
names them relative to its own folder (``curve.keys: keys``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth
from raft_harness import Client as RawClient
from raft_harness import Cluster, wait_for
from zmqraft.client import AsyncClient, Client, Subscriber
from zmqraft.core.client import RequestTimeoutError
from zmqraft.core.curve_keys import ClientKeys, CurveKeyError, read_certificate, read_key_pair, z85_encode
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(120)


def make_pair(directory: Path, name: str) -> None:
    directory.mkdir(exist_ok=True)
    zmq.auth.create_certificates(str(directory), name)
    os.chmod(directory / f"{name}.key_secret", 0o600)


def curve_root(root: Path, peer_ids: list[str]) -> None:
    """``root/keys``: every peer's pair; ``root/clients``: the allowed client's public
    certificate; ``root/client``: what the client holds (its pair and the peers' ``ID.key``);
    ``root/stranger``: a pair nobody allowed."""
    for peer_id in peer_ids:
        make_pair(root / "keys", peer_id)
    make_pair(root / "client", "client")
    (root / "clients").mkdir()
    shutil.copy(root / "client" / "client.key", root / "clients" / "client.key")
    for peer_id in peer_ids:
        shutil.copy(root / "keys" / f"{peer_id}.key", root / "client" / f"{peer_id}.key")
    make_pair(root / "stranger", "client")


def url_keys(root: Path, cluster: Cluster, name: str = "client", pair_dir: str = "client") -> ClientKeys:
    """A key set keyed by url (for the harness's raw client)."""
    pair = read_key_pair(root / pair_dir, name)
    assert pair.secret is not None
    servers = {
        peer.url: read_certificate(root / "keys" / f"{pid}.key").public for pid, peer in cluster.peers.items()
    }
    return ClientKeys(pair.public, pair.secret, servers)


def curve_cluster(make: Callable[..., Cluster], **options: Any) -> Cluster:
    cluster = make(curve={"keys": "keys", "clients": "clients"}, **options)
    root = cluster.root
    curve_root(root, list(cluster.peers))
    cluster.client.close()
    cluster.client = RawClient(cluster.secret, url_keys(root, cluster))
    return cluster


@pytest.fixture
def mixed(tmp_path: Path) -> Iterator[Cluster]:
    """Three curve peers: asyncio, gevent, asyncio (not parametrized by runtime: both run)."""
    cluster = Cluster(tmp_path, ["1", "2", "3"], curve={"keys": "keys", "clients": "clients"})
    curve_root(tmp_path, ["1", "2", "3"])
    cluster.client.close()
    cluster.client = RawClient(cluster.secret, url_keys(tmp_path, cluster))
    cluster.peers["2"].runtime = "gevent"
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_curve_cluster_of_mixed_runtimes_elects_replicates_and_survives_a_leader_kill(
    mixed: Cluster, tmp_path: Path
) -> None:
    cluster = mixed
    cluster.start()
    leader, term = cluster.leader(timeout=20)
    seeds = [(pid, peer.url) for pid, peer in cluster.peers.items()]
    acked: dict[bytes, int] = {}
    with Client(peers=seeds, secret=cluster.secret, curve=tmp_path / "client") as client:
        for n in range(30):
            data = f"before-{n}".encode()
            acked[data] = client.request_update(data)
        cluster.peers[leader].kill()  # kill -9
        for n in range(30):
            data = f"after-{n}".encode()
            acked[data] = client.request_update(data, timeout=20)
        survivors = [pid for pid in cluster.peers if pid != leader]
        new_leader, new_term = cluster.leader(survivors, timeout=20)
        assert new_leader != leader and new_term > term
        last = max(acked.values())
        cluster.wait_applied(last, survivors)
        entries = {e.index: e.data for e in client.request_entries(0, timeout=20) if hasattr(e, "data")}
    for data, index in acked.items():
        assert entries[index] == data, f"acknowledged update {data!r} lost at {index}"
    assert "gevent" in cluster.peers["2"].runtime


def test_client_keys_allowed_unknown_missing_and_wrong_server_key(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = curve_cluster(cluster_factory)
    root = cluster.root
    cluster.start()
    leader, _ = cluster.leader(timeout=20)
    seeds = [(pid, peer.url) for pid, peer in cluster.peers.items()]

    with Client(peers=seeds, secret=cluster.secret, curve=root / "client") as allowed:
        assert allowed.request_update(b"allowed") >= 1

    async def from_asyncio() -> int:
        async with AsyncClient(peers=seeds, secret=cluster.secret, curve=root / "client") as ac:
            return await ac.request_update(b"from asyncio")

    assert asyncio.run(from_asyncio()) >= 2
    # a seed url whose key cannot be told (keys by peer id, no ids given): said at once
    with pytest.raises(CurveKeyError, match="no CurveZMQ server key for tcp://"):
        Client([cluster.peers[leader].url], secret=cluster.secret, curve=root / "client")

    # no key at all: a plaintext client gets silence from a CURVE server
    plain = Client(peers=seeds, secret=cluster.secret, rpc_timeout=1.5)
    with plain, pytest.raises(RequestTimeoutError):
        plain.request_config()

    # an unknown key: refused by ZAP, logged once per key on every peer it reached
    stranger = ClientKeys.from_directory(root / "client")
    pair = read_key_pair(root / "stranger", "client")
    assert pair.secret is not None
    stranger = ClientKeys(pair.public, pair.secret, stranger.servers)
    for _ in range(2):
        unknown = Client(peers=seeds, secret=cluster.secret, rpc_timeout=1.5, curve=stranger)
        with unknown, pytest.raises(RequestTimeoutError, match="CurveZMQ is on") as refused:
            unknown.request_config()
    assert "refused the handshake" in str(refused.value)
    z85 = z85_encode(pair.public)
    for peer in cluster.peers.values():
        wait_for(f"peer {peer.id} to log the refused key", lambda p=peer: z85 in p.output(), 10)  # type: ignore[misc]
        assert peer.output().count(z85) == 1, "a refused key is logged once"

    # the right client key with a wrong server key: the handshake fails, silence again
    own = ClientKeys.from_directory(root / "client")
    wrong = ClientKeys(own.public, own.secret, {pid: own.public for pid in own.servers})
    mistaken = Client(peers=seeds, secret=cluster.secret, rpc_timeout=1.5, curve=wrong)
    with mistaken, pytest.raises(RequestTimeoutError, match="CurveZMQ is on"):
        mistaken.request_update(b"never")
    # ...which the peers see only as a failed handshake (no key reaches ZAP): logged once.
    # (A plaintext client's mismatch is logged too when the peer notices it first; the
    # client may hang up first, so that one is not waited for.)
    what = "a client with a wrong server key for this peer"
    wait_for(f"a peer to log {what}", lambda: any(what in p.output() for p in cluster.peers.values()), 10)
    for peer in cluster.peers.values():
        assert peer.output().count(what) <= 1

    # a subscriber with an allowed key hears the broadcasts
    with Client(peers=seeds, secret=cluster.secret, curve=root / "client") as writer:
        index = writer.request_update(b"broadcast me")
    with Subscriber(peers=seeds, secret=cluster.secret, curve=root / "client", from_index=index - 1) as sub:
        first = next(iter(sub))
        assert first.data == b"broadcast me"
    assert cluster.leader(timeout=5)[0] == leader


def test_an_unknown_peer_key_or_a_client_key_cannot_disturb_elections(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = curve_cluster(cluster_factory)
    root = cluster.root
    cluster.start()
    leader, term = cluster.leader(timeout=20)
    # an impostor: a key pair of its own, claiming to be peer "1", and an allowed client key
    make_pair(root / "impostor", "1")
    impostor = RawClient(cluster.secret, url_keys(root, cluster, "1", "impostor"))
    as_client = RawClient(cluster.secret, url_keys(root, cluster))
    # and peer 3's real key speaking for peer 1 or 2 (the messages below never name 3)
    as_other_peer = RawClient(cluster.secret, url_keys(root, cluster, "3", "keys"))
    try:
        high = term + 100
        for sender in (impostor, as_client, as_other_peer):
            for peer_id, peer in cluster.peers.items():
                candidate = "1" if peer_id != "1" else "2"
                sender.send(peer.url, m.RequestVote(1, candidate, high, 1 << 20, high).encode(cluster.secret))
                sender.send(peer.url, m.PreVote(2, candidate, high, 1 << 20, high).encode(cluster.secret))
                append = m.AppendEntries(3, candidate, high, 0, 0, 0)
                sender.send(peer.url, append.encode(cluster.secret))
        # the allowed client's requests still work meanwhile, so the messages got there
        assert as_client.log_info(cluster.peers[leader].url, 2.0) is not None
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for peer in cluster.peers.values():
                info = cluster.client.log_info(peer.url, 0.5)
                assert info is not None and info.term == term, "a peer's term moved"
            time.sleep(0.1)
        assert impostor.recv(cluster.peers[leader].url, 0.2) is None
    finally:
        impostor.close()
        as_client.close()
        as_other_peer.close()
    assert cluster.leader(timeout=5) == (leader, term)
    outputs = "".join(peer.output() for peer in cluster.peers.values())
    assert "only a peer's own key may send its peer RPCs" in outputs
    assert "authorized as peer:3" in outputs
    assert z85_encode(read_key_pair(root / "impostor", "1").public) in outputs


def test_a_configuration_change_to_a_peer_without_a_key_is_refused(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = curve_cluster(cluster_factory)
    cluster.start()
    leader, _ = cluster.leader(timeout=20)
    peers = [[pid, peer.url] for pid, peer in cluster.peers.items()]
    reply = cluster.client.config_update(
        cluster.peers[leader].url, [*peers, ["4", "tcp://127.0.0.1:1"]], timeout=10
    )
    assert reply.status is m.ConfigUpdateStatus.ERROR
    assert reply.error_name == "CurveKeyError"
    assert "no CurveZMQ public key for peer 4" in (reply.error_message or "")
    info = cluster.client.config(cluster.peers[leader].url)
    assert info is not None and [p for p, _ in info.peers] == ["1", "2", "3"]
