"""Options: merge rules, namespaces, validation and the conversion to RaftOptions."""

from __future__ import annotations

from typing import Any

import pytest
from zmqraft.core.config import (
    DEFAULTS,
    OptionsError,
    create_options,
    load_options,
    parse_int,
    peer_entry,
    raft_options,
    seed_peers,
    select_namespace,
    validate_options,
)
from zmqraft.core.metrics import metrics_bind


def valid(**user: Any) -> dict[str, Any]:
    return validate_options(create_options({"id": "local", **user}))


def test_defaults_fill_every_namespace_and_keep_unknown_keys() -> None:
    opts = create_options({"id": "1", "extra": [1, 2], "data": {"path": "x", "mine": True}})
    assert opts["extra"] == [1, 2]
    assert opts["data"]["path"] == "x" and opts["data"]["mine"] is True
    assert opts["data"]["log"] == "log" and opts["data"]["compact"]["install"] == "compact/snap.new"
    assert opts["data"]["compact"]["state"]["options"] == {"compressionLevel": 9}
    assert opts["broadcast"] == {"url": "tcp://127.0.0.1:8048"}
    assert opts["webmonitor"]["bind"] == {"proto": "http", "host": "::", "port": None}
    assert (
        opts["electionTimeoutMin"] == 200 and opts["requestIdCacheMax"] == 250_000
    )  # bounded, unlike the original
    # a default is only a default: a given None scalar stays None
    assert create_options({"requestIdTtl": None})["requestIdTtl"] is None


def test_merge_does_not_share_or_modify_defaults() -> None:
    a = create_options({})
    a["peers"].append("tcp://127.0.0.1:1")
    a["data"]["compact"]["state"]["options"]["compressionLevel"] = 0
    b = create_options({})
    assert len(b["peers"]) == 1 and DEFAULTS["data"]["compact"]["state"]["options"]["compressionLevel"] == 9


@pytest.mark.parametrize("key", ["data", "router", "broadcast", "webmonitor", "factory"])
@pytest.mark.parametrize("value", [None, 1, "x", [1]])
def test_a_namespace_must_stay_a_mapping(key: str, value: Any) -> None:
    with pytest.raises(TypeError, match=f"Expected a namespace: {key}"):
        create_options({key: value})


def test_nested_namespace_error_names_the_nested_key() -> None:
    with pytest.raises(TypeError, match="Expected a namespace: compact"):
        create_options({"data": {"compact": 3}})


def test_namespace_selection() -> None:
    doc = {"raft": {"id": "a"}, "other": {"cfg": {"id": "b"}, "flat": 3}}
    assert select_namespace(doc) == {"id": "a"}
    assert select_namespace(doc, "other.cfg") == {"id": "b"}
    assert select_namespace(doc, "") == doc
    assert load_options(doc, "other.cfg")["id"] == "b"
    for ns in ("nope", "other.flat", "other.cfg.id", "raft.x"):
        with pytest.raises(OptionsError, match=f"There is no such configuration namespace: {ns}"):
            select_namespace(doc, ns)


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), ("12", 12), (" 7 ", 7), ("3.9", 3), (2.7, 2), (-1.5, -1), ("1e3", 1000)]
)
def test_lenient_integers(value: Any, expected: int) -> None:
    assert parse_int(value, "x") == expected


@pytest.mark.parametrize("value", [True, None, "abc", "", [1], float("nan"), float("inf")])
def test_not_integers(value: Any) -> None:
    with pytest.raises(OptionsError, match="x must be an integer"):
        parse_int(value, "x")


