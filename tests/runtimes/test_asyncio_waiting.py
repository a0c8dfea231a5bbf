"""What only the asyncio runtime does: how ``async with raft:`` waits.  An exception of the
block propagates as it is, and cancelling the block closes the peer.  Every other in-process
behaviour is the shared suite's (tests/runtimes), run with each runtime."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from peer_options import single
from zmqraft.asyncio import build

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_exceptions_propagate_and_cancellation_closes(tmp_path: Path) -> None:
    closed: list[bool] = []
    options = single(tmp_path, listeners={"close": lambda: closed.append(True)})
    with pytest.raises(KeyError, match="boom"):
        async with build(options):
            raise KeyError("boom")
    assert closed == [True]
    with anyio.move_on_after(0.3):
        async with build(options) as raft:
            await anyio.sleep(10)
    assert closed == [True, True]  # closed by the time the cancelled block is left
    with anyio.fail_after(1):
        await raft.wait_closed()
    async with build(options) as again:  # everything was released: the files open again
        assert again.peer.log.last_index >= 0


def test_a_lane_hands_waited_work_to_the_waiter_or_else_to_the_loop() -> None:
    """``LaneThread.wait``: the outcome of work put with ``waited`` goes to the waiting loop
    when it ran in time, and is posted to the loop exactly once when the wait gave up."""
    import asyncio
    import threading
    import time

    from zmqraft.asyncio.server import LaneThread
    from zmqraft.core.driver import Lane, Work

    async def main() -> None:
        loop = asyncio.get_running_loop()
        posted: list[tuple[Work, object]] = []
        arrived = asyncio.Event()

        def done(work: Work, outcome: object) -> None:
            posted.append((work, outcome))
            arrived.set()

        lane = LaneThread("t", loop, done)
        release = threading.Event()
        quick = Work(Lane.STORAGE, "quick", 0.0, lambda: "q", wait=1.0)  # type: ignore[arg-type]
        slow = Work(Lane.STORAGE, "slow", 0.0, lambda: release.wait(5) and "s", wait=1.0)  # type: ignore[arg-type]
        plain = Work(Lane.STORAGE, "plain", 0.0, lambda: "p")  # type: ignore[arg-type]
        lane.put(quick, waited=True)
        assert lane.wait(quick, 1.0) == (True, "q")
        lane.put(slow, waited=True)
        began = time.monotonic()
        assert lane.wait(slow, 0.02) == (False, None)  # gave up: the loop will hear of it
        assert time.monotonic() - began < 0.5
        release.set()
        await asyncio.wait_for(arrived.wait(), 5)
        lane.put(plain)
        assert lane.wait(plain, 0.01) == (False, None)  # not put with waited: never handed over
        for _ in range(100):
            if len(posted) == 2:
                break
            await asyncio.sleep(0.01)
        await lane.stop()
        assert posted == [(slow, "s"), (plain, "p")]

    asyncio.run(main())
