"""The CLIENT-state catch-up (spec/raft.md §10.4), fixed to handle snapshots.

A peer that starts outside its configuration (a new peer waiting to be added, a removed
peer) fetches the committed log from the leader with RequestEntries over its peer sockets,
before anyone sends it AppendEntries: entries are written at their indexes, snapshot chunks
are assembled and installed, CONFIG entries are adopted.  The original breaks on the first
snapshot chunk (spec §10.4); here chunks are acknowledged and installed and the stream
continues after the snapshot index.

Replies are told apart from peer RPC replies by their 4-byte request id (peer message ids
are 1..3 bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .protocol import messages as m
from .raft.node import RaftNode, Role
from .storage.base import SnapshotMeta

RESPONSE_TIMEOUT = 0.5  # client.md §1 SERVER_RESPONSE_TIMEOUT
ELECTION_GRACE = 0.3  # client.md §1 SERVER_ELECTION_GRACE_DELAY
FIRST_REQUEST_ID = 1 << 24  # encodes to 4 bytes


@dataclass(slots=True)
class CatchUp:
    peers: Sequence[str]
    prev: int  # entries up to here are written
    target: int = 0
    request_seq: int = FIRST_REQUEST_ID
    request_id: bytes = b""
    deadline: float = 0.0
    snapshot_prev: int | None = None  # the prevIndex a snapshot stream was asked with
    snapshot_written: int = 0
    after_install: bool = False
    done: bool = False

    def start(self, now: float) -> tuple[str, list[bytes]]:
        """A new stream from ``prev`` to the current target peer."""
        self.request_seq = FIRST_REQUEST_ID + (self.request_seq + 1) % (1 << 24)
        self.request_id = self.request_seq.to_bytes(4, "little")
        self.snapshot_prev = None
        self.snapshot_written = 0
        self.deadline = now + RESPONSE_TIMEOUT
        return self._ask(m.RequestEntries(self.request_id, self.prev))

    def _ask(self, msg: m.RequestEntries) -> tuple[str, list[bytes]]:
        return self.peers[self.target % len(self.peers)], msg.encode(b"")

    def timed_out(self, now: float) -> bool:
        return not self.done and not self.after_install and now >= self.deadline

    def next_peer(self, leader_id: str | None = None) -> None:
        if leader_id is not None and leader_id in self.peers:
            self.target = list(self.peers).index(leader_id)
        else:
            self.target += 1

    def on_reply(
        self, reply: m.RequestEntriesReply, node: RaftNode, now: float, wall_ms: int
    ) -> list[bytes] | None:
        """Take one reply; returns the follow-up frames to send to the same peer, if any."""
        if reply.request_id != self.request_id or self.done:
            return None
        self.deadline = now + RESPONSE_TIMEOUT
        if reply.status is m.EntriesStatus.NOT_LEADER:
            self.next_peer(reply.leader_id)
            self.deadline = now + ELECTION_GRACE  # then start() again on the timer
            self.request_id = b""
            return None
        if reply.status is m.EntriesStatus.SNAPSHOT_CHUNK:
            return self._on_chunk(reply, node)
        first = reply.last_index - len(reply.entries) + 1
        if reply.entries:
            if first != self.prev + 1 or not node.catch_up_append(self.prev, reply.entries, now, wall_ms):
                self.deadline = now  # out of step: start over
                return None
            self.prev = reply.last_index
        if reply.status is m.EntriesStatus.LAST:
            self.done = True
            node.catch_up_done(now)
            return None
        return m.RequestEntries(self.request_id, reply.last_index).encode(b"")

    def _on_chunk(self, reply: m.RequestEntriesReply, node: RaftNode) -> list[bytes] | None:
        if reply.snapshot_offset != self.snapshot_written:
            return None
        meta = SnapshotMeta(reply.last_index, reply.snapshot_term, reply.snapshot_size)
        self.snapshot_written += len(reply.chunk)
        final = self.snapshot_written >= meta.size
        node.catch_up_snapshot(meta, reply.snapshot_offset, reply.chunk, final)
        if self.snapshot_prev is None:
            self.snapshot_prev = self.prev
        if final:
            self.prev = meta.index
            self.after_install = True  # continue once the snapshot is installed
            return None
        return m.RequestEntries(self.request_id, self.snapshot_prev, None, self.snapshot_written).encode(b"")

    def resume(self, node: RaftNode, now: float) -> tuple[str, list[bytes]] | None:
        """After the snapshot is installed: ask for the entries after it."""
        if not self.after_install or node.installing_snapshot:
            return None
        self.after_install = False
        self.deadline = now + RESPONSE_TIMEOUT
        return self._ask(m.RequestEntries(self.request_id, self.prev))

    @staticmethod
    def wanted(node: RaftNode) -> bool:
        return node.role is Role.CLIENT and bool(node.config.others(node.id))
