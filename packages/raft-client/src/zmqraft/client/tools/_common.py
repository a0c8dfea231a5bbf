"""What the operator tools share: seed hosts, peer specs, how peers are printed, how errors
are reported (``run_tool``: one line and a non-zero status, the traceback with ``-v``), the
``-w table|json`` output switch and the CurveZMQ keys (``--curve-keys DIR``)."""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from zmqraft.core.cli_errors import report
from zmqraft.core.cluster import ConfigError, parse_peers
from zmqraft.core.curve_keys import ClientKeys, CurveKeyError, read_public_keys
from zmqraft.core.curve_policy import resolve_paths

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
    parser.add_argument(
        "-w", "--write-out", choices=FORMATS, dest="write_out", help="output format (default: table)", **kw
    )
    parser.add_argument(
        "--json", action="store_const", const="json", dest="write_out", help="the same as -w json", **kw
    )


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


# ---- CurveZMQ ---------------------------------------------------------------------------------

#: the key pair ``--curve-keys DIR`` holds unless ``--curve-name`` says otherwise
CURVE_CLIENT_NAME = "client"


def add_curve(parser: argparse.ArgumentParser) -> None:
    """``--curve-keys DIR`` and ``--curve-name NAME``: talk to a CurveZMQ cluster."""
    group = parser.add_argument_group("CurveZMQ (a cluster with curve.keys)")
    group.add_argument(
        "--curve-keys",
        metavar="DIR",
        help="this client's key pair DIR/client.key_secret (zr-keys --client DIR) and the peers' "
        "public keys DIR/ID.key; a config file's curve.keys adds the peers' keys",
    )
    group.add_argument(
        "--curve-name", metavar="NAME", help="the key pair DIR/NAME.key_secret instead of client"
    )


def split_seed(arg: str) -> tuple[str | None, str]:
    """A seed as ``(peer id or None, host[:port] or url)``: ``ID=host:port``, ``ID=tcp://...``
    and ``tcp://host:port/ID`` name the peer (CurveZMQ picks its server key by id)."""
    if arg.startswith("tcp://"):
        path = urlsplit(arg).path
        if path not in ("", "/"):
            return parse_peer_spec(arg)
        return None, arg
    head, sep, rest = arg.partition("=")
    if sep and head and rest:
        return head, rest
    return None, arg


def resolve_seeds(args: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """``host[:port]``, urls and the peer-naming forms of ``split_seed`` as urls, and the
    peer id of each url that was named."""
    urls: list[str] = []
    ids: dict[str, str] = {}
    for arg in args:
        peer_id, where = split_seed(arg)
        for url in resolve_host(where):
            if url not in urls:
                urls.append(url)
            if peer_id is not None:
                ids[url] = peer_id
    return urls, ids


def config_peers(config: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``(id, url)`` of ``config.peers`` in any accepted shape (none when they are invalid:
    the tool then fails where it uses them)."""
    try:
        return parse_peers(config.get("peers") or [])
    except ConfigError:
        return ()


def config_server_keys(config: Mapping[str, Any], config_file: str | None) -> dict[str, bytes] | None:
    """The peers' public keys of a config's ``curve.keys`` by peer id (a relative folder is
    relative to the config file's, as for the peers: ``resolve_paths``); None when the
    config has no ``curve.keys`` (a cluster without CurveZMQ)."""
    curve = config.get("curve")
    if not isinstance(curve, Mapping) or not curve.get("keys"):
        return None
    options: dict[str, Any] = {"curve": dict(curve)}
    if config_file:
        resolve_paths(options, os.path.dirname(os.path.abspath(config_file)))
    return {peer: cert.public for peer, cert in read_public_keys(str(options["curve"]["keys"])).items()}


def curve_keys(
    args: argparse.Namespace,
    config: Mapping[str, Any] | None = None,
    config_file: str | None = None,
    seeds: Sequence[str] = (),
    seed_ids: Mapping[str, str] | None = None,
) -> ClientKeys | None:
    """The keys a tool connects with (None: plain TCP): the pair and peers' keys of
    ``--curve-keys``, the peers' keys of the config's ``curve.keys`` on top (when that folder
    is readable here), every key also under its peer's url (from the config's peers and
    ``seed_ids``).  Every seed must resolve to a server key; the error says what to pass
    when one does not."""
    config = config or {}
    curve = config.get("curve")
    curve_on = isinstance(curve, Mapping) and bool(curve.get("keys"))
    if args.curve_keys is None:
        if args.curve_name is not None:
            raise UsageError("--curve-name names a key pair in --curve-keys DIR: give --curve-keys too")
        if curve_on:
            raise UsageError(
                f"the cluster of {config_file} uses CurveZMQ (curve.keys): give --curve-keys DIR "
                "holding this client's key pair (zr-keys --client DIR; the peers admit it once "
                "DIR/client.key is in their curve.clients)"
            )
        return None
    try:
        from_config = config_server_keys(config, config_file)
    except CurveKeyError:
        from_config = None  # the peers' folder is not on this host: DIR's ID.key files serve
    name = args.curve_name or CURVE_CLIENT_NAME
    try:
        keys = ClientKeys.from_directory(args.curve_keys, name)
    except CurveKeyError as err:
        hint = f" (make one: zr-keys {args.curve_keys} {name})" if "no such" in str(err) else ""
        raise UsageError(f"--curve-keys: {err}{hint}") from None
    keys = ClientKeys(keys.public, keys.secret, {**keys.servers, **(from_config or {})})
    keys = keyed_by_url(keys, {url: peer for peer, url in config_peers(config)})
    return checked_seeds(keys, seeds, seed_ids or {}, args.curve_keys)


def keyed_by_url(keys: ClientKeys, ids: Mapping[str, str]) -> ClientKeys:
    """``keys`` with each peer's key also under its url (``ids``: url -> peer id)."""
    servers = dict(keys.servers)
    for url, peer in ids.items():
        if peer in servers:
            servers[url] = servers[peer]
    return ClientKeys(keys.public, keys.secret, servers)


def checked_seeds(
    keys: ClientKeys, seeds: Sequence[str], seed_ids: Mapping[str, str], directory: str
) -> ClientKeys:
    """``keys`` keyed by the named seeds' urls too; a seed without a server key is a
    ``UsageError`` saying what to pass."""
    keys = keyed_by_url(keys, seed_ids)
    for url in seeds:
        try:
            keys.server_key(url, seed_ids.get(url))
        except CurveKeyError:
            raise UsageError(no_server_key(url, seed_ids.get(url), keys.servers, directory)) from None
    return keys


def no_server_key(url: str, peer_id: str | None, servers: Mapping[str, bytes], directory: str) -> str:
    """What to pass when a seed has no server key."""
    ids = sorted(k for k in servers if "://" not in k)
    if peer_id is not None:
        return (
            f"no CurveZMQ server key for peer {peer_id} ({url}): copy its public key "
            f"{peer_id}.key into {directory}"
        )
    known = f"keys of peers {', '.join(ids)}" if ids else "no peer keys (ID.key files)"
    return (
        f"no CurveZMQ server key for {url}: {directory} holds {known}; name the peer "
        "(ID=host:port or tcp://host:port/ID) or copy its ID.key into the directory"
    )


def curve_option(keys: ClientKeys | None) -> dict[str, Any]:
    """The clients' ``curve=`` keyword, only when there are keys (plain TCP otherwise)."""
    return {} if keys is None else {"curve": keys}
