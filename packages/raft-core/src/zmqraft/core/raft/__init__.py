"""The consensus layer: the Raft node, its log view and per-follower replication progress."""

from .log import RaftLog
from .node import Outgoing, RaftNode, Role
from .options import RaftOptions

__all__ = ["Outgoing", "RaftLog", "RaftNode", "RaftOptions", "Role"]
