"""Messages out of the node, each held until the storage job it depends on is durable.

Theory of operation: Raft's safety rests on promises that outlive a crash.  A vote grant
promises that the voter's term and vote are on disk (Raft §5.2, Fig. 2 "persistent state ...
updated on stable storage before responding to RPCs"); an AppendEntries acknowledgement
promises that the entries are (§5.3); a candidate's own RequestVote counts its own vote.  So
the rule "persist before sending" lives here, in the core, where no runtime can break it
(spec/raft.md §2: replies that depend on the new term or vote are sent only after the
persistence update resolved; DESIGN.md: the core enforces it).

The node numbers its storage jobs.  ``send_after(out, job)`` tags a message with the job
after which everything it promises is durable; it is handed out at once if that job is
already durable, else held.  ``durable(job)`` is called when the runtime acknowledges a job
and releases, in order, every held message that waited for it or an earlier one.  Messages
that promise nothing (a refusal of a stale term, a leader's AppendEntries, which it may send
while its own write is in flight) go with ``send``.

``send_after`` is the one place the rule is applied: the simulator's ``vote-before-persist``
and ``ack-before-persist`` mutants replace it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outgoing:
    """A message for a peer's DEALER (``peer``) or a reply on the ROUTER (``route``)."""

    message: Any
    peer: str | None = None
    route: Any = None
    wait_job: int = 0  # may leave once storage job ``wait_job`` is durable


class Outbox:
    __slots__ = ("_held", "_ready", "durable_job")

    def __init__(self) -> None:
        self.durable_job = 0  # the last storage job acknowledged durable
        self._ready: list[Outgoing] = []
        self._held: deque[Outgoing] = deque()

    def send(self, out: Outgoing) -> None:
        """``out`` may leave now."""
        self._ready.append(out)

    def send_after(self, out: Outgoing, job: int) -> None:
        """``out`` may leave once storage job ``job`` is durable (now, if it already is)."""
        out.wait_job = job
        if job > self.durable_job:
            self._held.append(out)
        else:
            self._ready.append(out)

    def durable(self, job: int) -> None:
        """Storage job ``job`` is durable: release what waited for it."""
        self.durable_job = job
        held = self._held
        while held and held[0].wait_job <= job:
            self._ready.append(held.popleft())

    def answers(self, route: Any) -> bool:
        """Is a reply on ``route`` queued (to leave now or once durable)?"""
        return any(out.route is route for out in self._ready) or any(out.route is route for out in self._held)

    def take(self) -> list[Outgoing]:
        """Everything that may leave now, in order."""
        out, self._ready = self._ready, []
        return out
