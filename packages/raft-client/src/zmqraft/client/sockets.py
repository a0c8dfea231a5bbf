"""ZeroMQ plumbing: non-blocking sends, and the sockets behind a sans-IO endpoint's channels.

Nothing here decides anything; it moves frames between pyzmq sockets and whatever sans-IO
object feeds on them.  The clients use ``send``; both server runtimes (``zmqraft.asyncio``,
``zmqraft.gevent``) use ``PeerSockets`` and ``pump`` around the core's peer driver
(``zmqraft.core.driver``), each only saying how it watches a socket for input.  It lives in
this package because the clients need it too and every runtime already depends on it; the
peer itself (what a round does, in what order) is in the core.

A peer has a ROUTER (clients' and other peers' requests, and our replies), one DEALER per
other peer (our RPCs to it, its replies) and optionally a PUB (the broadcast state
machine).  ZeroMQ signals readiness edge-triggered, so ``pump`` drains each socket that
may hold input with non-blocking receives, feeds the whole batch in, acts on the round's
outputs once, and repeats until a round moves nothing and no socket shows input (reading
``EVENTS`` re-arms the edge after our own sends).  DESIGN.md property 5: awaiting each message costs about
2.6 times the rate of draining.
"""

from __future__ import annotations

import _thread
import logging
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

import zmq
from zmqraft.core.curve_policy import ZAP_DOMAIN, ZAP_ENDPOINT, CurvePolicy, CurveSetup

log = logging.getLogger("zmqraft.sockets")

RECV_BATCH = 1000  # messages taken from one socket before the outputs are acted on
ROUTER_LINGER_MS = 2000  # replies already queued still leave after close
PUB_LINGER_MS = 2000
SLOW_ROUND = 0.1  # seconds: a round this long delays heartbeats noticeably (warned about)
# Room for a message part's own headers around the data the options bound (an entry's 20
# bytes, a request id, msgpack lengths): generous, it only has to stop the absurd.
FRAME_OVERHEAD = 64 << 10

Socket = zmq.Socket[bytes]
Watch = Callable[[Socket], None]

# Plain-int flags: pyzmq's send_multipart combines its enum flags once per frame, which costs
# three times the send itself for an AppendEntries of ten entries.
T = TypeVar("T")
_NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.SNDMORE) | _NOBLOCK
# pyzmq's ``Socket.send`` is a Python wrapper (for the ``routing_id`` and ``group`` keywords
# of draft sockets) around its backend's; calling the backend's directly costs a third
# (0.19 against 0.57 µs a frame here), and every frame of the hot path is sent through it
_send_frame: Callable[[Any, Any, int], Any] = zmq.backend.Socket.send
_EVENTS = int(zmq.EVENTS)
HANDSHAKE_FAILED = int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
_POLLIN = int(zmq.POLLIN)

_monotonic = time.monotonic
_wall = time.time


class Trace:
    """With ``ZMQRAFT_TRACE=PREFIX`` in the environment, every message a peer reads or sends
    and every write it does on its loop is written to ``PREFIX.<pid>`` as ``<monotonic ns>
    <event> <what>`` lines (``bench/bench_cluster.py --trace`` reads them back into the
    latency budget of one update).  Off otherwise: one attribute test per message."""

    def __init__(self, prefix: str | None) -> None:
        self.file = None if not prefix else open(f"{prefix}.{os.getpid()}", "a", buffering=1)  # noqa: SIM115

    def __call__(self, event: str, what: bytes | str) -> None:
        assert self.file is not None
        self.file.write(f"{time.monotonic_ns()} {event} {what!r}\n")


trace = Trace(os.environ.get("ZMQRAFT_TRACE"))
_tracing = trace.file is not None


def send(sock: Socket, frames: Sequence[bytes]) -> None:
    """Send a multipart message without blocking: a whole message or nothing (a DEALER
    raises ``zmq.Again`` before the first frame leaves; a ROUTER or PUB drops instead)."""
    send_frame = _send_frame
    for frame in frames[:-1]:
        send_frame(sock, frame, _MORE)
    send_frame(sock, frames[-1], _NOBLOCK)


