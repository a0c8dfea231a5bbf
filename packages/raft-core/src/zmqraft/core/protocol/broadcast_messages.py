"""StateBroadcast: what the leader publishes on its PUB socket (spec/protocol.md §9.8).

The one message that is neither a request nor a reply: no request id, frame 1 is the
cluster ident (which is also the SUB topic), then the leader's term, its state machine's
last applied index and the entries just applied (none in a heartbeat).  Subscribers use it
to follow the log without polling (``zmqraft.core.client.subscriber``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .frames import FrameReader, encode_uint
from .message_codec import Frames, decode_entries


@dataclass(frozen=True, slots=True)
class StateBroadcast:
    """A PUB message: ``[ident, term, last_applied, *entries]`` (no request id)."""

    ident: bytes
    term: int
    last_applied: int
    entries: tuple[bytes, ...] = ()

    def encode(self) -> list[bytes]:
        frames = [self.ident, encode_uint(self.term), encode_uint(self.last_applied)]
        frames.extend(self.entries)
        return frames

    @classmethod
    def decode(cls, frames: Frames) -> StateBroadcast:
        r = FrameReader("StateBroadcast", frames)
        r.require(3)
        return cls(frames[0], r.uint(2), r.uint(3), decode_entries(frames, 3, "StateBroadcast"))

    def __str__(self) -> str:
        return f"StateBroadcast(term={self.term} applied={self.last_applied} entries={len(self.entries)})"


__all__ = [
    "StateBroadcast",
]
