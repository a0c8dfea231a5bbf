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