def receive(sock: Socket) -> list[bytes]:
    """One multipart message without blocking (raises ``zmq.Again`` when there is none).
    ``recv(copy=False)`` and ``Frame.more`` cost about two thirds of ``recv_multipart``, which
    builds an enum for every frame's RCVMORE."""
    frame = sock.recv(_NOBLOCK, copy=False)
    frames = [frame.bytes]
    while frame.more:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return frames


def has_input(sock: Socket) -> bool:
    """Does ``sock`` hold input?  (Reading EVENTS also re-arms the edge-triggered FD.)"""
    return bool(int(sock.getsockopt(_EVENTS)) & _POLLIN)


def _read(sock: Socket, suspects: set[Socket], read: Callable[[Socket], T]) -> list[T]:
    """``sock``'s waiting messages, each as ``read`` takes it, at most ``RECV_BATCH`` (then
    it stays suspect).  A second message is looked for with an EVENTS read (~1 µs) and only
    then by receiving until ``zmq.Again`` (~2.75 µs a raise): most wake-ups bring one."""
    if not has_input(sock):
        return []
    batch = [read(sock)]
    if has_input(sock):
        while len(batch) < RECV_BATCH:
            try:
                batch.append(read(sock))
            except zmq.Again:
                break
        else:
            suspects.add(sock)
    return batch


def _drain(sock: Socket, feed: Callable[[Any, list[bytes]], None], fed: Any, suspects: set[Socket]) -> int:
    """Feed ``sock``'s waiting messages one by one (``_read``)."""
    batch = _read(sock, suspects, receive)
    for frames in batch:
        feed(fed, frames)
    return len(batch)


def _feed_router(fed: Fed, batch: list[list[bytes]]) -> None:
    """A ROUTER's messages as one batch (its new updates become one log append), stamped
    with the time after the last was read: never earlier than any of them arrived, however
    long the process was stopped in the middle."""
    if batch:
        if _tracing:
            for frames in batch:
                trace("in", frames[2] if len(frames) > 2 else b"")
        fed.receive_router_batch(batch, _monotonic(), _wall())


def _receive_with_user(sock: Socket) -> tuple[str | None, list[bytes]]:
    """``receive``, and the User-Id our ZAP answer gave the sender's connection (CurveZMQ)."""
    frame = sock.recv(_NOBLOCK, copy=False)
    try:
        user: str | None = str(frame.get("User-Id"))
    except zmq.ZMQError:  # no ZAP answer gave this connection a User-Id
        user = None
    frames = [frame.bytes]
    while frame.more:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame.bytes)
    return user, frames


class Fed(Protocol):
    """What ``PeerSockets.receive`` feeds (the core's ``PeerDriver``)."""

    def receive_router_batch(self, messages: list[list[bytes]], now: float, wall: float) -> None: ...

    def receive_peer(self, peer_id: str, frames: list[bytes], now: float, wall: float) -> None: ...

    def broadcast_subscribed(self, present: bool, now: float) -> None: ...


class Frames(Protocol):
    """Frames per socket kind (the core's ``driver.Outputs``)."""

    @property
    def router(self) -> list[tuple[bytes, list[bytes]]]: ...

    @property
    def peers(self) -> list[tuple[str, list[bytes]]]: ...

    @property
    def pub(self) -> list[list[bytes]]: ...


def inbound_limits(max_log_entry_data_size: int, peer_msg_data_size: int) -> tuple[int, int]:
    """``ZMQ_MAXMSGSIZE`` of a peer's ROUTER and of its DEALERs, from its options: the ROUTER
    takes updates and AppendEntries (one entry of up to maxLogEntryDataSize in a part) and
    snapshot chunks (peerMsgDataSize); the DEALERs only other peers' short replies.  libzmq
    drops a connection that sends a larger part before Python reads a byte of it, so one
    huge message can neither stall the loop past an election timeout nor bloat the peer."""
    router = max(max_log_entry_data_size, peer_msg_data_size) + FRAME_OVERHEAD
    return router, peer_msg_data_size + FRAME_OVERHEAD


