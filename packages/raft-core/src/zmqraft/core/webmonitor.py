"""The web monitor, sans-IO (spec server-and-tools.md (d)): what each HTTP request gets, the
Server-Sent Events a browser follows, and the ``W`` request that tells other peers' monitors
where this one is.

A runtime serves it with a real HTTP server library: it turns each request into
``WebMonitor.handle(method, path, query, headers)`` and writes back the ``Response``; for
``Stream`` it keeps the connection open and writes ``open_message()`` at once, then
``state_message()`` every ``STATE_INTERVAL`` seconds and at once on every role change, and
``config_message()`` on every configuration change; for ``PeerLookup`` it asks that peer's
ROUTER for its monitor's URL (a ``W`` request, ``PEER_URL_TIMEOUT`` seconds, up to
``PEER_URL_RETRIES`` times) and hands the answer to ``peer_found``.

Deviations from the original, all fixes: the page is sent as text/html; assets are served
from the assets directory (the original strips the wrong prefix) and ``..`` is refused; JSON
Content-Length is the byte length; ``bind.port`` is honoured together with ``bind.host``.
"""

from __future__ import annotations

import errno
import importlib.resources
import json
import posixpath
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from . import metrics
from .client.items import LogInfo
from .cluster import ClusterConfig
from .protocol import messages as m
from .raft.node import ConfigChanged, Role, StateChanged
from .server import ClientRequest, PeerServer

STATE_INTERVAL = 1.0  # seconds between state messages on an event stream
RETRY_MS = 2000  # the reconnect delay a browser is told
PEER_URL_TIMEOUT = 2.0
PEER_URL_RETRIES = 5
STATUS_PEER_TIMEOUT = 0.5  # seconds each peer has to answer the log-info query of /status
ALLOW = "GET, HEAD"
ROLE_NAMES = {
    Role.CLIENT: "Client",
    Role.FOLLOWER: "Follower",
    Role.CANDIDATE: "Candidate",
    Role.LEADER: "Leader",
}


class WebMonitorError(ValueError):
    """Unusable ``webmonitor`` options."""


@dataclass(frozen=True, slots=True)
class WebAddress:
    """Where the monitor listens and the URL it announces (``W`` answers, ``/peer``)."""

    url: str
    host: str
    port: int
    proto: str  # "http" or "https"
    tls: Mapping[str, Any] = field(default_factory=dict)  # the other ``bind`` keys


def web_address(options: Mapping[str, Any]) -> WebAddress | None:
    """The monitor's address from validated options; None when it is not enabled."""
    web = options.get("webmonitor") or {}
    if not web.get("enable"):
        return None
    bind = dict(web.get("bind") or {})
    bind_proto = bind.pop("proto", None) or "http"
    if bind_proto not in ("http", "https"):
        raise WebMonitorError(f"unknown webmonitor protocol: {bind_proto!r} (webmonitor.bind.proto)")
    host = str(web.get("host") or "localhost")
    try:
        port = int(web.get("port") or 8050)
        listen_port = int(bind.pop("port", None) or port)
    except (TypeError, ValueError):
        raise WebMonitorError("webmonitor.port and webmonitor.bind.port must be numbers") from None
    listen_host = bind.pop("host", None)
    proto = str(web.get("proto") or bind_proto)
    url = f"{proto}://{_url_host(host)}:{port}"
    listen = str(listen_host) if isinstance(listen_host, str) else "::"
    return WebAddress(url, listen, listen_port, bind_proto, bind)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Stream:
    """``GET /monitor``: keep the connection open for Server-Sent Events."""

    headers: tuple[tuple[str, str], ...] = (
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("Access-Control-Allow-Origin", "*"),
    )


@dataclass(frozen=True, slots=True)
class PeerLookup:
    """``GET /peer?id=``: ask the peer at ``url`` for its monitor's URL, then ``peer_found``."""

    peer_id: str
    url: str


