"""RequestEntries reading a whole 200,000-entry log: the project on each runtime against the
ORIGINAL Node implementation, in interleaved rounds.  Figures are printed, never asserted.

The log is built once, with the project's own ``FileLog`` (the files are byte-compatible with
the original's, spec/storage.md): ``--entries`` (200,000) entries of ``--size`` (100) bytes each
(20 bytes of header + data, as bench_storage.py counts them), term 1, each with its own request
id, in index files of the default capacity.  Only ``log/`` and ``snap`` are written: every peer
creates its ``raft.pers`` from its config, raises its term past the log's and, once elected,
appends a CHECKPOINT that commits the log (spec/raft.md §6.1), so the state machine applies the
whole log before the bench reads it (RequestEntries serves up to the leader's lastApplied).

In each round every system gets a fresh copy of that directory in a fresh cluster (``--peers``,
1 by default; with 3 every peer gets the same copy), all of them running side by side, and a
ready check: the bench waits until RequestEntries of the last entry answers (the log is
applied).  Then ``--reads`` (5) passes, each reading entries 1..N once from every system in an
order that rotates from pass to pass: the systems compared in a pass share the machine's load,
and every comparison is the median over all passes of per-pass ratios.

A read is one RequestEntries stream from prevIndex 0 with count N (spec/protocol.md §9.5,
spec/client.md §4.1): every status-2 message is acknowledged at once with prevIndex = its last
index (the server keeps up to ``requestEntriesPipelines`` = 5 messages outstanding); the final
message has status 1 and is not acknowledged.  Each read checks that indexes arrive in order,
that exactly N entries came and that the last index is N.  The timed reads are made by
``entries_reader.c``, compiled with ``cc`` and libzmq into the temporary directory (about 0.2 µs
of CPU per entry), or by the pyzmq reader of this file when that cannot be built (about 1.1 µs
per entry: on 2 cores that alone holds every system near the original's rate).  Per read:
entries/s, MB/s of entry bytes, messages, the serving process's CPU µs per entry
(/proc/<pid>/stat) and the reader's.

``memserver`` is a plain pyzmq ROUTER (this file, run as a child) streaming the same entries
from memory with the original's grouping and pipelining: no storage, no Raft; a reference for
what the reader and the 5-message pipeline do on the machine, not a ceiling (it is Python too:
pyzmq sends frame by frame).  On a loaded machine a read (well under a second) is mostly waits
for a CPU, so entries/s moves by 2-3x from pass to pass; CPU per entry is the steadier figure.

Usage::

    python bench/bench_entries.py [--rounds 3] [--reads 5] [--entries 200000] [--size 100]
        [--peers 1] [--systems memserver,asyncio,gevent,original] [--reader auto|c|python]
        [--memserver-bytes 65536] [--original PATH] [--json FILE] [--dir DIR] [--keep]

``--original PATH`` (or ``NZR=PATH``): the folder holding ``bin/zmq-raft.js`` (see
bench/install_original.sh); without it, or without ``node``, the original is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster_procs import Cluster, Proc, RequestIds, cpu_seconds, dealer, free_ports, stop_all
from bench_cluster import original_command, runtime_command

Row = dict[str, Any]
Ctx = zmq.Context[zmq.Socket[bytes]]

SYSTEMS = ("memserver", "asyncio", "gevent", "original")
REQUEST_ENTRIES = b"<"
HEADER = 20  # request id, type, term (spec/protocol.md §5)
LEADER_TIMEOUT = 60.0  # the original took 4-22 s to elect itself on this log (once > 30 s)
READY_TIMEOUT = 60.0  # then the state machine applies the whole log
FIGURES = ("entries_s", "mb_s", "cpu_us_per_entry", "client_cpu_us_per_entry")
READ_TIMEOUT = 10.0  # silence that fails a read
PIPELINE = 5  # requestEntriesPipelines, the default
MESSAGE_ENTRIES, MESSAGE_BYTES = 4096, 65536  # how the original groups a message (§9.5)


def uint(value: int) -> bytes:
    """A ``uint`` frame: minimal little-endian bytes, 0 as one zero byte."""
    return value.to_bytes((value.bit_length() + 7) >> 3 or 1, "little")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="bench_entries.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument(
        "--reads", type=int, default=5, help="passes per round, each reading every system once (default 5)"
    )
    p.add_argument("--entries", type=int, default=200_000, help="entries in the log (default 200,000)")
    p.add_argument(
        "--size", type=int, default=100, help="bytes per entry, its 20-byte header included (default 100)"
    )
    p.add_argument("--peers", type=int, default=1, choices=(1, 3), help="peers per cluster (default 1)")
    p.add_argument(
        "--reader",
        choices=("auto", "c", "python"),
        default="auto",
        help="who times the reads: entries_reader.c (cc + libzmq) or pyzmq (default: C when it builds)",
    )
    p.add_argument(
        "--memserver-bytes",
        type=int,
        default=MESSAGE_BYTES,
        help="memserver: cut messages at this many bytes (default 65536, as the original; <= 4096 entries)",
    )
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"subset of {','.join(SYSTEMS)} (default all)"
    )
    p.add_argument("--original", default=env("NZR", ""), help="folder holding bin/zmq-raft.js (default $NZR)")
    p.add_argument("--json", metavar="FILE", help="write every figure here (default: JSON lines on stderr)")
    p.add_argument("--dir", default=env("ZMQRAFT_BENCH_DIR"), help="where the temporary data goes")
    p.add_argument("--keep", action="store_true", help="keep the data and the peers' logs")
    args = p.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(args.systems) - set(SYSTEMS))
    if unknown:
        p.error(f"unknown systems {unknown}: choose from {','.join(SYSTEMS)}")
    if args.rounds < 1 or args.reads < 1 or args.entries < 1 or args.size <= HEADER:
        p.error(f"--rounds, --reads and --entries must be positive and --size more than {HEADER}")
    return args


# ---- the log ---------------------------------------------------------------------------------


def log_entries(count: int, size: int) -> list[bytes]:
    """``count`` STATE entries of ``size`` bytes, term 1, each with a fresh request id."""
    from zmqraft.core.protocol.entry import EntryType, encode_entry

    ids = RequestIds()
    data = os.urandom(size - HEADER)
    return [encode_entry(ids.next(), EntryType.STATE, 1, data) for _ in range(count)]


def build_log(root: Path, entries: list[bytes]) -> float:
    """``root/log`` and ``root/snap`` holding ``entries`` from index 1; returns the seconds taken."""
    from zmqraft.core.storage.files import FileLog

    began = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    with FileLog(str(root / "log"), str(root / "snap")) as log:
        for first in range(0, len(entries), 4096):
            log.append(first + 1, entries[first : first + 4096])
        assert log.last_index == len(entries), log.last_index
    return time.monotonic() - began


# ---- the readers --------------------------------------------------------------------------------


class ReadError(Exception):
    """A read that did not deliver the log as asked (not leader, out of order, silence)."""


def read_entries(
    ctx: Ctx, url: str, prev: int, count: int, stream_id: int, timeout: float = READ_TIMEOUT
) -> Row:
    """Entries ``prev+1 .. prev+count`` in one RequestEntries stream, acknowledging every
    status-2 message at once; checks order, count and the last index.  Returns the figures."""
    sock = dealer(ctx, url)
    rid = uint(stream_id)
    received = nbytes = messages = 0
    last = prev
    try:
        began = time.monotonic()
        sock.send_multipart([rid, REQUEST_ENTRIES, b"", uint(prev), uint(count)])
        while True:
            if not sock.poll(int(timeout * 1000)):
                raise ReadError(f"no message for {timeout:g} s after index {last} ({received} entries)")
            reply = sock.recv_multipart()
            if reply[0] != rid:
                continue
            status = reply[1][0] if reply[1] else 0
            if status == 0:
                raise ReadError(f"not the leader (it names {reply[2:3]!r})")
            if status not in (1, 2) or len(reply) < 4:
                raise ReadError(f"unexpected reply: status {status}, {len(reply)} frames")
            entries = reply[4:]
            msg_last = int.from_bytes(reply[3], "little")
            if entries and msg_last - len(entries) != last:
                raise ReadError(f"out of order: {len(entries)} entries ending at {msg_last} after {last}")
            last = msg_last if entries else last
            received += len(entries)
            nbytes += sum(map(len, entries))
            messages += 1
            if status == 1:
                seconds = time.monotonic() - began
                if last != prev + count or received != count:
                    raise ReadError(
                        f"{received} entries ending at {last} (effective last {msg_last}), wanted {count}"
                    )
                return {"entries": received, "bytes": nbytes, "messages": messages, "seconds": seconds}
            sock.send_multipart([rid, REQUEST_ENTRIES, b"", uint(last), uint(count)])
    finally:
        sock.close(0)


def build_c_reader(where: Path) -> tuple[str | None, str]:
    """``entries_reader.c`` compiled into ``where``: (its path, "") or (None, why not)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc) on PATH"
    exe = where / "entries_reader"
    source = Path(__file__).resolve().parent / "entries_reader.c"
    done = subprocess.run([cc, "-O2", "-o", str(exe), str(source), "-lzmq"], capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"cc failed (libzmq headers missing?): {done.stderr.strip()[-200:]}"
    return str(exe), ""


def wait_applied(ctx: Ctx, url: str, index: int, timeout: float) -> float | None:
    """Seconds until entry ``index`` can be read (the leader has applied it), or None."""
    began = time.monotonic()
    deadline = began + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        try:
            read_entries(ctx, url, index - 1, 1, 1_000_000 + n, timeout=1.0)
            return time.monotonic() - began
        except ReadError:
            time.sleep(0.1)
    return None


# ---- the memory server: entries from memory with the server's grouping and pipelining -----------------


def memory_server(url: str, count: int, size: int, message_bytes: int = MESSAGE_BYTES) -> None:
    """A ROUTER serving RequestEntries of ``count`` ``size``-byte entries from memory, grouped
    and pipelined as the original does (at most 4096 entries or >= 64 KiB a message, at most
    5 messages unacknowledged); it answers RequestConfig as the leader, like the echo server.
    The ceiling of a Python server: frames leave through pyzmq's backend send, as the
    runtimes', from entries already in memory."""
    import msgpack

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    entries = log_entries(count, size)
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(url)
    streams: dict[tuple[bytes, bytes], list[int]] = {}  # key -> [next index, last, outstanding]

    per_message = min(MESSAGE_ENTRIES, -(-message_bytes // size))  # equal sizes: no summing
    send = zmq.backend.Socket.send  # the frame send the runtimes use (no Python wrapper)
    more = zmq.SNDMORE

    def pump(key: tuple[bytes, bytes], stream: list[int]) -> None:
        while stream[2] < PIPELINE and stream[0] <= stream[1]:
            first = stream[0]
            stream[0] = min(first + per_message, stream[1] + 1)
            final = stream[0] > stream[1]
            head = [key[0], key[1], b"\x01" if final else b"\x02", b"\xc0", uint(stream[0] - 1)]
            for frame in head:
                send(router, frame, more)
            for frame in entries[first - 1 : stream[0] - 2]:
                send(router, frame, more)
            send(router, entries[stream[0] - 2], 0)
            if final:
                del streams[key]
                return
            stream[2] += 1

    while True:
        frames = router.recv_multipart()
        if len(frames) < 4:
            continue
        if frames[2] == b"^":
            router.send_multipart(
                [frames[0], frames[1], b"\x01", msgpack.packb("c"), msgpack.packb([["c", url]])]
            )
            continue
        if frames[2] != REQUEST_ENTRIES or len(frames) < 5:
            continue
        key = (frames[0], frames[1])
        prev = int.from_bytes(frames[4], "little")
        want = int.from_bytes(frames[5], "little") if len(frames) > 5 and frames[5] else count
        stream = streams.get(key)
        if stream is not None:
            stream[2] -= 1  # an acknowledgement (the bench acknowledges in order)
        else:
            stream = streams[key] = [prev + 1, min(count, prev + want), 0]
            if stream[0] > stream[1]:
                del streams[key]
                router.send_multipart([key[0], key[1], b"\x01", b"\xc0", uint(min(count, prev))])
                continue
        pump(key, stream)


class MemoryServer:
    """``memory_server`` as a child process."""

    def __init__(self, root: Path, count: int, size: int, message_bytes: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.url = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        script = str(Path(__file__).resolve())
        argv = [sys.executable, script, "memserver", self.url, str(count), str(size), str(message_bytes)]
        self.proc = Proc("memserver", argv, root / "memserver.log", root)

    def stop(self) -> None:
        stop_all([self.proc])


# ---- rounds ------------------------------------------------------------------------------------


def c_read(exe: str, url: str, prev: int, count: int, stream_id: int) -> Row:
    """One stream read by ``entries_reader`` (the C reader); its CPU is its own."""
    argv = [exe, url, str(prev), str(count), str(stream_id), str(int(READ_TIMEOUT * 1000))]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=READ_TIMEOUT * 30)
    except subprocess.TimeoutExpired as exc:
        raise ReadError(f"the C reader did not finish within {exc.timeout:.0f} s") from exc
    try:
        got: Row = json.loads(done.stdout)
    except ValueError:
        raise ReadError(f"the C reader failed: {(done.stdout + done.stderr).strip()[:200]}") from None
    if "error" in got:
        raise ReadError(got["error"])
    return got


def one_read(ctx: Ctx, target: Target, args: argparse.Namespace, stream_id: int) -> Row:
    """One timed whole-log read of ``target``, with the server's and the reader's CPU."""
    cpu, mine = cpu_seconds(target.pid), time.process_time()
    if args.reader_exe:
        got = c_read(args.reader_exe, target.url, 0, args.entries, stream_id)
        client = got.pop("cpu")  # the C reader's own CPU
    else:
        got = read_entries(ctx, target.url, 0, args.entries, stream_id)
        client = time.process_time() - mine
    got["cpu_us_per_entry"] = round((cpu_seconds(target.pid) - cpu) / got["entries"] * 1e6, 3)
    got["client_cpu_us_per_entry"] = round(client / got["entries"] * 1e6, 3)
    got["entries_s"] = round(got["entries"] / got["seconds"], 1)
    got["mb_s"] = round(got["bytes"] / got["seconds"] / 1e6, 3)
    got["seconds"] = round(got["seconds"], 4)
    return got


@dataclass
class Target:
    """A running system ready to be read: the URL of its leader and that process."""

    url: str
    pid: int
    stop: Callable[[], None]
    info: Row = field(default_factory=dict)
    dead: Callable[[], str] = lambda: ""


def start_memserver(ctx: Ctx, root: Path, args: argparse.Namespace) -> Target | str:
    server = MemoryServer(root, args.entries, args.size, args.memserver_bytes)
    if wait_applied(ctx, server.url, args.entries, READY_TIMEOUT) is None:
        server.stop()
        return f"memory server not answering: {server.proc.tail() or '(no output)'}"
    return Target(
        server.url,
        server.proc.pid,
        server.stop,
        dead=lambda: server.proc.tail() if server.proc.exited() else "",
    )


def start_cluster(
    ctx: Ctx, command: list[str], root: Path, source: Path, args: argparse.Namespace
) -> Target | str:
    """A fresh cluster on fresh copies of the built log, its leader elected and the log applied."""
    cluster = Cluster(command, root, peers=args.peers)
    for peer in cluster.ids:
        shutil.copytree(source, root / "data" / peer)
    began = time.monotonic()
    cluster.start()
    leader = cluster.wait_leader(ctx, LEADER_TIMEOUT)
    if leader is None:
        why = cluster.dead() or f"no leader within {LEADER_TIMEOUT:.0f} s: {cluster.tails()}"
        cluster.stop()
        return why
    elected = time.monotonic() - began
    url = cluster.urls[leader]
    ready = wait_applied(ctx, url, args.entries, READY_TIMEOUT)
    if ready is None:
        cluster.stop()
        return f"entry {args.entries} not readable within {READY_TIMEOUT:.0f} s: {cluster.tails()}"
    info = {"leader": leader, "elected_s": round(elected, 2), "applied_s": round(ready, 2)}
    return Target(url, cluster.procs[leader].pid, cluster.stop, info, cluster.dead)


def start(
    ctx: Ctx, name: str, commands: dict[str, list[str]], root: Path, source: Path, args: argparse.Namespace
) -> Target | str:
    try:
        if name == "memserver":
            return start_memserver(ctx, root, args)
        return start_cluster(ctx, commands[name], root, source, args)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def run_round(
    ctx: Ctx,
    n: int,
    systems: list[str],
    commands: dict[str, list[str]],
    root: Path,
    source: Path,
    args: argparse.Namespace,
) -> Row:
    """Every system started side by side, then ``args.reads`` passes, each reading once from
    every system (the order rotating from pass to pass), so the systems compared in a pass ran
    under the same load: the ratios are per pass."""
    shift = n % len(systems)
    order = systems[shift:] + systems[:shift]
    rnd: Row = {"round": n + 1, "loadavg": os.getloadavg()[0], "systems": {}, "passes": []}
    targets: dict[str, Target] = {}
    try:
        for name in order:
            got = start(ctx, name, commands, root / f"round{n + 1}-{name}", source, args)
            if isinstance(got, str):
                rnd["systems"][name] = {"error": got}
                print(f"  round {n + 1}/{args.rounds} {name}: {got}", flush=True)
            else:
                targets[name] = got
                rnd["systems"][name] = {"reads": [], **got.info}
        for k in range(args.reads):
            live = [s for s in order if s in targets]
            live = live[k % len(live) :] + live[: k % len(live)] if live else []
            one: Row = {}
            for name in live:
                try:
                    one[name] = one_read(ctx, targets[name], args, 1 + k * len(systems) + order.index(name))
                except (ReadError, OSError) as exc:
                    rnd["systems"][name]["error"] = (
                        f"{type(exc).__name__}: {exc} {targets[name].dead()}".rstrip()
                    )
                    targets.pop(name).stop()
                    continue
                rnd["systems"][name]["reads"].append(one[name])
            rnd["passes"].append({"order": live, "ratios": pass_ratios(one)})
    finally:
        for target in targets.values():
            target.stop()
    for name, row in rnd["systems"].items():
        if row.get("reads"):
            row.update({key: statistics.median(r[key] for r in row["reads"]) for key in FIGURES})
            row["messages"] = row["reads"][0]["messages"]
        _progress(n + 1, args.rounds, name, row)
    rnd["systems"] = {s: rnd["systems"][s] for s in systems if s in rnd["systems"]}
    return rnd


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def pass_ratios(rows: dict[str, Row]) -> Row:
    """One pass's ratios, > 1 favouring the first: entries/s a/b and server CPU per entry b/a."""
    out: Row = {}
    pairs = [("asyncio", "original"), ("gevent", "original"), ("gevent", "asyncio")]
    pairs += [(s, "memserver") for s in ("asyncio", "gevent", "original")]
    for a, b in pairs:
        x, y = rows.get(a, {}), rows.get(b, {})
        if "entries_s" in x and "entries_s" in y:
            cpu = y["cpu_us_per_entry"] / x["cpu_us_per_entry"] if x["cpu_us_per_entry"] else None
            out[f"{a}/{b}"] = {
                "entries_s": round(x["entries_s"] / y["entries_s"], 3),
                "cpu": cpu and round(cpu, 3),
            }
    return out


def summarize(rounds: list[Row], systems: Sequence[str]) -> Row:
    """Each system's figures: medians over all its reads; each ratio: median over all passes."""
    medians: Row = {}
    for name in systems:
        reads = [x for r in rounds for x in r["systems"].get(name, {}).get("reads", [])]
        medians[name] = {"reads": len(reads), **{k: _median([x[k] for x in reads]) for k in FIGURES}}
    passes = [p for r in rounds for p in r["passes"]]
    pairs = list(dict.fromkeys(key for p in passes for key in p["ratios"]))
    ratios = {
        pair: {
            **{k: _median([p["ratios"].get(pair, {}).get(k) for p in passes]) for k in ("entries_s", "cpu")},
            "passes": sum(1 for p in passes if pair in p["ratios"]),
        }
        for pair in pairs
    }
    return {"medians": medians, "ratios": ratios}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(doc: Row) -> None:
    cfg, summary = doc["config"], doc["summary"]
    print()
    print(
        f"RequestEntries of a {cfg['entries']:,}-entry log ({cfg['size']}-byte entries), "
        f"{cfg['peers']} peer(s) per cluster, default options; "
        f"{len(doc['rounds'])} round(s) x {cfg['reads']} pass(es), reads by the {cfg['reader']} reader"
    )
    print("medians of every read (CPU: the serving process's and the reader's µs per entry)")
    print(f"{'system':<10}{'entries/s':>12}{'MB/s':>9}{'server CPU µs/entry':>21}{'reader':>8}{'reads':>7}")
    for name, m in summary["medians"].items():
        print(
            f"{name:<10}{_fmt(m['entries_s'], ',.0f'):>12}{_fmt(m['mb_s'], '.2f'):>9}"
            f"{_fmt(m['cpu_us_per_entry'], '.2f'):>21}{_fmt(m['client_cpu_us_per_entry'], '.2f'):>8}"
            f"{m['reads']:>7}"
        )
    if summary["ratios"]:
        print()
        print("median of per-pass ratios, > 1 favours the first (entries/s a/b; server CPU per entry b/a)")
        print(f"  {'a/b':<20}{'entries/s':>10}{'CPU':>8}{'passes':>8}")
        for pair, r in summary["ratios"].items():
            print(f"  {pair:<20}{_fmt(r['entries_s'], '.2f'):>10}{_fmt(r['cpu'], '.2f'):>8}{r['passes']:>8}")
    notes = [f"{name}: {why}" for name, why in cfg["skipped"].items()]
    for r in doc["rounds"]:
        for name, row in r["systems"].items():
            if "error" in row:
                notes.append(f"round {r['round']} {name}: {row['error']}")
    if doc.get("interrupted"):
        notes.append("interrupted: only the rounds above were completed")
    if notes:
        print()
        print("notes:")
        for note in notes:
            print(f"  {note}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Build the log, run the rounds; ``argv`` None (as bench/run.py calls it) means the defaults."""
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
        elif name != "memserver":
            commands[name] = runtime_command(name)
    systems = [s for s in args.systems if s == "memserver" or s in commands]
    for name, why in skipped.items():
        print(f"{name}: {why}", flush=True)
    if not systems:
        print("nothing to measure", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="zmqraft-entries-", dir=args.dir))
    source = root / "source"
    args.reader_exe, why = build_c_reader(root) if args.reader != "python" else (None, "")
    if args.reader_exe is None and args.reader == "c":
        print(f"no C reader: {why}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        return 2
    if why:
        skipped["C reader"] = f"{why}; the pyzmq reader times the reads"
    reader = "C (entries_reader.c)" if args.reader_exe else "pyzmq"
    built = build_log(source, log_entries(args.entries, args.size))
    print(f"built a {args.entries:,}-entry log in {built:.1f} s; reads by the {reader} reader", flush=True)
    doc: Row = {
        "config": {
            "rounds": args.rounds,
            "reads": args.reads,
            "entries": args.entries,
            "size": args.size,
            "peers": args.peers,
            "reader": reader,
            "systems": systems,
            "commands": commands,
            "skipped": skipped,
            "cpus": os.cpu_count(),
        },
        "rounds": [],
    }
    ctx: Ctx = zmq.Context()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for n in range(args.rounds):
            rnd = run_round(ctx, n, systems, commands, root, source, args)
            if not args.keep:
                for name in systems:
                    shutil.rmtree(root / f"round{n + 1}-{name}", ignore_errors=True)
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
    doc["summary"] = summarize(doc["rounds"], systems)
    print_table(doc)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    else:
        print(json.dumps({"summary": doc["summary"]}), file=sys.stderr, flush=True)
    return 130 if doc.get("interrupted") else 0


def _progress(n: int, rounds: int, name: str, row: Row) -> None:
    if "entries_s" not in row:
        print(f"  round {n}/{rounds} {name}: {row.get('error')}", flush=True)
        return
    extra = (
        f", elected {row['elected_s']} s, applied {row['applied_s']} s later" if "elected_s" in row else ""
    )
    error = f" ({row['error']})" if "error" in row else ""
    print(
        f"  round {n}/{rounds} {name}: {row['entries_s']:,.0f} entries/s, {row['mb_s']:.1f} MB/s, "
        f"{row['messages']} messages{extra}{error}",
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["memserver"] and len(sys.argv) == 6:
        from zmqraft.core.malloc_tuning import reexec_tuned

        reexec_tuned()  # the same malloc settings as the peers' commands
        memory_server(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main(sys.argv[1:]))
