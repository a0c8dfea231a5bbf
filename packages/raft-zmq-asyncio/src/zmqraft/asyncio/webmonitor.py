"""The web monitor of an asyncio peer: aiohttp serving ``zmqraft.core.webmonitor``.

The core decides what every request gets; this module only speaks HTTP.  Event streams
(``GET /monitor``) each have a queue: the peer's role and configuration changes are pushed
into it, and a state message goes out whenever a second passes without one.  ``/peer``
lookups ask the other peer's ROUTER with a single-peer client; ``/status`` asks every other
peer for its log info at the same time (one cached client per peer); ``/metrics`` is the
peer's Prometheus exposition (``metrics.PeerMetrics``).  When the port is taken the
server retries every second, as the original does (and logs that once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web
from zmqraft.client import AsyncPeerClient, ClientError
from zmqraft.core.client.items import LogInfo
from zmqraft.core.driver import Watcher
from zmqraft.core.raft.node import ConfigChanged, StateChanged
from zmqraft.core.webmonitor import (
    BIND_RETRY,
    PEER_URL_RETRIES,
    PEER_URL_TIMEOUT,
    STATE_INTERVAL,
    STATUS_PEER_TIMEOUT,
    ClusterQuery,
    MetricsRequest,
    PeerLookup,
    Response,
    Stream,
    WebMonitor,
    listen_failed,
    text,
    webmonitor_ssl,
)

if TYPE_CHECKING:
    from .metrics import PeerMetrics

log = logging.getLogger("zmqraft.asyncio.webmonitor")


class WebMonitorServer:
    def __init__(
        self, monitor: WebMonitor, watchers: list[Watcher], secret: bytes, metrics: PeerMetrics | None = None
    ) -> None:
        self.monitor = monitor
        self.metrics = metrics
        self._status_clients: dict[str, AsyncPeerClient] = {}  # peer url -> its /status client
        watchers.append(self._on_event)  # the driver's: role and configuration changes
        self.secret = secret
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._runner: web.AppRunner | None = None
        self._bind_task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def url(self) -> str:
        return self.monitor.url

    async def start(self) -> None:
        """Listen (in the background while the port is taken)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._bind_task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        address = self.monitor.address
        assert self._runner is not None
        context = webmonitor_ssl(address)
        failures = 0
        while True:
            site = web.TCPSite(self._runner, address.host, address.port, ssl_context=context)
            try:
                await site.start()
            except OSError as exc:
                failures += 1
                line, again = listen_failed(address, exc, failures)
                if line is not None:
                    log.error("%s", line)
                if not again:
                    return
                await asyncio.sleep(BIND_RETRY)
                continue
            log.info("web monitor at %s (listening on %s:%s)", self.url, address.host, address.port)
            self.listening.set()
            return

    async def close(self) -> None:
        if self._bind_task is not None:
            self._bind_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bind_task
        for queue in list(self._streams):
            queue.put_nowait(None)  # ends the stream
        if self._runner is not None:
            await self._runner.cleanup()
        for client in self._status_clients.values():
            await client.close()
        self._status_clients.clear()

    # ---- events of the peer

    def _on_event(self, event: StateChanged | ConfigChanged) -> None:
        message = self.monitor.event_message(event)
        for queue in self._streams:
            queue.put_nowait(message)

    # ---- requests

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        result = self.monitor.handle(request.method, request.path, request.query, request.headers)
        if isinstance(result, PeerLookup):
            result = self.monitor.peer_found(result, await self._lookup(result))
        elif isinstance(result, ClusterQuery):
            infos = await self._log_infos(result)
            result = self.monitor.cluster_response(infos, time.monotonic(), time.time())
        elif isinstance(result, MetricsRequest):
            if self.metrics is None:
                result = text(404)
            else:
                result = Response(200, self.metrics.content_type, self.metrics.exposition())
        if isinstance(result, Response):
            return web.Response(
                status=result.status,
                body=b"" if request.method == "HEAD" else result.body,
                headers={"Content-Type": result.content_type, **dict(result.headers)},
            )
        if isinstance(result, Stream):
            return await self._stream(request, result)
        return await self._asset(result)

    async def _asset(self, path: str) -> web.StreamResponse:
        r = text(404)  # no assets directory: the page is self-contained
        return web.Response(status=r.status, body=r.body, headers={"Content-Type": r.content_type})

    async def _lookup(self, lookup: PeerLookup) -> str | None:
        async with AsyncPeerClient(lookup.url, secret=self.secret, timeout=PEER_URL_TIMEOUT) as client:
            for _ in range(PEER_URL_RETRIES):
                try:
                    return await client.request_webmonitor_url()
                except ClientError as exc:
                    log.debug("web monitor of %s: %s", lookup.peer_id, exc)
        return None

    async def _log_infos(self, query: ClusterQuery) -> dict[str, LogInfo | None]:
        """Every other peer's log info, asked at the same time (None: no answer in time)."""

        async def ask(url: str) -> LogInfo | None:
            client = self._status_clients.get(url)
            if client is None:
                client = self._status_clients[url] = AsyncPeerClient(
                    url, secret=self.secret, timeout=STATUS_PEER_TIMEOUT
                )
            try:
                return await client.request_log_info()
            except ClientError as exc:
                log.debug("status of %s: %s", url, exc)
                return None

        answers = await asyncio.gather(*(ask(url) for _, url in query.peers))
        return {peer_id: info for (peer_id, _), info in zip(query.peers, answers, strict=True)}

    async def _stream(self, request: web.Request, stream: Stream) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=dict(stream.headers))
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.add(queue)
        try:
            await response.write(self.monitor.open_message())
            while True:
                try:
                    message: Any = await asyncio.wait_for(queue.get(), STATE_INTERVAL)
                except TimeoutError:
                    message = self.monitor.state_message()
                if message is None:
                    break
                await response.write(message)
        except ConnectionError:
            pass  # the browser went away
        finally:
            self._streams.discard(queue)
        return response
