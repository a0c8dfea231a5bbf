"""The embedding examples: each runs a one-peer cluster in a process of its own, becomes
leader, commits updates from a client, which a subscriber reads back, and closes gracefully on
SIGTERM."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from subscriber import read_until
from zmqraft.client import Client

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_line(path: Path, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in:\n{path.read_text(errors='replace')}")
        time.sleep(0.05)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("app", ["asyncio_app.py", "gevent_app.py"])
def test_an_embedded_peer_serves_and_closes_on_sigterm(app: str, tmp_path: Path) -> None:
    url = f"tcp://127.0.0.1:{free_port()}"
    secret = os.urandom(6).hex()
    config = tmp_path / "cluster.json"
    peer = {"id": "1", "url": url, "pub": f"tcp://127.0.0.1:{free_port()}"}
    config.write_text(json.dumps({"peers": [peer], "data": {"path": str(tmp_path)}, "secret": secret}))
    out = tmp_path / "out.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / app), str(config), "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=HERE,
        )
    try:
        wait_for_line(out, "state: LEADER")
        with Client([url], secret=secret, rpc_timeout=10) as client:
            assert client.request_update(b"hello") > 0
            assert client.request_update(b"world") > 0
        assert read_until([url], b"world", secret) == [b"hello", b"world"]
        proc.terminate()
        assert proc.wait(15) == 0, out.read_text()
    finally:
        proc.kill()
        proc.wait()
    text = out.read_text()
    assert f"listening at {url}" in text and text.rstrip().endswith("closed")