class PeerSockets:
    """The sockets of one peer.  ``watch(sock)`` / ``unwatch(sock)`` are the runtime's: start
    and stop waking its pump when ``sock`` may have input (called for the ROUTER and every
    DEALER; an unwatch always comes before the socket closes); when the FD of a watched
    socket signals, the runtime calls ``readable(sock)`` before it pumps.  ``max_message_sizes``: the
    ROUTER's and the DEALERs' ``ZMQ_MAXMSGSIZE`` (``inbound_limits``; None: no limit)."""

    def __init__(
        self,
        peer_id: str,
        *,
        dealer_hwm: int,
        reconnect_ivl: float,
        watch: Watch,
        unwatch: Watch,
        max_message_sizes: tuple[int, int] | None = None,
        curve: CurvePolicy | None = None,
    ) -> None:
        self.id = peer_id
        self.curve = curve
        self.zap: Socket | None = None  # the ZAP handler's socket (CurveZMQ on)
        self.monitors: list[Socket] = []  # handshake failures of the ROUTER and PUB (CurveZMQ on)
        self._unkeyed: set[str] = set()  # peers without a public key (logged once each)
        self.max_message_sizes = max_message_sizes
        self.dealer_hwm = dealer_hwm
        self.reconnect_ivl_ms = max(1, int(reconnect_ivl * 1000))
        self.watch = watch
        self.unwatch = unwatch
        self.ctx: zmq.Context[Socket] | None = None
        self.router: Socket | None = None
        self.pub: Socket | None = None  # an XPUB
        self._topics: set[bytes] = set()  # what the XPUB's subscribers subscribed to
        self._subscribed: bool | None = None  # what the driver was told (None: nothing yet)
        self.dealers: dict[str, tuple[str, Socket]] = {}  # peer id -> (url, socket)
        self.bound_url: str | None = None
        self.dropped_sends = 0
        self._suspects: set[Socket] = set()  # sockets whose EVENTS must be read: see ``receive``

    @classmethod
    def of(cls, peer: Any, *, watch: Watch, unwatch: Watch, dealer_hwm: int | None = None) -> PeerSockets:
        """The sockets of an assembled peer (``zmqraft.core.builder.AssembledPeer``): its
        DEALERs hold ``peer.dealer_hwm`` messages unless told otherwise and reconnect every
        ``rpc_timeout``, as the original's; inbound parts are bounded by its options."""
        options = peer.raft_options
        setup: CurveSetup | None = getattr(peer, "curve", None)
        return cls(
            peer.id,
            dealer_hwm=dealer_hwm or peer.dealer_hwm,
            reconnect_ivl=options.rpc_timeout,
            watch=watch,
            unwatch=unwatch,
            max_message_sizes=inbound_limits(options.max_log_entry_data_size, options.peer_msg_data_size),
            curve=None if setup is None else CurvePolicy(setup, peer.server.metrics),
        )

    def url_of(self, peer: Any) -> str:
        """The address clients and peers reach ``peer`` at: its configured url, else the
        address its ROUTER bound (e.g. an ephemeral port), else its bind option."""
        return str(peer.url or self.bound_url or peer.router_bind)

    def open(self, router_bind: str, pub_bind: str | None, others: dict[str, str]) -> None:
        """Bind the ROUTER (and the PUB), connect to ``others`` (peer id -> url)."""
        ctx = self.ctx = zmq.Context()
        if self.curve is not None:
            # ZAP (RFC 27) must be bound in this context before a CURVE server accepts a
            # connection: libzmq lets a handshake through unchecked when no handler is bound
            zap = self.zap = ctx.socket(zmq.ROUTER)
            zap.setsockopt(zmq.LINGER, 0)
            zap.bind(ZAP_ENDPOINT)
            self._suspects.add(zap)
            self.watch(zap)
            self.receive = self._receive_curve  # type: ignore[method-assign]
        router = self.router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, ROUTER_LINGER_MS)
        if self.max_message_sizes is not None:
            router.setsockopt(zmq.MAXMSGSIZE, self.max_message_sizes[0])
        self._curve_server(router)
        _bind(router, router_bind, "this peer's ROUTER")
        self.bound_url = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._suspects.add(router)
        self.watch(router)
        if pub_bind is not None:
            # an XPUB (a SUB sees a PUB): it hears of subscriptions, so that a leader nobody
            # listens to publishes nothing (every applied entry was a frame to send)
            pub = self.pub = ctx.socket(zmq.XPUB)
            pub.setsockopt(zmq.LINGER, PUB_LINGER_MS)
            self._curve_server(pub)
            _bind(pub, pub_bind, "the broadcast PUB")
            self._suspects.add(pub)
            self.watch(pub)
        if self.curve is not None:
            # a handshake that fails before ZAP is asked (a client with a wrong server key
            # for this peer) is seen only as a socket event: logged and counted too
            for server in (router, self.pub):
                if server is not None:
                    monitor = server.get_monitor_socket(HANDSHAKE_FAILED)
                    self.monitors.append(monitor)
                    self._suspects.add(monitor)
                    self.watch(monitor)
        self.connect(others)

    def _curve_server(self, sock: Socket) -> None:
        """CurveZMQ on: ``sock`` is a CURVE server with this peer's key pair, its
        connections authorized by our ZAP handler (``ZAP_DOMAIN``)."""
        if self.curve is None:
            return
        setup = self.curve.setup
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, setup.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, setup.public)
        sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())

    def _curve_client(self, sock: Socket, peer_id: str) -> bool:
        """CurveZMQ on: make ``sock`` a CURVE client of ``peer_id``; False when that peer has
        no public key (then nothing connects to it: never in plaintext)."""
        if self.curve is None:
            return True
        setup = self.curve.setup
        server_key = setup.peer_key(peer_id)
        if server_key is None:
            if peer_id not in self._unkeyed:
                self._unkeyed.add(peer_id)
                log.error(
                    "%s: no CurveZMQ public key for peer %s (%s/%s.key): not connecting to it; "
                    "copy its certificate there (a curve cluster cannot hold a peer without one)",
                    self.id,
                    peer_id,
                    setup.keys_dir or "curve.keys",
                    peer_id,
                )
            return False
        self._unkeyed.discard(peer_id)
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, setup.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, setup.secret)
        return True

    def connect(self, others: dict[str, str]) -> None:
        """One DEALER per other peer (peer id -> url), reconnected when its url changed."""
        for peer_id, (url, sock) in list(self.dealers.items()):
            if others.get(peer_id) != url:
                log.debug("%s: disconnect from %s at %s", self.id, peer_id, url)
                self.unwatch(sock)
                self._suspects.discard(sock)
                sock.close(0)
                del self.dealers[peer_id]
        for peer_id, url in others.items():
            if peer_id in self.dealers or self.ctx is None:
                continue
            sock = self.ctx.socket(zmq.DEALER)
            if not self._curve_client(sock, peer_id):
                sock.close(0)
                continue
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, self.dealer_hwm)
            sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ivl_ms)
            if self.max_message_sizes is not None:
                sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_sizes[1])
            sock.connect(url)
            self.dealers[peer_id] = (url, sock)
            self._suspects.add(sock)
            self.watch(sock)
            log.debug("%s: connected to %s at %s", self.id, peer_id, url)

    def readable(self, sock: Socket) -> None:
        """The runtime saw ``sock``'s FD signal: its EVENTS must be read at the next pass."""
        self._suspects.add(sock)

    def receive(self, fed: Fed) -> int:
        """Feed what waits on the sockets (a bounded batch per socket), each message with the
        time it is read at (the ROUTER's batch with the time after its last): if this process
        was stopped (SIGSTOP, a stalled VM) in the middle of a batch, what arrived meanwhile
        must not be stamped with the time it stopped at, or a follower would re-arm its
        election timer in the past and campaign against the leader it just heard from.

        Only *suspect* sockets are looked at: those whose FD signalled (``readable``), that
        we sent on (a send may consume the notice of new input), or that were left with
        input.  Any other socket has not been touched since its EVENTS showed no input, so
        its FD is still unsignalled, or still signalled and about to wake the runtime: an
        EVENTS read of every socket on every pass was the leader's largest own cost at one
        update in flight."""
        suspects = self._suspects
        if not suspects:
            return 0
        received = self._receive_subscriptions(fed) if self.pub in suspects else 0
        router = self.router
        assert router is not None
        if router in suspects:
            suspects.discard(router)
            batch = _read(router, suspects, receive)
            _feed_router(fed, batch)
            received = len(batch)
        return received + self._receive_dealers(fed)

    def _receive_dealers(self, fed: Fed) -> int:
        """The suspect DEALERs' replies (see ``receive``)."""
        suspects = self._suspects
        received = 0
        if suspects:
            for peer_id, (_url, sock) in list(self.dealers.items()):
                if sock in suspects:
                    suspects.discard(sock)
                    received += _drain(sock, partial(self._feed_peer, peer_id), fed, suspects)
        return received

    def _receive_subscriptions(self, fed: Fed) -> int:
        """The XPUB's (un)subscription messages (``\x01``/``\x00`` + topic; libzmq passes a
        topic's first subscription and its last unsubscription, also when a subscriber's
        connection closes); the driver hears whenever anyone or no one is left (the first
        pass tells it too: nobody yet)."""
        pub = self.pub
        assert pub is not None
        self._suspects.discard(pub)
        messages = _read(pub, self._suspects, receive)
        topics = self._topics
        for frames in messages:
            kind, topic = frames[0][:1], frames[0][1:]
            if kind == b"\x01":
                topics.add(topic)
            elif kind == b"\x00":
                topics.discard(topic)
        if bool(topics) is not self._subscribed:
            self._subscribed = bool(topics)
            fed.broadcast_subscribed(self._subscribed, _monotonic())
        return len(messages)

    @staticmethod
    def _feed_peer(peer_id: str, fed: Fed, frames: list[bytes]) -> None:
        if _tracing:
            trace("reply", peer_id)
        fed.receive_peer(peer_id, frames, _monotonic(), _wall())

    def _receive_curve(self, fed: Fed) -> int:
        """``receive`` with CurveZMQ on (chosen at ``open``; the plaintext ``receive`` is not
        touched): answer the waiting ZAP requests, then read the ROUTER keeping each message's
        User-Id (set by our ZAP answer) and let the policy drop peer RPCs sent with a client
        key; the DEALERs as ``receive`` does (the same suspects)."""
        suspects = self._suspects
        if not suspects:
            return 0
        received = self._receive_subscriptions(fed) if self.pub in suspects else 0
        zap = self.zap
        if zap in suspects:
            assert zap is not None
            suspects.discard(zap)
            received += _drain(zap, self._answer_zap, fed, suspects)
        for monitor in self.monitors:
            if monitor in suspects:
                suspects.discard(monitor)
                received += _drain(monitor, self._handshake_event, fed, suspects)
        router = self.router
        if router in suspects:
            assert router is not None
            suspects.discard(router)
            read = _read(router, suspects, _receive_with_user)
            _feed_router(fed, [frames for user, frames in read if self._may_deliver(user, frames)])
            received += len(read)
        return received + self._receive_dealers(fed)

    def _answer_zap(self, _fed: Fed, request: list[bytes]) -> None:
        """One ZAP request (after its envelope: the requester's routing id, an empty frame)."""
        assert self.curve is not None and self.zap is not None
        reply = self.curve.authorize(request[2:]) if len(request) > 2 else None
        if reply is None:
            return
        self._suspects.add(self.zap)  # a send may consume the notice of new input
        try:
            send(self.zap, [request[0], b"", *reply])
        except zmq.ZMQError as exc:  # the handshake's pipe went: it failed anyway
            log.debug("%s: ZAP reply not sent: %s", self.id, exc)

    def _handshake_event(self, _fed: Fed, event: list[bytes]) -> None:
        """A socket monitor's HANDSHAKE_FAILED_PROTOCOL event: ``[event id (2 bytes) + value
        (4), endpoint]``."""
        assert self.curve is not None
        if len(event) >= 2 and len(event[0]) >= 6:
            value = int.from_bytes(event[0][2:6], "little")
            self.curve.handshake_failed(event[1].decode("utf-8", "replace"), value)

    def _may_deliver(self, user: str | None, frames: list[bytes]) -> bool:
        """The CURVE policy's word on a ROUTER message (counted and logged if dropped)."""
        policy = self.curve
        assert policy is not None
        msg_type = frames[2] if len(frames) > 2 else b""
        if policy.may_deliver(user, msg_type, frames[4] if len(frames) > 4 else b""):
            return True
        policy.dropped(user, msg_type, frames[0])
        return False

    def send(self, out: Frames) -> int:
        """Send a round's frames; returns how many left.  A full queue, or a peer without a
        DEALER, drops the message (the core retransmits where it matters)."""
        sent = dropped = 0
        router = self.router
        suspects = self._suspects
        try:
            if router is not None and out.router:
                suspects.add(router)
                for address, frames in out.router:
                    if _tracing:
                        trace("answer", b"")
                    try:
                        _send_frame(router, address, _MORE)
                        send(router, frames)
                        sent += 1
                    except zmq.Again:
                        dropped += 1
            dealers = self.dealers
            for peer_id, frames in out.peers:
                if _tracing:
                    trace("rpc", frames[1] + (b"+" if len(frames) > 8 else b""))
                dealer = dealers.get(peer_id)
                try:
                    if dealer is None:
                        dropped += 1
                    else:
                        suspects.add(dealer[1])
                        send(dealer[1], frames)
                        sent += 1
                except zmq.Again:
                    dropped += 1
            if self.pub is not None and out.pub:
                suspects.add(self.pub)  # a send may consume the notice of a subscription
                for frames in out.pub:
                    send(self.pub, frames)
                    sent += 1
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:  # closed during shutdown
                raise
        self.dropped_sends += dropped
        return sent

    def stop_reading(self) -> None:
        for sock in [
            self.zap,
            *self.monitors,
            self.router,
            self.pub,
            *(sock for _url, sock in self.dealers.values()),
        ]:
            if sock is not None and not sock.closed:
                self.unwatch(sock)

    def close(self) -> None:
        """Close the sockets (the ROUTER and PUB keep their LINGER); the runtime then terms
        ``ctx``, which blocks until lingering messages left (at most the LINGER)."""
        for _url, sock in self.dealers.values():
            sock.close(0)
        self.dealers.clear()
        for server in (self.router, self.pub):
            if self.monitors and server is not None and not server.closed:
                server.disable_monitor()
        for monitor in self.monitors:
            monitor.close(0)
        self.monitors.clear()
        for lingering in (self.router, self.pub):
            if lingering is not None:
                lingering.close()
        if self.zap is not None:
            self.zap.close(0)


