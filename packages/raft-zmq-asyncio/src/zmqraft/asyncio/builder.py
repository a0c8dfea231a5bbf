"""``build(options)``: the original's builder (spec server-and-tools.md §b) on asyncio."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from zmqraft.core.builder import assemble

from .server import ZmqRaft


def build(options: Mapping[str, Any], *, inline_storage: bool = False) -> ZmqRaft:
    """Validate ``options`` (the original's names, merged with the defaults), open the data
    directory through the factories and return the peer, not yet started: run it with
    ``async with build(options) as raft:`` or ``await raft.serve()``.

    Raises ``OptionsError``/``TypeError`` for bad options, ``StorageError`` for unusable
    files and ``ValueError`` when a start-up check fails.

    ``inline_storage``: a peer that does not lead writes on the event loop itself instead of
    handing the write to a thread (``zmqraft.core.driver.Work.inline``): its acknowledgements
    leave sooner, but a slow disk then stalls the whole event loop.  Right for a process of its
    own (the ``zmq-raft`` command turns it on), wrong beside other work on the same loop."""
    peer = assemble(options, now=time.monotonic(), wall=time.time())
    return ZmqRaft(peer, inline_storage=inline_storage)
