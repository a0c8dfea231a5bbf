"""``zr-console``: an interactive console for a zmq-raft cluster (server-and-tools.md §c.6).

::

    zr-console [-c FILE] [--ns NS] [-k SECRET] [--history FILE] [host[:port] ...]

Seed hosts given on the command line are connected at start.  Commands (the leading dot is
optional; ``.help`` lists them): ``.connect``, ``.subscribe``, ``.close``, ``.peers``,
``.info``, ``.secret``, ``.start``/``.stop`` (flooding the cluster with updates), ``.data``,
``.iter``, ``.read``, ``.verify``, ``.decode``, ``.config`` (membership changes), ``.cls``,
``.exit``.  History (``./.zr_console_history``, 1000 lines, duplicates dropped) and Tab
completion on a terminal; with piped stdin the lines are run one after the other.

Flood updates are msgpack maps ``{iteration, data, time}`` (``time`` a Date, ext type
0x0D), like the original's, so ``.verify`` can check a log written by either console.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import os
import shlex
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from zmqraft.client import (
    AsyncClient,
    Client,
    Entry,
    RequestTimeoutError,
    SnapshotChunk,
    Subscriber,
)
from zmqraft.client.config_files import read_config
from zmqraft.core.cluster import parse_peers
from zmqraft.core.protocol import mpack
from zmqraft.core.protocol.reqid import new_request_id, to_hex

from ._common import UsageError, parse_peer_spec, peer_str, resolve_hosts
from .zr_config import wait_final_config

HISTORY_FILE = ".zr_console_history"
HISTORY_LINES = 1000
DATE_EXT = 0x0D
TIMEOUT = 5.0


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("zmq-raft-client")
    except Exception:
        return "?"


# ---- msgpack with Dates (storage.md §0) --------------------------------------------------------


def pack_date(when: float) -> msgpack.ExtType:
    return msgpack.ExtType(DATE_EXT, struct.pack(">Bd", 0xCB, when * 1000.0))


def _ext(code: int, data: bytes) -> Any:
    if code == DATE_EXT and len(data) == 9 and data[0] == 0xCB:
        ms = struct.unpack(">d", data[1:])[0]
        return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)
    return msgpack.ExtType(code, data)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext)


def flood_item(iteration: int, data: str, when: float) -> bytes:
    return msgpack.packb({"iteration": iteration, "data": data, "time": pack_date(when)}, use_bin_type=True)


# ---- the console ----------------------------------------------------------------------------


@dataclass
class Command:
    run: Callable[[list[str]], None]
    usage: str
    help: str


class Console:
    """Every command; output goes through ``self.print`` (thread-safe with prompt_toolkit's
    ``patch_stdout``)."""

    def __init__(self, config: dict[str, Any], secret: str) -> None:
        self.config = config
        console = config.get("console") or {}
        self.client_options = dict(console.get("client") or {})
        self.subscriber_options = dict(console.get("subscriber") or {})
        self.random_ids = console.get("updateId") == "random"
        self.secret = secret
        self.seeds: list[str] = []
        self.client: Client | None = None
        self.subscriber: Subscriber | None = None
        self._sub_thread: threading.Thread | None = None
        self._sub_stop = threading.Event()
        self.decode = "mp"
        self.flood_data = base64.b64encode(os.urandom(6)).decode()
        self.iteration = 0
        self.flooding = False
        self._flood_thread: threading.Thread | None = None
        self._flood_stop = threading.Event()
        self._flood_stats = {"sent": 0, "last_index": 0, "timeouts": 0}
        self.lock = threading.Lock()
        self.commands: dict[str, Command] = {
            "connect": Command(self.cmd_connect, "host[:port] ...", "connect a cluster client to the peers"),
            "subscribe": Command(self.cmd_subscribe, "host[:port] ... [from=N]",
                                 "subscribe to the cluster's committed entries (printed as they come)"),
            "close": Command(self.cmd_close, "", "close the client and the subscriber, stop flooding"),
            "peers": Command(self.cmd_peers, "", "the cluster's peers (RequestConfig)"),
            "info": Command(self.cmd_info, "[id]", "log info of the leader or of peer id (RequestLogInfo)"),
            "secret": Command(self.cmd_secret, "[secret]", "set or show the secret for new connections"),
            "start": Command(self.cmd_start, "[data | +N]", "start flooding updates (+N: N in parallel)"),
            "stop": Command(self.cmd_stop, "", "stop flooding"),
            "data": Command(self.cmd_data, "[data]", "set or show the flood data"),
            "iter": Command(self.cmd_iter, "[n]", "stop flooding and set / show the iteration counter"),
            "read": Command(self.cmd_read, "[prevIndex=0] [count]", "read the log (RequestEntries)"),
            "verify": Command(self.cmd_verify, "[startIndex=1] [startIteration=1] [count]",
                              "check the flood items in the log: consecutive iterations, no other "
                              "update in between"),
            "decode": Command(self.cmd_decode, "mp|msgpack|hex|other", "how state data is printed"),
            "config": Command(self.cmd_config, "[add PEERS | delete PEERS | replace PEERS]",
                              "show or change the membership (peers: tcp://host:port/id,...)"),
            "cls": Command(self.cmd_cls, "", "clear the screen"),
            "help": Command(self.cmd_help, "", "this list"),
            "exit": Command(lambda a: None, "", "leave the console (also Ctrl-D)"),
        }

    # ---- plumbing

    def print(self, *args: Any) -> None:
        with self.lock:
            print(*args, flush=True)

    def execute(self, line: str) -> bool:
        """Run one command line; False when the console should end."""
        line = line.strip()
        if not line or line.startswith("#"):
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
        try:
            self.commands[matches[0]].run(words[1:])
        except (UsageError, ValueError) as err:
            self.print(f"error: {err}")
        except Exception as err:
            self.print(f"{type(err).__name__}: {err}")
        return True

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
        if options.get("timeout"):
            kwargs["timeout"] = options["timeout"] / 1000
        return kwargs

    def _new_client(self) -> Client:
        return Client(self.seeds, **self._client_kwargs())

    def close(self) -> None:
        self.cmd_stop([], quiet=True)
        self._stop_subscriber()
        if self.client is not None:
            self.client.close()
            self.client = None

    # ---- connections

    def cmd_connect(self, args: list[str]) -> None:
        if not args:
            raise UsageError("usage: .connect host[:port] [host ...]")
        seeds = resolve_hosts(args)
        self.close()
        self.seeds = seeds
        self.client = self._new_client()
        self.print(f"connected to: {' '.join(seeds)}")

    def cmd_subscribe(self, args: list[str]) -> None:
        hosts = [a for a in args if not a.startswith("from=")]
        start = next((int(a[5:]) for a in args if a.startswith("from=")), 0)
        if hosts:
            seeds = resolve_hosts(hosts)
            self.close()
            self.seeds = seeds
        elif not self.seeds:
            raise UsageError("usage: .subscribe host[:port] [host ...] [from=N]")
        self._stop_subscriber()
        sub = Subscriber(self.seeds, secret=self.secret, from_index=start)
        self.subscriber = sub
        self._sub_stop.clear()
        self._sub_thread = threading.Thread(target=self._subscription, args=(sub,), daemon=True)
        self._sub_thread.start()
        self.print(f"subscribed to: {' '.join(self.seeds)} (after index {start})")

    def _subscription(self, sub: Subscriber) -> None:
        try:
            while not self._sub_stop.is_set():
                item = sub.read(timeout=0.2)
                if item is not None:
                    self.print(self.describe(item, prefix="entry"))
        except Exception as err:
            if not self._sub_stop.is_set():
                self.print(f"subscriber error: {type(err).__name__}: {err}")
        finally:
            sub.close()

    def _stop_subscriber(self) -> None:
        if self._sub_thread is not None:
            self._sub_stop.set()
            self._sub_thread.join(5)
            self._sub_thread = None
        self.subscriber = None

    def cmd_close(self, args: list[str]) -> None:
        self.close()
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
            ("url", info.url), ("leader", "yes" if info.is_leader else f"no ({info.leader_id})"),
            ("current term", info.term), ("first log index", info.first_index),
            ("last applied", info.last_applied), ("commit index", info.commit_index),
            ("last log index", info.last_index), ("snapshot size", info.snapshot_size),
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
        self.print(
            f"flooding started: data {self.flood_data!r}, iteration {self.iteration + 1}, "
            f"{parallel} at a time"
        )
        self._flood_thread = threading.Thread(target=self._flood, args=(parallel,), daemon=True)
        self._flood_thread.start()

    def _flood(self, parallel: int) -> None:
        async def worker(client: AsyncClient) -> None:
            while True:  # every worker sends at least one update, even if .stop comes at once
                with self.lock:
                    self.iteration += 1
                    iteration = self.iteration
                data = flood_item(iteration, self.flood_data, time.time())
                rid = os.urandom(12) if self.random_ids else None
                try:
                    index = await client.request_update(data, request_id=rid, timeout=TIMEOUT)
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

        async def flood() -> None:
            async with AsyncClient(self.seeds, **self._client_kwargs()) as client:
                await asyncio.gather(*(worker(client) for _ in range(parallel)))

        try:
            asyncio.run(flood())
        except Exception as err:
            self.print(f"flooding stopped by an error: {type(err).__name__}: {err}")
        finally:
            self.flooding = False

    def cmd_stop(self, args: list[str], quiet: bool = False) -> None:
        thread = self._flood_thread
        if thread is None:
            if not quiet:
                self.print("not flooding")
            return
        self._flood_stop.set()
        thread.join(TIMEOUT * 2)
        self._flood_thread = None
        s = self._flood_stats
        self.print(f"flooding stopped: {s['sent']} updates, last iteration {self.iteration}, "
                   f"last index {s['last_index']}, {s['timeouts']} timeouts")

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
            return (f"snapshot logIndex: {item.index} logTerm: {item.term} chunk: "
                    f"{item.offset + len(item.data)}/{item.total_size}")
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
        for item in self.need_client().request_entries(start - 1, count, timeout=TIMEOUT * 2):
            if not isinstance(item, Entry) or not item.is_state:
                continue
            before, previous_state = previous_state, item.index
            try:
                value = unpack(item.data)
            except Exception:
                continue
            if not isinstance(value, dict) or value.get("data") != self.flood_data:
                continue
            if value.get("iteration") != expected_iteration:
                got = value.get("iteration")
                self.print(f"verify FAILED at logIndex {item.index}: iteration {got}, "
                           f"expected {expected_iteration}")
                return
            if last_index is not None and before != last_index:
                self.print(f"verify FAILED at logIndex {item.index}: previous item at {last_index}, "
                           f"another update at {before}")
                return
            self.print(f"verified logIndex: {item.index} iteration: {expected_iteration}")
            expected_iteration += 1
            last_index = item.index
            verified += 1
        self.print(f"verify ok: {verified} items")

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

    # ---- the rest

    def cmd_cls(self, args: list[str]) -> None:
        with self.lock:
            print("\x1b[2J\x1b[H", end="", flush=True)

    def cmd_help(self, args: list[str]) -> None:
        for name, cmd in self.commands.items():
            self.print(f"  {'.' + name + ' ' + cmd.usage:<50}  {cmd.help}")


# ---- the loop ---------------------------------------------------------------------------------


def load_history(path: str) -> Any:
    from prompt_toolkit.history import FileHistory

    class TrimmedHistory(FileHistory):
        """FileHistory without consecutive duplicates, keeping the newest 1000 lines."""

        def load_history_strings(self) -> Any:
            seen: list[str] = []
            for line in super().load_history_strings():  # newest first
                if line not in seen:
                    seen.append(line)
                if len(seen) >= HISTORY_LINES:
                    break
            return iter(seen)

        def store_string(self, string: str) -> None:
            if self.get_strings() and self.get_strings()[-2:-1] == [string]:
                return
            super().store_string(string)

    return TrimmedHistory(path)


def interactive(console: Console, history: str) -> None:
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
                line = session.prompt("zr> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not console.execute(line):
                break


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zr-console", description="Interactive console for a zmq-raft cluster.")
    p.add_argument("hosts", nargs="*", metavar="host[:port]", help="seed peers to connect at start")
    p.add_argument("-c", "--config", metavar="FILE", help="config file (secret, console section)")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-k", "--cluster", metavar="SECRET", default=None, help="cluster secret")
    p.add_argument("--history", metavar="FILE", default=HISTORY_FILE, help="history file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args.config, args.ns)
    except Exception as err:
        print(f"zr-console: {err}", file=sys.stderr)
        return 1
    secret = args.cluster if args.cluster is not None else str(config.get("secret") or "")
    console = Console(config, secret)
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    print(f"zmq-raft console {version()} (.help lists the commands, .exit or Ctrl-D leaves)")
    try:
        if args.hosts:
            console.execute("connect " + " ".join(shlex.quote(h) for h in args.hosts))
        if terminal:
            interactive(console, args.history)
        else:
            for line in sys.stdin:
                if not console.execute(line):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            console.close()
    print("bye bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
