"""The ``zmq-raft`` command line (spec server-and-tools.md §c.1), the same for every runtime.

``zmq-raft [-c FILE] [-b URL] [-p URL] [-w URL] [--ns NS] [-v] [id]``: the options are the
config file, then the id, then the peer's own ``pub``/``www`` entries, then -b/-p/-w.  A
runtime's ``main`` parses with ``server_parser``, then ``run_server(args, build, serve)``:
``build`` failing is a RAFT INIT ERROR (status 1), ``serve`` runs until the peer closed and
returns its status (``exit_status``).  The runtimes close a peer on ``CLOSING_SIGNALS``.

Errors are one line (``cli_errors``); ``-v``/``--debug`` adds the traceback.
``--check-config FILE [ID]`` validates a config file and prints the effective options.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .builder import check_peer_id
from .cli_errors import report
from .config import create_options, peer_entry, seed_peers, validate_options
from .config_files import read_config
from .cpu_scheduling import policy_name, use_batch_scheduling
from .curve_policy import load_curve
from .malloc_tuning import reexec_tuned

T = TypeVar("T")

log = logging.getLogger("zmqraft.command_line")

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
    p.add_argument(
        "-v",
        "--verbose",
        "--debug",
        action="count",
        default=0,
        help="debug logging of every zmqraft module, and tracebacks of errors",
    )
    p.add_argument(
        "--check-config",
        metavar="FILE",
        help="validate FILE for peer [id] (every peer without one), print the effective options",
    )
    p.add_argument(
        "--allow-unknown-options",
        action="store_true",
        help="accept config keys that are not options (also: allowUnknownOptions: true)",
    )
    p.add_argument("id", nargs="?", help="this peer's id (overrides the config's id)")
    return p


_debug = False  # -v: errors with their traceback


def setup_logging(verbose: int) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    global _debug
    _debug = bool(verbose)
    if verbose:
        logging.getLogger("zmqraft").setLevel(logging.DEBUG)


def command_args(argv: Sequence[str] | None) -> list[str]:
    """A runtime's ``main`` arguments: ``argv`` as given by a caller in its own process, or,
    run as the command itself (``None``), ``sys.argv[1:]`` once the process has re-executed
    with the malloc tunables (``malloc_tuning``) and put itself under ``SCHED_BATCH``
    (``cpu_scheduling``): both before any thread or socket exists."""
    if argv is not None:
        return list(argv)
    reexec_tuned()
    use_batch_scheduling(os.environ)
    return sys.argv[1:]


def run_server(
    args: argparse.Namespace, build: Callable[[dict[str, Any]], T], serve: Callable[[T], int]
) -> int:
    """The command line's life: logging, the options, ``build`` (an error is a RAFT INIT
    ERROR, status 1), ``serve`` until closed, "bye bye"."""
    setup_logging(args.verbose)
    log.debug("GLIBC_TUNABLES=%s", os.environ.get("GLIBC_TUNABLES", "(unset)"))  # malloc_tuning
    log.debug("CPU scheduling: %s", policy_name())  # cpu_scheduling
    if args.check_config is not None:
        return check_config(args)
    try:
        raft = build(server_options(args))
    except Exception as err:
        init_error(err)
        return 1
    status = serve(raft)
    print("bye bye", flush=True)
    return status


def init_error(err: BaseException | None = None) -> None:
    """The peer could not start: ``RAFT INIT ERROR: <one line>`` (the original's banner;
    the traceback too with -v).  ``err`` defaults to the exception being handled."""
    err = err if err is not None else sys.exc_info()[1]
    if err is not None:
        report("RAFT INIT ERROR", err, _debug)


def exit_status(error: BaseException | None) -> int:
    """The exit status of a peer that closed, after ``error`` if any (``RAFT ERROR: ...``)."""
    if error is None:
        return 0
    return max(1, report("RAFT ERROR", error, _debug))


def check_config(args: argparse.Namespace) -> int:
    """``--check-config FILE [ID]``: the effective options of peer ID (of every peer without
    one) as JSON on stdout, status 0; the first problem as one line, status 1.  Nothing is
    written."""
    args.config = args.check_config
    try:
        options = server_options(args)
        ids = [str(options["id"])] if options.get("id") else [p for p, _ in seed_peers(options)]
        effective = {}
        for peer_id in ids:
            args.id = peer_id
            checked = validate_options(create_options(server_options(args)))
            check_peer_id(checked)
            load_curve(checked)  # its key files: present, private, matching, one per peer
            effective[peer_id] = checked
    except Exception as err:
        return report("zmq-raft: config error", err, _debug)
    shown = effective[ids[0]] if len(ids) == 1 else effective
    print(json.dumps(shown, indent=2, default=repr))
    print(f"{args.check_config}: ok ({', '.join(ids)})", file=sys.stderr)
    return 0


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
    options = read_config(args.config, args.ns, allow_unknown=getattr(args, "allow_unknown_options", False))
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
    "check_config",
    "exit_status",
    "init_error",
    "run_server",
    "server_options",
    "server_parser",
    "setup_logging",
]
