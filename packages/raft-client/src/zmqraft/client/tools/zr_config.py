"""``zr-config``: show or change a cluster's membership (server-and-tools.md §c.2).

::

    zr-config [-c FILE] [--ns NS] [-k SECRET] [-t MSECS] [--ident HEX] [--curve-keys DIR]
              [-n] [-a PEERS | -d PEERS | -r PEERS] [[ID=]host[:port] ...]

Peers are ``tcp://host:port/id`` (the id URL-encoded; without a path the url is the id),
comma separated.  ``-d`` also takes bare ids.  A CurveZMQ cluster needs ``--curve-keys DIR``
(see ``_common.curve_keys``); a seed named ``ID=host:port`` is then checked against peer
``ID``'s public key.  Without ``-a``/``-d``/``-r`` (or with
``-n``) nothing is sent.  After the joint configuration C(old,new) is committed the tool
reads the log after it until the final configuration C(new) shows up, prints it and exits.

Exit status: 0 done, 1 error (or ``-r`` together with ``-a``/``-d``, or no seed peers),
2 ``-a`` of an id that is already a member, 3 ``-d`` of an id that is not a member or an
invalid ``--ident``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence

from zmqraft.client import Client, ConfigInfo, Entry
from zmqraft.core.cluster import parse_peers
from zmqraft.core.config_files import read_config
from zmqraft.core.protocol import mpack
from zmqraft.core.protocol.reqid import new_request_id, to_hex

from ._common import (
    UsageError,
    add_curve,
    add_debug,
    add_write_out,
    config_urls,
    connecting,
    curve_keys,
    curve_option,
    ms,
    parse_peer_spec,
    peer_str,
    resolve_seeds,
    run_tool,
)

#: how long to wait for C(new) after the joint configuration was committed
FINAL_CONFIG_TIMEOUT = 30.0
#: the initial RequestConfig's deadline when -t is not given
DEFAULT_TIMEOUT = 10.0

Peers = list[tuple[str, str]]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zr-config",
        description="Show or change the membership of a zmq-raft cluster.",
        epilog="Peers: tcp://host:port/id (id URL-encoded; the url itself when there is no /id), "
        "comma separated. Seeds: [ID=]host[:port] (default port 8047) or the peers of the config file.",
    )
    p.add_argument("hosts", nargs="*", metavar="[ID=]host[:port]", help="seed peers")
    p.add_argument("-n", "--dry-run", action="store_true", help="only show what would change")
    p.add_argument("-c", "--config", metavar="FILE", help="config file (seed peers and secret)")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-k", "--cluster", metavar="SECRET", default=None, help="cluster secret")
    p.add_argument("-a", "--add", metavar="PEERS", help="peers to add")
    p.add_argument("-d", "--delete", metavar="PEERS", help="peers (or ids) to remove")
    p.add_argument("-r", "--replace", metavar="PEERS", help="the whole new peer list")
    p.add_argument("-t", "--timeout", metavar="MSECS", type=ms, help="initial RequestConfig timeout (ms)")
    p.add_argument("--ident", metavar="HEX", help="request id of the change (24 hex digits)")
    add_curve(p)
    add_write_out(p)
    add_debug(p)
    return p


def parse_ident(text: str | None) -> bytes:
    if text is None:
        return new_request_id(time.time())
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(text) != 24 or len(raw) != 12:
        raise UsageError("invalid ident format", 3)
    return raw


def show(peers: Peers, leader_id: str | None, marks: dict[str, str] | None = None) -> None:
    for peer_id, url in peers:
        mark = " (leader)" if peer_id == leader_id else ""
        if marks and peer_id in marks:
            mark += marks[peer_id]
        print(f"  {peer_str(peer_id, url)}{mark}")


def new_config(args: argparse.Namespace, current: Peers) -> Peers:
    """The requested peer list (exits 2/3 through ``UsageError``)."""
    if args.replace is not None:
        return [parse_peer_spec(s) for s in args.replace.split(",") if s.strip()]
    peers = dict(current)
    for spec in (args.delete or "").split(","):
        spec = spec.strip()
        if not spec:
            continue
        peer_id = parse_peer_spec(spec)[0] if spec.startswith("tcp://") else spec
        if peer_id not in peers:
            raise UsageError(f"peer {peer_id!r} is not a member of the cluster", 3)
        del peers[peer_id]
    for spec in (args.add or "").split(","):
        if not spec.strip():
            continue
        peer_id, url = parse_peer_spec(spec)
        if peer_id in peers:
            raise UsageError(f"peer {peer_id!r} is already a member of the cluster", 2)
        peers[peer_id] = url
    return list(peers.items())


def wait_final_config(client: Client, joint_index: int, deadline: float) -> tuple[int, Peers]:
    """Read the log after the joint entry until the final configuration C(new) appears
    (stops at the first one: the original's poll never ends, see the spec)."""
    prev = joint_index
    while True:
        for item in client.request_entries(prev, timeout=max(0.1, deadline - time.monotonic())):
            if not isinstance(item, Entry):
                continue
            prev = item.index
            if item.is_config:
                value = mpack.unpack(item.data)
                if isinstance(value, list):
                    return item.index, [(str(p[0]), str(p[1])) for p in value]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the final configuration after index {joint_index} did not show up in time")
        time.sleep(0.05)  # C(new) is appended but not committed yet: ask again shortly


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.replace is not None and (args.add is not None or args.delete is not None):
        raise UsageError("-r/--replace can not be combined with -a/--add or -d/--delete", 1)
    ident = parse_ident(args.ident)
    config = read_config(args.config, args.ns) if args.config else {}
    secret = args.cluster if args.cluster is not None else config.get("secret", "")
    seeds, seed_ids = resolve_seeds(args.hosts) if args.hosts else (config_urls(config), {})
    if not seeds:
        parser.print_help(sys.stderr)
        return 1
    keys = curve_keys(args, config, args.config, seeds, seed_ids)
    dry_run = args.dry_run or (args.add is None and args.delete is None and args.replace is None)
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT
    connecting(seeds)
    with Client(seeds, secret=secret, rpc_timeout=None, **curve_option(keys)) as client:
        info: ConfigInfo = client.request_config(timeout=timeout)
        current: Peers = list(info.peers)
        if (
            args.write_out == "json"
            and dry_run
            and args.add is None
            and args.delete is None
            and args.replace is None
        ):
            peers_json = [{"id": p, "url": u, "leader": p == info.leader_id} for p, u in current]
            print(json.dumps({"peers": peers_json, "leader": info.leader_id}))
            return 0
        peers = new_config(args, current)
        if peers != current:
            parse_peers([list(p) for p in peers], current)  # the server's rules, before asking it
        if set(peers) == set(current):
            print("Current cluster configuration (no changes):")
            show(current, info.leader_id)
            return 0
        print(f"Requesting configuration change with {to_hex(ident)}:")
        old_ids = dict(current)
        show(peers, info.leader_id, {p: " (added)" for p, _ in peers if p not in old_ids})
        new_ids = dict(peers)
        for peer_id, url in current:
            if peer_id not in new_ids:
                print(f"  {peer_str(peer_id, url)} (removed)")
        if dry_run:
            print("Dry run: nothing was sent.")
            return 0
        joint = client.config_update(peers, request_id=ident)
        print(f"Cluster joined configuration changed at index {joint}.")
        final_index, final = wait_final_config(client, joint, time.monotonic() + FINAL_CONFIG_TIMEOUT)
        print(f"Cluster final configuration changed at index {final_index}:")
        leader = client.leader_id
        with contextlib.suppress(Exception):  # the leader may have just left: the last one seen
            leader = client.request_config(timeout=timeout).leader_id
        show(final, leader)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_tool("zr-config", lambda: run(args, parser), args.debug)


if __name__ == "__main__":
    sys.exit(main())
