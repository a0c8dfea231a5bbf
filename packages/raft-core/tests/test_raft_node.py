"""Claims of the Raft paper and of spec/raft.md, one test each, on a single RaftNode.

The node is driven directly: messages in, ``take_outgoing`` out, storage jobs acknowledged by
hand, so each test sees exactly when a message may leave.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.protocol.entry import EntryType, encode_entry
from zmqraft.core.protocol.messages import (
    AppendEntries,
    AppendEntriesReply,
    PreVote,
    PreVoteReply,
    RequestVote,
    RequestVoteReply,
)
from zmqraft.core.raft.inputs import LeaderAlive, NotLeader, PeerReply, PeerRequest, Propose
from zmqraft.core.raft.node import HardState, RaftError, RaftNode, Role, StateChanged
from zmqraft.core.raft.options import RaftOptions
from zmqraft.core.storage.executor import StorageExecutor
from zmqraft.core.storage.memory import MemoryLog, MemoryState

PEERS = (("a", "tcp://127.0.0.1:1"), ("b", "tcp://127.0.0.1:2"), ("c", "tcp://127.0.0.1:3"))


def entry(term: int, n: int) -> bytes:
    return encode_entry(n.to_bytes(12, "big"), EntryType.STATE, term, b"x%d" % n)


class Harness:
    def __init__(self, peer: str = "a", options: RaftOptions | None = None, term: int = 0) -> None:
        self.log = MemoryLog()
        self.state = MemoryState()
        self.executor = StorageExecutor(self.log, self.state)
        self.node = RaftNode(
            peer,
            self.log,
            HardState(term=term, config=ClusterConfig(PEERS)),
            options or RaftOptions(),
            random.Random(1),
            now=0.0,
        )
        self.now = 0.0

    def flush_storage(self) -> int:
        done = 0
        while (job := self.node.next_storage_job()) is not None:
            self.executor.run(job)
            self.node.storage_done(job, self.now)
            done += 1
        return done

    def sent(self) -> list[object]:
        return [out.message for out in self.node.take_outgoing()]

    def elect(self) -> None:
        """Make this node leader of the next term with b's vote."""
        self.now += 1.0
        self.node.tick(self.now)
        assert self.node.role is Role.CANDIDATE
        self.flush_storage()
        vote_b = next(o.message for o in self.node.take_outgoing() if o.peer == "b")
        assert isinstance(vote_b, RequestVote)
        self.node.step(PeerReply("b", RequestVoteReply(vote_b.msg_id, self.node.term, True)), self.now)
        assert self.node.role is Role.LEADER

    def propose_batch(self, numbers: range) -> list[Any]:
        """Propose one update per number as one batch of inputs (the driver's round ends it),
        make it durable, and return what went to b."""
        for n in numbers:
            self.node.step(Propose(n.to_bytes(12, "big"), b"x%d" % n), self.now)
        self.node.end_batch(self.now)
        self.flush_storage()
        return [o.message for o in self.node.take_outgoing() if o.peer == "b"]

    def ack_probe(self, peer: str = "b") -> None:
        """Acknowledge the new leader's first (probing) AppendEntries to ``peer``."""
        self.flush_storage()
        probe = [o.message for o in self.node.take_outgoing() if o.peer == peer][-1]
        assert isinstance(probe, AppendEntries)
        self.node.step(PeerReply(peer, AppendEntriesReply(probe.msg_id, self.node.term, True)), self.now)
        self.node.take_outgoing()


def test_vote_reply_waits_until_the_vote_is_durable() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(RequestVote(1, "a", 1, 0, 0), "route"), 0.1)
    assert h.sent() == []  # term and vote not yet on disk
    assert h.flush_storage() == 1
    assert h.state.load()["votedFor"] == "a" and h.state.load()["currentTerm"] == 1
    assert h.sent() == [RequestVoteReply(1, 1, True)]


