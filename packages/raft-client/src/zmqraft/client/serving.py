"""What the two server runtimes (``zmqraft.asyncio``, ``zmqraft.gevent``) share that needs
pyzmq or a command line, which raft-core must not have; both runtimes depend on this
package already (for config files).  What an event *means* is shared in the core
(``zmqraft.core.runtime``).

* ``RuntimePeer``: the base of both runtimes' peers (all but how they wait);
* ``PeerSockets``: a peer's ROUTER, one DEALER per other peer and its PUB: opened,
  re-connected to match the configuration, drained into the core and closed the same way
  by every runtime (each only says how it watches a socket for input);
* ``send_frames``: how the core's frames leave them.
* ``server_parser``, ``setup_logging``, ``server_options``: the ``zmq-raft`` command line
  (spec server-and-tools.md §c.1), the same for every runtime;
* ``web_monitor``, ``webmonitor_ssl``: what the runtimes' web monitor servers serve.
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
import signal
import ssl
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import zmq
from zmqraft.core.builder import AssembledPeer
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.config import peer_entry
from zmqraft.core.jobs import ApplyJob, Job
from zmqraft.core.runtime import PeerEvents
from zmqraft.core.server import Channel, ChannelKind, PeerServer
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.executor import StorageExecutor
from zmqraft.core.webmonitor import WebAddress, WebMonitor, WebMonitorError, web_address

from .config_files import read_config

log = logging.getLogger("zmqraft.server")
T = TypeVar("T")

#: signals that close a peer gracefully (the original's list)
CLOSING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2)

_monotonic = time.monotonic
_wall = time.time
RECV_BATCH = 1000  # messages taken from one socket before the outputs are drained
ROUTER_LINGER_MS = 2000  # replies already queued still leave after close
PUB_LINGER_MS = 2000

Watch = Callable[[zmq.Socket[bytes]], None]

# Plain-int flags: pyzmq's send_multipart combines its enum flags once per frame, which costs
# three times the send itself for an AppendEntries of ten entries.
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)


# ---- frames out ---------------------------------------------------------------------------


def send(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send a multipart message without blocking (raises zmq.Again on a full queue; a ROUTER
    or PUB drops instead, a DEALER raises before the first frame leaves)."""
    send_frame = sock.send
    for frame in frames[:-1]:
        send_frame(frame, _MORE)
    send_frame(frames[-1], _LAST)


def send_frames(
    outputs: Iterable[tuple[Channel, list[bytes]]],
    router: zmq.Socket[bytes] | None,
    dealers: Mapping[str, tuple[str, zmq.Socket[bytes]]],
    pub: zmq.Socket[bytes] | None,
) -> tuple[int, int]:
    """Route ``server.frames_to_send()``: replies through the ROUTER to their address, RPCs
    through the DEALER of their peer (``dealers``: peer id -> (url, socket)), broadcasts
    through the PUB.  Returns (sent, dropped): a full queue or a peer without a DEALER drops
    the message, which the core retransmits where it matters."""
    sent = dropped = 0
    for channel, frames in outputs:
        kind = channel.kind
        try:
            if kind is ChannelKind.ROUTER:
                assert router is not None
                router.send(channel.address, _MORE)
                send(router, frames)
            elif kind is ChannelKind.PEER:
                dealer = dealers.get(channel.address)
                if dealer is None:
                    dropped += 1
                    continue
                send(dealer[1], frames)
            elif pub is not None:
                send(pub, frames)
            sent += 1
        except zmq.Again:
            dropped += 1
        except zmq.ZMQError as exc:
            if exc.errno == zmq.ENOTSOCK:
                continue  # closed during shutdown
            raise
    return sent, dropped


