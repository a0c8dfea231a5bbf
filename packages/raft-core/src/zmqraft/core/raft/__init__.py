"""The consensus layer: the Raft node, its inputs, its log view and per-follower progress."""

from .inputs import LeaderAlive, NotLeader, PeerReply, PeerRequest, Propose, ProposeConfig
from .log import RaftLog
from .node import Outgoing, RaftNode, Role
from .options import RaftOptions

__all__ = [
    "LeaderAlive",
    "NotLeader",
    "Outgoing",
    "PeerReply",
    "PeerRequest",
    "Propose",
    "ProposeConfig",
    "RaftLog",
    "RaftNode",
    "RaftOptions",
    "Role",
]