class Driven(Fed, Protocol):
    """What ``pump`` drives (the core's ``PeerDriver``)."""

    @property
    def id(self) -> str: ...

    def round(self, now: float, wall: float) -> Any: ...

    def next_deadline(self) -> float | None: ...

    def complete(self, work: Any, outcome: Any, now: float, wall: float) -> None: ...

    def loop_round(self, seconds: float) -> None: ...


_PENDING: Any = object()  # no outcome yet


class Handover:
    """Hands the outcome of work the loop waits for (``Work.wait``: a leader's quick write)
    from the thread that ran it to the loop's thread, if the loop still waits for it; else
    the runner reports it the runtime's usual way.  The same for both runtimes: only the
    lock differs (gevent passes the unpatched ``allocate_lock``, so that waiting blocks the
    hub's thread itself instead of switching greenlets).

    The loop calls ``expect(work)`` before ``work`` can start, then ``wait(work, timeout)``
    once; the runner calls ``deliver(work, outcome)`` when it ran, and reports the outcome
    itself when that returns False (the wait gave up first)."""

    def __init__(self, allocate_lock: Callable[[], Any] = _thread.allocate_lock) -> None:
        self._allocate_lock = allocate_lock
        self._guard = allocate_lock()
        self._work: Any = None  # the work the loop will wait for, if any
        self._ready: Any = None  # released by ``deliver``
        self._outcome: Any = _PENDING

    def expect(self, work: Any) -> None:
        ready = self._allocate_lock()
        ready.acquire()
        with self._guard:
            self._work, self._ready, self._outcome = work, ready, _PENDING

    def deliver(self, work: Any, outcome: Any) -> bool:
        """In the runner's thread: True if the loop takes ``outcome``."""
        with self._guard:
            if self._work is not work:
                return False
            self._outcome = outcome
            self._ready.release()
            return True

    def wait(self, work: Any, timeout: float) -> tuple[bool, Any]:
        """Block (the GIL released) until ``work`` was delivered, at most ``timeout``
        seconds: ``(True, outcome)``, or ``(False, None)`` and the runner reports it."""
        ready = self._ready
        if self._work is not work or ready is None:
            return False, None
        if timeout > 0:
            ready.acquire(True, timeout)
        with self._guard:
            outcome, self._outcome = self._outcome, _PENDING
            self._work = self._ready = None
        return (False, None) if outcome is _PENDING else (True, outcome)


