"""Resident memory of every peer of a three-peer cluster over 1,000,000 updates with default
options: the project on each runtime, and the ORIGINAL Node implementation for comparison when
it is installed.  Figures are printed, never asserted.

Why: at high write rates the request-id cache is what grows (one id per update, kept for the
8-hour ``requestIdTtl``); the project bounds it by default (``requestIdCacheMax``, 250,000 ids
at about 30 bytes each, but never dropping ids younger than 10 s, so above 25,000 writes a
second it holds the last 10 s: packages/raft-core/src/zmqraft/core/request_ids.py); the
original does not bound it.  Everything else a peer holds should not grow with the log either
(FileLog's LRU of open index files holds up to 75 offset tables of ~68 KB: up to ~5 MiB more
until about 1,200,000 entries, then a saw-tooth).

Per system (a fresh cluster, fresh data, every option at its default but addresses and data
directory), the raw pyzmq closed-loop client of bench_cluster.py (``_cluster_procs.py``) keeps
``--inflight`` (64) ``--size``-byte (100) RequestUpdates outstanding at the leader until
``--updates`` (1,000,000) are committed.  VmRSS of each peer (/proc/<pid>/status) is sampled
once the cluster has a leader (``start``, idle) and every ``--sample`` (100,000) committed
updates, while the load runs.  Per peer the table shows every sample and max/min of its samples

* from ``--flat-from`` (300,000) on: once the request-id cache is full (250,000 ids, or 10 s
  worth at a higher rate) and the peer is warm: the "flat" judged by issue 11;
* from the first loaded sample (``--sample``) on, and from the idle start: the whole run.

"flat" is max/min <= 1.10 (every sample within 10% of the lowest).  Peers are labelled by the
role they had at the end (L leader, F follower).  VmHWM (peak) is in the JSON.

``--cache-probe N`` adds one more asyncio cluster with ``requestIdCacheMax: N``: the difference
of each peer's RSS to the default cluster's, over the samples from ``--flat-from`` on, divided
by the ids the default cache holds more (250,000 - N), estimates from outside what a cached id
costs (an estimate: two processes' RSS differ by more than their caches; the exact figure is
packages/raft-core/tests/test_request_ids.py's tracemalloc test).  Only below N / 10 updates a
second: faster, the probe's cache holds the last 10 s of ids and the difference means less.

A leader change during the load (a refusal) moves the client to the new leader; updates in
flight at the old one are then not counted (noted in the table).  ``--rounds`` repeats the
systems in rotating order (one round takes a few minutes per system).

Usage::

    python bench/bench_memory.py [--updates 1000000] [--sample 100000] [--flat-from 300000]
        [--inflight 64] [--size 100] [--systems asyncio,gevent,original] [--cache-probe N]
        [--rounds 1] [--original PATH] [--json FILE] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq
from zmqraft.core.request_ids import DEFAULT_CACHE_MAX

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster_procs import REQUEST_UPDATE, Cluster, RequestIds, dealer, status_kib, to_bool
from bench_cluster import original_command, runtime_command

Row = dict[str, Any]
Ctx = zmq.Context[zmq.Socket[bytes]]

SYSTEMS = ("asyncio", "gevent", "original")
LEADER_TIMEOUT = 20.0
STALL_LIMIT = 10  # seconds without any reply before the client looks for the leader again
INTERRUPTED = "interrupted"
FLAT = 1.10  # max/min of the samples that still counts as flat (every sample within 10%)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="bench_memory.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--updates", type=int, default=1_000_000, help="committed updates per cluster (default 1,000,000)"
    )
    p.add_argument(
        "--sample", type=int, default=100_000, help="updates between RSS samples (default 100,000)"
    )
    p.add_argument(
        "--flat-from", type=int, default=300_000, help="first sample judged for flatness (default 300,000)"
    )
    p.add_argument("--inflight", type=int, default=64, help="updates in flight (default 64)")
    p.add_argument("--size", type=int, default=100, help="update bytes (default 100)")
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"subset of {','.join(SYSTEMS)} (default all)"
    )
    p.add_argument(
        "--cache-probe", type=int, default=0, metavar="N", help="also asyncio with requestIdCacheMax N"
    )
    p.add_argument("--rounds", type=int, default=1, help="rounds, systems in rotating order (default 1)")
    p.add_argument("--original", default=env("NZR", ""), help="folder holding bin/zmq-raft.js (default $NZR)")
    p.add_argument(
        "--json", metavar="FILE", help="write every figure here (default: one JSON line on stderr)"
    )
    p.add_argument("--dir", default=env("ZMQRAFT_BENCH_DIR"), help="where the temporary data goes")
    p.add_argument("--keep", action="store_true", help="keep the data and the peers' logs")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown:
        p.error(f"unknown systems {unknown}: choose from {','.join(SYSTEMS)}")
    if min(args.updates, args.sample, args.inflight, args.size, args.rounds) < 1:
        p.error("--updates, --sample, --inflight, --size and --rounds must be positive")
    if not 0 <= args.cache_probe < DEFAULT_CACHE_MAX:
        p.error(f"--cache-probe must be below the default cap {DEFAULT_CACHE_MAX}")
    return args


def rss_kib(pids: dict[str, int]) -> dict[str, int | None]:
    return {p: status_kib(pid, "VmRSS") for p, pid in pids.items()}


class Load:
    """The closed loop until ``total`` updates are committed, calling ``on_sample(committed)``
    each time the count reaches a multiple of ``every``."""

    def __init__(self, ctx: Ctx, cluster: Cluster, window: int, size: int) -> None:
        self.ctx, self.cluster, self.window = ctx, cluster, window
        self.payload = os.urandom(size)
        self.ids = RequestIds()
        self.committed = 0
        self.refused = 0
        self.lost = 0  # in flight at a leader that stopped leading: not counted
        self.leaders: list[str] = []

    def run(self, total: int, every: int, on_sample: Callable[[int], None]) -> str | None:
        """None when ``total`` were committed, else why not."""
        while self.committed < total:
            leader = self.cluster.wait_leader(self.ctx, LEADER_TIMEOUT)
            if leader is None:
                return self.cluster.dead() or f"no leader within {LEADER_TIMEOUT:.0f} s"
            self.leaders.append(leader)
            if len(self.leaders) > 20:
                return f"the leader changed {len(self.leaders) - 1} times"
            self._at_leader(self.cluster.urls[leader], total, every, on_sample)
        return None

    def _at_leader(self, url: str, total: int, every: int, on_sample: Callable[[int], None]) -> None:
        """Drive one leader until ``total``, a refusal or ``STALL_LIMIT`` seconds of silence."""
        sock = dealer(self.ctx, url)
        pending: set[bytes] = set()

        def send() -> None:
            rid = self.ids.next()
            pending.add(rid)
            sock.send_multipart([rid, REQUEST_UPDATE, b"", self.payload], copy=False)

        try:
            for _ in range(min(self.window, total - self.committed)):
                send()
            silent = 0
            while self.committed < total:
                if not sock.poll(1000):
                    silent += 1
                    if silent >= STALL_LIMIT:
                        break
                    continue
                silent = 0
                while True:
                    try:
                        reply = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if reply[0] not in pending or len(reply) < 2:
                        continue
                    if not to_bool(reply[1]):
                        self.refused += 1
                        pending.discard(reply[0])
                        self.lost += len(pending)
                        return
                    if len(reply) < 3:
                        continue  # accepted, the final reply follows
                    pending.discard(reply[0])
                    self.committed += 1
                    if self.committed % every == 0:
                        on_sample(self.committed)
                    if self.committed + len(pending) < total:
                        send()
            self.lost += len(pending)
        finally:
            sock.close(0)


def measure_cluster(
    ctx: Ctx, command: list[str], root: Path, args: argparse.Namespace, extra: Row | None
) -> Row:
    cluster = Cluster(command, root, extra=extra)
    try:
        cluster.start()
        began = time.monotonic()
        leader = cluster.wait_leader(ctx, LEADER_TIMEOUT)
        if leader is None:
            return {"error": cluster.dead() or f"no leader within {LEADER_TIMEOUT:.0f} s: {cluster.tails()}"}
        pids = cluster.pids()
        samples: list[Row] = [{"updates": 0, "seconds": 0.0, "rss_kib": rss_kib(pids)}]
        load = Load(ctx, cluster, args.inflight, args.size)
        started = time.monotonic()

        def on_sample(committed: int) -> None:
            samples.append(
                {
                    "updates": committed,
                    "seconds": round(time.monotonic() - started, 2),
                    "rss_kib": rss_kib(pids),
                }
            )
            print(
                f"    {committed:>9,} updates, {samples[-1]['seconds']:7.1f} s, RSS MiB {_mib(samples[-1])}",
                flush=True,
            )

        try:
            why = load.run(args.updates, args.sample, on_sample)
        except KeyboardInterrupt:
            why = INTERRUPTED  # keep the samples so far; main stops after this row
        seconds = time.monotonic() - started
        row: Row = {
            "elected_s": round(started - began, 2),
            "leader": load.leaders[-1] if load.leaders else leader,
            "leaders": load.leaders,
            "samples": samples,
            "committed": load.committed,
            "seconds": round(seconds, 2),
            "upd_s": round(load.committed / seconds, 1) if seconds else None,
            "refused": load.refused,
            "lost": load.lost,
            "peak_rss_kib": {p: status_kib(pid, "VmHWM") for p, pid in pids.items()},
        }
        if why:
            row["error"] = why
        elif cluster.dead():
            row["error"] = cluster.dead()
        return row
    finally:
        cluster.stop()


def _mib(sample: Row) -> str:
    return "/".join("-" if v is None else f"{v / 1024:.0f}" for v in sample["rss_kib"].values())


def flatness(samples: list[Row], peer: str, from_updates: int) -> float | None:
    """max/min of ``peer``'s RSS over the samples at ``from_updates`` or later."""
    values = [s["rss_kib"][peer] for s in samples if s["updates"] >= from_updates and s["rss_kib"][peer]]
    return round(max(values) / min(values), 3) if len(values) > 1 else None