@dataclass(frozen=True, slots=True)
class MetricsRequest:
    """``GET /metrics``: the runtime answers with its Prometheus exposition
    (``zmqraft.core.metrics.families`` through ``prometheus_client``)."""


@dataclass(frozen=True, slots=True)
class ClusterQuery:
    """``GET /status``: ask each of ``peers`` (id, url) for its log info (RequestLogInfo,
    ``STATUS_PEER_TIMEOUT`` seconds, at the same time), then answer ``cluster_status``."""

    peers: tuple[tuple[str, str], ...]


def text(status: int) -> Response:
    """An error response: the reason phrase as text/plain."""
    return Response(status, "text/plain; charset=utf-8", HTTPStatus(status).phrase.encode())


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, "application/json", json.dumps(value, separators=(",", ":")).encode())


def sse(data: Any, *, id: str | None = None, event: str | None = None, retry: int | None = None) -> bytes:
    """One Server-Sent Event: ``data`` as JSON (a string: one ``data:`` line per line)."""
    lines = []
    if retry is not None:
        lines.append(f"retry: {retry}")
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    if isinstance(data, str):
        lines.extend(f"data: {line}" for line in data.split("\n"))
    else:
        lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class WebMonitor:
    """One peer's monitor: ``page`` is the HTML page, ``assets`` reads a file of the assets
    directory (the runtime's I/O, given a safe relative path; None when missing)."""

    def __init__(
        self,
        server: PeerServer,
        address: WebAddress,
        *,
        label: str | None = None,
        page: bytes = b"",
    ) -> None:
        self.server = server
        self.address = address
        self.label = label
        self.page = page
        self._peer_urls: dict[str, str] = {}  # peer id -> its monitor's url (cached)

    @property
    def url(self) -> str:
        return self.address.url

    # ---- what the endpoints say

    def status(self) -> dict[str, Any]:
        config = self.server.node.config
        body: dict[str, Any] = {"peers": [[peer_id, url] for peer_id, url in config.urls.items()]}
        if self.label is not None:
            body["label"] = self.label
        return body

    def cluster_status(self, infos: Mapping[str, LogInfo | None], now: float, wall: float) -> dict[str, Any]:
        """``GET /status``: the whole cluster in one answer, for scripts and the page.  The
        original's ``peers`` and ``label`` first; then this peer's view (leader, term,
        quorum, configuration, its commit-index samples and recent events) and one entry per
        member: its log as it answered ``infos`` (None: no answer), the lag behind the
        leader's last index, and how long ago this peer heard from it."""
        server = self.server
        node = server.node
        config = node.config
        heard = metrics.last_heard(server, now)
        match = node.follower_match()
        local = self._local_info()
        leader = local.leader_id if not local.is_leader else server.id
        term = node.term
        for peer_id, info in infos.items():
            if info is not None and info.is_leader and info.term >= term:
                leader, term = peer_id, info.term
        answers: dict[str, LogInfo | None] = {**infos, server.id: local}
        leader_info = answers.get(leader) if leader is not None else None
        leader_last = None if leader_info is None else leader_info.last_index
        members = []
        for peer_id, url in config.urls.items():
            info = answers.get(peer_id)
            member: dict[str, Any] = {"id": peer_id, "url": url, "reachable": info is not None}
            if info is not None:
                member.update(
                    state=ROLE_NAMES[node.role] if peer_id == server.id else _role_of(info),
                    term=info.term,
                    commitIndex=info.commit_index,
                    lastApplied=info.last_applied,
                    firstIndex=info.first_index,
                    lastIndex=info.last_index,
                    snapshotSize=info.snapshot_size,
                )
            member["lag"] = (
                None if leader_last is None or info is None else max(0, leader_last - info.last_index)
            )
            member["matchIndex"] = match.get(peer_id)
            member["lastHeard"] = 0.0 if peer_id == server.id else heard.get(peer_id)
            members.append(member)
        body = self.status()
        body.update(
            id=server.id,
            time=int(wall * 1000),
            leader=leader,
            term=term,
            quorumHealthy=metrics.quorum_healthy(server, now),
            config={
                "joint": config.is_joint,
                "old": [[p, u] for p, u in config.old],
                "new": [[p, u] for p, u in config.new] if config.is_joint and config.new else None,
            },
            commitIndex=node.commit_index,
            members=members,
            commitHistory=[[int(t * 1000), i] for t, i in server.metrics.commit_samples],
            events=[
                {"time": int(e.wall * 1000), "kind": e.kind, "text": e.text} for e in server.metrics.timeline
            ],
        )
        return body

    def cluster_response(self, infos: Mapping[str, LogInfo | None], now: float, wall: float) -> Response:
        return json_response(self.cluster_status(infos, now, wall))

    def _local_info(self) -> LogInfo:
        node = self.server.node
        return LogInfo(
            node.role is Role.LEADER,
            node.leader_id,
            node.term,
            node.log.first_index,
            node.last_applied,
            node.commit_index,
            node.log.last_index,
            node.log.snapshot.size,
            0,
            self.server.id,
        )

    def state(self) -> dict[str, Any]:
        node = self.server.node
        snapshot = node.log.snapshot
        return {
            "state": ROLE_NAMES[node.role],
            "currentTerm": node.term,
            "votedFor": node.voted_for,
            "lastApplied": node.last_applied,
            "commitIndex": node.commit_index,
            "firstIndex": node.log.first_index,
            "lastIndex": node.log.last_index,
            "snapshot": {"logTerm": snapshot.term, "logIndex": snapshot.index, "dataSize": snapshot.size},
        }

    def open_message(self) -> bytes:
        """The first message of a stream (it also tells the browser how soon to reconnect)."""
        return sse(self.state(), id=self.server.id, retry=RETRY_MS)

    def state_message(self) -> bytes:
        return sse(self.state(), id=self.server.id)

    def config_message(self) -> bytes:
        return sse(self.status(), event="config")

    def event_message(self, event: StateChanged | ConfigChanged) -> bytes:
        """What event streams get when the peer's role or configuration changes."""
        return self.state_message() if isinstance(event, StateChanged) else self.config_message()

    # ---- requests

    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> Response | Stream | PeerLookup | ClusterQuery | MetricsRequest | str:
        """What to answer; a ``str`` is an asset's path, relative to the assets directory
        (checked: no ``..``), for the runtime to send (or ``text(404)`` if it is missing)."""
        if method not in ("GET", "HEAD"):
            r = text(405)
            return Response(r.status, r.content_type, r.body, (("Allow", ALLOW),))
        if path in ("/", "/index.html"):
            return Response(200, "text/html; charset=utf-8", self.page)
        if path.startswith("/assets/"):
            rel = posixpath.normpath(path[len("/assets/") :])
            if rel.startswith(("..", "/")) or rel == ".":
                return text(403)
            return rel
        if path == "/status":
            others = tuple((p, u) for p, u in self.server.node.config.urls.items() if p != self.server.id)
            return ClusterQuery(others)
        if path == "/metrics":
            return MetricsRequest()
        if path == "/peer":
            return self._peer(query.get("id"))
        if path == "/monitor":
            last = _header(headers, "Last-Event-ID")
            if last is not None and last != self.server.id:
                return text(400)  # the browser followed another peer's stream here
            return Stream()
        return text(404)

    def _peer(self, peer_id: str | None) -> Response | PeerLookup:
        if not peer_id:
            return text(400)
        if peer_id == self.server.id:
            return json_response({"id": peer_id, "url": self.url})
        urls = self.server.node.config.urls
        if peer_id not in urls:
            return text(404)
        cached = self._peer_urls.get(peer_id)
        if cached is not None:
            return json_response({"id": peer_id, "url": cached})
        return PeerLookup(peer_id, urls[peer_id])

    def peer_found(self, lookup: PeerLookup, url: str | None) -> Response:
        """The answer of ``lookup``'s ``W`` request (None: no answer after the retries)."""
        if url is None:
            self._peer_urls.pop(lookup.peer_id, None)
            return text(503)
        if lookup.peer_id in self.server.node.config.urls:
            self._peer_urls[lookup.peer_id] = url
        return json_response({"id": lookup.peer_id, "url": url})

    def config_changed(self, config: ClusterConfig) -> None:
        """Forget the monitor URLs of peers that left."""
        for peer_id in [p for p in self._peer_urls if p not in config.urls]:
            del self._peer_urls[peer_id]

    def answer(self, request: ClientRequest) -> bool:
        """Answer a ``W`` request with this monitor's URL; False for any other request."""
        if request.type != m.REQUEST_WEBMONITOR_URL:
            return False
        reply = m.RequestWebmonitorUrlReply(request.request_id, self.url)
        self.server.reply(request.routing_id, reply.encode())
        return True


