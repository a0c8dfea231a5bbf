"""Profile a 3-peer cluster under load with py-spy: where the leader's and a follower's CPU
goes, by function (own time) and by call chain (total), while a closed-loop client keeps 64
100-byte RequestUpdates in flight (``--inflight``).

    python bench/profile_cluster.py [--runtime asyncio|gevent] [--seconds 8] [--top 30]

Needs ``py-spy`` (pip install py-spy) and permission to ptrace the peers (root, or
kernel.yama.ptrace_scope=0).  Samples only the thread holding the GIL (CPU, not waiting);
prints the top functions of each profiled peer; ``--raw DIR`` keeps py-spy's collapsed
stacks."""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import zmq
from _cluster_procs import Cluster, closed_loop

COMMANDS = {"asyncio": ["zmq-raft"], "gevent": ["zmq-raft-gevent"]}


def _name(frame: str) -> str:
    """``function (path/file.py:line)`` -> ``function file.py`` (lines merged per function)."""
    function, _, where = frame.partition(" (")
    return f"{function} {where.rsplit('/', 1)[-1].split(':')[0]}"


def own_and_total(collapsed: Path, top: int) -> str:
    """The ``top`` functions by own samples and by inclusive samples, from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"{samples} samples", "own time:"]
    out += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("inclusive (a function and what it calls):")
    chosen = [(name, n) for name, n in total.most_common() if not name.startswith("<module>")]
    out += [f"  {100 * n / samples:5.1f}%  {name}" for name, n in chosen[:top]]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=sorted(COMMANDS), default="asyncio")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--inflight", type=int, default=64, help="updates in flight (default 64)")
    parser.add_argument("--raw", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="zmqraft-profile-"))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    cluster = Cluster(COMMANDS[args.runtime], root)
    try:
        cluster.start()
        leader = cluster.wait_leader(ctx, 20.0)
        if leader is None:
            print("no leader:", cluster.tails(), file=sys.stderr)
            return 1
        follower = next(p for p in cluster.ids if p != leader)
        closed_loop(ctx, cluster.urls[leader], 16, 100, 1.0)  # warm-up
        raw = args.raw or root
        raw.mkdir(parents=True, exist_ok=True)
        spies = {
            role: subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(cluster.pids()[peer]),
                    "--duration",
                    str(int(args.seconds)),
                    "--rate",
                    "500",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--gil",
                    "--output",
                    str(raw / f"{role}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role, peer in (("leader", leader), ("follower", follower))
        }
        load = threading.Thread(
            target=closed_loop, args=(ctx, cluster.urls[leader], args.inflight, 100, args.seconds + 1.0)
        )
        load.start()
        for spy in spies.values():
            spy.wait(timeout=args.seconds + 60)
        load.join()
        for role in spies:
            print(f"==== {role} ({args.runtime})")
            print(own_and_total(raw / f"{role}.txt", args.top))
    finally:
        cluster.stop()
        ctx.term()
        if args.raw is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
