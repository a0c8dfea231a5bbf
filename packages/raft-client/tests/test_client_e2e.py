"""Client, AsyncClient and Subscriber against real peer processes (spec/client.md).

Every cluster comes from the integration harness's ``cluster_factory`` (real
``python -m zmqraft.asyncio`` processes, killed by the fixture); every wait is a poll with a
deadline.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
from zmqraft.client import (
    AsyncClient,
    Client,
    ClientClosedError,
    ConfigUpdateError,
    Entry,
    EntryType,
    RequestTimeoutError,
    SnapshotChunk,
    Subscriber,
)

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]


def started(cluster_factory: Callable[..., Any], **options: Any) -> Any:
    cluster = cluster_factory(**options)
    cluster.start()
    cluster.leader()
    return cluster


def seeds(cluster: Any) -> list[str]:
    return [peer.url for peer in cluster.peers.values() if peer.id in cluster.members]


def state_log(client: Client) -> list[Entry]:
    return [e for e in client.request_entries(0) if isinstance(e, Entry) and e.is_state]


# ---- every method ---------------------------------------------------------------------------


def test_client_every_method(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    leader, term = cluster.leader()
    with Client(seeds(cluster)[::-1], secret=cluster.secret, rpc_timeout=10.0) as client:
        config = client.request_config()
        assert config.leader_id == leader and config.is_leader
        assert config.urls == cluster.urls(cluster.members)
        assert client.leader_id == leader and client.peers == config.peers

        info = client.request_log_info()
        assert info.is_leader and info.leader_id == leader and info.term >= term
        follower = next(p for p in cluster.members if p != leader)
        pinned = client.request_log_info(url=cluster.peers[follower].url)
        assert not pinned.is_leader and pinned.leader_id == leader
        assert client.request_log_info(any_peer=True).leader_id == leader

        indexes = [client.request_update(f"data {n}".encode()) for n in range(20)]
        assert indexes == sorted(indexes) and len(set(indexes)) == 20
        # the same request id is applied once: a retry gets the first answer back
        rid = bytes.fromhex("5956dc8826f27e10dcccab20")
        rid = int(time.time()).to_bytes(4, "big") + rid[4:]
        first = client.request_update(b"once", request_id=rid)
        assert client.request_update(b"once", request_id=rid.hex()) == first

        log = state_log(client)
        by_index = {e.index: e for e in log}
        assert [by_index[i].data for i in indexes] == [f"data {n}".encode() for n in range(20)]
        assert [e.request_id for e in log].count(rid) == 1
        assert by_index[first].data == b"once" and by_index[first].type is EntryType.STATE

        # count and prev_index bound the stream; closing it early is fine
        window = list(client.request_entries(indexes[4], 3))
        assert [e.index for e in window] == [indexes[4] + 1, indexes[4] + 2, indexes[4] + 3]
        with client.request_entries(0) as stream:
            assert next(stream).index == 1
        info = client.request_log_info()
        assert info.last_applied >= first and info.commit_index >= first

        pub = client.request_broadcast_url()
        assert pub == cluster.peers[leader].pub
        assert client.request_broadcast_url(url=cluster.peers[follower].url) == cluster.peers[follower].pub

        # ConfigUpdate: a list that changes nothing is rejected with the server's reason
        with pytest.raises(ConfigUpdateError, match="no change in cluster membership"):
            client.config_update(config.peers)
        # nothing answers an unknown custom request: the deadline ends it
        with pytest.raises(RequestTimeoutError, match=r"within 1\.2 s"):
            client.request(b"zz", b"arg", timeout=1.2)

    with pytest.raises(ClientClosedError):
        client.request_log_info()


def test_config_update_adds_and_removes_a_peer(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory, spare=["4"])
    cluster.start(["4"])
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=20.0) as client:
        old = client.request_config().peers
        new = (*old, ("4", cluster.peers["4"].url))
        index = client.config_update(new)
        assert index > 0
        assert client.request_config().peers == new
        assert client.peers == new  # the client follows the new configuration

        def applied_on_4() -> bool:
            info = client.request_log_info(url=cluster.peers["4"].url, timeout=0.5)
            return info.last_applied >= index

        poll(applied_on_4, 10.0, "peer 4 to catch up")
        client.request_update(b"after joining")
        assert client.config_update(old) > index
        assert client.request_config().peers == old


def test_wrong_secret_looks_like_timeouts(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    with (
        Client(seeds(cluster), secret="not the cluster's", rpc_timeout=1.0, timeout=0.3) as client,
        pytest.raises(RequestTimeoutError, match="a wrong secret"),
    ):
        client.request_update(b"x")


def test_async_client_every_method(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()

    async def main() -> None:
        async with AsyncClient(seeds(cluster), secret=cluster.secret, rpc_timeout=10.0) as client:
            config = await client.request_config()
            assert config.leader_id == leader
            info = await client.request_log_info()
            assert info.is_leader
            # many updates at once on one client
            indexes = await asyncio.gather(*(client.request_update(f"a{n}".encode()) for n in range(50)))
            assert len(set(indexes)) == 50
            seen = [e async for e in client.request_entries(0) if isinstance(e, Entry) and e.is_state]
            assert {e.index: e.data for e in seen if e.index in indexes} == {
                i: f"a{n}".encode() for n, i in enumerate(indexes)
            }
            async with client.request_entries(0, 5) as stream:
                assert [e.index async for e in stream] == [1, 2, 3, 4, 5]
            assert await client.request_broadcast_url() == cluster.peers[leader].pub
            with pytest.raises(ConfigUpdateError):
                await client.config_update(config.peers)
            with pytest.raises(RequestTimeoutError):
                await client.request(b"zz", timeout=0.8)
            # a cancelled request is forgotten cleanly
            task = asyncio.ensure_future(client.request(b"zz"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await client.request_update(b"still fine") > max(indexes)
        with pytest.raises(ClientClosedError):
            await client.request_log_info()

    asyncio.run(main())


def test_client_under_gevent(cluster_factory: Callable[..., Any]) -> None:
    gevent = pytest.importorskip("gevent")
    green = pytest.importorskip("zmq.green")
    cluster = started(cluster_factory)
    ticks = []

    def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    context = green.Context()
    try:
        background = gevent.spawn(ticker)
        with Client(seeds(cluster), secret=cluster.secret, context=context, rpc_timeout=10.0) as client:
            indexes = [client.request_update(f"g{n}".encode()) for n in range(20)]
            # a request that waits out its deadline must let the other greenlet run
            before = len(ticks)
            with pytest.raises(RequestTimeoutError):
                client.request(b"zz", timeout=0.5)
            assert len(ticks) - before >= 10
            assert [e.data for e in state_log(client) if e.index in indexes] == [
                f"g{n}".encode() for n in range(20)
            ]
        background.kill()
    finally:
        context.term()


# ---- faults -------------------------------------------------------------------------------


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (RequestTimeoutError, zmq.ZMQError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_leader_killed_pending_updates_complete_exactly_once(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()

    async def main() -> list[tuple[bytes, int]]:
        async with AsyncClient(seeds(cluster), secret=cluster.secret, rpc_timeout=30.0) as client:
            await client.request_config()
            datas = [f"during failover {n}".encode() for n in range(100)]
            tasks = [asyncio.ensure_future(client.request_update(d)) for d in datas]
            await asyncio.sleep(0.02)  # the requests are on their way (some committed)
            cluster.peers[leader].kill()
            indexes = await asyncio.gather(*tasks)
            # all of them may have committed before the kill took effect: one more update
            # after it must find the new leader either way
            datas.append(b"after the kill")
            indexes.append(await client.request_update(datas[-1]))
            assert client.leader_id != leader
            return list(zip(datas, indexes, strict=True))

    done = asyncio.run(main())
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=10.0) as client:
        log = state_log(client)
    by_data: dict[bytes, list[int]] = {}
    for e in log:
        by_data.setdefault(e.data, []).append(e.index)
    for data, index in done:
        assert by_data[data] == [index], f"{data!r} committed at {by_data.get(data)}, reported {index}"


def test_leader_killed_mid_stream_resumes(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()
    datas = [n.to_bytes(4, "big") * 256 for n in range(1500)]  # 1 KiB each: ~24 messages
    writer = cluster.client
    done = writer.pipelined_updates(lambda: cluster.peers[cluster.leader()[0]].url, datas, window=64)
    last = max(index for _, index in done.values())
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=30.0) as client:
        poll(lambda: client.request_log_info().last_applied >= last, 10.0, "the leader to apply")
        # a small buffer keeps the stream mid-way: it pauses until we read
        stream = client.request_entries(0, high_water=64 * 1024)
        got = [next(stream)]
        cluster.peers[leader].kill()
        got.extend(stream)
        assert client.leader_id != leader
    assert [e.index for e in got] == list(range(1, len(got) + 1))
    state = [e.data for e in got if isinstance(e, Entry) and e.is_state]
    assert state == datas


# ---- Subscriber ---------------------------------------------------------------------------


def write_in_background(
    cluster: Any, datas: list[bytes], pause: float = 0.0
) -> tuple[threading.Thread, dict]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=30.0) as client:
                result["indexes"] = []
                for data in datas:
                    result["indexes"].append(client.request_update(data))
                    if pause:
                        time.sleep(pause)
        except BaseException as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def read_until(sub: Subscriber, want: set[bytes], timeout: float) -> list[Entry]:
    got: list[Entry] = []
    deadline = time.monotonic() + timeout
    while not want.issubset(e.data for e in got):
        left = deadline - time.monotonic()
        if left <= 0:
            missing = len(want - {e.data for e in got})
            raise AssertionError(f"subscriber: {missing} entries missing after {timeout} s")
        item = sub.read(timeout=left)
        if item is not None:
            assert isinstance(item, Entry)
            got.append(item)
    return got


def check_once_in_order(got: list[Entry], first: int = 1) -> None:
    indexes = [e.index for e in got]
    assert indexes == sorted(set(indexes)), "an entry was delivered twice or out of order"
    assert indexes[0] >= first


def test_subscriber_misses_broadcasts_and_still_delivers_everything(
    cluster_factory: Callable[..., Any],
) -> None:
    cluster = started(cluster_factory)
    datas = [f"sub {n}".encode() for n in range(300)]
    # a long broadcast timeout: only the gaps the broadcasts reveal can trigger catch-ups
    with Subscriber(seeds(cluster), secret=cluster.secret, broadcast_timeout=60.0) as sub:
        dropped = [0]
        receive = sub.protocol.receive_broadcast
        count = [0]

        def lossy(frames: list[bytes], now: float) -> None:
            count[0] += 1
            if count[0] % 3 == 0:  # every third broadcast is lost
                dropped[0] += 1
                return
            receive(frames, now)

        sub.protocol.receive_broadcast = lossy  # type: ignore[method-assign]
        thread, result = write_in_background(cluster, datas)
        got = read_until(sub, set(datas), 20.0)
        thread.join(30.0)
        assert "error" not in result
        check_once_in_order(got)
        assert [e.data for e in got] == datas
        assert [e.index for e in got] == result["indexes"]
        assert dropped[0] > 0 and sub.protocol.catchups > 1
        assert sub.last_index == got[-1].index

    # resuming from last_index delivers only what came later
    with Subscriber(seeds(cluster), secret=cluster.secret, from_index=got[150].index) as again:
        more = read_until(again, set(datas[151:]), 10.0)
        assert [e.data for e in more] == datas[151:]


def test_subscriber_survives_a_leader_change(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    leader, _ = cluster.leader()
    datas = [f"change {n}".encode() for n in range(200)]
    with Subscriber(seeds(cluster), secret=cluster.secret, broadcast_timeout=0.5) as sub:
        thread, result = write_in_background(cluster, datas, pause=0.005)
        got = read_until(sub, set(datas[:50]), 20.0)
        first_pub = sub.pub_url
        cluster.peers[leader].kill()
        got += read_until(sub, set(datas) - {e.data for e in got}, 30.0)
        thread.join(30.0)
        assert "error" not in result, result.get("error")
        check_once_in_order(got)
        assert [e.data for e in got] == datas
        assert sub.pub_url != first_pub and sub.pub_url != cluster.peers[leader].pub


def test_async_subscriber(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    datas = [f"async {n}".encode() for n in range(100)]

    async def main() -> list[Entry]:
        got: list[Entry] = []
        async with (
            AsyncClient(seeds(cluster), secret=cluster.secret, rpc_timeout=20.0) as client,
            Subscriber(seeds(cluster), secret=cluster.secret) as sub,
        ):
            writer = asyncio.ensure_future(asyncio.gather(*(client.request_update(d) for d in datas)))
            async for item in sub:
                assert isinstance(item, Entry)
                got.append(item)
                if len(got) == len(datas):
                    break
            await writer
            assert await sub.aread(timeout=0.2) is None
        return got

    got = asyncio.run(asyncio.wait_for(main(), 30.0))
    check_once_in_order(got)
    assert sorted(e.data for e in got) == sorted(datas)


# ---- snapshots ----------------------------------------------------------------------------


def compact(data_dir: Any, index: int, term: int, data: bytes) -> None:
    """A complete snapshot file renamed into the watched install path (as zr-log-compact)."""
    from zmqraft.core.storage.files import SnapshotFile

    target = os.path.join(data_dir, "compact", "snap.new")
    SnapshotFile.create(target + ".tmp", index, term, len(data), data).close()
    os.rename(target + ".tmp", target)


def assemble(items: list[Any]) -> tuple[bytes, int, list[Entry]]:
    """(snapshot bytes, snapshot index, the entries after it) from a stream's items."""
    snapshot = b""
    index = 0
    entries: list[Entry] = []
    for item in items:
        if isinstance(item, SnapshotChunk):
            assert not entries, "a snapshot chunk after entries"
            if item.is_first:
                snapshot = b""
            assert item.offset == len(snapshot)
            snapshot += item.data
            index = item.index
        else:
            entries.append(item)
    return snapshot, index, entries


