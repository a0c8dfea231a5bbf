"""How the clients fail, against real peer processes (issues 12 and 13): a finite default
deadline with an error that says what was tried, updates over the size limit refused before
they leave, a socket that cannot be opened failing the operation that needed it, and a
thousand clients in one process.

Every cluster comes from the integration harness's ``cluster_factory`` (real peer processes,
killed by the fixture); every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
from zmqraft.client import (
    AsyncClient,
    Client,
    ClientError,
    ConnectError,
    PeerClient,
    RequestTimeoutError,
    Subscriber,
    UpdateTooLargeError,
)
from zmqraft.client.client import DEFAULT_MAX_UPDATE_SIZE, DEFAULT_RPC_TIMEOUT

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]


def started(cluster_factory: Callable[..., Any], **options: Any) -> Any:
    cluster = cluster_factory(**options)
    cluster.start()
    cluster.leader()
    return cluster


def seeds(cluster: Any) -> list[str]:
    return [peer.url for peer in cluster.peers.values() if peer.id in cluster.members]


def dead_url() -> str:
    """An address nobody listens on (a port the OS just handed out and took back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def assert_says_what_was_tried(
    error: BaseException, urls: list[str], took: float, wait: float = DEFAULT_RPC_TIMEOUT
) -> None:
    """Within the deadline (5 s; one 0.5 s attempt for a single peer), naming the peers tried,
    the likely causes and how to wait longer."""
    text = str(error)
    assert took < wait + 1.5, f"took {took:.1f} s"
    assert took >= wait - 0.1, f"gave up after {took:.1f} s only"
    for url in urls:
        assert url in text, text
    assert "secret" in text and "address" in text, text
    if wait == DEFAULT_RPC_TIMEOUT:
        assert f"{DEFAULT_RPC_TIMEOUT:g} s" in text and "timeout=None" in text, text


# ---- a finite default deadline (issue 13, item 1) ------------------------------------------------


def test_default_deadline_on_a_dead_address() -> None:
    url = dead_url()
    with Client([url]) as client:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            client.request_log_info()
        assert_says_what_was_tried(caught.value, [url], time.monotonic() - began)
        assert "no peer answered" in str(caught.value)
    with PeerClient(url) as peer:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            peer.request_update(b"x")
        # a single peer is asked once, for one response timeout (0.5 s)
        assert_says_what_was_tried(caught.value, [url], time.monotonic() - began, wait=0.5)
    with Client([url], rpc_timeout=2.0) as client:  # a pinned call with rpc_timeout given waits it out
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            client.request_log_info(url=url)
        assert 1.9 <= time.monotonic() - began < 3.0

    async def asynchronously() -> None:
        async with AsyncClient([url]) as client:
            began = time.monotonic()
            with pytest.raises(RequestTimeoutError) as caught:
                await client.request_update(b"x")
            assert_says_what_was_tried(caught.value, [url], time.monotonic() - began)

    asyncio.run(asynchronously())


def test_default_deadline_under_gevent() -> None:
    """The green flavours (a ``zmq.green`` context) have the same default deadline, and wait
    for it without blocking other greenlets."""
    gevent = pytest.importorskip("gevent")
    green = pytest.importorskip("zmq.green")
    url = dead_url()
    ticks: list[float] = []

    def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.05)

    context = green.Context()
    background = gevent.spawn(ticker)
    try:
        for make, wait in ((Client, DEFAULT_RPC_TIMEOUT), (PeerClient, 0.5)):
            with make(url, context=context) as client:
                began = time.monotonic()
                with pytest.raises(RequestTimeoutError) as caught:
                    client.request_config()
                assert_says_what_was_tried(caught.value, [url], time.monotonic() - began, wait)
        with Subscriber([url], context=context) as sub:
            began = time.monotonic()
            with pytest.raises(RequestTimeoutError) as caught:
                sub.read()
            assert_says_what_was_tried(caught.value, [url], time.monotonic() - began)
        assert len(ticks) > 3 * DEFAULT_RPC_TIMEOUT / 0.05 * 0.5  # the ticker ran meanwhile
    finally:
        background.kill()
        context.term()


