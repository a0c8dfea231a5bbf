"""A RequestEntries stream: committed entries and snapshots, once and in order (client.md §4.1, §6).

One RequestEntries RPC is a stream on one request id (spec/protocol.md §9.5): the leader
sends messages with status 2 (more to come) until one with status 1 (the last), or snapshot
chunks (status 3) when the entries asked for were compacted away; follow-up requests of the
same shape acknowledge them, and one with a count of 0 stops the stream.

``EntriesStream`` acknowledges every status-2 message and every non-final snapshot chunk as
soon as it arrives, so the leader's pipeline keeps flowing, and buffers the items for the
consumer (``ClientProtocol.take``).  When the buffer holds more than ``high_water`` bytes the
stream is stopped (a count-0 follow-up); messages already in flight are still kept, and the
next ``take`` that brings the buffer under half of ``high_water`` starts a new RPC where the
data ends.  Interrupted streams (leader change, timeout) continue the same way at the next
peer, so the consumer sees every entry once and in order.  ``prev_index``, ``count`` and
``snapshot_offset`` always say where the stream would continue; an error carries them as
``resume``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..protocol import messages as m
from .errors import OutOfOrderError, ResumeState
from .items import Entry, Item, SnapshotChunk
from .operations import Operation, Phase

if TYPE_CHECKING:
    from .protocol import ClientProtocol


class EntriesStream(Operation[bool]):
    """A RequestEntries stream (client.md §4.1, §6); items come out of ``ClientProtocol.take``.

    ``result()`` is True when everything asked for was received, False when the consumer
    stopped it.  ``prev_index``/``count``/``snapshot_offset`` always describe where the stream
    would continue (after the items already buffered).
    """

    name = "requestEntries"

    def __init__(
        self,
        deadline: float | None,
        prev_index: int,
        count: int | None,
        snapshot_offset: int | None,
        high_water: int,
        url: str | None = None,
    ) -> None:
        super().__init__(deadline, url)
        self.prev_index = prev_index
        self.count = count
        self.snapshot_offset = snapshot_offset or None
        self.snapshot: tuple[int, int, int] | None = None  # (index, term, size) being received
        self.buffer: deque[Item] = deque()
        self.buffered = 0  # bytes in ``buffer``
        self.high_water = high_water
        self.stop_requested = False
        self.timeout_factor = 1
        self.paused_rid = b""  # the stopped RPC whose in-flight messages are still welcome
        self.received = 0  # items received over the stream's life

    @property
    def resume_state(self) -> ResumeState:
        return ResumeState(self.prev_index, self.count, self.snapshot_offset)

    def attempt_timeout(self, proto: ClientProtocol) -> float:
        return proto.timeout * self.timeout_factor

    def frames(self, rid: bytes, ident: bytes) -> list[bytes]:
        return m.RequestEntries(rid, self.prev_index, self.count, self.snapshot_offset).encode(ident)

    def _follow_up(
        self, proto: ClientProtocol, now: float, count: int | None, offset: int | None = None
    ) -> None:
        assert self.url is not None
        proto._out.append(
            (self.url, m.RequestEntries(self.rid, self.prev_index, count, offset).encode(proto.ident))
        )
        self.expires = now + self.attempt_timeout(proto)

    def _push(self, item: Item, size: int) -> None:
        self.buffer.append(item)
        self.buffered += size
        self.received += 1

    def on_reply(self, proto: ClientProtocol, frames: list[bytes], now: float) -> None:
        reply = m.RequestEntriesReply.decode(frames)
        status = reply.status
        if self.phase is Phase.PAUSED:
            self._late(proto, reply, now)
            return
        if status is m.EntriesStatus.NOT_LEADER:
            proto._end_attempt(self)
            proto._not_leader(self, reply.leader_id, now)
            return
        self.redirects = 0
        if status is m.EntriesStatus.SNAPSHOT_CHUNK:
            self._on_chunk(proto, reply, now)
        else:
            self._on_entries(proto, reply, now)

    def _on_entries(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        entries = reply.entries
        last = reply.last_index
        if not entries:
            if reply.status is m.EntriesStatus.LAST:
                # nothing (more) up to the leader's last applied index; when it is behind the
                # position asked for (a new leader still applying), that too means "no more yet"
                proto._end_attempt(self)
                proto._finish(self, True, now)
                return
            if last != self.prev_index:
                self._out_of_order(proto, now, f"an empty message ends at {last}, expected {self.prev_index}")
                return
        else:
            if self.snapshot_offset is not None or self.snapshot is not None:
                # the leader streams entries where we were receiving a snapshot (its log
                # reaches further back than the snapshot's index): the partial snapshot is void
                self.snapshot_offset = None
                self.snapshot = None
            first = last - len(entries) + 1
            if first != self.prev_index + 1:
                self._out_of_order(
                    proto,
                    now,
                    f"log entries received out of order: got {first}..{last} after {self.prev_index}",
                )
                return
            for i, raw in enumerate(entries):
                self._push(Entry(raw, first + i), len(raw))
            self.prev_index = last
            if self.count is not None:
                self.count -= len(entries)
            proto._readable(self)
        if reply.status is m.EntriesStatus.LAST:
            proto._end_attempt(self)  # a status-1 message is never acknowledged
            proto._finish(self, True, now)
        elif self.count is not None and self.count <= 0:
            self._follow_up(proto, now, 0)
            proto._end_attempt(self)
            proto._finish(self, True, now)
        else:
            self._acknowledge(proto, now, self.count)

    def _acknowledge(
        self, proto: ClientProtocol, now: float, count: int | None, offset: int | None = None
    ) -> None:
        if self.stop_requested:
            self._follow_up(proto, now, 0, offset)
            proto._end_attempt(self)
            proto._finish(self, False, now)
        elif self.buffered >= self.high_water:
            self._follow_up(proto, now, 0, offset)
            proto._pause(self)
        else:
            self._follow_up(proto, now, count, offset)

    def _on_chunk(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        snapshot = (reply.last_index, reply.snapshot_term, reply.snapshot_size)
        if self.snapshot_offset is None and reply.last_index <= self.prev_index:
            # the last acknowledgement of a finished transfer restarted it on the leader (it
            # closes a snapshot stream on sending the final chunk): a duplicate, ignore
            return
        expected = self.snapshot_offset or 0
        if self.snapshot is not None and snapshot != self.snapshot:
            if reply.snapshot_offset != 0:
                # the leader compacted again in the middle of our transfer: start over
                self._follow_up(proto, now, 0)
                proto._end_attempt(self)
                self.snapshot_offset = None
                self.snapshot = None
                proto._attempt(self, now)
                return
            expected = 0  # a new snapshot from its beginning: the consumer sees is_first
        if reply.snapshot_offset != expected:
            self._out_of_order(
                proto,
                now,
                "snapshot chunks received out of order: "
                f"got offset {reply.snapshot_offset}, expected {expected}",
            )
            return
        chunk = bytes(reply.chunk)
        self._push(
            SnapshotChunk(
                reply.last_index, reply.snapshot_term, reply.snapshot_offset, reply.snapshot_size, chunk
            ),
            len(chunk),
        )
        proto._readable(self)
        end = expected + len(chunk)
        if end < reply.snapshot_size and chunk:
            self.snapshot = snapshot
            self.snapshot_offset = end
            # acknowledge with the original prevIndex and the next offset (protocol.md §9.5)
            self._acknowledge(proto, now, self.count, end)
            return
        # final chunk: the leader has closed its snapshot stream; the entries after the
        # snapshot come from a request with prevIndex = snapshot index on the same request id
        self.prev_index = reply.last_index
        self.snapshot_offset = None
        self.snapshot = None
        if self.count is not None:
            self.count -= 1  # a snapshot counts as one entry
        if self.count is not None and self.count <= 0:
            proto._end_attempt(self)
            proto._finish(self, True, now)
        elif self.stop_requested:
            proto._end_attempt(self)
            proto._finish(self, False, now)
        elif self.buffered >= self.high_water:
            proto._pause(self)
        else:
            self._follow_up(proto, now, self.count)

    def _late(self, proto: ClientProtocol, reply: m.RequestEntriesReply, now: float) -> None:
        """A message that was in flight when back-pressure stopped the RPC: keep it if it
        continues the data exactly (no acknowledgement: the stream is gone on the leader)."""
        if reply.status is m.EntriesStatus.SNAPSHOT_CHUNK:
            snapshot = (reply.last_index, reply.snapshot_term, reply.snapshot_size)
            if self.snapshot != snapshot or reply.snapshot_offset != self.snapshot_offset:
                return
            chunk = bytes(reply.chunk)
            self._push(
                SnapshotChunk(
                    reply.last_index, reply.snapshot_term, reply.snapshot_offset, reply.snapshot_size, chunk
                ),
                len(chunk),
            )
            end = reply.snapshot_offset + len(chunk)
            if end >= reply.snapshot_size or not chunk:
                self.prev_index = reply.last_index
                self.snapshot_offset = None
                self.snapshot = None
                if self.count is not None:
                    self.count -= 1
            else:
                self.snapshot_offset = end
        elif reply.entries and self.snapshot is None:
            first = reply.last_index - len(reply.entries) + 1
            if first != self.prev_index + 1:
                return
            for i, raw in enumerate(reply.entries):
                self._push(Entry(raw, first + i), len(raw))
            self.prev_index = reply.last_index
            if self.count is not None:
                self.count -= len(reply.entries)
        else:
            return
        proto._readable(self)
        if self.count is not None and self.count <= 0:
            proto._finish(self, True, now)

    def _out_of_order(self, proto: ClientProtocol, now: float, reason: str) -> None:
        if self.url is not None and self.phase is Phase.SENT:
            self._follow_up(proto, now, 0)  # stop the leader's stream
        proto._end_attempt(self)
        proto._fail(self, OutOfOrderError(f"{reason}; ask again from prev_index={self.prev_index}"), now)


__all__ = ["EntriesStream"]
