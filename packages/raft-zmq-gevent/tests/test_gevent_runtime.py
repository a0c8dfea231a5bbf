"""The gevent runtime in-process: build(), start and close, the context manager, listeners,
user state machines (blocking and not), custom client requests, failures, the write in flight
at shutdown, a slow disk under a live leader, a Subscriber on a green context.  Real sockets
on 127.0.0.1; the test talks to the peer with ``zmqraft.client`` on a ``zmq.green`` context,
so waiting for an answer lets the peer's greenlets run (no monkey-patching)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
import zmq
import zmq.green
from zmqraft.client import Client, Entry, RequestTimeoutError, Subscriber
from zmqraft.core.config import OptionsError
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, entry_type
from zmqraft.core.protocol.reqid import new_request_id
from zmqraft.core.raft.node import Role
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import Reply, SnapshotReader, StateMachine
from zmqraft.gevent import ZmqRaft, build

pytestmark = pytest.mark.timeout(60)


def ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    found = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return found


def single(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    router, pub = ports(2)
    return {
        "id": "1",
        "peers": [["1", f"tcp://127.0.0.1:{router}"]],
        "data": {"path": str(tmp_path / "data")},
        "broadcast": {"url": f"tcp://127.0.0.1:{pub}"},
        **extra,
    }


@pytest.fixture
def green_client() -> Iterator[Callable[[str], Client]]:
    """``make(url) -> Client`` on a green context (closed at the end)."""
    ctx = zmq.green.Context()
    made: list[Client] = []

    def make(url: str) -> Client:
        client = Client([url], peers=[["1", url]], rpc_timeout=5.0, context=ctx)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
    ctx.term()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` with a deadline, sleeping in gevent so the peer runs meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        gevent.sleep(0.01)


def test_single_peer_leads_commits_and_restarts_from_its_files(
    tmp_path: Path, green_client: Callable[[str], Client]
) -> None:
    states: list[tuple[Role, int]] = []
    closed: list[bool] = []
    listeners = {"state": lambda r, t: states.append((r, t)), "close": lambda: closed.append(True)}
    options = single(tmp_path, listeners=listeners)
    url = options["peers"][0][1]
    client = green_client(url)
    raft = build(options)
    with raft:
        assert raft.url == url and raft.id == "1"
        wait_until("leadership", lambda: (Role.LEADER, 1) in states)
        assert [client.request_update(b"hello %d" % n) for n in range(5)] == [1, 2, 3, 4, 5]
        assert client.request_broadcast_url() == options["broadcast"]["url"]
        assert not raft.wait_closed(0.01)
    assert raft.closed and raft.wait_closed(0) and closed == [True]
    with pytest.raises(RuntimeError, match="serves once"):
        raft.start()

    with build(options):
        info = client.request_log_info()
        assert info.is_leader and info.term == 2
        assert info.last_index == 5 and info.last_applied == 5
        assert client.request_update(b"again") == 6


def test_close_without_start_releases_the_files(tmp_path: Path) -> None:
    options = single(tmp_path)
    raft = build(options)
    raft.close()
    assert raft.closed
    with pytest.raises(RuntimeError, match="serves once"):
        raft.start()
    with build(options) as again:  # the files were released: they open again
        assert again.peer.log.last_index == 0


class Recorder(StateMachine):
    """A user state machine: keeps STATE entries in memory, answers type b'Q'."""

    blocking = False

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.data: list[bytes] = []
        self.roles: list[Role] = []
        self.fail_at = fail_at
        self.closed = False

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        if self.fail_at is not None and next_index + len(entries) - 1 >= self.fail_at:
            raise RuntimeError("state machine failure")
        self.data.extend(bytes(e[20:]) for e in entries if entry_type(e) == EntryType.STATE)
        return super().apply_entries(entries, next_index, term, snapshot)

    def on_client_request(self, request: ClientRequest, reply: Reply) -> bool:
        if request.type == b"Q":
            reply([b"answer", *request.args, str(len(self.data)).encode()])
            return True
        if request.type == b"X":
            raise ValueError("a bug in a request handler")
        return False

    def on_raft_state(self, role: Role, term: int) -> None:
        self.roles.append(role)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("blocking", [False, True])
def test_user_state_machine(tmp_path: Path, blocking: bool, green_client: Callable[[str], Client]) -> None:
    machine = Recorder()
    machine.blocking = blocking
    options = single(tmp_path, factory={"state": lambda opts: machine})
    client = green_client(options["peers"][0][1])
    with build(options) as raft:
        assert raft.state_machine is machine
        for n in range(3):
            client.request_update(b"x%d" % n)
        assert machine.data == [b"x0", b"x1", b"x2"] and machine.roles[-1] is Role.LEADER
        assert client.request(b"Q", b"arg") == [b"answer", b"arg", b"3"]
        # a failing handler is logged and the peer keeps serving; nobody answers '*' without
        # a broadcast state machine, and there is no PUB socket
        with pytest.raises(RequestTimeoutError):
            client.request(b"X", timeout=0.3)
        with pytest.raises(RequestTimeoutError):
            client.request_broadcast_url(timeout=0.3)
        assert raft.sockets.pub is None
        assert client.request_log_info().last_applied == 3
    assert machine.closed


def test_state_machine_failure_closes_the_peer(tmp_path: Path, green_client: Callable[[str], Client]) -> None:
    options = single(tmp_path, factory={"state": lambda opts: Recorder(fail_at=2)})
    client = green_client(options["peers"][0][1])
    raft = build(options).start()
    try:
        client.request_update(b"first")
        with pytest.raises(RequestTimeoutError):
            client.request_update(b"fails", timeout=1.0)
        assert raft.wait_closed(5)
        assert isinstance(raft.error, RuntimeError)
    finally:
        raft.close()


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="id must be"):
        build({"data": {"path": str(tmp_path)}})
    with pytest.raises(TypeError, match="Expected a namespace: data"):
        build({"id": "1", "data": "x"})


def test_a_start_failure_raises_and_closes(tmp_path: Path) -> None:
    (other,) = ports(1)
    options = single(tmp_path, id="9")  # not in its configuration and no router.bind
    raft = build(options)
    assert raft.server.node.role is Role.CLIENT
    with pytest.raises(ValueError, match=r"router\.bind"):
        raft.start()
    assert raft.closed
    bound = f"tcp://127.0.0.1:{other}"
    with build({**options, "router": {"bind": bound}}) as raft:
        assert raft.url == bound
        # the port is taken now: binding it twice fails at start(), and closes the files
        taken = {**options, "id": "8", "data": {"path": str(tmp_path / "8")}, "router": {"bind": bound}}
        second = build(taken)
        with pytest.raises(zmq.ZMQError):
            second.start()
        assert second.closed


def test_shutdown_completes_the_write_in_flight(tmp_path: Path) -> None:
    """close() while a storage job is running in the threadpool: the job finishes first."""
    options = single(tmp_path)
    url = options["peers"][0][1]
    raft = build(options)
    log = raft.peer.log
    real_append = log.append
    started: list[int] = []
    finished: list[int] = []

    def slow_append(first_index: int, entries: Any) -> None:
        started.append(first_index)
        time.sleep(0.3)  # in a threadpool thread: the hub keeps running
        real_append(first_index, entries)
        finished.append(first_index)

    log.append = slow_append  # type: ignore[method-assign]
    ctx = zmq.green.Context()
    client = Client([url], peers=[["1", url]], context=ctx)
    try:
        raft.start()
        pending = gevent.spawn(client.request_update, b"slow", timeout=5.0)
        wait_until("the append to start", lambda: bool(started))
        began = time.monotonic()
        ticks = 0
        while time.monotonic() - began < 0.1:  # the hub is not blocked by the fsync
            gevent.sleep(0.01)
            ticks += 1
        assert ticks >= 5 and not finished
        raft.close()
        assert finished == [1] and raft.closed
        pending.kill()
    finally:
        client.close()
        ctx.term()
    with build(options) as again:
        assert again.peer.log.last_index >= 1
        assert isinstance(again, ZmqRaft)


def test_close_from_a_listener_does_not_deadlock(tmp_path: Path) -> None:
    """A listener runs in the peer's own greenlet: close() there only asks."""
    holder: list[ZmqRaft] = []

    def on_state(role: Role, term: int) -> None:
        if role is Role.LEADER:
            holder[0].close()

    raft = build(single(tmp_path, listeners={"state": on_state}))
    holder.append(raft)
    raft.start()
    assert raft.wait_closed(5) and raft.error is None


