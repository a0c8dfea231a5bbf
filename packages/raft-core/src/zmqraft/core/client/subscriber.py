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
* No broadcast for ``silence_timeout`` (a leader publishes at least every 0.5 s): ``take``
  raises ``RequestTimeoutError`` once, naming the peers tried and the likely cause, so a
  reader is not left waiting in silence on a wrong secret, address or a cluster without a
  leader; the subscriber goes on trying, and raises again after another such silence.

The consumer reads with ``take``; what it does not read is not fetched: catch-up streams
stop on back-pressure and broadcasts beyond the buffer are dropped (and fetched later).
``last_index`` is the index of the last entry handed out (CONFIG and CHECKPOINT entries
count even when only STATE entries are delivered), so ``from_index=last_index`` resumes
without duplicates.

Drive it like the ``ClientProtocol``: DEALER replies to ``receive``, SUB messages to
``receive_broadcast``, ``handle_timer``/``get_timer``, ``frames_to_send``, and the
``Subscribe(url)`` events say where the SUB socket (prefix = the cluster ident) connects.

It is duplex (client.md §8): ``request_update`` writes through the same client, and
``last_update_index``/``is_fresh`` tell whether the reader has seen every update written.

Pinned to one peer (``peer_url``, the original's ZmqRaftPeerSub + ForeverEntriesStream,
client.md §7): the publisher and the catch-ups are that peer's only, and the entries end
(``take`` raises ``NotLeaderError``) once it no longer leads.  ``from_index=None`` delivers
no entries at all: only ``Pulse`` and ``BroadcastTimeout`` events, for monitoring.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..protocol import messages as m
from ..protocol.errors import ProtocolError
from .entries_stream import EntriesStream
from .errors import ClientClosedError, ClientError, ConnectError, NotLeaderError, RequestTimeoutError
from .events import Completed, Event, LeaderChanged, PeersChanged, Readable
from .items import Entry, Item
from .operations import BroadcastUrlOperation, Operation, UpdateOperation
from .protocol import ClientProtocol

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
    #: the ROUTER url of the peer that gave ``url`` (whose CurveZMQ key the SUB needs); not
    #: compared: where the answer came from does not make another subscription
    peer_url: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ItemsReady:
    """``take`` may return items now (or an error)."""


@dataclass(frozen=True, slots=True)
class Pulse:
    """A broadcast arrived (only with ``pulses=True``): the publisher's last applied index,
    its term and the entries it carried (none in a heartbeat)."""

    last_index: int
    term: int
    entries: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BroadcastTimeout:
    """No broadcast for ``broadcast_timeout`` seconds: the publisher is being looked for
    again (emitted once per silence)."""

    url: str | None


SubscriberEvent = Subscribe | ItemsReady | Pulse | BroadcastTimeout | PeersChanged | LeaderChanged | Completed