def test_one_vote_per_term() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(RequestVote(1, "a", 1, 0, 0), "r"), 0.1)
    h.node.step(PeerRequest(RequestVote(1, "c", 1, 0, 0), "r"), 0.1)
    h.flush_storage()
    assert h.sent() == [RequestVoteReply(1, 1, True), RequestVoteReply(1, 1, False)]


def test_vote_refused_to_a_candidate_with_an_older_log() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 2, 0, 0, 0, (entry(2, 1),)), "r"), 0.1)
    h.flush_storage()
    h.sent()
    h.node.step(PeerRequest(RequestVote(2, "c", 3, 5, 1), "r"), 0.2)  # longer log, older term
    h.flush_storage()
    assert h.sent() == [RequestVoteReply(2, 3, False)]


def test_requests_from_unknown_peers_are_not_answered() -> None:
    h = Harness("b", term=6)
    h.node.step(PeerRequest(RequestVote(1, "zz", 7, 0, 0), "r"), 0.1)
    h.node.step(PeerRequest(PreVote(2, "zz", 7, 0, 0), "r"), 0.1)
    h.node.step(PeerRequest(AppendEntries(1, "zz", 5, 0, 0, 0, ()), "r"), 0.1)  # an older term
    h.flush_storage()
    assert h.sent() == [] and h.node.term == 6


def test_a_leader_outside_our_configuration_is_followed_from_its_term_on() -> None:
    """Beyond the original: a peer that missed the change that added its leader (so that it
    does not know it) catches up from it instead of forcing an election (which pre-vote
    would refuse it)."""
    h = Harness("b", term=4)
    h.node.step(PeerRequest(AppendEntries(1, "zz", 5, 0, 0, 0, (entry(5, 1),)), "r"), 0.1)
    h.flush_storage()
    assert h.sent() == [AppendEntriesReply(1, 5, True)]
    assert h.node.leader_id == "zz" and h.node.term == 5 and h.log.last_index == 1


def test_append_ack_waits_until_entries_are_durable() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(7, "a", 1, 0, 0, 0, (entry(1, 1), entry(1, 2))), "r"), 0.1)
    assert h.sent() == []
    h.flush_storage()
    assert h.log.last_index == 2
    assert h.sent() == [AppendEntriesReply(7, 1, True)]


def test_too_short_log_answers_with_the_conflict_index() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 5, 1, 0, (entry(1, 6),)), "r"), 0.1)
    h.flush_storage()
    assert h.sent() == [AppendEntriesReply(1, 1, False, 1)]


def test_stale_leader_is_refused_with_our_term() -> None:
    h = Harness("b", term=4)
    h.node.step(PeerRequest(AppendEntries(1, "a", 3, 0, 0, 0, ()), "r"), 0.1)
    assert h.sent() == [AppendEntriesReply(1, 4, False)]


def test_truncating_committed_entries_is_an_error_event_not_a_crash() -> None:
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 2, (entry(1, 1), entry(1, 2))), "r"), 0.1)
    h.flush_storage()
    assert h.node.commit_index == 2
    h.node.take_events()
    h.node.step(PeerRequest(AppendEntries(2, "a", 2, 0, 0, 2, (entry(2, 9),)), "r"), 0.2)
    events = h.node.take_events()
    assert any(isinstance(e, RaftError) and "commit index" in e.message for e in events)
    assert h.log.entries(1, 2) == [entry(1, 1), entry(1, 2)]


