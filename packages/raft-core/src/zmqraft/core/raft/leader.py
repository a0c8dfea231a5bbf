"""LEADER (spec/raft.md §6, §9): replication, the commit rule, proposals, membership steps.

Theory of operation.  A new leader (``Leader.start``, spec §6.1) knows nothing of its
followers: each gets a ``Progress`` probing from the end of the leader's log, and an empty
AppendEntries goes out at once.  If the log ends in an older term and is not known committed,
the leader first appends a CHECKPOINT entry of its own term (``needs_checkpoint``, spec §6.1
step 3): older-term entries are only ever committed by committing a newer one (Raft §5.4.2),
so without it they would wait for the next client update.

Replication (``replicate``; Raft §5.3, spec §6.2, pipelining in progress.py): while probing, one
message at a time and one entry per message; once a follower's position is known, up to
``max_inflight_messages`` / ``max_inflight_bytes`` AppendEntries of up to ``peer_msg_data_size``
bytes each; with ``coalesce_inflight_messages`` in flight, new entries that fit in one
message wait for the next acknowledgement (under load, fewer and larger batches to write).
Only the newest message in flight is ever re-sent.  A follower whose next entry is below
the log's first index is sent the snapshot in chunks (spec §6.5).  An idle follower gets a
heartbeat every ``append_entries_heartbeat_interval``, which also carries a commit
advance (the original sends idle followers an empty AppendEntries at each commit advance,
spec §6.2; here they learn it at most one heartbeat interval later).  A client's update is
appended at once and sent with the rest of its batch of inputs (``end_batch``).

The commit rule (``maybe_commit``; Raft §5.3, §5.4.2, spec §6.4): the highest index stored
on a majority of every voter group (``quorum.commit_index``; the leader counts its own
*durable* index, so it may replicate while its own write is in flight) is committed if its
entry is of the leader's term (``may_commit``).  It is re-tested on every acknowledgement and
every durable write of the leader's own.

Membership (spec §9): a proposed change adopts C(old,new) at once and appends it
(``propose_config``); when the leader commits C(old,new) it adopts C(new), appends it with a
fresh request id and tells ``ConfigCommitted`` (``finish_config_change``).  Beyond the
original, the peers C(new) removes first hear that C(old,new) committed (``telling_leaving``:
an AppendEntries carrying the commit index each acknowledges, for at most
``election_timeout_min``), so that they know they are out and stop campaigning
(``RaftNode.is_removed``; the original leaves them campaigning forever, spec §9 step 7); a leader that is
not in C(new) keeps leading until the first commit advance after that, then becomes CLIENT.

Check-quorum (Raft thesis §6.2, option ``check_quorum``): every reply of our term from a
follower is a contact (``Progress.last_heard``); a leader whose last contact with a majority
of every voter group (``quorum.quorum_contact``) is ``election_timeout_max`` old steps down
to FOLLOWER in the same term (vote kept), so that clients pinned to a leader cut off from the
cluster look elsewhere instead of waiting.  A follower's replies wait for its disk (they
promise durable entries), so each follower's contact counts ``Progress.slack`` longer: the
longest recent interval between its replies (one election timeout for a new leader, then
the largest gap seen, shrinking by ``SLACK_DECAY`` of the time that passes, at most
``SLACK_CAP`` election timeouts).  A disk slower than the election timeout then keeps its
leader, while a leader of followers that answered promptly steps down about one election
timeout after their last reply.  It is tested lazily: ``quorum_check_at`` is the earliest
moment the contact could be that old.

A Leader object lives for one term; once the node has left the role it sends nothing more
(``current``).  ``may_commit``, ``needs_checkpoint`` and ``Leader.propose_config`` are seams:
the simulator's ``commit-old-term`` and ``no-joint-consensus`` mutants replace them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..protocol.entry import EntryType, checkpoint_entry, encode_entry, entry_term
from ..protocol.messages import AppendEntries, AppendEntriesReply, InstallSnapshot, InstallSnapshotReply
from . import quorum
from .events import ConfigCommitted
from .inputs import Propose, ProposeBatch, ProposeConfig
from .log import RaftLog
from .progress import Inflight, Progress
from .roles import Role, RoleHandler

if TYPE_CHECKING:
    from .node import RaftNode

_log = logging.getLogger("zmqraft.raft")

SLACK_DECAY = 0.5  # a follower's slack shrinks by this much per second of time (check-quorum)
SLACK_CAP = 2  # election timeouts: the most a slow follower's slack extends its contact


def may_commit(log: RaftLog, index: int, term: int) -> bool:
    """Only an entry of the leader's own term is committed by counting replicas (Raft
    §5.4.2, Fig. 8): an older-term entry on a majority can still be overwritten."""
    return log.term_at(index) == term


def needs_checkpoint(log: RaftLog, term: int, commit_index: int) -> bool:
    """A new leader's log ends in an older term with entries not known committed (spec §6.1)."""
    return log.last_term != term and commit_index < log.last_index


