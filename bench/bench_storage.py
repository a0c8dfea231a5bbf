"""Durable appends with FileLog against a plain ``os.write`` + ``os.fdatasync`` loop.

Four timed runs of about 3 s each in one temporary directory (same disk, same run):

* baseline: append 100 bytes to a file and fdatasync, in a loop (syncs per second);
* FileLog, one entry (~100 bytes) per ``append`` (one fdatasync per entry);
* FileLog, 64 entries per ``append`` (group commit: one data write, one fdatasync);
* for context, the baseline loop writing 6400 bytes (the size of one 64-entry batch) per sync.

Figures are ratios against the baseline; absolute numbers are printed for context only.
Set ``ZMQRAFT_BENCH_DIR`` to measure another disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable

from zmqraft.core.protocol.entry import encode_entry
from zmqraft.core.storage.files import FileLog

RUN_SECONDS = 3.0
ENTRY_DATA = 80  # + 20 bytes of header = 100-byte entries
BATCH = 64


def _timed(step: Callable[[], int], seconds: float = RUN_SECONDS) -> tuple[int, int, float]:
    """Call ``step`` (returns items done) until ``seconds`` passed: (calls, items, elapsed)."""
    calls = items = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        items += step()
        calls += 1
        now = time.perf_counter()
    return calls, items, now - start


def _baseline(path: str, record: bytes) -> float:
    """Syncs per second of a plain append + fdatasync loop."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def plain() -> int:
        os.write(fd, record)
        os.fdatasync(fd)
        return 1

    try:
        calls, _, elapsed = _timed(plain)
    finally:
        os.close(fd)
    return calls / elapsed


def _filesystem(path: str) -> str:
    best = ("?", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mount, fstype = line.split()[:3]
                if path.startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
                    best = (mount, f"{fstype} on {dev}")
    except OSError:
        pass
    return best[1]


def main() -> None:
    base = os.environ.get("ZMQRAFT_BENCH_DIR") or tempfile.gettempdir()
    root = tempfile.mkdtemp(prefix="zmqraft-bench-", dir=base)
    try:
        print(f"temp dir {root} ({_filesystem(os.path.realpath(root))}), {RUN_SECONDS:.0f} s per run")
        payload = os.urandom(ENTRY_DATA)
        entry = encode_entry(b"\x00" * 4 + os.urandom(8), 0, 1, payload)

        base_rate = _baseline(os.path.join(root, "baseline"), entry)
        print(f"baseline os.write+fdatasync: {base_rate:9.0f} syncs/s ({len(entry)} bytes each)")

        log = FileLog(os.path.join(root, "single", "log"), os.path.join(root, "single", "snap"))

        def single() -> int:
            log.append(log.last_index + 1, [entry])
            return 1

        _, s_items, s_time = _timed(single)
        log.close()
        single_rate = s_items / s_time
        ratio = single_rate / base_rate
        print(f"FileLog 1 entry/append:      {single_rate:9.0f} entries/s = {ratio:5.2f} x baseline")

        log = FileLog(os.path.join(root, "batch", "log"), os.path.join(root, "batch", "snap"))
        batch = [entry] * BATCH

        def batched() -> int:
            log.append(log.last_index + 1, batch)
            return BATCH

        m_calls, m_items, m_time = _timed(batched)
        log.close()
        appends_rate = m_calls / m_time
        entries_rate = m_items / m_time
        print(
            f"FileLog {BATCH} entries/append:  {entries_rate:9.0f} entries/s = "
            f"{entries_rate / base_rate:5.2f} x baseline ({appends_rate:.0f} appends/s)"
        )
        big_rate = _baseline(os.path.join(root, "baseline-big"), entry * BATCH)
        print(
            f"baseline, {len(entry) * BATCH} bytes per sync: {big_rate:7.0f} syncs/s; "
            f"FileLog batches: {appends_rate / big_rate:4.2f} x that"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