def test_entries_are_applied_from_the_last_write_without_reading_them_back() -> None:
    """The apply after a write takes the entries the last two writes made durable from memory (at one
    update in flight, a read back from the log file on every peer); older ones, and whatever a
    conflicting leader replaced, come from storage."""
    h = Harness("b")
    reads = []
    entry_batches = h.log.entry_batches
    h.log.entry_batches = (  # type: ignore[method-assign]
        lambda first, last, *a: reads.append((first, last)) or entry_batches(first, last, *a)
    )
    written = (entry(1, 1), entry(1, 2), entry(1, 3))
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 1, written), "r"), 0.1)
    h.flush_storage()
    job = h.node.next_apply_job()
    assert job is not None and job.entries == [written[0]] and job.entries[0] is written[0]
    h.node.apply_done(job, 1, 0.1)
    # a new leader replaces 3 before it commits 3: the apply must see its entry, not ours
    replaced = entry(2, 30)
    h.node.step(PeerRequest(AppendEntries(2, "c", 2, 2, 1, 3, (replaced,)), "r"), 0.2)
    job = h.node.next_apply_job()  # 2 is durable and committed; 3 of the old write is void
    assert job is not None and list(job.entries) == [written[1]]
    h.node.apply_done(job, 2, 0.2)
    h.flush_storage()
    job = h.node.next_apply_job()
    assert job is not None and job.entries == [replaced] and job.entries[0] is replaced
    h.node.apply_done(job, 3, 0.2)
    assert reads == []  # every entry came from the writes
    h.node.step(PeerRequest(AppendEntries(3, "c", 2, 3, 2, 3, ()), "r"), 0.3)
    h.flush_storage()
    # the write before the last stays too: a follower learns of a commit with the next write
    assert h.node.log.recent(1, 3) == [written[0], written[1], replaced]
    fourth = entry(2, 40)
    h.node.step(PeerRequest(AppendEntries(4, "c", 2, 3, 2, 3, (fourth,)), "r"), 0.4)
    h.flush_storage()
    assert h.node.log.recent(2, 4) is None and h.node.log.recent(3, 4) == [replaced, fourth]


def test_a_follower_applies_a_write_committed_by_the_next_append_from_memory() -> None:
    """At steady load the commit of a follower's write arrives with the next write: its apply
    takes the entries of the write before the last from memory too."""
    h = Harness("b")
    reads = []
    entry_batches = h.log.entry_batches
    h.log.entry_batches = (  # type: ignore[method-assign]
        lambda first, last, *a: reads.append((first, last)) or entry_batches(first, last, *a)
    )
    first = (entry(1, 1), entry(1, 2))
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, first), "r"), 0.1)
    h.flush_storage()
    assert h.node.next_apply_job() is None  # nothing committed yet
    h.node.step(PeerRequest(AppendEntries(2, "a", 1, 2, 1, 2, (entry(1, 3),)), "r"), 0.2)
    h.flush_storage()
    job = h.node.next_apply_job()
    assert job is not None and job.entries == list(first) and job.entries[0] is first[0]
    assert reads == []


def test_a_late_older_append_does_not_drop_acknowledged_entries() -> None:
    """Our follower truncates only at the first conflicting entry (Raft Fig. 2, rule 3)."""
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, (entry(1, 1),)), "r"), 0.1)
    h.node.step(PeerRequest(AppendEntries(2, "a", 1, 1, 1, 0, (entry(1, 2), entry(1, 3))), "r"), 0.1)
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, (entry(1, 1),)), "r2"), 0.1)  # late duplicate
    h.flush_storage()
    assert h.log.last_index == 3


def test_original_style_follower_truncates_after_prev_on_every_match() -> None:
    h = Harness("b", RaftOptions(truncate_on_match=True))
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, (entry(1, 1), entry(1, 2))), "r"), 0.1)
    h.node.step(PeerRequest(AppendEntries(2, "a", 1, 0, 0, 0, ()), "r"), 0.1)
    h.flush_storage()
    assert h.log.last_index == 0


