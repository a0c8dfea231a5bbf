"""Deliberately broken variants of the Raft node, to prove the simulator's checker has teeth.

Each mutant replaces one or two *seams* for the duration of a ``with mutant(name):`` block
(the simulator runs histories inside it); nothing here is a switch on the production path.
``zmq-raft-sim --mutant NAME`` runs the usual histories against one of them and must fail.

A seam is a place that stays put when the code around it is refactored:

* a pure rule, named for the rule it implements and documented as a seam where it lives:
  ``quorum.commit_index``, ``quorum.quorum_contact``, ``election.may_vote_for``,
  ``election.may_grant_pre_vote``, ``follower.log_matches``, ``leader.may_commit``,
  ``leader.needs_checkpoint``;
* a role handler: ``Leader.propose_config``;
* the one place a mechanism lives: ``Outbox.send_after`` (persist before send);
* a public method of a collaborator: ``RequestIdCache.get``, ``Progress.newest``.

A mutant never carries a copy of production code: it replaces a small rule whole or wraps
the original.  Two checks keep a mutant from silently testing nothing: patching a seam that
no longer exists raises ``SeamMissing``, and ``mutant()`` counts the calls of every patched
seam (the simulation tests require each one to be called in the histories they run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..cluster import ClusterConfig
from ..protocol.messages import AppendEntriesReply, PreVote, RequestVote, RequestVoteReply
from ..raft import election, follower, leader, quorum
from ..raft.inputs import ProposeConfig
from ..raft.leader import Leader
from ..raft.log import RaftLog
from ..raft.node import RaftNode
from ..raft.outbox import Outbox, Outgoing
from ..raft.progress import Inflight, Progress
from ..request_ids import RequestIdCache

Fn = Callable[..., Any]


class SeamMissing(LookupError):
    """A mutant names a seam the code no longer has: move the mutant to the new seam."""


@dataclass(frozen=True, slots=True)
class Patch:
    """Replace ``target.name`` (a module function or a class attribute) by ``make(original)``."""

    target: Any
    name: str
    make: Callable[[Fn], Fn]

    @property
    def key(self) -> str:
        owner = getattr(self.target, "__qualname__", None) or self.target.__name__.rsplit(".", 1)[-1]
        return f"{owner}.{self.name}"


@dataclass(frozen=True, slots=True)
class Mutant:
    doc: str
    patches: tuple[Patch, ...]


def _replace(fn: Fn) -> Callable[[Fn], Fn]:
    return lambda _original: fn


# ---- the broken rules ---------------------------------------------------------------------------


def _commit_any_term(log: RaftLog, index: int, term: int) -> bool:
    return log.term_at(index) is not None


def _no_checkpoint(log: RaftLog, term: int, commit_index: int) -> bool:
    return False


def _always_free_to_vote(node: RaftNode, msg: RequestVote) -> bool:
    return True


def _send_now(kind: type) -> Callable[[Fn], Fn]:
    def make(original: Fn) -> Fn:
        def send_after(self: Outbox, out: Outgoing, job: int) -> None:
            if isinstance(out.message, kind):
                self.send(out)
            else:
                original(self, out, job)

        return send_after

    return make


def _match_any_entry(original: Fn) -> Fn:
    def log_matches(log: RaftLog, index: int, term: int) -> bool:
        return log.term_at(index) is not None or bool(original(log, index, term))

    return log_matches


def _straight_to_new(original: Fn) -> Fn:
    def propose_config(self: Leader, msg: ProposeConfig, now: float) -> int:
        index: int = original(self, msg, now)
        self.finish_config_change(now)  # adopt and append C(new) at once
        return index

    return propose_config


def _highest_match(config: ClusterConfig, match: Mapping[str, int]) -> int:
    return max(match.values(), default=0)


def _latest_contact(config: ClusterConfig, heard: Mapping[str, float]) -> float:
    return max(heard.values(), default=0.0)


def _grant_any_up_to_date_pre_vote(node: RaftNode, msg: PreVote, now: float) -> bool:
    return election.log_up_to_date(node.log, msg)


def _forget_request_ids(self: RequestIdCache, request_id: bytes) -> int | None:
    return None


def _nothing_evicted(self: RequestIdCache, request_id: bytes) -> bool:
    return False


def _oldest_in_flight(self: Progress) -> tuple[int, Inflight] | None:
    if not self.inflight:
        return None
    key = next(iter(self.inflight))
    return key, self.inflight[key]


MUTANTS: dict[str, Mutant] = {
    "commit-old-term": Mutant(
        "Commit whatever a majority stores, previous-term entries included (Raft §5.4.2, Fig. 8),"
        " and drop the CHECKPOINT a new leader appends (it would commit them the safe way).",
        (
            Patch(leader, "may_commit", _replace(_commit_any_term)),
            Patch(leader, "needs_checkpoint", _replace(_no_checkpoint)),
        ),
    ),
    "double-vote": Mutant(
        "Grant a second candidate in the same term.",
        (Patch(election, "may_vote_for", _replace(_always_free_to_vote)),),
    ),
    "vote-before-persist": Mutant(
        "Let vote replies leave before the term and vote they promise are durable.",
        (Patch(Outbox, "send_after", _send_now(RequestVoteReply)),),
    ),
    "ack-before-persist": Mutant(
        "Let AppendEntries acknowledgements leave before the entries are durable.",
        (Patch(Outbox, "send_after", _send_now(AppendEntriesReply)),),
    ),
    "no-log-matching": Mutant(
        "Accept AppendEntries whatever the term of our entry at prevIndex.",
        (Patch(follower, "log_matches", _match_any_entry),),
    ),
    "no-joint-consensus": Mutant(
        "Switch straight to the requested configuration instead of C(old,new) first.",
        (Patch(Leader, "propose_config", _straight_to_new),),
    ),
    "commit-without-majority": Mutant(
        "Count one follower's acknowledgement as a majority.",
        (Patch(quorum, "commit_index", _replace(_highest_match)),),
    ),
    "no-check-quorum": Mutant(
        "Count the leader's own contact as a majority's: a leader cut off from everyone never"
        " notices (caught by the check-quorum phase: it must step down within two timeouts).",
        (Patch(quorum, "quorum_contact", _replace(_latest_contact)),),
    ),
    "pre-vote-ignores-leader": Mutant(
        "Grant every pre-vote whose candidate's log is up to date, leader or no leader: a"
        " follower let back in after a cut deposes a healthy leader (caught by the pre-vote phase).",
        (Patch(election, "may_grant_pre_vote", _replace(_grant_any_up_to_date_pre_vote)),),
    ),
    "no-idempotency": Mutant(
        "Forget the request-id cache: a retried update is appended again.",
        (Patch(RequestIdCache, "get", _replace(_forget_request_ids)),),
    ),
    "no-eviction-horizon": Mutant(
        "Treat an id the capped request-id cache dropped as never seen: a late retry is appended again.",
        (Patch(RequestIdCache, "may_be_evicted", _replace(_nothing_evicted)),),
    ),
    "resend-oldest": Mutant(
        "Re-send the oldest AppendEntries in flight instead of the newest: an original-style"
        " follower then truncates entries it already acknowledged (see raft/progress.py).",
        (Patch(Progress, "newest", _replace(_oldest_in_flight)),),
    ),
}


def _counted(fn: Fn, calls: dict[str, int], key: str) -> Fn:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[key] += 1
        return fn(*args, **kwargs)

    return counted


@contextlib.contextmanager
def mutant(name: str | None) -> Iterator[dict[str, int]]:
    """Run the block with the node broken as ``name`` says (None: unchanged).

    Yields the number of calls of each patched seam so far (``"Owner.name" -> calls``)."""
    calls: dict[str, int] = {}
    if name is None:
        yield calls
        return
    saved: list[tuple[Any, str, Fn]] = []
    try:
        for patch in MUTANTS[name].patches:
            original = vars(patch.target).get(patch.name)
            if original is None:
                raise SeamMissing(f"mutant {name}: {patch.key} does not exist")
            saved.append((patch.target, patch.name, original))
            calls[patch.key] = 0
            setattr(patch.target, patch.name, _counted(patch.make(original), calls, patch.key))
        yield calls
    finally:
        for target, attr, original in reversed(saved):
            setattr(target, attr, original)
