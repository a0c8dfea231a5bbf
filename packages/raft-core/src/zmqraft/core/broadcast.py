"""The broadcast state machine's publishing rules (spec server-and-tools.md §a.3).

A leader publishes a StateBroadcast on its PUB socket after every applied batch (the
entries of that batch, with the term and the last applied index) and, while nothing is
applied, an empty one every ``interval`` seconds as a heartbeat, so subscribers can tell a
live leader from a silent one.  A peer that does not lead publishes nothing, nor does a
leader nobody subscribes to, when the runtime can tell (its XPUB hears subscriptions): a
PUB drops every message then, but each applied batch cost a frame per entry to send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .protocol import messages as m
from .raft.node import RaftNode, Role


class BroadcastPublisher:
    """Queues StateBroadcast frames through ``send`` (the PUB socket's queue)."""

    def __init__(
        self, ident: bytes, interval: float, send: Callable[[list[bytes]], None], *, enabled: bool = True
    ) -> None:
        self.ident = ident
        self.interval = interval
        self.send = send
        self.enabled = enabled
        self.due: float | None = None  # the next heartbeat, while leader
        #: does anyone subscribe?  Told by the runtime (``subscribed``); assumed until then
        self.listened = True

    def role_changed(self, leader: bool, now: float) -> None:
        """A new leader announces itself at once; any other role stops the heartbeats."""
        self.due = now if leader else None

    def subscribed(self, present: bool, now: float) -> None:
        """The PUB gained its first subscriber (``present``) or lost its last one.  A new
        subscriber hears a heartbeat at once: who leads, and how far it applied."""
        self.listened = present
        if present and self.due is not None:
            self.due = now

    def applied(self, node: RaftNode, entries: Sequence[bytes], now: float) -> None:
        """A batch was applied: publish it, and push the next heartbeat back."""
        if node.role is Role.LEADER:
            self._publish(node, entries)
            self.due = now + self.interval

    def tick(self, node: RaftNode, now: float) -> None:
        if self.due is not None and now >= self.due:
            self._publish(node, ())
            self.due = now + self.interval

    def _publish(self, node: RaftNode, entries: Sequence[bytes]) -> None:
        if self.enabled and self.listened and node.role is Role.LEADER:
            msg = m.StateBroadcast(self.ident, node.term, node.last_applied, tuple(entries))
            self.send(msg.encode())


__all__ = ["BroadcastPublisher"]
