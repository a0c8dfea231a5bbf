"""Deliberately broken variants of the Raft node, to prove the simulator's checker has teeth.

Each mutant patches ``RaftNode`` methods for the duration of a ``with mutant(name):`` block
(the simulator runs histories inside it); nothing here is a switch on the production path.
``zmq-raft-sim --mutant NAME`` runs the usual histories against one of them and must fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..cluster import ClusterConfig
from ..protocol.messages import AppendEntries, AppendEntriesReply, RequestVote, RequestVoteReply
from ..raft import quorum
from ..raft.inputs import ProposeConfig
from ..raft.node import RaftNode, Role
from ..raft.outbox import Outbox, Outgoing
from ..raft.progress import Inflight, Progress
from ..request_ids import RequestIdCache

Patches = dict[str, Callable[..., Any]]


def _commit_old_term() -> Patches:
    """Commit whatever a majority stores, previous-term entries included (Raft §5.4.2, Fig. 8),
    and drop the CHECKPOINT a new leader appends (it would commit them the safe way)."""

    def maybe_commit(self: RaftNode, now: float) -> None:
        if self.role is not Role.LEADER:
            return
        match = {pid: p.match for pid, p in self._progress.items()}
        match[self.id] = self.durable_index
        candidate = quorum.commit_index(self.config, match)
        if candidate > self.commit_index and self.log.term_at(candidate) is not None:
            self._advance_commit(candidate, now)
            self._after_leader_commit(now)
            for p in list(self._progress.values()):
                p.heartbeat_due = True
                self._replicate(p, now)

    def become_leader(self: RaftNode, now: float) -> None:
        self._election_deadline = None
        self.leader_id = None
        self.role = Role.LEADER
        self._vote_msgs.clear()
        self._progress = {
            pid: Progress(pid, next=self.log.last_index + 1, idle_since=now - 1.0)
            for pid, _ in self.config.others(self.id)
        }
        self._emit_state()
        self._broadcast_append(now)
        self._maybe_commit(now)

    return {"_maybe_commit": maybe_commit, "_become_leader": become_leader}


def _double_vote() -> Patches:
    """Grant a second candidate in the same term."""
    original = RaftNode._on_request_vote

    def step(self: RaftNode, msg: RequestVote, route: Any, now: float) -> None:
        if msg.term == self.term and self.voted_for not in (None, msg.candidate_id):
            self.voted_for = None
        original(self, msg, route, now)

    return {"_on_request_vote": step}


def _reply_before_persist(kind: type) -> Patches:
    """Let replies of ``kind`` leave before the state they promise is durable."""
    original = Outbox.send_after

    def send_after(self: Outbox, out: Outgoing, job: int) -> None:
        if isinstance(out.message, kind):
            self.send(out)
        else:
            original(self, out, job)

    return {"send_after": send_after}


def _no_log_matching() -> Patches:
    """Accept AppendEntries whatever the term of our entry at prevIndex."""
    original = RaftNode._on_append_entries

    def step(self: RaftNode, msg: AppendEntries, route: Any, now: float) -> None:
        ours = self.log.term_at(msg.prev_log_index)
        if ours is not None and ours != msg.prev_log_term:
            msg = AppendEntries(
                msg.msg_id, msg.leader_id, msg.term, msg.prev_log_index, ours, msg.commit_index, msg.entries
            )
        original(self, msg, route, now)

    return {"_on_append_entries": step}


def _no_joint_consensus() -> Patches:
    """Switch straight to the requested configuration instead of C(old,new) first."""
    original = RaftNode._propose_config

    def change(self: RaftNode, msg: ProposeConfig, now: float) -> int:
        index = original(self, msg, now)
        self._finish_config_change(now)  # adopt and append C(new) at once
        return index

    return {"_propose_config": change}


def _commit_without_majority() -> Patches:
    """Count one follower's acknowledgement as a majority."""

    def commit_index(config: ClusterConfig, match: Mapping[str, int]) -> int:
        return max(match.values(), default=0)

    return {"commit_index": commit_index}


def _no_idempotency() -> Patches:
    """Forget the request-id cache: a retried update is appended again."""

    def get(self: RequestIdCache, request_id: bytes) -> int | None:
        return None

    return {"get": get}


def _resend_oldest() -> Patches:
    """Re-send the oldest AppendEntries in flight instead of the newest: an original-style
    follower then truncates entries it already acknowledged (see raft/progress.py)."""

    def newest(self: Progress) -> tuple[int, Inflight] | None:
        if not self.inflight:
            return None
        key = next(iter(self.inflight))
        return key, self.inflight[key]

    return {"newest": newest}


MUTANTS: dict[str, Callable[[], Patches]] = {
    "commit-old-term": _commit_old_term,
    "double-vote": _double_vote,
    "vote-before-persist": lambda: _reply_before_persist(RequestVoteReply),
    "ack-before-persist": lambda: _reply_before_persist(AppendEntriesReply),
    "no-log-matching": _no_log_matching,
    "no-joint-consensus": _no_joint_consensus,
    "commit-without-majority": _commit_without_majority,
    "no-idempotency": _no_idempotency,
    "resend-oldest": _resend_oldest,
}
# the class or module each mutant patches (RaftNode unless said here)
TARGETS: dict[str, object] = {
    "commit-without-majority": quorum,
    "vote-before-persist": Outbox,
    "ack-before-persist": Outbox,
    "no-idempotency": RequestIdCache,
    "resend-oldest": Progress,
}


@contextlib.contextmanager
def mutant(name: str | None) -> Iterator[None]:
    """Run the block with ``RaftNode`` broken as ``name`` says (None: unchanged)."""
    if name is None:
        yield
        return
    patches = MUTANTS[name]()
    target = TARGETS.get(name, RaftNode)
    saved = {attr: vars(target)[attr] for attr in patches}
    try:
        for attr, fn in patches.items():
            setattr(target, attr, fn)
        yield
    finally:
        for attr, fn in saved.items():
            setattr(target, attr, fn)
