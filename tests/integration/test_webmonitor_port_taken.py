"""A web monitor whose port is taken says so once (the peer keeps retrying quietly, as the
original does) and listens as soon as the port is free; on both runtimes."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from raft_harness import wait_for

pytestmark = pytest.mark.timeout(60)

TAKEN = "web monitor: can not listen at 127.0.0.1:{port}: the address is in use"


def test_a_taken_port_is_logged_once(cluster_factory: Callable[..., Any]) -> None:
    cluster = cluster_factory(["1"], web=True)
    peer = cluster.peers["1"]
    port = urlsplit(peer.www).port
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        cluster.start()
        line = TAKEN.format(port=port)
        wait_for("the port-taken error", lambda: line in peer.output(), 20)
        time.sleep(2.5)  # the peer retries every second meanwhile: those attempts must stay quiet
    finally:
        holder.close()
    wait_for("the web monitor listening", lambda: "web monitor at" in peer.output(), 20)
    assert peer.output().count(line) == 1, peer.output()
