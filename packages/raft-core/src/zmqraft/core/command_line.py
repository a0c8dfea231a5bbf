"""The ``zmq-raft`` command line (spec server-and-tools.md §c.1), the same for every runtime.

``zmq-raft [-c FILE] [-b URL] [-p URL] [-w URL] [--ns NS] [-v] [id]``: the options are the
config file, then the id, then the peer's own ``pub``/``www`` entries, then -b/-p/-w.  A
runtime's ``main`` parses with ``server_parser``, then ``run_server(args, build, serve)``:
``build`` failing is a RAFT INIT ERROR (status 1), ``serve`` runs until the peer closed and
returns its status (``exit_status``).  The runtimes close a peer on ``CLOSING_SIGNALS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .config import peer_entry
from .config_files import read_config
from .storage.base import StorageError

T = TypeVar("T")

#: the names of the signals that close a peer gracefully (the original's list)
CLOSING_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR2")


def server_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """``prog [-c FILE] [-b URL] [-p URL] [-w URL] [--ns NS] [-v] [id]``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
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


def run_server(
    args: argparse.Namespace, build: Callable[[dict[str, Any]], T], serve: Callable[[T], int]
) -> int:
    """The command line's life: logging, the options, ``build`` (an error is a RAFT INIT
    ERROR, status 1), ``serve`` until closed, "bye bye"."""
    setup_logging(args.verbose)
    try:
        raft = build(server_options(args))
    except Exception:
        init_error()
        return 1
    status = serve(raft)
    print("bye bye", flush=True)
    return status


def init_error() -> None:
    """The peer could not start (the original's banner, then the traceback)."""
    print("RAFT INIT ERROR", file=sys.stderr)
    traceback.print_exc()


def exit_status(error: BaseException | None) -> int:
    """The exit status of a peer that closed, after ``error`` if any (shown as a RAFT ERROR)."""
    if error is None:
        return 0
    print("RAFT ERROR", file=sys.stderr)
    if isinstance(error, StorageError):  # a full disk, a bad file: its one line says it all
        print(f"StorageError: {error}", file=sys.stderr)
    else:
        traceback.print_exception(error)
    return 1


def _www(options: dict[str, Any], url: str) -> None:
    parts = urlsplit(url if "//" in url else f"//{url}")
    web = options["webmonitor"]
    if parts.hostname:
        web["host"] = parts.hostname
    if parts.port:
        web["port"] = parts.port


def _metrics(options: dict[str, Any], url: str) -> None:
    parts = urlsplit(url if "//" in url else f"//{url}")
    metrics = options["metrics"]
    if parts.hostname:
        metrics["host"] = parts.hostname
    if parts.port is not None:
        metrics["port"] = parts.port


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
        if entry.get("metrics"):  # the peer's own metrics address, e.g. "127.0.0.1:9101"
            _metrics(options, str(entry["metrics"]))
    if args.bind:
        options["router"]["bind"] = args.bind
    if args.pub:
        options["broadcast"]["url"] = args.pub
    if args.www:
        _www(options, args.www)
    return options


__all__ = [
    "CLOSING_SIGNALS",
    "exit_status",
    "init_error",
    "run_server",
    "server_options",
    "server_parser",
    "setup_logging",
]
