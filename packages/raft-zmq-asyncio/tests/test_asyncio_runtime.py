"""The asyncio runtime in-process: build(), serve and close, factories, listeners, user state
machines (blocking and not), custom client requests, failures.  Multi-process behaviour is
covered by tests/integration."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import zmq
import zmq.asyncio
from zmqraft.asyncio import ZmqRaft, build
from zmqraft.core.config import OptionsError
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, entry_type
from zmqraft.core.protocol.reqid import new_request_id
from zmqraft.core.raft.node import Role
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import Reply, SnapshotReader, StateMachine

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


class Client:
    def __init__(self, url: str) -> None:
        self.ctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(url)

    async def request(self, frames: list[bytes], timeout: float = 5.0) -> list[bytes] | None:
        await self.sock.send_multipart(frames)
        with anyio.move_on_after(timeout):
            while True:
                reply = await self.sock.recv_multipart()
                if reply[0] == frames[0]:
                    return reply
        return None

    async def update(self, data: bytes) -> int:
        rid = new_request_id(time.time())
        reply = await self.request(m.RequestUpdate(rid, data).encode(b""))
        assert reply is not None
        decoded = m.RequestUpdateReply.decode(reply)
        while decoded.status is m.UpdateStatus.ACCEPTED:
            with anyio.fail_after(5):
                decoded = m.RequestUpdateReply.decode(await self.sock.recv_multipart())
        assert decoded.status is m.UpdateStatus.COMMITTED and decoded.index is not None
        return decoded.index

    async def log_info(self) -> m.RequestLogInfoReply:
        reply = await self.request(m.RequestLogInfo(new_request_id(time.time())).encode(b""))
        assert reply is not None
        return m.RequestLogInfoReply.decode(reply)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


async def test_single_peer_leads_commits_and_restarts_from_its_files(tmp_path: Path) -> None:
    states: list[tuple[Role, int]] = []
    closed: list[bool] = []
    listeners = {"state": lambda r, t: states.append((r, t)), "close": lambda: closed.append(True)}
    options = single(tmp_path, listeners=listeners)
    raft = build(options)
    url = options["peers"][0][1]
    client = Client(url)
    try:
        async with raft:
            assert raft.url == url and raft.id == "1"
            assert states == [(Role.LEADER, 1)]
            indexes = [await client.update(b"hello %d" % n) for n in range(5)]
            assert indexes == [1, 2, 3, 4, 5]
            broadcast = await client.request(m.RequestBroadcastStateUrl(b"1234").encode(b""))
            assert broadcast == [b"1234", options["broadcast"]["url"].encode()]
        assert closed == [True]
        await raft.wait_closed()
        with pytest.raises(RuntimeError, match="serves once"):
            await raft.serve()

        async with build(options):
            info = await client.log_info()
            assert info.is_leader and info.term == 2
            assert info.last_index == 5 and info.last_applied == 5
            assert await client.update(b"again") == 6
    finally:
        client.close()


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
async def test_user_state_machine(tmp_path: Path, blocking: bool) -> None:
    machine = Recorder()
    machine.blocking = blocking
    options = single(tmp_path, factory={"state": lambda opts: machine})
    client = Client(options["peers"][0][1])
    try:
        async with build(options) as raft:
            assert raft.state_machine is machine and machine.roles == [Role.LEADER]
            for n in range(3):
                await client.update(b"x%d" % n)
            assert machine.data == [b"x0", b"x1", b"x2"]
            reply = await client.request([b"rq", b"Q", b"", b"arg"])
            assert reply == [b"rq", b"answer", b"arg", b"3"]
            # a failing handler is logged; the peer keeps serving
            assert await client.request([b"rx", b"X", b""], timeout=0.3) is None
            # no broadcast state machine: nobody answers '*' and there is no PUB socket
            assert await client.request(m.RequestBroadcastStateUrl(b"9999").encode(b""), timeout=0.3) is None
            assert raft.sockets.pub is None
            assert (await client.log_info()).last_applied == 3
        assert machine.closed
    finally:
        client.close()


async def test_state_machine_failure_closes_the_peer(tmp_path: Path) -> None:
    options = single(tmp_path, factory={"state": lambda opts: Recorder(fail_at=2)})
    client = Client(options["peers"][0][1])
    raft = build(options)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(raft.serve)
            await client.update(b"first")
            await client.sock.send_multipart(m.RequestUpdate(new_request_id(time.time()), b"x").encode(b""))
            with anyio.fail_after(5):
                await raft.wait_closed()
        assert isinstance(raft.error, RuntimeError)
    finally:
        client.close()


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="id must be"):
        build({"data": {"path": str(tmp_path)}})
    with pytest.raises(TypeError, match="Expected a namespace: data"):
        build({"id": "1", "data": "x"})
    with pytest.raises(OptionsError, match="electionTimeoutMin"):
        build({"id": "1", "data": {"path": str(tmp_path)}, "electionTimeoutMin": 10})


async def test_a_peer_outside_its_configuration_needs_a_bind_address(tmp_path: Path) -> None:
    (other,) = ports(1)
    options = single(tmp_path, id="9")
    raft = build(options)
    assert raft.server.node.role is Role.CLIENT
    with pytest.raises(ValueError, match=r"router\.bind"):
        async with raft:
            pass
    bound = f"tcp://127.0.0.1:{other}"
    raft = build({**options, "router": {"bind": bound}})
    async with raft:
        assert raft.url == bound


async def test_shutdown_completes_the_write_in_flight(tmp_path: Path) -> None:
    """close() while a storage job is running: the job finishes, nothing is cut short."""
    options = single(tmp_path)
    client = Client(options["peers"][0][1])
    raft = build(options)
    log = raft.peer.log
    real_append = log.append
    started: list[int] = []

    def slow_append(first_index: int, entries: Any) -> None:
        started.append(first_index)
        time.sleep(0.3)
        real_append(first_index, entries)

    log.append = slow_append  # type: ignore[method-assign]
    try:
        async with raft:
            rid = new_request_id(time.time())
            await client.sock.send_multipart(m.RequestUpdate(rid, b"slow").encode(b""))
            with anyio.fail_after(5):
                while not started:
                    await anyio.sleep(0.01)
            raft.close()
            await raft.wait_closed()
        assert started == [1]
    finally:
        client.close()
    async with build(options) as again:
        assert again.peer.log.last_index >= 1
        assert isinstance(again, ZmqRaft)


async def test_exceptions_propagate_and_cancellation_closes(tmp_path: Path) -> None:
    options = single(tmp_path)
    with pytest.raises(KeyError, match="boom"):
        async with build(options):
            raise KeyError("boom")
    with anyio.move_on_after(0.3):
        async with build(options) as raft:
            await anyio.sleep(10)
    assert raft._closed.is_set()
    async with build(options) as again:  # everything was released: the files open again
        assert again.peer.log.last_index >= 0


async def test_a_slow_disk_does_not_depose_a_live_leader(tmp_path: Path) -> None:
    """Every log append takes 0.4 s (longer than the 0.2-0.3 s election timeout) while a
    client keeps writing: the first leader must stay the leader."""
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

    async with anyio.create_task_group() as tg:
        rafts = []
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
            await tg.start(raft.serve)
            rafts.append(raft)
        with anyio.fail_after(10):
            while not elected:
                await anyio.sleep(0.02)
        client = Client(dict(peers)[elected[0][0]])
        try:
            for _ in range(30):  # 3 s of writes, 32 at a time
                for _ in range(32):
                    rid = new_request_id(time.time())
                    await client.sock.send_multipart(m.RequestUpdate(rid, b"x" * 100).encode(b""))
                await anyio.sleep(0.1)
        finally:
            client.close()
            for raft in rafts:
                raft.close()
    assert elected == elected[:1], f"leaders elected: {elected}"