def test_a_slow_disk_does_not_depose_a_live_leader(tmp_path: Path) -> None:
    """Every log append takes 0.4 s (longer than the 0.2-0.3 s election timeout) while a
    client keeps writing: the first leader must stay the leader (appends run in the hub's
    threadpool, so the slow disk never blocks the peers' heartbeats)."""
    addresses = ports(6)
    peers = [[str(n + 1), f"tcp://127.0.0.1:{addresses[n]}"] for n in range(3)]
    elected: list[tuple[str, int]] = []

    def on_state(peer_id: str) -> Any:
        return lambda role, term: elected.append((peer_id, term)) if role is Role.LEADER else None

    def slow(append: Any) -> Any:
        def slow_append(first_index: int, entries: Any) -> None:
            time.sleep(0.4)
            append(first_index, entries)

        return slow_append

    rafts: list[ZmqRaft] = []
    ctx = zmq.green.Context()
    try:
        for n, (peer_id, _url) in enumerate(peers):
            raft = build(
                {
                    "id": peer_id,
                    "peers": peers,
                    "data": {"path": str(tmp_path / peer_id)},
                    "broadcast": {"url": f"tcp://127.0.0.1:{addresses[3 + n]}"},
                    "listeners": {"state": on_state(peer_id)},
                }
            )
            raft.peer.log.append = slow(raft.peer.log.append)  # type: ignore[method-assign]
            rafts.append(raft.start())
        wait_until("a leader", lambda: bool(elected), 10.0)
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(dict(peers)[elected[0][0]])
        try:
            for _ in range(30):  # 3 s of writes, 32 at a time
                for _ in range(32):
                    rid = new_request_id(time.time())
                    sock.send_multipart(m.RequestUpdate(rid, b"x" * 100).encode(b""))
                gevent.sleep(0.1)
        finally:
            sock.close(0)
    finally:
        for raft in rafts:
            raft.close()
        ctx.term()
    assert elected == elected[:1], f"leaders elected: {elected}"


def test_subscriber_under_gevent(tmp_path: Path, green_client: Callable[[str], Client]) -> None:
    """A ``Subscriber`` on a ``zmq.green`` context reads while another greenlet writes."""
    options = single(tmp_path)
    url = options["peers"][0][1]
    ctx = zmq.green.Context()
    with build(options):
        client = green_client(url)
        writer = gevent.spawn(lambda: [client.request_update(f"g{n}".encode()) for n in range(50)])
        got: list[bytes] = []
        with Subscriber([url], peers=[["1", url]], context=ctx) as sub:
            deadline = time.monotonic() + 15.0
            while len(got) < 50:
                assert time.monotonic() < deadline, f"only {len(got)} entries"
                item = sub.read(timeout=1.0)
                if isinstance(item, Entry):
                    got.append(item.data)
        indexes = writer.get(timeout=10)
    ctx.term()
    assert got == [f"g{n}".encode() for n in range(50)] and len(indexes) == 50
