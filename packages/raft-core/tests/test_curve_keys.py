"""Key files and Z85 as pyzmq writes and reads them (zmq.auth is the reference)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from zmqraft.core.curve_keys import (
    ClientKeys,
    CurveKeyError,
    public_key,
    read_certificate,
    read_key_pair,
    read_public_keys,
    z85_decode,
    z85_encode,
)

zmq = pytest.importorskip("zmq")
zmq_auth = pytest.importorskip("zmq.auth")


def test_z85_rfc32_vector() -> None:
    raw = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert z85_encode(raw) == "HelloWorld"
    assert z85_decode("HelloWorld") == raw


def test_z85_matches_libzmq_keys() -> None:
    for _ in range(20):
        public, _secret = zmq.curve_keypair()
        assert z85_encode(z85_decode(public)) == public.decode()
        assert z85_decode(public) == zmq.utils.z85.decode(public)


def test_z85_rejects_bad_text() -> None:
    with pytest.raises(CurveKeyError, match="multiple of 5"):
        z85_decode("abcd")
    with pytest.raises(CurveKeyError, match="not a Z85 character"):
        z85_decode('abcd"')
    with pytest.raises(CurveKeyError, match="40 Z85 characters"):
        public_key("short", "peer 1")


def test_reads_pyzmq_certificates(tmp_path: Path) -> None:
    public_file, secret_file = zmq_auth.create_certificates(
        str(tmp_path), "p1", metadata={"url": "tcp://x:1"}
    )
    os.chmod(secret_file, 0o600)
    expected_public, expected_secret = zmq_auth.load_certificate(secret_file)
    pair = read_key_pair(tmp_path, "p1")
    assert pair.public_z85 == expected_public.decode()
    assert pair.secret == z85_decode(expected_secret)
    assert pair.metadata == {"url": "tcp://x:1"}
    public = read_certificate(public_file)
    assert public.public == pair.public and public.secret is None
    assert "secret" not in repr(pair) or z85_encode(pair.secret or b"") not in repr(pair)


def test_refuses_a_secret_file_others_can_read(tmp_path: Path) -> None:
    _public_file, secret_file = zmq_auth.create_certificates(str(tmp_path), "p1")
    os.chmod(secret_file, 0o644)
    with pytest.raises(CurveKeyError, match="accessible by others \\(mode 0644\\); run: chmod 600"):
        read_key_pair(tmp_path, "p1")


def test_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CurveKeyError, match="no such certificate file"):
        read_key_pair(tmp_path, "nobody")
    (tmp_path / "bad.key").write_text('curve\n    public-key = "tooshort"\n')
    with pytest.raises(CurveKeyError, match=r"bad\.key line 2: public-key"):
        read_public_keys(tmp_path)
    (tmp_path / "bad.key").write_text("hello\n")
    with pytest.raises(CurveKeyError, match="no public-key line"):
        read_public_keys(tmp_path)


def test_client_keys_pick_a_server_key(tmp_path: Path) -> None:
    for name in ("client", "p1", "p2"):
        zmq_auth.create_certificates(str(tmp_path), name)
    os.chmod(tmp_path / "client.key_secret", 0o600)
    keys = ClientKeys.from_directory(tmp_path)
    p1 = read_certificate(tmp_path / "p1.key").public
    assert set(keys.servers) == {"p1", "p2"}
    assert keys.server_key("tcp://127.0.0.1:1", "p1") == p1
    no_key = "no CurveZMQ server key for tcp://h:1: known keys are for p1, p2"
    with pytest.raises(CurveKeyError, match=no_key):
        keys.server_key("tcp://h:1")
    only = ClientKeys(keys.public, keys.secret, {"p1": p1})
    assert only.server_key("tcp://h:1") == p1
