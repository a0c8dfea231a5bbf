"""Quorum arithmetic (raft/quorum.py): majorities, joint majorities, commit index, vote tallies."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.raft.quorum import VoteResult, commit_index, has_majority, majority, vote_result

U1, U2, U3 = "tcp://127.0.0.1:9047", "tcp://127.0.0.1:9147", "tcp://127.0.0.1:9247"
U4, U5 = "tcp://127.0.0.1:9347", "tcp://127.0.0.1:9447"
P3 = (("1", U1), ("2", U2), ("3", U3))
C3 = ClusterConfig(P3)
C4 = ClusterConfig((*P3, ("4", U4)))
JOINT = ClusterConfig(P3, (("1", U1), ("4", U4), ("5", U5)))


# ---- majorities -------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "need"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)])
def test_majority(n: int, need: int) -> None:
    assert majority(n) == need


def test_has_majority_odd() -> None:
    assert has_majority(C3, ["1", "2"])
    assert has_majority(C3, ["3", "1", "2"])
    assert not has_majority(C3, ["1"])
    assert not has_majority(C3, ["1", "1"])  # each peer counts once
    assert not has_majority(C3, ["1", "9"])  # non-members don't count


def test_has_majority_even() -> None:
    assert not has_majority(C4, ["1", "2"])
    assert has_majority(C4, ["1", "2", "4"])
    c2 = ClusterConfig(P3[:2])
    assert not has_majority(c2, ["1"])
    assert has_majority(c2, ["1", "2"])


def test_has_majority_single_and_empty() -> None:
    c1 = ClusterConfig(P3[:1])
    assert has_majority(c1, ["1"])
    assert not has_majority(c1, [])
    assert not has_majority(ClusterConfig(()), ["1"])  # an empty configuration decides nothing


def test_joint_needs_both_majorities() -> None:
    assert not has_majority(JOINT, ["1", "2"])  # old only
    assert not has_majority(JOINT, ["1", "4", "5"])  # new only
    assert has_majority(JOINT, ["1", "2", "4"])
    assert has_majority(JOINT, {"2", "3", "4", "5"})
    assert not has_majority(JOINT, frozenset({"2", "3", "4"}))


# ---- commit index -------------------------------------------------------------------------------


def test_commit_index() -> None:
    assert commit_index(C3, {"1": 10, "2": 7, "3": 3}) == 7
    assert commit_index(C3, {"1": 10, "2": 7}) == 7
    assert commit_index(C3, {"1": 10}) == 0  # missing members count as 0
    assert commit_index(C3, {"1": 10, "9": 10}) == 0  # non-members ignored
    assert commit_index(C4, {"1": 10, "2": 9, "3": 8, "4": 1}) == 8
    assert commit_index(C4, {"1": 10, "2": 9}) == 0
    assert commit_index(ClusterConfig(()), {"1": 10}) == 0


def test_commit_index_joint_is_the_lower_of_both() -> None:
    match = {"1": 42, "2": 42, "3": 42, "4": 42, "5": 42}
    assert commit_index(JOINT, match) == 42
    match["2"] = 41
    assert commit_index(JOINT, match) == 42
    match["3"] = 41
    assert commit_index(JOINT, match) == 41  # old majority lost 42
    match["3"] = 42
    match["4"] = 41
    assert commit_index(JOINT, match) == 42
    match["5"] = 40
    assert commit_index(JOINT, match) == 41  # new majority: {1: 42, 4: 41, 5: 40}


@given(st.lists(st.integers(0, 50), min_size=5, max_size=5))
def test_commit_index_is_the_highest_index_a_majority_of_each_group_stores(indexes: list[int]) -> None:
    match = dict(zip("12345", indexes, strict=True))
    for config in (C3, C4, JOINT):
        index = commit_index(config, match)
        assert has_majority(config, [p for p, i in match.items() if i >= index])
        assert not has_majority(config, [p for p, i in match.items() if i >= index + 1])


# ---- vote tallies -------------------------------------------------------------------------------


def test_vote_result() -> None:
    assert vote_result(C3, {"1": True}) is VoteResult.PENDING
    assert vote_result(C3, {"1": True, "2": True}) is VoteResult.WON
    assert vote_result(C3, {"1": True, "2": False}) is VoteResult.PENDING
    assert vote_result(C3, {"1": True, "2": False, "3": False}) is VoteResult.LOST
    assert vote_result(C3, {"9": True, "1": True}) is VoteResult.PENDING  # non-members count nothing


def test_joint_vote_needs_both_groups() -> None:
    assert vote_result(JOINT, {"1": True, "2": True}) is VoteResult.PENDING
    assert vote_result(JOINT, {"1": True, "2": True, "4": True}) is VoteResult.WON
    assert vote_result(JOINT, {"1": True, "2": True, "4": False, "5": False}) is VoteResult.LOST


def test_vote_result_agrees_with_has_majority() -> None:
    peers = ["1", "2", "3", "4", "5"]
    for answers in itertools.product((None, True, False), repeat=5):
        votes = {p: a for p, a in zip(peers, answers, strict=True) if a is not None}
        granted = [p for p, a in votes.items() if a]
        possible = [p for p in peers if votes.get(p) is not False]
        result = vote_result(JOINT, votes)
        assert (result is VoteResult.WON) == has_majority(JOINT, granted)
        assert (result is VoteResult.LOST) == (not has_majority(JOINT, possible))