def _role_of(info: LogInfo) -> str:
    """What a peer's log info says of its role (it does not tell a candidate from a follower
    that has not heard of a leader yet)."""
    if info.is_leader:
        return ROLE_NAMES[Role.LEADER]
    return ROLE_NAMES[Role.FOLLOWER] if info.leader_id else "No leader"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value


# ---- what a peer serves -----------------------------------------------------------------


def web_monitor(server: PeerServer, options: Mapping[str, Any]) -> WebMonitor | None:
    """The peer's web monitor when ``webmonitor.enable`` (the driver hands it ``W`` requests
    and configuration changes; a runtime serves it over HTTP)."""
    address = web_address(options)
    if address is None:
        return None
    return WebMonitor(server, address, label=options.get("label"), page=webmonitor_page())


def webmonitor_page() -> bytes:
    """The web monitor's page, packaged with raft-core (``zmqraft/core/static``)."""
    return importlib.resources.files("zmqraft.core").joinpath("static/webmonitor.html").read_bytes()


BIND_RETRY = 1.0  # seconds between attempts to listen while the port is taken (the original's)


def listen_failed(address: WebAddress, error: OSError, attempt: int) -> tuple[str | None, bool]:
    """The monitor could not listen (``attempt``: 1 for the first failure): the error line a
    runtime logs (None: nothing to log) and whether it tries again after ``BIND_RETRY``.  A
    taken port is retried, as the original does, and logged the first time only."""
    if error.errno != errno.EADDRINUSE:
        return f"web monitor: can not listen at {address.host}:{address.port}: {error}", False
    return (port_taken(address) if attempt == 1 else None), True


