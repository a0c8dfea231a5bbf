"""RequestEntries and its replies: the log streamed to a client (spec/protocol.md §9.5, §11).

Unlike the other client RPCs, one RequestEntries opens a stream: the leader answers with
several messages on the same request id (status MORE, then LAST), or with snapshot chunks
(SNAPSHOT_CHUNK) when the entries asked for were compacted away; the client acknowledges with
follow-up requests of the same shape (a count of 0 stops the stream).  ``EntriesStatus``
values are the wire's status codes.  Entries ride as trailing frames, kept as raw ``bytes``.

The optional frames 5 (count) and 6 (snapshot offset) are decoded as present/omitted exactly,
and ``null_count_frame`` keeps the two shapes a count-less request takes on the wire, so
re-encoding a decoded request gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .frames import JSON_NULL, FrameReader, encode_json, encode_uint, json_int
from .message_codec import Frames, check_str_or_none, decode_entries, json_leader, leader_text, rid_text
from .message_types import REQUEST_ENTRIES


class EntriesStatus(IntEnum):
    NOT_LEADER = 0
    LAST = 1
    MORE = 2
    SNAPSHOT_CHUNK = 3


@dataclass(frozen=True, slots=True)
class RequestEntries:
    request_id: bytes
    prev_index: int
    count: int | None = None
    snapshot_offset: int | None = None
    # Added by the codec: send frame 5 as an empty (null) frame even without a count or offset.
    # The reference client sends both shapes; this keeps re-encoding byte-identical.  Decoding
    # sets it when frame 5 was present and empty.  Not part of equality.
    null_count_frame: bool = field(default=False, compare=False)

    def encode(self, ident: bytes) -> list[bytes]:
        frames = [self.request_id, REQUEST_ENTRIES, ident, encode_uint(self.prev_index)]
        if self.count is not None:
            frames.append(encode_uint(self.count))
        elif self.snapshot_offset is not None or self.null_count_frame:
            frames.append(b"")
        if self.snapshot_offset is not None:
            frames.append(encode_uint(self.snapshot_offset))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> RequestEntries:
        r = FrameReader("RequestEntries", frames)
        r.require(4)
        r.msg_type(REQUEST_ENTRIES)
        prev_index = r.uint(4)
        count = r.nuint(5) if r.has(5) else None
        offset = r.uint(6) if r.has(6) else None
        return cls(frames[0], prev_index, count, offset, r.has(5) and len(frames[4]) == 0)

    def __str__(self) -> str:
        text = f"RequestEntries(id={rid_text(self.request_id)} prev={self.prev_index}"
        text += f" count={'-' if self.count is None else self.count}"
        if self.snapshot_offset is not None:
            text += f" offset={self.snapshot_offset}"
        return text + ")"


@dataclass(frozen=True, slots=True)
class RequestEntriesReply:
    request_id: bytes
    status: EntriesStatus
    leader_id: str | None = None  # NOT_LEADER
    last_index: int = 0  # LAST/MORE: index of last entry (or effective last); CHUNK: snapshot index
    entries: tuple[bytes, ...] = ()  # LAST/MORE
    snapshot_offset: int = 0  # CHUNK
    snapshot_size: int = 0  # CHUNK
    snapshot_term: int = 0  # CHUNK
    chunk: bytes = b""  # CHUNK

    def encode(self) -> list[bytes]:
        status = self.status
        if status == EntriesStatus.NOT_LEADER:
            check_str_or_none(self.leader_id, "leader_id")
            return [self.request_id, b"\x00", encode_json(self.leader_id)]
        if status == EntriesStatus.LAST or status == EntriesStatus.MORE:
            frames = [self.request_id, encode_uint(int(status)), JSON_NULL, encode_uint(self.last_index)]
            frames.extend(self.entries)
            return frames
        if status == EntriesStatus.SNAPSHOT_CHUNK:
            for value in (self.snapshot_offset, self.snapshot_size, self.snapshot_term):
                encode_uint(value)  # same range checks as the uint frames
            return [
                self.request_id,
                b"\x03",
                encode_json([self.snapshot_offset, self.snapshot_size, self.snapshot_term]),
                encode_uint(self.last_index),
                self.chunk,
            ]
        raise ValueError(f"unknown entries status {status!r}")

    @classmethod
    def decode(cls, frames: Frames) -> RequestEntriesReply:
        r = FrameReader("RequestEntriesReply", frames)
        r.require(3)
        request_id = frames[0]
        code = r.uint(2)
        if code > EntriesStatus.SNAPSHOT_CHUNK:
            raise r.error(2, f"unknown entries status {code}")
        if code == EntriesStatus.NOT_LEADER:
            return cls(request_id, EntriesStatus.NOT_LEADER, leader_id=json_leader(r, 3))
        r.require(4)
        last_index = r.uint(4)
        if code != EntriesStatus.SNAPSHOT_CHUNK:
            # frame 3 carries nothing for status 1/2 (the leader sends nil): ignored
            return cls(
                request_id,
                EntriesStatus(code),
                last_index=last_index,
                entries=decode_entries(frames, 4, "RequestEntriesReply"),
            )
        r.require(5)
        arg = r.json(3)
        if not isinstance(arg, list) or len(arg) != 3:
            raise r.error(3, "snapshot chunk argument must be [offset, size, term]")
        return cls(
            request_id,
            EntriesStatus.SNAPSHOT_CHUNK,
            last_index=last_index,
            snapshot_offset=json_int(arg[0], r.name, 3, "snapshot offset"),
            snapshot_size=json_int(arg[1], r.name, 3, "snapshot size"),
            snapshot_term=json_int(arg[2], r.name, 3, "snapshot term"),
            chunk=frames[4],
        )

    def __str__(self) -> str:
        text = f"RequestEntriesReply(id={rid_text(self.request_id)} {self.status.name}"
        if self.status == EntriesStatus.NOT_LEADER:
            text += f" leader={leader_text(self.leader_id)}"
        elif self.status == EntriesStatus.SNAPSHOT_CHUNK:
            text += (
                f" snapshot={self.last_index}/{self.snapshot_term} offset={self.snapshot_offset}"
                f" size={self.snapshot_size} chunk={len(self.chunk)}"
            )
        else:
            text += f" last={self.last_index} entries={len(self.entries)}"
        return text + ")"


__all__ = [
    "EntriesStatus",
    "RequestEntries",
    "RequestEntriesReply",
]
