"""An order checker for a Raft log written under faults (reusable by any fault test).

Writers (threads, or processes: ``python order_check.py writer ...``) send updates one at a
time with the real ``zmqraft.client.Client``, each with a request id and a payload of their
own, and record every acknowledgement as an ``Ack`` with the monotonic times around the call
(CLOCK_MONOTONIC is shared by all processes of the machine).  ``Chaos`` kills (-9) and
pauses (SIGSTOP) random peers meanwhile.  Afterwards the whole log is read back and
``check_order`` says what is wrong:

* every acknowledged update is in the log exactly once, at its acknowledged index, with its
  data (nothing lost, nothing applied twice, no wrong index);
* an update whose outcome the writer never learnt (a timeout) is in the log at most once;
* real-time order (linearizability of appends): if A was acknowledged before B was sent,
  A's index is lower than B's;
* per-writer order: a writer's acknowledged updates have increasing indexes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from zmqraft.core.protocol.entry import EntryType, entry_request_id, entry_type


@dataclass(frozen=True, slots=True)
class Ack:
    writer: str
    seq: int  # the writer's own sequence number (it sends one update at a time)
    rid: bytes
    data: bytes
    index: int  # the acknowledged log index
    sent_at: float  # time.monotonic() just before the request was first sent
    acked_at: float  # time.monotonic() just after the acknowledgement arrived

    def to_json(self) -> str:
        doc = asdict(self)
        doc.update(rid=self.rid.hex(), data=self.data.hex())
        return json.dumps(doc)

    @classmethod
    def from_json(cls, line: str) -> Ack:
        doc = json.loads(line)
        doc.update(rid=bytes.fromhex(doc["rid"]), data=bytes.fromhex(doc["data"]))
        return cls(**doc)


@dataclass(frozen=True, slots=True)
class Unknown:
    """An update whose outcome the writer never learnt (it gave up after a timeout)."""

    writer: str
    seq: int
    rid: bytes
    data: bytes


@dataclass(slots=True)
class OrderReport:
    entries: int
    acked: int
    unknown: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{self.acked} acknowledged updates, {self.unknown} unknown, {self.entries} log entries"
        if self.ok:
            return head + ": order kept, nothing lost or duplicated"
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        return f"{head}: {len(self.problems)} problem(s)\n  {shown}{more}"


def check_order(
    entries: Iterable[tuple[int, bytes]], acks: Sequence[Ack], unknown: Sequence[Unknown] = ()
) -> OrderReport:
    """Check the log (``(index, raw entry)`` pairs) against what the writers saw."""
    at: dict[int, bytes] = {}
    where: dict[bytes, list[int]] = {}
    for index, raw in entries:
        at[index] = raw
        if entry_type(raw) == EntryType.STATE:
            where.setdefault(entry_request_id(raw), []).append(index)
    report = OrderReport(len(at), len(acks), len(unknown))
    problems = report.problems
    for rid, indexes in where.items():
        if len(indexes) > 1:
            problems.append(f"request id {rid.hex()} is in the log {len(indexes)} times: at {indexes}")
    seen_index: Counter[int] = Counter(a.index for a in acks)
    for index, n in seen_index.items():
        if n > 1:
            problems.append(f"index {index} was acknowledged to {n} updates")
    for a in acks:
        raw = at.get(a.index)
        if raw is None:
            problems.append(f"{a.writer}#{a.seq}: acknowledged at {a.index}, not in the log (lost)")
        elif entry_request_id(raw) != a.rid or raw[20:] != a.data:
            found = where.get(a.rid)
            problems.append(f"{a.writer}#{a.seq}: acknowledged at {a.index}, the log holds it at {found}")
    for u in unknown:
        if len(where.get(u.rid, ())) > 1:
            problems.append(f"{u.writer}#{u.seq} (outcome unknown) is in the log more than once")
    problems += _real_time_violations(acks)
    problems += _writer_order_violations(acks)
    return report


def _real_time_violations(acks: Sequence[Ack]) -> list[str]:
    """If A was acknowledged before B was sent, A.index < B.index (one sweep over both
    orders: for each B, the highest index among the updates acknowledged before it)."""
    by_ack = sorted(acks, key=lambda a: a.acked_at)
    ack_times = [a.acked_at for a in by_ack]
    best: list[Ack] = []  # best[k]: the ack with the highest index among by_ack[: k + 1]
    for a in by_ack:
        best.append(a if not best or a.index > best[-1].index else best[-1])
    out = []
    for b in acks:
        k = bisect_left(ack_times, b.sent_at)  # by_ack[:k] were acknowledged before b was sent
        if k and best[k - 1].index >= b.index:
            a = best[k - 1]
            out.append(
                f"real-time order: {a.writer}#{a.seq} acknowledged at {a.index} before "
                f"{b.writer}#{b.seq} was sent, which got the lower index {b.index}"
            )
    return out


def _writer_order_violations(acks: Sequence[Ack]) -> list[str]:
    out = []
    last: dict[str, Ack] = {}
    for a in sorted(acks, key=lambda a: (a.writer, a.seq)):
        prev = last.get(a.writer)
        if prev is not None and prev.index >= a.index:
            out.append(f"writer order: {a.writer}#{prev.seq} at {prev.index}, #{a.seq} at {a.index}")
        last[a.writer] = a
    return out


# ---- writers --------------------------------------------------------------------------------


def write_until(
    name: str,
    urls: list[str],
    secret: bytes,
    stop: Callable[[], bool],
    on_ack: Callable[[Ack], None],
    on_unknown: Callable[[Unknown], None],
    update_timeout: float = 15.0,
) -> None:
    """One writer: sequential updates with the real client until ``stop()`` says so."""
    from zmqraft.client import Client, RequestTimeoutError
    from zmqraft.core.protocol.reqid import RequestIdGenerator

    ids = RequestIdGenerator()
    seq = 0
    with Client(urls, secret=secret, timeout=0.3) as client:
        while not stop():
            seq += 1
            rid = ids.next(time.time())
            data = f"{name}:{seq}".encode()
            sent = time.monotonic()
            try:
                index = client.request_update(data, request_id=rid, timeout=update_timeout)
            except RequestTimeoutError:  # anything else is a failure of the test
                on_unknown(Unknown(name, seq, rid, data))
                continue
            on_ack(Ack(name, seq, rid, data, index, sent, time.monotonic()))


def writer_main(argv: list[str]) -> int:
    """``order_check.py writer NAME SECRET SECONDS URL...``: acks and unknowns as JSON lines."""
    name, secret, seconds, *urls = argv
    deadline = time.monotonic() + float(seconds)
    lock = threading.Lock()

    def emit(kind: str, line: str) -> None:
        with lock:
            print(kind, line, flush=True)

    write_until(
        name,
        urls,
        secret.encode(),
        lambda: time.monotonic() >= deadline,
        lambda a: emit("ack", a.to_json()),
        lambda u: emit(
            "unknown",
            json.dumps({"writer": u.writer, "seq": u.seq, "rid": u.rid.hex(), "data": u.data.hex()}),
        ),
    )
    return 0


def parse_writer_output(text: str) -> tuple[list[Ack], list[Unknown]]:
    acks, unknown = [], []
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "ack":
            acks.append(Ack.from_json(rest))
        elif kind == "unknown":
            doc = json.loads(rest)
            unknown.append(
                Unknown(doc["writer"], doc["seq"], bytes.fromhex(doc["rid"]), bytes.fromhex(doc["data"]))
            )
    return acks, unknown


# ---- faults ---------------------------------------------------------------------------------


class Chaos:
    """Kill -9 (then restart) or pause (SIGSTOP, then SIGCONT) random peers, at most
    ``at_once`` at a time, until stopped; ``heal()`` continues and restarts everyone."""

    def __init__(self, cluster: object, rng: random.Random, at_once: int = 1) -> None:
        self.cluster = cluster
        self.rng = rng
        self.at_once = at_once
        self.log: list[str] = []
        self._stop = threading.Event()
        self._paused: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        self.heal()

    def heal(self) -> None:
        peers = self.cluster.peers  # type: ignore[attr-defined]
        for pid in list(self._paused):
            self._cont(pid)
        for peer in peers.values():
            if peer.id in self.cluster.members and not peer.running:  # type: ignore[attr-defined]
                peer.start()

    def _cont(self, pid: str) -> None:
        proc = self.cluster.peers[pid].proc  # type: ignore[attr-defined]
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        self._paused.discard(pid)

    def _run(self) -> None:
        try:
            self._faults()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def _faults(self) -> None:
        cluster = self.cluster
        rng = self.rng
        while not self._stop.wait(rng.uniform(0.3, 1.2)):
            members = list(cluster.members)  # type: ignore[attr-defined]
            victims = rng.sample(members, rng.randint(1, self.at_once))
            started = time.monotonic()
            for pid in victims:
                peer = cluster.peers[pid]  # type: ignore[attr-defined]
                if rng.random() < 0.5:
                    peer.kill()
                    self.log.append(f"{started:.2f} kill -9 {pid}")
                elif peer.running:
                    os.kill(peer.proc.pid, signal.SIGSTOP)
                    self._paused.add(pid)
                    self.log.append(f"{started:.2f} SIGSTOP {pid}")
            if self._stop.wait(rng.uniform(0.2, 1.5)):
                break
            for pid in victims:
                peer = cluster.peers[pid]  # type: ignore[attr-defined]
                if pid in self._paused:
                    self._cont(pid)
                elif not peer.running:
                    peer.start()


if __name__ == "__main__":
    if sys.argv[1:2] == ["writer"]:
        sys.exit(writer_main(sys.argv[2:]))
    sys.exit("usage: order_check.py writer NAME SECRET SECONDS URL...")