def test_default_deadline_with_a_wrong_secret(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    urls = seeds(cluster)
    with Client(urls, secret="not the cluster's") as client:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            client.request_update(b"x")
        assert_says_what_was_tried(caught.value, urls, time.monotonic() - began)
    with Subscriber(urls, secret="not the cluster's") as sub:
        began = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            next(sub)
        assert_says_what_was_tried(caught.value, urls, time.monotonic() - began)
    # the right secret works, and None still means "wait as long as it takes"
    with Client(urls, secret=cluster.secret, rpc_timeout=None) as client:
        assert client.rpc_timeout is None
        assert client.request_update(b"x") > 0


def test_subscriber_reads_on_with_a_live_cluster(cluster_factory: Callable[..., Any]) -> None:
    """The subscriber's deadline is about silence: a quiet but live cluster (heartbeat
    broadcasts only) never trips it."""
    cluster = started(cluster_factory)
    with Subscriber(seeds(cluster), secret=cluster.secret, rpc_timeout=1.0) as sub:
        assert sub.read(timeout=3.0) is None  # nothing written: no item, and no error
        with Client(seeds(cluster), secret=cluster.secret) as client:
            index = client.request_update(b"hello")
        item = sub.read(timeout=5.0)
        assert item is not None and item.index == index


# ---- updates over the size limit (issue 12, defect 2) ----------------------------------------------


def test_an_update_over_the_limit_is_refused_before_it_leaves(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory, maxLogEntryDataSize=1000)
    urls = seeds(cluster)
    assert DEFAULT_MAX_UPDATE_SIZE == 10 * 1024 * 1024  # the server's default
    with Client(urls, secret=cluster.secret, max_update_size=1000) as client:
        began = time.monotonic()
        with pytest.raises(UpdateTooLargeError) as caught:
            client.request_update(b"x" * 1001)
        assert time.monotonic() - began < 0.1
        assert isinstance(caught.value, ValueError)
        assert "1001" in str(caught.value) and "1000" in str(caught.value)
        assert "maxLogEntryDataSize" in str(caught.value) and "max_update_size" in str(caught.value)
        assert client.request_update(b"x" * 1000) > 0  # the limit itself is fine
    with Client(urls, secret=cluster.secret) as client, pytest.raises(UpdateTooLargeError):
        client.request_update(b"x" * (DEFAULT_MAX_UPDATE_SIZE + 1))
    with (
        Subscriber(urls, secret=cluster.secret, max_update_size=1000) as sub,
        pytest.raises(UpdateTooLargeError),
    ):
        sub.request_update(b"x" * 1001)


def test_the_peer_logs_a_dropped_update_once(cluster_factory: Callable[..., Any]) -> None:
    """A client that does not know the limit (max_update_size=None) sends it: the leader has
    no reply for it in the protocol, so it drops it and logs it, once for all the retries."""
    cluster = started(cluster_factory, maxLogEntryDataSize=1000)
    leader, _term = cluster.leader()
    with Client(
        seeds(cluster), secret=cluster.secret, max_update_size=None, timeout=0.2, rpc_timeout=2.0
    ) as client:
        with pytest.raises(RequestTimeoutError):
            client.request_update(b"x" * 2000)
        assert client.request_update(b"x" * 10) > 0
    cluster.stop()
    output = cluster.peers[leader].output()
    lines = [line for line in output.splitlines() if "maxLogEntryDataSize" in line]
    assert len(lines) == 1, output
    assert "2000" in lines[0] and "1000" in lines[0], lines


# ---- a socket that cannot be opened (issue 12, defect 1) ---------------------------------------------


def exhausted_context() -> tuple[zmq.Context[Any], list[zmq.Socket[Any]]]:
    """A real context whose socket budget (room for one socket per peer) is spent: the next
    socket fails with EMFILE until the hogs are closed."""
    ctx: zmq.Context[Any] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 3)
    hogs = [ctx.socket(zmq.PAIR) for _ in range(3)]
    return ctx, hogs


