"""What the leader knows about one follower, and the AppendEntries it has in flight.

Pipelining (beyond the original, which keeps one request in flight) must stay safe with
followers that behave like the original: they truncate their log after ``prevIndex`` on every
matching AppendEntries and remember only their last reply.  Such a follower loses entries it
already acknowledged if an *older* AppendEntries reaches it after a newer one.  Over one
ZeroMQ connection messages arrive in the order they were sent, so the only way to produce
that is to re-send an old message after a newer one.  Hence the rules kept here:

* messages to a follower form a chain: each one's ``prev`` is the previous one's last index;
* only the newest message in flight is ever re-sent (identical, same id);
* an acknowledgement covers every older message in flight (FIFO), a rejection or a timeout
  that leads to a probe ends the chain: replies to its messages are ignored afterwards;
* a new chain never starts below ``match`` (the highest index acknowledged in this term),
  unless the follower's rejection says its log ends below it: it lost acknowledged entries
  (a torn tail dropped by ``zr-tool repair``), and ``match`` is lowered to the truth.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Inflight:
    message: Any  # the AppendEntries / InstallSnapshot as sent (re-sent identically)
    prev: int
    last: int
    last_term: int
    size: int
    sent_at: float
    snapshot: bool = False
    seq: int = 0  # the how-manieth message to this peer it was (set by ``Progress.record``)


@dataclass(slots=True)
class Progress:
    peer_id: str
    next: int
    match: int = 0
    probing: bool = True  # one message at a time until the follower's position is known
    inflight: OrderedDict[int, Inflight] = field(default_factory=OrderedDict)
    inflight_bytes: int = 0
    idle_since: float = 0.0  # when the last message was sent (heartbeat timing)
    resend_at: float | None = None
    snapshot_offset: int = 0
    heartbeat_due: bool = True  # a message must go out now (commit advanced, new leader...)
    sent: int = 0  # messages recorded so far
    match_fence: int = 0  # ``sent`` when ``match`` last rose: later messages were sent knowing it
    last_heard: float = 0.0  # when a reply of the leader's term last came (check-quorum)
    slack: float = 0.0  # how far apart its replies come lately (check-quorum, leader.py)

    def can_send(self, max_messages: int, max_bytes: int) -> bool:
        if self.probing:
            return not self.inflight
        return len(self.inflight) < max_messages and self.inflight_bytes < max_bytes

    def record(self, msg_id: int, flight: Inflight) -> None:
        flight.seq = self.sent
        self.sent += 1
        self.inflight[msg_id] = flight
        self.inflight_bytes += flight.size
        self.idle_since = flight.sent_at

    def acknowledge(self, msg_id: int) -> Inflight | None:
        """Remove ``msg_id`` and every older message; None if it is not in flight."""
        if msg_id not in self.inflight:
            return None
        while True:
            key, flight = self.inflight.popitem(last=False)
            self.inflight_bytes -= flight.size
            if key == msg_id:
                return flight

    def end_chain(self) -> None:
        self.inflight.clear()
        self.inflight_bytes = 0
        self.resend_at = None

    def newest(self) -> tuple[int, Inflight] | None:
        if not self.inflight:
            return None
        key = next(reversed(self.inflight))
        return key, self.inflight[key]
