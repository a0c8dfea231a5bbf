"""Integration harness: real peers in subprocesses on 127.0.0.1, and a small raw-pyzmq client to talk to them.

Every peer is ``python -m zmqraft.<runtime> -c <config.json> <id>`` (``Peer.runtime``:
``asyncio`` unless ``Cluster(..., runtime="gevent")`` or the peer's own field says otherwise)
with its output in ``<tmp>/peer-<id>.log`` (printed when a test fails).  Ports are ephemeral:
chosen by binding port 0 first.  Every process is stopped by the fixture that started it;
every wait is a poll with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import zmq
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.reqid import RequestIdGenerator

T = TypeVar("T")

LONG = os.environ.get("ZMQRAFT_LONG") == "1"
# the interpreter that runs the peers (tox's client-only env points it at the full env)
SERVER_PYTHON = os.environ.get("ZMQRAFT_SERVER_PYTHON") or sys.executable
_ids = RequestIdGenerator()


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something other than None/False, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def new_rid() -> bytes:
    return _ids.next(time.time())


# ---- peers ----------------------------------------------------------------------------------


@dataclass
class Peer:
    id: str
    url: str
    pub: str
    config: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    runtime: str = "asyncio"  # the server package it runs: zmqraft.asyncio or zmqraft.gevent
    www: str | None = None  # the web monitor's url (Cluster(web=True))
    metrics: str | None = None  # the metrics endpoint's base url (Cluster(metrics=True))
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NAME]

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"peer {self.id} already running"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *self.prefix,
                    SERVER_PYTHON,
                    "-m",
                    f"zmqraft.{self.runtime}",
                    "-c",
                    str(self.config),
                    *self.args,
                    self.id,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (graceful shutdown); SIGKILL if it does not end in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """Peers sharing one JSON config file; ``options`` are merged into its ``raft`` section.
    ``web``: every peer serves its web monitor on a port of its own (the peers' ``www``)."""

    def __init__(
        self,
        root: Path,
        ids: list[str],
        *,
        spare: list[str] | None = None,
        runtime: str = "asyncio",
        web: bool = False,
        metrics: bool = False,
        **options: Any,
    ) -> None:
        self.root = root
        spare = spare or []
        per = 4 if metrics else 3  # ports per peer: router, pub, web monitor (and metrics)
        ports = free_ports(per * (len(ids) + len(spare)))
        self.peers: dict[str, Peer] = {}
        config = root / "config.json"
        self.members = list(ids)
        for n, peer_id in enumerate([*ids, *spare]):
            url = f"tcp://127.0.0.1:{ports[per * n]}"
            pub = f"tcp://127.0.0.1:{ports[per * n + 1]}"
            www = f"http://127.0.0.1:{ports[per * n + 2]}" if web else None
            log_path = root / f"peer-{peer_id}.log"
            self.peers[peer_id] = Peer(peer_id, url, pub, config, log_path, runtime=runtime, www=www)
            if metrics:
                self.peers[peer_id].metrics = f"http://127.0.0.1:{ports[per * n + 3]}"
        # a secret of its own: on a shared machine, a peer that took over a port another
        # cluster's peer used would otherwise accept that cluster's AppendEntries
        raft: dict[str, Any] = {
            "peers": [
                {"id": p, "url": self.peers[p].url, "pub": self.peers[p].pub}
                | ({"www": self.peers[p].www} if web else {})
                | ({"metrics": self.peers[p].metrics} if metrics else {})
                for p in ids
            ],
            "data": {"path": str(root / "data"), "appendIdToPath": True},
            "secret": os.urandom(6).hex(),
        }
        if web:
            raft["webmonitor"] = {"enable": True, "bind": {"host": "127.0.0.1"}}
        if metrics:
            raft["metrics"] = {"enable": True}
        for key, value in options.items():
            if isinstance(value, dict) and isinstance(raft.get(key), dict):
                raft[key].update(value)
            else:
                raft[key] = value
        config.write_text(json.dumps({"raft": raft}, indent=1))
        for peer_id in spare:  # not in the seed configuration: they bind their own url
            peer = self.peers[peer_id]
            peer.args = ["--bind", peer.url, "--pub", peer.pub, *(["--www", peer.www] if peer.www else [])]
        self.secret = str(raft["secret"]).encode()
        self.client = Client(self.secret)

    def data_dir(self, peer_id: str) -> Path:
        return self.root / "data" / peer_id

    def urls(self, ids: list[str] | None = None) -> dict[str, str]:
        return {p: self.peers[p].url for p in (ids or self.peers)}

    def start(self, ids: list[str] | None = None) -> None:
        for peer_id in ids or self.members:
            self.peers[peer_id].start()

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.stop()

    def close(self) -> None:
        self.client.close()
        for peer in self.peers.values():
            peer.kill()

    def running(self) -> list[str]:
        return [p for p, peer in self.peers.items() if peer.running]

    def leader(self, ids: list[str] | None = None, timeout: float = 10.0) -> tuple[str, int]:
        """Wait until one of ``ids`` (default: the running peers) says it is the leader and
        the others agree: ``(leader id, term)``."""

        def check() -> tuple[str, int] | None:
            infos = {p: self.client.log_info(self.peers[p].url, 0.3) for p in ids or self.running()}
            leaders = [(p, i.term) for p, i in infos.items() if i is not None and i.is_leader]
            if len(leaders) != 1:
                return None
            leader, term = leaders[0]
            if any(i is None or i.leader_id != leader for i in infos.values()):
                return None
            return leader, term

        return wait_for("a leader", check, timeout)

    def wait_applied(self, index: int, ids: list[str] | None = None, timeout: float = 10.0) -> None:
        """Until every peer of ``ids`` (default: the running ones) applied ``index``."""

        def check() -> bool:
            infos = [self.client.log_info(self.peers[p].url, 0.3) for p in ids or self.running()]
            return all(i is not None and i.last_applied >= index for i in infos)

        wait_for(f"every peer to apply {index}", check, timeout)

    def dump(self) -> str:
        return "\n".join(f"---- peer {p} ----\n{peer.output()[-6000:]}" for p, peer in self.peers.items())


# ---- client ---------------------------------------------------------------------------------


class Client:
    """Raw DEALER sockets (one per url) speaking the wire protocol with the message classes."""

    def __init__(self, secret: bytes = b"", curve: Any = None) -> None:
        self.secret = secret
        self.curve = curve  # a zmqraft.core.curve_keys.ClientKeys: CURVE client sockets
        self.ctx = zmq.Context()
        self.socks: dict[str, zmq.Socket[bytes]] = {}

    def sock(self, url: str) -> zmq.Socket[bytes]:
        sock = self.socks.get(url)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            if self.curve is not None:
                sock.curve_serverkey = self.curve.server_key(url)
                sock.curve_publickey = self.curve.public
                sock.curve_secretkey = self.curve.secret
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(url)
            self.socks[url] = sock
        return sock

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close(0)
        self.ctx.term()

    def send(self, url: str, frames: list[bytes]) -> None:
        self.sock(url).send_multipart(frames)

    def recv(self, url: str, timeout: float) -> list[bytes] | None:
        sock = self.sock(url)
        if sock.poll(int(timeout * 1000), zmq.POLLIN):
            return sock.recv_multipart()
        return None

    def request(self, url: str, frames: list[bytes], timeout: float = 1.0) -> list[bytes] | None:
        """Send and wait for the reply carrying the same request id (others are dropped)."""
        self.send(url, frames)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self.recv(url, left)
            if reply is not None and reply[0] == frames[0]:
                return reply
        return None

    def log_info(self, url: str, timeout: float = 1.0) -> m.RequestLogInfoReply | None:
        reply = self.request(url, m.RequestLogInfo(new_rid()).encode(self.secret), timeout)
        return None if reply is None else m.RequestLogInfoReply.decode(reply)

    def config(self, url: str, timeout: float = 1.0) -> m.RequestConfigReply | None:
        reply = self.request(url, m.RequestConfig(new_rid()).encode(self.secret), timeout)
        return None if reply is None else m.RequestConfigReply.decode(reply)

    def broadcast_url(self, url: str, timeout: float = 1.0) -> str | None:
        frames = m.RequestBroadcastStateUrl(new_rid()).encode(self.secret)
        reply = self.request(url, frames, timeout)
        return None if reply is None else m.RequestBroadcastStateUrlReply.decode(reply).url

    def update(self, url: str, data: bytes, rid: bytes | None = None, timeout: float = 3.0) -> int | None:
        """One RequestUpdate until COMMITTED: the log index, or None (not leader, timeout)."""
        rid = rid or new_rid()
        frames = m.RequestUpdate(rid, data).encode(self.secret)
        self.send(url, frames)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            raw = self.recv(url, left)
            if raw is None or raw[0] != rid:
                continue
            reply = m.RequestUpdateReply.decode(raw)
            if reply.status is m.UpdateStatus.COMMITTED:
                return reply.index
            if reply.status is not m.UpdateStatus.ACCEPTED:
                return None
        return None

    def config_update(
        self, url: str | Callable[[], str], peers: list[list[str]], timeout: float = 15.0
    ) -> m.ConfigUpdateReply:
        """ConfigUpdate until it is done (ACCEPTED with an index) or refused.  With a callable
        ``url`` (the leader's), a "not leader" answer or silence re-sends the same request id
        to the new leader (the request is idempotent)."""
        rid = new_rid()
        frames = m.ConfigUpdate(rid, peers).encode(self.secret)
        target = url() if callable(url) else url
        self.send(target, frames)
        deadline = time.monotonic() + timeout
        resend = time.monotonic() + 2.0
        while (left := deadline - time.monotonic()) > 0:
            raw = self.recv(target, min(left, 0.2))
            if raw is None or raw[0] != rid:
                if callable(url) and time.monotonic() >= resend:
                    target, resend = url(), time.monotonic() + 2.0
                    self.send(target, frames)
                continue
            reply = m.ConfigUpdateReply.decode(raw)
            if reply.status is m.ConfigUpdateStatus.ACCEPTED and reply.index is None:
                resend = time.monotonic() + 2.0
                continue
            if reply.status is m.ConfigUpdateStatus.NOT_LEADER and callable(url):
                time.sleep(0.05)  # an election is going on: ask the new leader
                target, resend = url(), time.monotonic() + 2.0
                self.send(target, frames)
                continue
            return reply
        raise AssertionError("ConfigUpdate: no final answer")

    def find_leader(self, urls: list[str], timeout: float = 10.0) -> str:
        """The url of the peer among ``urls`` that says it is the leader (polls)."""

        def check() -> str | None:
            for url in urls:
                info = self.log_info(url, 0.2)
                if info is not None and info.is_leader:
                    return url
            return None

        return wait_for("a leader", check, timeout)

    def pipelined_updates(
        self,
        leader: Callable[[], str],
        datas: list[bytes],
        window: int = 64,
        timeout: float = 60.0,
        resend_after: float = 1.0,
        done: dict[bytes, tuple[bytes, int]] | None = None,
    ) -> dict[bytes, tuple[bytes, int]]:
        """Commit every update with up to ``window`` in flight, following the leader and
        re-sending (same request id) after ``resend_after``: ``{rid: (data, index)}``
        (filled in as the acknowledgements arrive, into ``done`` if given)."""
        pending: dict[bytes, tuple[bytes, float]] = {}
        done = {} if done is None else done
        todo = list(reversed(datas))
        url = leader()
        deadline = time.monotonic() + timeout
        while todo or pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"updates not committed: {len(done)} done, {len(pending)} pending")
            while todo and len(pending) < window:
                data = todo.pop()
                rid = new_rid()
                self.send(url, m.RequestUpdate(rid, data).encode(self.secret))
                pending[rid] = (data, time.monotonic())
            raw = self.recv(url, 0.1)
            while raw is not None:
                if raw[0] in pending:
                    reply = m.RequestUpdateReply.decode(raw)
                    if reply.status is m.UpdateStatus.COMMITTED:
                        assert reply.index is not None
                        done[raw[0]] = (pending.pop(raw[0])[0], reply.index)
                    elif reply.status is m.UpdateStatus.EXPIRED:
                        raise AssertionError("update refused as expired")
                    elif reply.status is m.UpdateStatus.NOT_LEADER:
                        pending[raw[0]] = (pending[raw[0]][0], 0.0)  # re-send soon
                raw = self.recv(url, 0)
            now = time.monotonic()
            stale = [rid for rid, (_, sent) in pending.items() if now - sent > resend_after]
            if stale:
                url = leader()
                for rid in stale:
                    data = pending[rid][0]
                    self.send(url, m.RequestUpdate(rid, data).encode(self.secret))
                    pending[rid] = (data, now)
        return done

    def entries(
        self, url: str, prev_index: int = 0, count: int | None = None, timeout: float = 10.0
    ) -> tuple[list[tuple[int, bytes]], m.RequestEntriesReply | None]:
        """A RequestEntries stream from the leader: ``([(index, entry)], snapshot chunk
        reply if the stream started with a snapshot)``; acknowledges as the protocol says."""
        rid = new_rid()[:4]
        out: list[tuple[int, bytes]] = []
        snapshot: m.RequestEntriesReply | None = None
        self.send(url, m.RequestEntries(rid, prev_index, count).encode(self.secret))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            raw = self.recv(url, left)
            if raw is None or raw[0] != rid:
                continue
            reply = m.RequestEntriesReply.decode(raw)
            if reply.status is m.EntriesStatus.NOT_LEADER:
                raise AssertionError(f"RequestEntries: not the leader (leader {reply.leader_id})")
            if reply.status is m.EntriesStatus.SNAPSHOT_CHUNK:
                snapshot = reply
                end = reply.snapshot_offset + len(reply.chunk)
                if end >= reply.snapshot_size:
                    self.send(url, m.RequestEntries(rid, reply.last_index, count).encode(self.secret))
                else:
                    self.send(url, m.RequestEntries(rid, prev_index, None, end).encode(self.secret))
                continue
            first = reply.last_index - len(reply.entries) + 1
            out.extend((first + k, e) for k, e in enumerate(reply.entries))
            if reply.status is m.EntriesStatus.LAST:
                return out, snapshot
            self.send(url, m.RequestEntries(rid, reply.last_index).encode(self.secret))
        raise AssertionError("RequestEntries: stream did not finish in time")


