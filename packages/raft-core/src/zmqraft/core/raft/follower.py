"""The receiving side of replication (spec/raft.md §7, §8, §10): FOLLOWER, CLIENT, and what
any role does with a current leader's AppendEntries and InstallSnapshot.

Theory of operation.  A request from a leader of an older term is refused with our term.
Otherwise the sender is our leader for its term (``RaftNode._accept_leader``): we adopt its
term, and a candidate or leader of the same or an older term becomes its follower first (as
etcd's ``stepCandidate`` does ``becomeFollower`` before ``handleAppendEntries``).  Then:

* AppendEntries (``handle_append_entries``; Raft Fig. 2 receiver rules 2-5):
  the log must hold the leader's ``prev`` entry (``log_matches``, the consistency check of
  Raft §5.3), else the request is refused, with the index after our last entry when our log
  is too short (a hint for the leader's next probe).  Entries are appended after ``prev``,
  truncating only at the first entry whose term differs (Raft Fig. 2 rule 3), so a late
  duplicate of an older request never drops entries we acknowledged; the original's
  followers truncate after ``prev`` on every match (``options.truncate_on_match``, kept for
  the simulator's original-style followers).  A truncation below the commit index is refused
  with a ``RaftError`` and no reply (spec §14.2: the original crashes).  The last CONFIG entry
  carried is adopted at once, not at commit (spec §9 step 3), and one that is truncated away
  falls back to the previous CONFIG entry in the log (the original keeps the void one).  The
  commit index follows the leader's, up to the last entry this request vouches for.
* InstallSnapshot (``handle_snapshot``, spec §8): chunks are written in order into a
  temporary snapshot; a chunk at another offset is answered with the offset we expect
  (``reposition``), which also resumes an interrupted transfer of the same snapshot.  The
  last chunk installs it (``begin_install``); until that job is durable, requests
  that could change the log are ignored (the leader re-sends).

Every acknowledgement leaves once what it promises is durable (``_reply_when_durable``) and
re-arms the election timer (a leader's message postpones our candidacy, Raft §5.2).

A CLIENT's catch-up (spec §10.4, ``RaftNode.catch_up_*``) writes the committed entries it
streams through ``append_from_leader`` too, never truncating what matches.

``log_matches`` is a seam: the simulator's ``no-log-matching`` mutant replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..cluster import ClusterConfig
from ..jobs import SnapshotChunk
from ..protocol.entry import EntryType, entry_request_id, entry_term, entry_type
from ..protocol.messages import AppendEntries, AppendEntriesReply, InstallSnapshot, InstallSnapshotReply
from ..storage.base import SnapshotMeta
from .log import RaftLog
from .roles import Role, RoleHandler

if TYPE_CHECKING:
    from .node import RaftNode

log = logging.getLogger("zmqraft.raft")


class Follower(RoleHandler):
    """FOLLOWER: a member that follows a leader and runs an election timer."""

    role = Role.FOLLOWER
    election_timer = True
    follows = True

    __slots__ = ()

    def leader_alive(self, leader_id: str, term: int, now: float) -> None:
        """A re-sent AppendEntries/InstallSnapshot of our leader, answered by the driver's
        debounce without reaching us, still shows the leader is alive (Raft §5.2)."""
        node = self.node
        if term == node.term and leader_id == node.leader_id:
            node.leader_heard_at = now
            node._rearm_election(now)


class Client(RoleHandler):
    """CLIENT: not a member of its configuration; replicates, never campaigns (spec §10)."""

    role = Role.CLIENT
    follows = True

    __slots__ = ()

    def config_changed(self, now: float) -> None:
        """A configuration that includes us makes us a FOLLOWER (spec/raft.md §9 step 3)."""
        node = self.node
        if node.config.is_member(node.id):
            node._become_follower(now)


def log_matches(log: RaftLog, index: int, term: int) -> bool:
    """Our log holds an entry at ``index`` of ``term`` (Raft §5.3).  Anything our snapshot
    covers matches: it is committed, so it is the leader's too."""
    ours = log.term_at(index)
    if ours is None and index < log.snapshot.index:
        return True
    return ours == term


def handle_append_entries(node: RaftNode, msg: AppendEntries, route: Any, now: float) -> None:
    """An AppendEntries of a known peer, in any role (spec/raft.md §7)."""
    if node._installing is not None:
        return
    if msg.term < node.term:
        node._reply(route, AppendEntriesReply(msg.msg_id, node.term, False))
        return
    node._accept_leader(msg.leader_id, msg.term, now)
    if not log_matches(node.log, msg.prev_log_index, msg.prev_log_term):
        conflict = node.log.last_index + 1 if node.log.last_index < msg.prev_log_index else None
        node._reply_when_durable(route, AppendEntriesReply(msg.msg_id, node.term, False, conflict))
        node._rearm_election(now)
        return
    last_new = append_from_leader(node, msg.prev_log_index, msg.entries, now)
    if last_new is None:
        return  # refused (would truncate committed entries): no reply, leader retries
    adopt_config_from(node, msg.prev_log_index, msg.entries, now)
    if msg.commit_index > node.commit_index:
        node._advance_commit(min(msg.commit_index, last_new))
        if node.role is not Role.CLIENT and node.is_removed():
            node._become_client()  # the change that removes us is committed: stay passive
    node._reply_when_durable(route, AppendEntriesReply(msg.msg_id, node.term, True))
    node._rearm_election(now)


