"""Log directory layout: where the index file of a log index lives (spec/storage.md §5).

The base name of an index file is its first index in 14 lowercase hex digits; it sits in
``<logdir>/<name[0:5]>/<name[5:7]>/<name[7:9]>/<name>.rlog``, so one leaf directory covers
2^20 indexes.  Scans accept only names of exactly that shape, in lexicographic (= numeric)
order.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Iterator

from ..base import StorageError

MAX_INDEX = (1 << 53) - 1
NAME_DIGITS = 14
_LEVELS = (re.compile(r"^[0-9a-f]{5}$"), re.compile(r"^[0-9a-f]{2}$"), re.compile(r"^[0-9a-f]{2}$"))
_FILE = re.compile(r"^[0-9a-f]{14}\.rlog$")


def index_name(index: int) -> str:
    return f"{index:014x}"


def leaf_parts(name: str) -> tuple[str, str, str]:
    return name[0:5], name[5:7], name[7:9]


def leaf_prefix(index: int) -> str:
    """The 9 hex digits that name the leaf directory of ``index``."""
    return index_name(index)[:9]


def leaf_dir(log_dir: str, index: int) -> str:
    return os.path.join(log_dir, *leaf_parts(index_name(index)))


def index_file_path(log_dir: str, index: int) -> str:
    name = index_name(index)
    return os.path.join(log_dir, *leaf_parts(name), name + ".rlog")


def parse_index_path(path: str) -> int:
    """The first index encoded in an index file path; the directory parts must match the
    name's prefixes (else "invalid log filename")."""
    head, base = os.path.split(path)
    head, d3 = os.path.split(head)
    head, d2 = os.path.split(head)
    _, d1 = os.path.split(head)
    if not _FILE.match(base):
        raise StorageError("invalid log filename", path)
    name = base[:NAME_DIGITS]
    if (d1, d2, d3) != leaf_parts(name):
        raise StorageError("invalid log filename", path)
    return int(name, 16)


def _sorted_matching(directory: str, pattern: re.Pattern[str], want_dir: bool, reverse: bool) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    out = []
    for name in names:
        if not pattern.match(name):
            continue
        full = os.path.join(directory, name)
        if os.path.isdir(full) == want_dir:
            out.append(name)
    out.sort(reverse=reverse)
    return out


def iter_index_files(log_dir: str, reverse: bool = False) -> Iterator[str]:
    """Every index file path in ``log_dir`` in index order (or reversed); empty intermediate
    directories are skipped."""

    def walk(directory: str, level: int) -> Iterator[str]:
        if level == len(_LEVELS):
            for name in _sorted_matching(directory, _FILE, False, reverse):
                yield os.path.join(directory, name)
            return
        for name in _sorted_matching(directory, _LEVELS[level], True, reverse):
            yield from walk(os.path.join(directory, name), level + 1)

    yield from walk(log_dir, 0)


def first_and_last(log_dir: str) -> tuple[str, str] | None:
    first = next(iter_index_files(log_dir), None)
    if first is None:
        return None
    last = next(iter_index_files(log_dir, reverse=True))
    return first, last


def list_leaf(log_dir: str, prefix: str) -> list[str]:
    """Sorted index file base names (``<14 hex>.rlog``) in the leaf directory ``prefix``."""
    directory = os.path.join(log_dir, prefix[0:5], prefix[5:7], prefix[7:9])
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if len(n) == 19 and _FILE.match(n))


def pick_name(names: list[str], index: int) -> str | None:
    """Greatest name ``<=`` the name of ``index`` (binary search), or None."""
    wanted = index_name(index) + ".rlog"
    pos = bisect_right(names, wanted)
    return names[pos - 1] if pos else None
