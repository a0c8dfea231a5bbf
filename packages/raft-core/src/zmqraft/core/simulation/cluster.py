"""A whole zmq-raft cluster in one thread, on a virtual clock, from one seed.

Every peer is a real :class:`~zmqraft.core.driver.PeerDriver` (the object the runtimes
drive, so their round order is simulated too) fed real frames; only the sockets, the disk and
the clock are simulated.  A peer reads its ROUTER ``READ_DELAY`` after a message arrives and
feeds all that came meanwhile as one batch, as a runtime drains its socket (so updates are
proposed several at once).  Storage jobs complete after a simulated disk latency; a crash loses
every job that had not completed (nothing unsynced survives), and what the peer had not
read.  The :class:`Checker` verifies Raft's safety properties after every step, and the run
ends with a liveness phase: faults healed, every peer up, a fresh update must commit in
bounded time.  Then, on the calm network, what the two extensions promise (``extensions``):
with check-quorum a leader cut off from everyone steps down within two election timeouts;
with pre-vote a follower cut off and let back in does not change the leader's term.  Each
history runs with check-quorum on or off and pre-vote on or off, as its seed says
(``SimOptions``).

(Over 500 lines on purpose: the event queue, the peers, the network deliveries, the clients
and the fault injection all draw from one seeded random stream in one order, which is what
makes a history replayable; kept in one module, a history reads top to bottom.  The network
model, the checker and the mutants are modules of their own.)
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..cluster import ClusterConfig
from ..driver import Failure, Lane, Outputs, PeerDriver, Work
from ..jobs import Job
from ..protocol import messages as m
from ..protocol.entry import EntryType, LogEntry
from ..protocol.reqid import RequestIdGenerator
from ..raft.node import ConfigCommitted, RaftError, Role, StateChanged
from ..raft.options import RaftOptions
from ..server import PeerServer, hard_state_from
from ..statemachine import SnapshotReader, StateMachine
from ..storage.base import SnapshotMeta
from ..storage.memory import MemoryLog, MemoryState
from .checker import Checker, Violation
from .network import Faults, Network, Partition

# The simulated peers' drivers log here, silenced: simulated slow disks would warn thousands of
# times, and the checker (not a log line) is what judges a history.
PEER_LOG = logging.getLogger("zmqraft.simulation.peers")
PEER_LOG.addHandler(logging.NullHandler())
PEER_LOG.propagate = False

CRASH_IN_FSYNC = 0.002  # per storage job, when faults are on
CRASH_IN_VOTE_FSYNC = 0.05  # per job that writes term/vote/config: the narrowest windows
EPOCH = 1_800_000_000.0  # wall clock at simulated time 0
# a peer reads its ROUTER this long after a message arrives: what came meanwhile is one batch
READ_DELAY = 0.0005
# The wall clock runs faster than the monotonic one, so that request ids expire (and the
# log can be compacted up to the prune index) within a short history.  The core must never
# assume the two clocks agree.
WALL_SPEED = 20.0


class DigestStateMachine:
    """The default simulated state machine: a hash chain over the applied STATE entries."""

    def __init__(self) -> None:
        self.digest = b"\x00" * 32

    def apply_entry(self, index: int, entry: LogEntry) -> None:
        if entry.type == EntryType.STATE:
            self.digest = hashlib.sha256(self.digest + entry.request_id + entry.data).digest()

    def snapshot(self) -> bytes:
        return self.digest

    def restore(self, data: bytes) -> None:
        self.digest = bytes(data)


class _SimApplier(StateMachine):
    """Feeds the simulation's state machine inside the driver's round (it does not block),
    so the checker sees every applied entry."""

    blocking = False

    def __init__(self, apply: Callable[[list[bytes], int, SnapshotReader | None], int]) -> None:
        super().__init__()
        self._apply = apply

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        return self._apply(entries, next_index, snapshot)


@dataclass(slots=True)
class SimOptions:
    peers: int = 3
    spares: int = 1
    clients: int = 3
    steps: int = 3000
    faults: bool = True
    original_followers: bool = False  # some followers truncate like the original
    inflight: int = 16
    state_machine: Callable[[], Any] = DigestStateMachine
    liveness_bound: float = 15.0
    check_quorum: bool | None = None  # None: as the seed says (three histories in four)
    pre_vote: bool | None = None  # None: as the seed says (every other pair of seeds)


@dataclass(slots=True)
class SimPeer:
    id: str
    url: str
    log: MemoryLog
    state: MemoryState
    driver: PeerDriver | None = None
    machine: Any = None
    job: Work | None = None
    timer_gen: int = 0
    epoch: int = 0
    disk_slow_until: float = 0.0
    applied_index: int = 0
    states: dict[int, bytes] = field(default_factory=dict)  # recent index -> machine state
    # ROUTER messages that arrived since the peer last read its socket, read as one batch
    # (``receive_router_batch``, as the runtimes drain it) ``READ_DELAY`` after the first
    inbox: list[list[bytes]] = field(default_factory=list)

    @property
    def server(self) -> PeerServer | None:
        return None if self.driver is None else self.driver.server


@dataclass(slots=True)
class SimClient:
    id: str
    peers: list[str]
    target: str
    rid: bytes | None = None
    data: bytes = b""
    started: float = 0.0
    sent_at: float = 0.0
    timer_gen: int = 0
    done: int = 0
    config_change: Any = None  # a ConfigUpdate peer list instead of an update


@dataclass(order=True, slots=True)
class _Event:
    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class Simulation:
    def __init__(self, seed: int, options: SimOptions | None = None) -> None:
        self.seed = seed
        self.opts = options or SimOptions()
        self.check_quorum = self.opts.check_quorum
        if self.check_quorum is None:
            self.check_quorum = (seed // 2) % 4 != 3
        self.pre_vote = self.opts.pre_vote
        if self.pre_vote is None:
            self.pre_vote = (seed // 2) % 2 == 1
        self.clients_paused = False
        self.rng = random.Random(seed)
        # a request-id cache small enough to evict under load in two histories of three
        self.request_id_cache_max = random.Random(seed ^ 0x5EED).choice((None, 6, 40))
        self.now = 0.0
        self.steps = 0
        self._queue: list[_Event] = []
        self._seq = 0
        self.trace_lines: deque[str] = deque(maxlen=int(__import__("os").environ.get("SIM_TRACE", "60")))
        self.checker = Checker(trace=self.trace)
        faults = Faults()
        if self.opts.faults:
            faults = Faults(loss=0.02, duplicate=0.02, jitter=0.05)
        self.net = Network(random.Random(self.rng.random()), faults)
        n = self.opts.peers
        self.members = [(f"p{i}", f"tcp://127.0.0.1:{8000 + i}") for i in range(1, n + 1)]
        self.spares = [
            (f"p{i}", f"tcp://127.0.0.1:{8000 + i}") for i in range(n + 1, n + 1 + self.opts.spares)
        ]
        self.peers: dict[str, SimPeer] = {}
        seed_config = ClusterConfig(tuple(self.members)).to_json()
        for pid, url in self.members + self.spares:
            mem_log = MemoryLog()
            state = MemoryState()
            state.update({"peers": seed_config})
            peer = SimPeer(pid, url, mem_log, state)
            if self.opts.original_followers and pid in ("p2", f"p{n + 1}"):
                self.net.fifo_nodes.add(pid)
            self.peers[pid] = peer
        self.clients = [
            SimClient(f"c{i}", [p for p, _ in self.members], self.members[i % n][0])
            for i in range(1, self.opts.clients + 1)
        ]
        self._vote_requests: dict[tuple[str, bytes, bytes], list[bytes]] = {}
        self._client_ids = RequestIdGenerator(random.Random(self.rng.random()), hostname="sim-clients", pid=0)

    # ------------------------------------------------------------------ plumbing

    def trace(self, line: str) -> None:
        self.trace_lines.append(f"{self.now:9.4f} {line}")

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Event(when, self._seq, action))

    @property
    def wall(self) -> float:
        return EPOCH + self.now * WALL_SPEED

    def options_for(self, pid: str) -> RaftOptions:
        return RaftOptions(
            max_inflight_messages=self.opts.inflight,
            truncate_on_match=pid in self.net.fifo_nodes,
            request_id_ttl=60.0,
            request_id_cache_max=self.request_id_cache_max,
            request_id_cache_retain=1.0,  # wall seconds: a history lasts about a minute of them
            request_id_ttl_accept_margin=5.0,
            request_id_cache_sweep_interval=0.5,
            check_quorum=bool(self.check_quorum),
            pre_vote=bool(self.pre_vote),
        )

    # ------------------------------------------------------------------ peers

    def start_peer(self, peer: SimPeer) -> None:
        peer.epoch += 1
        peer.inbox = []  # unread at the crash: lost with the process
        peer.machine = self.opts.state_machine()
        peer.applied_index = 0
        peer.states = {}
        peer.job = None
        hard = hard_state_from(dict(peer.state.load()))
        server = PeerServer(
            peer.id,
            peer.log,
            hard,
            now=self.now,
            wall=self.wall,
            options=self.options_for(peer.id),
            rng=random.Random(self.rng.random()),
            last_applied=0,
            request_id_generator=RequestIdGenerator(
                random.Random(self.rng.random()), hostname=peer.id, pid=peer.epoch
            ),
        )
        peer.driver = PeerDriver(
            server, _SimApplier(partial(self._apply, peer)), peer.log, peer.state, logger=PEER_LOG
        )
        self.trace(f"{peer.id} start (epoch {peer.epoch}) term={hard.term} last={peer.log.last_index}")
        self.pump(peer)

    def crash_peer(self, peer: SimPeer) -> None:
        self.trace(f"{peer.id} CRASH (job lost: {peer.job is not None})")
        peer.driver = None
        peer.job = None
        peer.timer_gen += 1
        self.checker.forget_volatile(peer.id)

    def pump(self, peer: SimPeer) -> None:
        """One round of the peer's driver, acted on as a runtime does: work (storage after a
        simulated disk latency; the state machine is applied inside the round), then the
        frames; then the checker looks at the peer and its timer is re-armed."""
        driver = peer.driver
        if driver is None:
            return
        out = driver.round(self.now, self.wall)
        for work in out.work:
            if work.lane is Lane.STORAGE:
                self._store(peer, work)
        self._send_all(peer, out)
        server = driver.server
        for event in out.events:
            if isinstance(event, StateChanged):
                self.trace(f"{peer.id} -> {event.role.value} term={event.term} leader={event.leader_id}")
                if event.role is Role.LEADER:
                    self.checker.on_leader(peer.id, event.term, server.node.log)
            elif isinstance(event, ConfigCommitted):
                self.checker.on_leader_config(peer.id, event.joint_index, server.node.commit_index)
            elif isinstance(event, RaftError):
                raise Violation(f"{peer.id}: {event.message}")
        node = server.node
        self.checker.on_commit(peer.id, node.commit_index, node.log.last_index, node.log.snapshot.index)
        if node.role is Role.LEADER:
            commit_term = node.log.term_at(node.commit_index)
            self.checker.on_leader_commit(peer.id, node.term, node.commit_index, commit_term)
        deadline = driver.next_deadline()
        if deadline is not None:
            peer.timer_gen += 1
            gen = peer.timer_gen
            self.at(max(deadline, self.now), partial(self._timer, peer, gen))

    def _store(self, peer: SimPeer, work: Work) -> None:
        """A storage job becomes durable after a disk latency, unless the peer crashes first."""
        job = work.item
        assert isinstance(job, Job)
        peer.job = work
        latency = self.rng.uniform(0.0005, 0.003)
        if self.now < peer.disk_slow_until:
            latency += self.rng.uniform(0.02, 0.2)
        epoch = peer.epoch
        risk = CRASH_IN_VOTE_FSYNC if job.state else CRASH_IN_FSYNC
        if self.opts.faults and self.rng.random() < risk:
            # power loss while the write is in flight: it never becomes durable
            self.at(self.now + latency / 2, partial(self._crash_in_fsync, peer, epoch))
        self.at(self.now + latency, partial(self._storage_done, peer, work, epoch))

    def _timer(self, peer: SimPeer, gen: int) -> None:
        if peer.driver is None or gen != peer.timer_gen:
            return
        peer.driver.handle_timer(self.now, self.wall)
        self.pump(peer)

    def _storage_done(self, peer: SimPeer, work: Work, epoch: int) -> None:
        if peer.driver is None or peer.epoch != epoch or peer.job is not work:
            return
        outcome = work.run()
        if isinstance(outcome, Failure):
            raise outcome.error
        peer.job = None
        job = work.item
        assert isinstance(job, Job)
        if job.state and ("currentTerm" in job.state or "votedFor" in job.state):
            state = peer.state.load()
            self.checker.on_durable_vote(peer.id, int(state.get("currentTerm") or 0), state.get("votedFor"))
        peer.driver.complete(work, outcome, self.now, self.wall)
        self.pump(peer)

    def _apply(
        self, peer: SimPeer, entries: list[bytes], first_index: int, snapshot: SnapshotReader | None
    ) -> int:
        machine = peer.machine
        if snapshot is not None:
            data = snapshot.read(0, snapshot.size)
            machine.restore(data)
            self.checker.on_snapshot_state(peer.id, snapshot.index, bytes(machine.snapshot()))
            peer.applied_index = snapshot.index
        for pos, raw in enumerate(entries):
            index = first_index + pos
            if index != peer.applied_index + 1:
                raise Violation(f"{peer.id} applies {index} after {peer.applied_index}")
            machine.apply_entry(index, LogEntry.from_bytes(raw, index))
            peer.applied_index = index
            state = bytes(machine.snapshot())
            peer.states[index] = state
            peer.states.pop(index - 512, None)
            self.checker.on_apply(peer.id, index, raw, state)
        return first_index + len(entries) - 1 if entries else peer.applied_index

    # ------------------------------------------------------------------ network

    def _send_all(self, peer: SimPeer, out: Outputs) -> None:
        """The round's frames onto the simulated network (PUB broadcasts are not simulated)."""
        routing = f"P:{peer.id}:{peer.epoch}".encode()
        for dst, frames in out.peers:
            for when in self.net.schedule(peer.id, dst, self.now):
                self.at(when, partial(self._deliver_router, dst, routing, frames))
        for address, frames in out.router:
            self._send_reply(peer, address, frames)

    def _send_reply(self, peer: SimPeer, address: bytes, frames: list[bytes]) -> None:
        request = self._vote_requests.pop((peer.id, address, frames[0]), None)
        if request is not None:
            vote = m.RequestVoteReply.decode(frames)
            if vote.vote_granted:
                self.checker.on_vote_sent(peer.id, vote.term, m.RequestVote.decode(request).candidate_id)
        kind, name, *rest = address.decode().split(":")
        for when in self.net.schedule(peer.id, name, self.now):
            if kind == "P":
                epoch = int(rest[0])
                self.at(when, partial(self._deliver_reply, name, peer.id, epoch, frames))
            else:
                self.at(when, partial(self._client_reply, name, peer.id, frames))

    def _crash_in_fsync(self, peer: SimPeer, epoch: int) -> None:
        if peer.server is not None and peer.epoch == epoch and peer.job is not None:
            self.crash_peer(peer)
            self.at(self.now + self.rng.uniform(0.05, 1.0), partial(self._restart, peer))

    def _deliver_router(self, dst: str, routing: bytes, frames: list[bytes]) -> None:
        peer = self.peers[dst]
        if peer.driver is None:
            return
        if len(frames) > 3 and frames[1] == m.REQUEST_VOTE:
            # remember the request so that the vote it gets can be checked (one per term)
            self._vote_requests[(dst, routing, frames[0])] = frames
        if not peer.inbox:
            self.at(self.now + READ_DELAY, partial(self._read_router, peer, peer.epoch))
        peer.inbox.append([routing, *frames])

    def _read_router(self, peer: SimPeer, epoch: int) -> None:
        if peer.driver is None or peer.epoch != epoch:
            return  # crashed since: what it had not read is lost (cleared at the restart)
        batch, peer.inbox = peer.inbox, []
        peer.driver.receive_router_batch(batch, self.now, self.wall)
        self.pump(peer)

    def _deliver_reply(self, dst: str, src: str, epoch: int, frames: list[bytes]) -> None:
        peer = self.peers[dst]
        if peer.driver is None or peer.epoch != epoch:
            return
        peer.driver.receive_peer(src, frames, self.now, self.wall)
        self.pump(peer)

    # ------------------------------------------------------------------ clients

    def _new_rid(self) -> bytes:
        return self._client_ids.next(self.wall)

    def client_submit(self, client: SimClient) -> None:
        if self.clients_paused:
            return
        client.rid = self._new_rid()
        client.data = f"{client.id}-{client.done}".encode()
        client.started = self.now
        self._client_send(client)

    def _client_send(self, client: SimClient) -> None:
        assert client.rid is not None
        if client.config_change is not None:
            frames = m.ConfigUpdate(client.rid, client.config_change).encode(b"")
        else:
            frames = m.RequestUpdate(client.rid, client.data).encode(b"")
        client.sent_at = self.now
        routing = f"C:{client.id}".encode()
        for when in self.net.schedule(client.id, client.target, self.now):
            self.at(when, partial(self._deliver_router, client.target, routing, frames))
        client.timer_gen += 1
        gen = client.timer_gen
        self.at(self.now + 0.5, partial(self._client_timeout, client, gen))

    def _client_timeout(self, client: SimClient, gen: int) -> None:
        if gen != client.timer_gen or client.rid is None:
            return
        if self.now - client.started > 10.0 and client.config_change is None:
            self.trace(f"{client.id} gives up {client.rid.hex()}")
            if self.healed:
                raise Violation(f"liveness: {client.id} gave up {client.rid.hex()} in a healed cluster")
            client.rid = None
            client.timer_gen += 1
            self.at(self.now + 0.1, partial(self.client_submit, client))
            return
        client.target = self.rng.choice(client.peers)
        self._client_send(client)

    def _client_reply(self, name: str, src: str, frames: list[bytes]) -> None:
        client = next((c for c in self.clients if c.id == name), None)
        if client is None:
            client = self._admin if self._admin is not None and self._admin.id == name else None
        if client is None or client.rid is None or frames[0] != client.rid:
            return
        if client.config_change is not None:
            self._config_reply(client, m.ConfigUpdateReply.decode(frames))
            return
        reply = m.RequestUpdateReply.decode(frames)
        if reply.status is m.UpdateStatus.COMMITTED:
            assert reply.index is not None
            self.checker.on_ack(client.rid, reply.index)
            self.trace(f"{client.id} acked {client.rid.hex()} at {reply.index}")
            client.done += 1
            client.rid = None
            client.timer_gen += 1
            self.at(self.now + self.rng.uniform(0.0, 0.02), partial(self.client_submit, client))
        elif reply.status is m.UpdateStatus.ACCEPTED:
            client.timer_gen += 1
            gen = client.timer_gen
            self.at(self.now + 0.5, partial(self._client_timeout, client, gen))
        elif reply.status is m.UpdateStatus.NOT_LEADER:
            if reply.leader_id is not None and reply.leader_id in self.peers:
                if reply.leader_id not in client.peers:  # learnt, as a real client's config refresh does
                    client.peers.append(reply.leader_id)
                client.target = reply.leader_id
            else:
                client.target = self.rng.choice(client.peers)
            client.timer_gen += 1
            gen = client.timer_gen
            self.at(self.now + 0.05, partial(self._resend, client, gen))
        else:  # expired: the request id is too old to be retried safely; start a new update
            self.trace(f"{client.id} update {client.rid.hex()} expired")
            client.rid = None
            client.timer_gen += 1
            self.at(self.now + 0.01, partial(self.client_submit, client))

    def _resend(self, client: SimClient, gen: int) -> None:
        if gen == client.timer_gen and client.rid is not None:
            self._client_send(client)

    # ------------------------------------------------------------------ membership

    _admin: SimClient | None = None

    def change_membership(self) -> None:
        """Add a spare, remove a member or replace one, through a ConfigUpdate."""
        if self._admin is not None and self._admin.rid is not None:
            return
        current = self.current_members()
        if current is None:
            return
        ids = [p for p, _ in current]
        spares = [p for p in self.peers if p not in ids]
        urls = {p.id: p.url for p in self.peers.values()}
        choice = self.rng.random()
        new = list(ids)
        if spares and (choice < 0.4 or len(ids) <= 3):
            new.append(self.rng.choice(spares))
        elif len(ids) > 3 and choice < 0.7:
            new.remove(self.rng.choice(ids))
        elif spares:
            new.remove(self.rng.choice(ids))
            new.append(self.rng.choice(spares))
        else:
            return
        peers = [[p, urls[p]] for p in new]
        admin = SimClient("admin", list(self.peers), self.rng.choice(ids), config_change=peers)
        self._admin = admin
        admin.rid = self._new_rid()
        admin.started = self.now
        self.trace(f"admin config change {ids} -> {new}")
        self._client_send(admin)

    def _config_reply(self, admin: SimClient, reply: m.ConfigUpdateReply) -> None:
        status = reply.status
        if status is m.ConfigUpdateStatus.ACCEPTED and reply.index is not None:
            self.trace(f"admin config change committed at {reply.index}")
            admin.rid = None
            admin.timer_gen += 1
            for client in self.clients:
                client.peers = list(self.peers)
        elif status is m.ConfigUpdateStatus.ACCEPTED:
            admin.timer_gen += 1
            gen = admin.timer_gen
            self.at(self.now + 0.5, partial(self._client_timeout, admin, gen))
        elif status is m.ConfigUpdateStatus.NOT_LEADER:
            admin.target = (
                reply.leader_id if reply.leader_id in self.peers else self.rng.choice(list(self.peers))
            )
            admin.timer_gen += 1
            gen = admin.timer_gen
            self.at(self.now + 0.05, partial(self._resend, admin, gen))
        else:
            self.trace(f"admin config change ends with {status.name} {reply.error_message or ''}")
            admin.rid = None
            admin.timer_gen += 1

    def current_members(self) -> tuple[tuple[str, str], ...] | None:
        for peer in self.peers.values():
            if peer.server is not None and peer.server.node.role is Role.LEADER:
                config = peer.server.node.config
                return None if config.is_joint else config.old
        return None

    # ------------------------------------------------------------------ faults

    def inject_fault(self) -> None:
        r = self.rng.random()
        alive = [p for p in self.peers.values() if p.server is not None]
        if r < 0.25 and len(alive) > 1:
            # crashes that hurt most: the leader, or a peer in the middle of a write
            writing = [p for p in alive if p.job is not None]
            leaders = [p for p in alive if p.server is not None and p.server.node.role is Role.LEADER]
            pick = self.rng.random()
            if writing and pick < 0.4:
                peer = self.rng.choice(writing)
            elif leaders and pick < 0.7:
                peer = self.rng.choice(leaders)
            else:
                peer = self.rng.choice(alive)
            self.crash_peer(peer)
            self.at(self.now + self.rng.uniform(0.1, 2.0), partial(self._restart, peer))
        elif r < 0.45:
            ids = list(self.peers)
            self.rng.shuffle(ids)
            cut = self.rng.randint(1, len(ids) - 1)
            symmetric = self.rng.random() < 0.6
            until = self.now + self.rng.uniform(0.2, 3.0)
            part = Partition(frozenset(ids[:cut]), frozenset(ids[cut:]), symmetric, until)
            self.net.partitions.append(part)
            self.trace(
                f"partition {sorted(part.a)} {'<->' if symmetric else '->'} {sorted(part.b)}"
                f" until {until:.3f}"
            )
        elif r < 0.6 and alive:
            peer = self.rng.choice(alive)
            peer.disk_slow_until = self.now + self.rng.uniform(0.2, 2.0)
            self.trace(f"{peer.id} slow disk until {peer.disk_slow_until:.3f}")
        elif r < 0.75:
            self.change_membership()
        elif alive:
            self.compact(self.rng.choice(alive))

    def _restart(self, peer: SimPeer) -> None:
        if peer.server is None:
            self.start_peer(peer)

    def compact(self, peer: SimPeer) -> None:
        """Install a compaction snapshot of the peer's state machine at its last applied index."""
        server = peer.server
        if server is None or peer.job is not None:
            return
        node = server.node
        # not past the oldest cached request id: idempotency must survive the compaction
        index = min(peer.applied_index, node.durable_index, node.request_ids.prune_index(node.log.last_index))
        term = node.log.term_at(index)
        if index <= node.log.snapshot.index or term is None or index < node.log.first_index:
            return
        data = peer.states.get(index)
        if data is None:
            return
        peer.log.install_snapshot(SnapshotMeta(index, term, len(data)), data)
        self.trace(f"{peer.id} compacts up to {index}")
        assert peer.driver is not None
        peer.driver.snapshot_installed(self.now)
        self.pump(peer)

    # ------------------------------------------------------------------ running

    def run(self) -> None:
        for peer in self.peers.values():
            self.start_peer(peer)
        for client in self.clients:
            self.at(self.rng.uniform(0.3, 0.6), partial(self.client_submit, client))
        next_fault = 0.5
        next_matching = 200
        while self.steps < self.opts.steps and self._queue:
            event = heapq.heappop(self._queue)
            self.now = event.at
            if self.opts.faults and self.now >= next_fault:
                next_fault = self.now + self.rng.uniform(0.05, 0.5)
                self.inject_fault()
            event.action()
            self.steps += 1
            if self.steps >= next_matching:
                next_matching += 200
                self.check_logs()
        self.check_logs()
        self.liveness()
        self.extensions()

    def check_logs(self) -> None:
        logs = {p.id: p.server.node.log for p in self.peers.values() if p.server is not None}
        self.checker.log_matching(logs)

    healed = False

    def liveness(self) -> None:
        """Heal everything; every pending update and a fresh one must finish in bounded time.

        An update finishes when it is acknowledged, or when its request id has become too old
        to be retried safely (EXPIRED); giving up is a liveness failure once healed."""
        self.healed = True
        self.net.heal()
        self.net.faults = Faults()
        for peer in self.peers.values():
            peer.disk_slow_until = 0.0
            if peer.server is None:
                self.start_peer(peer)
        probe = SimClient("probe", list(self.peers), self.rng.choice(list(self.peers)))
        self.clients.append(probe)
        admin = [self._admin] if self._admin is not None else []
        pending = {c.id: c.rid for c in self.clients + admin if c.rid is not None}
        for client in self.clients + admin:
            client.started = self.now  # patience counts from the heal
        self.trace(f"liveness: healed; {len(pending)} pending; probe update")
        self.client_submit(probe)
        owners = {c.id: c for c in self.clients + admin}

        def finished() -> bool:
            return probe.done > 0 and all(owners[cid].rid != rid for cid, rid in pending.items())

        deadline = self.now + self.opts.liveness_bound
        while self._queue and not finished():
            event = heapq.heappop(self._queue)
            if event.at > deadline:
                break
            self.now = event.at
            event.action()
        if not finished():
            late = [cid for cid, rid in pending.items() if owners[cid].rid == rid]
            raise Violation(
                f"liveness: within {self.opts.liveness_bound}s after healing, probe done={probe.done}, "
                f"still pending: {late}"
            )
        self.check_logs()

    # ------------------------------------------------------------------ extensions

    def extensions(self) -> None:
        """After liveness, on a network without faults: what check-quorum and pre-vote promise."""
        if not (self.check_quorum or self.pre_vote):
            return
        self.opts.faults = False  # no more crashes in fsync
        if self.check_quorum:
            self._isolated_leader_steps_down()
        if self.pre_vote:
            self._rejoining_peer_keeps_the_term()
        self.check_logs()

    def _run_until(self, deadline: float, done: Callable[[], bool] = lambda: False) -> None:
        while self._queue and self._queue[0].at <= deadline and not done():
            event = heapq.heappop(self._queue)
            self.now = event.at
            event.action()
            self.steps += 1
        if not done():
            self.now = max(self.now, deadline)

    def _stable_leader(self) -> tuple[SimPeer, int, list[str]]:
        """Wait for a leader that every member of its configuration follows, its (final)
        configuration committed."""
        found: list[tuple[SimPeer, int, list[str]]] = []

        def stable() -> bool:
            for peer in self.peers.values():
                node = None if peer.server is None else peer.server.node
                if node is None or node.role is not Role.LEADER or node.config.is_joint:
                    continue
                if not node.config.is_member(peer.id) or node.commit_index < (node.config_index or 0):
                    continue  # a change still under way (a leader leaving C(new) steps down)
                members = [p for p, _ in node.config.others(peer.id)]
                if all(
                    (s := self.peers[p].server) is not None
                    and s.node.leader_id == peer.id
                    and s.node.term == node.term
                    for p in members
                ):
                    found.append((peer, node.term, members))
                    return True
            return False

        self._run_until(self.now + self.opts.liveness_bound, stable)
        if not found:
            raise Violation("extensions: no stable leader on a calm network")
        return found[0]

    def _isolated_leader_steps_down(self) -> None:
        """Check-quorum: a leader cut off from every other peer leads for at most two election
        timeouts (it steps down after one without a reply from a majority)."""
        self._run_until(self.now + 2.0)  # its followers' slack settles (raft/leader.py)
        leader, term, _members = self._stable_leader()
        others = frozenset(p for p in self.peers if p != leader.id)
        cut = Partition(frozenset({leader.id}), others, True, float("inf"))
        self.net.partitions.append(cut)
        bound = 2 * self.options_for(leader.id).election_timeout_max
        self.trace(f"extensions: {leader.id} (term {term}) cut off from everyone")
        start = self.now

        def stepped_down() -> bool:
            node = None if leader.server is None else leader.server.node
            return node is None or node.role is not Role.LEADER or node.term != term

        self._run_until(start + bound, stepped_down)
        if not stepped_down():
            raise Violation(
                f"check-quorum: {leader.id} cut off at {start:.3f} still leads term {term} after {bound}s"
            )
        self.net.heal()
        self._stable_leader()

    def _rejoining_peer_keeps_the_term(self) -> None:
        """Pre-vote: a follower cut off from everyone and let back in does not raise anyone's
        term (the clients pause, so that its log is as up to date as the others')."""
        self.clients_paused = True
        leader, term, members = self._stable_leader()
        follower = self.rng.choice(members)
        others = frozenset(p for p in self.peers if p != follower)
        self.net.partitions.append(Partition(frozenset({follower}), others, True, float("inf")))
        self.trace(f"extensions: follower {follower} of {leader.id} (term {term}) cut off")
        self._run_until(self.now + 1.0)
        self.net.heal()
        self.trace(f"extensions: {follower} let back in")
        self._run_until(self.now + 1.0)
        terms = {p: s.node.term for p in [leader.id, *members] if (s := self.peers[p].server) is not None}
        node = None if leader.server is None else leader.server.node
        if node is None or node.role is not Role.LEADER or any(t != term for t in terms.values()):
            raise Violation(
                f"pre-vote: after {follower} rejoined, terms {terms} (leader {leader.id} had {term})"
            )
        self.clients_paused = False


def load_state_machine(spec: str) -> Callable[[], Any]:
    """``module:Class`` → the class (a factory of state machines for the simulator)."""
    module_name, _, attr = spec.partition(":")
    factory: Callable[[], Any] = getattr(importlib.import_module(module_name), attr)
    return factory
