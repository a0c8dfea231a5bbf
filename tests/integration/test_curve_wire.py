"""What goes over the wire with CurveZMQ on and off (issue 14), read from the bytes a TCP
proxy forwards.  Peer 2 of a 3-peer cluster is announced at the proxy's address (its
``url`` in the config) and binds its real address (``--bind``), so every connection to peer
2 goes through the proxy: the leader's AppendEntries when 2 follows, the client's requests
when 2 leads.  An update whose data holds a distinctive marker is committed and applied by
peer 2; the proxy's bytes hold the marker and the cluster secret when curve is off, neither
when it is on (and the ZMTP greeting names the CURVE mechanism).  Both runtimes."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from raft_harness import Cluster, wait_for
from zmqraft.client import Client
from zmqraft.client.tools.zr_keys import write_pair
from zmqraft.core.curve_keys import ClientKeys

pytestmark = pytest.mark.timeout(120)

RECORD_LIMIT = 32 << 20  # bytes kept by the proxy: the test's traffic is far less


class RecordingProxy:
    """A TCP proxy on 127.0.0.1 (an ephemeral port) to ``upstream``, run by one thread;
    every byte it forwards, either way, is appended to ``seen``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.seen = bytearray()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recording-proxy", daemon=True)
        self._thread.start()

    def recorded(self) -> bytes:
        with self.lock:
            return bytes(self.seen)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    if key.data is None:
                        self._accept(sel)
                    else:
                        self._forward(sel, key.fileobj, key.data)  # type: ignore[arg-type]
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        conn, _ = self.listener.accept()
        try:
            up = socket.create_connection(self.upstream, timeout=2)
        except OSError:
            conn.close()  # the peer is not listening yet: ZeroMQ connects again
            return
        for sock in (conn, up):
            sock.settimeout(5)
        sel.register(conn, selectors.EVENT_READ, up)
        sel.register(up, selectors.EVENT_READ, conn)

    def _forward(self, sel: selectors.BaseSelector, src: socket.socket, dst: socket.socket) -> None:
        try:
            data = src.recv(65536)
            if data:
                with self.lock:
                    if len(self.seen) < RECORD_LIMIT:
                        self.seen += data
                dst.sendall(data)
                return
        except OSError:
            pass
        for sock in (src, dst):  # one side ended: end both
            sel.unregister(sock)
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive(), "the proxy thread did not end"


def curve_keys(root: Path, peer_ids: list[str]) -> ClientKeys:
    """``root/keys`` (the peers' pairs), ``root/clients`` (the admitted client), and the
    client's keys (its pair and the peers' public keys)."""
    for directory in ("keys", "client", "clients"):
        (root / directory).mkdir(mode=0o700)
    for peer_id in peer_ids:
        write_pair(str(root / "keys"), peer_id)
        shutil.copy(root / "keys" / f"{peer_id}.key", root / "client")
    write_pair(str(root / "client"), "client")
    shutil.copy(root / "client" / "client.key", root / "clients")
    return ClientKeys.from_directory(root / "client")


@pytest.fixture
def proxied(
    cluster_factory: Callable[..., Cluster],
) -> Iterator[Callable[[bool], tuple[Cluster, RecordingProxy]]]:
    proxies: list[RecordingProxy] = []

    def make(curve: bool) -> tuple[Cluster, RecordingProxy]:
        options: dict[str, Any] = {"curve": {"keys": "keys", "clients": "clients"}} if curve else {}
        cluster = cluster_factory(**options)
        real = cluster.peers["2"].url
        host, port = real[len("tcp://") :].rsplit(":", 1)
        proxy = RecordingProxy((host, int(port)))
        proxies.append(proxy)
        config_path = cluster.root / "config.json"
        config = json.loads(config_path.read_text())
        for peer in config["raft"]["peers"]:
            if peer["id"] == "2":
                peer["url"] = proxy.url  # announced at the proxy ...
        config_path.write_text(json.dumps(config))
        cluster.peers["2"].args = ["--bind", real]  # ... bound where the proxy forwards to
        return cluster, proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.mark.parametrize("curve", [True, False], ids=["curve", "plain"])
def test_update_data_on_the_wire(
    proxied: Callable[[bool], tuple[Cluster, RecordingProxy]], curve: bool
) -> None:
    cluster, proxy = proxied(curve)
    keys = curve_keys(cluster.root, list(cluster.peers)) if curve else None
    cluster.start()
    peers = json.loads((cluster.root / "config.json").read_text())["raft"]["peers"]
    config = [(p["id"], p["url"]) for p in peers]
    marker = b"zmq-raft-plaintext-marker-" + os.urandom(8).hex().encode()
    with Client(peers=config, secret=cluster.secret, curve=keys, rpc_timeout=30) as client:
        index = client.request_update(marker * 4)  # committed: a majority has it

        def applied_by_2() -> bool:
            info = client.request_log_info(url=proxy.url, timeout=1)
            return info.last_applied >= index

        wait_for("peer 2 (behind the proxy) to apply the update", applied_by_2, 20)
        assert [e.data for e in client.request_entries(index - 1, 1)] == [marker * 4]
    seen = proxy.recorded()
    assert len(seen) > 4 * len(marker)  # the update went through the proxy, whatever its form
    if curve:
        assert marker not in seen
        assert cluster.secret not in seen
        assert b"CURVE" in seen and b"NULL\0" not in seen  # the greetings' mechanism
    else:
        assert marker in seen
        assert cluster.secret in seen
        assert b"NULL\0" in seen
