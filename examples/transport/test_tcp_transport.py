"""The TCP transport example: its framing, and a three-peer cluster of ``tcp_peer.py``
processes on 127.0.0.1 (ephemeral ports) that elects, commits, survives a SIGKILL of its
leader, and brings the killed peer back up to date.  The test's client speaks the zmq-raft
wire messages over the same framing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from tcp_peer import MAX_FRAMES, U32, encode, host_port, read_message
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.reqid import RequestIdGenerator

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
ids = RequestIdGenerator()


def parse(data: bytes) -> list[bytes]:
    async def read() -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_message(reader)

    return asyncio.run(read())


def test_framing_round_trips_and_refuses_what_breaks_its_limits() -> None:
    frames = [b"id", b"", b"x" * 70_000]
    assert parse(encode(frames)) == frames
    with pytest.raises(ValueError, match="frame count"):
        parse(U32.pack(MAX_FRAMES + 1))
    with pytest.raises(ValueError, match="frame count"):
        parse(U32.pack(0))
    with pytest.raises(asyncio.IncompleteReadError):
        parse(encode(frames)[:-1])


# ---- a cluster of processes --------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class TcpClient:
    """Wire messages over the example's framing, one blocking connection per peer."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.socks: dict[str, socket.socket] = {}

    def request(self, url: str, frames: list[bytes], timeout: float = 1.0) -> list[bytes] | None:
        """Send, then read until the reply with the same request id, or None."""
        deadline = time.monotonic() + timeout
        try:
            sock = self.socks.get(url) or socket.create_connection(host_port(url), timeout)
            self.socks[url] = sock
            sock.sendall(encode(frames))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                reply = self._read(sock)
                if reply[0] == frames[0]:
                    return reply
        except OSError:  # refused, reset, timed out: a new connection next time
            self.socks.pop(url, socket.socket()).close()
        return None

    def _read(self, sock: socket.socket) -> list[bytes]:
        def exactly(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = sock.recv(n - len(data))
                if not chunk:
                    raise ConnectionResetError("closed")
                data += chunk
            return data

        (count,) = U32.unpack(exactly(4))
        return [exactly(U32.unpack(exactly(4))[0]) for _ in range(count)]

    def log_info(self, url: str) -> m.RequestLogInfoReply | None:
        reply = self.request(url, m.RequestLogInfo(ids.next(time.time())).encode(self.secret), 0.5)
        return None if reply is None else m.RequestLogInfoReply.decode(reply)

    def update(self, url: str, data: bytes) -> int | None:
        """A RequestUpdate until COMMITTED: its log index (None: not the leader, or no answer)."""
        rid = ids.next(time.time())
        reply = self.request(url, m.RequestUpdate(rid, data).encode(self.secret), 5.0)
        while reply is not None:
            decoded = m.RequestUpdateReply.decode(reply)
            if decoded.status is m.UpdateStatus.COMMITTED:
                return decoded.index
            if decoded.status is not m.UpdateStatus.ACCEPTED:
                return None
            self.socks[url].settimeout(5.0)  # ACCEPTED: the COMMITTED reply follows
            reply = self._read(self.socks[url])
        return None

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class TcpCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.urls = {p: f"tcp://127.0.0.1:{port}" for p, port in zip("123", free_ports(3), strict=True)}
        secret = os.urandom(6).hex()
        self.client = TcpClient(secret.encode())
        self.config = root / "cluster.json"
        self.config.write_text(
            json.dumps(
                {
                    "peers": [{"id": p, "url": url} for p, url in self.urls.items()],
                    "data": {"path": str(root / "data"), "appendIdToPath": True},
                    "secret": secret,
                }
            )
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, peer: str) -> None:
        with open(self.root / f"peer-{peer}.log", "ab") as out:
            self.procs[peer] = subprocess.Popen(
                [sys.executable, str(HERE / "tcp_peer.py"), str(self.config), peer],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self, peer: str) -> None:
        proc = self.procs.pop(peer)
        proc.kill()
        proc.wait()

    def stop(self, peer: str) -> int:
        """SIGTERM: a graceful close; its exit status."""
        proc = self.procs.pop(peer)
        proc.terminate()
        return proc.wait(15)

    def leader(self) -> tuple[str, int]:
        """Wait until one running peer leads and the others agree: (its id, its term)."""

        def check() -> tuple[str, int] | None:
            infos = {p: self.client.log_info(self.urls[p]) for p in self.procs}
            leaders = [(p, i.term) for p, i in infos.items() if i is not None and i.is_leader]
            agreed = len(leaders) == 1 and all(i and i.leader_id == leaders[0][0] for i in infos.values())
            return leaders[0] if agreed else None

        return wait_for("a leader", check)

    def commit(self, data: bytes) -> int:
        """``data`` committed through whoever leads (an election meanwhile on a loaded machine
        only means asking again; a second copy in the log does not matter here)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            index = self.client.update(self.urls[self.leader()[0]], data)
            if index is not None:
                return index
        raise AssertionError(f"{data!r} not committed in 30 s")

    def close(self) -> None:
        self.client.close()
        for peer in list(self.procs):
            self.kill(peer)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[TcpCluster]:
    made = TcpCluster(tmp_path)
    try:
        yield made
    finally:
        made.close()
        for log in sorted(tmp_path.glob("peer-*.log")):  # shown when the test failed
            print(f"---- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


@pytest.mark.timeout(120)
def test_a_cluster_elects_commits_and_survives_a_leader_kill(cluster: TcpCluster) -> None:
    for peer in cluster.urls:
        cluster.start(peer)
    leader, term = cluster.leader()
    indexes = [cluster.commit(b"before %d" % n) for n in range(30)]
    assert indexes == sorted(indexes)

    # a peer never falls over on what arrives: garbage ends that connection only
    with socket.create_connection(host_port(cluster.urls[leader]), timeout=5) as bad:
        bad.sendall(U32.pack(2**32 - 1) + b"garbage")
        wait_for("the peer to drop the connection", lambda: bad.recv(1) == b"")
    assert cluster.client.log_info(cluster.urls[leader]) is not None  # still answering
    leader, term = cluster.leader()

    cluster.kill(leader)
    new_leader, new_term = cluster.leader()
    assert new_leader != leader and new_term > term
    last = 0
    for n in range(30):
        index = cluster.commit(b"after %d" % n)
        assert index > last
        last = index

    # the killed peer restarts from its files and catches up
    cluster.start(leader)

    def caught_up() -> bool:
        infos = [cluster.client.log_info(url) for url in cluster.urls.values()]
        return all(i is not None and i.last_applied >= last and i.commit_index >= last for i in infos)

    wait_for("every peer to apply the last update", caught_up)
    assert cluster.stop(leader) == 0  # SIGTERM closes gracefully
