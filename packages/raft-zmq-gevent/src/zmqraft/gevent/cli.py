"""``zmq-raft-gevent [options] [id]``: run one peer on gevent (spec server-and-tools.md §c.1).

The same flags, option precedence (``zmqraft.client.serving``), banners and exit codes as
``zmq-raft`` (the asyncio server).  Without arguments: a single peer ``local`` at
tcp://127.0.0.1:8047 with its data in ./raft (the builder's defaults).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence

from zmqraft.client.serving import CLOSING_SIGNALS, server_options, server_parser, setup_logging

import gevent

from .builder import build
from .server import ZmqRaft

log = logging.getLogger("zmqraft.gevent.cli")


def parser() -> argparse.ArgumentParser:
    return server_parser("zmq-raft-gevent", "Run one zmq-raft peer on gevent.")


def _on_signal(raft: ZmqRaft, signum: int) -> None:
    log.info("%s received: closing", signal.Signals(signum).name)
    raft.close(wait=False)


def _serve(raft: ZmqRaft) -> int:
    try:
        raft.start()
    except Exception:
        print("RAFT INIT ERROR", file=sys.stderr)
        traceback.print_exc()
        return 1
    # gevent runs each handler in a new greenlet of the hub, outside the peer's own
    handlers = [gevent.signal_handler(signum, _on_signal, raft, signum) for signum in CLOSING_SIGNALS]
    try:
        print(f"server listening at: {raft.url}", flush=True)
        raft.wait_closed()
    finally:
        for handler in handlers:
            handler.cancel()
    if raft.error is not None:
        print("RAFT ERROR", file=sys.stderr)
        traceback.print_exception(raft.error)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose)
    try:
        raft = build(server_options(args))
    except Exception:
        print("RAFT INIT ERROR", file=sys.stderr)
        traceback.print_exc()
        return 1
    status = _serve(raft)
    print("bye bye", flush=True)
    return status