def pump(
    sockets: PeerSockets,
    driver: Driven,
    start: Callable[[Any], None],
    wait: Callable[[Any, float], bool],
    *,
    input_only: bool = False,
) -> None:
    """One wake-up: drain the sockets into ``driver``, act on its round (``start`` its work,
    connect DEALERs to a new configuration, send; then run the work it marks ``inline``, and
    ``start`` and ``wait`` for the work that may be waited for), until nothing moves.
    ``wait(work, timeout)`` blocks the loop until ``work`` (started, so running in its lane)
    is complete and reported to the driver, at most ``timeout`` seconds (maybe 0), and says
    whether it is; if not, it completes later the usual way.  It is called once for every
    such work started.  ``input_only``: woken by socket readiness alone (not a timer or
    finished work), so a wake-up that finds no input skips the round."""
    began = _monotonic()
    changed = not input_only  # a timer or finished work: the driver has something for a round
    while True:
        received = sockets.receive(driver)
        if not received and not changed:
            # nothing came since the last round and nothing else changed the driver: no round
            # (woken by our own sends changing a socket's EVENTS, or the pass after a round);
            # reading EVENTS re-armed ZeroMQ's edge-triggered FDs
            break
        out = driver.round(_monotonic(), _wall())
        if _tracing:
            trace("round", f"{received} in, {len(out.work)} work")
        inline = []
        later: list[Any] = []  # from the first work to wait for on, in order
        for work in out.work:
            if work.inline:
                inline.append(work)
            elif work.wait or later:
                later.append(work)
            else:
                start(work)
        if out.connect is not None:
            sockets.connect(dict(out.connect.others(driver.id)))
        sent = sockets.send(out)
        for work in later:  # after the sends: its lane's Python would hold up the AppendEntries
            start(work)
        for work in inline:  # a follower's write: its acknowledgement leaves in the next pass
            if _tracing:
                trace("write", "start")
            outcome = work.run()
            if _tracing:
                trace("write", "end")
            driver.complete(work, outcome, _monotonic(), _wall())
        completed = bool(inline)
        for work in later:  # the leader's quick write: never past the next timer
            if not work.wait:
                continue
            deadline = driver.next_deadline()
            timeout = work.wait if deadline is None else min(work.wait, deadline - _monotonic())
            if _tracing:
                trace("wait", "start")
            done = wait(work, max(timeout, 0.0))  # (0: the lane reports it the usual way)
            completed = completed or done
            if _tracing:
                trace("wait", "end" if done else "gave up")
        changed = completed  # completed work: its acknowledgements and commits need a round
        if not sent and not received and not completed:
            break  # quiet, and the receive above already re-armed the FDs
    busy = _monotonic() - began
    driver.loop_round(busy)
    if busy > SLOW_ROUND:
        log.warning("%s: the event loop was busy for %.0f ms in one round", driver.id, busy * 1000)


def _bind(sock: zmq.Socket[bytes], url: str, option: str) -> None:
    """Bind, or an OSError naming the address and the option (a taken port is one line)."""
    try:
        sock.bind(url)
    except zmq.ZMQError as err:
        raise OSError(err.errno, err.strerror, f"{url} ({option})") from err


__all__ = ["PeerSockets", "has_input", "inbound_limits", "pump", "receive", "send"]
