"""A replicated key-value store: the example state machine of zmq-raft.

Writes go through the log: a client sends a command (``set_command``/``delete_command``) with
``request_update`` and every peer applies it, in log order, to its ``KeyValueStore``.  Reads
are custom client requests (``GET``) answered from a peer's applied state: the leader has
applied every update it acknowledged, so a read from the leader after a write sees it.

The same store runs in three places:

* ``KVStateMachine``: a peer's state machine (``factory.state``) and, given to
  ``zr-log-compact -m``, the machine that builds a compaction snapshot from a peer's files;
* ``SimKeyValueStore``: the same store under ``zmq-raft-sim --state-machine``;
* ``KVClient``: set/get/delete over ``zmqraft.client.Client``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from zmqraft.client import Client
from zmqraft.core.protocol.entry import HEADER_SIZE, EntryType, LogEntry
from zmqraft.core.server import ClientRequest
from zmqraft.core.statemachine import Reply, SnapshotReader, StateMachine, check_batch

# --8<-- [start:commands]
GET = b"GET"  # the custom request type of a read (ClientDispatch): args [key]


def set_command(key: str, value: str) -> bytes:
    """The log entry data that sets ``key`` to ``value``."""
    return json.dumps(["set", key, value]).encode()


def delete_command(key: str) -> bytes:
    """The log entry data that deletes ``key``."""
    return json.dumps(["del", key]).encode()


# --8<-- [end:commands]


# --8<-- [start:store]
class KeyValueStore:
    """The state: a dict changed only by ``apply``, in log order, on every peer alike."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def apply(self, command: bytes) -> None:
        """Apply one command.  What is not a command is skipped: a peer must never fail on
        what a client managed to commit, or it could not apply anything after it."""
        try:
            op, key, *rest = json.loads(command)
        except (ValueError, TypeError):
            return
        if op == "set" and len(rest) == 1:
            self.data[str(key)] = str(rest[0])
        elif op == "del":
            self.data.pop(str(key), None)

    def snapshot(self) -> bytes:
        """The whole state (sorted: the same state gives the same bytes on every peer)."""
        return json.dumps(self.data, sort_keys=True).encode()

    def restore(self, snapshot: bytes) -> None:
        self.data = json.loads(snapshot) if snapshot else {}


# --8<-- [end:store]


# --8<-- [start:machine]
class KVStateMachine(StateMachine):
    """The store as a peer's state machine.  It keeps everything in memory and persists
    nothing itself, so a peer starts from index 0 and is fed its snapshot (if the log was
    compacted) and then every entry of its log again."""

    blocking = False  # applying is a dict update: on the event loop, beside the reads

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(last_applied=0)
        self.store = KeyValueStore()

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        check_batch(self.last_applied, next_index, snapshot)  # fed in order, or raise
        if snapshot is not None:
            self.store.restore(snapshot.read(0, snapshot.size))
        for entry in entries:
            if entry[12] == EntryType.STATE:  # not CONFIG or CHECKPOINT entries
                self.store.apply(bytes(entry[HEADER_SIZE:]))
        self.last_applied = next_index + len(entries) - 1
        return self.last_applied

    def snapshot(self) -> bytes:
        """Log compaction: ``zr-log-compact -m kvstore.py:KVStateMachine`` feeds a peer's
        files to a fresh machine, then writes this as the snapshot."""
        return self.store.snapshot()

    def on_client_request(self, request: ClientRequest, reply: Reply) -> bool:
        if request.type != GET or len(request.args) != 1:
            return False  # not ours: the peer logs and ignores it
        value = self.store.data.get(request.args[0].decode("utf-8", "replace"))
        # [found, value]: an empty frame is false (the wire's boolean)
        reply([b"\x01", value.encode()] if value is not None else [b""])
        return True


# --8<-- [end:machine]


# --8<-- [start:client]
class KVClient:
    """set/get/delete against a cluster (a thin layer over ``zmqraft.client.Client``)."""

    def __init__(self, urls: Sequence[str], *, secret: str = "", timeout: float = 10.0) -> None:
        """``timeout``: the deadline of each call, retries to other peers included."""
        self.client = Client(list(urls), secret=secret, rpc_timeout=timeout)

    def set(self, key: str, value: str) -> int:
        """Returns the log index of the update once the leader has applied it."""
        return self.client.request_update(set_command(key, value))

    def delete(self, key: str) -> int:
        return self.client.request_update(delete_command(key))

    def get(self, key: str, *, url: str | None = None) -> str | None:
        """From the leader's applied state, or from the peer at ``url`` (which may lag)."""
        reply = self.client.request(GET, key.encode(), url=url, to_leader=url is None)
        return reply[1].decode() if reply and reply[0] else None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> KVClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --8<-- [end:client]


# --8<-- [start:sim]
class SimKeyValueStore:
    """The store under the simulator (``zmq-raft-sim --state-machine kvstore:SimKeyValueStore``):
    the simulator feeds ``apply_entry`` and compares ``snapshot()`` across peers after every
    step.  Its clients write ``<client>-<n>``; each becomes a set of key ``<client>``, and
    every third one a delete, so the real commands run under every fault it injects."""

    def __init__(self) -> None:
        self.store = KeyValueStore()

    def apply_entry(self, index: int, entry: LogEntry) -> None:
        if entry.type != EntryType.STATE:
            return
        client, _, n = entry.data.decode().rpartition("-")
        if n.isdigit() and int(n) % 3 == 2:
            self.store.apply(delete_command(client))
        else:
            self.store.apply(set_command(client, n))

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        self.store.restore(data)


# --8<-- [end:sim]

__all__ = [
    "GET",
    "KVClient",
    "KVStateMachine",
    "KeyValueStore",
    "SimKeyValueStore",
    "delete_command",
    "set_command",
]
