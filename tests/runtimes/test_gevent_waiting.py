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


def test_waited_work_blocks_the_hub_thread_only_until_it_ran_or_the_wait_ends() -> None:
    """``_Waited``: work run in a threadpool thread at once; waiting on its ``handover``
    blocks the calling thread itself (no hub round-trip) until it ran or the timeout passed,
    and the result still reports it through the hub afterwards."""
    from zmqraft.core.driver import Lane, Work
    from zmqraft.gevent.server import _Waited

    pool = gevent.get_hub().threadpool
    quick = _Waited(Work(Lane.STORAGE, "q", 0.0, lambda: "q"), pool)  # type: ignore[arg-type]
    assert quick.handover.wait(quick.work, 5.0) == (True, "q")
    slow = _Waited(Work(Lane.STORAGE, "s", 0.0, lambda: time.sleep(0.3) or "s"), pool)  # type: ignore[arg-type]
    began = time.monotonic()
    assert slow.handover.wait(slow.work, 0.02) == (False, None) and time.monotonic() - began < 0.25
    assert slow.handover.wait(slow.work, 0.0) == (False, None)  # given up: not waited for again
    assert slow.result.get(timeout=5) == "s"  # the hub hears of it through the result
    assert slow.handover.wait(slow.work, 0.0) == (False, None)
