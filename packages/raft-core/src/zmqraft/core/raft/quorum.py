"""Quorum arithmetic: majorities of a configuration, joint majorities, commit indexes, votes.

Theory of operation (after etcd-io/raft's ``quorum`` package): every decision Raft takes by
counting — winning an election, committing an entry, and here also "has a majority answered
my vote request yet" — asks the same question of each *voter group* of the configuration.
A plain configuration has one group; a joint configuration C(old,new) has two, and a decision
needs a majority of each (Raft paper §6; spec/raft.md §9 step 4).  ``ClusterConfig.voters``
hands out the groups; this module only counts.

* ``majority(n)`` is ``n // 2 + 1`` (spec/raft.md §5.2).  A group without members has no
  majority: nothing is decided by an empty configuration.
* ``has_majority(config, ids)``: do ``ids`` hold a majority of every group?  Ids outside the
  configuration and repeated ids count nothing.
* ``commit_index(config, match)``: the highest index stored on a majority of every group,
  from each member's highest stored index (the leader's own durable index included, members
  missing from ``match`` count as 0).  The leader may commit up to it, subject to the term
  rule of Raft §5.4.2 (spec/raft.md §6.4), which is the leader's business, not this module's.
* ``quorum_contact(config, heard)``: the latest time by which a majority of every group has
  been heard from, from each member's last contact (the leader's own is "now"); a leader
  whose quorum contact is an election timeout old steps down (check-quorum, Raft thesis §6.2).
* ``vote_result(config, votes)``: the tally of an election from the answers so far
  (``peer -> granted``): WON once the granted votes hold a majority of every group, LOST once
  some group can no longer reach one, PENDING otherwise (Raft §5.2).  The node acts on WON
  only; a candidate that has lost waits for its election timer (spec/raft.md §5.1).

These are pure functions of their arguments: the simulator's ``commit-without-majority``
and ``no-check-quorum`` mutants replace ``commit_index`` and ``quorum_contact`` here, so the
node must call them through this module.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import Enum

from ..cluster import ClusterConfig


class VoteResult(Enum):
    PENDING = "PENDING"
    WON = "WON"
    LOST = "LOST"


def majority(n: int) -> int:
    """Members needed out of ``n`` (spec/raft.md §5.2)."""
    return n // 2 + 1


def has_majority(config: ClusterConfig, ids: Iterable[str]) -> bool:
    """True if ``ids`` hold a majority of old and, while joint, also of new."""
    present = ids if isinstance(ids, set | frozenset) else set(ids)
    return all(len(group & present) >= majority(len(group)) for group in config.voters)


def _group_index(group: Collection[str], match: Mapping[str, int]) -> int:
    if not group:
        return 0
    indexes = sorted((match.get(peer_id, 0) for peer_id in group), reverse=True)
    return indexes[majority(len(group)) - 1]


def commit_index(config: ClusterConfig, match: Mapping[str, int]) -> int:
    """The highest index a majority of old (and of new, while joint) has stored.

    ``match`` maps peer id -> highest index known stored there (include the leader's own);
    members missing from it count as 0, non-members are ignored.
    """
    groups = config.voters
    index = _group_index(groups[0], match)
    for group in groups[1:]:
        index = min(index, _group_index(group, match))
    return index


def quorum_contact(config: ClusterConfig, heard: Mapping[str, float]) -> float:
    """The latest time at which a majority of old (and of new, while joint) had been heard
    from: ``heard`` maps peer id -> its last contact (include the leader's own, "now");
    members missing from it were never heard from (-inf), non-members are ignored."""
    result = float("inf")
    for group in config.voters:
        if not group:
            continue
        times = sorted((heard.get(peer_id, float("-inf")) for peer_id in group), reverse=True)
        result = min(result, times[majority(len(group)) - 1])
    return result


def vote_result(config: ClusterConfig, votes: Mapping[str, bool]) -> VoteResult:
    """The election's outcome from the answers so far (``peer -> granted``)."""
    granted = {peer for peer, yes in votes.items() if yes}
    if has_majority(config, granted):
        return VoteResult.WON
    for group in config.voters:
        refused = sum(1 for peer in group if votes.get(peer) is False)
        if len(group) - refused < majority(len(group)):
            return VoteResult.LOST
    return VoteResult.PENDING
