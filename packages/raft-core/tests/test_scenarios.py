"""Data-driven scenario tests for the Raft node, after etcd-io/raft's testdata.

Each file in ``scenarios/`` is a script of commands; under each command, after ``----``, the
output it must produce (messages in their stable text form, states, logs).  Run with
``ZMQRAFT_REWRITE=1`` to regenerate the expected output after a deliberate change, then read
the diff: the expectations are the specification.

Commands (nodes are named by single words; time is global and only moves when told):

    options KEY=VALUE ...    RaftOptions of the nodes added after it (e.g. ``pre_vote=true``)
    cluster a b c            nodes a, b, c in one configuration (``spare d`` adds a non-member)
    campaign a               move time to a's election deadline and tick a
    tick a SECONDS           advance time and tick a
    persist [a ...]          run the pending storage jobs of the nodes (all if none given)
    deliver [a->b ...]       deliver the queued messages (only those links if given), printing them
    drop [a->b ...]          drop the queued messages (of those links)
    propose a TEXT           the leader a appends a STATE entry
    config a b c d           the leader (first name) starts a change to the configuration b c d
    compact a INDEX          install a compaction snapshot of a's log at INDEX
    status [a ...]           role, term, commit, durable and log range of each node
    log a                    a's entries as index/term/type
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import entry_term, entry_type
from zmqraft.core.protocol.reqid import RequestIdGenerator
from zmqraft.core.raft.inputs import PeerReply, PeerRequest, Propose, ProposeConfig
from zmqraft.core.raft.node import HardState, RaftNode
from zmqraft.core.raft.options import RaftOptions
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.executor import StorageExecutor
from zmqraft.core.storage.memory import MemoryLog, MemoryState

HERE = Path(__file__).parent / "scenarios"
REWRITE = os.environ.get("ZMQRAFT_REWRITE") == "1"
OPTIONS = RaftOptions(peer_msg_data_size=256, max_inflight_messages=4)


@dataclass
class Peer:
    node: RaftNode
    log: MemoryLog
    executor: StorageExecutor


@dataclass
class World:
    peers: dict[str, Peer] = field(default_factory=dict)
    queue: list[tuple[str, str, Any]] = field(default_factory=list)  # (from, to, message)
    now: float = 0.0
    counter: int = 0
    options: RaftOptions = OPTIONS

    def add(self, name: str, members: tuple[str, ...]) -> None:
        config = ClusterConfig(tuple((p, f"tcp://127.0.0.1:{9000 + i}") for i, p in enumerate(members)))
        log = MemoryLog()
        state = MemoryState()
        ids = RequestIdGenerator(random.Random(name), hostname=name, pid=0)
        node = RaftNode(
            name,
            log,
            HardState(config=config),
            self.options,
            random.Random(name),
            self.now,
            request_id_generator=ids,
            wall_ms=1_800_000_000_000,  # the scenarios' wall clock stands still
        )
        self.peers[name] = Peer(node, log, StorageExecutor(log, state))

    def collect(self) -> None:
        for name, peer in self.peers.items():
            for out in peer.node.take_outgoing():
                self.queue.append((name, out.peer if out.peer is not None else out.route, out.message))
            peer.node.take_events()

    def run(self, command: str, args: list[str]) -> list[str]:
        out = getattr(self, f"cmd_{command}")(args)
        self.collect()
        return out or []

    # ---- commands ---------------------------------------------------------------------------

    def cmd_options(self, args: list[str]) -> list[str]:
        changes: dict[str, Any] = {}
        for arg in args:
            key, _, value = arg.partition("=")
            changes[key] = value == "true" if value in ("true", "false") else float(value)
        self.options = dataclasses.replace(self.options, **changes)
        return []

    def cmd_cluster(self, names: list[str]) -> list[str]:
        for name in names:
            self.add(name, tuple(names))
        return self.cmd_status([])

    def cmd_spare(self, names: list[str]) -> list[str]:
        members = tuple(n for n in self.peers)
        for name in names:
            self.add(name, members)
        return self.cmd_status(names)

    def cmd_campaign(self, args: list[str]) -> list[str]:
        node = self.peers[args[0]].node
        deadline = node._election_deadline
        assert deadline is not None, f"{args[0]} has no election timer"
        self.now = max(self.now, deadline)
        node.tick(self.now)
        return self.cmd_status(args)

    def cmd_tick(self, args: list[str]) -> list[str]:
        self.now += float(args[1])
        self.peers[args[0]].node.tick(self.now)
        return []

    def cmd_persist(self, names: list[str]) -> list[str]:
        lines = []
        for name in names or list(self.peers):
            peer = self.peers[name]
            while (job := peer.node.next_storage_job()) is not None:
                peer.executor.run(job)
                peer.node.storage_done(job, self.now)
                lines.append(f"{name} {job}")
        return lines

    def _links(self, args: list[str]) -> set[tuple[str, str]] | None:
        return {tuple(a.split("->")) for a in args} if args else None  # type: ignore[misc]

    def cmd_deliver(self, args: list[str]) -> list[str]:
        links = self._links(args)
        lines = []
        batch, self.queue = self.queue, []
        for src, dst, msg in batch:
            if links is not None and (src, dst) not in links:
                self.queue.append((src, dst, msg))
                continue
            lines.append(f"{src}->{dst} {msg}")
            node = self.peers[dst].node
            if isinstance(msg, m.RequestVote | m.AppendEntries | m.InstallSnapshot | m.PreVote):
                node.step(PeerRequest(msg, src), self.now)  # the route of a reply: its sender's name
            else:
                node.step(PeerReply(src, msg), self.now)
        return lines

    def cmd_drop(self, args: list[str]) -> list[str]:
        links = self._links(args)
        kept = [q for q in self.queue if links is not None and (q[0], q[1]) not in links]
        dropped = len(self.queue) - len(kept)
        self.queue = kept
        return [f"dropped {dropped}"]

    def cmd_propose(self, args: list[str]) -> list[str]:
        node = self.peers[args[0]].node
        self.counter += 1
        rid = (1_800_000_000).to_bytes(4, "big") + self.counter.to_bytes(8, "big")
        index = node.step(Propose(rid, " ".join(args[1:]).encode()), self.now)
        node.end_batch(self.now)  # the end of this one-input batch, as the driver's round
        return [f"{args[0]} appended {index}"]

    def cmd_config(self, args: list[str]) -> list[str]:
        node = self.peers[args[0]].node
        urls = {p: f"tcp://127.0.0.1:{9000 + i}" for i, p in enumerate(self.peers)}
        joint = node.config.join([[p, urls[p]] for p in args[1:]])
        self.counter += 1
        rid = (1_800_000_000).to_bytes(4, "big") + self.counter.to_bytes(8, "big")
        index = node.step(ProposeConfig(joint, rid), self.now)
        return [f"{args[0]} appended C(old,new) at {index}: {joint}"]

    def cmd_compact(self, args: list[str]) -> list[str]:
        peer = self.peers[args[0]]
        index = int(args[1])
        term = peer.log.term_at(index)
        assert term is not None
        data = b"snapshot-up-to-%d" % index * 40
        peer.log.install_snapshot(SnapshotMeta(index, term, len(data)), data)
        peer.node.log_compacted()
        return [f"{args[0]} snapshot {index}/{term} of {len(data)} bytes; first index {peer.log.first_index}"]

    def cmd_status(self, names: list[str]) -> list[str]:
        lines = []
        for name in names or list(self.peers):
            n = self.peers[name].node
            lines.append(
                f"{name}: {n.role.value} term={n.term} vote={n.voted_for} leader={n.leader_id} "
                f"commit={n.commit_index} durable={n.durable_index} "
                f"log={n.log.first_index}..{n.log.last_index} "
                f"config={n.config}"
            )
        return lines

    def cmd_log(self, args: list[str]) -> list[str]:
        log = self.peers[args[0]].node.log
        kinds = {0: "STATE", 1: "CONFIG", 2: "CHECKPOINT"}
        return [
            f"{i}/{entry_term(e)} {kinds[entry_type(e)]}"
            for i, e in zip(
                range(log.first_index, log.last_index + 1), log.entries(log.first_index, log.last_index)
            )
        ]


def run_script(text: str) -> str:
    """Execute a scenario; return it with every command's output block filled in."""
    world = World()
    out: list[str] = []
    blocks = text.strip("\n").split("\n\n")
    for block in blocks:
        lines = block.split("\n")
        commands = [line for line in lines[: lines.index("----")]] if "----" in lines else lines
        result: list[str] = []
        for line in commands:
            if line.startswith("#") or not line.strip():
                continue
            word, *args = line.split()
            result += world.run(word, args)
        out.append("\n".join([*commands, "----", *result]))
    return "\n\n".join(out) + "\n"


SCENARIOS = sorted(HERE.glob("*.txt"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    expected = path.read_text()
    actual = run_script(expected)
    if REWRITE:
        path.write_text(actual)
    assert actual == expected


def test_there_are_scenarios_for_each_topic() -> None:
    assert {p.stem for p in SCENARIOS} >= {"election", "log_repair", "checkpoint", "membership", "snapshot"}
