"""Three-peer clusters side by side, in interleaved rounds: the project on its asyncio runtime
(``python -m zmqraft.asyncio``) and on gevent (``python -m zmqraft.gevent``), the ORIGINAL Node
implementation when it is installed, and a bare ROUTER echo server (the ceiling of the
client + ZeroMQ path).  Figures are printed, never asserted.

Every system is driven by the same raw-pyzmq closed-loop client (``_cluster_procs.py``: the
shape of the reference measurement ../shared/bench/load.py, which our targets are judged by),
against real processes on 127.0.0.1 with ephemeral ports and data in a temporary directory.
Every peer runs with default options except its addresses and data directory, so durability
is whatever the defaults give (every log append fdatasync'd before its update counts as
committed).  Per round, system and payload size:

* committed updates/s (and MB/s of update data) with ``--inflight`` (64) updates in flight;
* p50 and p99 latency with 1 in flight (and p50 with 64, in the JSON);
* CPU µs per committed update of the leader and of a follower (mean of the two), from
  utime + stime of /proc/<pid>/stat over the 64-in-flight run;
* peak resident memory of each peer (VmHWM of /proc/<pid>/status) at the end of the round.

``--curve`` adds ``asyncio-curve`` and ``gevent-curve`` (for the runtimes among the systems):
the same cluster with CurveZMQ on (``curve.keys``, ``curve.clients`` admitting the bench
client's key) and the raw client on CURVE sockets.  Their ratios to the plaintext runtime
(``asyncio-curve/asyncio``: throughput with curve on over curve off, latency and CPU off over
on, < 1 is the cost of curve) are in the ratio table and the JSON's ``ratios``, and the
throughput ratio again in the JSON's ``summary.curve``.

A shared machine's load drifts, so absolute figures are noisy: the systems take turns within
every round (the order rotates from round to round), and each comparison is the median over
rounds of per-round ratios (as compare.py does).  Ratios favour the first system when > 1:
throughput a/b, latency and CPU b/a.  They are against the original (when it runs) and
gevent against asyncio; "of echo" is a system's throughput over the echo server's.

Usage::

    python bench/bench_cluster.py [--rounds 3] [--seconds 4] [--inflight 64]
        [--size 100 | --sizes 100,4096,65536] [--systems echo,asyncio,gevent,original]
        [--curve] [--original PATH] [--json FILE] [--dir DIR] [--keep] [--cache-max N]

``--original PATH`` (or ``NZR=PATH``) names the folder holding ``bin/zmq-raft.js``, e.g. the
``node_modules/zmq-raft`` of an npm install (bench/install_original.sh); without it, or without
``node`` on PATH, the original is skipped with a note and ratios are against asyncio only.
A table goes to stdout; the per-round figures go to ``--json FILE`` as one document, or else
to stderr, one JSON line per round followed by a ``{"summary": ...}`` line.

Environment (defaults of the options, as before): ``ZMQRAFT_BENCH_SECONDS`` (``--seconds``,
now per measurement), ``ZMQRAFT_BENCH_INFLIGHT`` (``--inflight``), ``ZMQRAFT_BENCH_SIZE``
(``--size``), ``ZMQRAFT_BENCH_DIR`` (``--dir``), ``ZMQRAFT_BENCH_CACHE_MAX``
(``--cache-max``: ``requestIdCacheMax`` of every peer; unset, the default), ``ZMQRAFT_BENCH_KEEP=1``
(``--keep``: keep the data and the peers' output), ``ZMQRAFT_BENCH_RUNTIMES`` (``--systems``;
the first runtime is no longer the baseline: ratios are against the original and asyncio).
The old periodic RSS line of long runs is replaced by each peer's peak RSS.

``Bench`` (one asyncio cluster and this client) is what bench_client.py measures against.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster_procs import (
    Cluster,
    CurveClient,
    Echo,
    LoadResult,
    RequestIds,
    closed_loop,
    cpu_seconds,
    dealer,
    status_kib,
)

Row = dict[str, Any]
Ctx = zmq.Context[zmq.Socket[bytes]]

SYSTEMS = ("echo", "asyncio", "gevent", "original")
RUNTIMES = ("asyncio", "gevent")
CURVE_SUFFIX = "-curve"  # a runtime's cluster with CurveZMQ on (--curve)
ALL_SYSTEMS = (*SYSTEMS, *(rt + CURVE_SUFFIX for rt in RUNTIMES))
LEADER_TIMEOUT = 20.0  # a leader must appear this soon after the peers start
WARMUP_WINDOW, WARMUP_SECONDS = 16, 1.0  # as the reference measurement
SUMMARY_KEYS = ("upd_s", "mb_s", "p50_64_ms", "p50_ms", "p99_ms", "cpu_leader_us", "cpu_follower_us")
# (key, higher is better): ratios are oriented so that > 1 favours the first system
METRICS = (
    ("upd_s", True),
    ("p50_ms", False),
    ("p99_ms", False),
    ("cpu_leader_us", False),
    ("cpu_follower_us", False),
)


def runtime_command(runtime: str) -> list[str]:
    """A project peer: the runtime's ``__main__`` is its console script (``zmq-raft``,
    ``zmq-raft-gevent``), and ``sys.executable`` needs no activated venv."""
    return [sys.executable, "-m", f"zmqraft.{runtime}"]


def original_command(path: str) -> tuple[list[str] | None, str]:
    """``node PATH/bin/zmq-raft.js``, or None and why it cannot run."""
    if not path:
        return None, "skipped: give --original PATH or NZR=PATH (the folder holding bin/zmq-raft.js)"
    script = Path(path).expanduser() / "bin" / "zmq-raft.js"
    if not script.is_file():
        return None, f"skipped: no {script}"
    node = shutil.which("node")
    if node is None:
        return None, "skipped: node is not on PATH"
    return [node, str(script.resolve())], ""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="bench_cluster.py",
        description="3-peer clusters (asyncio, gevent, the original) and an echo ceiling, interleaved.",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--seconds",
        type=float,
        default=float(env("ZMQRAFT_BENCH_SECONDS", "4")),
        help="seconds of the in-flight run; the 1-in-flight run takes half (default 4)",
    )
    p.add_argument(
        "--inflight",
        type=int,
        default=int(env("ZMQRAFT_BENCH_INFLIGHT", "64")),
        help="updates in flight for throughput and CPU (default 64)",
    )
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--size", type=int, default=int(env("ZMQRAFT_BENCH_SIZE", "100")), help="update bytes (default 100)"
    )
    sizes.add_argument("--sizes", help="update sizes, each measured in full, e.g. 100,4096,65536")
    p.add_argument(
        "--systems",
        default=env("ZMQRAFT_BENCH_RUNTIMES", ",".join(SYSTEMS)),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default all)",
    )
    p.add_argument(
        "--curve",
        action="store_true",
        help="also each runtime with CurveZMQ on (asyncio-curve, gevent-curve): the cost of curve as ratios",
    )
    p.add_argument("--original", default=env("NZR", ""), help="folder holding bin/zmq-raft.js (default $NZR)")
    p.add_argument("--json", metavar="FILE", help="write every figure here (default: JSON lines on stderr)")
    p.add_argument("--dir", default=env("ZMQRAFT_BENCH_DIR"), help="where the temporary data goes")
    keep = bool(env("ZMQRAFT_BENCH_KEEP"))
    p.add_argument("--keep", action="store_true", default=keep, help="keep the data and the peers' logs")
    p.add_argument(
        "--cache-max",
        type=int,
        default=int(env("ZMQRAFT_BENCH_CACHE_MAX") or 0) or None,
        help="requestIdCacheMax of every peer (default: the default)",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="instead: the latency budget of one update at 1 in flight, step by step (bench/trace_update.py)",
    )
    p.add_argument("--runtime", default="asyncio", choices=("asyncio", "gevent"), help="with --trace")
    p.add_argument("--updates", type=int, default=500, help="with --trace: updates traced (default 500)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.size]
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(args.systems) - set(ALL_SYSTEMS))
    if unknown:
        p.error(f"unknown systems {unknown}: choose from {','.join(ALL_SYSTEMS)}")
    if args.curve:
        extra = [rt + CURVE_SUFFIX for rt in RUNTIMES if rt in args.systems]
        if not extra:
            p.error("--curve measures the runtimes with curve on: give asyncio or gevent among --systems")
        args.systems += [s for s in extra if s not in args.systems]
    if args.rounds < 1 or args.seconds <= 0 or args.inflight < 1 or min(args.sizes) < 1:
        p.error("--rounds, --seconds, --inflight and sizes must be positive")
    return args


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def measure_sizes(
    ctx: Ctx,
    find_leader: Callable[[], str | None],
    urls: dict[str, str],
    pids: dict[str, int],
    args: argparse.Namespace,
    curve: CurveClient | None = None,
) -> Row:
    """Every size on one running system: warm-up, ``inflight`` in flight (throughput, CPU),
    then 1 in flight (latency).  The leader is looked up again before each size, so a change
    of leader between runs moves the client rather than failing every later run.  ``curve``:
    the client's CURVE keys."""
    row: Row = {"sizes": {}}
    for size in args.sizes:
        leader = find_leader()
        if leader is None:
            row["error"] = f"no leader before the {size}-byte run"
            break
        url = urls[leader]
        closed_loop(ctx, url, WARMUP_WINDOW, size, WARMUP_SECONDS, curve=curve)
        before = {p: cpu_seconds(pid) for p, pid in pids.items()}
        many = closed_loop(ctx, url, args.inflight, size, args.seconds, curve=curve)
        cpu_us = {p: (cpu_seconds(pid) - before[p]) / max(many.committed, 1) * 1e6 for p, pid in pids.items()}
        one = closed_loop(ctx, url, 1, size, args.seconds / 2, curve=curve)
        followers = [us for p, us in cpu_us.items() if p != leader]
        figures: Row = {
            "leader": leader,
            "upd_s": round(many.ops_per_s, 1),
            "mb_s": round(many.ops_per_s * size / 1e6, 3),
            "p50_64_ms": _r(many.quantile_ms(0.5)),
            "p50_ms": _r(one.quantile_ms(0.5)),
            "p99_ms": _r(one.quantile_ms(0.99)),
            "cpu_leader_us": _r(cpu_us[leader], 1),
            "cpu_follower_us": _r(statistics.mean(followers), 1) if followers else None,
            "cpu_peer_us": {p: round(us, 1) for p, us in cpu_us.items()},
            "ops": many.ops,
            "ops_1": one.ops,
        }
        problems = {f"@{r.window}": r.problems() for r in (many, one) if r.problems()}
        if problems:
            figures["problems"] = problems
            hint = many.leader_hint or one.leader_hint
            if hint:
                figures["leader_hint"] = hint
        row["sizes"][str(size)] = figures
        if not many.ops or not one.ops:
            row["error"] = f"nothing committed in the {size}-byte run: {_describe(many, one)}"
            break
    return row


