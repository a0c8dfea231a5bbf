"""``zmq-raft demo``: a local three-peer cluster and a client writing to it.

Three ``zmq-raft`` processes on free ports of 127.0.0.1 with their data in a temporary
directory; a client keeps updates in flight to the leader and prints what happens: the
election, committed indexes, a fail-over (the leader is killed with SIGKILL half-way, a new
one takes over, the old one restarts from its files and catches up) and, at the end, every
peer's log state.  Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import zmq
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.reqid import RequestIdGenerator

WINDOW = 16
RESEND_AFTER = 1.0


def _free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class DemoCluster:
    def __init__(self, root: Path, verbose: bool) -> None:
        self.root = root
        ports = _free_ports(6)
        self.urls = {str(n): f"tcp://127.0.0.1:{ports[2 * n - 2]}" for n in (1, 2, 3)}
        pubs = {str(n): f"tcp://127.0.0.1:{ports[2 * n - 1]}" for n in (1, 2, 3)}
        peers = [{"id": p, "url": u, "pub": pubs[p]} for p, u in self.urls.items()]
        # a secret of its own, so that nothing else on this machine talks to the demo's peers
        self.secret = os.urandom(6).hex()
        data = {"path": str(root), "appendIdToPath": True}
        config = {"raft": {"peers": peers, "data": data, "secret": self.secret}}
        self.config = root / "config.json"
        self.config.write_text(json.dumps(config, indent=2))
        self.verbose = verbose
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, peer_id: str) -> Path:
        return self.root / f"peer-{peer_id}.log"

    def start(self, peer_id: str) -> None:
        args = [sys.executable, "-m", "zmqraft.asyncio", "-c", str(self.config), peer_id]
        if self.verbose:
            args.insert(-1, "-v")
        with open(self.log_path(peer_id), "ab") as out:
            self.procs[peer_id] = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def kill(self, peer_id: str) -> None:
        proc = self.procs[peer_id]
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class DemoClient:
    """A minimal client: one DEALER per peer, updates pipelined to the leader."""

    def __init__(self, urls: dict[str, str], secret: bytes) -> None:
        self.secret = secret
        self.ctx = zmq.Context()
        self.ids = RequestIdGenerator()
        self.socks = {}
        for peer_id, url in urls.items():
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(url)
            self.socks[peer_id] = sock
        self.leader: str | None = None
        self.pending: dict[bytes, tuple[bytes, float]] = {}
        self.committed = 0
        self.last_index = 0
        self.sent = 0

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close(0)
        self.ctx.term()

    def rid(self) -> bytes:
        return self.ids.next(time.time())

    def log_info(self, peer_id: str, timeout: float = 0.3) -> m.RequestLogInfoReply | None:
        sock = self.socks[peer_id]
        rid = self.rid()
        sock.send_multipart(m.RequestLogInfo(rid).encode(self.secret))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and sock.poll(int(left * 1000) + 1):
            frames = sock.recv_multipart()
            if frames[0] == rid:
                return m.RequestLogInfoReply.decode(frames)
            self._update_reply(frames)
        return None

    def find_leader(self, among: Sequence[str]) -> tuple[str, int] | None:
        for peer_id in among:
            info = self.log_info(peer_id)
            if info is not None and info.is_leader:
                return peer_id, info.term
        return None

    def send_updates(self, budget: int) -> None:
        if self.leader is None:
            return
        while len(self.pending) < WINDOW and self.sent < budget:
            rid = self.rid()
            data = f"demo update {self.sent + 1}".encode()
            self.socks[self.leader].send_multipart(m.RequestUpdate(rid, data).encode(self.secret))
            self.pending[rid] = (data, time.monotonic())
            self.sent += 1

    def resend(self, older_than: float) -> None:
        """Re-send (with the same request id) what got no final answer: never applied twice."""
        if self.leader is None:
            return
        now = time.monotonic()
        for rid, (data, sent_at) in list(self.pending.items()):
            if now - sent_at >= older_than:
                self.socks[self.leader].send_multipart(m.RequestUpdate(rid, data).encode(self.secret))
                self.pending[rid] = (data, now)

    def receive(self, timeout: float) -> None:
        poller = zmq.Poller()
        for sock in self.socks.values():
            poller.register(sock, zmq.POLLIN)
        for sock, _ in poller.poll(int(timeout * 1000)):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._update_reply(frames)

    def _update_reply(self, frames: list[bytes]) -> None:
        if frames[0] not in self.pending:
            return
        try:
            reply = m.RequestUpdateReply.decode(frames)
        except ValueError:
            return
        if reply.status is m.UpdateStatus.COMMITTED:
            del self.pending[frames[0]]
            self.committed += 1
            self.last_index = max(self.last_index, reply.index or 0)
        elif reply.status is m.UpdateStatus.NOT_LEADER:
            if reply.leader_id in self.socks and reply.leader_id != self.leader:
                self.leader = reply.leader_id
                self.resend(0.0)
            else:
                self.pending[frames[0]] = (self.pending[frames[0]][0], 0.0)  # re-send soon


def _say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="zmq-raft-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    cluster = DemoCluster(root, args.verbose)
    client = DemoClient(cluster.urls, cluster.secret.encode())
    total = args.updates if args.updates is not None else sys.maxsize
    until = time.monotonic() + args.duration if args.duration is not None else float("inf")
    _say(f"zmq-raft demo: 3 peers, data in {root}")
    for peer_id, url in cluster.urls.items():
        _say(f"  peer {peer_id} at {url} (output: {cluster.log_path(peer_id)})")
    started = time.monotonic()
    try:
        for peer_id in cluster.urls:
            cluster.start(peer_id)
        found = None
        while found is None:
            if time.monotonic() - started > 30:
                raise RuntimeError("no leader after 30 s: see the peers' output")
            found = client.find_leader(list(cluster.urls))
        client.leader, term = found
        _say(f"leader: peer {client.leader} (term {term}), {time.monotonic() - started:.2f} s after start")
        what = f"{total} updates" if args.updates is not None else "updates"
        _say(f"writing {what}, {WINDOW} in flight (Ctrl-C to stop)")
        failover_at = total // 2 if args.updates is not None else None
        failover_time = (
            time.monotonic() + (args.duration / 2 if args.duration is not None else 5.0)
            if args.updates is None
            else None
        )
        killed: str | None = None
        killed_at = 0.0
        next_report = time.monotonic() + 1.0
        window_start, window_count = time.monotonic(), 0
        while client.committed < total and time.monotonic() < until:
            client.send_updates(total)
            client.receive(0.05)
            now = time.monotonic()
            if args.failover and killed is None and (
                (failover_at is not None and client.committed >= failover_at)
                or (failover_time is not None and now >= failover_time)
            ):
                killed, killed_at = client.leader, now
                assert killed is not None
                _say(f"  committed {client.committed}, last index {client.last_index}")
                _say(f"fail-over: killing the leader, peer {killed}, with SIGKILL")
                cluster.kill(killed)
                client.leader = None
                continue
            if client.leader is None:
                found = client.find_leader([p for p in cluster.urls if p != killed])
                if found is not None:
                    client.leader, term = found
                    _say(f"  new leader: peer {client.leader} (term {term}) after {now - killed_at:.2f} s")
                    if killed is not None and cluster.procs[killed].poll() is not None:
                        _say(f"  restarting peer {killed} from its files")
                        cluster.start(killed)
                    client.resend(0.0)
                continue
            if any(now - sent > RESEND_AFTER for _, sent in client.pending.values()):
                found = client.find_leader(list(cluster.urls))
                if found is not None and found[0] != client.leader:
                    client.leader = found[0]
                client.resend(RESEND_AFTER)
            if now >= next_report:
                rate = (client.committed - window_count) / (now - window_start)
                window_start, window_count = now, client.committed
                _say(
                    f"  committed {client.committed}, last index {client.last_index}, "
                    f"leader {client.leader}, {rate:,.0f} updates/s"
                )
                next_report = now + 1.0
        drain_until = time.monotonic() + 5.0  # the updates still in flight
        while client.pending and time.monotonic() < drain_until:
            client.receive(0.05)
            client.resend(RESEND_AFTER)
        _say(f"done: {client.committed} updates committed, last index {client.last_index}")
        _show_peers(client, cluster, client.last_index)
        return 0
    except KeyboardInterrupt:
        _say("\ninterrupted")
        return 130
    finally:
        _say("stopping the peers...")
        try:
            cluster.stop_all()
        finally:
            client.close()
            if not args.keep and not args.dir:
                shutil.rmtree(root, ignore_errors=True)
            elif args.keep:
                _say(f"data kept in {root}")
        _say("bye bye")


def _show_peers(client: DemoClient, cluster: DemoCluster, index: int) -> None:
    """Wait (a little) until every peer applied ``index``, then print their log state."""
    deadline = time.monotonic() + 10
    infos: dict[str, m.RequestLogInfoReply | None] = {}
    while time.monotonic() < deadline:
        infos = {p: client.log_info(p) for p in cluster.urls}
        if all(i is not None and i.last_applied >= index for i in infos.values()):
            break
        time.sleep(0.1)
    _say("  peer  role      term  commit  applied  first  last")
    for peer_id, info in infos.items():
        if info is None:
            _say(f"  {peer_id:<5} (no answer)")
            continue
        role = "LEADER" if info.is_leader else "follower"
        _say(
            f"  {peer_id:<5} {role:<9} {info.term:<5} {info.commit_index:<7} {info.last_applied:<8} "
            f"{info.first_index:<6} {info.last_index}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zmq-raft demo", description="A local three-peer cluster and a client.")
    p.add_argument("--updates", type=int, metavar="N", help="stop after N committed updates")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--no-failover", dest="failover", action="store_false", help="do not kill the leader")
    p.add_argument("--dir", help="data directory (default: a temporary one, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging in the peers' output")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