def test_original_style_follower_takes_a_re_sent_copy_of_committed_entries_as_it_holds_them() -> None:
    """A copy of the newest AppendEntries re-sent on a new connection reaches the follower
    after it committed the entries: the original truncates after prevIndex and appends the
    same entries, ending as it was; the model must not take it for a truncation of committed
    entries (found by the simulator, seed 1803 of the long run)."""
    h = Harness("b", RaftOptions(truncate_on_match=True))
    first = (entry(1, 1), entry(1, 2))
    rest = tuple(entry(1, n) for n in range(3, 9))
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, first), "r"), 0.1)
    h.node.step(PeerRequest(AppendEntries(2, "a", 1, 2, 1, 8, rest), "r"), 0.1)
    h.flush_storage()
    assert h.node.commit_index == 8
    h.node.step(PeerRequest(AppendEntries(2, "a", 1, 2, 1, 8, rest), "r2"), 0.2)  # the copy
    h.flush_storage()
    assert h.log.last_index == 8 and h.node.commit_index == 8
    assert not [e for e in h.node.take_events() if isinstance(e, RaftError)]


def test_new_leader_appends_a_checkpoint_for_older_term_entries() -> None:
    h = Harness("a")
    h.node.step(PeerRequest(AppendEntries(1, "b", 1, 0, 0, 0, (entry(1, 1),)), "r"), 0.1)
    h.flush_storage()
    h.sent()
    h.elect()
    last = h.node.log.entry(h.node.log.last_index)
    assert last[12] == EntryType.CHECKPOINT and last[20:] == b"\xc0" and last[:12] == bytes(12)


def test_leader_pipelines_up_to_the_window_and_commits_on_a_majority() -> None:
    h = Harness("a", RaftOptions(max_inflight_messages=3, peer_msg_data_size=64))
    h.elect()
    h.ack_probe()
    for n in range(1, 8):
        h.node.step(Propose(n.to_bytes(12, "big"), b"x%d" % n), h.now)
    h.node.end_batch(h.now)  # one batch: the driver's round ends it
    h.flush_storage()
    to_b = [m for m in h.node.take_outgoing() if m.peer == "b"]
    assert len(to_b) == 3  # window of three, one entry each (64-byte messages)
    first = to_b[0].message
    assert isinstance(first, AppendEntries)
    h.node.step(PeerReply("b", AppendEntriesReply(to_b[2].message.msg_id, h.node.term, True)), h.now)
    assert h.node.commit_index >= first.prev_log_index + 3


def test_with_two_in_flight_new_entries_wait_for_an_acknowledgement_and_leave_together() -> None:
    """Under load a follower is sent fewer, larger batches: past ``coalesce_inflight_messages``
    in flight, entries that fit in one message wait for the next acknowledgement."""
    h = Harness("a")  # the default options: 16 in flight at most, coalescing past 2
    h.elect()
    h.ack_probe()
    for n in range(1, 5):  # four batches of one update each
        h.node.step(Propose(n.to_bytes(12, "big"), b"x%d" % n), h.now)
        h.node.end_batch(h.now)
    h.flush_storage()
    to_b = [m.message for m in h.node.take_outgoing() if m.peer == "b"]
    assert [len(m.entries) for m in to_b if isinstance(m, AppendEntries)] == [1, 1]
    h.node.step(PeerReply("b", AppendEntriesReply(to_b[0].msg_id, h.node.term, True)), h.now)
    waited = [m.message for m in h.node.take_outgoing() if m.peer == "b"]
    assert len(waited) == 1 and isinstance(waited[0], AppendEntries)
    assert [e[:12] for e in waited[0].entries] == [n.to_bytes(12, "big") for n in (3, 4)]


def test_entries_that_waited_for_an_acknowledgement_leave_from_memory() -> None:
    """By the time an acknowledgement lets waiting entries go, the leader has written them:
    the AppendEntries takes them from its last writes, not back from storage."""
    h = Harness("a")
    h.elect()
    h.ack_probe()
    reads = []
    storage_entries = h.log.entries
    h.log.entries = (  # type: ignore[method-assign]
        lambda first, last, *a: reads.append((first, last)) or storage_entries(first, last, *a)
    )
    to_b = [m for n in range(1, 5) for m in h.propose_batch(range(n, n + 1))]  # the last two wait
    h.node.step(PeerReply("b", AppendEntriesReply(to_b[0].msg_id, h.node.term, True)), h.now)
    waited = [m.message for m in h.node.take_outgoing() if m.peer == "b"]
    assert [e[:12] for e in waited[0].entries] == [n.to_bytes(12, "big") for n in (3, 4)]
    assert reads == []


