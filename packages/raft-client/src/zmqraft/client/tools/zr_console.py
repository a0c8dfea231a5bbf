"""``zr-console``: an interactive console for a zmq-raft cluster (server-and-tools.md §c.6).

::

    zr-console [-c FILE] [--ns NS] [-k SECRET] [--history FILE] [host[:port] ...]

Seed hosts given on the command line are connected at start.  Commands (``.help`` lists
them; the dot may be left out when the first word is a command's full name): ``.connect``,
``.cpeer`` (a single-peer client), ``.subscribe``, ``.subp``/``.pulse`` (one peer's
broadcasts and entries), ``.close``, ``.peers``, ``.info``, ``.secret``, ``.start``/``.stop``
(flooding the cluster with updates, through the subscriber when there is one), ``.data``,
``.iter``, ``.read``, ``.verify``, ``.decode``, ``.decompress``, ``.config`` (membership
changes), ``.editor``/``.load``/``.save``, ``.cls``, ``.exit``.  Any other line is Python,
run with the original REPL's context names (``client``, ``subs``, ``mp``, ``res``, ...).
History (``./.zr_console_history``, the newest 1000 distinct lines, trimmed on exit) and
Tab completion on a terminal; with piped stdin the lines are run one after the other.

Flood updates are msgpack maps ``{iteration, data, time}`` (``time`` a Date, ext type
0x0D), like the original's, so ``.verify`` can check a log written by either console.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import importlib
import os
import shlex
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from zmqraft.client import (
    AsyncClient,
    AsyncPeerClient,
    Client,
    Entry,
    PeerClient,
    PeerSubscriber,
    Pulse,
    RequestTimeoutError,
    SnapshotChunk,
    Subscriber,
)
from zmqraft.core.cli_errors import report
from zmqraft.core.cluster import parse_peers
from zmqraft.core.config_files import read_config
from zmqraft.core.curve_keys import ClientKeys
from zmqraft.core.protocol import mpack
from zmqraft.core.protocol.reqid import new_request_id, to_hex

from ._common import (
    UsageError,
    add_curve,
    add_debug,
    checked_seeds,
    curve_keys,
    curve_option,
    parse_peer_spec,
    peer_str,
    require_extra,
    resolve_hosts,
    resolve_seeds,
)
from ._console_data import flood_item, unpack
from ._console_engine import Engine, Job
from ._console_history import HISTORY_FILE, load_history, trim_history_file
from .zr_config import wait_final_config

TIMEOUT = 5.0


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("zmq-raft-client")
    except Exception:
        return "?"


# ---- the console ----------------------------------------------------------------------------


@dataclass
class Command:
    run: Callable[[list[str]], None]
    usage: str
    help: str


class Console:
    """Every command; output goes through ``self.print`` (thread-safe with prompt_toolkit's
    ``patch_stdout``).  Blocking requests (``.peers``, ``.read``, ...) run in the caller's
    thread with ``self.client``; subscribers and flooding run on the ``Engine``."""

    def __init__(
        self, config: dict[str, Any], secret: str, curve: ClientKeys | None = None, curve_dir: str = ""
    ) -> None:
        self.config = config
        self.curve = curve  # CurveZMQ keys (--curve-keys), None for plain TCP
        self.curve_dir = curve_dir
        console = config.get("console") or {}
        self.client_options = dict(console.get("client") or {})
        self.subscriber_options = dict(console.get("subscriber") or {})
        self.random_ids = console.get("updateId") == "random"
        self.secret = secret
        self.seeds: list[str] = []
        self.peer_url: str | None = None  # .cpeer: a single-peer client
        self.client: Client | None = None
        self.engine = Engine()
        self.subscriber: Subscriber | None = None
        self._sub_task: Job | None = None
        self.peer_sub_url: str | None = None  # .subp: one peer's broadcasts
        self._peer_task: Job | None = None
        self.show_pulses = False
        self.decode = "mp"
        self.decompress = True
        self.flood_data = base64.b64encode(os.urandom(6)).decode()
        self.iteration = 0
        self.flooding = False
        self._flood_task: Job | None = None
        self._flood_stop = threading.Event()
        self._flood_stats = {"sent": 0, "last_index": 0, "timeouts": 0}
        self._flood_via = ""
        self.lock = threading.Lock()
        self.lines: list[str] = []  # what this session ran, for .save
        self.editor: list[str] | None = None  # lines collected by .editor
        self.namespace: dict[str, Any] = {}  # Python lines run here (the original's REPL context)
        self.commands: dict[str, Command] = {
            "connect": Command(
                self.cmd_connect, "[ID=]host[:port] ...", "connect a cluster client to the peers"
            ),
            "cpeer": Command(
                self.cmd_cpeer,
                "[[ID=]host[:port]]",
                "connect a single-peer client (no fail-over); no argument: show the connection",
            ),
            "subscribe": Command(
                self.cmd_subscribe,
                "[ID=]host[:port] ... [from=N]",
                "subscribe to the cluster's committed entries (printed as they come)",
            ),
            "subp": Command(
                self.cmd_subp,
                "[[ID=]host[:port] | lastIndex]",
                "with a host: watch that peer's broadcasts; with an index (or none): read its "
                "entries from there for as long as it leads",
            ),
            "pulse": Command(self.cmd_pulse, "[on|off]", "print the peer subscriber's pulses (toggle)"),
            "close": Command(self.cmd_close, "", "close the clients and subscribers, stop flooding"),
            "peers": Command(self.cmd_peers, "", "the cluster's peers (RequestConfig)"),
            "info": Command(self.cmd_info, "[id]", "log info of the leader or of peer id (RequestLogInfo)"),
            "secret": Command(self.cmd_secret, "[secret]", "set or show the secret for new connections"),
            "start": Command(
                self.cmd_start,
                "[data | +N]",
                "start flooding updates (+N: N in parallel; through the subscriber if any)",
            ),
            "stop": Command(self.cmd_stop, "", "stop flooding"),
            "data": Command(self.cmd_data, "[data]", "set or show the flood data"),
            "iter": Command(self.cmd_iter, "[n]", "stop flooding and set / show the iteration counter"),
            "read": Command(self.cmd_read, "[prevIndex=0] [count]", "read the log (RequestEntries)"),
            "verify": Command(
                self.cmd_verify,
                "[startIndex=1] [startIteration=1] [count]",
                "check the flood items in the log: consecutive iterations, no other update in between",
            ),
            "decode": Command(self.cmd_decode, "mp|msgpack|hex|other", "how state data is printed"),
            "decompress": Command(self.cmd_decompress, "yes|no", "whether .verify gunzips snapshot data"),
            "config": Command(
                self.cmd_config,
                "[add PEERS | delete PEERS | replace PEERS]",
                "show or change the membership (peers: tcp://host:port/id,...)",
            ),
            "editor": Command(self.cmd_editor, "", "type several lines, run them at .end (or Ctrl-D)"),
            "load": Command(self.cmd_load, "FILE", "run the lines of FILE"),
            "save": Command(self.cmd_save, "FILE", "save the lines run in this session to FILE"),
            "cls": Command(self.cmd_cls, "", "clear the screen"),
            "help": Command(self.cmd_help, "", "this list"),
            "exit": Command(lambda a: None, "", "leave the console (also Ctrl-D)"),
        }

    # ---- plumbing

    def print(self, *args: Any) -> None:
        with self.lock:
            print(*args, flush=True)

    @property
    def prompt(self) -> str:
        return "... " if self.editor is not None else "zr> "

    def execute(self, line: str) -> bool:
        """Run one line: a ``.command`` (the dot may be left out when the first word is a
        command's full name) or Python; False when the console should end.  Ctrl-C while a
        line runs cancels that line (a blocked request's client is dropped: the next command
        makes a new one), not the console."""
        try:
            return self._execute(line)
        except KeyboardInterrupt:
            if self.client is not None:
                with contextlib.suppress(Exception):
                    self.client.close()
                self.client = None
            self.print("// cancelled (Ctrl-C); .exit or Ctrl-D leaves")
            return True

    def _execute(self, line: str) -> bool:
        if self.editor is not None:
            if line.strip() in (".end", ".exit"):
                return self.finish_editor()
            self.editor.append(line.rstrip("\n"))
            return True
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        first = line.split(None, 1)[0]
        if not first.startswith(".") and first.lower() not in self.commands and first.lower() != "quit":
            self.lines.append(line)
            self.run_python(line)
            return True
        try:
            words = shlex.split(line)
        except ValueError as err:
            self.print(f"error: {err}")
            return True
        name = words[0].lstrip(".").lower()
        if name in ("exit", "quit"):
            return False
        matches = [c for c in self.commands if c == name] or [c for c in self.commands if c.startswith(name)]
        if len(matches) != 1:
            self.print(f"unknown command: {words[0]} (.help lists the commands)")
            return True
        if matches[0] not in ("save", "load", "editor"):
            self.lines.append(line)
        try:
            self.commands[matches[0]].run(words[1:])
        except (UsageError, ValueError) as err:
            self.print(f"error: {err}")
        except Exception as err:
            self.print(f"{type(err).__name__}: {err}")
        return True

    def context(self) -> dict[str, Any]:
        """The names Python lines see (the original's REPL context, in Python terms)."""
        ns = self.namespace
        ns.update(
            console=self,
            client=self.client,
            subs=self.subscriber,
            secret=self.secret,
            config=self.config,
            mp=msgpack,
            raft=importlib.import_module("zmqraft.client"),
            gen_id=lambda: to_hex(new_request_id(time.time())),
            lookup=resolve_hosts,
            unpack=unpack,
        )
        ns.setdefault("res", None)
        return ns

    def run_python(self, line: str) -> None:
        """Evaluate an expression (printed, kept in ``res``) or run a statement."""
        ns = self.context()
        try:
            try:
                code = compile(line, "<console>", "eval")
            except SyntaxError:
                exec(compile(line, "<console>", "exec"), ns)
                return
            value = eval(code, ns)
        except Exception as err:
            self.print(f"{type(err).__name__}: {err}")
            return
        if value is not None:
            ns["res"] = value
            self.print(repr(value))

    def need_client(self) -> Client:
        if self.client is None:
            if not self.seeds:
                raise UsageError("not connected: use .connect host[:port]")
            self.client = self._new_client()
        return self.client

    def _client_kwargs(self) -> dict[str, Any]:
        options = self.client_options
        heartbeat = options.get("heartbeat", 5000)
        kwargs: dict[str, Any] = {"secret": self.secret, "heartbeat": heartbeat / 1000 if heartbeat else None}
        kwargs.update(curve_option(self.curve))
        if options.get("timeout"):
            kwargs["timeout"] = options["timeout"] / 1000
        return kwargs

    def _new_client(self) -> Client:
        if self.peer_url is not None:
            return PeerClient(self.peer_url, **self._peer_kwargs())
        return Client(self.seeds, **self._client_kwargs())

    def _peer_kwargs(self) -> dict[str, Any]:
        kwargs = self._client_kwargs()
        kwargs.pop("heartbeat")
        return kwargs

    def close(self) -> None:
        self.cmd_stop([], quiet=True)
        self._stop_subscriber()
        self._stop_peer_subscriber()
        if self.client is not None:
            self.client.close()
            self.client = None

    def shutdown(self) -> None:
        self.close()
        self.engine.close()

    # ---- connections

    def resolve(self, hosts: list[str]) -> list[str]:
        """The urls of ``hosts`` (``[ID=]host[:port]``, urls); with CurveZMQ keys each must
        have a server key, and the named ones' keys are kept under their urls."""
        urls, ids = resolve_seeds(hosts)
        if self.curve is not None:
            self.curve = checked_seeds(self.curve, urls, ids, self.curve_dir)
        return urls

    def cmd_connect(self, args: list[str]) -> None:
        if not args:
            raise UsageError("usage: .connect [ID=]host[:port] [host ...]")
        seeds = self.resolve(args)
        self.close()
        self.seeds = seeds
        self.peer_url = None
        self.client = self._new_client()
        self.print(f"connected to: {' '.join(seeds)}")

    def cmd_cpeer(self, args: list[str]) -> None:
        if not args:
            if self.client is None:
                self.print("not connected")
            elif self.peer_url is not None:
                self.print(f"connected to peer: {self.peer_url}")
            else:
                self.print(f"connected to: {' '.join(self.seeds)}")
            return
        url = self.resolve(args[:1])[0]
        self.close()
        self.seeds = [url]
        self.peer_url = url
        self.client = self._new_client()
        self.print(f"connected to peer: {url} (a single-peer client: no fail-over)")

    def cmd_subscribe(self, args: list[str]) -> None:
        hosts = [a for a in args if not a.startswith("from=")]
        start = next((int(a[5:]) for a in args if a.startswith("from=")), 0)
        if hosts:
            seeds = self.resolve(hosts)
            self.close()
            self.seeds = seeds
            self.peer_url = None
        elif not self.seeds:
            raise UsageError("usage: .subscribe [ID=]host[:port] [host ...] [from=N]")
        self._stop_subscriber()
        options = {**self._client_kwargs(), **self._subscriber_kwargs()}
        options.pop("heartbeat")
        sub = Subscriber(list(self.seeds), from_index=start, **options)
        self.subscriber = sub
        self._sub_task = self.engine.run(self._print_entries(sub, "entry"), sub.close)
        self.print(f"subscribed to: {' '.join(self.seeds)} (after index {start})")

    def _subscriber_kwargs(self) -> dict[str, Any]:
        # a console subscriber runs until stopped: it reports silences as "(X) BSM timeout!"
        # lines (on_timeout) instead of ending with an error
        timeout = self.subscriber_options.get("broadcastTimeout")
        return {"rpc_timeout": None} | ({"broadcast_timeout": timeout / 1000} if timeout else {})

    async def _print_entries(self, sub: Subscriber, prefix: str) -> None:
        """The body of a subscriber task: print what it yields until cancelled (or, for a
        peer subscriber, until its peer no longer leads)."""
        try:
            async for item in sub:
                self.print(self.describe(item, prefix=prefix))
            if sub.ended:
                self.print(f"(X) {prefix} stream ended: the peer is no longer the leader")
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.print(f"subscriber error: {type(err).__name__}: {err}")

    def _stop_subscriber(self) -> None:
        self.engine.cancel(self._sub_task)
        self._sub_task = None
        self.subscriber = None

    def cmd_subp(self, args: list[str]) -> None:
        if args and not args[0].isdigit():
            url = self.resolve(args[:1])[0]
            start: int | None = None
        elif self.peer_sub_url is None:
            raise UsageError("no peer subscriber: use .subp host[:port] first")
        else:
            url = self.peer_sub_url
            start = int(args[0]) if args else int(self.subscriber_options.get("lastIndex") or 0)
        self._stop_peer_subscriber()
        self.peer_sub_url = url
        sub = PeerSubscriber(
            url,
            from_index=start,
            on_pulse=self._pulse,
            on_timeout=lambda _t: self.print("(X) BSM timeout!"),
            on_publisher=lambda pub: self.print(f"PUB {pub}"),
            **{**self._peer_kwargs(), **self._subscriber_kwargs()},
        )
        self._peer_task = self.engine.run(self._print_entries(sub, "peer entry"), sub.close)
        if start is None:
            self.print(f"peer subscriber: {url}" + ("" if self.show_pulses else " (.pulse shows its pulses)"))
        else:
            self.print(f"peer subscriber: {url}: entries after index {start} while it leads")

    def _pulse(self, pulse: Pulse) -> None:
        if self.show_pulses:
            self.print(f"(( )) {pulse.last_index}, {pulse.term}, {len(pulse.entries)}")

    def cmd_pulse(self, args: list[str]) -> None:
        if args:
            self.show_pulses = args[0].lower() not in ("off", "no", "0", "false")
        else:
            self.show_pulses = not self.show_pulses
        self.print(f"pulses: {'on' if self.show_pulses else 'off'}")

    def _stop_peer_subscriber(self) -> None:
        self.engine.cancel(self._peer_task)
        self._peer_task = None

    def cmd_close(self, args: list[str]) -> None:
        self.close()
        self.peer_sub_url = None
        self.print("closed")

    def cmd_secret(self, args: list[str]) -> None:
        if args:
            self.secret = args[0]
        self.print(f"secret: {self.secret!r}")

    # ---- cluster state

    def cmd_peers(self, args: list[str]) -> None:
        info = self.need_client().request_config(timeout=TIMEOUT)
        self.print("Cluster peers:")
        for peer_id, url in info.peers:
            self.print(f"  {peer_id}: {url}" + (" (leader)" if peer_id == info.leader_id else ""))
        if not info.is_leader:
            self.print(f"(the answer came from {info.url}, not from the leader)")

    def cmd_info(self, args: list[str]) -> None:
        client = self.need_client()
        if args:
            urls = dict(client.peers) or client.request_config(timeout=TIMEOUT).urls
            if args[0] not in urls:
                raise UsageError(f"unknown peer id: {args[0]}")
            info = client.request_log_info(url=urls[args[0]], timeout=TIMEOUT)
        else:
            info = client.request_log_info(timeout=TIMEOUT)
        for label, value in (
            ("url", info.url),
            ("leader", "yes" if info.is_leader else f"no ({info.leader_id})"),
            ("current term", info.term),
            ("first log index", info.first_index),
            ("last applied", info.last_applied),
            ("commit index", info.commit_index),
            ("last log index", info.last_index),
            ("snapshot size", info.snapshot_size),
            ("prune index", info.prune_index),
        ):
            self.print(f"  {label + ':':17} {value}")

    # ---- flooding

    def cmd_data(self, args: list[str]) -> None:
        if args:
            self.flood_data = " ".join(args)
        self.print(f"flood data: {self.flood_data}")

    def cmd_iter(self, args: list[str]) -> None:
        self.cmd_stop([], quiet=True)
        if args:
            self.iteration = int(args[0])
        self.print(f"iteration: {self.iteration}")

    def cmd_start(self, args: list[str]) -> None:
        if self.flooding:
            raise UsageError("already flooding (.stop first)")
        parallel = 1
        if args and args[0].startswith("+"):
            parallel = int(args[0][1:])
            if not 1 <= parallel <= 100:
                raise UsageError("+N: 1..100 requests in parallel")
        elif args:
            self.flood_data = " ".join(args)
        if not self.seeds:
            raise UsageError("not connected: use .connect host[:port]")
        self._flood_stop.clear()
        self._flood_stats = {"sent": 0, "last_index": 0, "timeouts": 0}
        self.flooding = True
        sub = self.subscriber
        via = "the subscriber" if sub is not None else "the peer" if self.peer_url else "the client"
        self._flood_via = via
        self.print(
            f"flooding started: data {self.flood_data!r}, iteration {self.iteration + 1}, "
            f"{parallel} at a time, through {self._flood_via}"
        )
        self._flood_task = self.engine.run(self._flood(parallel, sub))

    async def _flood(self, parallel: int, sub: Subscriber | None) -> None:
        async def worker(write: Callable[..., Awaitable[int]]) -> None:
            while True:  # every worker sends at least one update, even if .stop comes at once
                with self.lock:
                    self.iteration += 1
                    iteration = self.iteration
                data = flood_item(iteration, self.flood_data, time.time())
                rid = os.urandom(12) if self.random_ids else None
                try:
                    index = await write(data, request_id=rid, timeout=TIMEOUT)
                except RequestTimeoutError:
                    self._flood_stats["timeouts"] += 1
                    self.print(f"flood: iteration {iteration} timed out, skipped")
                    if self._flood_stop.is_set():
                        return
                    continue
                self._flood_stats["sent"] += 1
                self._flood_stats["last_index"] = max(self._flood_stats["last_index"], index)
                if self._flood_stop.is_set():
                    return

        try:
            if sub is not None:  # the original writes into the subscriber's stream
                await asyncio.gather(*(worker(sub.arequest_update) for _ in range(parallel)))
            else:
                client: AsyncClient
                if self.peer_url is not None:
                    client = AsyncPeerClient(self.peer_url, **self._peer_kwargs())
                else:
                    client = AsyncClient(self.seeds, **self._client_kwargs())
                async with client:
                    await asyncio.gather(*(worker(client.request_update) for _ in range(parallel)))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.print(f"flooding stopped by an error: {type(err).__name__}: {err}")
        finally:
            self.flooding = False

    def cmd_stop(self, args: list[str], quiet: bool = False) -> None:
        task = self._flood_task
        if task is None:
            if not quiet:
                self.print("not flooding")
            return
        self._flood_stop.set()
        if not task.finished.wait(TIMEOUT * 2):  # each worker ends after its update in flight
            self.engine.cancel(task)
        self._flood_task = None
        self.flooding = False
        s = self._flood_stats
        self.print(
            f"flooding stopped: {s['sent']} updates, last iteration {self.iteration}, "
            f"last index {s['last_index']}, {s['timeouts']} timeouts, through {self._flood_via}"
        )

    # ---- the log

    def cmd_decode(self, args: list[str]) -> None:
        if args:
            mode = args[0].lower()
            if mode not in ("mp", "msgpack", "hex", "other"):
                raise UsageError("decode: mp|msgpack|hex|other")
            self.decode = "mp" if mode == "msgpack" else mode
        self.print(f"decode: {self.decode}")

    def show_data(self, data: bytes) -> str:
        if self.decode == "mp":
            try:
                return repr(unpack(data))
            except Exception:
                return f"<{len(data)} bytes, not msgpack> {data[:32].hex()}"
        if self.decode == "hex":
            return data.hex()
        return f"<{len(data)} bytes>"

    def describe(self, item: Entry | SnapshotChunk, prefix: str = "") -> str:
        if isinstance(item, SnapshotChunk):
            return (
                f"snapshot logIndex: {item.index} logTerm: {item.term} chunk: "
                f"{item.offset + len(item.data)}/{item.total_size}"
            )
        where = f"logIndex: {item.index} logTerm: {item.term}"
        if item.is_config:
            return f"config {where} peers: {mpack.unpack(item.data)!r}"
        if item.is_checkpoint:
            return f"checkpoint {where}"
        return f"{prefix or 'state'} {where} data: {self.show_data(item.data)}"

    def cmd_read(self, args: list[str]) -> None:
        prev = int(args[0]) if args else 0
        count = int(args[1]) if len(args) > 1 else None
        n = 0
        status = "ok"
        try:
            for item in self.need_client().request_entries(prev, count, timeout=TIMEOUT * 2):
                self.print(self.describe(item))
                n += isinstance(item, Entry)
        except UsageError:
            raise
        except Exception as err:
            status = f"{type(err).__name__}: {err}"
        self.print(f"read server log done: {status} ({n} entries)")

    def cmd_verify(self, args: list[str]) -> None:
        start = int(args[0]) if args else 1
        iteration = int(args[1]) if len(args) > 1 else 1
        count = int(args[2]) if len(args) > 2 else None
        # consecutive = no other STATE entry in between (a new leader's CHECKPOINT may be)
        expected_iteration, last_index, verified = iteration, None, 0
        previous_state: int | None = None
        snapshot = bytearray()
        for item in self.need_client().request_entries(start - 1, count, timeout=TIMEOUT * 2):
            if isinstance(item, SnapshotChunk):
                # a compacted log: the snapshot's data (gzip'd if .decompress) is one item
                if item.is_first:
                    snapshot.clear()
                snapshot += item.data
                if not item.is_last:
                    continue
                data = self.snapshot_data(bytes(snapshot))
            elif item.is_state:
                data = item.data
            else:
                continue
            before, previous_state = previous_state, item.index
            try:
                value = unpack(data)
            except Exception:
                continue
            if not isinstance(value, dict) or value.get("data") != self.flood_data:
                continue
            if value.get("iteration") != expected_iteration:
                got = value.get("iteration")
                self.print(
                    f"verify FAILED at logIndex {item.index}: iteration {got}, expected {expected_iteration}"
                )
                return
            if last_index is not None and before != last_index:
                self.print(
                    f"verify FAILED at logIndex {item.index}: previous item at {last_index}, "
                    f"another update at {before}"
                )
                return
            self.print(f"verified logIndex: {item.index} iteration: {expected_iteration}")
            expected_iteration += 1
            last_index = item.index
            verified += 1
        self.print(f"verify ok: {verified} items")

    def cmd_decompress(self, args: list[str]) -> None:
        if args:
            if args[0].lower() not in ("yes", "no", "on", "off", "true", "false", "1", "0"):
                raise UsageError("decompress: yes|no")
            self.decompress = args[0].lower() in ("yes", "on", "true", "1")
        self.print(f"decompress: {'yes' if self.decompress else 'no'}")

    def snapshot_data(self, data: bytes) -> bytes:
        if not self.decompress:
            return data
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data  # not gzip after all: verify it as it is

    # ---- membership

    def cmd_config(self, args: list[str]) -> None:
        client = self.need_client()
        info = client.request_config(timeout=TIMEOUT)
        current = list(info.peers)
        if not args:
            self.print("Current cluster configuration:")
            for peer_id, url in current:
                self.print(f"  {peer_str(peer_id, url)}" + (" (leader)" if peer_id == info.leader_id else ""))
            return
        if len(args) != 2 or args[0] not in ("add", "delete", "replace"):
            raise UsageError("usage: .config [add PEERS | delete PEERS | replace PEERS]")
        peers = dict(current)
        specs = [s for s in args[1].split(",") if s.strip()]
        if args[0] == "replace":
            peers = dict(parse_peer_spec(s) for s in specs)
        elif args[0] == "add":
            for peer_id, url in map(parse_peer_spec, specs):
                if peer_id in peers:
                    raise UsageError(f"peer {peer_id!r} is already a member")
                peers[peer_id] = url
        else:
            for spec in specs:
                peer_id = parse_peer_spec(spec)[0] if spec.startswith("tcp://") else spec
                if peers.pop(peer_id, None) is None:
                    raise UsageError(f"peer {peer_id!r} is not a member")
        new = list(peers.items())
        parse_peers([list(p) for p in new], current)
        ident = new_request_id(time.time())
        self.print(f"Requesting configuration change with {to_hex(ident)}:")
        for peer_id, url in new:
            self.print(f"  {peer_str(peer_id, url)}" + ("" if peer_id in dict(current) else " (added)"))
        for peer_id, url in current:
            if peer_id not in peers:
                self.print(f"  {peer_str(peer_id, url)} (removed)")
        joint = client.config_update(new, request_id=ident, timeout=30)
        self.print(f"Cluster joined configuration changed at index {joint}.")
        index, final = wait_final_config(client, joint, time.monotonic() + 30)
        self.print(f"Cluster final configuration changed at index {index}:")
        for peer_id, url in final:
            self.print(f"  {peer_str(peer_id, url)}")

    # ---- scripts

    def cmd_editor(self, args: list[str]) -> None:
        self.editor = []
        self.print("// entering editor mode (.end or Ctrl-D runs the lines, Ctrl-C cancels)")

    def finish_editor(self) -> bool:
        lines, self.editor = self.editor or [], None
        return all(self.execute(line) for line in lines)  # stops at .exit

    def cmd_load(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("usage: .load FILE")
        try:
            lines = Path(args[0]).read_text().splitlines()
        except OSError as err:
            raise UsageError(f"can not read {args[0]}: {err.strerror}") from None
        for line in lines:
            if line.strip().lstrip(".").split(" ")[0] in ("exit", "quit"):
                break
            self.execute(line)

    def cmd_save(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("usage: .save FILE")
        try:
            Path(args[0]).write_text("".join(line + "\n" for line in self.lines))
        except OSError as err:
            raise UsageError(f"can not write {args[0]}: {err.strerror}") from None
        self.print(f"session saved to: {args[0]} ({len(self.lines)} lines)")

    # ---- the rest

    def cmd_cls(self, args: list[str]) -> None:
        with self.lock:
            print("\x1b[2J\x1b[H", end="", flush=True)

    def cmd_help(self, args: list[str]) -> None:
        for name, cmd in self.commands.items():
            self.print(f"  {'.' + name + ' ' + cmd.usage:<50}  {cmd.help}")
        self.print("  Other lines are Python, with client, subs, secret, config, mp (msgpack), raft")
        self.print("  (zmqraft.client), gen_id(), lookup(), unpack() and res (the last result).")


# ---- the loop ---------------------------------------------------------------------------------


def interactive(console: Console, history: str) -> None:
    require_extra("prompt_toolkit", "zr-console (on a terminal)")
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.patch_stdout import patch_stdout

    words = [f".{name}" for name in console.commands]
    session: PromptSession[str] = PromptSession(
        history=load_history(history),
        completer=WordCompleter(words, sentence=True),
        complete_while_typing=False,  # Tab completes (a single match is inserted at once)
        auto_suggest=AutoSuggestFromHistory(),
    )
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt(console.prompt)
            except KeyboardInterrupt:
                if console.editor is not None:
                    console.editor = None
                    console.print("// editor cancelled")
                continue
            except EOFError:
                if console.editor is not None:
                    if not console.finish_editor():
                        break
                    continue
                break
            if not console.execute(line):
                break
    with contextlib.suppress(OSError):
        trim_history_file(history)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zr-console", description="Interactive console for a zmq-raft cluster.")
    p.add_argument("hosts", nargs="*", metavar="[ID=]host[:port]", help="seed peers to connect at start")
    p.add_argument("-c", "--config", metavar="FILE", help="config file (secret, console section)")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-k", "--cluster", metavar="SECRET", default=None, help="cluster secret")
    p.add_argument("--history", metavar="FILE", default=HISTORY_FILE, help="history file")
    add_curve(p)
    add_debug(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args.config, args.ns)
        keys = curve_keys(args, config, args.config)
    except UsageError as err:
        print(f"zr-console: {err}", file=sys.stderr)
        return err.code
    except Exception as err:
        return report("zr-console", err, args.debug)
    secret = args.cluster if args.cluster is not None else str(config.get("secret") or "")
    console = Console(config, secret, keys, args.curve_keys or "")
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    print(f"zmq-raft console {version()} (.help lists the commands, .exit or Ctrl-D leaves)")
    try:
        if args.hosts:
            console.execute(".connect " + " ".join(shlex.quote(h) for h in args.hosts))
        if terminal:
            interactive(console, args.history)
        else:
            for line in sys.stdin:
                if not console.execute(line):
                    break
            else:
                if console.editor is not None:
                    console.finish_editor()
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            console.shutdown()
    print("bye bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
