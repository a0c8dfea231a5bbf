"""Embedding a zmq-raft peer in an asyncio application.

python asyncio_app.py cluster.json 1
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from typing import Any

from zmqraft.asyncio import build


# --8<-- [start:listeners]
def listeners() -> dict[str, Any]:
    """What a peer tells the application (each call is guarded: an exception is logged)."""
    return {
        "state": lambda role, term: print(f"state: {role.value} in term {term}", flush=True),
        "config": lambda config: print(f"configuration: {config}", flush=True),
        "error": lambda error: print(f"raft error: {error}", flush=True),
        "close": lambda: print("closed", flush=True),
    }


# --8<-- [end:listeners]


# --8<-- [start:main]
async def main(options: dict[str, Any]) -> int:
    raft = build({**options, "listeners": listeners()})  # validates, opens the files
    async with raft:  # binds and starts; leaving the block closes it gracefully
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, raft.close)  # close() asks; serving ends soon after
        print(f"listening at {raft.url}", flush=True)
        await raft.wait_closed()
    return 0 if raft.error is None else 1  # error: what closed it (a failed disk, ...)


# --8<-- [end:main]

if __name__ == "__main__":
    # --8<-- [start:logging]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("zmqraft.raft").setLevel(logging.DEBUG)  # e.g. one module in detail
    # --8<-- [end:logging]
    with open(sys.argv[1]) as file:
        config = {**json.load(file), "id": sys.argv[2]}
    sys.exit(asyncio.run(main(config)))
