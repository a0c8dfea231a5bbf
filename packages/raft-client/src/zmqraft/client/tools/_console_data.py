"""The console's flood items: msgpack maps ``{iteration, data, time}`` whose ``time`` is a
Date (msgpack ext type 0x0D, a float64 of milliseconds; storage.md §0), as the original's
console writes them, so ``.verify`` can check a log written by either console."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import msgpack

DATE_EXT = 0x0D


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