def port_taken(address: WebAddress) -> str:
    """The one error a runtime logs when the monitor's port is taken (it keeps retrying
    quietly, as the original does, and logs again once it listens)."""
    return (
        f"web monitor: can not listen at {address.host}:{address.port}: the address is in use "
        "(another peer's web monitor? give each peer its own www url or webmonitor.bind.port); "
        "retrying every second"
    )


def webmonitor_ssl(address: WebAddress) -> ssl.SSLContext | None:
    """For ``webmonitor.bind.proto: https``: ``bind.cert`` and ``bind.key`` are PEM files (the
    original passes PEM text to Node's https server; files are what Python's ssl takes)."""
    if address.proto != "https":
        return None
    cert, key = address.tls.get("cert"), address.tls.get("key")
    if not cert:
        raise WebMonitorError("webmonitor.bind.cert (a PEM file) is needed for https")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key) if key else None)
    return context


__all__ = [
    "BIND_RETRY",
    "PEER_URL_RETRIES",
    "PEER_URL_TIMEOUT",
    "STATE_INTERVAL",
    "STATUS_PEER_TIMEOUT",
    "ClusterQuery",
    "MetricsRequest",
    "PeerLookup",
    "Response",
    "Stream",
    "WebAddress",
    "WebMonitor",
    "WebMonitorError",
    "json_response",
    "listen_failed",
    "port_taken",
    "sse",
    "text",
    "web_address",
    "web_monitor",
    "webmonitor_page",
    "webmonitor_ssl",
]
