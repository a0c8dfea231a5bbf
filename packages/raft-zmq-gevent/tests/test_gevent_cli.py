"""``zmq-raft-gevent``: a single peer from the command line (a real process) and init errors
(the option precedence both runtimes share is tested with ``zmqraft.core.command_line``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from raft_harness import free_ports as ports
from zmqraft.client import Client
from zmqraft.gevent.cli import main

pytestmark = pytest.mark.timeout(60)


def command() -> list[str]:
    """The installed script next to this interpreter, else ``python -m zmqraft.gevent``."""
    script = shutil.which("zmq-raft-gevent", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "zmqraft.gevent"]


def test_the_cli_runs_a_single_peer(tmp_path: Path) -> None:
    router, pub = ports(2)
    url = f"tcp://127.0.0.1:{router}"
    config = tmp_path / "peer.json"
    config.write_text(json.dumps({"raft": {"peers": [["solo", url]], "data": {"path": str(tmp_path / "d")}}}))
    out = tmp_path / "out.log"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [*command(), "-c", str(config), "-p", f"tcp://127.0.0.1:{pub}", "solo"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    try:
        deadline = time.monotonic() + 15
        while f"server listening at: {url}" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.02)
        with Client([url], rpc_timeout=10.0) as client:
            assert [client.request_update(b"cli %d" % n) for n in range(3)] == [1, 2, 3]
            assert client.request_broadcast_url() == f"tcp://127.0.0.1:{pub}"
            info = client.request_log_info()
            assert info.is_leader and info.leader_id == "solo" and info.last_applied == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text()
    assert "SIGINT received: closing" in text and text.rstrip().endswith("bye bye")


def test_init_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps({"raft": {"peers": [["1", "tcp://127.0.0.1:1"], ["2", "tcp://127.0.0.1:2"]]}})
    )
    assert main(["-c", str(config)]) == 1  # two peers and no id
    assert "RAFT INIT ERROR" in capsys.readouterr().err
    assert main(["-c", str(tmp_path / "c.ini")]) == 1
    assert "Unrecognized config file type" in capsys.readouterr().err
