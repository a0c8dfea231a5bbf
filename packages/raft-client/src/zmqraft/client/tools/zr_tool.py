"""``zr-tool``: inspect, list and dump zmq-raft files (server-and-tools.md §c.4).

::

    zr-tool [-o FILE] [-s SNAP] [-l LOG] [-w table|json] inspect|list|dump PATH [-i RANGES] [-d DIR] [-m] [-U]
    zr-tool PATH                      (implicit inspect)
    zr-tool verify PATH               (check every file; exit 3 on damage)
    zr-tool repair DATADIR [--yes]    (drop a torn log tail, lower lastApplied; never automatic)

``PATH`` is a raft data directory (its log in ``-l`` = ``log``, its snapshot ``-s`` =
``snap``), an index file (``RLOG``), a snapshot file (``SNAP``) or a state file (anything
else of at least 8 bytes).  Output JSON is indented by 2 spaces; ``-w json`` (``--json``)
prints compact, machine-readable lines instead (``dump -w json`` on a directory or index file:
one object per entry ``{"index", "term", "type", "request_id", "data"}`` and nothing else).
``dump`` of entries prints them as a table; ``-d DIR`` writes them to files as the original.
Errors print ``<ErrorName>: <message>`` on stderr and exit with status 1.  Damage found in what
a command read (cut entries of a torn index file, a torn state file, ``lastApplied`` beyond the
log...) is printed on stderr with file and offset and the exit status is 3 (see ``_damage``).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

import msgpack
from zmqraft.core.protocol.entry import entry_term
from zmqraft.core.storage.files import FileLog, IndexFile, SnapshotFile
from zmqraft.core.storage.files.persistence import read_records

from ._common import add_write_out, has_extra
from ._damage import cmd_repair, cmd_verify, report_damage

COMMANDS = {"inspect": "inspect", "*": "inspect", "list": "list", "l": "list", "dump": "dump", "d": "dump"}
COMMANDS.update(verify="verify", repair="repair")
_VALUE_OPTIONS = {"-o", "--output", "-s", "--snapshot", "-l", "--log", "-i", "--index", "-d", "--dest"}
PROGRESS_THRESHOLD = 2000


class ToolError(Exception):
    """A usage error of the tool itself (printed as ``Error: ...``)."""


# ---- values to JSON ---------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """msgpack values as JSON like the original prints them (integral floats as ints, bytes as
    Node's Buffer JSON, extension types as {type, data})."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": list(bytes(value))}
    if isinstance(value, msgpack.ExtType):
        return {"type": value.code, "data": list(value.data)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def pretty(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


def compact(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)


# ---- what a path is ---------------------------------------------------------------------------


def detect(path: str) -> str:
    if os.path.isdir(path):
        return "dir"
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] == b"RLOG":
        return "index"
    if head[:4] == b"SNAP":
        return "snapshot"
    if len(head) < 8:
        raise ToolError(f"unrecognized file: {path}")
    return "state"


def parse_ranges(text: str | None, first: int, last: int) -> list[tuple[int, int]]:
    """``n``, ``a:b``, ``a:``, ``:b``, ``:`` (comma separated, decimal) within ``first..last``."""
    if text is None:
        return [(first, last)] if first <= last else []
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ":" in part:
                a, b = part.split(":", 1)
                lo = int(a) if a.strip() else first
                hi = int(b) if b.strip() else last
            else:
                lo = hi = int(part)
        except ValueError:
            raise ToolError(f"invalid index range: {part!r}") from None
        if lo > hi:
            raise ToolError(f"invalid index range: {part!r}")
        if lo < first or hi > last:
            raise ToolError(f"index range {part!r} outside of {first}..{last}")
        out.append((lo, hi))
    return out


def state_data(path: str) -> tuple[int, dict[str, Any], list[Any]]:
    with open(path, "rb") as f:
        raw = f.read()
    records = [value for _, value in read_records(raw, path)[0]]
    merged: dict[str, Any] = {}
    for value in records:
        if isinstance(value, dict):
            merged.update(value)
    return len(raw), merged, records


def open_dir_log(args: argparse.Namespace) -> FileLog:
    return FileLog(os.path.join(args.path, args.log), os.path.join(args.path, args.snapshot), read_only=True)


def snapshot_info(s: SnapshotFile, with_path: bool = True) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if with_path:
        info["path"] = s.path
    info.update(
        fileSize=os.path.getsize(s.path),
        logIndex=s.index,
        logTerm=s.term,
        dataSize=s.data_size,
        meta=s.file_meta(),
    )
    return info


def snapshot_json(s: SnapshotFile) -> dict[str, Any]:
    return {"index": s.index, "term": s.term, "size": s.data_size, "sha256": s.sha256()}


# ---- commands ---------------------------------------------------------------------------------


class Output:
    """stdout or the ``-o`` file (text or binary)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    @property
    def binary(self) -> IO[bytes]:
        if self._file is None:
            self._file = open(self.path, "wb") if self.path else sys.stdout.buffer  # noqa: SIM115
        return self._file

    def line(self, text: str) -> None:
        self.binary.write(text.encode() + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self.path:
                self._file.close()


def cmd_inspect(args: argparse.Namespace, kind: str, out: Output) -> None:
    if kind == "dir":
        log = open_dir_log(args)
        snap = log.snapshot_file
        if args.json:
            doc: dict[str, Any] = {
                "firstIndex": log.first_index,
                "lastIndex": log.last_index,
                "lastTerm": log.last_term,
                "snapshot": snapshot_json(snap),
            }
            out.line(compact(doc))
            return
        doc = {
            "type": "dir:log",
            "path": args.path,
            "firstIndex": log.first_index,
            "lastIndex": log.last_index,
            "lastTerm": log.last_term,
            "snapshot": {**snapshot_info(snap), "path": os.path.join(args.path, args.snapshot)},
        }
        out.line(pretty(doc))
    elif kind == "index":
        f = IndexFile.open(args.path)
        doc = {
            "type": "file:index",
            "path": args.path,
            "fileSize": os.path.getsize(args.path),
            "dataSize": f.data_size,
            "indexSize": 4 * f.capacity,
            "capacity": f.capacity,
            "basename": os.path.basename(args.path)[:-5],
            "firstAllowedIndex": f.first_index,
            "lastAllowedIndex": f.last_allowed_index,
            "nextIndex": f.next_index,
            "entryCount": f.next_at,
            "freeCount": f.capacity - f.next_at,
            "meta": f.meta(),
        }
        out.line(compact(doc) if args.json else pretty(doc))
    elif kind == "snapshot":
        s = SnapshotFile.open(args.path)
        if args.json:
            out.line(compact(snapshot_json(s)))
        else:
            out.line(pretty({"type": "file:snapshot", **snapshot_info(s)}))
    else:
        size, merged, _ = state_data(args.path)
        if args.json:
            out.line(compact(merged))
        else:
            out.line(pretty({"type": "file:state", "path": args.path, "fileSize": size, "data": merged}))


def cmd_list(args: argparse.Namespace, kind: str, out: Output) -> None:
    if kind == "dir":
        log_dir = os.path.join(args.path, args.log)
        if not os.path.isdir(log_dir):
            raise ToolError(f"no log directory: {log_dir}")
        log = open_dir_log(args)
        abs_dir = log.log_dir
        for p in log.index_file_paths():
            shown = os.path.join(log_dir, os.path.relpath(p, abs_dir))
            out.line(compact({"path": shown}) if args.json else shown)
        return
    if kind != "index":
        raise ToolError(f"list works on a raft directory or an index file, not a {kind} file")
    f = IndexFile.open(args.path)
    size = os.path.getsize(args.path)
    idx_digits = len(f"{f.last_allowed_index:x}")
    pos_digits = len(f"{size:x}")
    for lo, hi in parse_ranges(args.index, f.first_index, f.next_index - 1):
        for index in range(lo, hi + 1):
            slot = index - f.first_index
            offset, length = f.byte_offset(slot), f.entry_size(slot)
            if args.json:
                out.line(compact({"index": index, "offset": offset, "size": length}))
            else:
                out.line(f"{index:0{idx_digits}x}:{offset:0{pos_digits}x}:{length:0{pos_digits}x}")


def _progress(total: int) -> AbstractContextManager[Any]:
    """A rich progress bar on stderr for long dumps (only on a terminal)."""
    if total < PROGRESS_THRESHOLD or not sys.stderr.isatty() or not has_extra("rich"):
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import Progress

    return Progress(console=Console(stderr=True), transient=True)


def _entries(source: FileLog | IndexFile, ranges: list[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    for lo, hi in ranges:
        index = lo
        while index <= hi:
            top = min(hi, index + 1023)
            if isinstance(source, FileLog):
                chunk = source.entries(index, top)
            else:
                chunk = source.read_entries(index - source.first_index, top - index + 1)
            for raw in chunk:
                yield index, raw
                index += 1


def _decoded_json(data: bytes) -> str:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as err:
        raise ToolError(f"entry data is not msgpack: {err}") from err
    return pretty(value)


def dump_entries(
    args: argparse.Namespace, source: FileLog | IndexFile, first: int, last: int, out: Output
) -> None:
    ranges = parse_ranges(args.index, first, last)
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if not args.json and args.dest is None:
        table_entries(args, _entries(source, ranges), out)
        return
    dest = args.dest
    if not args.json:
        os.makedirs(dest, exist_ok=True)
    with _progress(total) as progress:
        task = progress.add_task("dumping", total=total) if progress is not None else None
        for n, (index, raw) in enumerate(_entries(source, ranges), start=1):
            rid, kind, term, data = raw[:12], raw[12], entry_term(raw), raw[20:]
            if args.json:
                doc = {
                    "index": index,
                    "term": term,
                    "type": kind,
                    "request_id": rid.hex(),
                    "data": data.hex(),
                }
                out.line(json.dumps(doc))
            else:
                base = f"{index:016x}"
                body = (_decoded_json(data) + "\n").encode() if args.msgpack else data
                with open(os.path.join(dest, base + ".data"), "wb") as f:
                    f.write(body)
                with open(os.path.join(dest, base + ".meta"), "w") as f:
                    f.write(f"{kind}:{base64.b64encode(rid).decode()}:{term}")
                out.line(base)
            if progress is not None and (n % 256 == 0 or n == total):
                progress.update(task, completed=n)


ENTRY_TYPES = {0: "state", 1: "config", 2: "checkpoint"}
PREVIEW = 48  # characters of an entry's data in the table


def _preview(data: bytes, decode: bool) -> str:
    if decode:
        try:
            text = compact(msgpack.unpackb(data, raw=False, strict_map_key=False))
        except (ValueError, msgpack.UnpackException):
            text = data.hex()
    else:
        text = data.hex()
    return text if len(text) <= PREVIEW else text[: PREVIEW - 3] + "..."


def table_entries(args: argparse.Namespace, entries: Iterator[tuple[int, bytes]], out: Output) -> None:
    """``dump`` of entries without ``-d``: one row each (data as hex, ``-m`` decoded)."""
    out.line(f"{'index':>10}  {'term':>6}  {'type':10}  {'request id':24}  {'size':>8}  data")
    for index, raw in entries:
        kind, term, data = raw[12], entry_term(raw), raw[20:]
        name = ENTRY_TYPES.get(kind, str(kind))
        out.line(
            f"{index:>10}  {term:>6}  {name:10}  {raw[:12].hex()}  {len(data):>8}  "
            f"{_preview(bytes(data), args.msgpack)}"
        )


def _snapshot_bytes(s: SnapshotFile, unzip: bool) -> Iterator[bytes]:
    pieces = s.iter_data()
    if not unzip:
        yield from pieces
        return
    first = next(pieces, b"")
    if first[:2] != b"\x1f\x8b":  # not gzip data: nothing to unzip
        yield first
        yield from pieces
        return
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for piece in (first, *pieces):
        yield inflater.decompress(piece)
    yield inflater.flush()


def dump_snapshot(args: argparse.Namespace, out: Output) -> None:
    s = SnapshotFile.open(args.path)
    data = _snapshot_bytes(s, unzip=not args.no_unzip)
    if not args.msgpack:
        for piece in data:
            out.binary.write(piece)
        return
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    for piece in data:
        unpacker.feed(piece)
        for value in unpacker:
            out.line(compact(value))


def cmd_dump(args: argparse.Namespace, kind: str, out: Output) -> None:
    if kind == "dir":
        log = open_dir_log(args)
        first = log.first_index if args.index is None else log.lowest_index
        dump_entries(args, log, first, log.last_index, out)
    elif kind == "index":
        f = IndexFile.open(args.path)
        dump_entries(args, f, f.first_index, f.next_index - 1, out)
    elif kind == "snapshot":
        dump_snapshot(args, out)
    else:
        for value in state_data(args.path)[2]:
            out.line(compact(value))


# ---- command line -----------------------------------------------------------------------------


def _implicit_inspect(argv: Sequence[str]) -> list[str]:
    """``zr-tool PATH`` means ``zr-tool inspect PATH``."""
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if a.startswith("-") and a != "-":
            i += 2 if a in _VALUE_OPTIONS else 1
            continue
        if a not in COMMANDS:
            args.insert(i, "inspect")
        return args
    return args


def _add_common(parser: argparse.ArgumentParser, on_command: bool) -> None:
    """Global options, accepted before or after the command."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if on_command else {}
    parser.add_argument("-o", "--output", help="write the output to this file", **kw)
    parser.add_argument("-s", "--snapshot", help="snapshot file in a raft directory (default: snap)", **kw)
    parser.add_argument("-l", "--log", help="log directory in a raft directory (default: log)", **kw)
    add_write_out(parser, **kw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zr-tool", description="Inspect, list and dump zmq-raft files.")
    _add_common(parser, on_command=False)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{inspect,list,dump,verify,repair}"
    )
    ranges = "index ranges: n, a:b, a:, :b, : (comma separated, decimal)"
    inspect = commands.add_parser("inspect", aliases=["*"], help="describe a file or a raft directory")
    listing = commands.add_parser(
        "list", aliases=["l"], help="list index files, or the entries of an index file"
    )
    listing.add_argument("-i", "--index", help=ranges)
    dump = commands.add_parser(
        "dump", aliases=["d"], help="dump entries, snapshot data or a state file's history"
    )
    dump.add_argument("-i", "--index", help=ranges)
    dump.add_argument("-d", "--dest", help="destination directory for entry files (created)")
    dump.add_argument("-m", "--msgpack", action="store_true", help="decode msgpack data as JSON")
    dump.add_argument("-U", "--no-unzip", action="store_true", help="do not gunzip snapshot data")
    verify = commands.add_parser("verify", help="check every file for damage (exit 3 when damaged)")
    repair = commands.add_parser(
        "repair",
        help="drop a torn log tail and lower lastApplied (prints the plan; needs --yes)",
    )
    repair.add_argument("-y", "--yes", action="store_true", help="do the repair without asking")
    for sub in (inspect, listing, dump, verify):
        sub.add_argument("path", help="raft directory, index file, snapshot file or state file")
        _add_common(sub, on_command=True)
    repair.add_argument("path", help="a stopped peer's data directory")
    _add_common(repair, on_command=True)
    return parser


def _merge_globals(ns: argparse.Namespace) -> argparse.Namespace:
    defaults: dict[str, Any] = {"output": None, "snapshot": "snap", "log": "log", "write_out": None}
    defaults.update(index=None, dest=None, msgpack=False, no_unzip=False, yes=False)
    for key, value in defaults.items():
        if getattr(ns, key, None) is None:
            setattr(ns, key, value)
    ns.command = COMMANDS[ns.command]
    ns.json = ns.write_out == "json"
    return ns


def run(argv: Sequence[str]) -> int:
    args = _merge_globals(build_parser().parse_args(_implicit_inspect(argv)))
    out = Output(args.output)
    try:
        kind = detect(args.path)
        if args.command in ("verify", "repair"):
            return {"verify": cmd_verify, "repair": cmd_repair}[args.command](args, kind, out)
        {"inspect": cmd_inspect, "list": cmd_list, "dump": cmd_dump}[args.command](args, kind, out)
    finally:
        out.close()
    return report_damage(args, kind)


def main(argv: Iterable[str] | None = None) -> int:
    try:
        return run(list(sys.argv[1:] if argv is None else argv))
    except ToolError as err:
        print(f"Error: {err}", file=sys.stderr)
    except BrokenPipeError:
        return 0
    except Exception as err:  # every failure is reported as "<ErrorName>: <message>", status 1
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
