"""A zmq-raft peer over plain asyncio TCP streams: no ZeroMQ.  The porting guide.

The core (``zmqraft.core``) never touches a socket, a thread or a clock.  A runtime owns
those and drives one object, ``zmqraft.core.driver.PeerDriver``:

* feed it what arrives: ``receive_router`` (a request from a client or another peer, with an
  opaque routing id to answer it by) and ``receive_peer`` (a reply from a peer we called),
  each stamped with the time it was read;
* call ``round(now, wall)`` after a batch of inputs and act on the ``Outputs`` in order:
  start the ``work`` (storage writes, state machine batches; one at a time per lane), connect
  to a new configuration (``connect``), send the frames (``router``: replies, ``peers``:
  RPCs, ``pub``: broadcasts, which this runtime has not);
* report finished work with ``complete`` and call ``handle_timer`` when ``next_deadline()``
  has passed, each followed by a round.

That is all a transport does; the ZeroMQ runtimes (``zmqraft.asyncio``, ``zmqraft.gevent``)
do the same with ROUTER/DEALER sockets.  Here a message is a list of frames on a TCP stream:
a 4-byte big-endian frame count, then each frame as a 4-byte big-endian length and its bytes.
Each peer listens at the host and port of its ``tcp://`` url (its ROUTER) and keeps one
connection to every other peer (its DEALERs).  Only peers speaking this framing can join:
the frames inside are the zmq-raft wire protocol, unchanged.

    python tcp_peer.py cluster.json 1      # cluster.json: the options (peers, data, secret)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from zmqraft.core.builder import assemble
from zmqraft.core.driver import Lane, PeerDriver, Work
from zmqraft.core.statemachine import StateMachine

log = logging.getLogger("zmqraft.example.tcp")

# --8<-- [start:framing]
U32 = struct.Struct(">I")
MAX_FRAMES = 10_000  # per message: an AppendEntries carries one frame per entry
MAX_FRAME = 64 << 20  # bytes per frame
SEND_BUFFER = 8 << 20  # a connection that holds this much unsent drops messages (as a full HWM)
RECONNECT = 0.1  # seconds between attempts to reach a peer


def encode(frames: Sequence[bytes]) -> bytes:
    """One message: frame count, then each frame length-prefixed."""
    out = [U32.pack(len(frames))]
    for frame in frames:
        out += (U32.pack(len(frame)), frame)
    return b"".join(out)


async def read_message(reader: asyncio.StreamReader) -> list[bytes]:
    """The next message; ``ValueError`` for a stream that breaks the framing's limits,
    ``asyncio.IncompleteReadError`` at the end of the stream."""
    (count,) = U32.unpack(await reader.readexactly(4))
    if not 0 < count <= MAX_FRAMES:
        raise ValueError(f"bad frame count {count}")
    frames = []
    for _ in range(count):
        (size,) = U32.unpack(await reader.readexactly(4))
        if size > MAX_FRAME:
            raise ValueError(f"frame of {size} bytes")
        frames.append(await reader.readexactly(size))
    return frames


# --8<-- [end:framing]


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"not a tcp://host:port url: {url}")
    return parts.hostname, parts.port


def clock() -> tuple[float, float]:
    return time.monotonic(), time.time()


# --8<-- [start:peer]
class TcpPeer:
    """One peer: a listening socket, a ``Link`` per other peer, a task per work lane."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.peer = assemble(options, now=time.monotonic(), wall=time.time())  # files, node, machine
        self.driver = PeerDriver.of(self.peer, logger=log)
        self.clients: dict[bytes, asyncio.StreamWriter] = {}  # routing id -> inbound connection
        self.links: dict[str, Link] = {}  # peer id -> our connection to it
        self.lanes: dict[Lane, asyncio.Queue[Work]] = {lane: asyncio.Queue() for lane in Lane}
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._round_due = False
        self._timer: asyncio.TimerHandle | None = None

    async def serve(self) -> None:
        """Listen, connect, run until ``close()``; then finish the work in flight."""
        host, port = host_port(self.peer.router_bind)
        server = await asyncio.start_server(self._accept, host, port)
        lanes = [asyncio.create_task(self._run_lane(queue)) for queue in self.lanes.values()]
        self._connect(self.peer.others)
        self._round()
        log.info("%s: listening at %s:%d", self.driver.id, host, port)
        try:
            await self.closed.wait()
        finally:
            server.close()
            for link in self.links.values():
                link.close()
            for queue in self.lanes.values():
                await queue.join()  # a started write is finished, never cut off
            for task in lanes:
                task.cancel()
            if self._timer is not None:
                self._timer.cancel()
            self.peer.close()  # the state machine, the log, the persistence
            self.driver.close()

    def close(self) -> None:
        self.closed.set()

    # ---- inputs: every one is followed by a round (one per loop iteration, for a batch)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        routing_id = next(self._ids).to_bytes(4, "big")
        self.clients[routing_id] = writer
        try:
            while True:
                frames = await read_message(reader)
                self.driver.receive_router(routing_id, frames, *clock())
                self._schedule_round()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # the connection ends; the peer goes on
        finally:
            del self.clients[routing_id]
            writer.close()

    def _schedule_round(self) -> None:
        if not self._round_due:
            self._round_due = True
            asyncio.get_running_loop().call_soon(self._round)

    def _on_timer(self) -> None:
        self._timer = None
        self.driver.handle_timer(*clock())
        self._round()

    async def _run_lane(self, queue: asyncio.Queue[Work]) -> None:
        """One item at a time, in order, in a thread (``work.run()`` never raises)."""
        while True:
            work = await queue.get()
            outcome = await asyncio.to_thread(work.run)
            self.driver.complete(work, outcome, *clock())
            queue.task_done()
            self._schedule_round()

    # ---- the round: act on the outputs in their order

    def _round(self) -> None:
        self._round_due = False
        if self.closed.is_set():
            return
        out = self.driver.round(*clock())
        for work in out.work:
            self.lanes[work.lane].put_nowait(work)
        if out.connect is not None:
            self._connect(dict(out.connect.others(self.driver.id)))
        for routing_id, frames in out.router:
            writer = self.clients.get(routing_id)
            if writer is not None:  # else the client left: its reply is dropped
                writer.write(encode(frames))
        for peer_id, frames in out.peers:
            link = self.links.get(peer_id)
            if link is not None:
                link.send(frames)
        if self.driver.failure is not None:  # a storage or state machine failure is fatal
            self.close()
            return
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.driver.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _connect(self, others: dict[str, str]) -> None:
        """A ``Link`` to every peer of the configuration (peer id -> url), no others."""
        for peer_id in list(self.links):
            if others.get(peer_id) != self.links[peer_id].url:
                self.links.pop(peer_id).close()
        for peer_id, url in others.items():
            if peer_id not in self.links:
                self.links[peer_id] = Link(self, peer_id, url)