class SubscriberProtocol:
    """Every committed entry after ``from_index`` exactly once, in order."""

    def __init__(
        self,
        client: ClientProtocol,
        now: float,
        *,
        from_index: int | None = 0,
        broadcast_timeout: float = BROADCAST_TIMEOUT,
        state_only: bool = True,
        buffer_limit: int = BUFFER_LIMIT,
        peer_url: str | None = None,
        pulses: bool = False,
        silence_timeout: float | None = None,
    ) -> None:
        if from_index is not None and from_index < 0:
            raise ValueError("from_index must not be negative")
        self.client = client
        self.broadcast_timeout = max(broadcast_timeout, MIN_BROADCAST_TIMEOUT)
        self.state_only = state_only
        self.buffer_limit = buffer_limit
        self.peer_url = peer_url
        self.pulses = pulses
        self.delivers = from_index is not None  # False: pulses only, no entries
        from_index = from_index or 0
        self.position = from_index  # every entry up to here is queued, delivered or being caught up
        self.last_index = from_index  # the last index handed to the consumer
        self.last_update_index = from_index  # the highest index an update of ours got
        self.pub_url: str | None = None
        self.pub_term = 0  # the term of the last broadcast
        self.pub_last_index = 0  # the last applied index the last broadcast announced
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
        self._silent = False  # a BroadcastTimeout was emitted and no broadcast came since
        self.silence_timeout = silence_timeout if silence_timeout and silence_timeout > 0 else None
        self._heard = now  # the last broadcast (or the start, or the last silence reported)
        self._stalled: ClientError | None = None  # raised by the next empty ``take``
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
        self._silent = False
        self._heard = now
        last = msg.last_applied
        self.pub_term = msg.term
        self.pub_last_index = last
        if self.pulses:
            self._events.append(Pulse(last, msg.term, tuple(msg.entries)))
        if not self.delivers:
            return
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
            if not self._silent:
                self._silent = True
                self._events.append(BroadcastTimeout(self.pub_url))
            self._discover_pub(now)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
        stall_at = self._stall_at()
        if stall_at is not None and now >= stall_at:
            self._stalled = self._silence_error(now)
            self._heard = now  # the next error after another whole silence
            self._events.append(ItemsReady())
        self._settle(now)

    def get_timer(self) -> float | None:
        times = [
            t
            for t in (self.client.get_timer(), self._broadcast_expires, self._retry_at, self._stall_at())
            if t is not None
        ]
        return min(times) if times else None

    def _stall_at(self) -> float | None:
        if self.silence_timeout is None or not self.delivers or self._error is not None:
            return None
        return self._heard + self.silence_timeout

    def _silence_error(self, now: float) -> RequestTimeoutError:
        client = self.client
        tried = ", ".join(client.urls)
        waited = f"{self.silence_timeout:g} s"
        if client.last_answer is not None and client.last_answer >= self._heard:
            why = (
                "peers answer but no leader publishes: the cluster is electing a leader or has lost "
                f"its quorum, or the leader's broadcast address ({self.pub_url}) is not reachable from here"
            )
        else:
            why = (
                "likely causes: a wrong secret (a peer ignores requests with another cluster's secret "
                "without a word), a wrong address, or no peer running there"
            )
        return RequestTimeoutError(
            f"subscriber: no broadcast from the cluster's leader within {waited} (tried {tried}); {why}; "
            "the subscriber keeps trying (read again to wait on), or pass rpc_timeout=None to wait as long "
            "as it takes"
        )

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
            elif isinstance(event, PeersChanged | LeaderChanged | Completed):
                self._events.append(event)  # Completed: the consumer's own updates
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------ consumer interface

    @property
    def error(self) -> ClientError | None:
        """Set once the subscriber cannot go on: it was closed, or (pinned to a peer) that
        peer no longer leads (``NotLeaderError``)."""
        return self._error

    @property
    def is_fresh(self) -> bool:
        """The reader has been handed every update this subscriber wrote."""
        return self.last_index >= self.last_update_index

    def request_update(
        self,
        data: bytes,
        now: float,
        wall: float,
        *,
        request_id: bytes | str | None = None,
        timeout: float | None = None,
    ) -> UpdateOperation:
        """Write ``data`` through the subscriber's client (the duplex side); the result is
        its log index, which ``last_update_index`` then covers."""
        op = self.client.request_update(
            data, now, wall, request_id=request_id, timeout=timeout, url=self.peer_url
        )
        op.on_done = self._update_done
        return op

    def _update_done(self, op: Operation[int], now: float) -> None:
        if op.error is None:
            self.last_update_index = max(self.last_update_index, op.result())

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
        if not out and self._stalled is not None:
            stalled, self._stalled = self._stalled, None
            raise stalled
        return out

    def close(self, now: float) -> None:
        self.abort(ClientClosedError("subscriber closed"), now)

    def abort(self, error: ClientError, now: float) -> None:
        """Stop for good: ``take`` raises ``error`` (the subscriber was closed, or its
        runtime broke down)."""
        if self._error is None:
            self._error = error
        self._catchup = None
        self._broadcast_expires = None
        self._retry_at = None
        self.client.abort(error, now)
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
        op = self.client.request_broadcast_url(now, url=self.peer_url)
        op.internal = True
        op.on_done = self._pub_found
        self._url_op = op

    def _pub_found(self, op: Operation[str], now: float) -> None:
        self._url_op = None
        if isinstance(op.error, ClientClosedError):
            return
        if op.error is not None:  # the pinned peer did not answer: ask again after a silence
            log.info("broadcast url: %s", op.error)
            self._surface(op.error)
            self._broadcast_expires = now + self.broadcast_timeout
            return
        url = op.result()
        self._broadcast_expires = now + self.broadcast_timeout
        if url != self.pub_url:
            self.pub_url = url
            self._events.append(Subscribe(url, self.client.ident, op.url))

    def _surface(self, error: ClientError) -> None:
        """A socket could not be opened: the reader hears of it at once (not after a silence);
        the subscriber goes on trying."""
        if isinstance(error, ConnectError):
            self._stalled = error
            self._events.append(ItemsReady())

    def _settle(self, now: float) -> None:
        """Queue what continues at ``position``; start a catch-up for what is missing."""
        if self._error is not None or self._catchup is not None or not self.delivers:
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
        stream = self.client.request_entries(now, self.position, count, url=self.peer_url)
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
        if isinstance(error, NotLeaderError) and self.peer_url is not None:
            self._error = error  # the pinned peer no longer leads: its entries end here
            self._events.append(ItemsReady())
            return
        if error is not None:
            log.info("catch-up failed, retrying: %s", error)
            self._surface(error)
            self._missed = True
            self._retry_at = now + self.client.grace
        elif self.position == self._catchup_from and self._known_last > self.position:
            # nothing new (a new leader still applying what we were told of): do not spin
            self._retry_at = now + self.client.grace
        if self._known_last < self.position:
            self._known_last = self.position


__all__ = [
    "BROADCAST_TIMEOUT",
    "BroadcastTimeout",
    "ItemsReady",
    "Pulse",
    "Subscribe",
    "SubscriberEvent",
    "SubscriberProtocol",
]
