"""The command line both server runtimes share (``zmqraft.core.command_line``): option
precedence is config file, then the id, then the peer's own pub/www, then -b/-p/-w."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zmqraft.core.command_line import server_options, server_parser


def parse(argv: list[str]) -> argparse.Namespace:
    return server_parser("zmq-raft", "test").parse_args(argv)


def test_no_arguments_is_the_single_default_peer() -> None:
    opts = server_options(parse([]))
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
    opts = server_options(parse(["-c", str(config), "--ns", "other"]))
    assert opts["id"] == "2" and opts["broadcast"]["url"] == "tcp://127.0.0.1:8148"
    opts = server_options(parse(["-c", str(config), "--ns", "other", "1"]))
    assert opts["broadcast"]["url"] == "tcp://127.0.0.1:8048"
    assert (opts["webmonitor"]["host"], opts["webmonitor"]["port"]) == ("h1", 8050)
    args = ["-c", str(config), "--ns", "other", "-b", "tcp://*:9", "-p", "tcp://127.0.0.1:7", "-w", "w:1"]
    opts = server_options(parse([*args, "1"]))
    assert opts["router"]["bind"] == "tcp://*:9"
    assert opts["broadcast"]["url"] == "tcp://127.0.0.1:7"
    assert (opts["webmonitor"]["host"], opts["webmonitor"]["port"]) == ("w", 1)


def test_a_peer_entry_gives_its_own_metrics_address(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    peers = [
        {"id": "1", "url": "tcp://127.0.0.1:8047", "metrics": "127.0.0.1:9101"},
        {"id": "2", "url": "tcp://127.0.0.1:8147", "metrics": "http://[::1]:9102"},
    ]
    config.write_text(json.dumps({"raft": {"peers": peers, "metrics": {"enable": True}}}))
    one = server_options(parse(["-c", str(config), "1"]))["metrics"]
    assert one == {"enable": True, "host": "127.0.0.1", "port": 9101}
    assert server_options(parse(["-c", str(config), "2"]))["metrics"]["host"] == "::1"
