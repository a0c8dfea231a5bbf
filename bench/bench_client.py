"""What the client library costs over raw frames, against one three-peer asyncio cluster.

Each figure is a ratio against a baseline measured in the same run on the same cluster:

* ``AsyncClient`` with 64 ``request_update`` tasks in flight vs a raw DEALER keeping 64
  RequestUpdates in flight (``bench_cluster``'s loop);
* a blocking ``Client``, one update at a time, vs a raw DEALER sending one at a time;
* reading the whole log with ``Client.request_entries`` vs a raw RequestEntries loop.

Environment: ``ZMQRAFT_BENCH_SECONDS`` (per measurement, default 5), ``ZMQRAFT_BENCH_HWM``
(the AsyncClient's ``highwatermark``, default the client's own: 1000; the original's 2 gives
about 0.6 x raw with 64 in flight).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).parent))
from bench_cluster import Bench
from zmqraft.client import AsyncClient, Client, Entry
from zmqraft.core.protocol import messages as m

INFLIGHT = 64
HWM = int(os.environ.get("ZMQRAFT_BENCH_HWM", "1000"))
PAYLOAD = b"x" * 100


async def async_client_rate(urls: list[str], seconds: float) -> float:
    async with AsyncClient(urls, rpc_timeout=30.0, highwatermark=HWM) as client:
        await client.request_config()
        done = 0
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < end:
                await client.request_update(PAYLOAD)
                done += 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(INFLIGHT)))
        return done / (time.monotonic() - began)


def blocking_client_rate(urls: list[str], seconds: float) -> float:
    with Client(urls, rpc_timeout=30.0) as client:
        client.request_config()
        done = 0
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            client.request_update(PAYLOAD)
            done += 1
        return done / (time.monotonic() - began)


def raw_entries_rate(bench: Bench, url: str) -> tuple[int, float]:
    """Entries per second of a raw RequestEntries stream over the whole log."""
    sock = bench._sock(url)
    rid = bench.ids.next(time.time())
    count = 0
    began = time.monotonic()
    sock.send_multipart(m.RequestEntries(rid, 0).encode(b""))
    try:
        while sock.poll(5000):
            reply = m.RequestEntriesReply.decode(sock.recv_multipart())
            count += len(reply.entries)
            if reply.status is m.EntriesStatus.LAST:
                break
            sock.send_multipart(m.RequestEntries(rid, reply.last_index).encode(b""))
    finally:
        sock.close(0)
    return count, count / (time.monotonic() - began)


def client_entries_rate(urls: list[str]) -> tuple[int, float]:
    with Client(urls, rpc_timeout=30.0) as client:
        client.request_config()
        began = time.monotonic()
        count = sum(1 for item in client.request_entries(0) if isinstance(item, Entry))
        return count, count / (time.monotonic() - began)


def main() -> None:
    seconds = float(os.environ.get("ZMQRAFT_BENCH_SECONDS", "5"))
    root = Path(tempfile.mkdtemp(prefix="zmqraft-bench-client-"))
    bench = Bench(root)
    try:
        leader = bench.leader()
        urls = list(bench.urls.values())
        bench.run(1.0, INFLIGHT, len(PAYLOAD))  # warm-up
        done, elapsed, _ = bench.run(seconds, INFLIGHT, len(PAYLOAD))
        raw64 = done / elapsed
        client64 = asyncio.run(async_client_rate(urls, seconds))
        print(
            f"{INFLIGHT} in flight: raw DEALER {raw64:,.0f} updates/s; "
            f"AsyncClient {client64:,.0f} updates/s = {client64 / raw64:.2f} x raw"
        )
        done, elapsed, _ = bench.run(seconds, 1, len(PAYLOAD))
        raw1 = done / elapsed
        client1 = blocking_client_rate(urls, seconds)
        print(
            f"1 in flight: raw DEALER {raw1:,.0f} updates/s; Client {client1:,.0f} updates/s "
            f"= {client1 / raw1:.2f} x raw"
        )
        leader_url = bench.urls[leader]
        count, raw_read = raw_entries_rate(bench, leader_url)
        count2, client_read = client_entries_rate(urls)
        print(
            f"reading the log ({count:,} / {count2:,} entries): raw {raw_read:,.0f} entries/s; "
            f"Client.request_entries {client_read:,.0f} entries/s = {client_read / raw_read:.2f} x raw"
        )
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)
        zmq.Context.instance().term()


if __name__ == "__main__":
    main()
