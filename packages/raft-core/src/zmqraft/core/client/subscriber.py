"""A subscriber to the leader's state broadcasts, as a sans-IO state machine (client.md §8).

Theory of operation
-------------------

The leader publishes every batch of entries it applies on its PUB socket, and a heartbeat
announcing its last applied index when idle (spec/protocol.md §9.8).  PUB/SUB loses
messages (slow joiner, reconnects, a consumer that does not read, a leader change), so the
broadcasts are only a fast path: the subscriber keeps ``position``, the index up to which it
holds every entry, and fills every gap it notices with a RequestEntries *catch-up* stream
(snapshot chunks included) through the ``ClientProtocol`` it wraps.

* A broadcast batch that continues at (or overlaps) ``position`` is queued for the consumer
  at once; anything beyond a gap is kept in ``ahead`` (bounded) while a catch-up fetches the
  gap, and flushed when the catch-up has been read to its end.
* A broadcast announcing a higher index than we hold (a heartbeat after lost messages)
  starts a catch-up too.
* No broadcast for ``broadcast_timeout``: ask the cluster for the leader's PUB URL again
  (the leader may have changed: the wrapper then reconnects its SUB socket) and catch up.

The consumer reads with ``take``; what it does not read is not fetched: catch-up streams
stop on back-pressure and broadcasts beyond the buffer are dropped (and fetched later).
``last_index`` is the index of the last entry handed out (CONFIG and CHECKPOINT entries
count even when only STATE entries are delivered), so ``from_index=last_index`` resumes
without duplicates.

Drive it like the ``ClientProtocol``: DEALER replies to ``receive``, SUB messages to
``receive_broadcast``, ``handle_timer``/``get_timer``, ``frames_to_send``, and the
``Subscribe(url)`` events say where the SUB socket (prefix = the cluster ident) connects.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from .errors import ClientClosedError, ClientError
from .items import Entry, Item
from .protocol import (
    BroadcastUrlOperation,
    ClientProtocol,
    Completed,
    EntriesStream,
    Event,
    LeaderChanged,
    Operation,
    PeersChanged,
    Readable,
)

log = logging.getLogger("zmqraft.client.subscriber")

BROADCAST_TIMEOUT = 1.0  # client.md §1: 2 x BROADCAST_HEARTBEAT_INTERVAL
MIN_BROADCAST_TIMEOUT = 0.1
BUFFER_LIMIT = 4096  # items queued from broadcasts before further broadcasts are dropped
AHEAD_LIMIT = 256  # broadcast batches kept while a catch-up runs


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Connect the SUB socket to ``url`` (disconnecting any previous URL), subscribed with
    the cluster ident as the prefix."""

    url: str
    prefix: bytes


@dataclass(frozen=True, slots=True)
class ItemsReady:
    """``take`` may return items now (or an error)."""


SubscriberEvent = Subscribe | ItemsReady | PeersChanged | LeaderChanged


