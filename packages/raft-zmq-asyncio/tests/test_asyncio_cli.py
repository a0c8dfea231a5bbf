"""zmq-raft's option precedence: config file, id, the peer's own pub/www, then -b/-p/-w."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from zmqraft.asyncio.cli import main, parser, server_options


def test_no_arguments_is_the_single_default_peer() -> None:
    opts = server_options(parser().parse_args([]))
    assert opts["id"] == "local"
    assert opts["peers"] == [{"id": "local", "url": "tcp://127.0.0.1:8047"}]
    assert opts["data"]["path"] == "raft"
    assert opts["broadcast"]["url"] == "tcp://127.0.0.1:8048"


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    peers = [
        {"id": "1", "url": "tcp://127.0.0.1:8047", "pub": "tcp://127.0.0.1:8048", "www": "http://h1:8050"},
        {"id": "2", "url": "tcp://127.0.0.1:8147", "pub": "tcp://127.0.0.1:8148"},
    ]
    config.write_text(json.dumps({"other": {"id": "2", "peers": peers, "broadcast": {"url": "tcp://x:1"}}}))
    opts = server_options(parser().parse_args(["-c", str(config), "--ns", "other"]))
    assert opts["id"] == "2" and opts["broadcast"]["url"] == "tcp://127.0.0.1:8148"
    opts = server_options(parser().parse_args(["-c", str(config), "--ns", "other", "1"]))
    assert opts["broadcast"]["url"] == "tcp://127.0.0.1:8048"
    assert (opts["webmonitor"]["host"], opts["webmonitor"]["port"]) == ("h1", 8050)
    args = ["-c", str(config), "--ns", "other", "-b", "tcp://*:9", "-p", "tcp://127.0.0.1:7", "-w", "w:1"]
    opts = server_options(parser().parse_args([*args, "1"]))
    assert opts["router"]["bind"] == "tcp://*:9"
    assert opts["broadcast"]["url"] == "tcp://127.0.0.1:7"
    assert (opts["webmonitor"]["host"], opts["webmonitor"]["port"]) == ("w", 1)


def test_init_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"raft": {"peers": [["1", "tcp://127.0.0.1:1"], ["2", "tcp://127.0.0.1:2"]]}}))
    assert main(["-c", str(config)]) == 1  # two peers and no id
    assert "RAFT INIT ERROR" in capsys.readouterr().err
    assert main(["-c", str(tmp_path / "c.ini")]) == 1
    assert "Unrecognized config file type" in capsys.readouterr().err
