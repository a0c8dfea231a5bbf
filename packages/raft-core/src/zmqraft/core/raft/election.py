"""Elections (Raft §5.2, §5.4.1; spec/raft.md §5): the voter's side and the candidate's.

Theory of operation.  A follower whose election timer runs out becomes a candidate of the
next term, votes for itself and asks every other peer of its (joint) configuration for a vote
(``RaftNode._campaign`` then ``Candidate.campaign``).  Its RequestVotes leave only once its
own term and vote are durable, and are re-sent every ``rpc_timeout`` until answered; it wins
when the granted votes hold a majority of every voter group (``quorum.vote_result``).

A voter, in any role, answers a RequestVote (``handle_request_vote``, spec §5.3):

1. a request of an older term is refused with our term;
2. a candidate held in its term by ``prevent_spiral_elections`` refuses every request
   (``RoleHandler.holds_term``), whatever its term;
3. the vote is granted if the candidate's log is at least as up to date as ours
   (``log_up_to_date``, Raft §5.4.1) and we may still vote for it in its term
   (``may_vote_for``: one vote per term, Raft Fig. 2);
4. a grant, or a newer term, makes us a follower of that term (vote recorded and persisted,
   leader unknown); only a grant re-arms our election timer (Raft §5.2; the original re-arms
   on a refusal too, which lets a candidate with a stale log keep the up-to-date peers from
   ever campaigning);
5. the reply leaves once the term and vote it promises are durable.

``prevent_spiral_elections`` (spec §5.1-§5.3, a deviation of the original): until a majority
has answered its own vote request, a candidate neither starts a new term on timeout, nor
adopts a higher term from a vote reply, nor grants votes.  A partitioned candidate therefore
stays in one term and does not disrupt the cluster when the partition heals.

Pre-vote (Raft thesis §9.6, after etcd-io/raft; option ``pre_vote``; the wire addition is in
docs/protocol-extensions.md).  With it, a peer whose election timer runs out first becomes a
``PreCandidate``: it keeps its term and vote, reports itself a FOLLOWER without a leader, and
asks every other peer a ``PreVote`` for ``term + 1``.  Only once the grants (its own included)
hold a majority of every voter group does it campaign for real.  A voter answers a PreVote in
any role and whatever its own option, and changes nothing of its own state
(``handle_pre_vote``): it grants (replying with the proposed term) iff
``may_grant_pre_vote``: the proposed term is newer than ours (or ours and we could still vote
for the candidate in it), the candidate's log is at least as up to date, and we have not heard
from a leader within ``election_timeout_min`` (a leader never grants).  A refusal carries our
term: a pre-candidate refused with a newer term follows that term, as after a vote reply.  So a
peer cut off from the cluster never raises its term, and on rejoining it cannot depose a
healthy leader: everyone who still hears that leader refuses it.

``may_vote_for`` and ``may_grant_pre_vote`` are seams: the simulator's ``double-vote`` and
``pre-vote-ignores-leader`` mutants replace them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..protocol.messages import PreVote, PreVoteReply, RequestVote, RequestVoteReply
from . import quorum
from .log import RaftLog
from .quorum import VoteResult
from .roles import Role, RoleHandler

if TYPE_CHECKING:
    from .node import RaftNode


def log_up_to_date(log: RaftLog, msg: RequestVote | PreVote) -> bool:
    """The candidate's log ends in a later term, or in the same term and no shorter (§5.4.1)."""
    return msg.last_log_term > log.last_term or (
        msg.last_log_term == log.last_term and msg.last_log_index >= log.last_index
    )


def may_vote_for(node: RaftNode, msg: RequestVote) -> bool:
    """One vote per term (Raft Fig. 2, RequestVote rule 2): we have not voted in the
    candidate's term, or voted for this candidate."""
    return node.voted_for is None or node.voted_for == msg.candidate_id or msg.term > node.term


def handle_request_vote(node: RaftNode, msg: RequestVote, route: Any, now: float) -> None:
    """Answer a RequestVote of a known peer, in any role (spec/raft.md §5.3)."""
    if msg.term < node.term or node._role.holds_term():
        node._reply(route, RequestVoteReply(msg.msg_id, node.term, False))
        return
    granted = log_up_to_date(node.log, msg) and may_vote_for(node, msg)
    if granted or msg.term > node.term:
        deadline = node._election_deadline
        node.leader_id = None
        node._set_term(msg.term, msg.candidate_id if granted else None)
        node._become_follower(now)
        if not granted and deadline is not None and node._role.election_timer:
            node._election_deadline = deadline  # a refusal does not postpone our candidacy
    node._reply_when_durable(route, RequestVoteReply(msg.msg_id, node.term, granted))


def may_grant_pre_vote(node: RaftNode, msg: PreVote, now: float) -> bool:
    """Would we vote for this candidate in its proposed term, and have we no current leader?
    (thesis §9.6; etcd's ``canVote`` for MsgPreVote, and its leader lease)."""
    if node.role is Role.LEADER:
        return False
    if node.leader_id is not None and now - node.leader_heard_at < node.options.election_timeout_min:
        return False
    free = msg.term > node.term or (
        node.voted_for == msg.candidate_id or (node.voted_for is None and node.leader_id is None)
    )
    return free and log_up_to_date(node.log, msg)


