"""Following a cluster's committed entries with ``Subscriber`` (needs the default broadcast
state machine, which publishes every applied batch)."""

from __future__ import annotations

from zmqraft.client import Subscriber


# --8<-- [start:subscribe]
def read_until(urls: list[str], last: bytes, secret: str = "") -> list[bytes]:
    """Every committed update from the start of the log, in order, up to ``last``."""
    seen = []
    with Subscriber(urls, secret=secret, from_index=0) as sub:
        for entry in sub:  # `async for` under asyncio; gaps are filled, nothing is repeated
            seen.append(entry.data)
            if entry.data == last:
                break
        print(f"resume later with from_index={sub.last_index}")
    return seen


# --8<-- [end:subscribe]