def analyse(row: Row, args: argparse.Namespace) -> Row:
    """Per peer, in role order: max/min after warm-up, from the first loaded sample, from start."""
    if not row.get("samples"):
        return {}
    samples = row["samples"]
    peers = sorted(samples[0]["rss_kib"], key=lambda p: (p != row["leader"], p))
    out: Row = {}
    for n, p in enumerate(peers):
        label = "L" if n == 0 else f"F{n}"
        out[label] = {
            "peer": p,
            "warm": flatness(samples, p, args.flat_from),
            "loaded": flatness(samples, p, args.sample),
            "all": flatness(samples, p, 0),
        }
    return out


def cache_cost(default: Row, probe: Row, args: argparse.Namespace) -> Row:
    """Bytes per cached id from outside: RSS(default) - RSS(probe) at each warm sample, per role,
    divided by the ids the default cache holds more there (one id per update, up to each cap)."""
    if "error" in default or "error" in probe or not default.get("samples") or not probe.get("samples"):
        return {}

    def extra_ids(updates: int) -> int:
        return min(updates, DEFAULT_CACHE_MAX) - min(updates, args.cache_probe)

    out: Row = {}
    roles_d, roles_p = analyse(default, args), analyse(probe, args)
    for role in roles_d:
        if role not in roles_p:
            continue
        pd, pp = roles_d[role]["peer"], roles_p[role]["peer"]
        by_updates = {s["updates"]: s["rss_kib"][pp] for s in probe["samples"]}
        diffs = [
            (s["rss_kib"][pd] - by_updates[s["updates"]]) * 1024 / extra_ids(s["updates"])
            for s in default["samples"]
            if s["updates"] >= args.flat_from
            and by_updates.get(s["updates"])
            and s["rss_kib"][pd]
            and extra_ids(s["updates"]) > 0
        ]
        if diffs:
            out[role] = round(statistics.median(diffs), 1)
    return out


