"""The peer driver (``zmqraft.core.driver``) without any I/O: the order of a round (work,
events, frames; the configuration to connect before frames leave), where work goes
(storage and blocking state machines out, non-blocking machines applied in the round),
failures, the slow-disk warning, the compaction poll, events told to the state machine,
listeners and watchers, user code guarded, the web monitor's ``W`` answers."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from test_server import SOLE, THREE, WALL, Endpoint
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.config import create_options, validate_options
from zmqraft.core.driver import LEADER_WRITE_WAIT, Failure, Flush, InstallPoll, Lane, PeerDriver
from zmqraft.core.jobs import ApplyJob, Job
from zmqraft.core.protocol import messages as m
from zmqraft.core.raft.node import ConfigChanged, Role, StateChanged
from zmqraft.core.server import ClientRequest, PeerServer, hard_state_from
from zmqraft.core.statemachine import Reply, StateMachine
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.memory import MemoryLog, MemoryState
from zmqraft.core.webmonitor import WebMonitor, web_address


class Machine(StateMachine):
    def __init__(self, blocking: bool) -> None:
        super().__init__()
        self.blocking = blocking
        self.states: list[tuple[Role, int]] = []
        self.requests: list[bytes] = []

    def on_raft_state(self, role: Role, term: int) -> None:
        self.states.append((role, term))

    def on_client_request(self, request: ClientRequest, reply: Reply) -> bool:
        self.requests.append(request.type)
        return request.type == b"X"


def driver_of(
    peers: tuple[tuple[str, str], ...], machine: StateMachine, **kwargs: Any
) -> tuple[PeerDriver, MemoryLog]:
    log, state = MemoryLog(), MemoryState()
    state.update({"peers": ClusterConfig(peers).to_json()})
    server = PeerServer(
        "a", log, hard_state_from(dict(state.load())), now=0.0, wall=WALL, rng=random.Random(1)
    )
    return PeerDriver(server, machine, log, state, **kwargs), log


def settle(driver: PeerDriver, now: float = 0.0) -> None:
    """Rounds until no work is left, each item done at once (a sole member's election)."""
    for _ in range(100):
        out = driver.round(now, WALL)
        if not out.work:
            return
        for work in out.work:
            driver.complete(work, work.run(), now, WALL)
    raise AssertionError("work keeps coming")


def test_storage_work_goes_out_and_non_blocking_machines_apply_in_the_round() -> None:
    for blocking in (True, False):
        machine = Machine(blocking)
        driver, log = driver_of(SOLE, machine)
        settle(driver)
        before = log.last_index
        driver.receive_router(b"c", m.RequestUpdate(_rid(), b"u").encode(b""), 0.0, WALL)
        out = driver.round(0.0, WALL)
        (work,) = out.work
        assert work.lane is Lane.STORAGE and isinstance(work.item, Job)
        assert log.last_index == before  # nothing written until the runtime runs it
        driver.complete(work, work.run(), 0.001, WALL)
        assert log.last_index == before + 1
        out = driver.round(0.001, WALL)
        if blocking:
            (apply,) = out.work
            assert apply.lane is Lane.APPLY and isinstance(apply.item, ApplyJob)
            assert machine.last_applied == 0  # the runtime's apply lane runs it
            driver.complete(apply, apply.run(), 0.002, WALL)
            out = driver.round(0.002, WALL)
        else:
            assert out.work == [] and machine.last_applied >= 1  # applied right here
        committed = [m.RequestUpdateReply.decode(f) for _, f in out.router]
        assert committed[-1].status is m.UpdateStatus.COMMITTED


def _rid() -> bytes:
    from zmqraft.core.protocol.reqid import RequestIdGenerator

    return RequestIdGenerator(random.Random(5), hostname="t", pid=1).next(WALL)


def test_a_new_configuration_is_connected_before_the_frames_of_the_same_round() -> None:
    """A follower learns of a third peer from its leader: the round that sends to it also
    says to connect first (``Outputs.connect``), and the listener hears of it once."""
    heard: list[ClusterConfig] = []
    driver, _ = driver_of(THREE, Machine(True), listeners={"config": heard.append})
    out = driver.round(0.0, WALL)
    assert out.connect is None or out.connect.others("a")
    driver.handle_timer(5.0, WALL)  # campaign: RequestVotes to b and c
    out = driver.round(5.0, WALL)
    for work in out.work:
        driver.complete(work, work.run(), 5.0, WALL)
    out = driver.round(5.0, WALL)
    assert {peer for peer, _ in out.peers} == {"b", "c"}
    # a configuration change event in the same round as frames: connect is set with them
    driver.server._events.append(ConfigChanged(ClusterConfig(SOLE)))
    driver.server._peer_out.append(("b", [b"x"]))
    out = driver.round(5.0, WALL)
    assert out.connect == ClusterConfig(SOLE) and out.peers == [("b", [b"x"])]
    assert heard == [ClusterConfig(SOLE)]


def test_a_failed_storage_job_is_fatal(caplog: pytest.LogCaptureFixture) -> None:
    driver, log = driver_of(SOLE, Machine(True))
    settle(driver)
    driver.receive_router(b"c", m.RequestUpdate(_rid(), b"u").encode(b""), 0.0, WALL)
    (work,) = driver.round(0.0, WALL).work

    def broken(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    log.append = broken  # type: ignore[method-assign]
    outcome = work.run()
    assert isinstance(outcome, Failure) and isinstance(outcome.error, OSError)
    with caplog.at_level(logging.ERROR):
        driver.complete(work, outcome, 0.01, WALL)
    assert driver.failure is outcome.error
    assert "storage failed" in caplog.text


def test_a_slow_storage_job_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    driver, _ = driver_of(SOLE, Machine(True))
    settle(driver)
    driver.receive_router(b"c", m.RequestUpdate(_rid(), b"u").encode(b""), 0.0, WALL)
    (work,) = driver.round(0.0, WALL).work
    with caplog.at_level(logging.WARNING):
        driver.complete(work, work.run(), 0.5, WALL)
    assert "took 500 ms (slow disk?)" in caplog.text


def test_the_compaction_poll_is_storage_work_on_its_own_timer() -> None:
    polls: list[int] = []
    driver, log = driver_of(SOLE, Machine(True), install_poll_interval=2.0)

    def poll() -> SnapshotMeta | None:
        polls.append(1)
        return None if len(polls) < 2 else SnapshotMeta(0, 0, 0)

    log.poll_install_path = poll  # type: ignore[attr-defined]
    settle(driver)
    assert driver.next_deadline() is not None and driver.next_deadline() <= 2.0  # type: ignore[operator]
    assert not any(isinstance(w.item, InstallPoll) for w in driver.round(1.0, WALL).work)
    (work,) = [w for w in driver.round(2.0, WALL).work if isinstance(w.item, InstallPoll)]
    assert work.lane is Lane.STORAGE
    assert not driver.round(3.0, WALL).work  # one poll at a time
    driver.complete(work, work.run(), 3.0, WALL)
    assert not driver.round(4.0, WALL).work  # the next one 2 s after the last finished
    (work,) = driver.round(5.0, WALL).work
    driver.complete(work, Failure(ValueError("bad snapshot")), 5.0, WALL)
    assert driver.failure is None  # a refused snapshot is not fatal: the watching stops
    assert not driver.round(100.0, WALL).work


def test_states_reach_the_machine_listeners_and_watchers_and_failing_listeners_do_not_stop_the_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine = Machine(True)
    seen: list[tuple[Role, int]] = []

    def broken(role: Role, term: int) -> None:
        seen.append((role, term))
        raise RuntimeError("listener bug")

    driver, _ = driver_of(THREE, machine, listeners={"state": broken})
    watched: list[object] = []
    driver.watchers.append(watched.append)
    follower, leader = StateChanged(Role.FOLLOWER, 3, None), StateChanged(Role.LEADER, 3, "a")
    driver.round(0.0, WALL)
    machine.states.clear(), seen.clear(), watched.clear()
    driver.server._events.extend([follower, leader])
    with caplog.at_level(logging.ERROR):
        out = driver.round(0.0, WALL)
    assert out.events == [follower, leader]
    assert machine.states == [(Role.FOLLOWER, 3), (Role.LEADER, 3)] == seen
    assert watched == [follower, leader]
    assert "the state listener failed" in caplog.text


def test_w_requests_go_to_the_web_monitor_and_the_rest_to_the_state_machine() -> None:
    ep = Endpoint(SOLE)
    machine = Machine(True)
    driver = PeerDriver(ep.server, machine, ep.log, ep.state)
    ep.server._events.append(ClientRequest(b"r", b"\x01", b"W", ()))  # no monitor: the machine's
    driver.round(0.0, WALL)
    assert machine.requests == [b"W"]
    options = validate_options(create_options({"id": "a", "peers": [list(p) for p in SOLE]}))
    options["webmonitor"] = {**options["webmonitor"], "enable": True, "host": "h", "port": 9}
    address = web_address(options)
    assert address is not None
    driver.monitor = WebMonitor(ep.server, address)
    ep.server._events.extend([ClientRequest(b"r", b"\x02", b"W", ()), ClientRequest(b"r", b"\x03", b"X", ())])
    out = driver.round(0.0, WALL)
    assert (b"r", [b"\x02", b"http://h:9"]) in out.router
    assert machine.requests == [b"W", b"X"]


def test_the_close_listener_is_called_once_by_close() -> None:
    closed: list[int] = []
    driver, _ = driver_of(SOLE, Machine(True), listeners={"close": lambda: closed.append(1)})
    driver.close()
    assert closed == [1]


class Flushing(Machine):
    """Applies in the round; its applied index is made durable by ``flush`` on a timer."""

    flush_interval = 1.0

    def __init__(self) -> None:
        super().__init__(blocking=False)
        self.flushed: list[int] = []

    def flush(self) -> None:
        self.flushed.append(self.last_applied)


def test_the_state_machine_is_flushed_about_once_a_second_while_it_applies() -> None:
    machine = Flushing()
    driver, _ = driver_of(SOLE, machine)
    settle(driver)
    assert not [w for w in driver.round(5.0, WALL).work if isinstance(w.item, Flush)]  # nothing applied yet
    driver.receive_router(b"c", m.RequestUpdate(_rid(), b"u").encode(b""), 5.0, WALL)
    settle(driver, 5.0)
    assert machine.last_applied >= 1 and machine.flushed == []
    deadline = driver.next_deadline()
    assert deadline is not None and deadline <= 6.0
    (work,) = [w for w in driver.round(6.0, WALL).work if isinstance(w.item, Flush)]
    assert work.lane is Lane.APPLY
    assert not [w for w in driver.round(7.0, WALL).work if isinstance(w.item, Flush)]  # one at a time
    driver.complete(work, work.run(), 7.0, WALL)
    assert machine.flushed == [machine.last_applied]
    assert not [w for w in driver.round(9.0, WALL).work if isinstance(w.item, Flush)]  # nothing new


def test_storage_work_is_offered_inline_only_to_a_peer_that_does_not_lead() -> None:
    """``inline_storage``: a follower's write may run on the loop (its acknowledgement leaves
    sooner); a leader's never does (its heartbeats must not wait for a disk), and never while
    other storage work is outstanding (one write at a time)."""
    leader, _ = driver_of(SOLE, Machine(True))
    leader.inline_storage = True
    settle(leader)
    leader.receive_router(b"c", m.RequestUpdate(_rid(), b"u").encode(b""), 0.0, WALL)
    (work,) = leader.round(0.0, WALL).work
    assert leader.server.node.role is Role.LEADER and not work.inline

    follower, _ = driver_of(THREE, Machine(True), install_poll_interval=0.5)
    follower.inline_storage = True
    follower.round(0.0, WALL)
    follower.handle_timer(5.0, WALL)  # campaigns: its term and vote are storage work
    works = follower.round(5.0, WALL).work
    job = next(w for w in works if isinstance(w.item, Job))
    assert follower.server.node.role is Role.CANDIDATE and job.inline and not job.wait
    poll = next(w for w in works if isinstance(w.item, InstallPoll))
    assert not poll.inline  # handed out while the write is outstanding
    follower.inline_storage = False
    follower.complete(job, job.run(), 5.0, WALL)
    follower.complete(poll, None, 5.0, WALL)
    assert all(not w.inline for w in follower.round(5.0, WALL).work)


def test_the_leaders_loop_may_wait_for_its_own_write_only_while_writes_are_quick() -> None:
    """``Work.wait``: a leader's write (never inline) may be waited for by its loop, at most
    ``LEADER_WRITE_WAIT``; after a write that took longer, the next is not waited for, until
    a write is quick again; not while other storage work is outstanding, and not without
    ``inline_storage`` (peers sharing a loop with other work)."""
    from zmqraft.core.protocol.reqid import RequestIdGenerator

    ids = RequestIdGenerator(random.Random(5), hostname="t", pid=1)
    leader, _ = driver_of(SOLE, Machine(True), install_poll_interval=0.5)
    settle(leader)
    now = 0.0

    def write(took: float) -> Any:
        nonlocal now
        leader.receive_router(b"c", m.RequestUpdate(ids.next(WALL), b"u").encode(b""), now, WALL)
        works = leader.round(now, WALL).work
        job = next(w for w in works if isinstance(w.item, Job))
        now += took
        leader.complete(job, job.run(), now, WALL)
        for other in works:
            if other is not job:
                leader.complete(other, other.run(), now, WALL)
        return job

    assert write(0.001).wait == 0.0  # no inline_storage: never waited for
    leader.inline_storage = True
    assert leader.server.node.role is Role.LEADER
    quick = write(0.001)
    assert quick.wait == LEADER_WRITE_WAIT and not quick.inline
    assert write(LEADER_WRITE_WAIT * 4).wait == LEADER_WRITE_WAIT  # the first slow one: waited
    assert write(0.001).wait == 0.0  # ...so this one is not
    assert write(0.001).wait == LEADER_WRITE_WAIT  # the one before was quick again
    now += 1.0  # the compaction poll goes out first, then a write beside it
    poll = next(w for w in leader.round(now, WALL).work if isinstance(w.item, InstallPoll))
    leader.receive_router(b"c", m.RequestUpdate(ids.next(WALL), b"u").encode(b""), now, WALL)
    beside = next(w for w in leader.round(now, WALL).work if isinstance(w.item, Job))
    assert beside.wait == 0.0 and not poll.wait
