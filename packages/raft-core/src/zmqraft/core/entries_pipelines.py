"""The RequestEntries pipelines of a leader (spec/protocol.md §9.5): log entries, or a
snapshot in chunks, streamed to a client that acknowledges as it reads.

A stream is keyed by (routing id, request id).  It sends up to ``request_entries_pipelines``
messages ahead of the client's acknowledgements (``request_entries_snapshot_pipelines``
for snapshot chunks); an acknowledgement is the next RequestEntries with ``prevIndex`` (or
the snapshot offset) of the oldest outstanding message, and a count of 0 cancels.  Entries
are read from storage in the log's own batches up to the leader's last applied index, which
is durable.  A stream that is not acknowledged within ``request_entries_ttl`` is swept;
losing leadership drops them all (the client restarts at the new leader).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .protocol import messages as m
from .raft.node import RaftNode, Role
from .raft.options import RaftOptions
from .storage.base import SnapshotMeta

SNAPSHOT_CHUNK = 65536

Reply = Callable[[bytes, list[bytes]], None]


@dataclass(slots=True)
class _Stream:
    """One RequestEntries pipeline (spec/protocol.md §9.5)."""

    routing_id: bytes
    request_id: bytes
    prev_index: int
    last: int  # effective last index L (entries) or the snapshot index
    next: int  # next entry index to send, or next snapshot byte offset
    expires: float
    snapshot: bool = False
    outstanding: deque[int] = field(default_factory=deque)  # last index / end offset per message
    finished: bool = False
    throttled: bool = False
    # messages are the log's own batches (the original's grouping, spec/storage.md §6.7);
    # everything up to the leader's last applied index is durable, so storage holds it
    batches: Iterator[list[bytes]] = field(default_factory=lambda: iter(()))


class EntriesPipelines:
    """Every RequestEntries stream of one peer; replies leave through ``reply(routing_id,
    frames)`` (the ROUTER)."""

    def __init__(self, options: RaftOptions, reply: Reply) -> None:
        self.options = options
        self._reply = reply
        self._streams: dict[bytes, _Stream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def sweep(self, now: float) -> None:
        """Drop the streams whose client went quiet."""
        for key in [k for k, s in self._streams.items() if s.expires <= now]:
            del self._streams[key]

    def clear(self) -> None:
        """Leadership lost: every stream ends (its client asks the new leader)."""
        self._streams.clear()

    def request(self, node: RaftNode, routing_id: bytes, msg: m.RequestEntries, now: float) -> None:
        """A RequestEntries: start, continue (an acknowledgement) or cancel (count 0) a stream."""
        if node.role is not Role.LEADER:
            self._reply(
                routing_id,
                m.RequestEntriesReply(msg.request_id, m.EntriesStatus.NOT_LEADER, node.leader_id).encode(),
            )
            return
        key = routing_id + b"\x00" + msg.request_id
        stream = self._streams.get(key)
        if stream is not None:
            if msg.count == 0:
                del self._streams[key]
                return
            if self._follow_up(stream, msg, now):
                self._pump(node, key, stream)
                return
            del self._streams[key]
        if msg.count == 0 or len(self._streams) > self.options.request_entries_high_watermark:
            return
        expires = now + self.options.request_entries_ttl
        if msg.prev_index + 1 < node.log.first_index:
            snap = node.log.snapshot
            offset = msg.snapshot_offset or 0
            if snap.size == 0 or offset >= snap.size:
                if offset > snap.size:
                    self._send_chunk(snap, routing_id, msg.request_id, snap.size, b"")
                return
            stream = _Stream(
                routing_id, msg.request_id, msg.prev_index, snap.index, offset, expires, snapshot=True
            )
        else:
            last = node.last_applied
            if msg.count is not None and msg.prev_index + msg.count <= last:
                last = msg.prev_index + msg.count
            if msg.prev_index + 1 > last:
                self._reply(
                    routing_id,
                    m.RequestEntriesReply(msg.request_id, m.EntriesStatus.LAST, None, last).encode(),
                )
                return
            stream = _Stream(routing_id, msg.request_id, msg.prev_index, last, msg.prev_index + 1, expires)
            stream.batches = node.log.storage.entry_batches(msg.prev_index + 1, last)
        self._streams[key] = stream
        self._pump(node, key, stream)

    def _follow_up(self, stream: _Stream, msg: m.RequestEntries, now: float) -> bool:
        if not stream.outstanding:
            return False
        if stream.snapshot:
            if msg.prev_index != stream.prev_index or msg.prev_index >= stream.last:
                return False
            if msg.snapshot_offset is not None and msg.snapshot_offset != stream.outstanding[0]:
                return False
        elif msg.prev_index != stream.outstanding[0]:
            return False
        stream.outstanding.popleft()
        stream.throttled = False
        stream.expires = now + self.options.request_entries_ttl
        return True

    def _pump(self, node: RaftNode, key: bytes, stream: _Stream) -> None:
        opts = self.options
        if stream.snapshot:
            snap = node.log.snapshot
            if snap.index != stream.last:
                del self._streams[key]  # replaced by a compaction; the client restarts
                return
            while not stream.finished and len(stream.outstanding) < opts.request_entries_snapshot_pipelines:
                chunk = node.log.storage.read_snapshot(
                    stream.next, min(SNAPSHOT_CHUNK, snap.size - stream.next)
                )
                self._send_chunk(snap, stream.routing_id, stream.request_id, stream.next, chunk)
                stream.next += len(chunk)
                stream.outstanding.append(stream.next)
                stream.finished = stream.next >= snap.size or not chunk
            if stream.finished and len(stream.outstanding) <= 1:
                # kept until the non-final chunks are acknowledged: an acknowledgement that
                # found no stream would start a new one and send the last chunk twice; the
                # client then continues with prevIndex = snapshot index
                del self._streams[key]
            return
        while (
            not stream.finished
            and not stream.throttled
            and len(stream.outstanding) < opts.request_entries_pipelines
        ):
            entries = next(stream.batches, None)
            if not entries:
                break
            last = stream.next + len(entries) - 1
            status = m.EntriesStatus.LAST if last >= stream.last else m.EntriesStatus.MORE
            self._reply(
                stream.routing_id,
                m.RequestEntriesReply(stream.request_id, status, None, last, tuple(entries)).encode(),
            )
            stream.next = last + 1
            stream.outstanding.append(last)
            stream.finished = status is m.EntriesStatus.LAST
            if len(entries) == 1 and len(entries[0]) > opts.request_entries_entry_size_limit_pipeline:
                stream.throttled = True
        if stream.finished and len(stream.outstanding) <= 1:
            self._streams.pop(key, None)

    def _send_chunk(
        self, snap: SnapshotMeta, routing_id: bytes, request_id: bytes, offset: int, chunk: bytes
    ) -> None:
        self._reply(
            routing_id,
            m.RequestEntriesReply(
                request_id,
                m.EntriesStatus.SNAPSHOT_CHUNK,
                None,
                snap.index,
                snapshot_offset=offset,
                snapshot_size=snap.size,
                snapshot_term=snap.term,
                chunk=chunk,
            ).encode(),
        )


__all__ = ["SNAPSHOT_CHUNK", "EntriesPipelines"]