class PeerSockets:
    """The sockets of one peer.  ``watch(sock)`` / ``unwatch(sock)`` are the runtime's: start
    and stop waking its pump when ``sock`` may have input (called for the ROUTER and every
    DEALER; an unwatch always comes before the socket closes)."""

    def __init__(
        self, peer_id: str, *, dealer_hwm: int, reconnect_ivl: float, watch: Watch, unwatch: Watch
    ) -> None:
        self.id = peer_id
        self.dealer_hwm = dealer_hwm
        self.reconnect_ivl_ms = max(1, int(reconnect_ivl * 1000))
        self.watch = watch
        self.unwatch = unwatch
        self.ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self.router: zmq.Socket[bytes] | None = None
        self.pub: zmq.Socket[bytes] | None = None
        self.dealers: dict[str, tuple[str, zmq.Socket[bytes]]] = {}  # peer id -> (url, socket)
        self.bound_url: str | None = None
        self.dropped_sends = 0

    def open(self, router_bind: str, pub_bind: str | None, config: ClusterConfig) -> None:
        """Bind the ROUTER (and the PUB), connect to the other peers of ``config``."""
        ctx = self.ctx = zmq.Context()
        router = self.router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, ROUTER_LINGER_MS)
        router.bind(router_bind)
        self.bound_url = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.watch(router)
        if pub_bind is not None:
            pub = self.pub = ctx.socket(zmq.PUB)
            pub.setsockopt(zmq.LINGER, PUB_LINGER_MS)
            pub.bind(pub_bind)
        self.connect_peers(config)

    def connect_peers(self, config: ClusterConfig) -> None:
        """One DEALER per other peer of ``config`` (reconnected when its url changed)."""
        wanted = dict(config.others(self.id))
        for peer_id, (url, sock) in list(self.dealers.items()):
            if wanted.get(peer_id) != url:
                log.debug("%s: disconnect from %s at %s", self.id, peer_id, url)
                self.unwatch(sock)
                sock.close(0)
                del self.dealers[peer_id]
        for peer_id, url in wanted.items():
            if peer_id in self.dealers or self.ctx is None:
                continue
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, self.dealer_hwm)
            sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ivl_ms)
            sock.connect(url)
            self.dealers[peer_id] = (url, sock)
            self.watch(sock)
            log.debug("%s: connected to %s at %s", self.id, peer_id, url)

    def receive(self, server: PeerServer) -> int:
        """Feed what waits on the sockets to ``server`` (a bounded batch per socket), each
        message with the time it is read at: if this process was stopped (SIGSTOP, a
        stalled VM) in the middle of a batch, what arrived meanwhile must not be stamped with
        the time it stopped at, or a follower would re-arm its election timer in the past and
        campaign against the leader it just heard from."""
        received = 0
        router = self.router
        assert router is not None
        for _ in range(RECV_BATCH):
            try:
                frames = router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            received += 1
            server.receive_router(frames[0], frames[1:], _monotonic(), _wall())
        for peer_id, (_url, sock) in list(self.dealers.items()):
            for _ in range(RECV_BATCH):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                received += 1
                server.receive_peer(peer_id, frames, _monotonic(), _wall())
        return received

    def readable(self) -> bool:
        """Does any socket hold input?  (Reading EVENTS also re-arms the edge-triggered FD.)"""
        assert self.router is not None
        if _events(self.router) & zmq.POLLIN:
            return True
        return any(_events(sock) & zmq.POLLIN for _url, sock in self.dealers.values())

    def send(self, server: PeerServer) -> int:
        """Send what ``server`` queued; returns how many messages left."""
        sent, dropped = send_frames(server.frames_to_send(), self.router, self.dealers, self.pub)
        self.dropped_sends += dropped
        return sent

    def stop_reading(self) -> None:
        for sock in [self.router, *(sock for _url, sock in self.dealers.values())]:
            if sock is not None and not sock.closed:
                self.unwatch(sock)

    def close(self) -> None:
        """Close the sockets (the ROUTER and PUB keep their LINGER); the runtime then terms
        ``ctx``, which blocks until lingering messages left (at most the LINGER)."""
        for _url, sock in self.dealers.values():
            sock.close(0)
        self.dealers.clear()
        for lingering in (self.router, self.pub):
            if lingering is not None:
                lingering.close()


def _events(sock: zmq.Socket[bytes]) -> int:
    return int(sock.getsockopt(zmq.EVENTS))


SLOW_PUMP = 0.1  # seconds: a round this long delays heartbeats noticeably (warned about)
SLOW_STORAGE = 0.15  # seconds: a write this slow holds acknowledgements near election timeouts


class PollInstallPath:
    """The compaction watcher's request to the storage worker (it never runs beside a write)."""