def _describe(*results: LoadResult) -> str:
    return ", ".join(f"@{r.window} {r.ops} ops {r.problems() or ''}".rstrip() for r in results)


def peak_rss(pids: dict[str, int], leader: str | None) -> Row:
    """VmHWM of every peer, in KiB, and in role order (leader first) for the table."""
    kib = {p: status_kib(pid, "VmHWM") for p, pid in pids.items()}
    order = sorted(kib, key=lambda p: (p != leader, -(kib[p] or 0)))
    return {"peak_rss_kib": kib, "peak_rss_roles_kib": [kib[p] for p in order]}


def measure_echo(ctx: Ctx, root: Path, args: argparse.Namespace) -> Row:
    echo = Echo(root)
    try:
        if not echo.wait_ready(ctx, 10.0):
            return {"error": f"echo server not answering within 10 s: {echo.proc.tail() or '(no output)'}"}
        pids = {"e": echo.proc.pid}
        row = measure_sizes(ctx, lambda: "e", {"e": echo.url}, pids, args)
        row.update(peak_rss(pids, "e"))
        return row
    finally:
        echo.stop()


def measure_cluster(
    ctx: Ctx, command: list[str], root: Path, args: argparse.Namespace, curve: bool = False
) -> Row:
    """A fresh cluster per round and system (a fresh log, so earlier runs do not slow later
    ones).  How its peers stopped goes into the row: a peer that ignores SIGTERM, or exits
    with an error when asked to close, is behaviour worth seeing.  ``curve``: CurveZMQ on
    (fresh keys per cluster)."""
    extra: dict[str, object] | None = {"requestIdCacheMax": args.cache_max} if args.cache_max else None
    cluster = Cluster(command, root, extra=extra, curve=curve)
    try:
        cluster.start()
        row = _measure_running(ctx, cluster, args)
    finally:
        cluster.stop()
    stops = {p: proc.stop_note for p, proc in cluster.procs.items() if proc.stop_note}
    if stops:
        row["stop"] = stops
    return row


