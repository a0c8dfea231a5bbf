"""What only the gevent runtime does: the peer runs in greenlets of the caller's hub.  A
listener runs in the peer's own greenlet, so close() there must only ask; a ``Subscriber`` on
a ``zmq.green`` context reads while another greenlet writes.  Every other in-process behaviour
is the shared suite's (tests/runtimes), run with each runtime."""

from __future__ import annotations

import time
from pathlib import Path

import gevent
import pytest
import zmq.green
from peer_options import single
from zmqraft.client import Client, Entry, Subscriber
from zmqraft.core.raft.node import Role
from zmqraft.gevent import ZmqRaft, build

pytestmark = pytest.mark.timeout(60)


def test_close_from_a_listener_does_not_deadlock(tmp_path: Path) -> None:
    holder: list[ZmqRaft] = []

    def on_state(role: Role, term: int) -> None:
        if role is Role.LEADER:
            holder[0].close()

    raft = build(single(tmp_path, listeners={"state": on_state}))
    holder.append(raft)
    raft.start()
    try:
        assert raft.wait_closed(5) and raft.error is None
    finally:
        raft.close()


def test_subscriber_under_gevent(tmp_path: Path) -> None:
    options = single(tmp_path)
    url = options["peers"][0][1]
    ctx = zmq.green.Context()
    client = Client([url], peers=[["1", url]], rpc_timeout=5.0, context=ctx)
    try:
        with build(options):
            writer = gevent.spawn(lambda: [client.request_update(f"g{n}".encode()) for n in range(50)])
            got: list[bytes] = []
            with Subscriber([url], peers=[["1", url]], context=ctx) as sub:
                deadline = time.monotonic() + 15.0
                while len(got) < 50:
                    assert time.monotonic() < deadline, f"only {len(got)} entries"
                    item = sub.read(timeout=1.0)
                    if isinstance(item, Entry):
                        got.append(item.data)
            indexes = writer.get(timeout=10)
    finally:
        client.close()
        ctx.term()
    assert got == [f"g{n}".encode() for n in range(50)] and len(indexes) == 50
