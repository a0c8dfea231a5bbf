"""The roles a peer plays (spec/raft.md §2), and what a role decides.

Theory of operation (after etcd-io/raft, where ``becomeLeader`` swaps ``r.step = stepLeader``
and ``r.tick = r.tickHeartbeat``): the node holds one ``RoleHandler`` object and replaces it on
every role change (``RaftNode._become_*``).  Whatever depends on the role is a method of that
object; the node never asks "am I the leader?" before acting.  A handler that carries state
(a candidate's votes, a leader's per-follower progress) is a new object for each term, so
nothing of a past candidacy or leadership survives into the next role.

What every role does alike stays in the node or in the module of its topic: requests are
answered the same way in every role (the sender's term decides, spec/raft.md §5.3, §7, §8; a
leader or candidate that hears a current leader first becomes its follower), and a reply that
carries a newer term makes any role a follower (spec §5.2, §6.2).  The base class below gives
every other input its default, which is what FOLLOWER and CLIENT do:

=====================  ==============================  ===============================
input / hook           default (FOLLOWER, CLIENT)      overridden by
=====================  ==============================  ===============================
vote reply             ignored (not campaigning)       Candidate: tally (§5.2)
pre-vote reply         ignored (not campaigning)       PreCandidate: tally (thesis §9.6)
append/snapshot reply  ignored (not leading)           Leader: progress, commit (§6)
LeaderAlive            ignored                         Follower: re-arm timer (§5.2)
Propose, ProposeConfig NotLeader                       Leader (§6, §9)
election timeout       campaign (§5.1)                 Candidate: spiral rule (§5.1)
tick, next_deadline    nothing                         Candidate: vote re-sends;
                                                       Leader: heartbeats, re-sends
holds_term             False                           Candidate: spiral rule (§5.1-5.3)
config_changed         not a member -> CLIENT          Client: member -> FOLLOWER;
                                                       Leader: progress per peer (§9)
persisted              nothing                         Leader: commit rule (§6.4)
log_compacted          nothing                         Leader: restart snapshots
=====================  ==============================  ===============================

The two class attributes are the columns of spec §2's table the node's common code needs:
``election_timer`` (FOLLOWER and CANDIDATE run one) and ``follows`` (FOLLOWER and CLIENT take
a current leader's messages without a role change).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from ..protocol.messages import AppendEntriesReply, InstallSnapshotReply, PreVoteReply, RequestVoteReply
from .inputs import NotLeader, Propose, ProposeBatch, ProposeConfig

if TYPE_CHECKING:
    from .node import RaftNode


class Role(Enum):
    CLIENT = "CLIENT"
    FOLLOWER = "FOLLOWER"
    CANDIDATE = "CANDIDATE"
    LEADER = "LEADER"


class RoleHandler:
    """The role-dependent half of the node (etcd's ``r.step`` and ``r.tick``)."""

    role: ClassVar[Role]
    election_timer: ClassVar[bool] = False
    follows: ClassVar[bool] = False

    __slots__ = ("node",)

    def __init__(self, node: RaftNode) -> None:
        self.node = node

    # ---- inputs (a reply of a newer term never gets here: the node has stepped down)

    def request_vote_reply(self, peer: str, msg: RequestVoteReply, now: float) -> None:
        """A late answer to a past candidacy: ignored."""

    def pre_vote_reply(self, peer: str, msg: PreVoteReply, now: float) -> None:
        """A late answer to a past pre-vote round: ignored."""

    def append_entries_reply(self, peer: str, msg: AppendEntriesReply, now: float) -> None:
        """A late answer to a past leadership: ignored."""

    def install_snapshot_reply(self, peer: str, msg: InstallSnapshotReply, now: float) -> None:
        """A late answer to a past leadership: ignored."""

    def leader_alive(self, leader_id: str, term: int, now: float) -> None:
        """Only a follower runs an election timer a leader's re-send should reset."""

    def propose(self, msg: Propose, now: float) -> int:
        raise NotLeader(f"propose on a {self.role.value}")

    def propose_batch(self, msg: ProposeBatch, now: float) -> int:
        raise NotLeader(f"propose on a {self.role.value}")

    def propose_config(self, msg: ProposeConfig, now: float) -> int:
        raise NotLeader(f"config change on a {self.role.value}")

    # ---- time

    def election_timeout(self, now: float) -> None:
        """The election timer ran out: start an election (spec/raft.md §5.1)."""
        self.node._campaign(now)

    def tick(self, now: float) -> None:
        """Fire the role's own timers that are due."""

    def end_batch(self, now: float) -> None:
        """The end of a batch of inputs: send what they made ready (a leader's new entries)."""

    def next_deadline(self) -> float | None:
        """The role's own next timer, if any."""
        return None

    # ---- around the role

    def holds_term(self) -> bool:
        """True while prevent_spiral_elections keeps this peer in its term (a candidate only)."""
        return False

    def config_changed(self, now: float) -> None:
        """A configuration was adopted: FOLLOWER means member (spec/raft.md §2)."""
        node = self.node
        if not node.config.is_member(node.id):
            node._become_client()

    def persisted(self, now: float) -> None:
        """A storage job became durable (after the node's own bookkeeping)."""

    def log_compacted(self) -> None:
        """The log's first index moved up (a compaction snapshot was installed)."""
