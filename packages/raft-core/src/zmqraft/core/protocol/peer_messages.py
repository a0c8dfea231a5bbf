"""The peer RPCs: RequestVote, AppendEntries, InstallSnapshot and their replies (spec/protocol.md §8).

These are what Raft peers send each other (the Raft paper's RequestVote and AppendEntries RPCs,
and its §7 InstallSnapshot, sent in chunks).  Frame 1 is a peer message id, a 24-bit counter
(``uint``, 1..3 bytes, spec §8.1), not a client request id: the sender re-sends the identical
message until a reply with that id arrives, and the receiver uses it to debounce
AppendEntries/InstallSnapshot.  Log entries ride as trailing frames, kept as raw ``bytes``.

See ``messages`` (the protocol's index) for the contract every message class follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from .frames import FrameReader, encode_bool, encode_nuint, encode_string, encode_uint
from .message_codec import Frames, decode_entries, encode_msg_id
from .message_types import APPEND_ENTRIES, INSTALL_SNAPSHOT, PRE_VOTE, REQUEST_VOTE


@dataclass(frozen=True, slots=True)
class _Ballot:
    """RequestVote's frames, shared with PreVote (which differs only in its type byte)."""

    TYPE: ClassVar[bytes]

    msg_id: int
    candidate_id: str
    term: int
    last_log_index: int
    last_log_term: int

    def encode(self, ident: bytes) -> list[bytes]:
        return [
            encode_msg_id(self.msg_id),
            self.TYPE,
            ident,
            encode_string(self.candidate_id),
            encode_uint(self.term),
            encode_uint(self.last_log_index),
            encode_uint(self.last_log_term),
        ]

    @classmethod
    def decode(cls, frames: Frames) -> Self:
        r = FrameReader(cls.__name__, frames)
        r.require(7)
        msg_id = r.msg_id(1)
        r.msg_type(cls.TYPE)
        return cls(msg_id, r.string(4), r.uint(5), r.uint(6), r.uint(7))

    def __str__(self) -> str:
        return (
            f"{type(self).__name__}(id={self.msg_id} candidate={self.candidate_id} term={self.term}"
            f" last={self.last_log_index}/{self.last_log_term})"
        )


@dataclass(frozen=True, slots=True)
class _BallotReply:
    """``[id, term, granted]``, the reply of RequestVote and of PreVote."""

    msg_id: int
    term: int
    vote_granted: bool

    def encode(self) -> list[bytes]:
        return [encode_msg_id(self.msg_id), encode_uint(self.term), encode_bool(self.vote_granted)]

    @classmethod
    def decode(cls, frames: Frames) -> Self:
        r = FrameReader(cls.__name__, frames)
        r.require(3)
        return cls(r.msg_id(1), r.uint(2), r.bool(3))

    def __str__(self) -> str:
        granted = "granted" if self.vote_granted else "denied"
        return f"{type(self).__name__}(id={self.msg_id} term={self.term} {granted})"


@dataclass(frozen=True, slots=True)
class RequestVote(_Ballot):
    TYPE: ClassVar[bytes] = REQUEST_VOTE


@dataclass(frozen=True, slots=True)
class RequestVoteReply(_BallotReply):
    pass


@dataclass(frozen=True, slots=True)
class PreVote(_Ballot):
    """Would you vote for me in ``term`` (our term + 1)?  RequestVote's frames under type ``!``;
    the answer changes nothing on the voter (Raft thesis §9.6; docs/protocol-extensions.md).
    Not a subclass of RequestVote, so that no ``isinstance`` test takes one for the other."""

    TYPE: ClassVar[bytes] = PRE_VOTE


@dataclass(frozen=True, slots=True)
class PreVoteReply(_BallotReply):
    """``term`` is the proposed term if granted, else the voter's."""