class Leader(RoleHandler):
    role = Role.LEADER

    __slots__ = ("finish_by", "leaving_at", "progress", "quorum_check_at", "told", "unsent")

    def __init__(self, node: RaftNode, now: float) -> None:
        super().__init__(node)
        next_index = node.log.last_index + 1
        opts = node.options
        slack = opts.election_timeout_max  # until a follower's replies show how fast it is
        self.progress: dict[str, Progress] = {
            pid: Progress(pid, next=next_index, idle_since=now - 1.0, last_heard=now, slack=slack)
            for pid, _ in node.config.others(node.id)
        }
        self.quorum_check_at = now + opts.election_timeout_max if opts.check_quorum else None
        self.leaving_at: int | None = None  # not in C(new): step down once this is committed
        self.finish_by: float | None = None  # C(new) waits until then for the leaving peers
        self.told: set[str] = set()  # leaving peers that acknowledged C(old,new)'s commit
        self.unsent = False  # proposals appended since the batch began

    @property
    def current(self) -> bool:
        """Still the node's role (a deposed leader sends nothing)."""
        return self.node._role is self

    def start(self, now: float) -> None:
        """Just elected (spec §6.1): a checkpoint if needed, then probe every follower."""
        node = self.node
        if needs_checkpoint(node.log, node.term, node.commit_index):
            node._append_local([checkpoint_entry(node.term)])
        self.broadcast(now)
        self.maybe_commit(now)

    # ---- inputs

    def propose(self, msg: Propose, now: float) -> int:
        """Append a client's update; it is sent with the rest of the batch (``end_batch``)."""
        return self.propose_batch(ProposeBatch(((msg.request_id, msg.data),)), now)

    def propose_batch(self, msg: ProposeBatch, now: float) -> int:
        """Append the updates of a drained batch: one append, one request-id cache update."""
        node = self.node
        if not msg.updates:
            return node.log.last_index
        term = node.term
        self.unsent = True
        return node._append_local(
            [encode_entry(rid, EntryType.STATE, term, data) for rid, data in msg.updates]
        )

    def end_batch(self, now: float) -> None:
        """One AppendEntries per follower for every update of a batch of inputs, instead of
        one per update: under load that is the difference between ~4 and ~30 entries per
        message, and as many fewer messages to encode, send, decode and acknowledge."""
        if self.unsent:
            self.unsent = False
            self.broadcast(now)

    def propose_config(self, msg: ProposeConfig, now: float) -> int:
        """Adopt the joint configuration now and append C(old,new) (spec §9 step 2)."""
        node = self.node
        node._set_config(msg.joint, msg.request_id, None, now)
        index = node._append_local(
            [encode_entry(msg.request_id, EntryType.CONFIG, node.term, msg.joint.to_entry_data())]
        )
        node.config_index = index
        node._persist({"peersIndex": index})
        self.broadcast(now)
        return index

    def append_entries_reply(self, peer: str, msg: AppendEntriesReply, now: float) -> None:
        acked = self._acknowledged(peer, msg.msg_id, msg.term, now)
        if acked is None:
            return
        progress, flight = acked
        if msg.success:
            progress.probing = False
            if flight.last > progress.match:
                progress.match = flight.last
                progress.match_fence = progress.sent
            if progress.next <= progress.match:
                progress.next = progress.match + 1
            self.maybe_commit(now)
            joint = self.node.config_index or 0
            if self.finish_by is not None and min(flight.last, flight.message.commit_index) >= joint:
                self.told.add(peer)  # a leaving peer knows C(old,new) committed
                self._after_commit(now)
        else:
            progress.end_chain()
            progress.probing = True
            nxt = flight.prev
            if msg.conflict_index is not None:
                if msg.conflict_index <= progress.match and flight.seq >= progress.match_fence:
                    self._lost_entries(progress, msg.conflict_index)
                nxt = min(nxt, msg.conflict_index)
            progress.next = max(nxt, progress.match + 1)
            if progress.next < self.node.log.first_index:
                progress.snapshot_offset = 0
        self.replicate(progress, now)

    def _lost_entries(self, progress: Progress, conflict_index: int) -> None:
        """The follower's log ends at ``conflict_index - 1`` (the conflict index is only sent
        by a too-short log), below what it acknowledged in this term, and the rejected message
        was sent after that acknowledgement came in (a reply to an earlier one may just have
        been overtaken by it): it lost durable entries (e.g. a torn tail dropped by
        ``zr-tool repair``).  Send them again from
        there; what was committed stays committed."""
        _log.warning(
            "%s: peer %s lost acknowledged entries: its log ends at %d, it had acknowledged %d",
            self.node.id,
            progress.peer_id,
            conflict_index - 1,
            progress.match,
        )
        progress.match = conflict_index - 1

    def install_snapshot_reply(self, peer: str, msg: InstallSnapshotReply, now: float) -> None:
        acked = self._acknowledged(peer, msg.msg_id, msg.term, now)
        if acked is None:
            return
        progress, flight = acked
        snap = self.node.log.snapshot
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
            self.maybe_commit(now)
        else:
            progress.snapshot_offset = flight.prev + flight.size
        self.replicate(progress, now)

    def _acknowledged(
        self, peer: str, msg_id: int, term: int, now: float
    ) -> tuple[Progress, Inflight] | None:
        """The message in flight a reply of our term answers (None for stale replies)."""
        progress = self.progress.get(peer)
        if progress is None or term < self.node.term:
            return None
        gap = now - progress.last_heard  # a contact, even if a late reply (check-quorum)
        cap = SLACK_CAP * self.node.options.election_timeout_max
        progress.slack = min(cap, max(gap, progress.slack - SLACK_DECAY * gap))
        progress.last_heard = now
        flight = progress.acknowledge(msg_id)
        if flight is None:
            return None
        newest = progress.newest()
        progress.resend_at = None if newest is None else newest[1].sent_at + self._resend_interval(newest[1])
        return progress, flight

    # ---- time and other hooks

    def tick(self, now: float) -> None:
        if self.quorum_check_at is not None and now >= self.quorum_check_at and self.lost_quorum(now):
            return
        if self.finish_by is not None and now >= self.finish_by:
            self._after_commit(now)
        for progress in list(self.progress.values()):
            self.replicate(progress, now)

    def lost_quorum(self, now: float) -> bool:
        """Check-quorum: step down if a majority has been silent for an election timeout."""
        node = self.node
        heard = {pid: p.last_heard + p.slack for pid, p in self.progress.items()}
        heard[node.id] = now
        since = quorum.quorum_contact(node.config, heard)
        deadline = since + node.options.election_timeout_max
        if now < deadline:  # (not ``now - since < timeout``: rounding would make it fire again)
            self.quorum_check_at = deadline
            return False
        _log.info("%s: no timely reply from a majority: stepping down (checkQuorum)", node.id)
        node._lost_leadership(now)
        return True

    def next_deadline(self) -> float | None:
        heartbeat = self.node.options.append_entries_heartbeat_interval
        deadlines = [at for at in (self.quorum_check_at, self.finish_by) if at is not None]
        for p in self.progress.values():
            if p.resend_at is not None:
                deadlines.append(p.resend_at)
            elif not p.inflight:
                deadlines.append(p.idle_since + heartbeat)
        return min(deadlines, default=None)

    def config_changed(self, now: float) -> None:
        """Track exactly the other peers of the new configuration (spec §9)."""
        node = self.node
        others = [pid for pid, _ in node.config.others(node.id)]  # ordered: replays must be exact
        for pid in list(self.progress):
            if pid not in others:
                del self.progress[pid]
        for pid in others:
            if pid not in self.progress:
                slack = node.options.election_timeout_max
                self.progress[pid] = Progress(pid, next=node.log.last_index + 1, last_heard=now, slack=slack)

    def persisted(self, now: float) -> None:
        self.maybe_commit(now)  # our own write counts once it is durable

    def log_compacted(self) -> None:
        first = self.node.log.first_index
        for p in self.progress.values():
            if p.next < first:
                p.end_chain()
                p.snapshot_offset = 0

    # ---- replication

    def broadcast(self, now: float) -> None:
        """New entries: send to every follower that may take them now."""
        for progress in list(self.progress.values()):
            self.replicate(progress, now)
        if not self.progress:
            self.maybe_commit(now)

    def _resend_interval(self, flight: Inflight) -> float:
        opts = self.node.options
        if flight.snapshot or flight.last > flight.prev:
            return opts.append_entries_rpc_timeout_max
        return opts.append_entries_rpc_timeout_min

    def replicate(self, p: Progress, now: float) -> None:
        """Send what ``p`` needs: a re-send, new entries within the window, a heartbeat."""
        if not self.current:
            return
        node = self.node
        raft_log = node.log
        opts = node.options
        if p.resend_at is not None and now >= p.resend_at:
            newest = p.newest()
            if newest is None:
                p.resend_at = None
            elif newest[1].snapshot and newest[1].last != raft_log.snapshot.index:
                p.end_chain()  # the snapshot being sent was replaced: start the new one
                p.snapshot_offset = 0
            else:
                # only the newest message is ever re-sent (see progress.py)
                flight = newest[1]
                node._send(p.peer_id, flight.message)
                flight.sent_at = now
                p.idle_since = now
                p.resend_at = now + self._resend_interval(flight)
                return
        while p.can_send(opts.max_inflight_messages, opts.max_inflight_bytes):
            if p.next < raft_log.first_index:
                self._send_snapshot_chunk(p, now)
                return
            if p.next > raft_log.last_index:
                if p.inflight:
                    return
                if not p.heartbeat_due and now < p.idle_since + opts.append_entries_heartbeat_interval:
                    return
            prev = p.next - 1
            prev_term = raft_log.term_at(prev)
            if prev_term is None:  # below our snapshot
                self._send_snapshot_chunk(p, now)
                return
            if p.probing:
                entries = raft_log.entries(p.next, p.next)
            else:
                entries = raft_log.entries(p.next, raft_log.last_index, max_bytes=opts.peer_msg_data_size)
                if (
                    len(p.inflight) >= opts.coalesce_inflight_messages
                    and entries
                    and p.next + len(entries) > raft_log.last_index
                ):
                    return  # they fit in one message: it leaves at the next acknowledgement
            msg = AppendEntries(
                node._next_msg_id(p.peer_id),
                node.id,
                node.term,
                prev,
                prev_term,
                node.commit_index,
                tuple(entries),
            )
            last = prev + len(entries)
            last_term = entry_term(entries[-1]) if entries else prev_term
            flight = Inflight(msg, prev, last, last_term, sum(len(e) for e in entries) + 64, now)
            p.record(msg.msg_id, flight)
            p.next = last + 1
            p.heartbeat_due = False
            p.resend_at = now + self._resend_interval(flight)
            node._send(p.peer_id, msg)
            if not entries:
                return

    def _send_snapshot_chunk(self, p: Progress, now: float) -> None:
        node = self.node
        snap = node.log.snapshot
        offset = min(p.snapshot_offset, snap.size)
        chunk = node.log.storage.read_snapshot(
            offset, min(node.options.peer_msg_data_size, snap.size - offset)
        )
        msg = InstallSnapshot(
            node._next_msg_id(p.peer_id), node.id, node.term, snap.index, snap.term, offset, snap.size, chunk
        )
        flight = Inflight(msg, offset, snap.index, snap.term, len(chunk), now, snapshot=True)
        p.probing = True
        p.record(msg.msg_id, flight)
        p.heartbeat_due = False
        p.resend_at = now + node.options.append_entries_rpc_timeout_max
        node._send(p.peer_id, msg)

    # ---- commit (§6.4) and membership (§9)

    def maybe_commit(self, now: float) -> None:
        if not self.current:
            return
        node = self.node
        match = {pid: p.match for pid, p in self.progress.items()}
        match[node.id] = node.durable_index
        index = quorum.commit_index(node.config, match)
        if index > node.commit_index and may_commit(node.log, index, node.term):
            node._advance_commit(index)
            self._after_commit(now)  # may append C(new), which then carries the commit
            # Followers learn the commit index with their next AppendEntries or heartbeat
            # (within append_entries_heartbeat_interval), not from a message of its own: an
            # empty AppendEntries per commit costs every peer CPU just as the next request
            # arrives, and nothing waits for a follower's commit index (clients are answered
            # by the leader, which applies at once).

    def _after_commit(self, now: float) -> None:
        """Membership steps after a commit advance (spec/raft.md §9 steps 5-6)."""
        node = self.node
        if self.leaving_at is not None and node.commit_index >= self.leaving_at:
            self.leaving_at = None
            node._become_client()
            return
        committed = node.config_index is not None and node.commit_index >= node.config_index
        if node.config.is_joint and committed and not self.telling_leaving(now):
            self.finish_config_change(now)

    def telling_leaving(self, now: float) -> bool:
        """C(old,new) is committed: do the peers C(new) removes still have to hear it?  They
        are sent it at once; C(new) waits for their acknowledgements or ``finish_by``."""
        node = self.node
        final = node.config.final()
        leaving = [p for pid, p in self.progress.items() if not final.is_member(pid) and pid not in self.told]
        if not leaving:
            return False
        if self.finish_by is None:
            self.finish_by = now + node.options.election_timeout_min
            for p in leaving:
                p.heartbeat_due = True
                self.replicate(p, now)
            return True
        return now < self.finish_by

    def finish_config_change(self, now: float) -> None:
        """C(old,new) is committed: adopt C(new) and append it with a fresh request id."""
        node = self.node
        self.finish_by = None
        self.told.clear()
        final = node.config.final()
        joint_index = node.config_index or 0
        joint_request = node.config_request  # also when this leader inherited the change
        request_id = node.request_id_generator.next(node.wall_ms / 1000)
        node._set_config(final, request_id, None, now)
        index = node._append_local(
            [encode_entry(request_id, EntryType.CONFIG, node.term, final.to_entry_data())]
        )
        node.config_index = index
        node._persist({"peersIndex": index})
        node._events.append(ConfigCommitted(joint_request, joint_index, index))
        if not final.is_member(node.id):
            self.leaving_at = index
        self.broadcast(now)
