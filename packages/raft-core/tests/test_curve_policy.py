"""The ``curve`` options (shape, key files, mixed clusters) and the ZAP / per-message policy."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.config import OptionsError, create_options, validate_options
from zmqraft.core.config_files import read_config
from zmqraft.core.curve_keys import read_certificate, z85_encode
from zmqraft.core.curve_policy import CurvePolicy, CurveSetup, load_curve
from zmqraft.core.metrics import PeerMetrics, families
from zmqraft.core.protocol import messages as m

zmq_auth = pytest.importorskip("zmq.auth")

PEERS = [{"id": "1", "url": "tcp://127.0.0.1:1"}, {"id": "2", "url": "tcp://127.0.0.1:2"}]


def make_pair(directory: Path, name: str, mode: int = 0o600) -> bytes:
    directory.mkdir(exist_ok=True)
    public_file, secret_file = zmq_auth.create_certificates(str(directory), name)
    os.chmod(secret_file, mode)
    return read_certificate(public_file).public


def options(curve: dict[str, Any], peer_id: str = "1") -> dict[str, Any]:
    return validate_options(create_options({"id": peer_id, "peers": PEERS, "curve": curve}))


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for peer_id in ("1", "2"):
        make_pair(tmp_path / "keys", peer_id)
    return tmp_path / "keys"


# ---- options --------------------------------------------------------------------------------


def test_curve_is_off_by_default() -> None:
    opts = validate_options(create_options({"id": "1", "peers": PEERS}))
    assert opts["curve"] == {}
    assert load_curve(opts) is None


def test_a_curve_cluster_loads_its_keys(keys: Path, tmp_path: Path) -> None:
    client = make_pair(tmp_path / "clients", "app")
    setup = load_curve(options({"keys": str(keys), "clients": str(tmp_path / "clients")}))
    assert setup is not None
    assert setup.public == read_certificate(keys / "1.key").public
    assert set(setup.peers) == {"1", "2"}
    assert setup.clients == frozenset({client})
    assert z85_encode(setup.secret) not in repr(setup)


def test_client_keys_any_list_or_none(keys: Path) -> None:
    anyone = load_curve(options({"keys": str(keys), "clients": "*"}))
    assert anyone is not None and anyone.clients is None
    peers_only = load_curve(options({"keys": str(keys)}))
    assert peers_only is not None and peers_only.clients == frozenset()
    key = read_certificate(keys / "2.key").public
    listed = load_curve(options({"keys": str(keys), "clients": [z85_encode(key)]}))
    assert listed is not None and listed.clients == frozenset({key})
    with pytest.raises(OptionsError, match=r"curve.clients\[0\]: a CurveZMQ key is 40 Z85 characters"):
        load_curve(options({"keys": str(keys), "clients": ["nope"]}))


def test_the_shape_of_the_curve_options_is_checked() -> None:
    with pytest.raises(OptionsError, match=r"curve\.clients needs curve\.keys"):
        options({"clients": "*"})
    with pytest.raises(OptionsError, match=r"curve\.clients must be a directory"):
        options({"keys": "k", "clients": 3})
    with pytest.raises(OptionsError, match=r"curve\.keys must be a non-empty string"):
        options({"keys": ""})
    with pytest.raises(OptionsError, match=r"unknown option curve.key \(did you mean keys\?\)"):
        options({"key": "k"})


def test_this_peers_secret_key_must_exist(tmp_path: Path) -> None:
    make_pair(tmp_path / "keys", "2")
    with pytest.raises(OptionsError, match=r"curve.keys: .*1.key_secret: no such certificate file .*zr-keys"):
        load_curve(options({"keys": str(tmp_path / "keys")}))


def test_a_secret_key_others_can_read_is_refused(tmp_path: Path) -> None:
    make_pair(tmp_path / "keys", "1", mode=0o644)
    make_pair(tmp_path / "keys", "2")
    with pytest.raises(OptionsError, match=r"accessible by others \(mode 0644\); run: chmod 600"):
        load_curve(options({"keys": str(tmp_path / "keys")}))


def test_a_peer_without_a_public_certificate_is_a_mixed_cluster(tmp_path: Path) -> None:
    make_pair(tmp_path / "keys", "1")
    with pytest.raises(OptionsError, match=r"no public certificate for peer 2 .*no mixed clusters"):
        load_curve(options({"keys": str(tmp_path / "keys")}))


def test_a_public_certificate_that_does_not_match_the_pair_is_refused(keys: Path, tmp_path: Path) -> None:
    make_pair(tmp_path / "other", "1")
    shutil.copy(tmp_path / "other" / "1.key", keys / "1.key")
    with pytest.raises(OptionsError, match=r"1.key does not match .*1.key_secret"):
        load_curve(options({"keys": str(keys)}))


def test_relative_paths_resolve_against_the_config_files_folder(keys: Path, tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    config = folder / "raft.json"
    config.write_text(json.dumps({"raft": {"curve": {"keys": "../keys", "clients": "*"}}}))
    read = read_config(config)
    assert read["curve"] == {"keys": str(folder / "../keys"), "clients": "*"}
    setup = load_curve(validate_options({**read, "id": "1", "peers": PEERS}))
    assert setup is not None and set(setup.peers) == {"1", "2"}


# ---- the policy -----------------------------------------------------------------------------


def zap(key: bytes, mechanism: bytes = b"CURVE", version: bytes = b"1.0") -> list[bytes]:
    return [version, b"7", b"zmqraft", b"10.0.0.9", b"", mechanism, key]


@pytest.fixture
def policy(keys: Path) -> CurvePolicy:
    setup = load_curve(options({"keys": str(keys), "clients": [z85_encode(b"c" * 32)]}))
    assert setup is not None
    return CurvePolicy(setup, PeerMetrics())


def test_zap_answers_peer_keys_client_keys_and_refuses_the_rest(
    policy: CurvePolicy, keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    peer_key = read_certificate(keys / "2.key").public
    assert policy.authorize(zap(peer_key)) == [b"1.0", b"7", b"200", b"OK", b"peer:2", b""]
    assert policy.authorize(zap(b"c" * 32)) == [b"1.0", b"7", b"200", b"OK", b"client", b""]
    with caplog.at_level(logging.WARNING, "zmqraft.curve"):
        for _ in range(3):
            reply = policy.authorize(zap(b"x" * 32))
            assert reply is not None and reply[2] == b"400"
    assert policy.metrics.curve_refused_handshakes == 3
    refusals = [r for r in caplog.records if "handshake refused" in r.getMessage()]
    assert len(refusals) == 1, "logged once per key"
    assert z85_encode(b"x" * 32) in refusals[0].getMessage() and "10.0.0.9" in refusals[0].getMessage()
    assert z85_encode(policy.setup.secret) not in caplog.text


def test_zap_refuses_other_mechanisms_versions_and_answers_nothing_to_a_stub(policy: CurvePolicy) -> None:
    reply = policy.authorize(zap(b"", mechanism=b"NULL")[:6])
    assert reply is not None and reply[2] == b"400"
    reply = policy.authorize(zap(b"c" * 32, version=b"2.0"))
    assert reply is not None and reply[2] == b"400"
    assert policy.authorize([b"1.0", b"7"]) is None


def test_only_peer_keys_may_send_peer_rpcs(policy: CurvePolicy, caplog: pytest.LogCaptureFixture) -> None:
    for peer_type in (m.REQUEST_VOTE, m.APPEND_ENTRIES, m.INSTALL_SNAPSHOT, b"!"):
        assert policy.may_deliver("peer:2", peer_type, b"2")
        assert not policy.may_deliver("peer:2", peer_type, b"1"), "a peer key speaks for itself only"
        assert not policy.may_deliver("peer:2", peer_type)
        assert not policy.may_deliver("client", peer_type, b"2")
        assert not policy.may_deliver(None, peer_type, b"2")
    for client_type in (m.REQUEST_UPDATE, m.REQUEST_CONFIG, m.CONFIG_UPDATE, m.REQUEST_ENTRIES, b"*", b"W"):
        assert policy.may_deliver("client", client_type)
        assert policy.may_deliver("peer:1", client_type)
    assert not policy.may_deliver("someone", m.REQUEST_UPDATE)
    with caplog.at_level(logging.WARNING, "zmqraft.curve"):
        for _ in range(3):
            policy.dropped("client", m.REQUEST_VOTE, b"rid")
    assert policy.metrics.curve_refused_messages == 3
    assert caplog.text.count("only a peer's own key may send its peer RPCs") == 1


def test_a_new_peer_needs_a_key_its_certificate_may_come_later(keys: Path) -> None:
    setup = load_curve(options({"keys": str(keys)}))
    assert setup is not None
    assert setup.refuse_config(["1", "2"]) is None
    reason = setup.refuse_config(["1", "2", "3"])
    assert reason is not None and "no CurveZMQ public key for peer 3" in reason
    key = make_pair(keys, "3")
    assert setup.refuse_config(["1", "2", "3"]) is None
    assert CurvePolicy(setup).user_of(key) == "peer:3"


def test_the_refusals_are_counted_in_the_metrics_families(keys: Path) -> None:
    from test_metrics import value
    from test_server import Endpoint

    ep = Endpoint()
    setup = load_curve(options({"keys": str(keys)}))
    assert setup is not None
    policy = CurvePolicy(setup, ep.server.metrics)
    policy.authorize(zap(b"x" * 32))
    policy.dropped("client", m.APPEND_ENTRIES, b"r")
    policy.dropped("client", m.APPEND_ENTRIES, b"r")
    fams = families(ep.server, ep.now, 0)
    assert value(fams, "zmqraft_curve_refused_handshakes") == 1
    assert value(fams, "zmqraft_curve_refused_messages") == 2


def test_the_leader_refuses_a_configuration_with_a_peer_its_check_refuses() -> None:
    from test_server import WALL, Endpoint

    ep = Endpoint()
    ep.server.refuse_config(lambda ids: "no key for 9" if "9" in ids else None)
    rid = ep.ids.next(WALL)
    peers = [["a", "tcp://127.0.0.1:9001"], ["9", "tcp://127.0.0.1:9009"]]
    reply = m.ConfigUpdateReply.decode(ep.send(m.ConfigUpdate(rid, peers).encode(b""))[-1])
    assert reply.status is m.ConfigUpdateStatus.ERROR
    assert (reply.error_name, reply.error_message) == ("CurveKeyError", "no key for 9")
    assert not ep.server.node.config.is_joint


def test_curve_setup_repr_keeps_the_secret_out() -> None:
    setup = CurveSetup("1", b"p" * 32, b"s" * 32, {}, None)
    assert z85_encode(b"s" * 32) not in repr(setup) and z85_encode(b"p" * 32) in repr(setup)


def test_a_handshake_that_fails_before_zap_is_counted_and_logged_once_per_kind(
    policy: CurvePolicy, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "zmqraft.curve"):
        for _ in range(3):
            policy.handshake_failed("tcp://127.0.0.1:5", 0x11000001)
        policy.handshake_failed("tcp://127.0.0.1:5", 0x11000002)
    assert policy.metrics.curve_refused_handshakes == 4
    assert caplog.text.count("a client with a wrong server key for this peer") == 1
    assert caplog.text.count("a client without CurveZMQ") == 1
