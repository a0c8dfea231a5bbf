"""The Raft consensus state machine of one peer (spec/raft.md), without any I/O.

Theory of operation (after etcd-io/raft): every input is a method call that takes ``now``
(monotonic seconds): a peer message (``step_*``), a local proposal (``propose``), the passage
of time (``tick``), or the acknowledgement of work the runtime did (``storage_done``,
``apply_done``).  The node never writes anything itself.  It queues

* storage jobs (``next_storage_job``): term/vote/config updates, log truncations and appends,
  snapshot chunks; at most one is in flight, so everything that arrives during one fsync goes
  into the next (group commit);
* outgoing messages (``take_outgoing``): each tagged with the storage job that must be
  durable before it may leave.  Vote grants and append acknowledgements therefore never
  leave before the state they promise is on disk, whatever the runtime does;
* apply jobs (``next_apply_job``): committed, durable entries for the state machine;
* events (``take_events``): role, term, leader and configuration changes, errors.

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
from ..protocol.entry import (
    EntryType,
    checkpoint_entry,
    encode_entry,
    entry_request_id,
    entry_term,
    entry_type,
)
from ..protocol.messages import (
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    RequestVote,
    RequestVoteReply,
)
from ..protocol.reqid import RequestIdGenerator
from ..request_ids import RequestIdCache
from ..storage.base import LogStorage, SnapshotMeta
from . import quorum
from .events import CommitAdvanced, ConfigChanged, ConfigCommitted, RaftError, StateChanged
from .inputs import (
    Input,
    LeaderAlive,
    NotLeader,
    PeerReply,
    PeerRequest,
    Propose,
    ProposeConfig,
)
from .log import RaftLog
from .options import RaftOptions
from .outbox import Outbox, Outgoing
from .progress import Inflight, Progress
from .roles import Role

__all__ = [
    "CommitAdvanced",
    "ConfigChanged",
    "ConfigCommitted",
    "HardState",
    "Outgoing",
    "RaftError",
    "RaftNode",
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


@dataclass(slots=True)
class _Votes:
    answered: set[str] = field(default_factory=set)
    granted: set[str] = field(default_factory=set)


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
        self.role = Role.CLIENT
        self.leader_id: str | None = None
        self.commit_index = max(last_applied, self.log.snapshot.index)
        self.last_applied = last_applied
        self.durable_index = self.log.last_index
        ttl_ms = None if options.request_id_ttl is None else int(options.request_id_ttl * 1000)
        self.request_ids = RequestIdCache(ttl_ms, options.request_id_cache_max)
        self.request_ids.load(request_ids)
        self.wall_ms = 0
        self.request_id_generator = request_id_generator or RequestIdGenerator(rng)

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
        self._votes = _Votes()
        self._vote_msgs: dict[str, tuple[int, RequestVote, float]] = {}  # peer -> (id, msg, resend at)
        self._progress: dict[str, Progress] = {}
        self._leaving_after_config: int | None = None  # leader not in C(new): step down after
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
                self._become(Role.FOLLOWER, now, startup=True)
        else:
            self._emit_state()

    # ================================================================ public surface: inputs

    @overload
    def step(self, msg: Propose | ProposeConfig, now: float) -> int: ...
    @overload
    def step(self, msg: PeerRequest | PeerReply | LeaderAlive, now: float) -> None: ...

    def step(self, msg: Input, now: float) -> int | None:
        """Feed one input (etcd's ``Step``); returns a proposal's log index, else None."""
        match msg:
            case PeerRequest(message=RequestVote() as request, route=route):
                self._on_request_vote(request, route, now)
            case PeerRequest(message=AppendEntries() as request, route=route):
                self._on_append_entries(request, route, now)
            case PeerRequest(message=InstallSnapshot() as request, route=route):
                self._on_install_snapshot(request, route, now)
            case PeerReply(peer=peer, message=RequestVoteReply() as reply):
                self._on_request_vote_reply(peer, reply, now)
            case PeerReply(peer=peer, message=AppendEntriesReply() as reply):
                self._on_append_entries_reply(peer, reply, now)
            case PeerReply(peer=peer, message=InstallSnapshotReply() as reply):
                self._on_install_snapshot_reply(peer, reply, now)
            case LeaderAlive(leader_id=leader_id, term=term):
                self._on_leader_alive(leader_id, term, now)
            case Propose():
                return self._propose(msg, now)
            case ProposeConfig():
                return self._propose_config(msg, now)
            case _:
                raise TypeError(f"not a Raft input: {msg!r}")
        return None

    def tick(self, now: float) -> None:
        """Fire every timer that is due at ``now``."""
        if self._election_deadline is not None and now >= self._election_deadline:
            self._election_timeout(now)
        if self.role is Role.CANDIDATE:
            for peer, (msg_id, msg, at) in list(self._vote_msgs.items()):
                if now >= at:
                    self._vote_msgs[peer] = (msg_id, msg, now + self.options.rpc_timeout)
                    # a re-send too must wait for our own term and vote to be durable: a slow
                    # disk must not let us win a term we could forget in a crash
                    self._send_when_durable(peer, msg)
        elif self.role is Role.LEADER:
            for progress in list(self._progress.values()):
                self._replicate(progress, now)

    def next_deadline(self) -> float | None:
        """When ``tick`` must next be called (monotonic seconds), or None."""
        deadlines: list[float] = []
        if self._election_deadline is not None:
            deadlines.append(self._election_deadline)
        if self.role is Role.CANDIDATE:
            deadlines.extend(at for _, _, at in self._vote_msgs.values())
        elif self.role is Role.LEADER:
            for p in self._progress.values():
                if p.resend_at is not None:
                    deadlines.append(p.resend_at)
                elif not p.inflight:
                    deadlines.append(p.idle_since + self.options.append_entries_heartbeat_interval)
        return min(deadlines) if deadlines else None

    def is_known_peer(self, peer_id: str) -> bool:
        return peer_id != self.id and peer_id in self.config.ids

    # ---------------------------------------------------------------- RequestVote (§5.3)

    def _on_request_vote(self, msg: RequestVote, route: Any, now: float) -> None:
        if not self.is_known_peer(msg.candidate_id):
            return
        if msg.term < self.term:
            self._reply(route, RequestVoteReply(msg.msg_id, self.term, False))
            return
        if (
            self.options.prevent_spiral_elections
            and self.role is Role.CANDIDATE
            and not self._majority_answered()
        ):
            self._reply(route, RequestVoteReply(msg.msg_id, self.term, False))
            return
        up_to_date = msg.last_log_term > self.log.last_term or (
            msg.last_log_term == self.log.last_term and msg.last_log_index >= self.log.last_index
        )
        granted = up_to_date and (
            self.voted_for is None or self.voted_for == msg.candidate_id or msg.term > self.term
        )
        if granted or msg.term > self.term:
            deadline = self._election_deadline
            self.leader_id = None
            self._set_term(msg.term, msg.candidate_id if granted else None)
            self._become(Role.FOLLOWER, now)
            if not granted and deadline is not None and self.role is Role.FOLLOWER:
                # Raft §5.2: only a granted vote (or a leader) postpones our own candidacy.
                # The original re-arms here too (spec §5.3 step 5), which lets a candidate
                # with a stale log keep the up-to-date peers from ever campaigning.
                self._election_deadline = deadline
        self._reply_when_durable(route, RequestVoteReply(msg.msg_id, self.term, granted))

    def _on_request_vote_reply(self, peer: str, msg: RequestVoteReply, now: float) -> None:
        pending = self._vote_msgs.get(peer)
        if self.role is not Role.CANDIDATE or pending is None or pending[0] != msg.msg_id:
            return
        del self._vote_msgs[peer]
        self._votes.answered.add(peer)
        if msg.term > self.term:
            if not (self.options.prevent_spiral_elections and not self._majority_answered()):
                self._step_down(msg.term, now)
            return
        if msg.term == self.term and msg.vote_granted:
            self._votes.granted.add(peer)
            if quorum.has_majority(self.config, self._votes.granted):
                self._become_leader(now)

    # ---------------------------------------------------------------- AppendEntries (§7)

    def _on_append_entries(self, msg: AppendEntries, route: Any, now: float) -> None:
        if not self.is_known_peer(msg.leader_id) or self._installing is not None:
            return
        if msg.term < self.term:
            self._reply(route, AppendEntriesReply(msg.msg_id, self.term, False))
            return
        self._accept_leader(msg.leader_id, msg.term, now)
        prev_term = self.log.term_at(msg.prev_log_index)
        if prev_term is None and msg.prev_log_index < self.log.snapshot.index:
            # already covered by our snapshot: everything up to it matches (it is committed)
            prev_term = msg.prev_log_term
        if prev_term != msg.prev_log_term:
            conflict = self.log.last_index + 1 if self.log.last_index < msg.prev_log_index else None
            self._reply_when_durable(route, AppendEntriesReply(msg.msg_id, self.term, False, conflict))
            self._rearm_election(now)
            return
        last_new = self._append_from_leader(msg.prev_log_index, msg.entries, now)
        if last_new is None:
            return  # refused (would truncate committed entries): no reply, leader retries
        self._adopt_config_from(msg.prev_log_index, msg.entries, now)
        if msg.commit_index > self.commit_index:
            self._advance_commit(min(msg.commit_index, last_new), now)
        self._reply_when_durable(route, AppendEntriesReply(msg.msg_id, self.term, True))
        self._rearm_election(now)

    def _append_from_leader(
        self, prev: int, entries: Sequence[bytes], now: float, truncate_on_match: bool | None = None
    ) -> int | None:
        """Append ``entries`` after ``prev``; returns the last index they cover."""
        first = prev + 1
        skip = 0
        if entries and first < self.log.first_index:
            skip = self.log.first_index - first  # below our snapshot: committed, identical
            if skip >= len(entries):
                return prev + len(entries)
        cut: int  # the last entry kept; set on every path that reaches the truncation below
        if truncate_on_match is None:
            truncate_on_match = self.options.truncate_on_match
        if truncate_on_match:
            cut = prev + skip
        else:
            for pos in range(skip, len(entries)):
                index = first + pos
                term = self.log.term_at(index)
                if term is None:
                    cut = index - 1
                    skip = pos
                    break
                if term != entry_term(entries[pos]):
                    cut = index - 1
                    skip = pos
                    break
            else:
                return prev + len(entries)
        if cut < self.commit_index and cut < self.log.last_index:
            self._error(f"refusing to truncate below commit index {self.commit_index} (at {cut})")
            return None
        if cut < self.log.last_index:
            self.log.truncate_after(cut)
            self.request_ids.truncate_after(cut)
            self.durable_index = min(self.durable_index, cut)
            if self.config_index is not None and self.config_index > cut:
                self._revert_config(cut, now)
        self._append_local(entries[skip:])
        return prev + len(entries)

    def _revert_config(self, last_kept: int, now: float) -> None:
        """The entry that gave our configuration was truncated: fall back to the last CONFIG
        entry still in the log (the original keeps the void configuration, spec §14.3)."""
        for index in range(last_kept, self.log.first_index - 1, -1):
            entry = self.log.entry(index)
            if entry_type(entry) == EntryType.CONFIG:
                config = ClusterConfig.from_entry_data(bytes(entry[20:]))
                self._set_config(config, entry_request_id(entry), index, now)
                return
        # the configuration came from the seed or a snapshot: keep it, but no longer claim
        # an index beyond the log (the start-up checks rely on it)
        log.debug("%s: config entry %s truncated; kept as of %s", self.id, self.config_index, last_kept)
        self.config_index = last_kept
        self._persist({"peersIndex": last_kept})

    def _adopt_config_from(self, prev: int, entries: Sequence[bytes], now: float) -> None:
        for pos in range(len(entries) - 1, -1, -1):
            if entry_type(entries[pos]) == EntryType.CONFIG:
                index = prev + 1 + pos
                if self.config_index is None or index > self.config_index:
                    config = ClusterConfig.from_entry_data(bytes(entries[pos][20:]))
                    self._set_config(config, entry_request_id(entries[pos]), index, now)
                return

    def _acknowledged(
        self, peer: str, msg_id: int, term: int, now: float
    ) -> tuple[Progress, Inflight] | None:
        """A leader's bookkeeping for a reply from ``peer``: step down on a newer term, else
        the message in flight it answers (None for stale replies, see progress.py)."""
        if term > self.term:
            self._step_down(term, now)
            return None
        progress = self._progress.get(peer)
        if self.role is not Role.LEADER or progress is None or term < self.term:
            return None
        flight = progress.acknowledge(msg_id)
        if flight is None:
            return None
        self._rearm_resend(progress)
        return progress, flight

    def _step_down(self, term: int, now: float) -> None:
        """A newer term was seen in a reply: follow it, leader unknown (spec/raft.md §5.2)."""
        self.leader_id = None
        self._set_term(term, None)
        self._become(Role.FOLLOWER, now)

    def _on_append_entries_reply(self, peer: str, msg: AppendEntriesReply, now: float) -> None:
        acked = self._acknowledged(peer, msg.msg_id, msg.term, now)
        if acked is None:
            return
        progress, flight = acked
        if msg.success:
            progress.probing = False
            if flight.last > progress.match:
                progress.match = flight.last
            if progress.next <= progress.match:
                progress.next = progress.match + 1
            self._maybe_commit(now)
        else:
            progress.end_chain()
            progress.probing = True
            nxt = flight.prev
            if msg.conflict_index is not None and msg.conflict_index < nxt:
                nxt = msg.conflict_index
            progress.next = max(nxt, progress.match + 1)
            if progress.next < self.log.first_index:
                progress.snapshot_offset = 0
        self._replicate(progress, now)

    def _on_leader_alive(self, leader_id: str, term: int, now: float) -> None:
        """A re-sent AppendEntries/InstallSnapshot of our leader (debounced, not processed
        again) still resets the election timer (Raft §5.2)."""
        if term == self.term and leader_id == self.leader_id and self.role is Role.FOLLOWER:
            self._rearm_election(now)

    # ---------------------------------------------------------------- InstallSnapshot (§8)

    def _on_install_snapshot(self, msg: InstallSnapshot, route: Any, now: float) -> None:
        if not self.is_known_peer(msg.leader_id) or self._installing is not None:
            return
        if msg.term < self.term:
            self._reply(route, InstallSnapshotReply(msg.msg_id, self.term))
            return
        self._accept_leader(msg.leader_id, msg.term, now)
        meta = SnapshotMeta(msg.last_index, msg.last_term, msg.total_size)
        if self._snapshot_in is None or self._snapshot_in[0] != meta:
            self._snapshot_in = (meta, 0)
        written = self._snapshot_in[1]
        if msg.offset != written:
            self._reply_when_durable(route, InstallSnapshotReply(msg.msg_id, self.term, written))
            self._rearm_election(now)
            return
        written += len(msg.chunk)
        final = written >= meta.size
        self._snapshot_in = (meta, written)
        self._queue_snapshot_chunk(SnapshotChunk(meta, msg.offset, msg.chunk, final))
        if final:
            self._begin_install(meta)
            self._snapshot_in = None
        self._reply_when_durable(route, InstallSnapshotReply(msg.msg_id, self.term))
        self._rearm_election(now)

    def _on_install_snapshot_reply(self, peer: str, msg: InstallSnapshotReply, now: float) -> None:
        acked = self._acknowledged(peer, msg.msg_id, msg.term, now)
        if acked is None:
            return
        progress, flight = acked
        snap = self.log.snapshot
        if not flight.snapshot or flight.last != snap.index:
            progress.snapshot_offset = 0  # a newer snapshot replaced the one being sent
        elif msg.reposition is not None:
            progress.snapshot_offset = msg.reposition
        elif flight.size + flight.prev >= snap.size:
            # the last chunk landed: continue with entries after the snapshot
            progress.probing = False
            progress.match = max(progress.match, snap.index)
            progress.next = snap.index + 1
            progress.snapshot_offset = 0
            self._maybe_commit(now)
        else:
            progress.snapshot_offset = flight.prev + flight.size
        self._replicate(progress, now)

    # ---------------------------------------------------------------- CLIENT catch-up (§10.4)

    @property
    def installing_snapshot(self) -> bool:
        return self._installing is not None

    def catch_up_append(self, prev: int, entries: Sequence[bytes], now: float) -> bool:
        """Write committed entries streamed by RequestEntries after ``prev`` (a peer outside
        the configuration catching up).  Nothing is committed; CONFIG entries are adopted."""
        if self.role is not Role.CLIENT or self._installing is not None or prev > self.log.last_index:
            return False
        # committed entries: never truncate what matches (a leader may be replicating too)
        if self._append_from_leader(prev, entries, now, truncate_on_match=False) is None:
            return False
        self._adopt_config_from(prev, entries, now)
        return True

    def catch_up_snapshot(self, meta: SnapshotMeta, offset: int, chunk: bytes, final: bool) -> None:
        """A snapshot chunk streamed by RequestEntries; the last one installs it."""
        self._queue_snapshot_chunk(SnapshotChunk(meta, offset, chunk, final))
        if final:
            self._begin_install(meta)

    def catch_up_done(self, now: float) -> None:
        if self.log.last_term > self.term:
            self._set_term(self.log.last_term, None)
        if self.role is Role.CLIENT and self.config.is_member(self.id):
            self._become(Role.FOLLOWER, now)

    # ---------------------------------------------------------------- proposals (leader)

    def _propose(self, msg: Propose, now: float) -> int:
        """Append a STATE entry; returns its index.  Leader only."""
        if self.role is not Role.LEADER:
            raise NotLeader("propose on a non-leader")
        last = self._append_local([encode_entry(msg.request_id, EntryType.STATE, self.term, msg.data)])
        self._broadcast_append(now)
        return last

    def _propose_config(self, msg: ProposeConfig, now: float) -> int:
        """Leader: adopt the joint configuration now and append C(old,new) (spec §9 step 2)."""
        if self.role is not Role.LEADER:
            raise NotLeader("config change on a non-leader")
        joint, request_id = msg.joint, msg.request_id
        self._set_config(joint, request_id, None, now)
        index = self._append_local(
            [encode_entry(request_id, EntryType.CONFIG, self.term, joint.to_entry_data())]
        )
        self.config_index = index
        self._persist({"peersIndex": index})
        self._broadcast_append(now)
        return index

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

    def storage_done(self, job: Job, now: float) -> None:
        if self._job_inflight is not job:
            raise RuntimeError("storage_done for a job that is not in flight")
        self._job_inflight = None
        if job.log is not None:
            self.durable_index = self.log.write_done(job.log)
        if job.snapshot is not None and job.snapshot.install:
            self._snapshot_installed(job.snapshot.meta, now)
        self._outbox.durable(job.number)
        if self.role is Role.LEADER:
            self._maybe_commit(now)

    def _begin_install(self, meta: SnapshotMeta) -> None:
        """The last chunk is queued.  Whether it compacts or replaces the log is decided on the
        view now, as storage will decide it on the same entries (peer RPCs that could change
        the log are ignored until the install is done)."""
        self._installing = meta
        self._install_compacts = self.log.term_at(meta.index) == meta.term
        if not self._install_compacts and self.config_index is not None and self.config_index > meta.index:
            # the entry our configuration came from goes with the old log: keep the
            # configuration as of the snapshot, in the same job (the start-up checks rely on it)
            self.config_index = meta.index
            self._persist({"peersIndex": meta.index})

    def _snapshot_installed(self, meta: SnapshotMeta, now: float) -> None:
        self._installing = None
        if not self._install_compacts:
            self.log.reset_to_snapshot(meta)
            self.request_ids.clear()
        self.durable_index = self.log.last_index
        if meta.index > self.commit_index:
            self.commit_index = meta.index
            self._events.append(CommitAdvanced(self.commit_index))
        if self.last_applied < meta.index:
            self._apply_snapshot_pending = True

    def log_compacted(self) -> None:
        """The runtime installed a compaction snapshot (storage's first index moved up)."""
        for p in self._progress.values():
            if p.next < self.log.first_index:
                p.end_chain()
                p.snapshot_offset = 0

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
        # up to the durable index everything is in storage: feed its own batches (spec §12)
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
        events = list(self._events)
        self._events.clear()
        return events

    @property
    def storage_busy(self) -> bool:
        return self._job_inflight is not None

    # ================================================================ internals

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

    def _next_msg_id(self, peer: str) -> int:
        value = (self._msg_ids.get(peer, 0) + 1) & MSG_ID_MASK
        self._msg_ids[peer] = value
        return value

    def _send(self, peer: str, message: Any) -> None:
        self._outbox.send(Outgoing(message, peer=peer))

    def _send_when_durable(self, peer: str, message: Any) -> None:
        self._outbox.send_after(Outgoing(message, peer=peer), self._required_job())

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

    def _append_local(self, entries: Sequence[bytes]) -> int:
        first = self.log.last_index + 1
        last = self.log.append(entries)
        for pos, entry in enumerate(entries):
            rid = entry_request_id(entry)
            self.request_ids.add(rid, first + pos, self.wall_ms)
        return last

    def _error(self, message: str) -> None:
        log.error("%s: %s", self.id, message)
        self._events.append(RaftError(message))

    def _emit_state(self) -> None:
        """Tell of a role, term or leader change (once: answering a vote re-enters FOLLOWER)."""
        leader = self.leader_id if self.role is not Role.LEADER else self.id
        state = StateChanged(self.role, self.term, leader)
        if state != self._last_state:
            self._last_state = state
            self._events.append(state)

    def _set_term(self, term: int, voted_for: str | None) -> None:
        if term != self.term or voted_for != self.voted_for:
            self.term = term
            self.voted_for = voted_for
            self._persist({"currentTerm": term, "votedFor": voted_for})

    def _set_config(
        self, config: ClusterConfig, request_id: bytes | None, index: int | None, now: float | None
    ) -> None:
        self.config = config
        self.config_request = request_id
        self.config_index = index
        key = None if request_id is None else base64.b64encode(request_id).decode()
        self._persist({"peers": config.to_json(), "peersUpdateRequest": key, "peersIndex": index})
        self._events.append(ConfigChanged(config))
        if self.role is Role.LEADER:
            others = [pid for pid, _ in config.others(self.id)]  # ordered: replays must be exact
            for pid in list(self._progress):
                if pid not in others:
                    del self._progress[pid]
            for pid in others:
                if pid not in self._progress:
                    self._progress[pid] = Progress(pid, next=self.log.last_index + 1)
        elif self.role is Role.CLIENT and config.is_member(self.id) and now is not None:
            self._become(Role.FOLLOWER, now)
        elif self.role is not Role.CLIENT and not config.is_member(self.id):
            self.role = Role.CLIENT
            self._election_deadline = None
            self._emit_state()

    def _accept_leader(self, leader_id: str, term: int, now: float) -> None:
        self._election_deadline = None
        if term > self.term:
            self._set_term(term, None)
        changed = self.leader_id != leader_id
        self.leader_id = leader_id
        if (self.role is not Role.FOLLOWER and self.role is not Role.CLIENT) or changed:
            self._become(Role.FOLLOWER, now)

    def _become(self, role: Role, now: float, startup: bool = False) -> None:
        """Change role (FOLLOWER becomes CLIENT for non-members) and re-arm timers."""
        if role is Role.FOLLOWER and not self.config.is_member(self.id):
            role = Role.CLIENT
        old_role = self.role
        leaving_active = old_role in (Role.CANDIDATE, Role.LEADER)
        self.role = role
        if leaving_active:
            self._progress.clear()
            self._vote_msgs.clear()
            self._leaving_after_config = None
        if role is Role.FOLLOWER:
            self._rearm_election(now, extra=self.options.startup_margin if startup else 0.0)
        elif role is Role.CLIENT:
            self._election_deadline = None
        self._emit_state()

    def _rearm_election(self, now: float, extra: float = 0.0) -> None:
        if self.role in (Role.FOLLOWER, Role.CANDIDATE):
            span = self.rng.uniform(self.options.election_timeout_min, self.options.election_timeout_max)
            self._election_deadline = now + span + extra
        else:
            self._election_deadline = None

    # ---------------------------------------------------------------- elections

    def _majority_answered(self) -> bool:
        answered = set(self._votes.answered)
        answered.add(self.id)
        return quorum.has_majority(self.config, answered)

    def _election_timeout(self, now: float) -> None:
        if not self.config.is_member(self.id):
            self._election_deadline = None
            return
        if (
            self.options.prevent_spiral_elections
            and self.role is Role.CANDIDATE
            and not self._majority_answered()
        ):
            self._rearm_election(now)
            return
        self.leader_id = None
        self._progress.clear()
        self.role = Role.CANDIDATE
        self._set_term(self.term + 1, self.id)
        self._votes = _Votes(answered=set(), granted={self.id})
        self._vote_msgs.clear()
        self._emit_state()
        if quorum.has_majority(self.config, self._votes.granted):
            self._become_leader(now)
            return
        for peer, _url in self.config.others(self.id):
            msg = RequestVote(
                self._next_msg_id(peer), self.id, self.term, self.log.last_index, self.log.last_term
            )
            # a candidate's own vote must be durable before anyone else counts on it: the
            # request goes out with the term/vote persistence (held like a reply)
            self._vote_msgs[peer] = (msg.msg_id, msg, now + self.options.rpc_timeout)
            self._send_when_durable(peer, msg)
        self._rearm_election(now)

    # ---------------------------------------------------------------- leader

    def _become_leader(self, now: float) -> None:
        self._election_deadline = None
        self.leader_id = None
        self.role = Role.LEADER
        self._vote_msgs.clear()
        self._progress = {
            pid: Progress(pid, next=self.log.last_index + 1, idle_since=now - 1.0)
            for pid, _ in self.config.others(self.id)
        }
        self._emit_state()
        if self.log.last_term != self.term and self.commit_index < self.log.last_index:
            self._append_local([checkpoint_entry(self.term)])
        self._broadcast_append(now)
        self._maybe_commit(now)

    def _broadcast_append(self, now: float) -> None:
        for progress in list(self._progress.values()):
            self._replicate(progress, now)
        if not self._progress:
            self._maybe_commit(now)

    def _rearm_resend(self, p: Progress) -> None:
        newest = p.newest()
        p.resend_at = None if newest is None else newest[1].sent_at + self._resend_interval(newest[1])

    def _resend_interval(self, flight: Inflight) -> float:
        if flight.snapshot or flight.last > flight.prev:
            return self.options.append_entries_rpc_timeout_max
        return self.options.append_entries_rpc_timeout_min

    def _replicate(self, p: Progress, now: float) -> None:
        """Send what ``p`` needs: a re-send, new entries within the window, a heartbeat."""
        if self.role is not Role.LEADER:
            return
        opts = self.options
        if p.resend_at is not None and now >= p.resend_at:
            newest = p.newest()
            if newest is None:
                p.resend_at = None
            elif newest[1].snapshot and newest[1].last != self.log.snapshot.index:
                p.end_chain()  # the snapshot being sent was replaced: start the new one
                p.snapshot_offset = 0
            else:
                # only the newest message is ever re-sent (see progress.py)
                flight = newest[1]
                self._send(p.peer_id, flight.message)
                flight.sent_at = now
                p.idle_since = now
                p.resend_at = now + self._resend_interval(flight)
                return
        while p.can_send(opts.max_inflight_messages, opts.max_inflight_bytes):
            if p.next < self.log.first_index:
                self._send_snapshot_chunk(p, now)
                return
            if p.next > self.log.last_index:
                if p.inflight:
                    return
                if not p.heartbeat_due and now < p.idle_since + opts.append_entries_heartbeat_interval:
                    return
            prev = p.next - 1
            prev_term = self.log.term_at(prev)
            if prev_term is None:  # below our snapshot
                self._send_snapshot_chunk(p, now)
                return
            if p.probing:
                entries = self.log.entries(p.next, p.next)
            else:
                entries = self.log.entries(p.next, self.log.last_index, max_bytes=opts.peer_msg_data_size)
            msg = AppendEntries(
                self._next_msg_id(p.peer_id),
                self.id,
                self.term,
                prev,
                prev_term,
                self.commit_index,
                tuple(entries),
            )
            last = prev + len(entries)
            last_term = entry_term(entries[-1]) if entries else prev_term
            flight = Inflight(msg, prev, last, last_term, sum(len(e) for e in entries) + 64, now)
            p.record(msg.msg_id, flight)
            p.next = last + 1
            p.heartbeat_due = False
            p.resend_at = now + self._resend_interval(flight)
            self._send(p.peer_id, msg)
            if not entries:
                return

    def _send_snapshot_chunk(self, p: Progress, now: float) -> None:
        snap = self.log.snapshot
        offset = min(p.snapshot_offset, snap.size)
        chunk = self.log.storage.read_snapshot(
            offset, min(self.options.peer_msg_data_size, snap.size - offset)
        )
        msg = InstallSnapshot(
            self._next_msg_id(p.peer_id), self.id, self.term, snap.index, snap.term, offset, snap.size, chunk
        )
        flight = Inflight(msg, offset, snap.index, snap.term, len(chunk), now, snapshot=True)
        p.probing = True
        p.record(msg.msg_id, flight)
        p.heartbeat_due = False
        p.resend_at = now + self.options.append_entries_rpc_timeout_max
        self._send(p.peer_id, msg)

    def _maybe_commit(self, now: float) -> None:
        if self.role is not Role.LEADER:
            return
        match = {pid: p.match for pid, p in self._progress.items()}
        match[self.id] = self.durable_index
        candidate = quorum.commit_index(self.config, match)
        if candidate > self.commit_index and self.log.term_at(candidate) == self.term:
            self._advance_commit(candidate, now)
            self._after_leader_commit(now)  # may append C(new), which then carries the commit
            # idle followers learn the commit index now; busy ones with their next message
            for p in list(self._progress.values()):
                p.heartbeat_due = True
                self._replicate(p, now)

    def _advance_commit(self, index: int, now: float) -> None:
        if index > self.commit_index:
            self.commit_index = index
            self._events.append(CommitAdvanced(index))

    def _after_leader_commit(self, now: float) -> None:
        """Membership steps after a commit advance (spec/raft.md §9 steps 5–6)."""
        if self._leaving_after_config is not None and self.commit_index >= self._leaving_after_config:
            self._leaving_after_config = None
            self._become(Role.CLIENT, now)
            return
        if self.config.is_joint and self.config_index is not None and self.commit_index >= self.config_index:
            self._finish_config_change(now)

    def _finish_config_change(self, now: float) -> None:
        """C(old,new) is committed: adopt C(new) and append it with a fresh request id."""
        final = self.config.final()
        joint_index = self.config_index or 0
        joint_request = self.config_request  # also when this leader inherited the change
        request_id = self._new_request_id()
        self._set_config(final, request_id, None, now)
        index = self._append_local(
            [encode_entry(request_id, EntryType.CONFIG, self.term, final.to_entry_data())]
        )
        self.config_index = index
        self._persist({"peersIndex": index})
        self._events.append(ConfigCommitted(joint_request, joint_index, index))
        if not final.is_member(self.id):
            self._leaving_after_config = index
        self._broadcast_append(now)

    def _new_request_id(self) -> bytes:
        """A fresh reqid for C(new), from the wall clock given to the node."""
        return self.request_id_generator.next(self.wall_ms / 1000)