# --8<-- [end:peer]


# --8<-- [start:link]
class Link:
    """Our connection to another peer: RPCs out, their replies in; reconnects forever.
    A message sent while it is down is dropped: the core retransmits what matters."""

    def __init__(self, peer: TcpPeer, peer_id: str, url: str) -> None:
        self.peer, self.peer_id, self.url = peer, peer_id, url
        self.writer: asyncio.StreamWriter | None = None
        self.task = asyncio.create_task(self._run())

    def send(self, frames: Sequence[bytes]) -> None:
        writer = self.writer
        if writer is not None and writer.transport.get_write_buffer_size() < SEND_BUFFER:
            writer.write(encode(frames))

    def close(self) -> None:
        self.task.cancel()
        if self.writer is not None:
            self.writer.close()

    async def _run(self) -> None:
        driver = self.peer.driver
        while True:
            try:
                reader, self.writer = await asyncio.open_connection(*host_port(self.url))
                while True:
                    frames = await read_message(reader)
                    driver.receive_peer(self.peer_id, frames, *clock())
                    self.peer._schedule_round()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                if self.writer is not None:
                    self.writer.close()
                    self.writer = None
            await asyncio.sleep(RECONNECT)


# --8<-- [end:link]


async def main(config_path: str, peer_id: str) -> None:
    with open(config_path) as file:
        options = json.load(file)
    options["id"] = peer_id
    # the state machine: the base class only counts what it applies (the kvstore example has
    # a real one); it broadcasts nothing, which suits a runtime without a PUB socket
    options["factory"] = {"state": lambda _options: StateMachine()}
    peer = TcpPeer(options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, peer.close)
    await peer.serve()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