class RuntimePeer:
    """What a runtime's peer (``zmqraft.asyncio.ZmqRaft``, ``zmqraft.gevent.ZmqRaft``) is made
    of, whatever it waits with: the assembled core, its sockets, what its events mean, its
    storage executor and web monitor.  A runtime adds how it waits: ``_watch``/``_unwatch``
    (wake the pump when a socket may have input) and ``_store``/``_apply`` (hand a job to
    its storage / state-machine worker)."""

    def __init__(
        self,
        peer: AssembledPeer,
        log: logging.Logger,
        *,
        listeners: Mapping[str, Callable[..., Any] | None] | None = None,
        dealer_hwm: int | None = None,
    ) -> None:
        self.peer = peer
        self.server = peer.server
        self.state_machine = peer.state_machine
        self.listeners = dict(listeners if listeners is not None else peer.options.get("listeners") or {})
        self.label: str | None = peer.options.get("label")
        self.error: BaseException | None = None
        opts = peer.raft_options
        # The original sends one RPC at a time on a DEALER with SNDHWM 1; the core pipelines
        # up to max_inflight_messages AppendEntries per follower, so the DEALER must hold that
        # many (a message over the limit is dropped and retransmitted by the core).
        self.dealer_hwm = dealer_hwm or opts.max_inflight_messages + 2
        self._executor = StorageExecutor(peer.log, peer.persistence)
        self.sockets = PeerSockets(
            self.server.id,
            dealer_hwm=self.dealer_hwm,
            reconnect_ivl=opts.rpc_timeout,
            watch=self._watch,
            unwatch=self._unwatch,
        )
        self._events = PeerEvents(
            self.server, self.state_machine, peer.log, self.listeners, self.sockets.connect_peers, log
        )
        self.monitor = web_monitor(self._events, peer.options)  # served by the runtime, if any
        self._log = log
        self._watching = peer.install_path is not None  # the compaction install path

    @property
    def watch_interval(self) -> float:
        """Seconds between looks at the compaction install path."""
        return int(self.peer.options["data"]["compact"]["watchInterval"]) / 1000.0

    def _write(self, job: Job) -> None:
        """Run a storage job (in a worker thread); a slow disk is warned about."""
        began = time.monotonic()
        self._executor.run(job)
        took = time.monotonic() - began
        if took > SLOW_STORAGE:
            self._log.warning("%s: a storage job took %.0f ms (slow disk?)", self.id, took * 1000)

    def _poll_install_path(self) -> SnapshotMeta | Exception | None:
        """Install a snapshot dropped at the install path, if any (in a worker thread)."""
        try:
            meta: SnapshotMeta | None = self.peer.log.poll_install_path()  # type: ignore[attr-defined]
        except Exception as exc:
            return exc
        return meta

    def _polled(self, result: SnapshotMeta | Exception | None) -> None:
        """Tell the core what ``_poll_install_path`` did (on the loop); a refused snapshot
        stops the watching."""
        if isinstance(result, Exception):
            self._log.error("%s: compaction snapshot refused, no longer watching: %s", self.id, result)
            self._watching = False
        elif result is not None:
            self._log.info("%s: compaction snapshot installed: %s", self.id, result)
            self.server.snapshot_installed(time.monotonic())

    @property
    def id(self) -> str:
        return self.server.id

    @property
    def url(self) -> str:
        """The address clients and peers reach this peer at."""
        return self.peer.url or self.sockets.bound_url or self.peer.router_bind

    @property
    def secret(self) -> bytes:
        return str(self.peer.options.get("secret") or "").encode()

    @property
    def dropped_sends(self) -> int:
        """Messages a full queue (or a peer without a connection) dropped."""
        return self.sockets.dropped_sends

    def _open_sockets(self) -> None:
        self.sockets.open(self.peer.router_bind, self.state_machine.broadcast_bind, self.server.node.config)

    def _round(self) -> None:
        """Drain every socket, feed the core, drain its outputs; until nothing moves (DESIGN.md
        property 5).  Reading ``EVENTS`` at the end also re-arms ZeroMQ's edge-triggered FD."""
        sockets = self.sockets
        began = time.monotonic()
        while True:
            received = sockets.receive(self.server)
            sent = self._drain(time.monotonic(), time.time())
            if not received and not sent and not sockets.readable():
                break
        busy = time.monotonic() - began
        if busy > SLOW_PUMP:
            self._log.warning("%s: the event loop was busy for %.0f ms in one round", self.id, busy * 1000)

    def _drain(self, now: float, wall: float) -> int:
        """Jobs, then events, then frames; returns the messages sent."""
        self._events.drain(now, wall, self._store, self._apply)
        return self._send_outputs()

    def _send_outputs(self) -> int:
        return self.sockets.send(self.server)

    def _watch(self, sock: zmq.Socket[bytes]) -> None:
        raise NotImplementedError

    def _unwatch(self, sock: zmq.Socket[bytes]) -> None:
        raise NotImplementedError

    def _close_files(self) -> None:
        """Close the sockets (the ROUTER and PUB keep their LINGER), then the state machine,
        the log and the persistence.  The runtime then terms ``sockets.ctx`` off its loop."""
        self.sockets.close()
        try:
            self.state_machine.close()
        finally:
            self.peer.log.close()
            close = getattr(self.peer.persistence, "close", None)
            if close is not None:
                close()

    def _store(self, job: Job) -> None:
        raise NotImplementedError

    def _apply(self, job: ApplyJob) -> None:
        raise NotImplementedError


