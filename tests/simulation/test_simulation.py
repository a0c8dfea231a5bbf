"""Whole-cluster simulation: many seeded histories under faults, replay, and mutants.

CI runs the short mode; ``ZMQRAFT_SIM_SEEDS`` / ``ZMQRAFT_SIM_STEPS`` select the long one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.raft.node import RaftNode
from zmqraft.core.server import PeerServer
from zmqraft.core.simulation import SimOptions, Simulation, Violation
from zmqraft.core.simulation.cli import main as sim_main

SEEDS = int(os.environ.get("ZMQRAFT_SIM_SEEDS", "500"))
STEPS = int(os.environ.get("ZMQRAFT_SIM_STEPS", "3000"))
HERE = Path(__file__).parent


def test_many_histories_keep_every_safety_property(capsys: pytest.CaptureFixture[str]) -> None:
    """Seeds alternate 3- and 5-peer clusters; every third mixes in original-style followers."""
    assert sim_main(["--seeds", str(SEEDS), "--steps", str(STEPS)]) == 0
    out = capsys.readouterr().out
    assert f"{SEEDS} histories" in out and f"{SEEDS} passed, 0 failed" in out


@pytest.mark.parametrize("peers", [3, 4, 5, 6, 7])
def test_cluster_sizes(peers: int) -> None:
    for seed in range(4):
        Simulation(seed, SimOptions(peers=peers, steps=2000)).run()


def test_single_in_flight_reproduces_the_original() -> None:
    for seed in range(10):
        Simulation(seed, SimOptions(steps=2000, inflight=1, original_followers=True)).run()


def test_original_followers_with_deep_pipelines() -> None:
    for seed in range(20):
        Simulation(
            seed, SimOptions(peers=3 + seed % 3, steps=3000, inflight=64, original_followers=True)
        ).run()


def _trace(seed: int) -> tuple[list[str], int, float]:
    sim = Simulation(seed, SimOptions(peers=5, steps=2500))
    sim.trace_lines = type(sim.trace_lines)(maxlen=None)
    sim.run()
    return list(sim.trace_lines), sim.steps, sim.now


def test_a_seed_replays_exactly() -> None:
    first = _trace(11)
    assert first == _trace(11)
    assert first != _trace(12)
    assert len(first[0]) > 50


def test_faults_are_really_exercised() -> None:
    """The histories must contain the faults they claim to survive."""
    seen: dict[str, int] = {}
    for seed in range(30):
        sim = Simulation(seed, SimOptions(peers=3 + 2 * (seed % 2), steps=3000))
        sim.trace_lines = type(sim.trace_lines)(maxlen=None)
        sim.run()
        text = "\n".join(sim.trace_lines)
        for word in (
            "CRASH",
            "partition",
            "slow disk",
            "compacts",
            "config change committed",
            "-> LEADER",
            "acked",
        ):
            seen[word] = seen.get(word, 0) + text.count(word)
        installs = sum(
            p.server.node.log.snapshot.index > 0 for p in sim.peers.values() if p.server is not None
        )
        seen["snapshots"] = seen.get("snapshots", 0) + installs
    for word, count in seen.items():
        assert count > 0, f"no {word!r} in 30 histories"
    assert seen["acked"] > 30 * 20


def test_user_state_machine_under_the_simulator() -> None:
    env = dict(os.environ, PYTHONPATH=str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "zmqraft.core.simulation.cli",
            "--seeds",
            "6",
            "--steps",
            "2000",
            "--state-machine",
            "sample_machine:KeyValueMachine",
            "--jobs",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "6 passed, 0 failed" in result.stdout


def test_cli_exits_non_zero_and_prints_seed_and_trace_on_violation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _break_commit_rule(monkeypatch)
    assert sim_main(["--seeds", "40", "--steps", "3000", "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    assert "seed " in captured.err and "--- last events ---" in captured.err
    assert "failed" in captured.out


# ---- mutants: deliberately broken cores must be caught -------------------------------------


def _break_commit_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commit what a single follower acknowledged, without waiting for a majority (§5.3)."""
    from zmqraft.core.cluster import ClusterConfig

    def quorum_index(self: ClusterConfig, match: dict[str, int]) -> int:
        return max(match.values(), default=0)

    monkeypatch.setattr(ClusterConfig, "quorum_index", quorum_index)


def _break_vote_log_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grant votes without the candidate's log being up to date (Raft §5.4.1)."""
    from zmqraft.core.protocol.messages import RequestVote

    original = RaftNode.step_request_vote

    def step(self: RaftNode, msg: RequestVote, route: Any, now: float) -> None:
        forged = RequestVote(msg.msg_id, msg.candidate_id, msg.term, 1 << 40, 1 << 40)
        original(self, forged, route, now)

    monkeypatch.setattr(RaftNode, "step_request_vote", step)


def _break_durable_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Acknowledge votes and entries before they are durable (crashes then lose them)."""
    original = RaftNode._reply

    def reply(self: RaftNode, route: Any, message: Any, durable: bool = False) -> None:
        original(self, route, message, False)

    monkeypatch.setattr(RaftNode, "_reply", reply)


def _break_idempotency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the request-id cache: retried updates are appended again."""
    from zmqraft.core.rdb import RequestIdCache

    monkeypatch.setattr(RequestIdCache, "get", lambda self, rid: None)


def _break_pipelining(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-send the oldest message in flight instead of the newest (unsafe with
    original-style followers, which truncate after prevIndex)."""
    from zmqraft.core.raft.progress import Progress

    def newest(self: Progress) -> Any:
        if not self.inflight:
            return None
        key = next(iter(self.inflight))
        return key, self.inflight[key]

    monkeypatch.setattr(Progress, "newest", newest)


MUTANT_HISTORIES = 400  # each mutant is caught well within this (durable acks: seed 156)

MUTANTS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], dict[str, Any]]] = {
    "commit rule": (_break_commit_rule, {}),
    "vote log check": (_break_vote_log_check, {}),
    "durable acks": (_break_durable_acks, {}),
    "idempotency": (_break_idempotency, {}),
    "pipelining": (_break_pipelining, {"original_followers": True, "inflight": 32}),
}


def _histories(options: dict[str, Any], seeds: int) -> Iterator[Simulation]:
    for seed in range(seeds):
        yield Simulation(seed, SimOptions(peers=3 + 2 * (seed % 2), steps=3000, **options))


@pytest.mark.parametrize("name", list(MUTANTS))
def test_broken_variants_are_caught(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    breaker, options = MUTANTS[name]
    breaker(monkeypatch)
    for sim in _histories(options, MUTANT_HISTORIES):
        try:
            sim.run()
        except Violation:
            return
    pytest.fail(f"the simulator did not catch the broken {name} in {MUTANT_HISTORIES} histories")


def test_the_unbroken_core_passes_the_mutant_histories() -> None:
    for _name, (_breaker, options) in MUTANTS.items():
        for sim in _histories(options, 10):
            sim.run()


def test_peer_server_is_the_simulated_thing() -> None:
    sim = Simulation(3, SimOptions(steps=500))
    sim.run()
    assert all(isinstance(p.server, PeerServer) for p in sim.peers.values())
