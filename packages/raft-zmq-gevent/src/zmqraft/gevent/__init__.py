"""zmq-raft peer server on gevent: ``build(options)`` and ``ZmqRaft``.

::

    from zmqraft.gevent import build

    with build({"id": "1", "peers": [["1", "tcp://127.0.0.1:8047"]]}) as raft:
        raft.wait_closed()  # until raft.close() from another greenlet

The peer runs in greenlets of the calling thread's hub and needs no monkey-patching; its
storage and state-machine work runs in the hub's threadpool.  The command line server is
``zmq-raft-gevent`` (``python -m zmqraft.gevent``).
"""

from __future__ import annotations

from .builder import build
from .server import ZmqRaft

__all__ = ["ZmqRaft", "build"]
