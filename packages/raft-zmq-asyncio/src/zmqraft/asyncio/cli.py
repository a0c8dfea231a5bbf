"""``zmq-raft [options] [id]``: run one peer (spec server-and-tools.md §c.1).

Without arguments: a single peer ``local`` at tcp://127.0.0.1:8047 with its data in ./raft
(the builder's defaults).  ``zmq-raft demo`` runs a local three-peer cluster (see ``demo``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio
from zmqraft.client.config_files import read_config
from zmqraft.core.config import peer_entry

from .builder import build
from .server import ZmqRaft

log = logging.getLogger("zmqraft.asyncio.cli")

CLOSING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zmq-raft",
        description="Run one zmq-raft peer (`zmq-raft demo --help`: a local three-peer demo).",
    )
    p.add_argument("-c", "--config", metavar="FILE", help="config file: yaml, json, hjson, toml or py")
    p.add_argument("-b", "--bind", metavar="URL", help="ROUTER bind address (router.bind)")
    p.add_argument("-p", "--pub", metavar="URL", help="broadcast state machine url (broadcast.url)")
    p.add_argument("-w", "--www", metavar="URL", help="web monitor announced host and port")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logging of every zmqraft module")
    p.add_argument("id", nargs="?", help="this peer's id (overrides the config's id)")
    return p


def setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if verbose:
        logging.getLogger("zmqraft").setLevel(logging.DEBUG)


def _www(options: dict[str, Any], url: str) -> None:
    parts = urlsplit(url if "//" in url else f"//{url}")
    web = options["webmonitor"]
    if parts.hostname:
        web["host"] = parts.hostname
    if parts.port:
        web["port"] = parts.port


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """Config file, then the id, then the peer's own ``pub``/``www``, then -b/-p/-w."""
    options = read_config(args.config, args.ns)
    if args.id:
        options["id"] = args.id
    if not options.get("id"):
        peers = options.get("peers") or []
        if len(peers) == 1:  # the default single peer ("local")
            only = peers[0]
            options["id"] = (
                only.get("id") if isinstance(only, dict) else only[0] if isinstance(only, list) else only
            )
    entry = peer_entry(options, str(options.get("id")))
    if entry is not None:
        if entry.get("pub"):
            options["broadcast"]["url"] = entry["pub"]
        if entry.get("www"):
            _www(options, str(entry["www"]))
    if args.bind:
        options["router"]["bind"] = args.bind
    if args.pub:
        options["broadcast"]["url"] = args.pub
    if args.www:
        _www(options, args.www)
    if options["webmonitor"].get("enable"):
        log.warning("the web monitor is not available in this version; webmonitor.enable ignored")
    return options


async def _close_on_signals(raft: ZmqRaft) -> None:
    with anyio.open_signal_receiver(*CLOSING_SIGNALS) as signals:
        async for signum in signals:
            log.info("%s received: closing", signal.Signals(signum).name)
            raft.close()


async def _serve(raft: ZmqRaft) -> int:
    async with anyio.create_task_group() as tg:
        tg.start_soon(_close_on_signals, raft)
        try:
            await tg.start(raft.serve)
        except Exception:
            print("RAFT INIT ERROR", file=sys.stderr)
            traceback.print_exc()
            tg.cancel_scope.cancel()
            return 1
        print(f"server listening at: {raft.url}", flush=True)
        await raft.wait_closed()
        tg.cancel_scope.cancel()
    if raft.error is not None:
        print("RAFT ERROR", file=sys.stderr)
        traceback.print_exception(raft.error)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(args_list[1:])
    args = parser().parse_args(args_list)
    setup_logging(args.verbose)
    try:
        raft = build(server_options(args))
    except Exception:
        print("RAFT INIT ERROR", file=sys.stderr)
        traceback.print_exc()
        return 1
    status = anyio.run(_serve, raft)
    print("bye bye", flush=True)
    return status
