"""``build(options)``: the original's builder (spec server-and-tools.md §b) on gevent."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from zmqraft.core.builder import assemble

from .server import ZmqRaft


def build(options: Mapping[str, Any]) -> ZmqRaft:
    """Validate ``options`` (the original's names, merged with the defaults), open the data
    directory through the factories and return the peer, not yet started: run it with
    ``with build(options) as raft:`` or ``raft.start()``.

    Raises ``OptionsError``/``TypeError`` for bad options, ``StorageError`` for unusable
    files and ``ValueError`` when a start-up check fails."""
    peer = assemble(options, now=time.monotonic(), wall=time.time())
    return ZmqRaft(peer)