# ---- the command line ---------------------------------------------------------------------


def server_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """``prog [-c FILE] [-b URL] [-p URL] [-w URL] [--ns NS] [-v] [id]``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("-c", "--config", metavar="FILE", help="config file: yaml, json, hjson, toml or py")
    p.add_argument("-b", "--bind", metavar="URL", help="ROUTER bind address (router.bind)")
    p.add_argument("-p", "--pub", metavar="URL", help="broadcast state machine url (broadcast.url)")
    p.add_argument("-w", "--www", metavar="URL", help="web monitor announced host and port")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logging of every zmqraft module")
    p.add_argument("id", nargs="?", help="this peer's id (overrides the config's id)")
    return p


def setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if verbose:
        logging.getLogger("zmqraft").setLevel(logging.DEBUG)


def run_server(
    args: argparse.Namespace, build: Callable[[dict[str, Any]], T], serve: Callable[[T], int]
) -> int:
    """The command line's life, the same for every runtime: logging, the options, ``build``
    (an error is a RAFT INIT ERROR, status 1), ``serve`` until closed, "bye bye"."""
    setup_logging(args.verbose)
    try:
        raft = build(server_options(args))
    except Exception:
        init_error()
        return 1
    status = serve(raft)
    print("bye bye", flush=True)
    return status


def init_error() -> None:
    """The peer could not start (the original's banner, then the traceback)."""
    print("RAFT INIT ERROR", file=sys.stderr)
    traceback.print_exc()


def exit_status(error: BaseException | None) -> int:
    """The exit status of a peer that closed, after ``error`` if any (shown as a RAFT ERROR)."""
    if error is None:
        return 0
    print("RAFT ERROR", file=sys.stderr)
    traceback.print_exception(error)
    return 1


def _www(options: dict[str, Any], url: str) -> None:
    parts = urlsplit(url if "//" in url else f"//{url}")
    web = options["webmonitor"]
    if parts.hostname:
        web["host"] = parts.hostname
    if parts.port:
        web["port"] = parts.port


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """Config file, then the id, then the peer's own ``pub``/``www``, then -b/-p/-w."""
    options = read_config(args.config, args.ns)
    if args.id:
        options["id"] = args.id
    if not options.get("id"):
        peers = options.get("peers") or []
        if len(peers) == 1:  # the default single peer ("local")
            only = peers[0]
            options["id"] = (
                only.get("id") if isinstance(only, dict) else only[0] if isinstance(only, list) else only
            )
    entry = peer_entry(options, str(options.get("id")))
    if entry is not None:
        if entry.get("pub"):
            options["broadcast"]["url"] = entry["pub"]
        if entry.get("www"):
            _www(options, str(entry["www"]))
    if args.bind:
        options["router"]["bind"] = args.bind
    if args.pub:
        options["broadcast"]["url"] = args.pub
    if args.www:
        _www(options, args.www)
    return options


__all__ = [
    "CLOSING_SIGNALS",
    "PeerSockets",
    "PollInstallPath",
    "RuntimePeer",
    "exit_status",
    "init_error",
    "run_server",
    "send",
    "send_frames",
    "server_options",
    "server_parser",
    "setup_logging",
    "web_monitor",
    "webmonitor_page",
    "webmonitor_ssl",
]


# ---- the web monitor ----------------------------------------------------------------------


def web_monitor(events: PeerEvents, options: Mapping[str, Any]) -> WebMonitor | None:
    """The peer's web monitor when ``webmonitor.enable`` (wired into ``events``: it answers
    ``W`` requests); a runtime serves it over HTTP."""
    address = web_address(options)
    if address is None:
        return None
    monitor = WebMonitor(events.server, address, label=options.get("label"), page=webmonitor_page())
    events.monitor = monitor
    return monitor


def webmonitor_page() -> bytes:
    """The web monitor's page, packaged with raft-core (``zmqraft/core/static``)."""
    return importlib.resources.files("zmqraft.core").joinpath("static/webmonitor.html").read_bytes()


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
