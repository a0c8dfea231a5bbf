"""A user state machine for the simulator test: a key-value store fed ``key=value`` updates."""

from __future__ import annotations

import json

from zmqraft.core.protocol.entry import EntryType, LogEntry


class KeyValueMachine:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def apply_entry(self, index: int, entry: LogEntry) -> None:
        if entry.type == EntryType.STATE:
            key, _, value = entry.data.decode().partition("-")
            self.data[key] = value

    def snapshot(self) -> bytes:
        return json.dumps(self.data, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        self.data = json.loads(data) if data else {}