def test_snapshot_chunks_streams_and_subscriber(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory, data={"compact": {"watch": True, "watchInterval": 100}})
    leader, _ = cluster.leader()
    datas = [f"before {n}".encode() for n in range(100)]
    snapshot = os.urandom(300_000)  # five chunks of 64 KiB
    with Client(seeds(cluster), secret=cluster.secret, rpc_timeout=30.0) as client:
        indexes = [client.request_update(d) for d in datas]
        index = indexes[-1] - 10
        term = next(e.term for e in client.request_entries(index - 1, 1) if isinstance(e, Entry))
        for p in cluster.members:
            poll(
                lambda p=p: client.request_log_info(url=cluster.peers[p].url).last_applied >= index,
                10,
                "apply",
            )
            compact(cluster.data_dir(p), index, term, snapshot)
        for p in cluster.members:
            poll(
                lambda p=p: client.request_log_info(url=cluster.peers[p].url).first_index == index + 1,
                10,
                "compact",
            )

        # a stream from the start: the snapshot's chunks, then the entries after it
        got, at, entries = assemble(list(client.request_entries(0)))
        assert (got, at) == (snapshot, index)
        assert [e.index for e in entries] == list(range(index + 1, indexes[-1] + 1))
        assert [e.data for e in entries if e.is_state] == datas[-10:]

        # a snapshot transfer interrupted by the leader's death resumes at the same offset
        stream = client.request_entries(0, high_water=70_000)
        first = next(stream)
        assert isinstance(first, SnapshotChunk) and first.is_first and not first.is_last
        cluster.peers[leader].kill()
        got, at, entries = assemble([first, *stream])
        assert (got, at) == (snapshot, index)
        # everything up to the last update; the new leader may have applied its CHECKPOINT
        # (spec/raft.md §6.1) before the stream reached it
        assert [e.index for e in entries if e.index <= indexes[-1]] == list(range(index + 1, indexes[-1] + 1))
        assert all(e.type is EntryType.CHECKPOINT for e in entries if e.index > indexes[-1])
        assert client.leader_id != leader

        # a subscriber from the start gets the snapshot, then every entry, live ones too
        with Subscriber(seeds(cluster), secret=cluster.secret) as sub:
            items: list[Any] = []
            while len([i for i in items if isinstance(i, Entry)]) < 10:
                item = sub.read(timeout=10.0)
                assert item is not None, "the subscriber stalled"
                items.append(item)
            got, at, entries = assemble(items)
            assert (got, at) == (snapshot, index)
            assert [e.data for e in entries] == datas[-10:]
            after = client.request_update(b"after the snapshot")
            item = sub.read(timeout=10.0)
            assert isinstance(item, Entry) and (item.index, item.data) == (after, b"after the snapshot")
            assert sub.last_index == after
