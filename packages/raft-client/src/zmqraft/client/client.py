"""``Client`` (blocking, gevent-friendly) and ``AsyncClient`` (asyncio): thin wrappers over
``zmqraft.core.client.ClientProtocol``, which makes every decision (spec/client.md §5).

Timeouts: ``timeout`` (constructor) is the per-response limit of one attempt (500 ms by
default); the ``timeout`` argument of every method is the overall deadline of the whole
retrying operation (default: the constructor's ``rpc_timeout``, ``DEFAULT_RPC_TIMEOUT`` = 5 s;
None = retry until it works).  ``RequestTimeoutError`` is raised when an attempt fails after
that deadline, naming the peers tried and the likely cause.

Why 5 s (etcdctl's command timeout): an election takes 0.2–0.3 s by default plus the
client's 0.3 s grace, and a silent peer costs one 0.5 s attempt, so 5 s rides out a leader
change with a peer down several times over, while a wrong secret, a wrong address or a dead
cluster is reported in seconds instead of never.  There is no separate dial timeout:
ZeroMQ connects in the background, and the first answer is what proves a connection.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import EllipsisType, TracebackType
from typing import Any, TypeVar

import zmq
from zmqraft.core.client import (
    DEFAULT_MAX_UPDATE_SIZE,
    ClientProtocol,
    ConfigInfo,
    EntriesStream,
    Item,
    LogInfo,
    Operation,
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

T = TypeVar("T")
Timeout = float | None | EllipsisType

DEFAULT_RPC_TIMEOUT = 5.0  # seconds: the overall deadline of every call (see the module docstring)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_UPDATE_SIZE",
    "DEFAULT_RPC_TIMEOUT",
    "AsyncClient",
    "AsyncEntries",
    "AsyncPeerClient",
    "Client",
    "Entries",
    "PeerClient",
]


class _Base:
    """What ``Client`` and ``AsyncClient`` share: options, the core protocol, the sockets."""

    def __init__(
        self,
        urls: str | Sequence[str] | None = None,
        *,
        peers: Any = None,
        secret: str | bytes = "",
        timeout: float = 0.5,
        rpc_timeout: Timeout = ...,
        election_grace_delay: float = 0.3,
        heartbeat: float | None = None,
        highwatermark: int = HIGHWATERMARK,
        sockopts: Mapping[int, Any] | None = None,
        context: zmq.Context[Any] | None = None,
        max_update_size: int | None = DEFAULT_MAX_UPDATE_SIZE,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        curve: ClientKeys | str | os.PathLike[str] | None = None,
    ) -> None:
        """
        :param urls: seed URLs of any peers (``tcp://host:port``); the rest is discovered
        :param peers: the cluster's ``[id, url]`` pairs, if known (skips the discovery)
        :param secret: the cluster's secret (a wrong one looks like an unreachable cluster)
        :param timeout: seconds to wait for each response before trying the next peer
        :param rpc_timeout: default overall deadline of every method, ``DEFAULT_RPC_TIMEOUT``
            (5 s) when not given (None: no deadline).  A call pinned to one peer (``url=``,
            ``PeerClient``) makes one attempt of ``timeout`` unless ``rpc_timeout`` is given
        :param election_grace_delay: seconds to wait for an election before asking again
        :param heartbeat: refresh the configuration every that many seconds (None: never);
            a blocking ``Client`` does it only while one of its methods runs
        :param highwatermark: messages queued per peer (ZeroMQ ``SNDHWM``)
        :param sockopts: extra ZeroMQ options for every DEALER socket
        :param context: a ZeroMQ context (``zmq.green.Context`` to run under gevent); by
            default one shared by every client of the process (``shared_context()``)
        :param max_update_size: the cluster's ``maxLogEntryDataSize`` (10 MiB by default): a
            larger update raises ``UpdateTooLargeError`` before it is sent, since a peer drops
            it without an answer (None: send anything)
        :param max_message_size: the largest message part accepted from peers (ZeroMQ
            ``MAXMSGSIZE``, 64 MiB; None: no limit); keep it above the cluster's
            ``maxLogEntryDataSize`` and ``peerMsgDataSize``
        :param curve: CurveZMQ (a cluster with ``curve`` options): this client's key pair and
            the peers' public keys, as ``ClientKeys`` or a certificate directory (its
            ``client.key_secret`` and every peer's ``ID.key``: ``ClientKeys.from_directory``).
            A seed url or peer without a key is a ``CurveKeyError`` here; a refused handshake
            looks like silence (the timeout error says so).  None: plaintext
        """
        self._proto = ClientProtocol(
            urls if urls is not None else (),
            now=clock(),
            peers=peers,
            secret=secret,
            timeout=timeout,
            election_grace_delay=election_grace_delay,
            heartbeat=heartbeat,
            max_update_size=max_update_size,
        )
        self._rpc_timeout_given = not isinstance(rpc_timeout, EllipsisType)
        self.rpc_timeout: float | None = (
            DEFAULT_RPC_TIMEOUT if isinstance(rpc_timeout, EllipsisType) else rpc_timeout
        )
        self._sockets = Sockets.for_client(
            self._proto,
            curve,
            context,
            highwatermark=highwatermark,
            sockopts=sockopts,
            max_message_size=max_message_size,
        )
        self.curve = self._sockets.curve
        self.pinned_url: str | None = None  # a single-peer client sends everything there

    # ---- state

    @property
    def protocol(self) -> ClientProtocol:
        """The sans-IO core this client drives."""
        return self._proto

    @property
    def leader_id(self) -> str | None:
        """The leader as last seen (None when unknown)."""
        return self._proto.leader_id

    @property
    def leader_url(self) -> str | None:
        return self._proto.leader_url

    @property
    def peers(self) -> tuple[tuple[str, str], ...]:
        """The last known configuration: ``(id, url)`` pairs."""
        return self._proto.peers

    @property
    def closed(self) -> bool:
        return self._proto.closed

    def _pin(self, url: str | None) -> str | None:
        return url if url is not None else self.pinned_url

    def _timeout(self, timeout: Timeout, url: str | None = None) -> float | None:
        """A call's deadline: its own ``timeout=``, else ``rpc_timeout``; a call pinned to one
        peer is one attempt of the per-response ``timeout`` unless ``rpc_timeout`` was given
        (finite either way)."""
        if not isinstance(timeout, EllipsisType):
            return timeout
        if self._pin(url) is not None and not self._rpc_timeout_given:
            return None
        return self.rpc_timeout

    def _check_open(self) -> None:
        if self._proto.closed:
            raise self._proto.closed_error()

    # ---- the operations (the blocking and asyncio methods only wait for them differently)

    def _config_op(self, timeout: Timeout, url: str | None) -> Operation[ConfigInfo]:
        self._check_open()
        return self._proto.request_config(clock(), timeout=self._timeout(timeout, url), url=self._pin(url))

    def _log_info_op(self, any_peer: bool, timeout: Timeout, url: str | None) -> Operation[LogInfo]:
        self._check_open()
        return self._proto.request_log_info(
            clock(), any_peer=any_peer, timeout=self._timeout(timeout, url), url=self._pin(url)
        )

    def _update_op(
        self, data: bytes, request_id: bytes | str | None, timeout: Timeout, url: str | None
    ) -> Operation[int]:
        self._check_open()
        return self._proto.request_update(
            data,
            clock(),
            time.time(),
            request_id=request_id,
            timeout=self._timeout(timeout, url),
            url=self._pin(url),
        )

    def _config_update_op(
        self, peers: Any, request_id: bytes | str | None, timeout: Timeout, url: str | None
    ) -> Operation[int]:
        self._check_open()
        return self._proto.config_update(
            peers,
            clock(),
            time.time(),
            request_id=request_id,
            timeout=self._timeout(timeout, url),
            url=self._pin(url),
        )

    def _entries_stream(
        self,
        prev_index: int,
        count: int | None,
        snapshot_offset: int | None,
        timeout: Timeout,
        high_water: int | None,
        url: str | None,
    ) -> EntriesStream:
        self._check_open()
        return self._proto.request_entries(
            clock(),
            prev_index,
            count,
            snapshot_offset=snapshot_offset,
            timeout=self._timeout(timeout, url),
            high_water=high_water,
            url=self._pin(url),
        )

    def _broadcast_url_op(self, timeout: Timeout, url: str | None) -> Operation[str]:
        self._check_open()
        return self._proto.request_broadcast_url(
            clock(), timeout=self._timeout(timeout, url), url=self._pin(url)
        )

    def _webmonitor_url_op(self, timeout: Timeout, url: str | None) -> Operation[str]:
        self._check_open()
        return self._proto.request_webmonitor_url(
            clock(), timeout=self._timeout(timeout, url), url=self._pin(url)
        )

    def _custom_op(
        self, msg_type: bytes, args: tuple[bytes, ...], timeout: Timeout, url: str | None, to_leader: bool
    ) -> Operation[list[bytes]]:
        self._check_open()
        return self._proto.request(
            msg_type,
            args,
            clock(),
            timeout=self._timeout(timeout, url),
            url=self._pin(url),
            to_leader=to_leader,
        )


# ---- blocking -----------------------------------------------------------------------------


class Client(_Base):
    """A blocking zmq-raft client for a whole cluster.

    Use it as a context manager (or call ``close()``).  Not thread-safe: use one client per
    thread or greenlet (it is cheap), or ``AsyncClient`` for concurrency within one thread.
    Under gevent pass ``context=zmq.green.Context()``: waiting then yields to other greenlets.

    Example::

        with Client(["tcp://127.0.0.1:8047"], secret="") as client:
            index = client.request_update(b"data")
            for entry in client.request_entries(prev_index=0):
                print(entry.index, entry.data)
    """

    def __init__(self, urls: str | Sequence[str] | None = None, **options: Any) -> None:
        super().__init__(urls, **options)
        self._driver = SyncDriver(self._proto, self._sockets)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Fail pending operations with ``ClientClosedError`` and close the sockets."""
        if self._proto.closed:
            return
        self._proto.close(clock())
        for url, frames in self._proto.frames_to_send():
            self._sockets.send(url, frames)
        self._sockets.close()

    def _run(self, op: Operation[T]) -> T:
        return self._driver.run_op(op)

    def request_config(self, *, timeout: Timeout = ..., url: str | None = None) -> ConfigInfo:
        """The cluster's configuration as its leader reports it (``leader_id``, ``peers``,
        ``urls``).  With ``url``: ask that peer only, once."""
        return self._run(self._config_op(timeout, url))

    def request_log_info(
        self, *, any_peer: bool = False, timeout: Timeout = ..., url: str | None = None
    ) -> LogInfo:
        """The leader's log state (``commit_index``, ``last_applied``, ``first_index``,
        ``last_index``, ``term``, ``leader_id``, ...); ``any_peer``: whoever answers first;
        ``url``: that peer only, once."""
        return self._run(self._log_info_op(any_peer, timeout, url))

    def request_update(
        self,
        data: bytes,
        *,
        request_id: bytes | str | None = None,
        timeout: Timeout = ...,
        url: str | None = None,
    ) -> int:
        """Append ``data`` to the log; returns its index once the leader applied it.

        Retries (other peers, a new leader) reuse one request id, so the update is applied
        once.  ``ExpiredRequestError`` if the leader finds the id too old or too new.
        ``url``: send it to that peer only, once (``NotLeaderError`` if it does not lead).
        """
        return self._run(self._update_op(data, request_id, timeout, url))

    def config_update(
        self,
        peers: Any,
        *,
        request_id: bytes | str | None = None,
        timeout: Timeout = ...,
        url: str | None = None,
    ) -> int:
        """Change the cluster's membership to ``peers`` (``[(id, url), ...]``); returns the
        index of the joint configuration entry.  Raises ``ConfigUpdateError`` (rejected
        list), ``ClusterBusyError`` (a change is in progress) or ``ExpiredRequestError``;
        ``url``: that peer only, once."""
        return self._run(self._config_update_op(peers, request_id, timeout, url))

    def request_entries(
        self,
        prev_index: int = 0,
        count: int | None = None,
        *,
        snapshot_offset: int | None = None,
        timeout: Timeout = ...,
        high_water: int | None = None,
        url: str | None = None,
    ) -> Entries:
        """Iterate over the committed entries after ``prev_index`` (``count`` of them, or up
        to the leader's last applied index): ``Entry`` objects, preceded by
        ``SnapshotChunk`` objects where the log before them was compacted.

        ``snapshot_offset`` resumes a snapshot transfer; ``high_water`` is how many bytes
        may wait unread before the stream pauses (4 MiB); ``url``: from that peer only (the
        iteration raises ``NotLeaderError``/``RequestTimeoutError`` with ``.resume``
        instead of moving on)."""
        stream = self._entries_stream(prev_index, count, snapshot_offset, timeout, high_water, url)
        return Entries(self, stream)

    def request_broadcast_url(self, *, timeout: Timeout = ..., url: str | None = None) -> str:
        """The leader's broadcast (PUB) URL; ``url``: that peer's, once."""
        return self._run(self._broadcast_url_op(timeout, url))

    def request_webmonitor_url(self, *, timeout: Timeout = ..., url: str | None = None) -> str:
        """A peer's web monitor URL (``W``); ``url``: that peer's, once.  Peers without a web
        monitor do not answer."""
        return self._run(self._webmonitor_url_op(timeout, url))

    def request(
        self,
        msg_type: bytes,
        *args: bytes,
        timeout: Timeout = ...,
        url: str | None = None,
        to_leader: bool = True,
    ) -> list[bytes]:
        """A custom request for the state machine (ClientDispatch): the frames of the first
        reply.  Retried on other peers after a timeout, so make the handler idempotent."""
        return self._run(self._custom_op(msg_type, args, timeout, url, to_leader))


class _OnePeer:
    """What the single-peer clients add: every request is pinned to ``url``."""

    pinned_url: str | None

    @property
    def url(self) -> str:
        """The peer every request goes to."""
        assert self.pinned_url is not None
        return self.pinned_url


class PeerClient(_OnePeer, Client):
    """A client for one peer (the original's ZmqRaftPeerClient): every request goes to
    ``url`` and is tried once, with ``timeout`` seconds for each response.

    Nothing is followed or retried: a peer that does not lead answers updates, membership
    changes and entries with ``NotLeaderError`` (``.leader_id`` names the leader), silence
    ends in ``RequestTimeoutError``, and an entries stream's error says in ``.resume`` where
    to continue.  For monitoring one peer, tests, and tools that must talk to exactly one;
    applications want ``Client``.  ``options``: ``secret``, ``timeout``, ``highwatermark``,
    ``sockopts``, ``context`` as for ``Client``.  The ``timeout`` argument of a method, if
    given, is a deadline for the whole call instead.
    """

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.pinned_url = url

    def __enter__(self) -> PeerClient:
        return self


class Entries(Iterator[Item]):
    """The items of one RequestEntries stream; ``close()`` (or leaving a ``with`` block)
    stops it early.  ``prev_index`` is where a new stream would continue."""

    BATCH = 256

    def __init__(self, client: Client, stream: EntriesStream) -> None:
        self._client = client
        self.stream = stream
        self._items: list[Item] = []

    @property
    def prev_index(self) -> int:
        return self.stream.prev_index

    def __iter__(self) -> Entries:
        return self

    def __next__(self) -> Item:
        if not self._items:
            proto = self._client.protocol
            stream = self.stream

            def ready() -> bool:
                return bool(stream.buffer) or stream.done

            self._client._driver.run_until(ready)
            self._items = proto.take(stream, clock(), self.BATCH)
            self._items.reverse()
            if not self._items:
                stream.result()  # raises the stream's error, if any
                raise StopIteration
        return self._items.pop()

    def close(self) -> None:
        if not self.stream.done:
            self._client.protocol.stop(self.stream, clock())
            self._client._driver.run_until(lambda: True)
        self._items = []

    def __enter__(self) -> Entries:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# ---- asyncio ------------------------------------------------------------------------------


class AsyncClient(_Base):
    """The asyncio version of ``Client``: the same methods, awaited; ``request_entries``
    returns an async iterator.  Many requests may run concurrently on one client.

    Example::

        async with AsyncClient(["tcp://127.0.0.1:8047"]) as client:
            index = await client.request_update(b"data")
            async for entry in client.request_entries(prev_index=0):
                ...
    """

    def __init__(self, urls: str | Sequence[str] | None = None, **options: Any) -> None:
        super().__init__(urls, **options)
        self._driver_: AsyncDriver | None = None

    @property
    def _driver(self) -> AsyncDriver:
        if self._driver_ is None:
            self._driver_ = AsyncDriver(self._proto, self._sockets, asyncio.get_running_loop())
        return self._driver_

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Fail pending operations with ``ClientClosedError`` and close the sockets."""
        if self._proto.closed:
            return
        self._proto.close(clock())
        if self._driver_ is not None:
            self._driver_.pump()
            self._driver_.close()
        self._sockets.close()

    async def _run(self, op: Operation[T]) -> T:
        await self._driver.wait(op)
        return op.result()

    async def request_config(self, *, timeout: Timeout = ..., url: str | None = None) -> ConfigInfo:
        """See ``Client.request_config``."""
        return await self._run(self._config_op(timeout, url))

    async def request_log_info(
        self, *, any_peer: bool = False, timeout: Timeout = ..., url: str | None = None
    ) -> LogInfo:
        """See ``Client.request_log_info``."""
        return await self._run(self._log_info_op(any_peer, timeout, url))

    async def request_update(
        self,
        data: bytes,
        *,
        request_id: bytes | str | None = None,
        timeout: Timeout = ...,
        url: str | None = None,
    ) -> int:
        """See ``Client.request_update``."""
        return await self._run(self._update_op(data, request_id, timeout, url))

    async def config_update(
        self,
        peers: Any,
        *,
        request_id: bytes | str | None = None,
        timeout: Timeout = ...,
        url: str | None = None,
    ) -> int:
        """See ``Client.config_update``."""
        return await self._run(self._config_update_op(peers, request_id, timeout, url))

    def request_entries(
        self,
        prev_index: int = 0,
        count: int | None = None,
        *,
        snapshot_offset: int | None = None,
        timeout: Timeout = ...,
        high_water: int | None = None,
        url: str | None = None,
    ) -> AsyncEntries:
        """See ``Client.request_entries`` (use ``async for``)."""
        stream = self._entries_stream(prev_index, count, snapshot_offset, timeout, high_water, url)
        return AsyncEntries(self, stream)

    async def request_broadcast_url(self, *, timeout: Timeout = ..., url: str | None = None) -> str:
        """See ``Client.request_broadcast_url``."""
        return await self._run(self._broadcast_url_op(timeout, url))

    async def request_webmonitor_url(self, *, timeout: Timeout = ..., url: str | None = None) -> str:
        """See ``Client.request_webmonitor_url``."""
        return await self._run(self._webmonitor_url_op(timeout, url))

    async def request(
        self,
        msg_type: bytes,
        *args: bytes,
        timeout: Timeout = ...,
        url: str | None = None,
        to_leader: bool = True,
    ) -> list[bytes]:
        """See ``Client.request``."""
        return await self._run(self._custom_op(msg_type, args, timeout, url, to_leader))


class AsyncPeerClient(_OnePeer, AsyncClient):
    """``PeerClient`` for asyncio: one peer, one attempt per request."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.pinned_url = url

    async def __aenter__(self) -> AsyncPeerClient:
        return self


class AsyncEntries(AsyncIterator[Item]):
    """``Entries`` for ``async for``; ``await close()`` or ``async with`` stops it early."""

    BATCH = 256

    def __init__(self, client: AsyncClient, stream: EntriesStream) -> None:
        self._client = client
        self.stream = stream
        self._items: list[Item] = []

    @property
    def prev_index(self) -> int:
        return self.stream.prev_index

    def __aiter__(self) -> AsyncEntries:
        return self

    async def __anext__(self) -> Item:
        if not self._items:
            stream = self.stream
            driver = self._client._driver
            try:
                while not stream.buffer and not stream.done:
                    await driver.readable(stream)
            except asyncio.CancelledError:
                await self.close()
                raise
            self._items = self._client.protocol.take(stream, clock(), self.BATCH)
            self._items.reverse()
            driver.pump()  # taking may have resumed a paused stream
            if not self._items:
                driver.forget(stream)
                stream.result()
                raise StopAsyncIteration
        return self._items.pop()

    async def close(self) -> None:
        if not self.stream.done:
            self._client.protocol.stop(self.stream, clock())
            self._client._driver.pump()
        self._client._driver.forget(self.stream)
        self._items = []

    async def __aenter__(self) -> AsyncEntries:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
