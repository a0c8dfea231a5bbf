"""Cluster configurations: voter groups, join validation, (de)serialisation (the counting: test_quorum.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.cluster import (
    ClusterConfig,
    ConfigBusyError,
    ConfigError,
    parse_peers,
    validate_peer_url,
)
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol import mpack

U1, U2, U3 = "tcp://127.0.0.1:9047", "tcp://127.0.0.1:9147", "tcp://127.0.0.1:9247"
U4, U5 = "tcp://127.0.0.1:9347", "tcp://127.0.0.1:9447"
P3 = (("1", U1), ("2", U2), ("3", U3))
C3 = ClusterConfig(P3)
JOINT = ClusterConfig(P3, (("1", U1), ("4", U4), ("5", U5)))
GOLDEN = Path(__file__).parents[3] / "tests" / "interop" / "golden" / "wire" / "config_update_invalid.json"


# ---- membership views ---------------------------------------------------------------------------


def test_voter_groups() -> None:
    assert C3.voters == (frozenset({"1", "2", "3"}),)
    assert JOINT.voters == (frozenset({"1", "2", "3"}), frozenset({"1", "4", "5"}))
    assert ClusterConfig(()).voters == (frozenset(),)


def test_union_order_and_views() -> None:
    cfg = ClusterConfig(P3, (("3", U3), ("4", U4), ("1", U1)))
    assert cfg.is_joint
    assert cfg.peers_union() == (("1", U1), ("2", U2), ("3", U3), ("4", U4))
    assert cfg.ids == frozenset({"1", "2", "3", "4"})
    assert list(cfg.urls.items()) == [("1", U1), ("2", U2), ("3", U3), ("4", U4)]
    assert cfg.others("1") == (("2", U2), ("3", U3), ("4", U4))
    assert cfg.others("9") == cfg.peers_union()
    assert cfg.is_member("4") and cfg.is_member("2") and not cfg.is_member("5")
    assert cfg.final() == ClusterConfig((("3", U3), ("4", U4), ("1", U1)))
    assert not cfg.final().is_joint


def test_final_of_a_plain_config_is_an_error() -> None:
    with pytest.raises(ValueError):
        C3.final()


def test_empty_new_is_not_joint_and_configs_are_hashable() -> None:
    assert ClusterConfig(P3, ()) == C3
    assert not ClusterConfig(P3, ()).is_joint
    lists: Any = [list(p) for p in P3]
    assert ClusterConfig(lists) == C3
    assert len({C3, ClusterConfig(P3), JOINT}) == 2
    assert str(JOINT) == "ClusterConfig(old=[1,2,3] new=[1,4,5])"


# ---- serialisation ------------------------------------------------------------------------------


def test_to_json_and_entry_data() -> None:
    assert C3.to_json() == [["1", U1], ["2", U2], ["3", U3]]
    # the same bytes the original sends in RequestConfig frame 4 / writes in a C(new) entry
    assert C3.to_entry_data() == bytes.fromhex(
        "9392a131b47463703a2f2f3132372e302e302e313a3930343792a132b47463703a2f2f3132372e302e302e313a39"
        "31343792a133b47463703a2f2f3132372e302e302e313a39323437"
    )
    joint = JOINT.to_json()
    assert isinstance(joint, dict) and list(joint) == ["old", "new"]
    data = JOINT.to_entry_data()
    assert data.startswith(bytes.fromhex("82a36f6c6493"))  # {"old": [3 peers] ...
    assert bytes.fromhex("a36e657793") in data


@pytest.mark.parametrize("cfg", [C3, JOINT, ClusterConfig(P3[:1])], ids=str)
def test_round_trips(cfg: ClusterConfig) -> None:
    assert ClusterConfig.from_json(cfg.to_json()) == cfg
    assert ClusterConfig.from_entry_data(cfg.to_entry_data()) == cfg
    assert ClusterConfig.from_entry_data(memoryview(cfg.to_entry_data())) == cfg
    assert mpack.unpack(cfg.to_entry_data()) == cfg.to_json()


def test_from_json_accepts_the_other_peer_shapes() -> None:
    cfg = ClusterConfig.from_json([U1, {"id": "2", "url": U2}, {"url": U3}, ["4", U4]])
    assert cfg.old == ((U1, U1), ("2", U2), (U3, U3), ("4", U4))


@pytest.mark.parametrize(
    ("value", "name", "message"),
    [
        (42, "TypeError", "ClusterConfiguration: argument parsing error"),
        (None, "TypeError", "ClusterConfiguration: argument parsing error"),
        ({"old": [["1", U1]]}, "TypeError", "ClusterConfiguration: argument parsing error"),
        ({"old": "x", "new": []}, "TypeError", "ClusterConfiguration: argument parsing error"),
        (
            {"old": [["1", U1]], "new": [["1", U2]]},
            "AssertionError",
            "new peers must be consistent with current configuration",
        ),
        ({"old": [["1", U1]], "new": []}, "AssertionError", "at least one peer must be defined in a cluster"),
        ([["1", 5]], "AssertionError", "peer url must be a non empty string"),
        ([[1.0, U1]], "AssertionError", "peer id must be a non empty string"),
    ],
)
def test_from_json_errors(value: Any, name: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_json(value)
    assert (info.value.name, info.value.message) == (name, message)


def test_from_entry_data_bad_msgpack() -> None:
    with pytest.raises(ConfigError):
        ClusterConfig.from_entry_data(b"\x92\x01")


# ---- join ---------------------------------------------------------------------------------------


def test_join_returns_the_joint_configuration() -> None:
    joint = C3.join([["1", U1], ["2", U2], ["3", U3], ["4", U4]])
    assert joint == ClusterConfig(P3, (("1", U1), ("2", U2), ("3", U3), ("4", U4)))
    assert joint.to_json() == {"old": C3.to_json(), "new": [*C3.to_json(), ["4", U4]]}
    # removal and reordering are changes too
    assert C3.join([["2", U2], ["1", U1]]).new == (("2", U2), ("1", U1))
    assert C3.join([["3", U3], ["2", U2], ["1", U1]]).new == (("3", U3), ("2", U2), ("1", U1))
    # other element shapes
    assert C3.join([{"id": "1", "url": U1}, U4]).new == (("1", U1), (U4, U4))


def test_join_on_a_joint_config_is_busy() -> None:
    with pytest.raises(ConfigBusyError):
        JOINT.join([["1", U1]])
    with pytest.raises(ConfigBusyError):  # busy wins over validation, as in the original
        JOINT.join("not an array")
    assert not issubclass(ConfigBusyError, ConfigError)


JOIN_ERRORS: list[tuple[Any, str, str]] = [
    ("not an array", "TypeError", "peers must be an array"),
    (None, "TypeError", "peers must be an array"),
    ({"1": U1}, "TypeError", "peers must be an array"),
    ([["1", U1], ["2", U2], ["3", U3]], "Error", "no change in cluster membership"),
    ([{"id": "1", "url": U1}, ["2", U2], ["3", U3]], "Error", "no change in cluster membership"),
    ([["1", U1], ["2", U2], ["3", U3], ["", U4]], "AssertionError", "peer id must be a non empty string"),
    ([["1", U1], [7, U4]], "AssertionError", "peer id must be a non empty string"),
    ([["1", U1], []], "AssertionError", "peer id must be a non empty string"),
    ([["1", U1], {"id": None, "url": U4}], "AssertionError", "peer id must be a non empty string"),
    ([["1", U1], b"bytes"], "AssertionError", "peer id must be a non empty string"),
    ([["1", U1], ["1", U4]], "AssertionError", "peer id must be unique"),
    ([["1", U1], ["4", U1]], "AssertionError", "peer url must be unique"),
    ([["1", U4]], "AssertionError", "new peers must be consistent with current configuration"),
    ([["1", U1], ["4", U2]], "AssertionError", "new peers must be consistent with current configuration"),
    ([], "AssertionError", "at least one peer must be defined in a cluster"),
    (
        [["1", U1], 42],
        "AssertionError",
        "peer must be an url string or a tuple [id, url] or an object with 'url' and 'id' properties",
    ),
    (
        [None],
        "AssertionError",
        "peer must be an url string or a tuple [id, url] or an object with 'url' and 'id' properties",
    ),
    ([["4", None]], "AssertionError", "peer url must be a non empty string"),
    ([["4", "http://127.0.0.1:1"]], "AssertionError", "peer url protocol must be tcp:"),
    # the first failing element decides, checks of one element run in a fixed order
    ([["1", U4], ["", U5]], "AssertionError", "new peers must be consistent with current configuration"),
    ([["", "bad"]], "AssertionError", "peer id must be a non empty string"),
    ([["4", U1]], "AssertionError", "new peers must be consistent with current configuration"),
]


@pytest.mark.parametrize(("requested", "name", "message"), JOIN_ERRORS)
def test_join_errors(requested: Any, name: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        C3.join(requested)
    assert info.value.name == name
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.to_json() == {"name": name, "message": message}


def test_join_errors_byte_identical_to_the_golden_replies() -> None:
    """Replay the recorded ConfigUpdate requests against the recorded leader's configuration."""
    doc = json.loads(GOLDEN.read_text())
    replayed = 0
    for ex in doc["exchanges"]:
        request = m.ConfigUpdate.decode([bytes.fromhex(f) for f in ex["frames"]])
        expected = [bytes.fromhex(f) for f in ex["responses"][0]["frames"]]
        if expected[1] != b"\x02":
            continue  # the follower's NOT_LEADER answer
        with pytest.raises(ConfigError) as info:
            C3.join(request.peers)
        reply = m.ConfigUpdateReply(
            request.request_id,
            m.ConfigUpdateStatus.ERROR,
            error_name=info.value.name,
            error_message=info.value.message,
        )
        assert reply.encode() == expected
        replayed += 1
    assert replayed == 5