@dataclass(frozen=True, slots=True)
class AppendEntries:
    msg_id: int
    leader_id: str
    term: int
    prev_log_index: int
    prev_log_term: int
    commit_index: int
    entries: tuple[bytes, ...] = ()

    def encode(self, ident: bytes) -> list[bytes]:
        frames = [
            encode_msg_id(self.msg_id),
            APPEND_ENTRIES,
            ident,
            encode_string(self.leader_id),
            encode_uint(self.term),
            encode_uint(self.prev_log_index),
            encode_uint(self.prev_log_term),
            encode_uint(self.commit_index),
        ]
        frames.extend(self.entries)
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> AppendEntries:
        r = FrameReader("AppendEntries", frames)
        r.require(8)
        msg_id = r.msg_id(1)
        r.msg_type(APPEND_ENTRIES)
        return cls(
            msg_id,
            r.string(4),
            r.uint(5),
            r.uint(6),
            r.uint(7),
            r.uint(8),
            decode_entries(frames, 8, "AppendEntries"),
        )

    def __str__(self) -> str:
        return (
            f"AppendEntries(id={self.msg_id} leader={self.leader_id} term={self.term}"
            f" prev={self.prev_log_index}/{self.prev_log_term} commit={self.commit_index}"
            f" entries={len(self.entries)})"
        )


@dataclass(frozen=True, slots=True)
class AppendEntriesReply:
    msg_id: int
    term: int
    success: bool
    conflict_index: int | None = None
    conflict_term: int | None = None  # decoded if present; never sent by the original

    def encode(self) -> list[bytes]:
        frames = [encode_msg_id(self.msg_id), encode_uint(self.term), encode_bool(self.success)]
        if self.conflict_term is not None:
            # frame 4 must exist for frame 5 to exist: an empty frame 4 stands for "no index"
            frames.append(encode_nuint(self.conflict_index))
            frames.append(encode_uint(self.conflict_term))
        elif self.conflict_index is not None:
            frames.append(encode_uint(self.conflict_index))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> AppendEntriesReply:
        r = FrameReader("AppendEntriesReply", frames)
        r.require(3)
        return cls(
            r.msg_id(1),
            r.uint(2),
            r.bool(3),
            r.nuint(4) if r.has(4) else None,
            r.nuint(5) if r.has(5) else None,
        )

    def __str__(self) -> str:
        text = f"AppendEntriesReply(id={self.msg_id} term={self.term} {'ok' if self.success else 'fail'}"
        if self.conflict_index is not None:
            text += f" conflict_index={self.conflict_index}"
        if self.conflict_term is not None:
            text += f" conflict_term={self.conflict_term}"
        return text + ")"


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    msg_id: int
    leader_id: str
    term: int
    last_index: int
    last_term: int
    offset: int
    total_size: int
    chunk: bytes

    def encode(self, ident: bytes) -> list[bytes]:
        return [
            encode_msg_id(self.msg_id),
            INSTALL_SNAPSHOT,
            ident,
            encode_string(self.leader_id),
            encode_uint(self.term),
            encode_uint(self.last_index),
            encode_uint(self.last_term),
            encode_uint(self.offset),
            encode_uint(self.total_size),
            self.chunk,
        ]

    @classmethod
    def decode(cls, frames: Frames) -> InstallSnapshot:
        r = FrameReader("InstallSnapshot", frames)
        r.require(10)
        msg_id = r.msg_id(1)
        r.msg_type(INSTALL_SNAPSHOT)
        return cls(msg_id, r.string(4), r.uint(5), r.uint(6), r.uint(7), r.uint(8), r.uint(9), frames[9])

    def __str__(self) -> str:
        return (
            f"InstallSnapshot(id={self.msg_id} leader={self.leader_id} term={self.term}"
            f" snapshot={self.last_index}/{self.last_term} offset={self.offset}"
            f" size={self.total_size} chunk={len(self.chunk)})"
        )


@dataclass(frozen=True, slots=True)
class InstallSnapshotReply:
    msg_id: int
    term: int
    reposition: int | None = None

    def encode(self) -> list[bytes]:
        frames = [encode_msg_id(self.msg_id), encode_uint(self.term)]
        if self.reposition is not None:
            frames.append(encode_uint(self.reposition))
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> InstallSnapshotReply:
        r = FrameReader("InstallSnapshotReply", frames)
        r.require(2)
        return cls(r.msg_id(1), r.uint(2), r.uint(3) if r.has(3) else None)

    def __str__(self) -> str:
        extra = "" if self.reposition is None else f" reposition={self.reposition}"
        return f"InstallSnapshotReply(id={self.msg_id} term={self.term}{extra})"


__all__ = [
    "AppendEntries",
    "AppendEntriesReply",
    "InstallSnapshot",
    "InstallSnapshotReply",
    "PreVote",
    "PreVoteReply",
    "RequestVote",
    "RequestVoteReply",
]
