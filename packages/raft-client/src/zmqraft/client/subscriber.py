"""``Subscriber``: every committed entry of a cluster, once and in order, as it is applied;
``PeerSubscriber``: the same from one peer while it leads (and its broadcast pulses).

Thin wrappers over ``zmqraft.core.client.SubscriberProtocol`` (which decides everything:
where the publisher is, what is missing, when to catch up): a SUB socket to the leader's
broadcast state machine plus the client DEALERs for the RequestEntries catch-ups and for
the updates a subscriber writes (it is duplex, like the original's ZmqRaftSubscriber).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import EllipsisType, TracebackType
from typing import Any

import zmq
from zmqraft.core.client import (
    BroadcastTimeout,
    ClientClosedError,
    ClientProtocol,
    Entry,
    Item,
    NotLeaderError,
    Pulse,
    Subscribe,
    SubscriberProtocol,
)
from zmqraft.core.curve_keys import ClientKeys

from ._driver import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HIGHWATERMARK,
    AsyncDriver,
    Sockets,
    SyncDriver,
    clock,
)
from .client import DEFAULT_MAX_UPDATE_SIZE, DEFAULT_RPC_TIMEOUT, Timeout

log = logging.getLogger("zmqraft.client.subscriber")

__all__ = ["PeerSubscriber", "Subscriber"]


class Subscriber(Iterator[Item], AsyncIterator[Item]):
    """Iterate (``for`` or ``async for``) over the cluster's committed STATE entries.

    Entries come as ``Entry`` objects (``.index``, ``.data``, ``.term``, ``.request_id``)
    in log order, each exactly once, starting after ``from_index``.  When the log before
    them was compacted, ``SnapshotChunk`` objects come first: assemble them (a chunk with
    ``is_first`` starts over) and load the snapshot, then apply the entries.  Iteration never
    ends by itself: it follows the cluster through leader changes and lost broadcasts.

    ``last_index`` is the index of the last entry handed out (CONFIG and CHECKPOINT entries
    included, though only STATE entries are yielded unless ``state_only=False``); to resume
    later without duplicates, pass it back as ``from_index``.

    It writes too: ``request_update`` (``await arequest_update`` with ``async for``) sends
    an update through the subscriber's own client; ``is_fresh`` turns true once the
    entries handed out reach ``last_update_index``, the highest index an update got.

    Example::

        with Subscriber(["tcp://127.0.0.1:8047"], from_index=last_seen) as sub:
            for entry in sub:
                apply(entry.data)
                last_seen = sub.last_index

    Use it from one thread (or greenlet); pick ``for`` or ``async for`` and stick to it.
    """

    BATCH = 256

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        *,
        peers: Any = None,
        secret: str | bytes = "",
        from_index: int | None = 0,
        state_only: bool = True,
        timeout: float = 0.5,
        rpc_timeout: float | None = DEFAULT_RPC_TIMEOUT,
        broadcast_timeout: float = 1.0,
        election_grace_delay: float = 0.3,
        highwatermark: int = HIGHWATERMARK,
        sockopts: Mapping[int, Any] | None = None,
        context: zmq.Context[Any] | None = None,
        max_update_size: int | None = DEFAULT_MAX_UPDATE_SIZE,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        on_pulse: Callable[[Pulse], None] | None = None,
        on_timeout: Callable[[BroadcastTimeout], None] | None = None,
        on_publisher: Callable[[str], None] | None = None,
        curve: ClientKeys | str | os.PathLike[str] | None = None,
        _peer_url: str | None = None,
    ) -> None:
        """
        :param urls: seed URLs of any peers; ``peers``, ``secret``, ``timeout``,
            ``election_grace_delay``, ``highwatermark``, ``sockopts``, ``context``,
            ``max_update_size`` and ``max_message_size`` are as for ``Client``
        :param rpc_timeout: reading raises ``RequestTimeoutError`` (naming the peers tried
            and the likely cause) after this many seconds without a broadcast from a leader
            (one comes at least every 0.5 s), 5 s by default; the subscriber keeps trying and
            a new read waits on.  It is also the deadline of ``request_update``.  None: wait
            silently as long as it takes
        :param from_index: deliver the entries after this index (0: from the start; None:
            no entries, only the ``on_pulse``/``on_timeout`` callbacks)
        :param state_only: yield only STATE entries (False: CONFIG and CHECKPOINT too)
        :param broadcast_timeout: seconds without any broadcast (the leader sends a
            heartbeat every 0.5 s) before looking for a new leader's publisher
        :param on_pulse: called with every broadcast received (a ``Pulse``: last index,
            term, entries), while the subscriber is being read
        :param on_timeout: called once per broadcast silence longer than
            ``broadcast_timeout`` (a ``BroadcastTimeout``)
        :param on_publisher: called with the PUB URL each time the subscriber connects to
            a (new) publisher
        :param curve: CurveZMQ keys as for ``Client``; the SUB socket connects to the
            publishing peer with that peer's public key (or the one given for the PUB url)
        """
        now = clock()
        client = ClientProtocol(
            urls if urls is not None else (),
            now=now,
            peers=peers,
            secret=secret,
            timeout=timeout,
            election_grace_delay=election_grace_delay,
            max_update_size=max_update_size,
        )
        self.rpc_timeout = rpc_timeout
        self._proto = SubscriberProtocol(
            client,
            now,
            from_index=from_index,
            broadcast_timeout=broadcast_timeout,
            state_only=state_only,
            peer_url=_peer_url,
            pulses=on_pulse is not None,
            silence_timeout=rpc_timeout,
        )
        self._sockets = Sockets.for_client(
            client,
            curve,
            context,
            highwatermark=highwatermark,
            sockopts=sockopts,
            max_message_size=max_message_size,
        )
        self._items: deque[Item] = deque()
        self._last = from_index or 0
        self._sync: SyncDriver | None = None
        self._async: AsyncDriver | None = None
        self.on_pulse = on_pulse
        self.on_timeout = on_timeout
        self.on_publisher = on_publisher
        self.ended = False  # a PeerSubscriber's peer stopped leading
        self._closed = False

    # ---- state

    @property
    def protocol(self) -> SubscriberProtocol:
        return self._proto

    @property
    def last_index(self) -> int:
        """The index of the last entry handed out (or ``from_index``)."""
        return self._last if self._items else self._proto.last_index

    @property
    def pub_url(self) -> str | None:
        """The publisher currently subscribed to."""
        return self._proto.pub_url

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_update_index(self) -> int:
        """The highest log index an update written through this subscriber got (or
        ``from_index``)."""
        return self._proto.last_update_index

    @property
    def is_fresh(self) -> bool:
        """Every update written through this subscriber has been handed out (or skipped,
        for entries not yielded)."""
        return self.last_index >= self._proto.last_update_index

    def _listen(self, event: Any) -> None:
        try:
            if isinstance(event, Pulse) and self.on_pulse is not None:
                self.on_pulse(event)
            elif isinstance(event, BroadcastTimeout) and self.on_timeout is not None:
                self.on_timeout(event)
            elif isinstance(event, Subscribe) and self.on_publisher is not None:
                self.on_publisher(event.url)
        except Exception:
            log.exception("a subscriber callback failed")

    # ---- blocking

    def _sync_driver(self) -> SyncDriver:
        if self._async is not None:
            raise RuntimeError("this Subscriber is used with async for; do not mix for and async for")
        if self._sync is None:
            self._sync = SyncDriver(self._proto, self._sockets)
            self._sync.listener = self._listen
        return self._sync

    def _fill(self) -> bool:
        if not self._items:
            self._last = self._proto.last_index
            self._items.extend(self._proto.take(clock(), self.BATCH))
        return bool(self._items)

    def _pop(self) -> Item:
        item = self._items.popleft()
        if isinstance(item, Entry) or item.is_last:
            self._last = item.index
        return item

    def read(self, timeout: float | None = None) -> Item | None:
        """The next item, or None if none arrived within ``timeout`` seconds."""
        driver = self._sync_driver()
        if self._items:
            return self._pop()
        driver.run_until(self._fill, timeout)
        return self._pop() if self._items else None

    def __iter__(self) -> Subscriber:
        self._sync_driver()
        return self

    def __next__(self) -> Item:
        try:
            item = self.read()
        except NotLeaderError:
            if self._proto.peer_url is None:
                raise
            self.ended = True
            raise StopIteration from None
        assert item is not None
        return item

    def request_update(
        self, data: bytes, *, request_id: bytes | str | None = None, timeout: Timeout = ...
    ) -> int:
        """Write ``data`` (see ``Client.request_update``); returns its log index.  Entries
        arriving meanwhile are kept for the reader."""
        driver = self._sync_driver()
        self._check_open()
        op = self._proto.request_update(
            data, clock(), time.time(), request_id=request_id, timeout=self._timeout(timeout)
        )
        return driver.run_op(op)

    def _timeout(self, timeout: Timeout) -> float | None:
        return self.rpc_timeout if isinstance(timeout, EllipsisType) else timeout

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("subscriber closed")

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop: close the sockets; iteration then raises ``ClientClosedError``."""
        if self._closed:
            return
        self._closed = True
        self._proto.close(clock())
        if self._async is not None:
            self._async.pump()
            self._async.close()
        self._sockets.close()
        self._items.clear()

    # ---- asyncio

    def _async_driver(self) -> AsyncDriver:
        if self._sync is not None:
            raise RuntimeError("this Subscriber is used with for; do not mix for and async for")
        if self._async is None:
            self._async = AsyncDriver(self._proto, self._sockets, asyncio.get_running_loop())
            self._async.listener = self._listen
        return self._async

    async def aread(self, timeout: float | None = None) -> Item | None:
        """The next item, or None if none arrived within ``timeout`` seconds."""
        driver = self._async_driver()
        if self._items:
            return self._pop()
        deadline = None if timeout is None else clock() + timeout
        while not self._fill():
            left = None if deadline is None else deadline - clock()
            if left is not None and left <= 0:
                return None
            await driver.readable(self._proto, left)
        return self._pop()

    def __aiter__(self) -> Subscriber:
        self._async_driver()
        return self

    async def __anext__(self) -> Item:
        try:
            item = await self.aread()
        except NotLeaderError:
            if self._proto.peer_url is None:
                raise
            self.ended = True
            raise StopAsyncIteration from None
        assert item is not None
        return item

    async def arequest_update(
        self, data: bytes, *, request_id: bytes | str | None = None, timeout: Timeout = ...
    ) -> int:
        """``request_update`` for asyncio: may run while another task iterates."""
        driver = self._async_driver()
        self._check_open()
        op = self._proto.request_update(
            data, clock(), time.time(), request_id=request_id, timeout=self._timeout(timeout)
        )
        await driver.wait(op)
        return op.result()

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PeerSubscriber(Subscriber):
    """One peer's entries while it leads (the original's ZmqRaftPeerSub with its
    ForeverEntriesStream): its publisher, catch-ups from it alone, and the iteration ends
    (``ended`` turns true) once that peer no longer leads.

    ``from_index=None`` reads no entries at all: drive it with ``read(timeout)`` (which then
    returns None) to receive its pulses (``on_pulse``) and silences (``on_timeout``).
    """

    def __init__(self, url: str, *, from_index: int | None = 0, **options: Any) -> None:
        """``options`` as for ``Subscriber`` (``secret``, ``state_only``, ``timeout``,
        ``broadcast_timeout``, the ``on_...`` callbacks, ...), but no seeds or peers."""
        super().__init__(url, from_index=from_index, _peer_url=url, **options)

    @property
    def url(self) -> str:
        """The peer's RPC URL."""
        assert self._proto.peer_url is not None
        return self._proto.peer_url