def print_table(doc: Row, args: argparse.Namespace) -> None:
    cfg = doc["config"]
    print()
    print(
        f"VmRSS (MiB) of each peer of a 3-peer cluster, default options, {cfg['updates']:,} updates of "
        f"{cfg['size']} bytes at {cfg['inflight']} in flight; sampled idle after the election (start) and "
        f"every {cfg['sample']:,} committed updates"
    )
    print(
        f"max/min of the samples: from {args.flat_from:,} (the cache full), from {args.sample:,} "
        f"(loaded), and from start; flat = max/min <= {FLAT:.2f}"
    )
    for rnd in doc["rounds"]:
        for name, row in rnd["systems"].items():
            print()
            title = f"round {rnd['round']} {name}"
            if "upd_s" in row:
                title += (
                    f": {row['committed']:,} committed in {row['seconds']:.0f} s ({row['upd_s']:,.0f} upd/s)"
                )
            print(title + (f"  ERROR {row['error']}" if "error" in row else ""))
            samples = row.get("samples") or []
            if not samples:
                continue
            heads = ["start"] + [f"{s['updates'] // 1000}k" for s in samples[1:]]
            print(
                f"  {'peer':<6}"
                + "".join(f"{h:>6}" for h in heads)
                + f"{'>=' + str(args.flat_from // 1000) + 'k':>9}{'>=' + str(args.sample // 1000) + 'k':>9}"
                + f"{'all':>7}  peak"
            )
            for role, fl in row["flat"].items():
                p = fl["peer"]
                cells = "".join(f"{(s['rss_kib'][p] or 0) / 1024:>6.0f}" for s in samples)
                verdict = "" if fl["warm"] is None else ("  flat" if fl["warm"] <= FLAT else "  GROWS")
                peak = row["peak_rss_kib"].get(p)
                ratios = f"{_fmt(fl['warm']):>9}{_fmt(fl['loaded']):>9}{_fmt(fl['all']):>7}"
                peak_mib = "-" if peak is None else f"{peak / 1024:.0f}"
                print(f"  {role + ' ' + p:<6}{cells}{ratios}  {peak_mib}{verdict}")
            if row.get("refused") or row.get("lost") or len(row.get("leaders", [])) > 1:
                print(
                    f"  leaders {row['leaders']}, refused {row['refused']}, uncounted in flight {row['lost']}"
                )
        if rnd.get("cache_cost"):
            costs = ", ".join(f"{role} {b:.0f}" for role, b in rnd["cache_cost"].items())
            print()
            print(
                f"round {rnd['round']}: bytes per cached id, estimated from outside (RSS of asyncio minus "
                f"asyncio with requestIdCacheMax {args.cache_probe:,}, over the ids the default cache holds "
                f"more, median of the samples from {args.flat_from // 1000}k): {costs}"
            )
    for name, why in cfg["skipped"].items():
        print(f"{name}: {why}")
    if doc.get("interrupted"):
        print("interrupted: only the systems above were completed")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run every system; ``argv`` None (as bench/run.py calls it) means the defaults."""
    args = parse_args([] if argv is None else list(argv))
    commands: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for name in args.systems:
        if name == "original":
            cmd, why = original_command(args.original)
            if cmd is None:
                skipped[name] = why
                continue
            commands[name] = cmd
        else:
            commands[name] = runtime_command(name)
    extras: dict[str, Row | None] = dict.fromkeys(commands)
    probe = f"asyncio-cache{args.cache_probe}"
    if args.cache_probe:
        commands[probe] = runtime_command("asyncio")
        extras[probe] = {"requestIdCacheMax": args.cache_probe}
    systems = list(commands)
    for name, why in skipped.items():
        print(f"{name}: {why}", flush=True)
    if not systems:
        print("nothing to measure", file=sys.stderr)
        return 2
    doc: Row = {
        "config": {
            "updates": args.updates,
            "sample": args.sample,
            "flat_from": args.flat_from,
            "inflight": args.inflight,
            "size": args.size,
            "cache_probe": args.cache_probe,
            "systems": systems,
            "commands": commands,
            "skipped": skipped,
            "cpus": os.cpu_count(),
        },
        "rounds": [],
    }
    root = Path(tempfile.mkdtemp(prefix="zmqraft-memory-", dir=args.dir))
    ctx: Ctx = zmq.Context()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for n in range(args.rounds):
            shift = n % len(systems)
            order = systems[shift:] + systems[:shift]
            rnd: Row = {"round": n + 1, "order": order, "loadavg": os.getloadavg()[0], "systems": {}}
            doc["rounds"].append(rnd)
            for name in order:
                print(f"  round {n + 1}/{args.rounds} {name}", flush=True)
                where = root / f"round{n + 1}-{name}"
                try:
                    row = measure_cluster(ctx, commands[name], where, args, extras[name])
                except OSError as exc:
                    row = {"error": f"{type(exc).__name__}: {exc}"}
                row["flat"] = analyse(row, args)
                rnd["systems"][name] = row
                if not args.keep:
                    shutil.rmtree(where, ignore_errors=True)
                if row.get("error") == INTERRUPTED:
                    raise KeyboardInterrupt
            rnd["systems"] = {s: rnd["systems"][s] for s in systems if s in rnd["systems"]}
            if args.cache_probe and "asyncio" in rnd["systems"]:
                rnd["cache_cost"] = cache_cost(rnd["systems"]["asyncio"], rnd["systems"][probe], args)
    except KeyboardInterrupt:
        doc["interrupted"] = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        ctx.destroy(linger=0)
        if args.keep:
            print(f"data and peer output kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(doc, args)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    else:
        print(json.dumps(doc), file=sys.stderr, flush=True)
    return 130 if doc.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