# ---- URL rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "tcp://127.0.0.1:1",
        "tcp://10.0.0.1:65535",
        "tcp://[::1]:8047",
        "tcp://[fe80::1]:8047",
        "tcp://[2001:db8::7]:1",
        "TCP://192.168.1.1:80",
    ],
)
def test_valid_urls(url: str) -> None:
    assert validate_peer_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "peer url must be a non empty string"),
        (5, "peer url must be a non empty string"),
        ("http://127.0.0.1:80", "peer url protocol must be tcp:"),
        ("127.0.0.1:80", "peer url protocol must be tcp:"),
        ("tcp", "peer url protocol must be tcp:"),
        ("tcp://user:pw@127.0.0.1:80", "peer url must have no auth"),
        ("tcp://127.0.0.1:80/", "peer url must have no path"),
        ("tcp://127.0.0.1:80/x", "peer url must have no path"),
        ("tcp://127.0.0.1:80?x=1", "peer url must have no path"),
        ("tcp:127.0.0.1:80", "peer url must have no path"),
        ("tcp://127.0.0.1:80#frag", "peer url must have no hash"),
        ("tcp://127.0.0.1", "peer url port must be in range 1-65535"),
        ("tcp://127.0.0.1:0", "peer url port must be in range 1-65535"),
        ("tcp://127.0.0.1:65536", "peer url port must be in range 1-65535"),
        ("tcp://127.0.0.1:8x", "peer url port must be in range 1-65535"),
        ("tcp://[::1]", "peer url port must be in range 1-65535"),
        ("tcp://0.0.0.0:80", "peer url must not be a placeholder address"),
        ("tcp://[::]:80", "peer url must not be a placeholder address"),
        ("tcp://[0:0::0]:80", "peer url must not be a placeholder address"),
        ("tcp://localhost:80", "peer url must have a valid ip address in hostname"),
        ("tcp://*:80", "peer url must have a valid ip address in hostname"),
        ("tcp://256.1.1.1:80", "peer url must have a valid ip address in hostname"),
        ("tcp://01.1.1.1:80", "peer url must have a valid ip address in hostname"),
        ("tcp://::1:80", "peer url must have a valid ip address in hostname"),
        ("tcp://[1.2.3.4]:80", "peer url must have a valid ip address in hostname"),
        ("tcp://[::1:80", "peer url port must be in range 1-65535"),
    ],
)
def test_invalid_urls(url: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_peer_url(url)
    assert (info.value.name, info.value.message) == ("AssertionError", message)


def test_parse_peers_with_and_without_current() -> None:
    assert parse_peers([["1", U1], ["9", U2]]) == (("1", U1), ("9", U2))
    with pytest.raises(ConfigError, match="consistent"):
        parse_peers([["1", U1], ["9", U2]], current=P3)
    assert parse_peers((("1", U1), ("4", U4)), current=P3) == (("1", U1), ("4", U4))