def test_a_follower_behind_by_more_than_a_message_is_still_pipelined() -> None:
    h = Harness("a", RaftOptions(peer_msg_data_size=64))  # two entries a message
    h.elect()
    h.ack_probe()
    to_b = h.propose_batch(range(1, 8))
    # three messages in flight while more than a message remained; the last entry waits
    assert [len(m.entries) for m in to_b if isinstance(m, AppendEntries)] == [2, 2, 2]


def test_only_the_newest_message_in_flight_is_resent() -> None:
    h = Harness("a", RaftOptions(max_inflight_messages=4, peer_msg_data_size=64))
    h.elect()
    h.ack_probe()
    for n in range(1, 5):
        h.node.step(Propose(n.to_bytes(12, "big"), b"x%d" % n), h.now)
    h.node.end_batch(h.now)  # one batch: the driver's round ends it
    h.flush_storage()
    sent = [o.message for o in h.node.take_outgoing() if o.peer == "b"]
    h.now += 0.2  # past the re-send interval, within check-quorum's election timeout
    h.node.tick(h.now)
    resent = [o.message for o in h.node.take_outgoing() if o.peer == "b"]
    assert resent == [sent[-1]]


def test_partitioned_candidate_keeps_its_term_with_prevent_spiral_elections() -> None:
    h = Harness("a")
    h.now = 1.0
    h.node.tick(h.now)
    h.flush_storage()
    term = h.node.term
    for _ in range(20):
        h.now += 1.0
        h.node.tick(h.now)
        h.flush_storage()
    assert h.node.term == term and h.node.role is Role.CANDIDATE


def test_without_prevent_spiral_elections_terms_grow() -> None:
    h = Harness("a", RaftOptions(prevent_spiral_elections=False))
    for _ in range(5):
        h.now += 1.0
        h.node.tick(h.now)
        h.flush_storage()
    assert h.node.term == 5


def test_resent_vote_requests_also_wait_for_the_durable_vote() -> None:
    """A slow disk must not let a candidate win a term it could forget in a crash."""
    h = Harness("a")
    h.now = 1.0
    h.node.tick(h.now)
    assert h.node.role is Role.CANDIDATE
    for _ in range(5):  # past several rpc timeouts, the term/vote write still in flight
        h.now += 0.06
        h.node.tick(h.now)
        assert h.sent() == []
    h.flush_storage()
    assert {type(m) for m in h.sent()} == {RequestVote}


def test_a_snapshot_replacing_the_log_moves_the_config_index_in_the_same_write() -> None:
    from zmqraft.core.protocol.messages import InstallSnapshot

    h = Harness("b")
    config = ClusterConfig(PEERS).to_entry_data()
    entries = (entry(1, 1), entry(1, 2), encode_entry(bytes(11) + b"\x07", EntryType.CONFIG, 1, config))
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, entries), "r"), 0.1)
    h.flush_storage()
    assert h.node.config_index == 3
    # a new leader's snapshot at 2 of term 2 does not match our entry 2: the log is replaced
    h.node.step(PeerRequest(InstallSnapshot(2, "a", 2, 2, 2, 0, 4, b"data"), "r"), 0.2)
    job = h.node.next_storage_job()
    assert job is not None and job.snapshot is not None and job.snapshot.install
    assert job.state is not None and job.state.get("peersIndex") == 2
    h.executor.run(job)
    h.node.storage_done(job, 0.2)
    assert h.log.last_index == 2 and h.node.log.last_index == 2 and h.node.config_index == 2


