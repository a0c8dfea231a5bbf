"""The roles a peer plays (spec/raft.md §2)."""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    CLIENT = "CLIENT"
    FOLLOWER = "FOLLOWER"
    CANDIDATE = "CANDIDATE"
    LEADER = "LEADER"