def test_a_socket_that_cannot_be_opened_fails_the_operation(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    ctx, hogs = exhausted_context()
    try:
        with Client(seeds(cluster), secret=cluster.secret, context=ctx, rpc_timeout=30.0) as client:
            began = time.monotonic()
            with pytest.raises(ConnectError) as caught:
                client.request_update(b"x")
            assert time.monotonic() - began < 1.0
            text = str(caught.value)
            assert "socket" in text and "Too many open files" in text and "README" in text, text

        async def asynchronously() -> None:
            async with AsyncClient(
                seeds(cluster), secret=cluster.secret, context=ctx, rpc_timeout=30.0
            ) as ac:
                with pytest.raises(ConnectError):
                    await asyncio.wait_for(ac.request_update(b"x"), 5.0)
                # the client stays usable: once a socket can be opened (ZeroMQ frees a closed
                # socket's slot in the background), it works
                for hog in hogs:
                    hog.close(0)
                deadline = time.monotonic() + 10.0
                while True:
                    try:
                        assert await asyncio.wait_for(ac.request_update(b"y"), 10.0) > 0
                        break
                    except ConnectError:
                        assert time.monotonic() < deadline, "no socket could be opened after 10 s"
                        await asyncio.sleep(0.05)

        asyncio.run(asynchronously())
    finally:
        for hog in hogs:
            hog.close(0)
        ctx.term()


def test_an_error_inside_the_async_driver_ends_the_client_once(
    cluster_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A socket closed behind the client's back makes its event-loop callback raise: every
    pending operation ends with a clear error (the cause attached), logged once, instead of
    an exception in a callback repeated on every wake-up while the operations hang."""
    cluster = started(cluster_factory)

    async def run() -> None:
        async with AsyncClient(seeds(cluster), secret=cluster.secret, rpc_timeout=30.0) as client:
            assert await client.request_update(b"first") > 0
            for sock in client._sockets.dealers.values():
                sock.close(0)  # a real fault: every later use of these sockets raises ENOTSOCK
            pending = [asyncio.ensure_future(client.request_log_info()) for _ in range(5)]
            done, _ = await asyncio.wait(pending, timeout=5.0)
            assert len(done) == 5, "operations hang after a driver error"
            for fut in done:
                error = fut.exception()
                assert isinstance(error, ClientError) and "the client failed" in str(error), error
                assert isinstance(error.__cause__, zmq.ZMQError)
            with pytest.raises(ClientError):
                await client.request_log_info()

    with caplog.at_level("ERROR", logger="zmqraft.client"):
        asyncio.run(run())
    failures = [r for r in caplog.records if "the client failed" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if "Exception in callback" in r.getMessage()]


def test_a_subscriber_without_sockets_says_so(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory)
    ctx, hogs = exhausted_context()
    try:
        with Subscriber(seeds(cluster), secret=cluster.secret, context=ctx, rpc_timeout=30.0) as sub:
            began = time.monotonic()
            with pytest.raises(ConnectError, match="Too many open files"):
                sub.read(timeout=10.0)
            assert time.monotonic() - began < 2.0

        async def asynchronously() -> None:
            with (
                Subscriber(seeds(cluster), secret=cluster.secret, context=ctx, rpc_timeout=30.0) as sub,
                pytest.raises(ConnectError, match="Too many open files"),
            ):
                await asyncio.wait_for(sub.__anext__(), 5.0)

        asyncio.run(asynchronously())
    finally:
        for hog in hogs:
            hog.close(0)
        ctx.term()


def test_a_thousand_clients_in_one_process(cluster_factory: Callable[..., Any]) -> None:
    """1,000 AsyncClients and 50 blocking Clients on the shared context, each completing an
    update against a 3-peer cluster."""
    cluster = started(cluster_factory)
    urls = seeds(cluster)

    async def run() -> list[int]:
        clients = [AsyncClient(urls, secret=cluster.secret, rpc_timeout=60.0) for _ in range(1000)]
        try:
            return list(
                await asyncio.wait_for(
                    asyncio.gather(
                        *(c.request_update(f"client {n}".encode()) for n, c in enumerate(clients))
                    ),
                    90.0,
                )
            )
        finally:
            for c in clients:
                await c.close()

    indexes = asyncio.run(run())
    assert len(set(indexes)) == 1000
    blocking = [Client(urls, secret=cluster.secret, rpc_timeout=30.0) for _ in range(50)]
    try:
        assert len({c.request_update(b"blocking") for c in blocking}) == 50
    finally:
        for c in blocking:
            c.close()


def test_errors_are_client_errors() -> None:
    assert issubclass(ConnectError, ClientError) and issubclass(ConnectError, ConnectionError)
    assert issubclass(UpdateTooLargeError, ClientError) and issubclass(UpdateTooLargeError, ValueError)