def handle_snapshot(node: RaftNode, msg: InstallSnapshot, route: Any, now: float) -> None:
    """An InstallSnapshot chunk of a known peer, in any role (spec/raft.md §8)."""
    if node._installing is not None:
        return
    if msg.term < node.term:
        node._reply(route, InstallSnapshotReply(msg.msg_id, node.term))
        return
    node._accept_leader(msg.leader_id, msg.term, now)
    meta = SnapshotMeta(msg.last_index, msg.last_term, msg.total_size)
    if node._snapshot_in is None or node._snapshot_in[0] != meta:
        node._snapshot_in = (meta, 0)
    written = node._snapshot_in[1]
    if msg.offset != written:
        node._reply_when_durable(route, InstallSnapshotReply(msg.msg_id, node.term, written))
        node._rearm_election(now)
        return
    written += len(msg.chunk)
    final = written >= meta.size
    node._snapshot_in = (meta, written)
    node._queue_snapshot_chunk(SnapshotChunk(meta, msg.offset, msg.chunk, final))
    if final:
        begin_install(node, meta)
        node._snapshot_in = None
    node._reply_when_durable(route, InstallSnapshotReply(msg.msg_id, node.term))
    node._rearm_election(now)


def begin_install(node: RaftNode, meta: SnapshotMeta) -> None:
    """The last chunk is queued.  Whether it compacts or replaces the log is decided on the
    view now, as storage will decide it on the same entries (peer RPCs that could change the
    log are ignored until the install is done)."""
    node._installing = meta
    node._install_compacts = node.log.term_at(meta.index) == meta.term
    if not node._install_compacts and node.config_index is not None and node.config_index > meta.index:
        # the entry our configuration came from goes with the old log: keep the configuration
        # as of the snapshot, in the same job (the start-up checks rely on it)
        node.config_index = meta.index
        node._persist({"peersIndex": meta.index})


def snapshot_installed(node: RaftNode, meta: SnapshotMeta) -> None:
    """The storage job that installs the snapshot is durable (spec/raft.md §8 step 7)."""
    node._installing = None
    if not node._install_compacts:
        node.log.reset_to_snapshot(meta)
        node.request_ids.clear()
    node.durable_index = node.log.last_index
    node._advance_commit(meta.index)  # a snapshot holds committed entries only
    if node.last_applied < meta.index:
        node._apply_snapshot_pending = True


def append_from_leader(
    node: RaftNode, prev: int, entries: Sequence[bytes], now: float, truncate_on_match: bool | None = None
) -> int | None:
    """Append ``entries`` after ``prev``; returns the last index they cover (None: refused)."""
    raft_log = node.log
    first = prev + 1
    skip = 0
    if entries and first < raft_log.first_index:
        skip = raft_log.first_index - first  # below our snapshot: committed, identical
        if skip >= len(entries):
            return prev + len(entries)
    cut: int  # the last entry kept; set on every path that reaches the truncation below
    if truncate_on_match is None:
        truncate_on_match = node.options.truncate_on_match
    if truncate_on_match:
        cut = prev + skip
        last = prev + len(entries)
        if last >= raft_log.last_index and all(
            raft_log.term_at(first + pos) == entry_term(entries[pos])
            for pos in range(skip, raft_log.last_index - prev)
        ):
            # the original truncates and appends the very entries it holds (a re-sent copy
            # of the newest message): the log ends as it was
            node._append_local(entries[raft_log.last_index - prev :])
            return last
    else:
        for pos in range(skip, len(entries)):
            index = first + pos
            term = raft_log.term_at(index)
            if term is None or term != entry_term(entries[pos]):
                cut = index - 1
                skip = pos
                break
        else:
            return prev + len(entries)
    if cut < node.commit_index and cut < raft_log.last_index:
        node._error(f"refusing to truncate below commit index {node.commit_index} (at {cut})")
        return None
    if cut < raft_log.last_index:
        raft_log.truncate_after(cut)
        node.request_ids.truncate_after(cut)
        node.durable_index = min(node.durable_index, cut)
        if node.config_index is not None and node.config_index > cut:
            revert_config(node, cut, now)
    node._append_local(entries[skip:])
    return prev + len(entries)


def adopt_config_from(node: RaftNode, prev: int, entries: Sequence[bytes], now: float) -> None:
    """Adopt the last CONFIG entry among ``entries`` (at ``prev + 1``...) if it is newer."""
    for pos in range(len(entries) - 1, -1, -1):
        if entry_type(entries[pos]) == EntryType.CONFIG:
            index = prev + 1 + pos
            if node.config_index is None or index > node.config_index:
                config = ClusterConfig.from_entry_data(bytes(entries[pos][20:]))
                node._set_config(config, entry_request_id(entries[pos]), index, now)
            return


def revert_config(node: RaftNode, last_kept: int, now: float) -> None:
    """The entry that gave our configuration was truncated: fall back to the last CONFIG
    entry still in the log (the original keeps the void configuration, spec §14.3)."""
    for index in range(last_kept, node.log.first_index - 1, -1):
        entry = node.log.entry(index)
        if entry_type(entry) == EntryType.CONFIG:
            config = ClusterConfig.from_entry_data(bytes(entry[20:]))
            node._set_config(config, entry_request_id(entry), index, now)
            return
    # the configuration came from the seed or a snapshot: keep it, but no longer claim an
    # index beyond the log (the start-up checks rely on it)
    log.debug("%s: config entry %s truncated; kept as of %s", node.id, node.config_index, last_kept)
    node.config_index = last_kept
    node._persist({"peersIndex": last_kept})
