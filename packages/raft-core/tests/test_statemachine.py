"""The state machine API and the broadcast state machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from zmqraft.core.jobs import ApplyJob
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, encode_entry
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import (
    BroadcastStateMachine,
    Reply,
    Snapshot,
    StateMachine,
    StateMachineError,
    run_apply_job,
    snapshot_of,
)
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.memory import MemoryLog, MemoryState


def entries(n: int, term: int = 1) -> list[bytes]:
    return [encode_entry(bytes(12), EntryType.STATE, term, b"x%d" % i) for i in range(n)]


def snap(index: int, data: bytes = b"") -> Snapshot:
    return Snapshot(SnapshotMeta(index, 1, len(data)), lambda off, n: data[off : off + n])


class Recording(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.updates: list[dict[str, Any]] = []

    def update(self, changes: Mapping[str, Any]) -> None:
        self.updates.append(dict(changes))
        super().update(changes)


def test_base_machine_counts_and_enforces_order() -> None:
    sm = StateMachine()
    assert sm.apply_entries(entries(3), 1, 1) == 3
    assert sm.apply_entries([], 4, 1) == 3
    with pytest.raises(StateMachineError, match="out of order"):
        sm.apply_entries(entries(1), 3, 1)
    with pytest.raises(StateMachineError, match="out of order"):
        sm.apply_entries(entries(1), 5, 1)
    assert sm.apply_entries(entries(2), 11, 1, snap(10)) == 12
    with pytest.raises(StateMachineError, match="out of order"):
        sm.apply_entries([], 11, 1, snap(10))  # not beyond last applied
    with pytest.raises(StateMachineError, match="out of order"):
        sm.apply_entries([], 20, 1, snap(15))  # next index must follow the snapshot


def test_broadcast_machine_keeps_last_applied_in_memory_and_flush_writes_it() -> None:
    state = Recording()
    state.update({"lastApplied": 4})
    state.updates.clear()
    sm = BroadcastStateMachine(state, "tcp://127.0.0.1:9", bind_url="tcp://*:9")
    assert sm.last_applied == 4 and sm.broadcast_bind == "tcp://*:9"
    assert not sm.blocking and sm.flush_interval == 1.0
    assert sm.apply_entries([], 5, 1) == 4
    assert sm.apply_entries(entries(3), 5, 2) == 7
    assert state.updates == []  # applying writes nothing: flush() does, off the loop
    sm.flush()
    assert state.updates == [{"lastApplied": 7}]
    sm.flush()
    assert state.updates == [{"lastApplied": 7}]  # nothing new, nothing written
    assert sm.apply_entries([], 101, 2, snap(100, b"ignored")) == 100
    with pytest.raises(StateMachineError):
        sm.apply_entries(entries(1), 100, 2)
    sm.close()  # close flushes what is left
    assert state.load()["lastApplied"] == 100
    assert BroadcastStateMachine(state, "tcp://127.0.0.1:9").last_applied == 100


def test_broadcast_machine_answers_the_url_request_only() -> None:
    sm = BroadcastStateMachine(MemoryState(), "tcp://127.0.0.1:9", bind_url="tcp://*:9")
    sent: list[tuple[bytes, list[bytes]]] = []

    def send(routing_id: bytes, frames: list[bytes]) -> None:
        sent.append((routing_id, frames))

    request = ClientRequest(b"rt", b"rid", m.REQUEST_BROADCAST_STATE_URL, ())
    assert sm.on_client_request(request, Reply(request, send))
    assert sent == [(b"rt", [b"rid", b"tcp://127.0.0.1:9"])]
    other = ClientRequest(b"rt", b"rid", b"Q", ())
    assert not sm.on_client_request(other, Reply(other, send))
    assert len(sent) == 1
    with pytest.raises(ValueError, match="50 ms"):
        BroadcastStateMachine(MemoryState(), "tcp://127.0.0.1:9", broadcast_heartbeat_interval=0.01)


def test_apply_job_feeds_the_snapshot_data_then_the_entries() -> None:
    log = MemoryLog()
    log.install_snapshot(SnapshotMeta(5, 1, 4), b"abcd")
    seen: list[Any] = []

    class Machine(StateMachine):
        def apply_entries(
            self, entries: list[bytes], next_index: int, term: int, snapshot: Any = None
        ) -> int:
            seen.append((snapshot.read(0, 100) if snapshot else None, next_index, len(entries), term))
            return super().apply_entries(entries, next_index, term, snapshot)

    sm = Machine()
    job = ApplyJob(6, entries(2), log.snapshot, term=3)
    assert run_apply_job(sm, job, log) == 7
    assert seen == [(b"abcd", 6, 2, 3)]
    reader = snapshot_of(log, log.snapshot)
    assert reader.data() == b"abcd" and list(reader.chunks(3)) == [b"abc", b"d"]
