"""``zmq-raft demo``: a local three-peer cluster and a client writing to it.

Three ``zmq-raft`` processes on free ports of 127.0.0.1 with their data in a temporary
directory; a client keeps updates in flight to the leader and prints what happens: the
election, committed indexes, a fail-over (the leader is killed with SIGKILL half-way, a new
one takes over, the old one restarts from its files and catches up) and, at the end, every
peer's log state.  Ctrl-C stops everything cleanly.  The client is ``zmqraft.client.AsyncClient``
with 16 concurrent ``request_update`` calls.  Every peer serves its web monitor (the URLs are
printed; ``--duration`` keeps the cluster up long enough to look).  ``--runtime gevent`` or
``mixed`` (peer 1 on asyncio, 2 and 3 on gevent) needs zmq-raft-gevent installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from zmqraft.client import AsyncClient, ClientError, LogInfo

WINDOW = 16


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


RUNTIMES = {
    "asyncio": ("asyncio", "asyncio", "asyncio"),
    "gevent": ("gevent", "gevent", "gevent"),
    "mixed": ("asyncio", "gevent", "gevent"),
}


class DemoCluster:
    def __init__(self, root: Path, verbose: bool, runtime: str = "asyncio") -> None:
        self.root = root
        ports = _free_ports(9)
        ids = ("1", "2", "3")
        self.urls = {p: f"tcp://127.0.0.1:{ports[3 * n]}" for n, p in enumerate(ids)}
        pubs = {p: f"tcp://127.0.0.1:{ports[3 * n + 1]}" for n, p in enumerate(ids)}
        self.www = {p: f"http://127.0.0.1:{ports[3 * n + 2]}" for n, p in enumerate(ids)}
        self.runtimes = dict(zip(ids, RUNTIMES[runtime], strict=True))
        peers = [{"id": p, "url": u, "pub": pubs[p], "www": self.www[p]} for p, u in self.urls.items()]
        # a secret of its own, so that nothing else on this machine talks to the demo's peers
        self.secret = os.urandom(6).hex()
        data = {"path": str(root), "appendIdToPath": True}
        web = {"enable": True, "bind": {"host": "127.0.0.1"}}
        config = {"raft": {"peers": peers, "data": data, "secret": self.secret, "webmonitor": web}}
        self.config = root / "config.json"
        self.config.write_text(json.dumps(config, indent=2))
        self.verbose = verbose
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, peer_id: str) -> Path:
        return self.root / f"peer-{peer_id}.log"

    def start(self, peer_id: str) -> None:
        module = f"zmqraft.{self.runtimes[peer_id]}"
        args = [sys.executable, "-m", module, "-c", str(self.config), peer_id]
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


@dataclass
class Progress:
    sent: int = 0
    committed: int = 0
    last_index: int = 0
    killed: str | None = None
    # with --updates: writers past the half wait until the leader is killed, so the fail-over
    # happens under writes however fast the cluster commits
    gate: int | None = None
    leader_killed: anyio.Event = field(default_factory=anyio.Event)


async def _peer_info(client: AsyncClient, url: str) -> LogInfo | None:
    try:
        return await client.request_log_info(url=url, timeout=0.3)
    except ClientError:
        return None


async def _leader(client: AsyncClient, cluster: DemoCluster, among: list[str]) -> LogInfo | None:
    for peer_id in among:
        info = await _peer_info(client, cluster.urls[peer_id])
        if info is not None and info.is_leader:
            return info
    return None


async def _write(client: AsyncClient, progress: Progress, total: int) -> None:
    """One of the writers: an update at a time, so WINDOW writers keep WINDOW in flight.  The
    client follows the leader and retries with the same request id: applied exactly once."""
    while progress.sent < total:
        gated = progress.gate is not None and progress.sent >= progress.gate
        if gated and not progress.leader_killed.is_set():
            await progress.leader_killed.wait()
            continue  # the others went on meanwhile
        progress.sent += 1
        index = await client.request_update(f"demo update {progress.sent}".encode())
        progress.committed += 1
        progress.last_index = max(progress.last_index, index)


async def _failover(client: AsyncClient, cluster: DemoCluster, progress: Progress) -> None:
    leader = client.leader_id
    if leader not in cluster.urls:
        return  # not known right now: try again at the next tick
    _say(f"  committed {progress.committed}, last index {progress.last_index}")
    _say(f"fail-over: killing the leader, peer {leader}, with SIGKILL")
    progress.killed = leader
    cluster.kill(leader)
    killed_at = time.monotonic()
    progress.leader_killed.set()
    others = [p for p in cluster.urls if p != leader]
    while (info := await _leader(client, cluster, others)) is None:
        await anyio.sleep(0.01)
    took = time.monotonic() - killed_at
    _say(f"  new leader: peer {_peer_of(cluster, info.url)} (term {info.term}) after {took:.2f} s")
    _say(f"  restarting peer {leader} from its files")
    cluster.start(leader)


async def _watch(
    client: AsyncClient, cluster: DemoCluster, progress: Progress, args: argparse.Namespace, total: int
) -> None:
    """Report once a second; kill the leader half-way and restart it once another leads."""
    started = time.monotonic()
    fail_at = started + (args.duration / 2 if args.duration is not None else 5.0)
    last_report, last_count = started, 0
    while True:
        await anyio.sleep(0.02)
        now = time.monotonic()
        half_way = progress.committed >= total // 2 if args.updates is not None else now >= fail_at
        if args.failover and progress.killed is None and half_way:
            await _failover(client, cluster, progress)
            continue
        if now - last_report >= 1.0:
            rate = (progress.committed - last_count) / (now - last_report)
            last_report, last_count = now, progress.committed
            _say(
                f"  committed {progress.committed}, last index {progress.last_index}, "
                f"leader {client.leader_id or '?'}, {rate:,.0f} updates/s"
            )


def _peer_of(cluster: DemoCluster, url: str) -> str:
    return next((p for p, u in cluster.urls.items() if u == url), url)


def _say(text: str) -> None:
    print(text, flush=True)


async def _demo(cluster: DemoCluster, args: argparse.Namespace) -> None:
    total = args.updates if args.updates is not None else sys.maxsize
    started = time.monotonic()
    for peer_id in cluster.urls:
        cluster.start(peer_id)
    urls = list(cluster.urls.values())
    async with AsyncClient(urls, secret=cluster.secret, rpc_timeout=None) as client:
        with anyio.fail_after(30):
            while (info := await _leader(client, cluster, list(cluster.urls))) is None:
                await anyio.sleep(0.05)
        took = time.monotonic() - started
        _say(f"leader: peer {_peer_of(cluster, info.url)} (term {info.term}), {took:.2f} s after start")
        what = f"{total} updates" if args.updates is not None else "updates"
        _say(f"writing {what} with {WINDOW} in flight (Ctrl-C to stop)")
        progress = Progress()
        if args.failover and args.updates is not None:
            progress.gate = total // 2
        with anyio.move_on_after(args.duration if args.duration is not None else math.inf):
            async with anyio.create_task_group() as writers:
                watcher = anyio.CancelScope()

                async def watch() -> None:
                    with watcher:
                        await _watch(client, cluster, progress, args, total)

                writers.start_soon(watch)
                async with anyio.create_task_group() as tg:
                    for _ in range(WINDOW):
                        tg.start_soon(_write, client, progress, total)
                watcher.cancel()
        _say(f"done: {progress.committed} updates committed, last index {progress.last_index}")
        await _show_peers(client, cluster)


async def _show_peers(client: AsyncClient, cluster: DemoCluster) -> None:
    """Wait (a little) until every peer applied what the leader applied, then print them."""
    infos: dict[str, LogInfo | None] = {}
    with anyio.move_on_after(10):
        while True:
            infos = {p: await _peer_info(client, u) for p, u in cluster.urls.items()}
            applied = max((i.last_applied for i in infos.values() if i is not None), default=0)
            if all(i is not None and i.last_applied >= applied for i in infos.values()):
                break
            await anyio.sleep(0.1)
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


def run(args: argparse.Namespace) -> int:
    if args.runtime != "asyncio" and importlib.util.find_spec("zmqraft.gevent") is None:
        _say("zmq-raft demo: --runtime gevent or mixed needs the zmq-raft-gevent package")
        return 2
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="zmq-raft-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    cluster = DemoCluster(root, args.verbose, args.runtime)
    _say(f"zmq-raft demo: 3 peers, data in {root}, secret {cluster.secret}")
    for peer_id, url in cluster.urls.items():
        _say(
            f"  peer {peer_id} at {url} on {cluster.runtimes[peer_id]}, web monitor {cluster.www[peer_id]}/ "
            f"(output: {cluster.log_path(peer_id)})"
        )
    _say(
        f"  (zr-monitor -k {cluster.secret} {cluster.urls['1'][len('tcp://') :]} watches it from a terminal;"
        " it needs pip install 'zmq-raft-client[tools]')"
    )
    try:
        anyio.run(_demo, cluster, args)
        return 0
    except KeyboardInterrupt:
        _say("\ninterrupted")
        return 130
    finally:
        _say("stopping the peers...")
        cluster.stop_all()
        if args.keep:
            _say(f"data kept in {root}")
        elif not args.dir:
            shutil.rmtree(root, ignore_errors=True)
        _say("bye bye")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zmq-raft demo", description="A local three-peer cluster and a client.")
    p.add_argument("--updates", type=int, metavar="N", help="stop after N committed updates")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--no-failover", dest="failover", action="store_false", help="do not kill the leader")
    p.add_argument("--dir", help="data directory (default: a temporary one, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging in the peers' output")
    p.add_argument(
        "--runtime",
        choices=sorted(RUNTIMES),
        default="asyncio",
        help="the peers' runtime; mixed: peer 1 on asyncio, 2 and 3 on gevent",
    )
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
