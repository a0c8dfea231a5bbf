"""The Raft consensus state machine of one peer (spec/raft.md), without any I/O.

Theory of operation (after etcd-io/raft's ``raft.go``): every input is a call that takes
``now`` (monotonic seconds):

* ``step(input, now)``: a peer's request or reply, a debounced re-send, a local proposal
  (raft/inputs.py); it returns a proposal's log index;
* ``tick(now)``: the passage of time (``next_deadline()`` says when it is next needed);
* ``storage_done(job, now)`` / ``apply_done(job, ...)``: the acknowledgement of work the
  node handed out (etcd's ``Advance``); ``catch_up_*``: a non-member's catch-up (§10.4).

The node never writes anything itself.  It queues

* storage jobs (``next_storage_job``): term/vote/config updates, log truncations and appends,
  snapshot chunks; at most one is in flight, so everything that arrives during one fsync goes
  into the next (group commit);
* outgoing messages (``take_outgoing``): each held until the storage job whose durability it
  promises is acknowledged (raft/outbox.py), so vote grants and append acknowledgements never
  leave before the state they promise is on disk, whatever the runtime does;
* apply jobs (``next_apply_job``): committed, durable entries for the state machine;
* events (``take_events``): role, term, leader and configuration changes, errors (events.py).

``step`` first does what every role does alike (as etcd's ``Step``): requests of unknown
peers are dropped; RequestVote, AppendEntries and InstallSnapshot are answered by the same
rules in every role (election.py, follower.py); a reply that carries a newer term makes any
role a follower.  Everything else goes to the role handler (roles.py), an object swapped by
``_become_*`` on every role change as etcd swaps ``r.step``: ``Follower``/``Client``
(follower.py), ``Candidate`` (election.py), ``Leader`` (leader.py).  The counting is in
quorum.py.  Those modules are parts of the node: they use its underscored helpers below,
which nothing outside ``raft/`` calls.

Deviations from textbook Raft follow the original (spec/raft.md §5, §14): only RPCs from
peers in the current configuration are answered, ``prevent_spiral_elections``, a CHECKPOINT
entry when a new leader holds older-term entries, a CLIENT role for non-members.  Defects of
the original are fixed: truncation below the commit index is an error event, not a crash.
"""

from __future__ import annotations

import base64
import logging
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from ..cluster import ClusterConfig
from ..jobs import ApplyJob, Job, SnapshotChunk
from ..protocol.messages import (
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    PreVote,
    PreVoteReply,
    RequestVote,
    RequestVoteReply,
)
from ..protocol.reqid import RequestIdGenerator
from ..request_ids import RequestIdCache
from ..storage.base import LogStorage, SnapshotMeta
from . import election, follower
from .election import Candidate, PreCandidate
from .events import CommitAdvanced, ConfigChanged, ConfigCommitted, RaftError, Removed, StateChanged
from .follower import Client, Follower
from .inputs import Input, LeaderAlive, PeerReply, PeerRequest, Propose, ProposeBatch, ProposeConfig
from .leader import Leader
from .log import RaftLog
from .options import RaftOptions
from .outbox import Outbox, Outgoing
from .roles import Role, RoleHandler

__all__ = [
    "CommitAdvanced",
    "ConfigChanged",
    "ConfigCommitted",
    "HardState",
    "Outgoing",
    "RaftError",
    "RaftNode",
    "Removed",
    "Role",
    "StateChanged",
]

log = logging.getLogger("zmqraft.raft")

MSG_ID_MASK = 0xFFFFFF


@dataclass(slots=True)
class HardState:
    term: int = 0
    voted_for: str | None = None
    config: ClusterConfig = field(default_factory=lambda: ClusterConfig(()))
    config_request: bytes | None = None  # reqid of the CONFIG entry that produced `config`
    config_index: int | None = None


