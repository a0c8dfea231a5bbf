"""Processes and a raw wire client for ``bench_cluster.py`` (and ``bench_client.py``).

The client speaks the zmq-raft frames with plain pyzmq, the way ``../shared/bench/load.py``
(the reference measurement the project's targets are judged by) does, so the figures measure
the servers and ZeroMQ rather than the library's own client and codecs, and any implementation
(the original in Node included) is driven by exactly the same bytes.

``python bench/_cluster_procs.py echo URL`` runs the echo server: a ROUTER answering every
RequestUpdate at once, the ceiling of this client plus the ZeroMQ path.

``Cluster(..., curve=True)`` runs the peers with CurveZMQ (``curve.keys``: a pair per peer,
``curve.clients``: the bench client's public key) and ``Cluster.curve_client`` gives the raw
client's CURVE socket options.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import zmq

REQUEST_CONFIG = b"^"
REQUEST_UPDATE = b"="
HWM = 100_000  # never the bottleneck: a closed loop keeps at most `window` requests queued
_TICKS = os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ephemeral ports (all held open together, so no port is handed out twice)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (utime + stime of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` line of /proc/<pid>/status: ``VmRSS`` (now) or ``VmHWM`` (peak resident)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def to_bool(frame: bytes) -> bool:
    return len(frame) > 0 and frame[0] != 0


class RequestIds:
    """12-byte request ids as the protocol builds them (4-byte seconds, 3 machine bytes, 2 pid
    bytes, 3-byte counter): servers refuse ids whose time is too far from theirs, and the
    request-id cache keys on the whole id, so every update must carry a fresh one."""

    def __init__(self) -> None:
        self._counter = random.getrandbits(24)
        self._tail = os.urandom(3) + struct.pack(">H", os.getpid() & 0xFFFF)

    def next(self, now: float | None = None) -> bytes:
        self._counter = (self._counter + 1) & 0xFFFFFF
        seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
        return struct.pack(">I", seconds) + self._tail + self._counter.to_bytes(3, "big")


@dataclass(frozen=True)
class CurveClient:
    """The raw client's CurveZMQ keys (Z85, as ``zmq.curve_keypair`` gives them) and each
    server's public key by url."""

    public: bytes
    secret: bytes = field(repr=False)
    servers: dict[str, bytes] = field(default_factory=dict)

    def apply(self, sock: zmq.Socket[bytes], url: str) -> None:
        """Make ``sock`` a CURVE client of the server at ``url`` (before it connects)."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.servers[url])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)


def make_keys(directory: Path, name: str) -> tuple[bytes, bytes]:
    """A key pair as certificate files ``NAME.key`` and ``NAME.key_secret`` (0600) in
    ``directory`` (the bench's own temporary folder); returns (public, secret) in Z85."""
    import zmq.auth

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _, secret_file = zmq.auth.create_certificates(str(directory), name)
    os.chmod(secret_file, 0o600)  # a peer refuses a secret key file others can read
    public, secret = zmq.auth.load_certificate(secret_file)
    assert secret is not None
    return public, secret


def dealer(
    ctx: zmq.Context[zmq.Socket[bytes]], url: str, curve: CurveClient | None = None
) -> zmq.Socket[bytes]:
    """A DEALER to ``url`` that never lingers (a stopped peer must not hold the bench up);
    with ``curve``, a CURVE client of that server."""
    sock = ctx.socket(zmq.DEALER)
    if curve is not None:
        curve.apply(sock, url)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.connect(url)
    return sock


def is_leader(sock: zmq.Socket[bytes], ids: RequestIds, secret: bytes, timeout: float) -> bool | None:
    """RequestConfig on ``sock``: whether that peer says it leads; None when it did not answer."""
    rid = ids.next()
    sock.send_multipart([rid, REQUEST_CONFIG, secret])
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not sock.poll(max(1, int(left * 1000))):
            return None
        reply = sock.recv_multipart()
        if reply[0] == rid and len(reply) > 1:
            return to_bool(reply[1])
    return None


@dataclass
class LoadResult:
    """One closed-loop measurement: committed replies, latencies and what went wrong."""

    window: int
    size: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, one per committed reply
    late: int = 0  # committed after the measured window, during the drain
    refused: int = 0  # replies with a false status (not the leader, or the id expired)
    stalls: int = 0  # whole seconds with no reply at all
    unanswered: int = 0  # still without a final reply when the drain gave up
    leader_hint: str | None = None  # who a refusing peer named as the leader

    @property
    def ops(self) -> int:
        return len(self.latencies)

    @property
    def committed(self) -> int:
        """Every committed update, the drained ones too: the denominator of CPU per update."""
        return self.ops + self.late

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def quantile_ms(self, q: float) -> float | None:
        """The same index rule as the reference client (load.py), so p50/p99 compare exactly."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def problems(self) -> dict[str, int]:
        found = {"refused": self.refused, "stalls": self.stalls, "unanswered": self.unanswered}
        return {k: v for k, v in found.items() if v}


def closed_loop(
    ctx: zmq.Context[zmq.Socket[bytes]],
    url: str,
    window: int,
    size: int,
    seconds: float,
    secret: bytes = b"",
    drain: float = 5.0,
    curve: CurveClient | None = None,
) -> LoadResult:
    """``window`` RequestUpdates of ``size`` random bytes outstanding for ``seconds``: each
    committed reply sends the next one.  Counts only final replies (an accepted-but-pending
    reply keeps waiting); a refused update is not replaced, as in load.py.  Afterwards waits
    up to ``drain`` seconds for the updates still in flight, so the next measurement starts
    on a quiet cluster and CPU per update can count them.  ``curve``: over CurveZMQ."""
    result = LoadResult(window, size)
    ids = RequestIds()
    payload = os.urandom(size)
    pending: dict[bytes, float] = {}
    sock = dealer(ctx, url, curve)

    def send() -> None:
        rid = ids.next()
        pending[rid] = time.monotonic()
        sock.send_multipart([rid, REQUEST_UPDATE, secret, payload], copy=False)

    def receive(measuring: bool) -> None:
        while True:
            try:
                reply = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            sent = pending.get(reply[0])
            if sent is None or len(reply) < 2:
                continue
            if not to_bool(reply[1]):
                del pending[reply[0]]
                result.refused += 1
                if len(reply) > 2:
                    hint = msgpack.unpackb(reply[2], raw=False)
                    result.leader_hint = str(hint) if hint is not None else None
                continue
            if len(reply) < 3:
                continue  # accepted, not committed yet: the final reply follows
            del pending[reply[0]]
            now = time.monotonic()
            if measuring:
                result.latencies.append(now - sent)
                if now < end:
                    send()
            else:
                result.late += 1

    try:
        start = time.monotonic()
        end = start + seconds
        for _ in range(window):
            send()
        while time.monotonic() < end and pending:
            if not sock.poll(1000):
                result.stalls += 1
                continue
            receive(measuring=True)
        result.seconds = max(time.monotonic(), end) - start  # a loop that ran dry still took `seconds`
        give_up = time.monotonic() + drain
        while pending and (left := give_up - time.monotonic()) > 0:
            if sock.poll(max(1, int(min(left, 1.0) * 1000))):
                receive(measuring=False)
        result.unanswered = len(pending)
    finally:
        sock.close(0)
    return result


class Proc:
    """One child process with its log file; started in its own session so a Ctrl-C at the
    terminal reaches only the bench, which then stops every child through this handle."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        self.stop_note = ""
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 3) -> str:
        """The last lines of the process's output, on one line (for a table row's error)."""
        try:
            text = self.log.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip(" \t^~")]  # not caret lines
        return " | ".join(kept[-lines:])


