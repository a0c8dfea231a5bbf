"""The single-peer clients, the PeerSubscriber and the Subscriber's writing side against
real peer processes (spec/client.md §4, §7, §8).

Clusters come from the integration harness's ``cluster_factory`` (real ``zmqraft.asyncio``
processes, stopped by the fixture); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from zmqraft.client import (
    AsyncPeerClient,
    BroadcastTimeout,
    Client,
    Entry,
    NotLeaderError,
    PeerClient,
    PeerSubscriber,
    Pulse,
    RequestTimeoutError,
    Subscriber,
)

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]


def started(cluster_factory: Callable[..., Any], **options: Any) -> tuple[Any, str, str]:
    """A running cluster, its leader and one follower."""
    cluster = cluster_factory(**options)
    cluster.start()
    leader, _ = cluster.leader()
    follower = next(p for p in cluster.members if p != leader)
    return cluster, leader, follower


def seeds(cluster: Any) -> list[str]:
    return [cluster.peers[p].url for p in cluster.members]


def test_peer_client_talks_to_one_peer_only(cluster_factory: Callable[..., Any]) -> None:
    cluster, leader, follower = started(cluster_factory)
    with PeerClient(cluster.peers[leader].url, secret=cluster.secret) as peer:
        indexes = [peer.request_update(f"p{n}".encode()) for n in range(10)]
        assert indexes == sorted(indexes) and len(set(indexes)) == 10
        entries = [e for e in peer.request_entries(indexes[0] - 1) if isinstance(e, Entry)]
        assert [e.data for e in entries if e.is_state][:10] == [f"p{n}".encode() for n in range(10)]
        config = peer.request_config()
        assert config.is_leader and config.url == cluster.peers[leader].url
        assert peer.request_broadcast_url() == cluster.peers[leader].pub
        info = peer.request_log_info()
        assert info.is_leader and info.commit_index >= indexes[-1]

    with PeerClient(cluster.peers[follower].url, secret=cluster.secret, timeout=1.0) as peer:
        with pytest.raises(NotLeaderError) as err:
            peer.request_update(b"to a follower")
        assert err.value.leader_id == leader
        with pytest.raises(NotLeaderError) as err:
            list(peer.request_entries(0))
        assert err.value.leader_id == leader and err.value.resume is not None
        with pytest.raises(NotLeaderError):
            peer.config_update(cluster.urls(cluster.members))
        info = peer.request_log_info()  # reads are answered by any peer
        assert not info.is_leader and info.leader_id == leader
        assert info.url == cluster.peers[follower].url
        assert peer.request_broadcast_url() == cluster.peers[follower].pub
        assert peer.peers == () and peer.leader_id is None  # it learns nothing, follows nothing

    # nothing reached the log from the follower: the leader's log has only the 10
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=10.0) as client:
        datas = [e.data for e in client.request_entries(0) if isinstance(e, Entry) and e.is_state]
    assert b"to a follower" not in datas and len(datas) == 10


def test_peer_client_of_a_silent_peer_times_out_once(cluster_factory: Callable[..., Any]) -> None:
    cluster, leader, _ = started(cluster_factory)
    url = cluster.peers[leader].url
    cluster.peers[leader].kill()
    with PeerClient(url, secret=cluster.secret, timeout=0.3) as peer:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError, match=f"no answer from {url}"):
            peer.request_update(b"nobody")
        assert time.monotonic() - began < 3.0  # one attempt, not a retry loop


def test_async_peer_client(cluster_factory: Callable[..., Any]) -> None:
    cluster, leader, follower = started(cluster_factory)

    async def main() -> tuple[list[int], list[Entry]]:
        async with AsyncPeerClient(cluster.peers[leader].url, secret=cluster.secret) as peer:
            indexes = list(await asyncio.gather(*(peer.request_update(f"a{n}".encode()) for n in range(20))))
            got = [e async for e in peer.request_entries(0) if isinstance(e, Entry) and e.is_state]
        async with AsyncPeerClient(cluster.peers[follower].url, secret=cluster.secret) as other:
            with pytest.raises(NotLeaderError):
                await other.request_update(b"no")
        return indexes, got

    indexes, got = asyncio.run(asyncio.wait_for(main(), 30.0))
    assert sorted(e.index for e in got) == sorted(indexes)
    assert {e.data for e in got} == {f"a{n}".encode() for n in range(20)}


def test_subscriber_writes_and_reads_its_own_updates(cluster_factory: Callable[..., Any]) -> None:
    cluster, _, _ = started(cluster_factory)
    with Subscriber(seeds(cluster), secret=cluster.secret) as sub:
        assert sub.is_fresh and sub.last_update_index == 0
        written = [sub.request_update(f"w{n}".encode()) for n in range(30)]
        assert sub.last_update_index == max(written)
        got: list[Entry] = []
        deadline = time.monotonic() + 15.0
        while not sub.is_fresh:
            assert time.monotonic() < deadline, "the subscriber never read its own updates"
            item = sub.read(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(item, Entry):
                got.append(item)
        assert [e.index for e in got] == written
        assert [e.data for e in got] == [f"w{n}".encode() for n in range(30)]


def test_async_subscriber_writes_while_reading(cluster_factory: Callable[..., Any]) -> None:
    cluster, _, _ = started(cluster_factory)
    datas = [f"aw{n}".encode() for n in range(50)]

    async def main() -> tuple[list[int], list[Entry], bool]:
        got: list[Entry] = []
        with Subscriber(seeds(cluster), secret=cluster.secret) as sub:

            async def write() -> list[int]:
                return [await sub.arequest_update(d) for d in datas]

            writer = asyncio.ensure_future(write())
            async for item in sub:
                assert isinstance(item, Entry)
                got.append(item)
                if len(got) == len(datas):
                    break
            indexes = await writer
            return indexes, got, sub.is_fresh

    indexes, got, fresh = asyncio.run(asyncio.wait_for(main(), 30.0))
    assert [e.index for e in got] == indexes and [e.data for e in got] == datas
    assert fresh


def test_peer_subscriber_pulses_and_entries_until_the_peer_stops_leading(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster, leader, _ = started(cluster_factory)
    pulses: list[Pulse] = []
    timeouts: list[BroadcastTimeout] = []
    publishers: list[str] = []
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=20.0) as client:
        first = [client.request_update(f"s{n}".encode()) for n in range(5)]

    with PeerSubscriber(
        cluster.peers[leader].url,
        secret=cluster.secret,
        broadcast_timeout=0.5,
        on_pulse=pulses.append,
        on_timeout=timeouts.append,
        on_publisher=publishers.append,
    ) as sub:
        got: list[Entry] = []
        deadline = time.monotonic() + 10.0
        while len(got) < 5:
            assert time.monotonic() < deadline, f"only {len(got)} entries"
            item = sub.read(timeout=1.0)
            if isinstance(item, Entry):
                got.append(item)
        assert [e.index for e in got] == first
        poll_until(lambda: pulses, sub, 5.0, "a pulse (the leader's heartbeat)")
        assert pulses[-1].last_index >= first[-1]
        assert sub.pub_url == cluster.peers[leader].pub and publishers == [sub.pub_url]

        # freeze the leader until the others elect a new one, then let it learn it lost
        proc = cluster.peers[leader].proc
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            others = [p for p in cluster.members if p != leader]
            new_leader, _ = cluster.leader(others, timeout=15.0)
            assert new_leader != leader
            poll_until(lambda: timeouts, sub, 5.0, "a broadcast timeout")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15.0
        rest = []
        while not sub.ended:
            assert time.monotonic() < deadline, "the peer subscriber did not end"
            try:
                rest.append(next(sub))
            except StopIteration:
                break
        assert sub.ended and not sub.closed
        assert all(isinstance(e, Entry) and e.index > first[-1] for e in rest)
    assert sub.closed


def test_peer_subscriber_pulses_only(cluster_factory: Callable[..., Any]) -> None:
    cluster, leader, _ = started(cluster_factory)
    pulses: list[Pulse] = []
    with PeerSubscriber(
        cluster.peers[leader].url, secret=cluster.secret, from_index=None, on_pulse=pulses.append
    ) as sub:
        poll_until(lambda: pulses, sub, 5.0, "a heartbeat (subscribed)")
        with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=20.0) as client:
            index = client.request_update(b"pulse me")
        poll_until(lambda: any(p.last_index >= index for p in pulses), sub, 5.0, "the update's pulse")
        carrying = [p for p in pulses if p.entries]
        assert carrying and carrying[-1].last_index == index
        assert sub.read(timeout=0.2) is None  # no entries are ever read


def poll_until(check: Callable[[], Any], sub: Subscriber, timeout: float, what: str) -> None:
    """Drive ``sub`` (its callbacks fire only while it is read) until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        left = deadline - time.monotonic()
        assert left > 0, f"timed out after {timeout} s waiting for {what}"
        sub.read(timeout=min(left, 0.1))
