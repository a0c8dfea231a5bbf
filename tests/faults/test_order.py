"""The order checker (``order_check``) on real peers under kill -9 and SIGSTOP of random
peers, both runtimes: writer threads and a writer process send updates with the real client
while ``Chaos`` strikes; afterwards the whole log is read back and every acknowledged update
must be there exactly once at its index, in real-time and per-writer order.

CI mode: 3 peers, one fault at a time, ~30 s of faults.  ``ZMQRAFT_LONG=1``: 5 peers, up to
two faults at a time, 10 minutes.  ``ZMQRAFT_SEED`` replays a run's faults.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
from order_check import Ack, Chaos, Unknown, check_order, parse_writer_output, write_until
from raft_harness import LONG, SERVER_PYTHON, Cluster, stored_log
from zmqraft.core.protocol.entry import EntryType, encode_entry

SECONDS = 600.0 if LONG else 30.0
PEERS = ["1", "2", "3", "4", "5"] if LONG else ["1", "2", "3"]
AT_ONCE = 2 if LONG else 1
THREAD_WRITERS = 6 if LONG else 3
PROCESS_WRITERS = 2 if LONG else 1
ORDER_CHECK = Path(__file__).with_name("order_check.py")


def e(rid: bytes, data: bytes) -> bytes:
    return encode_entry(rid, EntryType.STATE, 1, data)


def ack(writer: str, seq: int, index: int, sent: float, acked: float) -> Ack:
    return Ack(
        writer, seq, f"{writer}{seq}".encode().ljust(12, b"."), f"{writer}:{seq}".encode(), index, sent, acked
    )


def test_the_checker_finds_every_kind_of_violation() -> None:
    a1, a2, b1 = ack("a", 1, 1, 0.0, 1.0), ack("a", 2, 2, 1.1, 2.0), ack("b", 1, 3, 0.5, 3.0)
    log = [(a.index, e(a.rid, a.data)) for a in (a1, a2, b1)]
    assert check_order(log, [a1, a2, b1]).ok
    # lost: the acknowledged index holds nothing
    assert "not in the log (lost)" in check_order(log[:2], [a1, a2, b1]).problems[0]
    # duplicated: the same request id twice
    report = check_order([*log, (4, e(a1.rid, a1.data))], [a1, a2, b1])
    assert any("in the log 2 times" in p for p in report.problems)
    # at another index than acknowledged
    report = check_order([(1, log[1][1]), (2, log[0][1]), log[2]], [a1, a2, b1])
    assert any("the log holds it at [2]" in p for p in report.problems)
    # real time: c was sent after b1 was acknowledged but sits below it
    c = ack("c", 1, 2, 3.5, 4.0)
    report = check_order([log[0], (2, e(c.rid, c.data)), log[2]], [a1, b1, c])
    assert any(p.startswith("real-time order: b#1") for p in report.problems)
    # per writer: a#2 below a#1 (overlapping calls, so only the writer order is broken)
    x1, x2 = ack("a", 1, 2, 0.0, 2.0), ack("a", 2, 1, 0.1, 1.0)
    report = check_order([(1, e(x2.rid, x2.data)), (2, e(x1.rid, x1.data))], [x1, x2])
    assert report.problems == ["writer order: a#1 at 2, #2 at 1"]
    # an update of unknown outcome may be missing, never twice
    u = Unknown("d", 1, b"d1".ljust(12, b"."), b"d:1")
    assert check_order(log, [a1, a2, b1], [u]).ok
    report = check_order([*log, (4, e(u.rid, u.data)), (5, e(u.rid, u.data))], [a1, a2, b1], [u])
    assert any("outcome unknown" in p for p in report.problems)


@pytest.mark.timeout(SECONDS * 2 + 240)
def test_acknowledged_updates_keep_their_order_under_kills_and_pauses(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    seed = int(os.environ.get("ZMQRAFT_SEED") or random.randrange(1 << 30))
    print(f"\nZMQRAFT_SEED={seed}")
    cluster: Cluster = cluster_factory(PEERS)
    cluster.start()
    cluster.leader(timeout=20)
    urls = list(cluster.urls(PEERS).values())
    acks: list[Ack] = []
    unknown: list[Unknown] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def collect(item: Ack | Unknown) -> None:
        with lock:
            (acks if isinstance(item, Ack) else unknown).append(item)  # type: ignore[arg-type]

    def thread_writer(name: str) -> None:
        try:
            write_until(name, urls, cluster.secret, lambda: time.monotonic() >= deadline, collect, collect)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(f"t{n}",)) for n in range(THREAD_WRITERS)]
    procs = [
        subprocess.Popen(
            [
                SERVER_PYTHON,
                str(ORDER_CHECK),
                "writer",
                f"p{n}",
                cluster.secret.decode(),
                str(SECONDS),
                *urls,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESS_WRITERS)
    ]
    chaos = Chaos(cluster, random.Random(seed), at_once=AT_ONCE)
    try:
        for t in threads:
            t.start()
        chaos.start()
        for t in threads:
            t.join(SECONDS + 120)
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        chaos.stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert chaos.failure is None, chaos.failure
    assert not failures, failures
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        more_acks, more_unknown = parse_writer_output(out)
        acks += more_acks
        unknown += more_unknown
    print(f"faults: {len(chaos.log)} ({', '.join(chaos.log[:6])}{' ...' if len(chaos.log) > 6 else ''})")
    assert len(chaos.log) >= (10 if not LONG else 200)
    assert len(acks) >= 100, "the writers hardly got anything through"
    assert all(not t.is_alive() for t in threads)

    # read the whole log back from the leader with the real client
    cluster.leader(timeout=30)
    last = max(a.index for a in acks)
    cluster.wait_applied(last, timeout=60)
    from zmqraft.client import Client

    with Client(urls, secret=cluster.secret, rpc_timeout=60) as client:
        entries = [(item.index, item.raw) for item in client.request_entries(0)]  # type: ignore[union-attr]
    report = check_order(entries, acks, unknown)
    print(report.summary())
    assert report.ok, report.summary()

    # and every peer's files hold the same log
    cluster.stop()
    logs = {p: stored_log(cluster.data_dir(p), last)[0] for p in PEERS}
    assert all(entries_of == logs[PEERS[0]] for entries_of in logs.values())
    assert [raw for _, raw in entries[:last]] == logs[PEERS[0]]
