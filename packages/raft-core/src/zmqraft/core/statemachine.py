"""The state machine API (spec server-and-tools.md §a.2, §a.3), the same for every runtime.

A user's state machine subclasses ``StateMachine``.  The runtime calls

* ``apply_entries(entries, next_index, term, snapshot)`` with each batch of committed entries,
  strictly one call at a time and in log order.  When ``blocking`` is true (the default) the
  call happens in a worker thread (asyncio) or off the hub (gevent), so it may write and fsync
  files; everything else is called from the event loop;
* ``on_client_request(request, reply)`` for client messages of a type that is not a built-in
  RPC (ClientDispatch, spec protocol.md §9.7), including ``*`` (RequestBroadcastStateUrl);
* ``on_raft_state(role, term)`` on every role or term change;
* ``flush()`` off the event loop about every ``flush_interval`` seconds while entries are
  applied (when ``flush_interval`` is set): make durable what ``apply_entries`` kept in memory;
* ``close()`` once, when the server closes.

``last_applied`` is read once at start: it becomes the node's commit index and last applied
index, so a state machine that persists it is never fed the same entry twice.

``BroadcastStateMachine`` is the default: it keeps ``lastApplied`` (in ``state.pers``) and
announces a PUB url; the StateBroadcast messages themselves (after each applied batch and as
heartbeats while leader) are produced by the core's ``broadcast`` module and sent by the
runtime on the PUB socket bound at ``broadcast_bind``.

Why ``lastApplied`` is written about once a second, not fsync'd with every batch: it is only
where a restarted peer resumes applying.  A state machine that lost its newest value resumes
from an older index and is fed again what follows, all of which is durable in the log (the
node never applies past its durable index, so the value written is never ahead of the log);
request ids are rebuilt from the log, so a retried update still finds its entry; and the
broadcast state machine has no state but this index, so feeding it again re-publishes a batch
subscribers already saw, which they skip by index (spec protocol.md §10).  The original
fsync'd it per batch: a second, serial fdatasync on the path of every reply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from .jobs import ApplyJob
from .protocol import messages as m
from .raft.node import Role
from .server import ClientRequest, PeerServer
from .storage.base import LogStorage, SnapshotMeta, StateStorage


class StateMachineError(RuntimeError):
    """A state machine was fed out of order (the runtime treats it as fatal)."""


class SnapshotReader(Protocol):
    """The snapshot a batch starts from: its log index and term, and its data."""

    @property
    def index(self) -> int: ...

    @property
    def term(self) -> int: ...

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


class Snapshot:
    """A ``SnapshotReader`` over a read function (the log's snapshot file)."""

    __slots__ = ("_read", "meta")

    def __init__(self, meta: SnapshotMeta, read: Callable[[int, int], bytes]) -> None:
        self.meta = meta
        self._read = read

    @property
    def index(self) -> int:
        return self.meta.index

    @property
    def term(self) -> int:
        return self.meta.term

    @property
    def size(self) -> int:
        return self.meta.size

    def read(self, offset: int, length: int) -> bytes:
        return self._read(offset, length)

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        offset = 0
        while offset < self.size:
            piece = self._read(offset, min(chunk_size, self.size - offset))
            if not piece:
                break
            offset += len(piece)
            yield piece

    def data(self) -> bytes:
        return b"".join(self.chunks())

    def __repr__(self) -> str:
        return f"Snapshot(index={self.index}, term={self.term}, size={self.size})"


def snapshot_of(storage: LogStorage, meta: SnapshotMeta) -> Snapshot:
    """A reader of the snapshot ``meta`` of ``storage``.  With a ``FileLog`` it holds on to
    the snapshot file itself, so a snapshot installed meanwhile does not change what it reads."""
    file = getattr(storage, "snapshot_file", None)
    if file is not None and getattr(file, "meta", None) == meta:
        return Snapshot(meta, file.read)
    return Snapshot(meta, storage.read_snapshot)


class Reply:
    """Answers one client request: ``reply(frames)`` sends ``[request id, *frames]``."""

    __slots__ = ("_send", "request")

    def __init__(self, request: ClientRequest, send: Callable[[bytes, list[bytes]], None]) -> None:
        self.request = request
        self._send = send

    @property
    def routing_id(self) -> bytes:
        return self.request.routing_id

    @property
    def request_id(self) -> bytes:
        return self.request.request_id

    def __call__(self, frames: Sequence[bytes]) -> None:
        self._send(self.request.routing_id, [self.request.request_id, *frames])


def check_batch(last_applied: int, next_index: int, snapshot: SnapshotReader | None) -> None:
    """The feeding rules of spec §a.2 (raises ``StateMachineError``)."""
    if snapshot is not None:
        if next_index != snapshot.index + 1 or next_index <= last_applied:
            raise StateMachineError(
                f"trying to apply entries out of order: snapshot {snapshot.index}, next index "
                f"{next_index}, last applied {last_applied}"
            )
    elif next_index != last_applied + 1:
        raise StateMachineError(
            f"trying to apply entries out of order: next index {next_index}, last applied {last_applied}"
        )


class StateMachine:
    """Base class of user state machines; by itself it only counts what it was fed."""

    #: apply_entries / snapshot may block (file I/O): run them off the event loop
    blocking: bool = True
    #: where the runtime binds a PUB socket for StateBroadcast messages (None: no broadcasts)
    broadcast_bind: str | None = None
    #: seconds between StateBroadcast heartbeats of a leader
    broadcast_heartbeat_interval: float = 0.5
    #: seconds between ``flush()`` calls while entries are applied (None: never called)
    flush_interval: float | None = None

    def __init__(self, last_applied: int = 0) -> None:
        self.last_applied = last_applied

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        """Apply raw log entries (20-byte header + data; skip CONFIG and CHECKPOINT entries,
        byte 12 != 0) starting at ``next_index``; when ``snapshot`` is given, reset the state
        from it first.  Return the new last applied index, ``next_index + len(entries) - 1``."""
        check_batch(self.last_applied, next_index, snapshot)
        self.last_applied = next_index + len(entries) - 1
        return self.last_applied

    def snapshot(self) -> bytes | Iterable[bytes] | None:
        """The state as of ``last_applied``, for log compaction (None: not supported)."""
        return None

    def on_client_request(self, request: ClientRequest, reply: Reply) -> bool:
        """A custom client request; return True if it was answered (or will be)."""
        return False

    def on_raft_state(self, role: Role, term: int) -> None:
        """The peer's role or term changed."""

    def flush(self) -> None:
        """Make durable what ``apply_entries`` kept in memory (off the event loop, one call at
        a time, possibly while ``apply_entries`` runs on the loop for a non-blocking machine)."""

    def close(self) -> None:
        """Release resources (called once, after the last ``apply_entries``)."""


class BroadcastStateMachine(StateMachine):
    """The default state machine (spec §a.3): ``lastApplied`` in a state file, and the url of
    the PUB socket on which the leader publishes every applied batch.  Applying only moves an
    index in memory, so it does not block; ``flush`` writes the index (see the module doc)."""

    blocking = False
    flush_interval: float | None = 1.0

    def __init__(
        self,
        state: StateStorage,
        url: str,
        *,
        bind_url: str | None = None,
        broadcast_heartbeat_interval: float = 0.5,
    ) -> None:
        if broadcast_heartbeat_interval < 0.05:
            raise ValueError("broadcast heartbeat interval must be >= 50 ms")
        super().__init__(int(state.load().get("lastApplied") or 0))
        self.state = state
        self._persisted = self.last_applied
        self.url = url
        self.broadcast_bind = bind_url or url
        self.broadcast_heartbeat_interval = broadcast_heartbeat_interval

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        check_batch(self.last_applied, next_index, snapshot)
        last = next_index + len(entries) - 1
        if last <= self.last_applied:
            return self.last_applied  # nothing new
        self.last_applied = last
        return last

    def flush(self) -> None:
        last = self.last_applied  # one read: apply_entries may move it meanwhile
        if last != self._persisted:
            self.state.update({"lastApplied": last})
            self._persisted = last

    def on_client_request(self, request: ClientRequest, reply: Reply) -> bool:
        if request.type != m.REQUEST_BROADCAST_STATE_URL:
            return False
        reply(m.RequestBroadcastStateUrlReply(request.request_id, self.url).encode()[1:])
        return True

    def close(self) -> None:
        try:
            self.flush()
        finally:
            close = getattr(self.state, "close", None)
            if close is not None:
                close()


# ---- what a runtime does with them -------------------------------------------------------------


def run_apply_job(machine: StateMachine, job: ApplyJob, storage: LogStorage) -> int:
    """Feed ``job`` to ``machine``; the result goes to ``PeerServer.complete_job``."""
    snapshot = snapshot_of(storage, job.snapshot) if job.snapshot is not None else None
    return machine.apply_entries(job.entries, job.first_index, job.term, snapshot)


def dispatch_client_request(machine: StateMachine, server: PeerServer, request: ClientRequest) -> bool:
    """Hand a ``ClientRequest`` event to the state machine (replies go out on the ROUTER)."""
    return machine.on_client_request(request, Reply(request, server.reply))


__all__ = [
    "BroadcastStateMachine",
    "Reply",
    "Snapshot",
    "SnapshotReader",
    "StateMachine",
    "StateMachineError",
    "check_batch",
    "dispatch_client_request",
    "run_apply_job",
    "snapshot_of",
]