def stop_all(procs: Iterable[Proc], grace: float = 10.0) -> None:
    """SIGTERM (a graceful close), then SIGKILL whatever is still running after ``grace``
    seconds; the kill runs even if a second Ctrl-C interrupts the wait.  What did not go
    smoothly is left in each ``Proc.stop_note``."""
    procs = [p for p in procs if p.exited() is None]
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    try:
        for p in procs:
            try:
                status = p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.stop_note = f"still running {grace:.0f} s after SIGTERM: killed"
            else:
                if status != 0:
                    p.stop_note = f"exit status {status} after SIGTERM"
    finally:
        for p in procs:
            if p.exited() is None:
                p.popen.kill()
                try:
                    p.popen.wait(5)
                except subprocess.TimeoutExpired:
                    p.stop_note = "did not die within 5 s of SIGKILL"


class Cluster:
    """Peers of one implementation as real processes on 127.0.0.1 with ephemeral ports, each
    with its own config file, data directory and log under ``root``.  Every option not about
    addresses or data is left at its default (the durability measured is the defaults'), except
    ``extra`` when the caller asks for it, and CurveZMQ with ``curve`` (``curve_client`` then
    holds what the raw client connects with)."""

    def __init__(
        self,
        command: Sequence[str],
        root: Path,
        peers: int = 3,
        extra: dict[str, object] | None = None,
        curve: bool = False,
    ) -> None:
        self.command = list(command)
        self.root = root
        self.ids = [str(n + 1) for n in range(peers)]
        ports = free_ports(2 * peers)
        self.urls = {p: f"tcp://127.0.0.1:{ports[2 * n]}" for n, p in enumerate(self.ids)}
        self.pubs = {p: f"tcp://127.0.0.1:{ports[2 * n + 1]}" for n, p in enumerate(self.ids)}
        self.extra = dict(extra or {})
        self.procs: dict[str, Proc] = {}
        self.curve = curve
        self.curve_client: CurveClient | None = None

    def config(self, peer: str) -> Path:
        """The same JSON file shape as the reference launcher (zr.py), which both the
        project's command line and the original's bin/zmq-raft.js read."""
        raft = {
            "id": peer,
            "peers": [{"id": p, "url": u} for p, u in self.urls.items()],
            "data": {"path": str(self.root / "data" / peer)},
            "broadcast": {"url": self.pubs[peer]},
            **self.extra,
        }
        if self.curve:
            raft["curve"] = {"keys": str(self.root / "keys"), "clients": str(self.root / "clients")}
        path = self.root / f"peer-{peer}.json"
        path.write_text(json.dumps({"raft": raft}))
        return path

    def make_curve_keys(self) -> None:
        """A pair per peer in ``keys/``, the client's in ``client/`` and its public
        certificate in ``clients/`` (the peers admit that key only)."""
        servers = {self.urls[p]: make_keys(self.root / "keys", p)[0] for p in self.ids}
        public, secret = make_keys(self.root / "client", "client")
        (self.root / "clients").mkdir(mode=0o700, exist_ok=True)
        (self.root / "clients" / "client.key").write_bytes((self.root / "client" / "client.key").read_bytes())
        self.curve_client = CurveClient(public, secret, servers)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.curve and self.curve_client is None:
            self.make_curve_keys()
        for peer in self.ids:
            argv = [*self.command, "-c", str(self.config(peer)), peer]
            self.procs[peer] = Proc(peer, argv, self.root / f"peer-{peer}.log", self.root)

    def stop(self) -> None:
        stop_all(self.procs.values())

    def pids(self) -> dict[str, int]:
        return {p: proc.pid for p, proc in self.procs.items()}

    def dead(self) -> str:
        """Why peers have exited (empty when every peer runs); peers that failed alike share
        one line, as a broken build makes all of them fail the same way."""
        why: dict[str, list[str]] = {}
        for p, proc in self.procs.items():
            if proc.exited() is not None:
                why.setdefault(f"exited with {proc.exited()}: {proc.tail()}", []).append(p)
        return "; ".join(f"peer{'s' if len(ps) > 1 else ''} {', '.join(ps)} {w}" for w, ps in why.items())

    def tails(self, lines: int = 2) -> str:
        return "; ".join(f"peer {p}: {proc.tail(lines) or '(no output)'}" for p, proc in self.procs.items())

    def wait_leader(self, ctx: zmq.Context[zmq.Socket[bytes]], timeout: float) -> str | None:
        """The peer that says it leads, asked with RequestConfig; None after ``timeout`` seconds
        or as soon as a peer has exited (a dead cluster will not elect anyone worth measuring)."""
        ids = RequestIds()
        socks = {p: dealer(ctx, u, self.curve_client) for p, u in self.urls.items()}
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not self.dead():
                for p, sock in socks.items():
                    if is_leader(sock, ids, b"", min(0.3, max(0.01, deadline - time.monotonic()))):
                        return p
                time.sleep(0.05)
            return None
        finally:
            for sock in socks.values():
                sock.close(0)


