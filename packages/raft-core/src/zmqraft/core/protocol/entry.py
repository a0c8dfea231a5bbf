"""Log entries as they travel on the wire and sit in index files (spec/protocol.md §5).

An entry is kept as the raw ``bytes`` the wire and the files carry::

    0..11  request id (12 bytes, all zero for CHECKPOINT)
    12     type: 0 STATE, 1 CONFIG, 2 CHECKPOINT
    13..19 term, unsigned little-endian, 7 bytes
    20..   data (never empty)

Keeping the encoded form avoids a per-entry object on the hot path: replication, storage and
RequestEntries move the bytes untouched, and only the fields that are needed are sliced out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import ProtocolError

HEADER_SIZE = 20
REQUEST_ID_SIZE = 12
ZERO_REQUEST_ID = bytes(REQUEST_ID_SIZE)
MAX_TERM = (1 << 56) - 1
CHECKPOINT_DATA = b"\xc0"


class EntryType(IntEnum):
    STATE = 0
    CONFIG = 1
    CHECKPOINT = 2


def encode_entry(request_id: bytes, entry_type: int, term: int, data: bytes | memoryview) -> bytes:
    """Build the wire/disk form of one entry."""
    if len(request_id) != REQUEST_ID_SIZE:
        raise ValueError("request id must be 12 bytes")
    if not 0 <= term <= MAX_TERM:
        raise ValueError("term out of range")
    if len(data) == 0:
        raise ValueError("entry data must not be empty")
    return b"".join((request_id, bytes((entry_type,)), term.to_bytes(7, "little"), data))


def checkpoint_entry(term: int) -> bytes:
    """The CHECKPOINT a new leader appends to commit older-term entries (spec/raft.md §6.1)."""
    return encode_entry(ZERO_REQUEST_ID, EntryType.CHECKPOINT, term, CHECKPOINT_DATA)


def entry_term(entry: bytes | memoryview) -> int:
    return int.from_bytes(entry[13:20], "little")


def entry_type(entry: bytes | memoryview) -> int:
    return entry[12]


def entry_request_id(entry: bytes | memoryview) -> bytes:
    return bytes(entry[0:12])


def entry_data(entry: bytes) -> memoryview:
    """The data part without copying."""
    return memoryview(entry)[HEADER_SIZE:]


def validate_entry(entry: bytes | memoryview, what: str = "entry") -> None:
    """Reject what the original rejects: entries of 20 bytes or less, unknown types."""
    if len(entry) <= HEADER_SIZE:
        raise ProtocolError(f"{what}: log entry must be longer than {HEADER_SIZE} bytes, got {len(entry)}")
    if entry[12] > EntryType.CHECKPOINT:
        raise ProtocolError(f"{what}: unknown log entry type {entry[12]}")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A decoded view of one entry, for APIs and tools (not used on the hot path)."""

    request_id: bytes
    type: EntryType
    term: int
    data: bytes
    index: int = 0

    @classmethod
    def from_bytes(cls, raw: bytes, index: int = 0) -> LogEntry:
        validate_entry(raw)
        data = bytes(raw[HEADER_SIZE:])
        return cls(entry_request_id(raw), EntryType(raw[12]), entry_term(raw), data, index)

    def to_bytes(self) -> bytes:
        return encode_entry(self.request_id, self.type, self.term, self.data)
