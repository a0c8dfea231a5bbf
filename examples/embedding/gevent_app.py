"""Embedding a zmq-raft peer in a gevent application (no monkey-patching needed).

python gevent_app.py cluster.json 1
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Any

import gevent  # type: ignore[import-untyped]
from asyncio_app import listeners
from zmqraft.gevent import build


# --8<-- [start:main]
def main(options: dict[str, Any]) -> int:
    raft = build({**options, "listeners": listeners()})
    with raft:  # start(): bound, its greenlets running in this thread's hub
        handlers = [gevent.signal_handler(s, raft.close) for s in (signal.SIGINT, signal.SIGTERM)]
        print(f"listening at {raft.url}", flush=True)
        raft.wait_closed()  # other greenlets of the application run meanwhile
        for handler in handlers:
            handler.cancel()
    return 0 if raft.error is None else 1


# --8<-- [end:main]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with open(sys.argv[1]) as file:
        config = {**json.load(file), "id": sys.argv[2]}
    sys.exit(main(config))