def test_validation_normalises_integers_and_applies_append_id() -> None:
    data = {"path": "d/", "appendIdToPath": True}
    opts = valid(electionTimeoutMin="250", electionTimeoutMax=400.5, data=data)
    assert opts["electionTimeoutMin"] == 250 and opts["electionTimeoutMax"] == 400
    assert opts["data"]["path"] == "d/local"
    assert validate_options(opts)["data"]["path"] == "d/local"  # idempotent
    assert opts["broadcast"]["broadcastHeartbeatInterval"] == 500


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"id": ""}, "id must be a non-empty string"),
        ({"id": 5}, "id must be a non-empty string"),
        ({"secret": 1}, "secret must be a string"),
        ({"label": ""}, "label must be a non-empty string"),
        ({"peers": []}, "peers must be a non-empty array"),
        ({"peers": ["tcp://0.0.0.0:1"]}, "peers: peer url must not be a placeholder address"),
        ({"peers": ["tcp://localhost:1"]}, "peers: peer url must have a valid ip address"),
        ({"peers": [["a", "tcp://127.0.0.1:1"], ["a", "tcp://127.0.0.1:2"]]}, "peer id must be unique"),
        ({"data": {"path": ""}}, "data.path must be a non-empty string"),
        ({"router": {"bind": ""}}, "router.bind must be a non-empty string"),
        ({"electionTimeoutMin": 99}, "electionTimeoutMin must be >= 100"),
        ({"electionTimeoutMax": 199}, "electionTimeoutMax must be >= 200"),
        ({"rpcTimeout": 9}, "rpcTimeout must be >= 10"),
        ({"rpcTimeout": 201}, "rpcTimeout must be <= 200"),
        ({"appendEntriesHeartbeatInterval": 40}, "appendEntriesHeartbeatInterval must be >= 50"),
        ({"appendEntriesRpcTimeoutMax": 60}, "appendEntriesRpcTimeoutMax must be >= 70"),
        ({"appendEntriesRpcTimeoutMax": 201}, "appendEntriesRpcTimeoutMax must be <= 200"),
        ({"peerMsgDataSize": 63}, "peerMsgDataSize must be >= 64"),
        ({"requestEntriesPipelines": 51}, "requestEntriesPipelines must be <= 50"),
        ({"requestEntriesSnapshotPipelines": 0}, "requestEntriesSnapshotPipelines must be >= 1"),
        ({"requestEntriesTtl": 99}, "requestEntriesTtl must be >= 100"),
        ({"requestIdTtlAcceptMargin": 999}, "requestIdTtlAcceptMargin must be >= 1000"),
        ({"requestIdTtl": 59_999}, "requestIdTtl must be >= 60000"),
        ({"requestIdCacheMax": 0}, "requestIdCacheMax must be >= 1"),
        ({"requestIdTtl": None, "requestIdCacheMax": None}, "must not both be null"),
        ({"indexFileCapacity": 3000}, "indexFileCapacity must be a power of two"),
        ({"indexFileCapacity": 1 << 24}, "indexFileCapacity must be <="),
        ({"broadcast": {"broadcastHeartbeatInterval": 49}}, "broadcastHeartbeatInterval must be >= 50"),
        ({"preventSpiralElections": "yes"}, "preventSpiralElections must be a boolean"),
        ({"checkQuorum": 1}, "checkQuorum must be a boolean"),
        ({"preVote": "true"}, "preVote must be a boolean"),
    ],
)
def test_invalid_options(user: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        validate_options(create_options({"id": "local", **user}))


def test_missing_id() -> None:
    with pytest.raises(OptionsError, match="id must be"):
        validate_options(create_options({}))


def test_request_id_ttl_may_be_null_with_a_cache_cap() -> None:
    opts = valid(requestIdTtl=None, requestIdCacheMax="1000")
    ro = raft_options(opts)
    assert ro.request_id_ttl is None and ro.request_id_cache_max == 1000


def test_raft_options_in_seconds() -> None:
    ro = raft_options(valid(electionTimeoutMin=150, rpcTimeout=20, requestEntriesHighWatermak=7))
    assert ro.election_timeout_min == 0.15 and ro.election_timeout_max == 0.3
    assert ro.rpc_timeout == 0.02 and ro.append_entries_rpc_timeout_max == 0.14
    assert ro.request_id_ttl == 28800.0 and ro.request_id_ttl_accept_margin == 900.0
    assert ro.request_entries_high_watermark == 7 and ro.request_entries_ttl == 5.0
    assert ro.prevent_spiral_elections is True
    assert ro.check_quorum is True and ro.pre_vote is False  # the extensions' defaults
    ro = raft_options(valid(checkQuorum=False, preVote=True))
    assert ro.check_quorum is False and ro.pre_vote is True


def test_peers_in_every_shape() -> None:
    opts = valid(
        peers=[
            "tcp://127.0.0.1:1",
            ["b", "tcp://127.0.0.1:2"],
            {"id": "c", "url": "tcp://127.0.0.1:3", "pub": "tcp://127.0.0.1:4", "www": "http://h:5"},
        ]
    )
    assert seed_peers(opts) == [
        ["tcp://127.0.0.1:1", "tcp://127.0.0.1:1"],
        ["b", "tcp://127.0.0.1:2"],
        ["c", "tcp://127.0.0.1:3"],
    ]
    entry = peer_entry(opts, "c")
    assert entry is not None and entry["pub"] == "tcp://127.0.0.1:4"
    assert peer_entry(opts, "b") is None


def test_metrics_options() -> None:
    opts = valid()
    assert opts["metrics"] == {"enable": False, "host": "127.0.0.1", "port": 9464}
    assert metrics_bind(opts) is None
    assert metrics_bind(valid(metrics={"enable": True, "port": "9101"})) == ("127.0.0.1", 9101)
    with pytest.raises(OptionsError, match=r"metrics\.port must be a port number"):
        valid(metrics={"port": 70000})
    with pytest.raises(OptionsError, match=r"metrics\.host"):
        valid(metrics={"host": ""})
    with pytest.raises(OptionsError, match="Expected a namespace: metrics"):
        validate_options({**create_options({"id": "x"}), "metrics": True})
