"""``zr-log-compact``: build a compaction snapshot offline (server-and-tools.md §c.3).

::

    zr-log-compact [-c FILE] [--ns NS] [-d DIR] [-l LOG] [-s SNAP] [-t TARGET]
                   [-m STATE_MACHINE] [-i INDEX | -p [ID=]URL] [-k SECRET] [-z LEVEL] [-U] [-N]
                   [--curve-keys DIR [--curve-name NAME]]

Feeds the log of a peer's data directory (read-only: the peer may keep running) to a state
machine up to the compaction index (``-i``, or min(commit index, prune index) reported by
the peer ``-p``, by default the url of ``config.id``; with CurveZMQ, ``--curve-keys DIR``),
writes the state machine's snapshot to ``TARGET`` (default ``<dir>/compact/snap.new``, where
a peer with ``data.compact.watch`` installs it), then prints the log files that may be
deleted once it is installed.

The state machine (``-m``, default ``data.compact.state.path``) is a Python file or a module
name, optionally ``:ClassName``; without a class name the module's ``StateMachineClass`` or
its only class with ``apply_entries``.  It is constructed with the options
``{"compressionLevel": 9, **data.compact.state.options}`` (see ``passthrough_state`` for the
snapshot hooks it may offer).

Exit status: 0 done, 1 other errors, 2 no target, 3 no state machine, 4 neither index nor
peer, 5 index not in the log, 6 the state machine has no snapshot hook, 7 bad ``-z``,
8 no data directory, 9 the log is damaged (each problem printed with file and offset; see
``zr-tool verify`` and ``zr-tool repair``).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from types import ModuleType
from typing import Any

from zmqraft.client import Client
from zmqraft.core.config_files import read_config
from zmqraft.core.curve_keys import ClientKeys
from zmqraft.core.statemachine import Snapshot, StateMachine
from zmqraft.core.storage.files import FileLog
from zmqraft.core.storage.files.damage import check_log
from zmqraft.core.storage.files.snapshotfile import SnapshotStreamWriter

from ._common import (
    UsageError,
    add_curve,
    add_debug,
    connecting,
    curve_keys,
    curve_option,
    has_extra,
    resolve_seeds,
    run_tool,
)

PEER_TIMEOUT = 5.0
BATCH = 1000
CHUNK = 1 << 20


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zr-log-compact", description="Build a log compaction snapshot offline.")
    p.add_argument("-c", "--config", metavar="FILE", help="config file")
    p.add_argument("--ns", metavar="NAMESPACE", default=None, help="config namespace (default: raft)")
    p.add_argument("-d", "--dir", metavar="DIR", help="raft data directory (default: data.path)")
    p.add_argument("-l", "--log", metavar="DIR", help="log directory, relative to the data directory")
    p.add_argument("-s", "--snapshot", metavar="FILE", help="snapshot file, relative to the data directory")
    p.add_argument("-t", "--target", metavar="FILE", help="output (default: <dir>/<data.compact.install>)")
    p.add_argument("-m", "--state-machine", metavar="MODULE", help="state machine: file.py or module[:Class]")
    p.add_argument("-i", "--index", metavar="N", type=int, help="compaction index")
    p.add_argument("-p", "--peer", metavar="[ID=]URL", help="ask this peer for min(commit, prune) index")
    p.add_argument("-k", "--cluster", metavar="SECRET", default=None, help="cluster secret")
    p.add_argument("-z", "--zip", metavar="LEVEL", help="compressionLevel of the state machine (0..9)")
    p.add_argument("-U", "--no-unzip", action="store_true", help="unzipSnapshot: false")
    p.add_argument("-N", "--no-prune", action="store_true", help="do not print the prunable log files")
    add_curve(p)
    add_debug(p)
    return p


# ---- the state machine ------------------------------------------------------------------------


def load_module(spec: str, base_dir: str) -> tuple[ModuleType, str | None]:
    name, _, attr = spec.partition(":") if not os.path.isfile(spec) else (spec, "", "")
    path = name if os.path.isabs(name) else os.path.join(base_dir, name)
    if name.endswith(".py") or os.sep in name or os.path.isfile(path):
        if not os.path.isfile(path):
            raise UsageError(f"state machine module not found: {path}", 3)
        mod_spec = importlib.util.spec_from_file_location(f"_zr_state_{abs(hash(path))}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise UsageError(f"can not load the state machine module {path}", 3)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        return module, attr or None
    try:
        return importlib.import_module(name), attr or None
    except ImportError as err:
        raise UsageError(f"can not import the state machine module {name}: {err}", 3) from None


def state_machine_class(module: ModuleType, attr: str | None) -> Any:
    if attr:
        if not hasattr(module, attr):
            raise UsageError(f"{module.__name__} has no {attr}", 3)
        return getattr(module, attr)
    if hasattr(module, "StateMachineClass"):
        return module.StateMachineClass
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and value.__module__ == module.__name__ and hasattr(value, "apply_entries")
    ]
    if len(found) != 1:
        raise UsageError(f"{module.__name__}: name the state machine class (module:Class)", 3)
    return found[0]


def has_snapshot_hook(machine: Any) -> bool:
    if getattr(machine, "snapshot_read_stream", None) is not None:
        return True
    if any(callable(getattr(machine, name, None)) for name in ("create_snapshot_read_stream", "serialize")):
        return True
    own = getattr(type(machine), "snapshot", None)
    return callable(own) and own is not StateMachine.snapshot


def chunks_of(source: Any) -> Iterator[bytes]:
    """Bytes, an iterable of bytes or a binary file object, in chunks."""
    if source is None:
        raise RuntimeError("the state machine produced no snapshot")
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif hasattr(source, "read"):
        while piece := source.read(CHUNK):
            yield bytes(piece)
    else:
        for piece in source:
            yield bytes(piece)


def state_options(config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    configured = dict(((config.get("data") or {}).get("compact") or {}).get("state", {}).get("options") or {})
    options: dict[str, Any] = {"compressionLevel": 9, **configured}
    if args.zip is not None:
        try:
            level = int(args.zip)
        except ValueError:
            level = -1
        if not 0 <= level <= 9:
            raise UsageError("-z: the compression level must be 0..9", 7)
        options["compressionLevel"] = level
    if args.no_unzip:
        options["unzipSnapshot"] = False
    elif "unzipSnapshot" not in options and configured.get("compressionLevel") != 0:
        options["unzipSnapshot"] = True  # as the original: from the config's level, not -z
    return options


# ---- the flow -----------------------------------------------------------------------------------


def peer_indexes(url: str, secret: str, keys: ClientKeys | None = None) -> tuple[int, int]:
    """The peer's (commit index, prune index)."""
    connecting([url])
    with Client([url], secret=secret, **curve_option(keys)) as client:
        info = client.request_log_info(url=url, timeout=PEER_TIMEOUT)
    return info.commit_index, info.prune_index


