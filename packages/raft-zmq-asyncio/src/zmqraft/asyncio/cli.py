"""``zmq-raft [options] [id]``: run one peer (spec server-and-tools.md §c.1).

Without arguments: a single peer ``local`` at tcp://127.0.0.1:8047 with its data in ./raft
(the builder's defaults).  ``zmq-raft demo`` runs a local three-peer cluster (see ``demo``).
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from typing import Any

import anyio
from zmqraft.core.command_line import (
    CLOSING_SIGNALS,
    command_args,
    exit_status,
    init_error,
    run_server,
    server_parser,
)

from . import event_loop
from .builder import build
from .server import ZmqRaft

log = logging.getLogger("zmqraft.asyncio.cli")


def parser() -> argparse.ArgumentParser:
    return server_parser(
        "zmq-raft", "Run one zmq-raft peer (`zmq-raft demo --help`: a local three-peer demo)."
    )


async def _close_on_signals(raft: ZmqRaft) -> None:
    with anyio.open_signal_receiver(*(signal.Signals[name] for name in CLOSING_SIGNALS)) as signals:
        async for signum in signals:
            log.info("%s received: closing", signal.Signals(signum).name)
            raft.close()


async def _serve(raft: ZmqRaft) -> int:
    log.debug("event loop: %s", event_loop.running_loop_name())
    async with anyio.create_task_group() as tg:
        tg.start_soon(_close_on_signals, raft)
        try:
            await tg.start(raft.serve)
        except Exception:
            init_error()
            tg.cancel_scope.cancel()
            return 1
        print(f"server listening at: {raft.url}", flush=True)
        await raft.wait_closed()
        tg.cancel_scope.cancel()
    return exit_status(raft.error)


def _build(options: dict[str, Any]) -> ZmqRaft:
    """A peer in a process of its own: followers write on the event loop (see ``build``)."""
    return build(options, inline_storage=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = command_args(argv)
    if args[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(args[1:])
    return run_server(parser().parse_args(args), _build, lambda raft: event_loop.run(_serve, raft))
