"""Codecs for the value types a single ZeroMQ frame carries (spec/protocol.md §2).

Encoders take a Python value and return the frame bytes; they reject what the original could
not read back (negative or non-integer numbers, integers above 2^53-1).  Decoders take the
frame plus the message name and the 1-based frame number, so every failure reads like
``"AppendEntries frame 5: unsigned integer must not be null"``; they raise only
:class:`ProtocolError`.

``FrameReader`` bundles a frame list with the message name for the message decoders: it turns
"frame missing" and every malformed value into a ``ProtocolError`` naming the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import mpack
from .errors import ProtocolError

MAX_SAFE_INTEGER = (1 << 53) - 1
"""The largest integer a JS number holds exactly; the original refuses larger ``uint`` frames."""
MAX_UINT32 = 0xFFFFFFFF
REQUEST_ID_SIZE = 12

TRUE_FRAME = b"\x01"
FALSE_FRAME = b""
NULL_FRAME = b""
JSON_NULL = b"\xc0"


def frame_error(name: str, frame_no: int, reason: str) -> ProtocolError:
    """The one place that words decoder errors, so they all look alike."""
    return ProtocolError(f"{name} frame {frame_no}: {reason}")


def _check_uint(value: object, limit: int) -> int:
    # bool is an int subclass but never a valid number on the wire.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"unsigned integer expected, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"unsigned integer must not be negative: {value}")
    if value > limit:
        raise ValueError(f"unsigned integer too large: {value} > {limit}")
    return value


# ---- uint / nuint / uint32 ------------------------------------------------------------------


def encode_uint(value: int) -> bytes:
    """Minimal little-endian bytes (0 is one byte ``00``); at most 2^53-1 like the original."""
    v = _check_uint(value, MAX_SAFE_INTEGER)
    return v.to_bytes((v.bit_length() + 7) >> 3 or 1, "little")


def decode_uint(frame: bytes, name: str, frame_no: int) -> int:
    """Accept any length 1..8 (non-minimal too, as the original reads every byte)."""
    size = len(frame)
    if size == 0:
        raise frame_error(name, frame_no, "unsigned integer must not be null")
    if size > 8:
        raise frame_error(name, frame_no, f"unsigned integer too long ({size} bytes)")
    value = int.from_bytes(frame, "little")
    if value > MAX_SAFE_INTEGER:
        raise frame_error(name, frame_no, "unsigned integer exceeds 2^53-1")
    return value


def encode_nuint(value: int | None) -> bytes:
    """``None`` is the empty frame, anything else a ``uint``."""
    return NULL_FRAME if value is None else encode_uint(value)


def decode_nuint(frame: bytes, name: str, frame_no: int) -> int | None:
    return None if len(frame) == 0 else decode_uint(frame, name, frame_no)


def encode_uint32(value: int) -> bytes:
    """Client request-id counters: a ``uint`` of at most 4 bytes."""
    v = _check_uint(value, MAX_UINT32)
    return v.to_bytes((v.bit_length() + 7) >> 3 or 1, "little")


def decode_uint32(frame: bytes, name: str, frame_no: int) -> int:
    value = decode_uint(frame, name, frame_no)
    if value > MAX_UINT32:
        raise frame_error(name, frame_no, "unsigned integer exceeds 32 bits")
    return value


# ---- bool / string / bytes --------------------------------------------------------------------


def encode_bool(value: bool) -> bytes:
    """``true`` is ``01``; ``false`` is an *empty* frame (what the original sends)."""
    return TRUE_FRAME if value else FALSE_FRAME


def decode_bool(frame: bytes, name: str = "", frame_no: int = 0) -> bool:
    """True iff the frame is non-empty and its first byte is not zero; never fails."""
    return len(frame) != 0 and frame[0] != 0


def encode_string(value: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"string expected, got {type(value).__name__}")
    return value.encode("utf-8")


def decode_string(frame: bytes, name: str, frame_no: int) -> str:
    """Strict UTF-8: a peer id or URL that is not valid UTF-8 can't match anything we know."""
    try:
        return bytes(frame).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise frame_error(name, frame_no, f"invalid UTF-8 string ({exc.reason})") from None


# ---- json (one msgpack value) -----------------------------------------------------------------