def nothing_to_compact(url: str, commit: int, prune: int, snapshot_index: int) -> UsageError:
    """The prune index stays behind while request ids are remembered (requestIdTtl, 8 h by
    default): compacting past it could apply a retried update twice, so the tool does not
    pick a later index by itself."""
    return UsageError(
        f"nothing to compact up to index {min(commit, prune)}: {url} reports commit index "
        f"{commit} and prune index {prune} (the log keeps the request ids of requestIdTtl, 8 h "
        f"by default; the snapshot is at {snapshot_index}); give -i INDEX (at most {commit}) "
        "to compact anyway",
        5,
    )


def progress(total: int) -> Any:
    if not sys.stderr.isatty() or total < BATCH or not has_extra("rich"):
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("feeding the state machine"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),  # stdout is the list of prunable files
        transient=True,
    )


def feed(log: FileLog, machine: Any, index: int) -> None:
    """The log's snapshot, then every entry up to ``index``, in batches."""
    snap = log.snapshot
    snapshot = Snapshot(snap, log.read_snapshot)
    next_index = snap.index + 1
    total = index - snap.index
    with progress(total) as bar:
        task = bar.add_task("feed", total=total) if bar is not None else None
        first = True
        while next_index <= index or first:
            last = min(index, next_index + BATCH - 1)
            entries = log.entries(next_index, last) if next_index <= last else []
            applied = machine.apply_entries(
                entries, next_index, log.term_at(last) or 0, snapshot if first else None
            )
            if applied != next_index + len(entries) - 1:
                expected = next_index + len(entries) - 1
                raise RuntimeError(f"the state machine returned {applied}, expected {expected}")
            first = False
            next_index = last + 1
            if bar is not None:
                bar.update(task, advance=len(entries))
    if getattr(machine, "last_applied", index) != index:
        raise RuntimeError(f"the state machine ended at {machine.last_applied}, not at {index}")


