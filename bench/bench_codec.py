"""Codec micro-benchmark: encode / decode an AppendEntries carrying 100 entries of 100 bytes.

Figures are ops/s and ratios against baselines measured in the same run:

* ``list build``: the cheapest possible frame list, ``[header frames...] + list(entries)`` with
  the header frames already encoded (what encode can at best approach; decode's counterpart is
  ``tuple(frames[8:])``);
* ``msgpack``: ``msgpack.packb`` / ``unpackb`` of the equivalent ``[id, leader, term, prev,
  prev_term, commit, [entries...]]`` list, i.e. a serialise-everything-into-one-blob protocol.

A ratio of 0.5 means half the operations per second of the baseline.  Nothing is asserted.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

try:
    import zmqraft.core.protocol  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "raft-core" / "src"))

import msgpack
from zmqraft.core.protocol import AppendEntries, EntryType, encode_entry, encode_uint

ENTRIES = 100
ENTRY_SIZE = 100  # whole entry: 20-byte header + 80 data bytes
IDENT = b"secret"


def _ops_per_second(fn: Callable[[], object]) -> float:
    timer = timeit.Timer(fn)
    loops, _ = timer.autorange()
    best = min(timer.repeat(repeat=5, number=loops))
    return loops / best


def main() -> None:
    entries = tuple(
        encode_entry(
            bytes(range(i % 200, i % 200 + 12)), EntryType.STATE, 7, bytes([i % 256]) * (ENTRY_SIZE - 20)
        )
        for i in range(ENTRIES)
    )
    msg = AppendEntries(12345, "peer-1", 7, 1000, 7, 990, entries)
    frames = msg.encode(IDENT)
    header = frames[:8]
    assert AppendEntries.decode(frames) == msg
    as_list = [12345, "peer-1", 7, 1000, 7, 990, list(entries)]
    packed = msgpack.packb(as_list, use_bin_type=True)

    def baseline_encode() -> list[bytes]:
        return [*header, *entries]

    def baseline_decode() -> tuple[bytes, ...]:
        return tuple(frames[8:])

    def full_encode() -> list[bytes]:  # what a hand-written encoder without checks would do
        return [
            encode_uint(12345),
            b"+",
            IDENT,
            b"peer-1",
            encode_uint(7),
            encode_uint(1000),
            encode_uint(7),
            encode_uint(990),
            *entries,
        ]

    results = {
        "encode": _ops_per_second(lambda: msg.encode(IDENT)),
        "decode": _ops_per_second(lambda: AppendEntries.decode(frames)),
        "list build (encode baseline)": _ops_per_second(baseline_encode),
        "tuple(frames[8:]) (decode baseline)": _ops_per_second(baseline_decode),
        "unchecked uint encode + list": _ops_per_second(full_encode),
        "msgpack.packb": _ops_per_second(lambda: msgpack.packb(as_list, use_bin_type=True)),
        "msgpack.unpackb": _ops_per_second(lambda: msgpack.unpackb(packed, raw=False)),
    }
    size = sum(len(f) for f in frames)
    print(f"AppendEntries with {ENTRIES} entries of {ENTRY_SIZE} bytes ({len(frames)} frames, {size} bytes)")
    for name, ops in results.items():
        print(f"  {name:<38} {ops:>12,.0f} ops/s")
    enc, dec = results["encode"], results["decode"]
    print("ratios (ours / baseline, higher is better):")
    print(f"  encode / list build                    {enc / results['list build (encode baseline)']:.3f}")
    print(f"  encode / unchecked uint encode + list  {enc / results['unchecked uint encode + list']:.3f}")
    print(f"  encode / msgpack.packb                 {enc / results['msgpack.packb']:.3f}")
    print(
        f"  decode / tuple(frames[8:])             {dec / results['tuple(frames[8:]) (decode baseline)']:.3f}"
    )
    print(f"  decode / msgpack.unpackb               {dec / results['msgpack.unpackb']:.3f}")


if __name__ == "__main__":
    main()