def _measure_running(ctx: Ctx, cluster: Cluster, args: argparse.Namespace) -> Row:
    began = time.monotonic()
    leader = cluster.wait_leader(ctx, LEADER_TIMEOUT)
    if leader is None:
        return {"error": cluster.dead() or f"no leader within {LEADER_TIMEOUT:.0f} s: {cluster.tails()}"}
    row: Row = {"election_s": round(time.monotonic() - began, 3)}
    pids = cluster.pids()

    def find() -> str | None:
        return cluster.wait_leader(ctx, 5.0)

    row.update(measure_sizes(ctx, find, cluster.urls, pids, args, cluster.curve_client))
    last = list(row["sizes"].values())[-1]["leader"] if row["sizes"] else leader
    row.update(peak_rss(pids, last))
    if cluster.dead():
        row["error"] = cluster.dead()
    return row


def measure(ctx: Ctx, name: str, command: list[str], root: Path, args: argparse.Namespace) -> Row:
    """One system's row of a round; an unexpected failure (an OSError reading /proc of a peer
    that just died, say) becomes that row's error instead of ending the other systems' rounds."""
    try:
        if name == "echo":
            return measure_echo(ctx, root, args)
        return measure_cluster(ctx, command, root, args, curve=name.endswith(CURVE_SUFFIX))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def ratio(a: Row, b: Row, size: str, key: str, higher_better: bool) -> float | None:
    """a's advantage over b (> 1 favours a); None when either side has no figure."""
    if "error" in a or "error" in b:
        return None
    x: float | None = a.get("sizes", {}).get(size, {}).get(key)
    y: float | None = b.get("sizes", {}).get(size, {}).get(key)
    if not x or not y:
        return None
    return round(x / y if higher_better else y / x, 3)