def test_a_refused_higher_term_candidate_does_not_postpone_our_own_candidacy() -> None:
    """Raft §5.2 (a deviation from the original): otherwise a candidate with a stale log,
    timing out again and again, keeps the up-to-date peers from ever campaigning."""
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, (entry(1, 1),)), "r"), 0.1)
    h.flush_storage()
    deadline = h.node._election_deadline
    h.node.step(PeerRequest(RequestVote(1, "c", 5, 0, 0), "r"), 0.15)  # stale log, newer term
    h.flush_storage()
    assert h.sent()[-1] == RequestVoteReply(1, 5, False)
    assert h.node.term == 5 and h.node._election_deadline == deadline
    h.node.step(PeerRequest(RequestVote(2, "c", 6, 1, 1), "r"), 0.2)  # up to date: granted
    assert h.node._election_deadline != deadline


def test_an_unchanged_state_is_told_once() -> None:
    """Answering a vote re-enters FOLLOWER: the runtimes hear of a state change only once."""
    h = Harness("b")
    h.node.take_events()
    h.node.step(PeerRequest(RequestVote(1, "a", 1, 0, 0), "r"), 0.1)
    h.node.step(PeerRequest(RequestVote(2, "a", 1, 0, 0), "r"), 0.12)  # a re-sent request
    h.node.step(PeerRequest(RequestVote(3, "c", 1, 0, 0), "r"), 0.14)  # refused: same term
    states = [e for e in h.node.take_events() if isinstance(e, StateChanged)]
    assert states == [StateChanged(Role.FOLLOWER, 1, None)]


def test_a_proposal_reaches_only_a_leader() -> None:
    h = Harness("a")
    with pytest.raises(NotLeader):
        h.node.step(Propose(bytes(12), b"x"), 0.1)
    h.elect()
    index = h.node.step(Propose(bytes(12), b"x"), h.now)
    assert index == h.node.log.last_index == 1


def test_a_debounced_resend_of_our_leader_still_resets_the_election_timer() -> None:
    """Raft §5.2: the driver answered the re-send from its cache, the node only hears of it."""
    h = Harness("b")
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, ()), "r"), 0.1)
    deadline = h.node.next_deadline()
    h.node.step(LeaderAlive("a", 1), 0.2)
    assert h.node.next_deadline() != deadline
    deadline = h.node.next_deadline()
    h.node.step(LeaderAlive("c", 1), 0.25)  # not our leader
    h.node.step(LeaderAlive("a", 0), 0.25)  # not its term
    assert h.node.next_deadline() == deadline


def test_a_reply_of_a_newer_term_makes_a_leader_a_follower() -> None:
    h = Harness("a")
    h.elect()
    h.flush_storage()
    probe = next(o.message for o in h.node.take_outgoing() if o.peer == "c")
    h.node.step(PeerReply("c", AppendEntriesReply(probe.msg_id, h.node.term + 3, False)), h.now)
    assert (h.node.role, h.node.term, h.node.leader_id, h.node.voted_for) == (Role.FOLLOWER, 4, None, None)
    h.now += 1.0
    h.node.tick(h.now)
    assert h.node.role is Role.CANDIDATE and h.node.term == 5  # its own timer runs again


