"""MessagePack in the original's dialect (spec/storage.md §0, protocol.md §2).

The original (msgpack-lite) writes integers outside the int32 range as float64 and never
uses uint64/int64; ``pack`` mimics that so frames and files are byte-identical.  ``unpack``
accepts any valid msgpack; integral floats are turned back into ints by ``as_int`` where the
protocol expects an integer.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


def _dialect(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if _INT32_MIN <= value <= _INT32_MAX else float(value)
    if isinstance(value, dict):
        return {k: _dialect(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dialect(v) for v in value]
    return value


def pack(value: Any) -> bytes:
    """Encode like the original: str as str, bytes as bin, big ints as float64."""
    return msgpack.packb(_dialect(value), use_bin_type=True)


def unpack(data: bytes | memoryview) -> Any:
    """Decode one msgpack value; raises ``ValueError`` subclasses on malformed input."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def as_int(value: Any) -> int | None:
    """The int a msgpack value stands for (integral floats included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return None
