"""What every runtime does with a PeerServer's jobs and events (``zmqraft.core.runtime``),
driven without any I/O: job routing, events told once, user code guarded, the web monitor's
``W`` answers and watchers."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_server import SOLE, THREE, WALL, Endpoint
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.config import create_options, validate_options
from zmqraft.core.jobs import ApplyJob, Job
from zmqraft.core.protocol import messages as m
from zmqraft.core.raft.node import ConfigChanged, Role, StateChanged
from zmqraft.core.runtime import PeerEvents
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import Reply, StateMachine
from zmqraft.core.webmonitor import WebMonitor, web_address

log = logging.getLogger("test.runtime")


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


def events(ep: Endpoint, machine: StateMachine, **listeners: Any) -> tuple[PeerEvents, list[ClusterConfig]]:
    connected: list[ClusterConfig] = []
    return PeerEvents(ep.server, machine, ep.log, listeners, connected.append, log), connected


def test_jobs_go_to_the_workers_and_non_blocking_machines_apply_at_once() -> None:
    for blocking in (True, False):
        ep = Endpoint(SOLE)
        machine = Machine(blocking)
        pe, _ = events(ep, machine)
        stored: list[Job] = []
        applied: list[ApplyJob] = []
        ep.server.receive_router(b"c", _update(ep, b"u"), ep.now, WALL)
        pe.drain(ep.now, WALL, stored.append, applied.append)
        assert stored and all(isinstance(j, Job) for j in stored)
        for job in stored:
            ep.executor.run(job)
            ep.server.complete_job(job, ep.now, WALL)
        pe.drain(ep.now, WALL, stored.append, applied.append)
        if blocking:
            assert applied and machine.last_applied == 0  # the worker applies it
            for job in applied:
                ep.server.complete_job(job, ep.now, WALL, job.last_index)
        else:
            assert not applied and machine.last_applied >= 1  # applied right here


def _update(ep: Endpoint, data: bytes) -> list[bytes]:
    return m.RequestUpdate(ep.ids.next(WALL), data).encode(b"")


def test_states_reach_the_machine_listeners_and_watchers_and_failing_listeners_do_not_stop_the_peer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ep = Endpoint(SOLE)
    machine = Machine(True)
    seen: list[tuple[Role, int]] = []

    def broken(role: Role, term: int) -> None:
        seen.append((role, term))
        raise RuntimeError("listener bug")

    pe, _ = events(ep, machine, state=broken)
    watched: list[object] = []
    pe.watchers.append(watched.append)
    follower, leader = StateChanged(Role.FOLLOWER, 3, None), StateChanged(Role.LEADER, 3, "a")
    with caplog.at_level(logging.ERROR, logger="test.runtime"):
        pe.handle(follower)
        pe.handle(leader)
    assert machine.states == [(Role.FOLLOWER, 3), (Role.LEADER, 3)] == seen
    assert watched == [follower, leader]
    assert "the state listener failed" in caplog.text


def test_a_new_configuration_connects_before_the_listeners_hear_of_it() -> None:
    ep = Endpoint(THREE)
    order: list[str] = []
    config = ClusterConfig(SOLE)
    pe = PeerEvents(
        ep.server,
        Machine(True),
        ep.log,
        {"config": lambda c: order.append("listener")},
        lambda c: order.append("connect"),
        log,
    )
    pe.handle(ConfigChanged(config))
    assert order == ["connect", "listener"]


def test_w_requests_go_to_the_web_monitor_and_the_rest_to_the_state_machine() -> None:
    ep = Endpoint(SOLE)
    machine = Machine(True)
    pe, _ = events(ep, machine)
    pe.handle(ClientRequest(b"r", b"\x01", b"W", ()))  # no monitor: the state machine's
    assert machine.requests == [b"W"]
    options = validate_options(create_options({"id": "a", "peers": [list(p) for p in SOLE]}))
    options["webmonitor"] = {**options["webmonitor"], "enable": True, "host": "h", "port": 9}
    address = web_address(options)
    assert address is not None
    pe.monitor = WebMonitor(ep.server, address)
    pe.handle(ClientRequest(b"r", b"\x02", b"W", ()))
    pe.handle(ClientRequest(b"r", b"\x03", b"X", ()))
    ep.pump()
    assert ep.router[b"r"] == [[b"\x02", b"http://h:9"]]
    assert machine.requests == [b"W", b"X"]
