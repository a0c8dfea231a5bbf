"""zmq-raft peer server on asyncio: ``build(options)`` and ``ZmqRaft``.

::

    from zmqraft.asyncio import build

    async def main() -> None:
        async with build({"id": "1", "peers": [["1", "tcp://127.0.0.1:8047"]]}) as raft:
            await raft.wait_closed()  # until raft.close()

The command line server is ``zmq-raft`` (``python -m zmqraft.asyncio``).
"""

from __future__ import annotations

from .builder import build
from .server import ZmqRaft

__all__ = ["ZmqRaft", "build"]
