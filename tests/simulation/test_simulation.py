"""Whole-cluster simulation: many seeded histories under faults, replay, and mutants.

CI runs the short mode; ``ZMQRAFT_SIM_SEEDS`` / ``ZMQRAFT_SIM_STEPS`` select the long one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.driver import PeerDriver
from zmqraft.core.raft import leader
from zmqraft.core.raft.node import RaftNode
from zmqraft.core.server import PeerServer
from zmqraft.core.simulation import SimOptions, Simulation
from zmqraft.core.simulation.cli import main as sim_main
from zmqraft.core.simulation.mutants import MUTANTS, Mutant, Patch, SeamMissing, mutant

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


# ---- mutants: deliberately broken cores must be caught ------------------------------------


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_caught_by_the_cli(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``zmq-raft-sim --mutant NAME`` runs the usual histories against a broken node and must
    exit non-zero (it stops at the first violation)."""
    assert sim_main(["--mutant", name, "--seeds", "400", "--steps", str(STEPS)]) == 1
    captured = capsys.readouterr()
    assert f"against mutant {name}" in captured.out and "1 failed" in captured.out
    assert "--- last events ---" in captured.err


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_seam_is_called(name: str) -> None:
    """A seam the histories never reach would leave its mutant testing nothing (a refactor
    that moves the rule elsewhere must move the mutant with it)."""
    total: Counter[str] = Counter()
    seams: set[str] = set()
    for seed in range(20):
        with mutant(name) as calls, contextlib.suppress(Exception):  # the mutant is caught: fine
            Simulation(seed, SimOptions(peers=3 + 2 * (seed % 2), steps=STEPS)).run()
        seams |= set(calls)
        total.update(calls)
        if all(total[seam] for seam in seams):
            break
    assert seams and all(total[seam] for seam in seams), f"seams never called: {dict(total)}"


def test_a_mutant_of_a_missing_seam_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = Mutant("a seam renamed away", (Patch(RaftNode, "_no_such_rule", lambda original: original),))
    monkeypatch.setitem(MUTANTS, "gone", gone)
    with pytest.raises(SeamMissing, match=r"RaftNode\._no_such_rule"), mutant("gone"):
        pass


def test_mutants_leave_the_production_code_untouched() -> None:
    targets = {id(p.target): p.target for m in MUTANTS.values() for p in m.patches}
    before = {key: dict(vars(target)) for key, target in targets.items()}
    with mutant("commit-old-term") as calls, mutant(None):
        assert vars(leader)["may_commit"] is not before[id(leader)]["may_commit"]
        assert set(calls) == {"leader.may_commit", "leader.needs_checkpoint"}
    assert {key: dict(vars(target)) for key, target in targets.items()} == before
    Simulation(5, SimOptions(steps=1500)).run()


def test_the_peer_driver_is_the_simulated_thing() -> None:
    """The simulator drives the runtimes' own PeerDriver (and through it a real PeerServer),
    so the order of a round (work, events, frames) is what the histories exercise."""
    sim = Simulation(3, SimOptions(steps=500))
    sim.run()
    running = [p for p in sim.peers.values() if p.driver is not None]
    assert len(running) >= 3
    assert all(type(p.driver) is PeerDriver and isinstance(p.server, PeerServer) for p in running)


def test_updates_are_proposed_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peers read their ROUTER in batches, as the runtimes drain it, so the histories must
    hold proposals of several updates at once (``ProposeBatch``) for the checker to judge."""
    sizes: Counter[int] = Counter()
    propose_batch = leader.Leader.propose_batch

    def counted(self: leader.Leader, msg: Any, now: float) -> int:
        sizes[len(msg.updates)] += 1
        return propose_batch(self, msg, now)

    monkeypatch.setattr(leader.Leader, "propose_batch", counted)
    for seed in range(10):
        Simulation(seed, SimOptions(peers=3, steps=2000)).run()
    assert sum(n for size, n in sizes.items() if size > 1) > 50, sizes