@pytest.mark.parametrize("lost", [1, 2])
def test_a_follower_that_lost_acknowledged_entries_is_sent_them_again(lost: int) -> None:
    """A follower whose torn log tail was repaired (``zr-tool repair``) restarts with fewer
    entries than it acknowledged.  Its rejection says where its log ends (conflict index =
    its last index + 1): the leader must go back there, below what it thought matched,
    else the follower never catches up while this leader lasts."""
    h = Harness("a", RaftOptions(max_inflight_messages=4, peer_msg_data_size=64))
    h.elect()
    h.ack_probe()
    to_b = h.propose_batch(range(1, 5))
    h.node.step(PeerReply("b", AppendEntriesReply(to_b[-1].msg_id, h.node.term, True)), h.now)
    last = h.node.log.last_index
    assert h.node.commit_index == last
    h.node.step(Propose((9).to_bytes(12, "big"), b"x9"), h.now)
    h.node.end_batch(h.now)
    h.flush_storage()
    probe = [o.message for o in h.node.take_outgoing() if o.peer == "b"][-1]
    assert isinstance(probe, AppendEntries) and probe.prev_log_index == last
    # b restarts with its last ``lost`` entries gone: it refuses the next message
    h.node.step(PeerReply("b", AppendEntriesReply(probe.msg_id, h.node.term, False, last - lost + 1)), h.now)
    again = [o.message for o in h.node.take_outgoing() if o.peer == "b"]
    assert again and isinstance(again[0], AppendEntries)
    assert again[0].prev_log_index == last - lost
    assert h.node.commit_index == last  # what was committed stays committed


# ---- check-quorum (Raft thesis §6.2; option check_quorum)


def heartbeat_replies(h: Harness, peers: tuple[str, ...]) -> None:
    """Answer the leader's AppendEntries sent so far, from ``peers`` only."""
    h.flush_storage()
    for out in h.node.take_outgoing():
        if out.peer in peers and isinstance(out.message, AppendEntries):
            h.node.step(PeerReply(out.peer, AppendEntriesReply(out.message.msg_id, h.node.term, True)), h.now)


def test_a_leader_without_word_from_a_majority_steps_down_in_its_term() -> None:
    h = Harness("a")
    h.elect()
    term = h.node.term
    elected_at = h.now
    while h.node.role is Role.LEADER and h.now < elected_at + 1.0:
        h.now += 0.01
        h.node.tick(h.now)
        h.flush_storage()
        h.sent()  # nobody answers
    assert h.node.role is Role.FOLLOWER
    # never a reply: a new leader gives its followers an election timeout of slack, then one more
    assert h.now - elected_at == pytest.approx(2 * h.node.options.election_timeout_max, abs=0.011)
    assert h.node.term == term and h.node.voted_for == "a"  # the vote of the term stays ours
    assert h.node.leader_id is None


def test_a_leader_that_hears_from_a_majority_keeps_leading() -> None:
    h = Harness("a")
    h.elect()
    for _ in range(300):  # three seconds; only b answers (a and b are a majority of three)
        h.now += 0.01
        h.node.tick(h.now)
        heartbeat_replies(h, ("b",))
    assert h.node.role is Role.LEADER


def test_a_leader_cut_off_after_prompt_replies_steps_down_one_election_timeout_later() -> None:
    h = Harness("a")
    h.elect()
    for _ in range(300):  # 3 s of prompt replies: the slack of a new leader is gone
        h.now += 0.01
        h.node.tick(h.now)
        heartbeat_replies(h, ("b", "c"))
    last_reply = h.now
    while h.node.role is Role.LEADER and h.now < last_reply + 1.0:
        h.now += 0.01
        h.node.tick(h.now)
        h.flush_storage()
        h.sent()
    assert h.now - last_reply == pytest.approx(h.node.options.election_timeout_max, abs=0.08)


def test_followers_with_a_disk_slower_than_the_election_timeout_keep_their_leader() -> None:
    """Replies wait for the follower's disk: 0.4 s between them (and 0.4 s after each
    request) must not pass for a lost majority."""
    h = Harness("a")
    h.elect()
    pending: list[tuple[float, str, int]] = []  # (answer at, peer, msg id)
    for _ in range(400):  # four seconds
        h.now += 0.01
        h.node.tick(h.now)
        h.flush_storage()
        for out in h.node.take_outgoing():
            if isinstance(out.message, AppendEntries) and out.peer is not None:
                pending.append((h.now + 0.4, out.peer, out.message.msg_id))
        due = [p for p in pending if p[0] <= h.now]
        pending = [p for p in pending if p[0] > h.now]
        for _, peer, msg_id in due:
            h.node.step(PeerReply(peer, AppendEntriesReply(msg_id, h.node.term, True)), h.now)
        assert h.node.role is Role.LEADER, h.now