# ---- checks ---------------------------------------------------------------------------------


def stored_log(data_dir: Path, last: int | None = None) -> tuple[list[bytes], int, int]:
    """A stopped peer's files: ``(entries first_index..last, first_index, state.pers lastApplied)``."""
    from zmqraft.core.storage.files import open_data_dir

    d = open_data_dir(str(data_dir), read_only=True)
    try:
        assert d.state is not None
        end = d.log.last_index if last is None else last
        return d.log.entries(d.log.first_index, end), d.log.first_index, d.state.last_applied
    finally:
        d.close()


def check_acknowledged(entries: list[tuple[int, bytes]], acked: dict[bytes, tuple[bytes, int]]) -> None:
    """Every acknowledged update sits at its index with its data; no request id is in the log
    twice (no update was lost or applied twice)."""
    from zmqraft.core.protocol.entry import EntryType, entry_request_id, entry_type

    at = dict(entries)
    rids = [entry_request_id(e) for _, e in entries if entry_type(e) == EntryType.STATE]
    assert len(rids) == len(set(rids)), "an update appears twice in the log"
    for rid, (data, index) in acked.items():
        entry = at.get(index)
        assert entry is not None, f"acknowledged index {index} missing"
        assert entry_request_id(entry) == rid and entry[20:] == data, f"index {index} holds another update"
