"""What goes into ``RaftNode.step``: peer messages in their envelopes, and local proposals.

Theory of operation (after etcd-io/raft's ``Step``): everything that happens to a peer, other
than the passage of time (``tick``) and the acknowledgement of work it handed out
(``storage_done``, ``apply_done``: etcd's ``Advance``), is one input to one method,
``node.step(input, now)``.  A peer message alone does not say all the node needs, so each comes
in a small frozen envelope:

* ``PeerRequest(message, route)``: a RequestVote, AppendEntries, InstallSnapshot or PreVote that arrived
  on our ROUTER.  ``route`` is opaque to the node; its reply goes back on it (``Outgoing.route``).
  The sender is the message's candidate or leader id.
* ``PeerReply(peer, message)``: the reply to a request we sent to ``peer`` on its DEALER.
* ``LeaderAlive(leader_id, term)``: the driver answered a re-sent AppendEntries or
  InstallSnapshot from its debounce cache (spec/protocol.md §8.1) without handing it to the
  node; it still shows the leader is alive and resets a follower's election timer (Raft §5.2).
* ``Propose(request_id, data)``: append a STATE entry (a client's RequestUpdate); leader only.
* ``ProposeBatch(updates)``: ``Propose`` for each ``(request_id, data)`` in order, as one log
  append (a drained batch of RequestUpdates); leader only.
* ``ProposeConfig(joint, request_id)``: start a membership change by appending C(old,new)
  (spec/raft.md §9 step 2); leader only.

``step`` returns the log index a proposal was appended at (C(old,new)'s for ``ProposeConfig``,
the last one's for ``ProposeBatch``) and None for peer messages.  Proposing on a non-leader
raises ``NotLeader``: the driver checks the role first and answers the client itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..cluster import ClusterConfig
from ..protocol.messages import (
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    PreVote,
    PreVoteReply,
    RequestVote,
    RequestVoteReply,
)


@dataclass(frozen=True, slots=True)
class PeerRequest:
    """A peer's request and the route its reply goes back on."""

    message: RequestVote | AppendEntries | InstallSnapshot | PreVote
    route: Any


@dataclass(frozen=True, slots=True)
class PeerReply:
    """The reply of ``peer`` to a request we sent it."""

    peer: str
    message: RequestVoteReply | AppendEntriesReply | InstallSnapshotReply | PreVoteReply


@dataclass(frozen=True, slots=True)
class LeaderAlive:
    """A re-sent AppendEntries/InstallSnapshot of ``leader_id`` the driver answered itself."""

    leader_id: str
    term: int


@dataclass(frozen=True, slots=True)
class Propose:
    """Append a STATE entry with ``data`` under the client's ``request_id``."""

    request_id: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class ProposeBatch:
    """Append a STATE entry for each ``(request_id, data)``, in order: one input, one log
    append and one request-id cache update for a drained batch of RequestUpdates."""

    updates: Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class ProposeConfig:
    """Start the change to ``joint`` (C(old,new), from ``ClusterConfig.join``)."""

    joint: ClusterConfig
    request_id: bytes


Input: TypeAlias = PeerRequest | PeerReply | LeaderAlive | Propose | ProposeBatch | ProposeConfig


class NotLeader(RuntimeError):
    """A proposal reached a node that is not the leader."""
