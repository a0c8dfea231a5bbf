"""What the operator tools share: seed hosts, peer specs, how peers are printed, how errors
are reported (``run_tool``: one line and a non-zero status, the traceback with ``-v``) and the
``-w table|json`` output switch."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from zmqraft.core.cli_errors import report

DEFAULT_PORT = 8047


TOOLS_EXTRA = "pip install 'zmq-raft-client[tools]'"


def has_extra(module: str) -> bool:
    """Is ``module`` (rich, prompt_toolkit: the ``tools`` extra) installed?"""
    return importlib.util.find_spec(module) is not None


def require_extra(module: str, what: str) -> None:
    """Exit with a one-line hint when the terminal library ``module`` is missing."""
    if not has_extra(module):
        print(f"{what} needs {module}: {TOOLS_EXTRA}", file=sys.stderr)
        raise SystemExit(2)


class UsageError(Exception):
    """A bad argument: printed without a stack, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _render(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def resolve_host(arg: str, default_port: int = DEFAULT_PORT) -> list[str]:
    """``host[:port]`` (or a ``tcp://`` url, kept as given) as ``tcp://addr:port`` urls, one
    per address the name resolves to.  ``*`` is this host's IPv4 addresses, ``::`` or ``[::]``
    all of its addresses; IPv6 addresses are rendered ``[addr]``."""
    if arg.startswith("tcp://"):
        return [arg.rstrip("/")]
    host, port = arg, default_port
    if arg.startswith("["):
        end = arg.find("]")
        if end < 0:
            raise UsageError(f"invalid host: {arg}")
        host, rest = arg[1:end], arg[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"invalid host: {arg}")
            port = _port(rest[1:], arg)
    elif arg.count(":") == 1:
        host, text = arg.split(":")
        port = _port(text, arg)
    family = socket.AF_UNSPEC
    if host == "*":
        host, family = socket.gethostname(), socket.AF_INET
    elif host == "::":
        host = socket.gethostname()
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UsageError(f"can not resolve {host!r}: {err.strerror}") from None
    urls: list[str] = []
    for *_, sockaddr in infos:
        url = f"tcp://{_render(str(sockaddr[0]))}:{port}"
        if url not in urls:
            urls.append(url)
    return urls


def _port(text: str, arg: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"invalid port in {arg}") from None
    if not 0 < port < 65536:
        raise UsageError(f"invalid port in {arg}")
    return port


def resolve_hosts(args: Iterable[str]) -> list[str]:
    urls: list[str] = []
    for arg in args:
        for url in resolve_host(arg):
            if url not in urls:
                urls.append(url)
    return urls


def config_urls(config: dict[str, Any]) -> list[str]:
    """The urls of ``config.peers`` (any of the accepted peer shapes)."""
    urls = []
    for peer in config.get("peers") or ():
        if isinstance(peer, str):
            urls.append(peer)
        elif isinstance(peer, dict) and peer.get("url"):
            urls.append(str(peer["url"]))
        elif isinstance(peer, list | tuple) and peer:
            urls.append(str(peer[1] if len(peer) > 1 else peer[0]))
    return urls


def parse_peer_spec(spec: str) -> tuple[str, str]:
    """``tcp://host:port[/id]`` -> ``(id, url)``: id = the URL-decoded path without ``/``,
    or the url itself when there is no path."""
    spec = spec.strip()
    parts = urlsplit(spec)
    if parts.scheme != "tcp" or not parts.netloc:
        raise UsageError(f"invalid peer: {spec!r} (expected tcp://host:port[/id])")
    url = f"tcp://{parts.netloc}"
    path = parts.path
    if path in ("", "/"):
        return url, url
    peer_id = unquote(path[1:])
    if not peer_id:
        raise UsageError(f"invalid peer id in {spec!r}")
    return peer_id, url


def parse_peer_specs(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    return [parse_peer_spec(part) for part in text.split(",") if part.strip()]


def peer_str(peer_id: str, url: str) -> str:
    """``url`` when the id is the url, else ``url/<urlencoded id>``."""
    return url if peer_id == url else f"{url}/{quote(peer_id, safe='')}"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``-v/--debug``: errors with their traceback (without it: one line)."""
    parser.add_argument("-v", "--debug", action="store_true", help="show the traceback of an error")


def run_tool(prog: str, body: Callable[[], int], debug: bool = False, interrupted: int = 130) -> int:
    """``body()``'s status; an error is one line ``prog: what failed (what to do)`` on stderr
    and status 1 (a ``UsageError`` its own code), the traceback only when ``debug``.  Ctrl-C
    is status ``interrupted`` without a word."""
    try:
        return body()
    except UsageError as err:
        if debug:
            traceback.print_exception(err, file=sys.stderr)
        print(f"{prog}: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return interrupted
    except Exception as err:
        return report(prog, err, debug)


def connecting(urls: Iterable[str]) -> None:
    """Say whom a tool is waiting for (a wrong address or secret is otherwise a blank screen)."""
    print(f"connecting to {', '.join(urls)} ...", file=sys.stderr, flush=True)


#: the output formats of ``-w/--write-out`` (etcdctl's name; ``-o`` is zr-tool's output file)
FORMATS = ("table", "json")


def add_write_out(parser: argparse.ArgumentParser, **kw: Any) -> None:
    """``-w/--write-out table|json`` and ``--json`` (= ``-w json``), the same in every tool."""
    parser.add_argument("-w", "--write-out", choices=FORMATS, dest="write_out",
                        help="output format (default: table)", **kw)
    parser.add_argument("--json", action="store_const", const="json", dest="write_out",
                        help="the same as -w json", **kw)


def ms(value: str) -> float:
    """An integer number of milliseconds (argparse type) as seconds."""
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"not an integer: {value}") from None
    if n <= 0:
        raise ValueError("must be > 0")
    return n / 1000.0


def table_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
