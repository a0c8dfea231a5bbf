"""One peer in-process, the same behaviours for every server runtime (``zmqraft.asyncio`` and
``zmqraft.gevent``; the ``flavour`` fixture of conftest.py runs each test once per runtime):
build() and its options, start and close, listeners, user state machines (blocking and not),
custom client requests, failures, the write in flight at shutdown, a slow disk under a live
leader.  Real sockets on 127.0.0.1 with ephemeral ports; the test talks to the peer with
``zmqraft.client`` or a raw DEALER.  What only one runtime does (how it waits) is tested
beside it, in packages/raft-zmq-*/tests; multi-process behaviour in tests/integration."""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from peer_options import ports, single
from zmqraft.client import RequestTimeoutError
from zmqraft.core.config import OptionsError
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, entry_type
from zmqraft.core.protocol.reqid import new_request_id
from zmqraft.core.raft.node import Role
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import Reply, SnapshotReader, StateMachine

if TYPE_CHECKING:
    from conftest import Runtime

pytestmark = pytest.mark.timeout(60)


def is_bound(url: str) -> bool:
    """Whether some socket listens at ``url`` (a plain bind there fails)."""
    parts = urlsplit(url)
    with socket.socket() as probe:
        try:
            probe.bind((parts.hostname, parts.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def open_files(under: Path) -> list[str]:
    """The files of this process open under ``under`` (Linux's /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(under)):
            found.append(target)
    return found


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


def closing_listener() -> tuple[dict[str, Any], list[bool]]:
    """Listeners whose "close" event is recorded: it fires once the peer is closed."""
    closed: list[bool] = []
    return {"close": lambda: closed.append(True)}, closed


@needs_proc
def test_single_peer_leads_commits_and_restarts_from_its_files(flavour: Runtime, tmp_path: Path) -> None:
    states: list[tuple[Role, int]] = []
    closed: list[bool] = []
    listeners = {"state": lambda r, t: states.append((r, t)), "close": lambda: closed.append(True)}
    options = single(tmp_path, listeners=listeners)
    url = options["peers"][0][1]
    client = flavour.client(url)
    raft = flavour.build(options)
    with flavour.running(raft) as entered:
        assert entered is raft and raft.url == url and raft.id == "1"
        flavour.wait_until("leadership", lambda: bool(states))
        assert states == [(Role.LEADER, 1)]
        assert [client.request_update(b"hello %d" % n) for n in range(5)] == [1, 2, 3, 4, 5]
        assert client.request_broadcast_url() == options["broadcast"]["url"]
        assert is_bound(options["broadcast"]["url"])  # the broadcast state machine's PUB
        assert not flavour.wait_closed(raft, 0.05) and closed == []
    assert closed == [True] and flavour.wait_closed(raft, 1.0)
    assert open_files(tmp_path / "data") == []
    with pytest.raises(RuntimeError, match="serves once"):
        flavour.start(raft)

    with flavour.running(flavour.build(options)):
        info = client.request_log_info()
        assert info.is_leader and info.term == 2
        assert info.last_index == 5 and info.last_applied == 5
        assert client.request_update(b"again") == 6


@needs_proc
def test_close_without_start_releases_the_files(
    flavour: Runtime, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    listeners, closed = closing_listener()
    options = single(tmp_path, listeners=listeners)
    raft = flavour.build(options)
    assert open_files(tmp_path / "data") != []  # the log and the persistence are open
    flavour.close(raft, timeout=1.0)
    assert closed == [True]
    assert open_files(tmp_path / "data") == []
    with pytest.raises(RuntimeError, match="serves once"):
        flavour.start(raft)
    with flavour.running(flavour.build(options)) as again:  # the files open again
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
def test_user_state_machine(flavour: Runtime, tmp_path: Path, blocking: bool) -> None:
    machine = Recorder()
    machine.blocking = blocking
    options = single(tmp_path, factory={"state": lambda opts: machine})
    client = flavour.client(options["peers"][0][1])
    with flavour.running(flavour.build(options)) as raft:
        assert raft.state_machine is machine
        for n in range(3):
            client.request_update(b"x%d" % n)
        assert machine.data == [b"x0", b"x1", b"x2"] and machine.roles == [Role.LEADER]
        assert client.request(b"Q", b"arg") == [b"answer", b"arg", b"3"]
        # a failing handler is logged and the peer keeps serving; nobody answers '*' without
        # a broadcast state machine, and there is no PUB socket
        with pytest.raises(RequestTimeoutError):
            client.request(b"X", timeout=0.3)
        with pytest.raises(RequestTimeoutError):
            client.request_broadcast_url(timeout=0.3)
        assert not is_bound(options["broadcast"]["url"])
        assert client.request_log_info().last_applied == 3
    assert machine.closed


def test_state_machine_failure_closes_the_peer(flavour: Runtime, tmp_path: Path) -> None:
    options = single(tmp_path, factory={"state": lambda opts: Recorder(fail_at=2)})
    client = flavour.client(options["peers"][0][1])
    raft = flavour.build(options)
    flavour.start(raft)
    assert client.request_update(b"first") == 1
    with pytest.raises(RequestTimeoutError):
        client.request_update(b"fails", timeout=0.5)
    assert flavour.wait_closed(raft, 5.0)
    assert isinstance(raft.error, RuntimeError)
    flavour.close(raft)


def test_bad_options(flavour: Runtime, tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="id must be"):
        flavour.build({"data": {"path": str(tmp_path)}})
    with pytest.raises(TypeError, match="Expected a namespace: data"):
        flavour.build({"id": "1", "data": "x"})
    with pytest.raises(OptionsError, match="electionTimeoutMin"):
        flavour.build({"id": "1", "data": {"path": str(tmp_path)}, "electionTimeoutMin": 10})


@needs_proc
def test_a_peer_outside_its_configuration_needs_a_bind_address(flavour: Runtime, tmp_path: Path) -> None:
    (other,) = ports(1)
    listeners, _closed = closing_listener()
    options = single(tmp_path, id="9", listeners=listeners)
    with pytest.raises(ValueError, match=r"unknown peer id '9'.* router\.bind \(--bind URL\)"):
        flavour.build(options)  # refused before anything is written
    assert not (tmp_path / "data").exists()
    bound = f"tcp://127.0.0.1:{other}"
    with flavour.running(flavour.build({**options, "router": {"bind": bound}})) as raft:
        assert raft.url == bound


@needs_proc
def test_a_start_failure_raises_and_closes(flavour: Runtime, tmp_path: Path) -> None:
    """The port is taken: binding it fails at start, which closes the peer and its files."""
    (other,) = ports(1)
    bound = f"tcp://127.0.0.1:{other}"
    options = single(tmp_path, id="9", router={"bind": bound})
    with flavour.running(flavour.build(options)) as raft:
        assert raft.url == bound
        listeners, closed = closing_listener()
        taken = {**options, "id": "8", "data": {"path": str(tmp_path / "8")}, "listeners": listeners}
        second = flavour.build(taken)
        with pytest.raises(OSError) as taken_error:  # naming the address
            flavour.start(second)
        assert taken_error.value.errno == errno.EADDRINUSE and bound in str(taken_error.value.filename)
        assert closed == [True] and flavour.wait_closed(second, 1.0)
        assert open_files(tmp_path / "8") == []


def test_shutdown_completes_the_write_in_flight(flavour: Runtime, tmp_path: Path) -> None:
    """close() while a storage job runs in a worker thread: the job finishes first, and the
    peer keeps answering while it runs."""
    options = single(tmp_path)
    url = options["peers"][0][1]
    raft = flavour.build(options)
    real_append = raft.peer.log.append
    started: list[int] = []
    finished: list[int] = []

    def slow_append(first_index: int, entries: Any) -> None:
        started.append(first_index)
        time.sleep(0.5)  # in a worker thread: the peer's loop keeps running
        real_append(first_index, entries)
        finished.append(first_index)

    raft.peer.log.append = slow_append
    flavour.start(raft)
    flavour.dealer(url).send_multipart(m.RequestUpdate(new_request_id(time.time()), b"slow").encode(b""))
    flavour.wait_until("the append to start", lambda: bool(started))
    assert flavour.client(url).request_log_info().is_leader and not finished
    flavour.close(raft)
    assert started == [1] and finished == [1]
    with flavour.running(flavour.build(options)) as again:
        assert again.peer.log.last_index >= 1
        assert isinstance(again, flavour.module.ZmqRaft)


def test_a_leader_waits_for_quick_writes_only(flavour: Runtime, tmp_path: Path) -> None:
    """With ``inline_storage`` (the command-line peers) a leader's loop waits for its own
    quick writes (``Work.wait``): every update commits.  A slow write is waited for a few
    milliseconds at most: the peer keeps answering while it runs, the write still commits,
    and one in flight at close() is finished first."""
    options = single(tmp_path)
    url = options["peers"][0][1]
    raft = flavour.build(options, inline_storage=True)
    real_append = raft.peer.log.append
    delay = [0.0]
    started: list[int] = []
    finished: list[int] = []

    def append(first_index: int, entries: Any) -> None:
        started.append(first_index)
        time.sleep(delay[0])
        real_append(first_index, entries)
        finished.append(first_index)

    raft.peer.log.append = append
    flavour.start(raft)
    client = flavour.client(url)
    for n in range(20):  # quick writes, waited for by the loop
        assert client.request_update(f"quick {n}".encode()) > 0
    delay[0] = 0.4
    slow_from = len(started)
    for n in range(2):  # the first slow write is waited for (briefly), the second is not
        flavour.dealer(url).send_multipart(m.RequestUpdate(new_request_id(time.time()), b"slow").encode(b""))
        flavour.wait_until("a slow append to start", lambda n=n: len(started) > slow_from + n)
        asked = time.monotonic()
        assert client.request_log_info().is_leader
        assert time.monotonic() - asked < 0.3, "the loop waited for a slow write"
        flavour.wait_until("the slow append to end", lambda: len(finished) == len(started))
        index = finished[-1]
        flavour.wait_until("it to commit", lambda i=index: client.request_log_info().commit_index >= i)
    flavour.dealer(url).send_multipart(m.RequestUpdate(new_request_id(time.time()), b"last").encode(b""))
    flavour.wait_until("the last append to start", lambda: len(started) > len(finished))
    flavour.close(raft)
    assert len(finished) == len(started) and finished == sorted(finished)


def test_a_slow_disk_does_not_depose_a_live_leader(flavour: Runtime, tmp_path: Path) -> None:
    """Every log append takes 0.4 s (longer than the 0.2-0.3 s election timeout) while a
    client keeps writing: the first leader must stay the leader (appends run in worker
    threads, so the slow disk never blocks the peers' heartbeats)."""
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

    rafts = []
    for n, (peer_id, _url) in enumerate(peers):
        raft = flavour.build(
            {
                "id": peer_id,
                "peers": peers,
                "data": {"path": str(tmp_path / peer_id)},
                "broadcast": {"url": f"tcp://127.0.0.1:{addresses[3 + n]}"},
                "listeners": {"state": on_state(peer_id)},
            }
        )
        raft.peer.log.append = slow(raft.peer.log.append)
        flavour.start(raft)
        rafts.append(raft)
    flavour.wait_until("a leader", lambda: bool(elected), 10.0)
    sock = flavour.dealer(dict(peers)[elected[0][0]])
    for _ in range(30):  # 3 s of writes, 32 at a time
        for _ in range(32):
            sock.send_multipart(m.RequestUpdate(new_request_id(time.time()), b"x" * 100).encode(b""))
        flavour.sleep(0.1)
    for raft in rafts:
        flavour.close(raft)
    assert elected == elected[:1], f"leaders elected: {elected}"