def pairs(systems: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons: each runtime against the original (when it ran), gevent against
    asyncio, and each runtime with curve on against itself with curve off."""
    out = [(s, "original") for s in RUNTIMES if s in systems and "original" in systems]
    if "gevent" in systems and "asyncio" in systems:
        out.append(("gevent", "asyncio"))
    out += [(rt + CURVE_SUFFIX, rt) for rt in RUNTIMES if rt in systems and rt + CURVE_SUFFIX in systems]
    return out


def round_ratios(rows: dict[str, Row], systems: Sequence[str], sizes: Sequence[int]) -> Row:
    out: Row = {}
    for a, b in pairs(systems):
        out[f"{a}/{b}"] = {
            str(s): {key: ratio(rows[a], rows[b], str(s), key, hi) for key, hi in METRICS} for s in sizes
        }
    if "echo" in systems:
        for a in systems:
            if a != "echo":
                out[f"{a}/echo"] = {
                    str(s): {"upd_s": ratio(rows[a], rows["echo"], str(s), "upd_s", True)} for s in sizes
                }
    return out


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarize(rounds: list[Row], systems: Sequence[str], sizes: Sequence[int]) -> Row:
    """Medians over rounds of each system's figures and of each per-round ratio; peak RSS is
    the largest over rounds (per role: leader, then followers)."""
    figures: Row = {}
    for name in systems:
        rows = [r["systems"][name] for r in rounds if "error" not in r["systems"].get(name, {"error": ""})]
        per_size = {
            str(s): {
                key: _median([row["sizes"][str(s)].get(key) for row in rows if str(s) in row["sizes"]])
                for key in SUMMARY_KEYS
            }
            for s in sizes
        }
        roles = [row["peak_rss_roles_kib"] for row in rows if row.get("peak_rss_roles_kib")]
        peak = [max((r[i] or 0) for r in roles) for i in range(min(map(len, roles)))] if roles else []
        figures[name] = {"rounds_ok": len(rows), "sizes": per_size, "peak_rss_roles_kib": peak}
    ratios: Row = {}
    for pair in rounds[0]["ratios"] if rounds else {}:
        ratios[pair] = {
            size: {key: _median([r["ratios"][pair][size][key] for r in rounds]) for key in keys}
            for size, keys in rounds[0]["ratios"][pair].items()
        }
    curve = {
        pair.split("/")[1]: {size: r["upd_s"] for size, r in per_size.items()}
        for pair, per_size in ratios.items()
        if pair.split("/")[0] == pair.split("/")[1] + CURVE_SUFFIX  # not a curve system / echo
    }
    out: Row = {"medians": figures, "ratios": ratios}
    if curve:
        out["curve"] = curve  # runtime -> size -> throughput with curve on / curve off
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(doc: Row) -> None:
    cfg, summary = doc["config"], doc["summary"]
    print()
    print(
        f"3 peers per cluster on 127.0.0.1, default options (log appends fdatasync'd); "
        f"{len(doc['rounds'])} round(s), {cfg['seconds']:g} s at {cfg['inflight']} in flight and "
        f"{cfg['seconds'] / 2:g} s at 1; medians over rounds"
    )
    w = max([9, *(len(name) + 2 for name in summary["medians"])])  # the system column
    pw = max([18, *(len(pair) + 2 for pair in summary["ratios"])])  # the a/b column
    head = (
        f"{'system':<{w}}{'bytes':>7}{'upd/s @' + str(cfg['inflight']):>12}{'MB/s':>9}{'p50 @1 ms':>11}"
        f"{'p99 @1 ms':>11}{'CPU µs/upd L':>14}{'F':>6}  peak RSS MiB L/F/F"
    )
    print(head)
    for name, fig in summary["medians"].items():
        if not fig["rounds_ok"]:
            print(f"{name:<{w}}  no successful round (see notes)")
            continue
        for n, (size, f) in enumerate(fig["sizes"].items()):
            rss = "/".join(f"{k / 1024:.0f}" for k in fig["peak_rss_roles_kib"]) if n == 0 else ""
            label = name if n == 0 else ""
            print(
                f"{label:<{w}}{size:>7}{_fmt(f['upd_s'], ',.0f'):>12}{_fmt(f['mb_s'], '.2f'):>9}"
                f"{_fmt(f['p50_ms'], '.3f'):>11}{_fmt(f['p99_ms'], '.3f'):>11}"
                f"{_fmt(f['cpu_leader_us'], '.0f'):>14}{_fmt(f['cpu_follower_us'], '.0f'):>6}  {rss}".rstrip()
            )
    comparisons = {k: v for k, v in summary["ratios"].items() if not k.endswith("/echo")}
    if comparisons:
        print()
        print("median of per-round ratios, > 1 favours the first (throughput a/b; latency and CPU b/a)")
        print(f"{'a/b':<{pw}}{'bytes':>7}{'upd/s':>8}{'p50 @1':>8}{'p99 @1':>8}{'CPU L':>8}{'CPU F':>8}")
        for pair, per_size in comparisons.items():
            for n, (size, r) in enumerate(per_size.items()):
                cells = "".join(f"{_fmt(r[key], '.2f'):>8}" for key, _ in METRICS)
                print(f"{pair if n == 0 else '':<{pw}}{size:>7}{cells}")
    echo = {k: v for k, v in summary["ratios"].items() if k.endswith("/echo")}
    if echo:
        print()
        for size in cfg["sizes"]:
            parts = [f"{k.split('/')[0]} {_fmt(v[str(size)]['upd_s'], '.2f')}" for k, v in echo.items()]
            print(f"of the echo ceiling ({size} bytes, upd/s): " + ", ".join(parts))
    for runtime, per_size in summary.get("curve", {}).items():
        cells = ", ".join(f"{size} bytes {_fmt(r, '.2f')}" for size, r in per_size.items())
        print(f"CurveZMQ on / off, {runtime} (upd/s @{cfg['inflight']}): {cells}")
    notes = [f"{name}: {why}" for name, why in cfg["skipped"].items()]
    for r in doc["rounds"]:
        for name, row in r["systems"].items():
            if "error" in row:
                notes.append(f"round {r['round']} {name}: {row['error']}")
            if "stop" in row:
                notes.append(f"round {r['round']} {name} stopping: {row['stop']}")
            for size, f in row.get("sizes", {}).items():
                if "problems" in f:
                    notes.append(f"round {r['round']} {name} {size} bytes: {f['problems']}")
    if doc.get("interrupted"):
        notes.append("interrupted: only the rounds above were completed")
    if notes:
        print()
        print("notes:")
        for note in notes:
            print(f"  {note}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def trace_one_update(args: argparse.Namespace) -> int:
    """``--trace``: a traced cluster of ``args.runtime``, updates one at a time."""
    import trace_update

    root = Path(tempfile.mkdtemp(prefix="zmqraft-trace-", dir=args.dir))
    try:
        result, traced = trace_update.run(runtime_command(args.runtime), root, args.updates)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    trace_update.print_budget(result, traced, args.runtime)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; ``argv`` None (as bench/run.py calls it) means the defaults."""
    args = parse_args([] if argv is None else list(argv))
    if args.trace:
        return trace_one_update(args)
    commands: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for name in args.systems:
        if name == "original":
            cmd, why = original_command(args.original)
            if cmd is None:
                skipped[name] = why
                continue
            commands[name] = cmd
        elif name != "echo":
            commands[name] = runtime_command(name.removesuffix(CURVE_SUFFIX))
    systems = [s for s in args.systems if s == "echo" or s in commands]
    for name, why in skipped.items():
        print(f"{name}: {why}", flush=True)
    if not systems:
        print("nothing to measure", file=sys.stderr)
        return 2
    doc: Row = {
        "config": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "inflight": args.inflight,
            "sizes": args.sizes,
            "systems": systems,
            "commands": commands,
            "skipped": skipped,
            "cache_max": args.cache_max,
            "cpus": os.cpu_count(),
        },
        "rounds": [],
    }
    root = Path(tempfile.mkdtemp(prefix="zmqraft-bench-", dir=args.dir))
    ctx: Ctx = zmq.Context()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for n in range(args.rounds):
            shift = n % len(systems)
            order = systems[shift:] + systems[:shift]
            rnd: Row = {"round": n + 1, "order": order, "loadavg": os.getloadavg()[0], "systems": {}}
            for name in order:
                row = measure(ctx, name, commands.get(name, []), root / f"round{n + 1}-{name}", args)
                rnd["systems"][name] = row
                _progress(n + 1, args.rounds, name, row)
                if not args.keep:
                    shutil.rmtree(root / f"round{n + 1}-{name}", ignore_errors=True)
            rnd["systems"] = {s: rnd["systems"][s] for s in systems}
            rnd["ratios"] = round_ratios(rnd["systems"], systems, args.sizes)
            doc["rounds"].append(rnd)
            if not args.json:
                print(json.dumps(rnd), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        doc["interrupted"] = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        ctx.destroy(linger=0)
        if args.keep:
            print(f"data and peer output kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    doc["summary"] = summarize(doc["rounds"], systems, args.sizes)
    print_table(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    else:
        print(json.dumps({"summary": doc["summary"]}), file=sys.stderr, flush=True)
    return 130 if doc.get("interrupted") else 0


def _progress(n: int, rounds: int, name: str, row: Row) -> None:
    """One line per system as it finishes: a long run shows it is alive."""
    if "error" in row and not row.get("sizes"):
        print(f"  round {n}/{rounds} {name}: {row['error']}", flush=True)
        return
    parts = [
        f"{size} B {f['upd_s']:,.0f} upd/s p50 {_fmt(f['p50_ms'], '.2f')} ms"
        for size, f in row["sizes"].items()
    ]
    error = f" ({row['error']})" if "error" in row else ""
    print(f"  round {n}/{rounds} {name}: " + "; ".join(parts) + error, flush=True)


class Bench:
    """One three-peer cluster of a runtime and this raw closed-loop client: the baseline
    bench_client.py measures the library's client against (its interface predates the rounds)."""

    def __init__(self, root: Path, cache_max: int | None = None, runtime: str = "asyncio") -> None:
        self.ctx: Ctx = zmq.Context()
        extra: dict[str, object] | None = {"requestIdCacheMax": cache_max} if cache_max is not None else None
        self.cluster = Cluster(runtime_command(runtime), root, extra=extra)
        self.urls = self.cluster.urls
        self.ids = RequestIds()
        try:
            self.cluster.start()
        except BaseException:
            self.close()
            raise
        self.procs = {p: proc.popen for p, proc in self.cluster.procs.items()}

    def close(self) -> None:
        self.cluster.stop()
        self.ctx.destroy(linger=0)

    def _sock(self, url: str) -> zmq.Socket[bytes]:
        return dealer(self.ctx, url)

    def leader(self, timeout: float = LEADER_TIMEOUT) -> str:
        leader = self.cluster.wait_leader(self.ctx, timeout)
        if leader is None:
            raise RuntimeError(f"no leader: {self.cluster.dead() or self.cluster.tails()}")
        return leader

    def run(self, seconds: float, inflight: int, size: int) -> tuple[int, float, float]:
        """Committed updates in ``seconds`` at the leader: (count, elapsed, mean latency ms)."""
        result = closed_loop(self.ctx, self.urls[self.leader()], inflight, size, seconds)
        return result.ops, result.seconds, 1000 * sum(result.latencies) / max(result.ops, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
