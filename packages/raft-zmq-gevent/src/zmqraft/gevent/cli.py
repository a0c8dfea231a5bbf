"""``zmq-raft-gevent [options] [id]``: run one peer on gevent (spec server-and-tools.md §c.1).

The same flags, option precedence, banners and exit codes as ``zmq-raft`` (the asyncio
server).  Without arguments: a single peer ``local`` at tcp://127.0.0.1:8047 with its data in
./raft (the builder's defaults).

The option handling below repeats ``zmqraft.asyncio.cli`` because it lives there and this
package must not import the asyncio runtime; it belongs in a module both runtimes share.
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

from zmqraft.client.config_files import read_config
from zmqraft.core.config import peer_entry

import gevent

from .builder import build
from .server import ZmqRaft

log = logging.getLogger("zmqraft.gevent.cli")

CLOSING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR2)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zmq-raft-gevent", description="Run one zmq-raft peer on gevent.")
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
