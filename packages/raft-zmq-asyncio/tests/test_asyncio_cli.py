"""zmq-raft's init errors (the option precedence is tested with zmqraft.core.command_line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from zmqraft.asyncio.cli import main


def test_init_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps({"raft": {"peers": [["1", "tcp://127.0.0.1:1"], ["2", "tcp://127.0.0.1:2"]]}})
    )
    assert main(["-c", str(config)]) == 1  # two peers and no id
    assert "RAFT INIT ERROR" in capsys.readouterr().err
    assert main(["-c", str(tmp_path / "c.ini")]) == 1
    assert "Unrecognized config file type" in capsys.readouterr().err
