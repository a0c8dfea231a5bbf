"""What client operations return: log entries, snapshot chunks, log info and configuration.

``Entry`` keeps the raw entry bytes and slices fields out on access, so streaming thousands
of entries costs one small object each and no copies until a field is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.entry import HEADER_SIZE, EntryType


class Entry:
    """One committed log entry at ``index`` (spec/protocol.md §5)."""

    __slots__ = ("index", "raw")

    def __init__(self, raw: bytes, index: int) -> None:
        self.raw = raw
        self.index = index

    @property
    def request_id(self) -> bytes:
        """The 12-byte id of the request that created the entry (zeros for CHECKPOINT)."""
        return bytes(self.raw[:12])

    @property
    def type(self) -> EntryType:
        return EntryType(self.raw[12])

    @property
    def term(self) -> int:
        return int.from_bytes(self.raw[13:HEADER_SIZE], "little")

    @property
    def data(self) -> bytes:
        """The entry's data: application bytes (STATE), msgpack (CONFIG) or ``0xc0``."""
        return bytes(self.raw[HEADER_SIZE:])

    @property
    def is_state(self) -> bool:
        return self.raw[12] == EntryType.STATE

    @property
    def is_config(self) -> bool:
        return self.raw[12] == EntryType.CONFIG

    @property
    def is_checkpoint(self) -> bool:
        return self.raw[12] == EntryType.CHECKPOINT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return self.index == other.index and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.index, self.raw))

    def __repr__(self) -> str:
        size = len(self.raw) - HEADER_SIZE
        return f"Entry(index={self.index}, term={self.term}, type={self.type.name}, data={size}B)"


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """A piece of the leader's snapshot, delivered before the entries that follow it.

    ``index``/``term`` identify the snapshot (its last included entry), ``offset`` is where
    ``data`` sits in the snapshot's ``total_size`` bytes.  A chunk with ``is_first`` starts a
    snapshot from the beginning: drop whatever partial snapshot you assembled before.  The
    same goes for an ``Entry`` that follows a snapshot whose last chunk never came (the next
    leader had the entries themselves): the entries continue from before that snapshot.
    """

    index: int
    term: int
    offset: int
    total_size: int
    data: bytes

    @property
    def is_first(self) -> bool:
        return self.offset == 0

    @property
    def is_last(self) -> bool:
        return self.offset + len(self.data) >= self.total_size


Item = Entry | SnapshotChunk


@dataclass(frozen=True, slots=True)
class LogInfo:
    """RequestLogInfo (spec/protocol.md §9.2) as the answering peer sees its log."""

    is_leader: bool
    leader_id: str | None
    term: int
    first_index: int
    last_applied: int
    commit_index: int
    last_index: int
    snapshot_size: int
    prune_index: int
    url: str = ""  # the peer that answered


@dataclass(frozen=True, slots=True)
class ConfigInfo:
    """RequestConfig (spec/protocol.md §9.1): the cluster's peers and the leader."""

    leader_id: str | None
    is_leader: bool
    peers: tuple[tuple[str, str], ...]
    url: str = ""  # the peer that answered

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.peers)

    @property
    def leader_url(self) -> str | None:
        return None if self.leader_id is None else self.urls.get(self.leader_id)


__all__ = ["ConfigInfo", "Entry", "Item", "LogInfo", "SnapshotChunk"]
