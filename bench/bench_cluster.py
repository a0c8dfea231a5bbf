"""A three-peer cluster of real processes (``python -m zmqraft.<runtime>``) on 127.0.0.1 with
a client keeping 64 RequestUpdates in flight for about 10 s, once per server runtime; the
runtimes after the first are also reported as a ratio to it (same machine, same run).

Reports committed updates per second (every durable write fsync'd: each peer's log append and
the broadcast state machine's state.pers) and each peer's resident memory (VmRSS from
/proc/<pid>/status) before and after the run.  Figures are printed, never asserted.

Environment: ``ZMQRAFT_BENCH_SECONDS`` (default 10), ``ZMQRAFT_BENCH_INFLIGHT`` (64),
``ZMQRAFT_BENCH_SIZE`` (update data bytes, 100), ``ZMQRAFT_BENCH_DIR`` (where the data goes),
``ZMQRAFT_BENCH_CACHE_MAX`` (requestIdCacheMax for the peers, unset = the default),
``ZMQRAFT_BENCH_KEEP=1`` (keep the data and the peers' output), ``ZMQRAFT_BENCH_RUNTIMES``
(comma-separated, default ``asyncio,gevent``; the first is the baseline).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zmq
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.reqid import RequestIdGenerator


def _ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, root: Path, cache_max: int | None = None, runtime: str = "asyncio") -> None:
        ports = _ports(6)
        self.urls = {str(n + 1): f"tcp://127.0.0.1:{ports[2 * n]}" for n in range(3)}
        raft: dict[str, object] = {
            "peers": [
                {"id": p, "url": u, "pub": f"tcp://127.0.0.1:{ports[2 * int(p) - 1]}"}
                for p, u in self.urls.items()
            ],
            "data": {"path": str(root / "data"), "appendIdToPath": True},
        }
        if cache_max is not None:
            raft["requestIdCacheMax"] = cache_max
        config = root / "config.json"
        config.write_text(json.dumps({"raft": raft}))
        self.procs = {
            p: subprocess.Popen(
                [sys.executable, "-m", f"zmqraft.{runtime}", "-c", str(config), p],
                stdout=open(root / f"peer-{p}.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
            for p in self.urls
        }
        self.ctx = zmq.Context()
        self.ids = RequestIdGenerator()
        self.leader_changes = 0

    def close(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.ctx.destroy(linger=0)

    def _sock(self, url: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(url)
        return sock

    def leader(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        socks = {p: self._sock(u) for p, u in self.urls.items()}
        try:
            while time.monotonic() < deadline:
                for p, sock in socks.items():
                    rid = self.ids.next(time.time())
                    sock.send_multipart(m.RequestLogInfo(rid).encode(b""))
                    if sock.poll(200):
                        reply = m.RequestLogInfoReply.decode(sock.recv_multipart())
                        if reply.is_leader:
                            return p
                time.sleep(0.05)
        finally:
            for sock in socks.values():
                sock.close(0)
        raise RuntimeError("no leader")

    def rss_line(self) -> str:
        return ", ".join(f"peer {p} {rss_kib(proc.pid) / 1024:.1f} MiB" for p, proc in self.procs.items())

    def run(self, seconds: float, inflight: int, size: int) -> tuple[int, float, float]:
        """Updates committed in ``seconds``: (count, elapsed, mean latency ms); a line with
        every peer's RSS every 10 s of a long run.  Follows the leader if it changes
        (re-sending pending updates with their request ids)."""
        leader = self.leader()
        sock = self._sock(self.urls[leader])
        payload = os.urandom(size // 2).hex().encode()[:size]
        pending: dict[bytes, float] = {}
        done = 0
        latency = 0.0
        start = time.monotonic()
        end = start + seconds
        report = start + 10.0 if seconds > 20 else float("inf")
        try:
            while True:
                now = time.monotonic()
                if now >= report:
                    report += 10.0
                    print(f"  {now - start:4.0f} s: {done:8d} updates; RSS {self.rss_line()}", flush=True)
                if now < end:
                    while len(pending) < inflight:
                        rid = self.ids.next(time.time())
                        sock.send_multipart(m.RequestUpdate(rid, payload).encode(b""), copy=False)
                        pending[rid] = now
                elif not pending:
                    break
                elif now > end + 30:
                    raise RuntimeError(f"{len(pending)} updates never committed")
                lost = not sock.poll(1000)
                while not lost:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) == 3 and frames[0] in pending and frames[1] == b"\x01":
                        latency += time.monotonic() - pending.pop(frames[0])
                        done += 1
                    elif len(frames) == 3 and frames[0] in pending and frames[1] == b"\x00":
                        lost = True
                if lost and pending:
                    sock.close(0)
                    leader = self.leader()
                    self.leader_changes += 1
                    print(f"  {time.monotonic() - start:4.0f} s: leader is now peer {leader}", flush=True)
                    sock = self._sock(self.urls[leader])
                    for rid in pending:
                        sock.send_multipart(m.RequestUpdate(rid, payload).encode(b""))
        finally:
            sock.close(0)
        elapsed = time.monotonic() - start
        return done, elapsed, 1000 * latency / max(done, 1)


def main() -> None:
    runtimes = os.environ.get("ZMQRAFT_BENCH_RUNTIMES", "asyncio,gevent").split(",")
    rates = {runtime: measure(runtime) for runtime in runtimes}
    baseline = runtimes[0]
    for runtime in runtimes[1:]:
        print(f"{runtime}: {rates[runtime] / rates[baseline]:.2f} x {baseline}")


def measure(runtime: str) -> float:
    """One cluster of ``runtime`` peers; returns its committed updates per second."""
    seconds = float(os.environ.get("ZMQRAFT_BENCH_SECONDS", "10"))
    inflight = int(os.environ.get("ZMQRAFT_BENCH_INFLIGHT", "64"))
    size = int(os.environ.get("ZMQRAFT_BENCH_SIZE", "100"))
    cache_max = os.environ.get("ZMQRAFT_BENCH_CACHE_MAX")
    root = Path(tempfile.mkdtemp(prefix="zmqraft-bench-", dir=os.environ.get("ZMQRAFT_BENCH_DIR")))
    bench = Bench(root, int(cache_max) if cache_max else None, runtime)
    try:
        bench.leader()
        bench.run(1.0, inflight, size)  # warm-up
        before = {p: rss_kib(proc.pid) for p, proc in bench.procs.items()}
        cpu = {p: cpu_seconds(proc.pid) for p, proc in bench.procs.items()}
        done, elapsed, latency = bench.run(seconds, inflight, size)
        after = {p: rss_kib(proc.pid) for p, proc in bench.procs.items()}
        cpu = {p: cpu_seconds(proc.pid) - cpu[p] for p, proc in bench.procs.items()}
        print(
            f"{runtime}: 3 peers, {inflight} updates in flight, {size}-byte updates, fsync on every write: "
            f"{done / elapsed:,.0f} updates/s ({done} in {elapsed:.1f} s, mean latency {latency:.1f} ms)"
        )
        for p in bench.procs:
            print(
                f"  peer {p}: RSS {before[p] / 1024:.1f} MiB before, {after[p] / 1024:.1f} MiB after; "
                f"CPU {cpu[p]:.1f} s ({1e6 * cpu[p] / max(done, 1):.0f} us per update)"
            )
        if bench.leader_changes:
            print(f"  (the leader changed {bench.leader_changes} times during the run)")
        return done / elapsed
    finally:
        bench.close()
        if os.environ.get("ZMQRAFT_BENCH_KEEP"):
            print(f"  data and peer output kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