def test_without_check_quorum_a_cut_off_leader_keeps_leading() -> None:
    h = Harness("a", RaftOptions(check_quorum=False))
    h.elect()
    for _ in range(300):
        h.now += 0.01
        h.node.tick(h.now)
        h.flush_storage()
        h.sent()
    assert h.node.role is Role.LEADER


# ---- pre-vote (Raft thesis §9.6; option pre_vote)

PRE = RaftOptions(pre_vote=True)


def test_with_pre_vote_a_cut_off_peer_never_raises_its_term() -> None:
    h = Harness("a", PRE)
    for _ in range(20):
        h.now += 1.0
        h.node.tick(h.now)
        h.flush_storage()
        sent = h.sent()
        assert sent and all(isinstance(m, PreVote) and m.term == 1 for m in sent)
    assert h.node.term == 0 and h.node.voted_for is None and h.node.role is Role.FOLLOWER
    assert h.state.load().get("currentTerm") is None  # nothing was written


def test_pre_vote_grants_start_the_real_campaign() -> None:
    h = Harness("a", PRE)
    h.now = 1.0
    h.node.tick(h.now)
    pre = next(o.message for o in h.node.take_outgoing() if o.peer == "b")
    assert isinstance(pre, PreVote) and h.node.term == 0
    h.node.step(PeerReply("b", PreVoteReply(pre.msg_id, 1, True)), h.now)
    assert h.node.role is Role.CANDIDATE and h.node.term == 1 and h.node.voted_for == "a"
    h.flush_storage()
    assert {type(m) for m in h.sent()} == {RequestVote}


def test_a_voter_that_hears_its_leader_refuses_pre_votes_and_changes_nothing() -> None:
    h = Harness("b", PRE)
    h.node.step(PeerRequest(AppendEntries(1, "a", 1, 0, 0, 0, ()), "r"), 0.1)
    h.flush_storage()
    h.sent()
    h.node.step(PeerRequest(PreVote(5, "c", 2, 0, 0), "r"), 0.2)  # 0.1 s after the leader
    assert h.sent() == [PreVoteReply(5, 1, False)]
    h.node.step(PeerRequest(PreVote(6, "c", 2, 0, 0), "r"), 0.35)  # past election_timeout_min
    assert h.sent() == [PreVoteReply(6, 2, True)]
    assert h.node.term == 1 and h.node.voted_for is None and h.node.leader_id == "a"
    assert h.node.next_storage_job() is None  # a pre-vote is never written down


def test_a_leader_refuses_pre_votes_and_an_older_proposal_is_refused_with_our_term() -> None:
    h = Harness("a")
    h.elect()
    h.node.step(PeerRequest(PreVote(3, "c", h.node.term + 1, 9, 9), "r"), h.now)
    h.node.step(PeerRequest(PreVote(4, "c", h.node.term - 1, 9, 9), "r"), h.now)
    replies = [m for m in h.sent() if isinstance(m, PreVoteReply)]
    assert replies == [PreVoteReply(3, h.node.term, False), PreVoteReply(4, h.node.term, False)]
    assert h.node.role is Role.LEADER


def test_a_pre_candidate_refused_with_a_newer_term_follows_it() -> None:
    h = Harness("a", PRE)
    h.now = 1.0
    h.node.tick(h.now)
    pre = next(o.message for o in h.node.take_outgoing() if o.peer == "b")
    h.node.step(PeerReply("b", PreVoteReply(pre.msg_id, 7, False)), h.now)
    assert h.node.term == 7 and h.node.role is Role.FOLLOWER and h.node.voted_for is None