def handle_pre_vote(node: RaftNode, msg: PreVote, route: Any, now: float) -> None:
    """Answer a PreVote of a known peer, in any role: nothing of ours changes, nothing waits."""
    if msg.term < node.term:
        node._reply(route, PreVoteReply(msg.msg_id, node.term, False))
        return
    granted = may_grant_pre_vote(node, msg, now)
    node._reply(route, PreVoteReply(msg.msg_id, msg.term if granted else node.term, granted))


class _Canvass(RoleHandler):
    """What a pre-candidate and a candidate share: the ballot each other peer was sent,
    re-sent every ``rpc_timeout`` until it is answered, and the answers so far (our own grant
    included).  ``_send`` is how a ballot leaves."""

    election_timer = True

    __slots__ = ("pending", "votes")

    def __init__(self, node: RaftNode) -> None:
        super().__init__(node)
        self.votes: dict[str, bool] = {node.id: True}  # who answered -> granted
        self.pending: dict[str, tuple[int, PreVote | RequestVote, float]] = {}  # peer -> (id, msg, resend at)

    def _send(self, peer: str, msg: PreVote | RequestVote) -> None:
        raise NotImplementedError

    def _ask(self, peer: str, msg: PreVote | RequestVote, now: float) -> None:
        self.pending[peer] = (msg.msg_id, msg, now + self.node.options.rpc_timeout)
        self._send(peer, msg)

    def _answered(self, peer: str, msg_id: int) -> bool:
        """Is this the answer to the ballot ``peer`` holds?  (It then no longer waits.)"""
        pending = self.pending.get(peer)
        if pending is None or pending[0] != msg_id:
            return False
        del self.pending[peer]
        return True

    def tick(self, now: float) -> None:
        for peer, (_msg_id, msg, at) in list(self.pending.items()):
            if now >= at:
                self._ask(peer, msg, now)

    def next_deadline(self) -> float | None:
        return min((at for _, _, at in self.pending.values()), default=None)


class PreCandidate(_Canvass):
    """A follower asking for pre-votes (thesis §9.6): term and vote unchanged, leader unknown;
    told as FOLLOWER (spec/raft.md §2 has no such state)."""

    role = Role.FOLLOWER

    __slots__ = ()

    def _send(self, peer: str, msg: PreVote | RequestVote) -> None:
        self.node._send(peer, msg)  # it promises nothing: no need to wait for the disk

    def campaign(self, now: float) -> None:
        node = self.node
        if quorum.vote_result(node.config, self.votes) is VoteResult.WON:
            node._campaign(now, pre_voted=True)
            return
        proposed = node.term + 1
        for peer, _url in node.config.others(node.id):
            self._ask(
                peer,
                PreVote(node._next_msg_id(peer), node.id, proposed, node.log.last_index, node.log.last_term),
                now,
            )
        node._rearm_election(now)

    def pre_vote_reply(self, peer: str, msg: PreVoteReply, now: float) -> None:
        if not self._answered(peer, msg.msg_id):
            return
        node = self.node
        if msg.vote_granted and msg.term == node.term + 1:
            self.votes[peer] = True
            if quorum.vote_result(node.config, self.votes) is VoteResult.WON:
                node._campaign(now, pre_voted=True)
            return
        self.votes[peer] = False
        if msg.term > node.term and not msg.vote_granted:
            node._step_down(msg.term, now)  # a newer term exists: follow it (etcd does too)


class Candidate(_Canvass):
    """CANDIDATE: one campaign in one term (spec/raft.md §5.1, §5.2)."""

    role = Role.CANDIDATE

    __slots__ = ()

    def _send(self, peer: str, msg: PreVote | RequestVote) -> None:
        # our own vote must be durable before anyone else counts on it (held like a reply);
        # a re-send too: a slow disk must not let us win a term we could forget in a crash
        self.node._send_when_durable(peer, msg)

    def campaign(self, now: float) -> None:
        """Our term and vote are set: win at once as the sole member, or ask for votes."""
        node = self.node
        if quorum.vote_result(node.config, self.votes) is VoteResult.WON:
            node._become_leader(now)
            return
        for peer, _url in node.config.others(node.id):
            self._ask(
                peer,
                RequestVote(
                    node._next_msg_id(peer), node.id, node.term, node.log.last_index, node.log.last_term
                ),
                now,
            )
        node._rearm_election(now)

    def holds_term(self) -> bool:
        """prevent_spiral_elections: no majority (ourselves included) has answered us yet."""
        return self.node.options.prevent_spiral_elections and not quorum.has_majority(
            self.node.config, self.votes
        )

    def election_timeout(self, now: float) -> None:
        if self.holds_term():
            self.node._rearm_election(now)  # same term; the pending requests keep going out
            return
        self.node._campaign(now)

    def request_vote_reply(self, peer: str, msg: RequestVoteReply, now: float) -> None:
        if not self._answered(peer, msg.msg_id):
            return
        node = self.node
        self.votes[peer] = False
        if msg.term > node.term:
            if not self.holds_term():
                node._step_down(msg.term, now)
            return
        if msg.term == node.term and msg.vote_granted:
            self.votes[peer] = True
            if quorum.vote_result(node.config, self.votes) is VoteResult.WON:
                node._become_leader(now)
