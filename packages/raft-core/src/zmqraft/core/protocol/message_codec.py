"""Codec helpers shared by the message modules (peer, client, entries and broadcast messages).

Each message class encodes and decodes itself with ``frames.FrameReader`` and the value
codecs of ``frames``; what is left here is what more than one message needs: the peer
message id rule (spec/protocol.md §8.1), log entries carried as trailing frames (validated,
never copied: AppendEntries, RequestEntriesReply, StateBroadcast), the JSON leader id of the
client replies, and the pieces of the one-line renderings.  Nothing here is public API: the
protocol's names are in ``messages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from .entry import HEADER_SIZE, EntryType, validate_entry
from .frames import FrameReader, encode_uint, json_optional_string

Frames: TypeAlias = Sequence[bytes]

MAX_MSG_ID = 0xFFFFFF
"""Peer message ids are a 24-bit counter (1..3 bytes on the wire)."""

_MAX_ENTRY_TYPE = int(EntryType.CHECKPOINT)


def encode_msg_id(msg_id: int) -> bytes:
    if not isinstance(msg_id, int) or isinstance(msg_id, bool) or not 0 <= msg_id <= MAX_MSG_ID:
        raise ValueError(f"peer message id must be an int in 0..{MAX_MSG_ID}, got {msg_id!r}")
    return encode_uint(msg_id)


def decode_entries(frames: Frames, first: int, name: str) -> tuple[bytes, ...]:
    """Frames ``first``.. (0-based) as log entries, validated but not copied."""
    entries = tuple(frames[first:])
    for entry in entries:  # hot path: a plain loop is the fastest check on CPython 3.11
        if len(entry) <= HEADER_SIZE or entry[12] > _MAX_ENTRY_TYPE:
            break
    else:
        return entries
    for i, entry in enumerate(entries):  # slow path: find the first bad one and word the error
        validate_entry(entry, f"{name} frame {first + 1 + i}")
    raise AssertionError("unreachable: validate_entry raised")  # pragma: no cover


def json_leader(r: FrameReader, frame_no: int) -> str | None:
    return json_optional_string(r.json(frame_no), r.name, frame_no, "leader id")


def rid_text(request_id: bytes) -> str:
    return bytes(request_id).hex() or "-"


def leader_text(leader_id: str | None) -> str:
    return "-" if leader_id is None else leader_id


def check_str_or_none(value: object, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a string or None")