class SubscriberProtocol:
    """Every committed entry after ``from_index`` exactly once, in order."""

    def __init__(
        self,
        client: ClientProtocol,
        now: float,
        *,
        from_index: int = 0,
        broadcast_timeout: float = BROADCAST_TIMEOUT,
        state_only: bool = True,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        if from_index < 0:
            raise ValueError("from_index must not be negative")
        self.client = client
        self.broadcast_timeout = max(broadcast_timeout, MIN_BROADCAST_TIMEOUT)
        self.state_only = state_only
        self.buffer_limit = buffer_limit
        self.position = from_index  # every entry up to here is queued, delivered or being caught up
        self.last_index = from_index  # the last index handed to the consumer
        self.pub_url: str | None = None
        self.auth_failures = 0
        self.catchups = 0  # catch-up streams started
        self.malformed = 0
        self._buffer: deque[Item] = deque()
        self._ahead: dict[int, tuple[bytes, ...]] = {}  # last index -> entries of a batch
        self._known_last = from_index  # the highest index any broadcast announced
        self._catchup: EntriesStream | None = None
        self._catchup_from = from_index
        self._retry_at: float | None = None
        self._missed = True  # catch up from position to the end when possible
        self._url_op: BroadcastUrlOperation | None = None
        self._broadcast_expires: float | None = None
        self._events: deque[SubscriberEvent] = deque()
        self._error: ClientError | None = None
        self._discover_pub(now)
        self._settle(now)

    # ------------------------------------------------------------ runtime interface

    def receive(self, frames: list[bytes], now: float) -> None:
        """A message on one of the client's DEALER sockets."""
        self.client.receive(frames, now)

    def receive_broadcast(self, frames: list[bytes], now: float) -> None:
        """A message from the SUB socket."""
        try:
            msg = m.StateBroadcast.decode(frames)
        except ProtocolError as exc:
            self.malformed += 1
            log.debug("dropped a malformed broadcast: %s", exc)
            return
        if msg.ident != self.client.ident:
            # a prefix match of another cluster's ident ("foo" vs "foobar", protocol.md §4)
            self.auth_failures += 1
            log.warning("broadcast auth fail: a broadcast with another cluster's secret was ignored")
            return
        self._broadcast_expires = now + self.broadcast_timeout
        last = msg.last_applied
        if last > self._known_last:
            self._known_last = last
        if msg.entries and last > self.position and len(self._ahead) < AHEAD_LIMIT:
            self._ahead[last] = msg.entries
        self._settle(now)

    def handle_timer(self, now: float) -> None:
        self.client.handle_timer(now)
        if self._broadcast_expires is not None and now >= self._broadcast_expires:
            # silence: the leader may have changed, or its PUB is gone; find it and catch up
            log.debug("no broadcast for %.1f s: looking for the leader's publisher", self.broadcast_timeout)
            self._broadcast_expires = now + self.broadcast_timeout
            self._missed = True
            self._discover_pub(now)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
        self._settle(now)

    def get_timer(self) -> float | None:
        times = [
            t for t in (self.client.get_timer(), self._broadcast_expires, self._retry_at) if t is not None
        ]
        return min(times) if times else None

    def frames_to_send(self) -> list[tuple[str, list[bytes]]]:
        return self.client.frames_to_send()

    def next_event(self) -> SubscriberEvent | None:
        while True:
            event: Event | None = self.client.next_event()
            if event is None:
                break
            if isinstance(event, Readable):
                if event.stream is self._catchup:
                    self._events.append(ItemsReady())
            elif isinstance(event, PeersChanged | LeaderChanged):
                self._events.append(event)
            elif isinstance(event, Completed):
                pass  # our operations finish through their callbacks
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------ consumer interface

    @property
    def error(self) -> ClientError | None:
        """Set once the subscriber cannot go on (it was closed)."""
        return self._error

    def take(self, now: float, limit: int | None = None) -> list[Item]:
        """Items in index order (STATE entries only with ``state_only``; snapshot chunks
        always).  Raises the subscriber's error once everything before it was taken."""
        out: list[Item] = []
        while limit is None or len(out) < limit:
            if self._buffer:
                self._hand_out(self._buffer.popleft(), out)
                continue
            stream = self._catchup
            if stream is not None:
                want = None if limit is None else limit - len(out)
                items = self.client.take(stream, now, want)
                for item in items:
                    if isinstance(item, Entry) or item.is_last:
                        self.position = item.index
                    self._hand_out(item, out)
                if items:
                    continue
                if not stream.done:
                    break
                self._catchup_done(stream, now)
            self._settle(now)  # flush what came ahead, or start the next catch-up
            if not self._buffer:
                break
        self._settle(now)
        if not out and self._error is not None:
            raise self._error
        return out

    def close(self, now: float) -> None:
        if self._error is None:
            self._error = ClientClosedError("subscriber closed")
        self._catchup = None
        self._broadcast_expires = None
        self._retry_at = None
        self.client.close(now)
        self._events.append(ItemsReady())

    # ------------------------------------------------------------ internals

    def _hand_out(self, item: Item, out: list[Item]) -> None:
        if isinstance(item, Entry):
            self.last_index = item.index
            if self.state_only and not item.is_state:
                return
        elif item.is_last:
            self.last_index = item.index
        out.append(item)

    def _discover_pub(self, now: float) -> None:
        if self._url_op is not None or self._error is not None:
            return
        op = self.client.request_broadcast_url(now)
        op.internal = True
        op.on_done = self._pub_found
        self._url_op = op

    def _pub_found(self, op: Operation[str], now: float) -> None:
        self._url_op = None
        if op.error is not None:
            return  # closed
        url = op.result()
        self._broadcast_expires = now + self.broadcast_timeout
        if url != self.pub_url:
            self.pub_url = url
            self._events.append(Subscribe(url, self.client.ident))

    def _settle(self, now: float) -> None:
        """Queue what continues at ``position``; start a catch-up for what is missing."""
        if self._error is not None or self._catchup is not None:
            return
        self._flush_ahead()
        if self._retry_at is not None:
            return
        if not (self._missed or self._known_last > self.position):
            return
        if len(self._buffer) >= self.buffer_limit:
            return  # the consumer is behind: fetch later, when it reads
        count: Any = None
        beyond = [last - len(self._ahead[last]) for last in self._ahead if last > self.position]
        if beyond and not self._missed:
            count = min(beyond) - self.position
        self._missed = False
        if count is not None and count <= 0:
            return
        stream = self.client.request_entries(now, self.position, count)
        stream.internal = True
        self.catchups += 1
        self._catchup = stream
        self._catchup_from = self.position

    def _flush_ahead(self) -> None:
        for last in sorted(self._ahead):
            if last <= self.position:
                del self._ahead[last]
                continue
            entries = self._ahead[last]
            first = last - len(entries) + 1
            if first > self.position + 1 or len(self._buffer) >= self.buffer_limit:
                break
            del self._ahead[last]
            for i in range(self.position + 1 - first, len(entries)):
                self._buffer.append(Entry(entries[i], first + i))
            self.position = last
            self._events.append(ItemsReady())

    def _catchup_done(self, stream: EntriesStream, now: float) -> None:
        self._catchup = None
        error = stream.error
        if isinstance(error, ClientClosedError):
            self._error = error
            return
        if error is not None:
            log.info("catch-up failed, retrying: %s", error)
            self._missed = True
            self._retry_at = now + self.client.grace
        elif self.position == self._catchup_from and self._known_last > self.position:
            # nothing new (a new leader still applying what we were told of): do not spin
            self._retry_at = now + self.client.grace
        if self._known_last < self.position:
            self._known_last = self.position


__all__ = ["BROADCAST_TIMEOUT", "ItemsReady", "Subscribe", "SubscriberEvent", "SubscriberProtocol"]
