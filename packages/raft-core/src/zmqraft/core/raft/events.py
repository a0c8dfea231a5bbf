"""What the node tells its driver besides messages: ``RaftNode.take_events()`` hands these out.

Theory of operation: an event reports a change the driver (``core/server.py``) acts on and the
runtimes pass on to the state machine and the web monitor.  They are plain frozen data, told in
the order they happened:

* ``StateChanged``: role, term or known leader changed (spec/raft.md §2, the ``state`` event).
  The node tells an unchanged state once, however often it re-enters the same role.
* ``ConfigChanged``: a configuration was adopted (spec/raft.md §9: the leader adopts C(old,new)
  before the entry exists, followers when the entry arrives, not at commit).
* ``ConfigCommitted``: the leader committed C(old,new) and appended C(new) (spec §9 step 5); the
  waiting ConfigUpdate is answered with the C(old,new) index.
* ``CommitAdvanced``: the commit index moved (the simulator's checker follows it).
* ``Removed``: the configuration change that removes this peer is committed (it is in
  C(old,new) but not in C(new)): it stays passive (CLIENT) from now on; told once per run.
* ``RaftError``: something that must not happen happened (e.g. a leader asking to truncate
  committed entries, spec/raft.md §14.2); the node refused it and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cluster import ClusterConfig
from .roles import Role


@dataclass(frozen=True, slots=True)
class StateChanged:
    role: Role
    term: int
    leader_id: str | None


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    config: ClusterConfig


@dataclass(frozen=True, slots=True)
class ConfigCommitted:
    """C(old,new) (requested by ``request_id``) is committed and C(new) appended at
    ``final_index``; a waiting ConfigUpdate is answered with the C(old,new) index."""

    request_id: bytes | None
    joint_index: int
    final_index: int


@dataclass(frozen=True, slots=True)
class CommitAdvanced:
    commit_index: int


@dataclass(frozen=True, slots=True)
class Removed:
    """C(old,new) at ``joint_index``, which has no place for us in new, is committed."""

    joint_index: int


@dataclass(frozen=True, slots=True)
class RaftError:
    """Something that must not happen happened; the node refused it and carries on."""

    message: str
