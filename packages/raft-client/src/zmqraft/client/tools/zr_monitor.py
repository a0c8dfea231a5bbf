"""``zr-monitor``: a live terminal view of every peer of a cluster (server-and-tools.md §c.5, §e).

::

    zr-monitor [-c FILE] [--ns NS] [-p ID ...] [-u] [-k SECRET] [-i SECS] [-t SECS]
               [--curve-keys DIR [--curve-name NAME]] [--once [-w table|json]] [-v]
               [[ID=]url|host[:port] ...]

The peers come from a RequestConfig to the given urls (or to the peers of the config file
``-c``, whose secret is used too) (or from ``-p``: the urls are the
peers with these ids); each peer is asked for its log info every ``-i`` to ``2 * -i``
seconds and the table is redrawn in place: peer id, role, term, commit / applied / last
index, lag (entries committed by the leader that this peer has not applied yet), snapshot
size and url.  Errors are red, the leader has a green background, peers not heard from yet
are grey.  The configuration is asked again every few polls, so peers that join show up.
``--once`` polls every peer once, prints the table (``-w json``: one JSON object) and exits:
status 0 when every peer answered, 1 otherwise.  Ctrl-C ends the live view.  A CurveZMQ
cluster needs ``--curve-keys DIR`` (the tools' shared ``_common.curve_keys``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from zmqraft.client import AsyncClient, LogInfo
from zmqraft.core.config_files import read_config
from zmqraft.core.curve_keys import ClientKeys

from ._common import (
    UsageError,
    add_curve,
    add_debug,
    add_write_out,
    config_urls,
    connecting,
    curve_keys,
    curve_option,
    resolve_seeds,
    run_tool,
)

#: polls of the leader between two RequestConfig refreshes
CONFIG_REFRESH_POLLS = 5


def positive(minimum: float) -> type[float]:
    def parse(text: str) -> float:
        value = float(text)
        if value < minimum:
            raise ValueError(f"must be >= {minimum}")
        return value

    parse.__name__ = f"number >= {minimum}"
    return parse  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zr-monitor", description="Live view of the peers of a zmq-raft cluster")
    p.add_argument("urls", nargs="*", metavar="url", help="tcp://host:port or [ID=]host[:port] of any peers")
    p.add_argument("-c", "--config", metavar="FILE", help="config file (its peers and secret)")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-p", "--peers", nargs="+", metavar="ID", help="the urls are the peers with these ids")
    p.add_argument("-u", "--urls-only", action="store_true", help="only query the given urls")
    p.add_argument("-k", "--cluster", metavar="SECRET", default=None, help="cluster secret")
    p.add_argument("-i", "--interval", type=positive(0.1), default=2.5, metavar="SECS", help="poll period")
    p.add_argument("-t", "--timeout", type=positive(1.0), default=4.0, metavar="SECS", help="request timeout")
    p.add_argument("--once", action="store_true", help="print one table and exit")
    add_curve(p)
    add_write_out(p)
    add_debug(p)
    return p


@dataclass
class PeerView:
    id: str
    url: str
    info: LogInfo | None = None
    error: str | None = None
    updated: float = 0.0


@dataclass
class Monitor:
    """The polling state behind the view (ZmqRaftMonitor, spec §e)."""

    client: AsyncClient
    interval: float
    timeout: float
    peers: dict[str, PeerView] = field(default_factory=dict)
    leader_id: str | None = None
    only: set[str] | None = None
    fixed: bool = False  # peers given with -p: never ask for the configuration
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def set_peers(self, peers: Sequence[tuple[str, str]], leader_id: str | None) -> None:
        for peer_id, url in peers:
            view = self.peers.get(peer_id)
            if view is None or view.url != url:
                self.peers[peer_id] = PeerView(peer_id, url)
        if leader_id is not None:
            self.leader_id = leader_id
        self.changed.set()

    def polled(self) -> list[PeerView]:
        return [v for v in self.peers.values() if self.only is None or v.url in self.only]

    async def poll(self, view: PeerView) -> None:
        try:
            info = await self.client.request_log_info(url=view.url, timeout=self.timeout)
        except Exception as err:
            view.info, view.error = None, str(err) or type(err).__name__
        else:
            view.info, view.error = info, None
            if info.is_leader:
                self.leader_id = view.id
            elif info.leader_id is not None and self.leader_id is None:
                self.leader_id = info.leader_id
        view.updated = time.time()
        self.changed.set()

    async def refresh_config(self) -> None:
        if self.fixed:
            return
        try:
            config = await self.client.request_config(timeout=self.timeout)
        except Exception:
            return  # the peers' rows show what is wrong
        self.set_peers(config.peers, config.leader_id)

    async def loop(self, view: PeerView, delay: float) -> None:
        await asyncio.sleep(delay)
        polls = 0
        while True:
            await self.poll(view)
            polls += 1
            if view.info is not None and view.info.is_leader and polls % CONFIG_REFRESH_POLLS == 0:
                await self.refresh_config()
                self.start()
            await asyncio.sleep(self.interval * (1 + random.random()))

    def start(self) -> None:
        """A poll loop for every (new) peer; the first ones staggered as the spec says."""
        for n, view in enumerate(self.polled()):
            if view.id not in self._tasks or self.peers.get(view.id) is not view:
                old = self._tasks.pop(view.id, None)
                if old is not None:
                    old.cancel()
                delay = self.interval / 10 + n * self.interval / 5
                self._tasks[view.id] = asyncio.ensure_future(self.loop(view, delay))

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()


# ---- the view --------------------------------------------------------------------------------


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(monitor: Monitor, title: str | None = None) -> Group:
    leader = monitor.peers.get(monitor.leader_id or "")
    leader_info = leader.info if leader is not None and leader.info is not None else None
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (
        ("peer ID", "right"),
        ("role", "left"),
        ("term", "right"),
        ("commit", "right"),
        ("applied", "right"),
        ("last", "right"),
        ("lag", "right"),
        ("snap", "right"),
        ("url", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for view in monitor.polled():
        info = view.info
        if view.error is not None:
            style, role = "bold red", "error"
        elif info is None:
            style, role = "grey50", "?"
        elif info.is_leader:
            style, role = "black on green", "leader"
        else:
            style, role = "", "follower"
        lag = None
        if info is not None and leader_info is not None:
            lag = max(0, leader_info.commit_index - info.last_applied)
        numbers = (
            (info.term, info.commit_index, info.last_applied, info.last_index)
            if info is not None
            else (None, None, None, None)
        )
        size = None if info is None else info.snapshot_size
        cells = [view.id, role, *map(_n, numbers), _n(lag), _n(size), view.url]
        table.add_row(*cells, style=style)
    errors = [Text(f"{v.id}: {v.error}", style="red") for v in monitor.polled() if v.error is not None]
    head = (
        Text(title or "", style="bold")
        if title
        else Text(
            f"zmq-raft cluster: {len(monitor.polled())} peers, leader {monitor.leader_id or '?'}"
            f" ({time.strftime('%H:%M:%S')}, Ctrl-C to quit)",
            style="bold",
        )
    )
    return Group(head, table, *errors)


def as_json(monitor: Monitor) -> dict[str, object]:
    """``--once -w json``: the leader and every peer's row."""
    rows: list[dict[str, object]] = []
    for view in monitor.polled():
        info = view.info
        row: dict[str, object] = {"id": view.id, "url": view.url, "error": view.error}
        if info is not None:
            row.update(
                role="leader" if info.is_leader else "follower",
                term=info.term,
                commit=info.commit_index,
                applied=info.last_applied,
                last=info.last_index,
                snapshot=info.snapshot_size,
            )
        rows.append(row)
    return {"leader": monitor.leader_id, "peers": rows}


