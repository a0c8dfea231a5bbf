"""Property test: random histories of appends, truncations, compactions, replacements and
restarts leave MemoryLog and FileLog in the same observable state."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import T0, entry
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.files import FileLog
from zmqraft.core.storage.memory import MemoryLog

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 9), st.integers(0, 2), st.integers(1, 40)),
        st.tuples(st.just("truncate"), st.integers(0, 100)),
        st.tuples(st.just("compact"), st.integers(0, 100)),
        st.tuples(st.just("replace"), st.integers(0, 60), st.integers(1, 9)),
        st.tuples(st.just("restart")),
    ),
    max_size=25,
)


def observe(log: Any) -> tuple[Any, ...]:
    last = log.last_index
    low = max(1, log.lowest_index)
    return (
        log.first_index,
        last,
        log.last_term,
        log.snapshot,
        log.read_snapshot(0, 1 << 20),
        [log.term_at(i) for i in range(max(0, low - 1), last + 2)],
        log.entries(low, last) if low <= last else [],
        [len(b) for b in log.entry_batches(log.first_index, last, 3, 100)] if log.first_index <= last else [],
        log.request_ids(T0 * 1000, 5_000_000, 7),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=ops)
def test_memory_and_file_logs_agree(history: list[tuple[Any, ...]], no_sync: None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        capacity = 4
        mem = MemoryLog(index_file_capacity=capacity)
        fil = FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=capacity)
        n = 0
        for op in history:
            kind = op[0]
            if kind == "append":
                _, count, bump, size = op
                term = mem.last_term + bump or 1
                batch = []
                for _ in range(count):
                    n += 1
                    batch.append(
                        entry(n, term=term, size=size, seconds=T0 - (n % 3) * 4000, zero_id=n % 5 == 0)
                    )
                first = mem.last_index + 1
                for log in (mem, fil):
                    log.append(first, batch)
            elif kind == "truncate":
                lo = mem.first_index - 1
                keep = lo + op[1] % (mem.last_index - lo + 1)
                for log in (mem, fil):
                    log.truncate(keep)
            elif kind == "compact":
                lo = mem.first_index - 1
                index = lo + op[1] % (mem.last_index - lo + 1)
                term = mem.term_at(index)
                assert term is not None
                data = f"c{index}".encode()
                for log in (mem, fil):
                    log.install_snapshot(SnapshotMeta(index, term, len(data)), data, compact_only=True)
            elif kind == "replace":
                index, term = op[1], mem.last_term + op[2]
                if mem.term_at(index) == term:
                    continue
                data = f"r{index}".encode()
                for log in (mem, fil):
                    log.install_snapshot(SnapshotMeta(index, term, len(data)), data)
            else:
                mem.restart()
                fil.close()
                fil = FileLog(str(root / "log"), str(root / "snap"), index_file_capacity=capacity)
            assert observe(fil) == observe(mem), op
        fil.close()
