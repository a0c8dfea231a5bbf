"""``zmq-raft-gevent [options] [id]``: run one peer on gevent (spec server-and-tools.md §c.1).

The same flags, option precedence (``zmqraft.core.command_line``), banners and exit codes as
``zmq-raft`` (the asyncio server).  Without arguments: a single peer ``local`` at
tcp://127.0.0.1:8047 with its data in ./raft (the builder's defaults).
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from typing import Any

from zmqraft.core.command_line import (
    CLOSING_SIGNALS,
    command_args,
    exit_status,
    init_error,
    run_server,
    server_parser,
)

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
        init_error()
        return 1
    # gevent runs each handler in a new greenlet of the hub, outside the peer's own
    handlers = [gevent.signal_handler(signum, _on_signal, raft, signum) for signum in _closing_signals()]
    try:
        print(f"server listening at: {raft.url}", flush=True)
        raft.wait_closed()
    finally:
        for handler in handlers:
            handler.cancel()
    return exit_status(raft.error)


def _closing_signals() -> list[signal.Signals]:
    return [signal.Signals[name] for name in CLOSING_SIGNALS]


def _build(options: dict[str, Any]) -> ZmqRaft:
    """A peer in a process of its own: followers write on the event loop (see ``build``)."""
    return build(options, inline_storage=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_server(parser().parse_args(command_args(argv)), _build, _serve)