class Echo:
    """The echo server (``echo_server`` below) as a child process."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.url = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        argv = [sys.executable, str(Path(__file__).resolve()), "echo", self.url]
        self.proc = Proc("echo", argv, root / "echo.log", root)

    def wait_ready(self, ctx: zmq.Context[zmq.Socket[bytes]], timeout: float) -> bool:
        sock = dealer(ctx, self.url)
        ids = RequestIds()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and self.proc.exited() is None:
                if is_leader(sock, ids, b"", 0.3):
                    return True
            return False
        finally:
            sock.close(0)

    def stop(self) -> None:
        stop_all([self.proc])


def echo_server(url: str) -> None:
    """A ROUTER answering every RequestUpdate as committed at once, and RequestConfig as the
    leader of a one-peer cluster: the ceiling of the client plus the ZeroMQ path."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.SNDHWM, HWM)
    router.setsockopt(zmq.RCVHWM, HWM)
    router.bind(url)
    index = 0
    while True:
        frames = router.recv_multipart()
        if len(frames) < 3:
            continue
        if frames[2] == REQUEST_CONFIG:
            peers = msgpack.packb([["e", url]])
            router.send_multipart([frames[0], frames[1], b"\x01", msgpack.packb("e"), peers])
            continue
        index += 1
        router.send_multipart([frames[0], frames[1], b"\x01", msgpack.packb(index)])


if __name__ == "__main__":
    if sys.argv[1:2] == ["echo"] and len(sys.argv) == 3:
        echo_server(sys.argv[2])
    else:
        sys.exit("usage: _cluster_procs.py echo URL")