def encode_json(value: Any) -> bytes:
    """One msgpack value in the original's dialect (big ints as float64, see mpack.py)."""
    return mpack.pack(value)


def decode_json(frame: bytes, name: str, frame_no: int) -> Any:
    """Any valid msgpack; every failure (empty, truncated, trailing bytes...) is a ProtocolError."""
    if len(frame) == 0:
        raise frame_error(name, frame_no, "msgpack value must not be empty")
    try:
        return mpack.unpack(frame)
    except Exception as exc:  # msgpack raises ValueError, TypeError, StackError, ...
        raise frame_error(name, frame_no, f"invalid msgpack ({type(exc).__name__}: {exc})") from None


def json_int(value: Any, name: str, frame_no: int, what: str = "value") -> int:
    """A non-negative integer inside a json frame; integral floats count (msgpack-lite dialect)."""
    number = mpack.as_int(value)
    if number is None or number < 0:
        raise frame_error(name, frame_no, f"{what} must be a non-negative integer, got {value!r:.60}")
    return number


def json_optional_string(value: Any, name: str, frame_no: int, what: str = "value") -> str | None:
    """A leader id: a string or nil."""
    if value is None or isinstance(value, str):
        return value
    raise frame_error(name, frame_no, f"{what} must be a string or nil, got {value!r:.60}")


# ---- reqid ------------------------------------------------------------------------------------


def encode_reqid(value: bytes) -> bytes:
    """The 12-byte request id goes on the wire untouched."""
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != REQUEST_ID_SIZE:
        raise ValueError(f"request id must be {REQUEST_ID_SIZE} bytes")
    return bytes(value)


def decode_reqid(frame: bytes, name: str, frame_no: int) -> bytes:
    if len(frame) != REQUEST_ID_SIZE:
        raise frame_error(name, frame_no, f"request id must be {REQUEST_ID_SIZE} bytes, got {len(frame)}")
    return frame


# ---- reader -----------------------------------------------------------------------------------


class FrameReader:
    """A frame list being decoded as message ``name``; frame numbers are 1-based."""

    __slots__ = ("frames", "name")

    def __init__(self, name: str, frames: Sequence[bytes]) -> None:
        self.name = name
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def has(self, frame_no: int) -> bool:
        return len(self.frames) >= frame_no

    def error(self, frame_no: int, reason: str) -> ProtocolError:
        return frame_error(self.name, frame_no, reason)

    def require(self, count: int) -> None:
        """Fail on the first missing frame when fewer than ``count`` frames arrived."""
        if len(self.frames) < count:
            raise self.error(len(self.frames) + 1, f"missing (message has {len(self.frames)} frames)")

    def raw(self, frame_no: int) -> bytes:
        if len(self.frames) < frame_no:
            raise self.error(frame_no, f"missing (message has {len(self.frames)} frames)")
        return self.frames[frame_no - 1]

    def uint(self, frame_no: int) -> int:
        return decode_uint(self.raw(frame_no), self.name, frame_no)

    def nuint(self, frame_no: int) -> int | None:
        return decode_nuint(self.raw(frame_no), self.name, frame_no)

    def uint32(self, frame_no: int) -> int:
        return decode_uint32(self.raw(frame_no), self.name, frame_no)

    def bool(self, frame_no: int) -> bool:
        return decode_bool(self.raw(frame_no))

    def string(self, frame_no: int) -> str:
        return decode_string(self.raw(frame_no), self.name, frame_no)

    def json(self, frame_no: int) -> Any:
        return decode_json(self.raw(frame_no), self.name, frame_no)

    def reqid(self, frame_no: int) -> bytes:
        return decode_reqid(self.raw(frame_no), self.name, frame_no)

    def msg_id(self, frame_no: int = 1) -> int:
        """Peer message ids: a ``uint`` of 1..3 bytes (24-bit counter, spec §8.1)."""
        frame = self.raw(frame_no)
        if not 1 <= len(frame) <= 3:
            raise self.error(frame_no, f"message id must be 1 to 3 bytes, got {len(frame)}")
        return int.from_bytes(frame, "little")

    def msg_type(self, expected: bytes, frame_no: int = 2) -> None:
        frame = self.raw(frame_no)
        if frame != expected:
            raise self.error(frame_no, f"message type must be {expected!r}, got {bytes(frame[:8])!r}")