def write_snapshot(target: str, index: int, term: int, chunks: Iterable[bytes]) -> int:
    tmp = f"{target}.tmp-{os.getpid()}-{next(_tmp_numbers)}"
    writer = SnapshotStreamWriter(tmp, index, term)
    try:
        for piece in chunks:
            writer.write(piece)
        snap = writer.finish()
    except BaseException:
        writer.abort()
        raise
    try:
        snap.replace(target)
        size = snap.data_size
    finally:
        snap.close()
    for stale in glob.glob(glob.escape(target) + ".tmp-*"):
        with contextlib.suppress(OSError):
            os.unlink(stale)
    return size


def _counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


_tmp_numbers = _counter()


def run(args: argparse.Namespace) -> int:
    config = read_config(args.config, args.ns)
    config_dir = os.path.dirname(os.path.abspath(args.config)) if args.config else os.getcwd()
    data = config.get("data") or {}
    root = args.dir
    if root is None:
        root = data.get("path")
        if root and data.get("appendIdToPath") and config.get("id"):
            root = os.path.join(root, str(config["id"]))
    if not root or not os.path.isdir(root):
        raise UsageError(f"no such raft data directory: {root}", 8)
    log_dir = os.path.join(root, args.log or data.get("log") or "log")
    snapshot_path = os.path.join(root, args.snapshot or data.get("snapshot") or "snap")
    install = (data.get("compact") or {}).get("install")
    target = args.target or (os.path.join(root, install) if install else None)
    if not target:
        raise UsageError("no target snapshot file", 2)
    sm_path = args.state_machine or (((data.get("compact") or {}).get("state") or {}).get("path"))
    if not sm_path:
        raise UsageError("no state machine (-m or data.compact.state.path)", 3)
    module, attr = load_module(sm_path, os.getcwd() if args.state_machine else config_dir)
    cls = state_machine_class(module, attr)
    options = state_options(config, args)

    index = args.index
    if index is None:
        url = args.peer
        if url is None and config.get("id") is not None:
            url = next(
                (
                    str(p.get("url"))
                    for p in config.get("peers") or []
                    if isinstance(p, dict) and p.get("id") == config["id"]
                ),
                None,
            )
        if url is None:
            raise UsageError("give the compaction index (-i) or a peer to ask for it (-p)", 4)
        urls, ids = resolve_seeds([url])
        if args.peer is None:
            ids = {urls[0]: str(config["id"])}
        url = urls[0]
        keys = curve_keys(args, config, args.config, urls, ids)
        secret = args.cluster if args.cluster is not None else config.get("secret", "")
        commit, prune = peer_indexes(url, secret, keys)
        index = min(commit, prune)
        print(f"compaction index from {url}: {index} (commit {commit}, prune {prune})", file=sys.stderr)

    damage = check_log(log_dir).damage if os.path.isdir(log_dir) else []
    for problem in damage:
        print(f"zr-log-compact: damage: {problem}", file=sys.stderr)
    if damage:
        raise UsageError(f"the log in {log_dir} is damaged: see zr-tool verify/repair", 9)
    log = FileLog(log_dir, snapshot_path, read_only=True)
    try:
        if args.index is None and index <= log.snapshot.index:
            raise nothing_to_compact(str(url), commit, prune, log.snapshot.index)
        term = log.term_at(index) if log.snapshot.index < index <= log.last_index else None
        if term is None:
            raise UsageError(f"last index: {index} not found in the file log", 5)
        machine = cls(options)
        if not has_snapshot_hook(machine):
            raise UsageError(
                f"{cls.__name__} offers no snapshot (snapshot_read_stream, "
                "create_snapshot_read_stream, serialize or snapshot)",
                6,
            )
        stream = getattr(machine, "snapshot_read_stream", None)  # made before feeding
        feed(log, machine, index)
        if stream is None:
            if callable(getattr(machine, "create_snapshot_read_stream", None)):
                stream = machine.create_snapshot_read_stream()
            elif callable(getattr(machine, "serialize", None)):
                stream = machine.serialize()
            else:
                stream = machine.snapshot()
        size = write_snapshot(target, index, term, chunks_of(stream))
        print(
            f"snapshot of index {index} term {term} ({size} bytes) written to {target}; a peer "
            "installs it only with data.compact.watch: true",
            file=sys.stderr,
        )
        if not args.no_prune:
            for path in log.prunable_files(index):
                print(path)
        close = getattr(machine, "close", None)
        if callable(close):
            close()
    finally:
        log.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("zr-log-compact", lambda: run(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