# ---- running ---------------------------------------------------------------------------------


def seeds_and_secret(args: argparse.Namespace) -> tuple[list[str], str, ClientKeys | None]:
    """The urls (given, else the config file's peers), the secret (-k, else the file's) and
    the CurveZMQ keys (``--curve-keys``; ``-p`` names the urls' peers)."""
    config = read_config(args.config, args.ns) if args.config else {}
    urls, ids = resolve_seeds(args.urls) if args.urls else (config_urls(config), {})
    if not urls:
        raise UsageError("give the peers' urls (or -c CONFIG)", 2)
    if args.peers is not None and len(args.peers) != len(urls):
        raise UsageError("-p: give one id per url", 1)
    if args.peers:
        ids.update(zip(urls, args.peers, strict=True))
    secret = args.cluster if args.cluster is not None else str(config.get("secret") or "")
    return urls, secret, curve_keys(args, config, args.config, urls, ids)


async def connect(args: argparse.Namespace) -> Monitor:
    urls, secret, keys = seeds_and_secret(args)
    connecting(urls)
    peers = list(zip(args.peers, urls, strict=True)) if args.peers else None
    client = AsyncClient(
        urls, peers=peers, secret=secret, timeout=args.timeout, rpc_timeout=None, **curve_option(keys)
    )
    monitor = Monitor(client, args.interval, args.timeout, only=set(urls) if args.urls_only else None)
    if peers is not None:
        monitor.fixed = True
        monitor.set_peers(peers, None)
    else:
        try:
            config = await client.request_config(timeout=4 * args.timeout)
        except BaseException:
            await client.close()
            raise
        monitor.set_peers(config.peers, config.leader_id)
    return monitor


async def once(args: argparse.Namespace, console: Console) -> int:
    monitor = await connect(args)
    try:
        await asyncio.gather(*(monitor.poll(v) for v in monitor.polled()))
    finally:
        await monitor.client.close()
    if args.write_out == "json":
        print(json.dumps(as_json(monitor)))
    else:
        title = f"zmq-raft cluster: {len(monitor.polled())} peers, leader {monitor.leader_id or '?'}"
        console.print(render(monitor, title))
    return 0 if all(v.error is None for v in monitor.polled()) else 1


async def live(args: argparse.Namespace, console: Console) -> int:
    monitor = await connect(args)
    try:
        monitor.start()
        with Live(render(monitor), console=console, auto_refresh=False, transient=False) as view:
            while True:
                with contextlib.suppress(TimeoutError):  # redraw anyway: the clock moves
                    await asyncio.wait_for(monitor.changed.wait(), timeout=1.0)
                monitor.changed.clear()
                view.update(render(monitor), refresh=True)
    finally:
        await monitor.stop()
        await monitor.client.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    terminal = sys.stdout.isatty()
    console = Console() if terminal else Console(width=200, no_color=True, highlight=False)
    return run_tool(
        "zr-monitor",
        lambda: asyncio.run(once(args, console) if args.once else live(args, console)),
        args.debug,
        interrupted=0,  # Ctrl-C is how the live view ends
    )


if __name__ == "__main__":
    sys.exit(main())
