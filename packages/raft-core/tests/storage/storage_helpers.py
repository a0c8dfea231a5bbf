"""Shared helpers for the storage tests: entries, request ids, directory snapshots."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from zmqraft.core.protocol.entry import encode_entry

T0 = 1_700_000_000  # request id timestamp (seconds) used by default


def rid(n: int, seconds: int = T0) -> bytes:
    """A request id: 4 bytes big-endian seconds, then 8 bytes counter."""
    return seconds.to_bytes(4, "big") + n.to_bytes(8, "big")


def entry(
    n: int, term: int = 1, size: int = 10, seconds: int = T0, kind: int = 0, zero_id: bool = False
) -> bytes:
    """A deterministic STATE entry ``n`` with ``size`` data bytes."""
    data = hashlib.sha256(n.to_bytes(8, "big")).digest() * (size // 32 + 1)
    return encode_entry(bytes(12) if zero_id else rid(n, seconds), kind, term, data[:size])


def entries(first: int, count: int, term: int = 1, size: int = 10, seconds: int = T0) -> list[bytes]:
    return [entry(i, term, size, seconds) for i in range(first, first + count)]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content (to prove nothing changed)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.read_bytes()
    return out
