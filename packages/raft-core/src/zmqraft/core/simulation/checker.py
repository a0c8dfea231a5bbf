"""Raft's safety properties, checked incrementally while a simulated cluster runs.

Each check is cheap enough to run after every step: it looks only at what just changed
(an applied entry, a role change, a commit advance) against global records kept here.  The
full pairwise log-matching check runs every few hundred steps and at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..protocol.entry import EntryType, entry_request_id, entry_term, entry_type
from ..raft.log import RaftLog


class Violation(AssertionError):
    """A safety property does not hold."""


@dataclass(slots=True)
class Checker:
    leaders: dict[int, str] = field(default_factory=dict)
    applied: dict[int, bytes] = field(default_factory=dict)  # index -> entry, as applied anywhere
    digests: dict[int, bytes] = field(default_factory=dict)  # index -> state after applying it
    applied_rids: dict[bytes, int] = field(default_factory=dict)
    acked: dict[bytes, int] = field(default_factory=dict)  # reqid -> index acknowledged to a client
    commit: dict[str, int] = field(default_factory=dict)
    leader_commit: dict[str, tuple[int, int]] = field(default_factory=dict)
    votes_sent: dict[tuple[str, int], str] = field(default_factory=dict)
    commit_terms: dict[int, int] = field(
        default_factory=dict
    )  # index -> term of the leader that committed it
    highest_commit: int = 0
    votes: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    trace: Callable[[str], None] = print

    def fail(self, message: str) -> None:
        raise Violation(message)

    def on_leader(self, peer: str, term: int, log: RaftLog) -> None:
        """Election safety, and leader completeness (Raft §5.4): an entry committed in term
        T is in the log of every leader of a term after T.  A leader of an older term (a
        stale candidate that collected its votes earlier) need not have it."""
        other = self.leaders.get(term)
        if other is not None and other != peer:
            self.fail(f"two leaders in term {term}: {other} and {peer}")
        self.leaders[term] = peer
        for index, entry in self.applied.items():
            if self.commit_terms.get(index, term) >= term:
                continue
            if index >= log.first_index and (index > log.last_index or log.entry(index) != entry):
                committed_in = self.commit_terms[index]
                self.fail(f"leader {peer} (term {term}) lacks entry {index} committed in term {committed_in}")
        for rid, index in self.acked.items():
            if self.commit_terms.get(index, term) >= term:
                continue
            if index >= log.first_index and (
                index > log.last_index or entry_request_id(log.entry(index)) != rid
            ):
                self.fail(f"leader {peer} (term {term}) lacks acknowledged update {rid.hex()} at {index}")

    def on_apply(self, peer: str, index: int, entry: bytes, digest: bytes) -> None:
        """State machine safety and at-most-once application of request ids."""
        known = self.applied.get(index)
        if known is None:
            self.applied[index] = entry
        elif known != entry:
            self.fail(
                f"{peer} applied a different entry at {index}"
                f" (term {entry_term(entry)} vs {entry_term(known)})"
            )
        seen = self.digests.get(index)
        if seen is None:
            self.digests[index] = digest
        elif seen != digest:
            self.fail(f"{peer} state after {index} differs from another peer's")
        if entry_type(entry) == EntryType.STATE:
            rid = entry_request_id(entry)
            first = self.applied_rids.setdefault(rid, index)
            if first != index:
                self.fail(f"request id {rid.hex()} applied twice: at {first} and at {index}")

    def on_snapshot_state(self, peer: str, index: int, digest: bytes) -> None:
        seen = self.digests.get(index)
        if seen is not None and seen != digest:
            self.fail(f"{peer} restored a snapshot at {index} whose state differs")

    def on_ack(self, rid: bytes, index: int) -> None:
        known = self.acked.setdefault(rid, index)
        if known != index:
            self.fail(f"update {rid.hex()} acknowledged at {known} and at {index}")
        entry = self.applied.get(index)
        if entry is not None and entry_request_id(entry) != rid:
            self.fail(f"update {rid.hex()} acknowledged at {index}, which holds another request")

    def on_leader_commit(self, peer: str, term: int, commit: int, commit_term: int | None) -> None:
        """A leader's commit index: entries first committed now were committed in ``term``.

        A leader advances its commit index only onto an entry of its own term (Raft §5.4.2;
        spec/raft.md §15): older entries are committed by the entries after them."""
        before = self.leader_commit.get(peer)
        self.leader_commit[peer] = (term, commit)
        if before is not None and before[0] == term and commit > before[1] and commit_term != term:
            self.fail(f"leader {peer} (term {term}) committed index {commit} of term {commit_term}")
        for index in range(self.highest_commit + 1, commit + 1):
            self.commit_terms[index] = term
        self.highest_commit = max(self.highest_commit, commit)

    def on_commit(self, peer: str, commit: int, last_index: int, snapshot_index: int) -> None:
        """The commit index never goes back on a live peer and never passes its log."""
        before = self.commit.get(peer, 0)
        if commit < before:
            self.fail(f"{peer} commit index went back from {before} to {commit}")
        self.commit[peer] = commit
        if commit > max(last_index, snapshot_index):
            self.fail(f"{peer} commit index {commit} beyond its log {last_index}")

    def on_leader_config(self, peer: str, joint_index: int, commit: int) -> None:
        """Joint consensus: a leader leaves C(old,new) for C(new) only once C(old,new) is
        committed (spec/raft.md §9, §15)."""
        if commit < joint_index:
            self.fail(
                f"leader {peer} switched to C(new) before C(old,new) at {joint_index} committed ({commit})"
            )

    def on_vote_sent(self, peer: str, term: int, candidate: str) -> None:
        """A granted vote left ``peer``: at most one candidate per term, across crashes."""
        first = self.votes_sent.setdefault((peer, term), candidate)
        if first != candidate:
            self.fail(f"{peer} granted its vote in term {term} to {first} and to {candidate}")

    def on_durable_vote(self, peer: str, term: int, voted_for: str | None) -> None:
        """Checked on what is on disk: one vote per term, and the term never goes back."""
        vote = self.votes.get(peer)
        if vote is not None and vote[0] == term and vote[1] is not None and voted_for != vote[1]:
            self.fail(f"{peer} voted for {vote[1]} and then {voted_for} in term {term} (durably)")
        if vote is not None and term < vote[0]:
            self.fail(f"{peer} durable term went back from {vote[0]} to {term}")
        self.votes[peer] = (term, voted_for)

    def forget_volatile(self, peer: str) -> None:
        """A crash loses the in-memory commit index (it restarts from the state machine)."""
        self.commit.pop(peer, None)
        self.leader_commit.pop(peer, None)

    def log_matching(self, logs: dict[str, RaftLog]) -> None:
        """If two logs hold an entry with the same index and term, all before are identical."""
        names = sorted(logs)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                la, lb = logs[a], logs[b]
                lo = max(la.first_index, lb.first_index)
                hi = min(la.last_index, lb.last_index)
                top = None
                for index in range(hi, lo - 1, -1):
                    if la.term_at(index) == lb.term_at(index):
                        top = index
                        break
                if top is None:
                    continue
                for index in range(lo, top + 1):
                    if la.entry(index) != lb.entry(index):
                        self.fail(f"log matching: {a} and {b} agree at {top} but differ at {index}")
