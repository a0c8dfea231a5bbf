"""``PassThroughState``: the example state machine for log compaction (server-and-tools.md §a.2).

Its state is the data of every STATE entry, concatenated, so a snapshot made from it is
the whole history (gzip-compressed unless ``compressionLevel`` is 0).  Use it with::

    zr-log-compact -m zmqraft.client.tools.passthrough_state ...

Options: ``compressionLevel`` (0..9, 0 = no compression) and ``unzipSnapshot`` (a snapshot
it is given is gzip data to decompress first; default: ``compressionLevel != 0``).

A state machine for ``zr-log-compact`` is a class constructed with one options mapping,
with ``apply_entries`` as in ``zmqraft.core.statemachine.StateMachine`` and one of these
snapshot hooks: a ``snapshot_read_stream`` attribute (a binary file object, read once all
entries were fed), a ``create_snapshot_read_stream()`` method, a ``serialize()`` method
(bytes) or ``snapshot()`` (bytes or an iterable of bytes).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping
from typing import Any

from zmqraft.core.protocol.entry import HEADER_SIZE, EntryType
from zmqraft.core.statemachine import SnapshotReader, StateMachine, check_batch


class _Output(io.RawIOBase):
    """What the compressor produced so far; ``read`` drains it (the snapshot read stream)."""

    def __init__(self, level: int) -> None:
        self._buf = bytearray()
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31) if level else None
        self._flushed = False

    def feed(self, data: bytes) -> None:
        self._buf += self._z.compress(data) if self._z is not None else data

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf and not self._flushed:
            self._flushed = True
            if self._z is not None:
                self._buf += self._z.flush()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        del self._buf[:n]
        return n


class PassThroughState(StateMachine):
    blocking = True

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(0)
        options = dict(options or {})
        self.compression_level = int(options.get("compressionLevel", 0))
        unzip = options.get("unzipSnapshot")
        self.unzip_snapshot = bool(self.compression_level != 0 if unzip is None else unzip)
        self._out = _Output(self.compression_level)
        self.snapshot_read_stream = io.BufferedReader(self._out)

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        check_batch(self.last_applied, next_index, snapshot)
        if snapshot is not None and snapshot.size:
            data = snapshot.read(0, snapshot.size)
            self._out.feed(zlib.decompress(data, 47) if self.unzip_snapshot else data)
        for entry in entries:
            if entry[12] == EntryType.STATE:
                self._out.feed(bytes(entry[HEADER_SIZE:]))
        self.last_applied = next_index + len(entries) - 1
        return self.last_applied


StateMachineClass = PassThroughState
