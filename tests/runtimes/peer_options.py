"""Options of an in-process test peer: a single peer on ephemeral ports (shared by the
runtime suite and the tests of one runtime's waiting model)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


def ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    found = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return found


def single(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    router, pub = ports(2)
    return {
        "id": "1",
        "peers": [["1", f"tcp://127.0.0.1:{router}"]],
        "data": {"path": str(tmp_path / "data")},
        "broadcast": {"url": f"tcp://127.0.0.1:{pub}"},
        **extra,
    }
