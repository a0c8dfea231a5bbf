"""``PeerSockets`` with CurveZMQ, without a peer around it: a ZAP handler answers on the
peer's own loop (no thread), and a peer without a public key gets no connection at all."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmqraft.client.sockets import PeerSockets
from zmqraft.core.curve_keys import read_certificate, read_key_pair
from zmqraft.core.curve_policy import CurvePolicy, CurveSetup
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(30)


class Fed:
    def __init__(self) -> None:
        self.router: list[tuple[bytes, list[bytes]]] = []

    def receive_router_batch(self, messages: list[list[bytes]], now: float, wall: float) -> None:
        self.router.extend((frames[0], frames[1:]) for frames in messages)

    def receive_peer(self, peer_id: str, frames: list[bytes], now: float, wall: float) -> None:
        pass


def pair(directory: Path, name: str) -> tuple[bytes, bytes]:
    directory.mkdir(exist_ok=True)
    zmq.auth.create_certificates(str(directory), name)
    os.chmod(directory / f"{name}.key_secret", 0o600)
    cert = read_key_pair(directory, name)
    assert cert.secret is not None
    return cert.public, cert.secret


@pytest.fixture
def sockets(tmp_path: Path) -> PeerSockets:
    public, secret = pair(tmp_path / "keys", "1")
    client_public, _ = pair(tmp_path / "client", "client")
    setup = CurveSetup("1", public, secret, {"1": public}, frozenset({client_public}), str(tmp_path / "keys"))
    watched: list[zmq.Socket[bytes]] = []
    return PeerSockets(
        "1",
        dealer_hwm=4,
        reconnect_ivl=0.1,
        watch=watched.append,
        unwatch=lambda sock: None,
        curve=CurvePolicy(setup),
    )


def test_the_zap_handler_is_served_by_receive_and_users_are_told_apart(
    sockets: PeerSockets, tmp_path: Path
) -> None:
    sockets.open("tcp://127.0.0.1:0", None, {})
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    client = ctx.socket(zmq.DEALER)
    try:
        cert = read_key_pair(tmp_path / "client", "client")
        assert cert.secret is not None
        client.linger = 0
        client.curve_serverkey = read_certificate(tmp_path / "keys" / "1.key").public
        client.curve_publickey = cert.public
        client.curve_secretkey = cert.secret
        client.connect(sockets.bound_url or "")
        client.send_multipart([b"rid", m.REQUEST_LOG_INFO, b""])  # a client may send it
        client.send_multipart([b"rid", m.REQUEST_VOTE, b""])  # only peers may
        fed = Fed()
        policy = sockets.curve
        assert policy is not None and sockets.zap is not None and sockets.router is not None
        for _ in range(100):  # the handshake waits for our ZAP answer, given by receive()
            sockets.receive(fed)
            if fed.router and policy.metrics.curve_refused_messages:
                break
            ready, _, _ = zmq.select([sockets.zap, sockets.router], [], [], 0.05)
            for sock in ready:  # as a runtime does when a watched FD signals
                sockets.readable(sock)
        assert [frames[1] for _, frames in fed.router] == [m.REQUEST_LOG_INFO]
        assert policy.metrics.curve_refused_messages == 1
    finally:
        client.close(0)
        sockets.close()
        assert sockets.ctx is not None
        sockets.ctx.term()
        ctx.term()


def test_a_peer_without_a_public_key_gets_no_connection(
    sockets: PeerSockets, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "zmqraft.sockets"):
        sockets.open("tcp://127.0.0.1:0", None, {"9": "tcp://127.0.0.1:1"})
        sockets.connect({"9": "tcp://127.0.0.1:1"})
    try:
        assert "9" not in sockets.dealers
        assert caplog.text.count("no CurveZMQ public key for peer 9") == 1
    finally:
        sockets.close()
        assert sockets.ctx is not None
        sockets.ctx.term()
