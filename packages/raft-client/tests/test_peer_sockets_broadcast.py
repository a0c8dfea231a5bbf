"""The broadcast socket of ``PeerSockets`` is an XPUB: the driver hears when the first
subscriber comes and when the last one goes (real sockets, no peer around them)."""

from __future__ import annotations

import time

import pytest
import zmq
from zmqraft.client.sockets import PeerSockets

pytestmark = pytest.mark.timeout(30)


class Fed:
    def __init__(self) -> None:
        self.subscribed: list[bool] = []

    def receive_router_batch(self, messages: list[list[bytes]], now: float, wall: float) -> None:
        pass

    def receive_peer(self, peer_id: str, frames: list[bytes], now: float, wall: float) -> None:
        pass

    def broadcast_subscribed(self, present: bool, now: float) -> None:
        self.subscribed.append(present)


def pump_until(sockets: PeerSockets, fed: Fed, want: list[bool], seconds: float = 10.0) -> None:
    """Read as the runtime does, waking on the sockets' FDs, until ``fed`` heard ``want``."""
    assert sockets.pub is not None and sockets.router is not None
    deadline = time.monotonic() + seconds
    while fed.subscribed != want and time.monotonic() < deadline:
        sockets.readable(sockets.pub)
        sockets.receive(fed)
        zmq.select([sockets.pub], [], [], 0.05)
    assert fed.subscribed == want


def test_the_driver_hears_of_the_first_subscriber_and_of_the_last_leaving() -> None:
    sockets = PeerSockets("1", dealer_hwm=4, reconnect_ivl=0.1, watch=lambda s: None, unwatch=lambda s: None)
    sockets.open("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", {})
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        assert sockets.pub is not None and sockets.pub.type == zmq.XPUB
        url = sockets.pub.getsockopt_string(zmq.LAST_ENDPOINT)
        fed = Fed()
        pump_until(sockets, fed, [False])  # the first pass: nobody yet
        first, second = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
        for sub in (first, second):
            sub.linger = 0
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(url)
        pump_until(sockets, fed, [False, True])
        first.close()  # one subscriber is left: nothing to tell
        second.setsockopt(zmq.UNSUBSCRIBE, b"")
        pump_until(sockets, fed, [False, True, False])
        second.setsockopt(zmq.SUBSCRIBE, b"ident")
        pump_until(sockets, fed, [False, True, False, True])
        second.close()  # a connection that closes takes its subscriptions with it
        pump_until(sockets, fed, [False, True, False, True, False])
    finally:
        sockets.stop_reading()
        sockets.close()
        ctx.destroy(0)
        assert sockets.ctx is not None
        sockets.ctx.term()