class RaftNode:
    def __init__(
        self,
        peer_id: str,
        storage: LogStorage,
        hard_state: HardState,
        options: RaftOptions,
        rng: random.Random,
        now: float,
        last_applied: int = 0,
        request_ids: Iterable[tuple[bytes, int]] = (),
        request_id_generator: RequestIdGenerator | None = None,
        wall_ms: int = 0,
    ) -> None:
        self.id = peer_id
        self.options = options
        self.rng = rng
        self.log = RaftLog(storage)
        self.term = hard_state.term
        self.voted_for = hard_state.voted_for
        self.config = hard_state.config
        self.config_request = hard_state.config_request
        self.config_index = hard_state.config_index
        self.leader_id: str | None = None
        self.leader_heard_at = float("-inf")  # when ``leader_id`` was last heard from (pre-vote)
        self.commit_index = max(last_applied, self.log.snapshot.index)
        self.last_applied = last_applied
        self.durable_index = self.log.last_index
        ttl_ms = None if options.request_id_ttl is None else int(options.request_id_ttl * 1000)
        self.request_ids = RequestIdCache(
            ttl_ms, options.request_id_cache_max, options.request_id_cache_retain
        )
        self.request_ids.load(request_ids, wall_ms)
        self.wall_ms = wall_ms  # the wall clock of the latest input that gave it (epoch ms)
        self.request_id_generator = request_id_generator or RequestIdGenerator(rng)

        self._follower = Follower(self)  # the stateless roles, made once
        self._client = Client(self)
        self._role: RoleHandler = self._client
        self._outbox = Outbox()
        self._events: deque[Any] = deque()
        self._pending_state: dict[str, Any] = {}
        self._job_seq = 0
        self._job_inflight: Job | None = None
        self._apply_inflight: ApplyJob | None = None
        self._apply_snapshot_pending = self.last_applied < self.log.snapshot.index

        self._msg_ids: dict[str, int] = {}
        self._election_deadline: float | None = None
        self._last_state: StateChanged | None = None  # the last state told (events)
        self._told_removed = False
        self._snapshot_in: tuple[SnapshotMeta, int] | None = None  # receiving: meta, written
        self._installing: SnapshotMeta | None = None
        self._install_compacts = False
        self._pending_chunk: SnapshotChunk | None = None
        self._check_startup()

        if self.config.is_member(self.id):
            if not self.config.others(self.id):
                self._set_term(self.term + 1, None)
                self._become_leader(now)
            else:
                self._become_follower(now, startup=True)
        else:
            self._emit_state()

    @property
    def role(self) -> Role:
        return self._role.role

    # ================================================================ public surface: inputs

    @overload
    def step(
        self, msg: Propose | ProposeBatch | ProposeConfig, now: float, wall_ms: int | None = None
    ) -> int: ...
    @overload
    def step(
        self, msg: PeerRequest | PeerReply | LeaderAlive, now: float, wall_ms: int | None = None
    ) -> None: ...

    def step(self, msg: Input, now: float, wall_ms: int | None = None) -> int | None:
        """Feed one input (etcd's ``Step``); returns a proposal's log index, else None.

        ``wall_ms``: the wall clock (epoch ms), which request ids are judged by as entries
        are appended (kept for the inputs that do not give it).  A proposal on a non-leader
        raises ``NotLeader``."""
        if wall_ms is not None:
            self.wall_ms = wall_ms
        role = self._role
        match msg:  # the hot cases first: each case is an isinstance test, in order
            case ProposeBatch():
                return role.propose_batch(msg, now)
            case Propose():
                return role.propose(msg, now)
            case PeerRequest(message=RequestVote() as request, route=route):
                if self.is_known_peer(request.candidate_id):  # spec §5.3 step 1
                    election.handle_request_vote(self, request, route, now)
            case PeerRequest(message=AppendEntries() as request, route=route):
                if self.accepts_leader(request.leader_id, request.term):
                    follower.handle_append_entries(self, request, route, now)
            case PeerRequest(message=InstallSnapshot() as request, route=route):
                if self.accepts_leader(request.leader_id, request.term):
                    follower.handle_snapshot(self, request, route, now)
            case PeerReply(peer=peer, message=RequestVoteReply() as reply):
                role.request_vote_reply(peer, reply, now)  # its term too: the spiral rule (§5.2)
            case PeerReply(message=AppendEntriesReply() | InstallSnapshotReply() as reply) if (
                reply.term > self.term
            ):
                self._step_down(reply.term, now)  # in any role (spec §6.2)
            case PeerReply(peer=peer, message=AppendEntriesReply() as reply):
                role.append_entries_reply(peer, reply, now)
            case PeerReply(peer=peer, message=InstallSnapshotReply() as reply):
                role.install_snapshot_reply(peer, reply, now)
            case PeerRequest(message=PreVote() as request, route=route):
                if self.is_known_peer(request.candidate_id):
                    election.handle_pre_vote(self, request, route, now)
            case PeerReply(peer=peer, message=PreVoteReply() as reply):
                role.pre_vote_reply(peer, reply, now)
            case LeaderAlive(leader_id=leader_id, term=term):
                role.leader_alive(leader_id, term, now)
            case ProposeConfig():
                return role.propose_config(msg, now)
            case _:
                raise TypeError(f"not a Raft input: {msg!r}")
        return None

    def tick(self, now: float, wall_ms: int | None = None) -> None:
        """Fire every timer that is due at ``now``."""
        if wall_ms is not None:
            self.wall_ms = wall_ms
        if self._election_deadline is not None and now >= self._election_deadline:
            if self.config.is_member(self.id):
                self._role.election_timeout(now)
            else:
                self._election_deadline = None
        self._role.tick(now)  # the role after the election timeout

    def end_batch(self, now: float) -> None:
        """The end of a batch of inputs (the driver's round): send what they made ready, e.g.
        one AppendEntries per follower for all the updates proposed in the batch."""
        self._role.end_batch(now)

    def next_deadline(self) -> float | None:
        """When ``tick`` must next be called (monotonic seconds), or None."""
        election_at, role_at = self._election_deadline, self._role.next_deadline()
        if election_at is None or role_at is None:
            return role_at if election_at is None else election_at
        return min(election_at, role_at)

    def is_removed(self) -> bool:
        """Our configuration is C(old,new) with us in old only, and it is committed: our
        removal is decided (any later leader finishes the change, spec/raft.md §9), so we
        campaign no more.  A leader finishes a change once the leaving peers have heard that
        it committed (leader.py), so a removed peer that is up learns it this way."""
        config = self.config
        return (
            config.is_joint
            and not config.final().is_member(self.id)
            and self.config_index is not None
            and self.commit_index >= self.config_index
        )

    def is_known_peer(self, peer_id: str) -> bool:
        return peer_id != self.id and peer_id in self.config.ids

    def accepts_leader(self, leader_id: str, term: int) -> bool:
        """Whose AppendEntries/InstallSnapshot we take: a known peer's, and (beyond the
        original, which drops them, spec/raft.md §7 step 1) those of a leader outside our
        configuration whose term is not older than ours.  A peer that missed the change that
        added its leader then catches up from it (and learns the configuration) instead of
        waiting for an election it would force, which pre-vote refuses it."""
        return self.is_known_peer(leader_id) or (leader_id != self.id and term >= self.term)

    # ---------------------------------------------------------------- CLIENT catch-up (§10.4)

    @property
    def installing_snapshot(self) -> bool:
        return self._installing is not None

    def catch_up_append(
        self, prev: int, entries: Sequence[bytes], now: float, wall_ms: int | None = None
    ) -> bool:
        """Write committed entries streamed by RequestEntries after ``prev`` (a peer outside
        the configuration catching up).  Nothing is committed; CONFIG entries are adopted."""
        if wall_ms is not None:
            self.wall_ms = wall_ms
        if self.role is not Role.CLIENT or self._installing is not None or prev > self.log.last_index:
            return False
        # committed entries: never truncate what matches (a leader may be replicating too)
        if follower.append_from_leader(self, prev, entries, now, truncate_on_match=False) is None:
            return False
        follower.adopt_config_from(self, prev, entries, now)
        return True

    def catch_up_snapshot(self, meta: SnapshotMeta, offset: int, chunk: bytes, final: bool) -> None:
        """A snapshot chunk streamed by RequestEntries; the last one installs it."""
        self._queue_snapshot_chunk(SnapshotChunk(meta, offset, chunk, final))
        if final:
            follower.begin_install(self, meta)

    def catch_up_done(self, now: float) -> None:
        if self.log.last_term > self.term:
            self._set_term(self.log.last_term, None)
        if self.role is Role.CLIENT and self.config.is_member(self.id):
            self._become_follower(now)

    # ---------------------------------------------------------------- storage / apply acks

    def next_storage_job(self) -> Job | None:
        """The next storage job, if none is in flight and there is work."""
        if self._job_inflight is not None:
            return None
        write = self.log.take_write()
        chunk = self._pending_chunk
        if not self._pending_state and write is None and chunk is None:
            return None
        self._job_seq += 1
        job = Job(self._job_seq, self._pending_state or None, write, chunk)
        self._pending_state = {}
        self._pending_chunk = None
        self._job_inflight = job
        return job

    def storage_done(self, job: Job, now: float, wall_ms: int | None = None) -> None:
        if wall_ms is not None:
            self.wall_ms = wall_ms
        if self._job_inflight is not job:
            raise RuntimeError("storage_done for a job that is not in flight")
        self._job_inflight = None
        if job.log is not None:
            self.durable_index = self.log.write_done(job.log)
        if job.snapshot is not None and job.snapshot.install:
            follower.snapshot_installed(self, job.snapshot.meta)
        self._outbox.durable(job.number)
        self._role.persisted(now)

    def log_compacted(self) -> None:
        """The runtime installed a compaction snapshot (storage's first index moved up)."""
        self._role.log_compacted()

    def next_apply_job(self) -> ApplyJob | None:
        if self._apply_inflight is not None:
            return None
        limit = min(self.commit_index, self.durable_index)
        if self.last_applied >= limit and not (
            self._apply_snapshot_pending and self.log.snapshot.index <= limit
        ):
            return None
        snapshot = None
        first = self.last_applied + 1
        if self.last_applied < self.log.snapshot.index:
            snapshot = self.log.snapshot
            first = snapshot.index + 1
        # up to the durable index everything is in storage: feed its own batches (spec §12),
        # unless the last write still holds them
        entries = self.log.recent(first, limit)
        if entries is None:
            entries = next(self.log.storage.entry_batches(first, limit), []) if first <= limit else []
        if snapshot is None and not entries:
            return None
        self._apply_snapshot_pending = False
        job = ApplyJob(first, entries, snapshot, self.term)
        self._apply_inflight = job
        return job

    def apply_done(self, job: ApplyJob, last_applied: int, now: float) -> None:
        if self._apply_inflight is not job:
            raise RuntimeError("apply_done for a job that is not in flight")
        self._apply_inflight = None
        if last_applied != job.last_index:
            self._error(f"state machine returned last applied {last_applied}, expected {job.last_index}")
        self.last_applied = max(self.last_applied, last_applied)

    # ---------------------------------------------------------------- outputs

    def take_outgoing(self) -> list[Outgoing]:
        return self._outbox.take()

    def take_events(self) -> list[Any]:
        if not self._events:
            return []
        events = list(self._events)
        self._events.clear()
        return events

    def follower_match(self) -> dict[str, int]:
        """The highest index known stored on each follower: the leader's view (metrics and
        the web monitor read it; empty unless leading)."""
        role = self._role
        return {p.peer_id: p.match for p in role.progress.values()} if isinstance(role, Leader) else {}

    @property
    def storage_busy(self) -> bool:
        return self._job_inflight is not None

    # ================================================================ internals: roles

    def _become_follower(self, now: float, startup: bool = False) -> None:
        """FOLLOWER (CLIENT for a non-member), election timer re-armed (spec/raft.md §2)."""
        if not self.config.is_member(self.id) or self.is_removed():
            self._become_client()
            return
        self._role = self._follower
        self._rearm_election(now, extra=self.options.startup_margin if startup else 0.0)
        self._emit_state()

    def _become_client(self) -> None:
        self._role = self._client
        self._election_deadline = None
        self._emit_state()
        if not self._told_removed and self.is_removed():
            self._told_removed = True
            self._events.append(Removed(self.config_index or 0))

    def _campaign(self, now: float, pre_voted: bool = False) -> None:
        """A candidate of the next term, voting for itself (spec/raft.md §5.1); with
        ``pre_vote``, first a pre-candidate that asks whether it could win (thesis §9.6)."""
        self.leader_id = None
        if self.options.pre_vote and not pre_voted:
            pre = PreCandidate(self)
            self._role = pre
            self._emit_state()
            pre.campaign(now)
            return
        candidate = Candidate(self)
        self._role = candidate
        self._set_term(self.term + 1, self.id)
        self._emit_state()
        candidate.campaign(now)

    def _become_leader(self, now: float) -> None:
        self._election_deadline = None
        self.leader_id = None
        leader = Leader(self, now)
        self._role = leader
        self._emit_state()
        leader.start(now)

    def _step_down(self, term: int, now: float) -> None:
        """A newer term was seen in a reply: follow it, leader unknown (spec/raft.md §5.2)."""
        self.leader_id = None
        self._set_term(term, None)
        self._become_follower(now)

    def _lost_leadership(self, now: float) -> None:
        """A leader cut off from its majority (check-quorum): FOLLOWER in the same term; the
        vote stays ours (the term is not over), the leader is unknown."""
        self.leader_id = None
        self._become_follower(now)

    def _accept_leader(self, leader_id: str, term: int, now: float) -> None:
        """``leader_id`` leads ``term`` (not older than ours): follow it (spec §7 step 3)."""
        self._election_deadline = None
        if term > self.term:
            self._set_term(term, None)
        changed = self.leader_id != leader_id
        self.leader_id = leader_id
        self.leader_heard_at = now
        if changed or not self._role.follows:
            self._become_follower(now)

    def _rearm_election(self, now: float, extra: float = 0.0) -> None:
        if self._role.election_timer:
            span = self.rng.uniform(self.options.election_timeout_min, self.options.election_timeout_max)
            self._election_deadline = now + span + extra
        else:
            self._election_deadline = None

    def _emit_state(self) -> None:
        """Tell of a role, term or leader change (once: answering a vote re-enters FOLLOWER)."""
        role = self._role.role
        state = StateChanged(role, self.term, self.id if role is Role.LEADER else self.leader_id)
        if state != self._last_state:
            self._last_state = state
            self._events.append(state)

    # ================================================================ internals: state

    def _set_term(self, term: int, voted_for: str | None) -> None:
        if term != self.term or voted_for != self.voted_for:
            self.term = term
            self.voted_for = voted_for
            self._persist({"currentTerm": term, "votedFor": voted_for})

    def _set_config(
        self, config: ClusterConfig, request_id: bytes | None, index: int | None, now: float
    ) -> None:
        self.config = config
        self.config_request = request_id
        self.config_index = index
        key = None if request_id is None else base64.b64encode(request_id).decode()
        self._persist({"peers": config.to_json(), "peersUpdateRequest": key, "peersIndex": index})
        self._events.append(ConfigChanged(config))
        self._role.config_changed(now)

    def _advance_commit(self, index: int) -> None:
        if index > self.commit_index:
            self.commit_index = index
            self._events.append(CommitAdvanced(index))

    def _append_local(self, entries: Sequence[bytes]) -> int:
        first = self.log.last_index + 1
        last = self.log.append(entries)
        self.request_ids.add_entries(first, entries, self.wall_ms)
        return last

    def _persist(self, changes: dict[str, Any]) -> None:
        self._pending_state.update(changes)

    def _queue_snapshot_chunk(self, chunk: SnapshotChunk) -> None:
        if self._pending_chunk is not None:
            # one chunk per job: the previous one has not been taken yet; they are
            # consecutive, so merge them
            prev = self._pending_chunk
            if prev.meta == chunk.meta and prev.offset + len(prev.data) == chunk.offset:
                chunk = SnapshotChunk(chunk.meta, prev.offset, prev.data + chunk.data, chunk.install)
        self._pending_chunk = chunk

    def _check_startup(self) -> None:
        problems = []
        if self.config.is_joint and self.config_request is None:
            problems.append("joint configuration without its request id")
        if self.config_index is not None and self.config_index > self.log.last_index:
            problems.append("configuration index beyond the log")
        if self.last_applied > self.log.last_index:
            problems.append("last applied beyond the log")
        if self.log.last_term > self.term:
            self.term = self.log.last_term
            self._pending_state = {"currentTerm": self.term}
        for problem in problems:
            raise ValueError(f"raft start-up check failed: {problem}")

    # ================================================================ internals: messages

    def _next_msg_id(self, peer: str) -> int:
        value = (self._msg_ids.get(peer, 0) + 1) & MSG_ID_MASK
        self._msg_ids[peer] = value
        return value

    def _send(self, peer: str, message: Any) -> None:
        self._outbox.send(Outgoing(message, peer=peer))

    def _send_when_durable(self, peer: str, message: Any) -> None:
        self._outbox.send_after(Outgoing(message, peer=peer), self._required_job())

    def will_answer(self, route: Any) -> bool:
        """Did the request that came on ``route`` get a reply, now or once durable?  (Not
        one the node ignored: an AppendEntries while a snapshot installs, say.)"""
        return self._outbox.answers(route)

    def _reply(self, route: Any, message: Any) -> None:
        self._outbox.send(Outgoing(message, route=route))

    def _reply_when_durable(self, route: Any, message: Any) -> None:
        """A reply that promises our term, vote or entries: it leaves once they are durable."""
        self._outbox.send_after(Outgoing(message, route=route), self._required_job())

    def _required_job(self) -> int:
        """The storage job after which everything queued so far is durable."""
        if self._pending_state or self._pending_chunk is not None or self.log.has_unstable_work():
            return self._job_seq + 1
        if self._job_inflight is not None:
            return self._job_inflight.number
        return self._outbox.durable_job

    def _error(self, message: str) -> None:
        log.error("%s: %s", self.id, message)
        self._events.append(RaftError(message))
