"""``zr-keys``: certificate files zmq.auth reads, a secret file private from its creation,
nothing replaced without ``-f``, ``--show`` equal to what zmq.auth loads, and a round trip
through ``ClientKeys.from_directory``; and the tools' ``--curve-keys`` resolution (offline)."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq.auth
from zmqraft.client.tools import _common, zr_keys
from zmqraft.client.tools._common import UsageError, curve_keys, resolve_seeds, split_seed
from zmqraft.core.curve_keys import ClientKeys, read_certificate

pytestmark = [pytest.mark.timeout(60)]


def zr_keys_cmd(*args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_keys", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_text(path: Path) -> str:
    """The secret-key line's value, for checks that it is never printed."""
    line = next(li for li in path.read_text().splitlines() if li.strip().startswith("secret-key"))
    return line.split("=", 1)[1].strip().strip('"')


def test_writes_pairs_that_zmq_auth_reads(tmp_path: Path) -> None:
    keys = tmp_path / "new" / "keys"
    out = zr_keys_cmd(keys, "1", "2", "--client")
    assert mode(keys) == 0o700
    for name in ("1", "2", "client"):
        public, secret = keys / f"{name}.key", keys / f"{name}.key_secret"
        assert mode(secret) == 0o600 and mode(public) == 0o644
        pub_a, sec_a = zmq.auth.load_certificate(secret)
        pub_b, sec_b = zmq.auth.load_certificate(public)
        assert pub_a == pub_b and sec_b is None and sec_a is not None
        assert zmq.curve_public(sec_a) == pub_a  # a real pair
        assert pub_a.decode() in out.stdout
        assert secret_text(secret) not in out.stdout + out.stderr
        assert read_certificate(secret).public_z85 == pub_a.decode()
    assert sorted(os.listdir(keys)) == sorted(
        f"{n}{s}" for n in ("1", "2", "client") for s in (".key", ".key_secret")
    )


def test_show_prints_the_public_key(tmp_path: Path) -> None:
    zr_keys_cmd(tmp_path, "1", "2")
    public, _ = zmq.auth.load_certificate(tmp_path / "1.key")
    out = zr_keys_cmd("--show", tmp_path, "1").stdout
    assert out == public.decode() + "\n"
    # from the secret file when the public one is not there; never the secret key
    os.unlink(tmp_path / "1.key")
    out = zr_keys_cmd("--show", tmp_path, "1", "2").stdout
    public2, _ = zmq.auth.load_certificate(tmp_path / "2.key")
    assert out.splitlines() == [f"1 {public.decode()}", f"2 {public2.decode()}"]
    assert secret_text(tmp_path / "1.key_secret") not in out
    err = zr_keys_cmd("--show", tmp_path, "9", code=1).stderr
    assert err.startswith("zr-keys: no certificate ") and "9.key" in err
    # a secret file others can read is refused, in the tools' one-line style
    os.chmod(tmp_path / "1.key_secret", 0o644)
    err = zr_keys_cmd("--show", tmp_path, "1", code=1).stderr
    assert err == (
        f"zr-keys: {tmp_path}/1.key_secret: secret key file is accessible by others (mode 0644); "
        f"run: chmod 600 {tmp_path}/1.key_secret\n"
    )


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    zr_keys_cmd(tmp_path, "1")
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    err = zr_keys_cmd(tmp_path, "2", "1", code=2).stderr
    assert err.splitlines() == [
        f"zr-keys: {tmp_path}/1.key, {tmp_path}/1.key_secret exist: give -f to replace "
        "(whoever holds the old public key must then get the new one)"
    ]
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # not even 2 was written
    zr_keys_cmd(tmp_path, "-f", "1")
    assert (tmp_path / "1.key_secret").read_bytes() != before[tmp_path / "1.key_secret"]
    assert mode(tmp_path / "1.key_secret") == 0o600
    assert sorted(os.listdir(tmp_path)) == ["1.key", "1.key_secret"]  # no temporary file left


def test_secret_file_private_from_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file zr-keys creates is created with its final mode (0600 for the secret) and
    O_EXCL, so there is no moment when others may open it; with umask 0 too."""
    created: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kw: Any) -> int:
        if flags & os.O_CREAT:
            created.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kw)

    monkeypatch.setattr(os, "open", spy)
    old = os.umask(0)
    try:
        assert zr_keys.main([str(tmp_path / "k"), "1"]) == 0
        assert zr_keys.main([str(tmp_path / "k"), "-f", "1"]) == 0
    finally:
        os.umask(old)
    secrets = [c for c in created if ".key_secret" in c[0]]
    assert len(secrets) == 2
    for _path, flags, creation_mode in secrets:
        assert flags & os.O_EXCL and creation_mode == 0o600
    assert mode(tmp_path / "k" / "1.key_secret") == 0o600
    assert mode(tmp_path / "k") == 0o700


def test_bad_names_and_usage(tmp_path: Path) -> None:
    assert zr_keys_cmd(tmp_path, "../x", code=1).stderr.startswith("zr-keys: invalid key name '../x'")
    assert zr_keys_cmd(tmp_path, ".hidden", code=1).stderr.startswith("zr-keys: invalid key name")
    assert zr_keys_cmd(tmp_path, code=1).stderr.startswith("zr-keys: give the names of the key pairs")
    assert os.listdir(tmp_path) == []


def test_round_trip_through_client_keys(tmp_path: Path) -> None:
    """The layout the docs describe: a client directory with the client pair and copies of
    the peers' public files."""
    cluster, client = tmp_path / "keys", tmp_path / "client"
    zr_keys_cmd(cluster, "1", "2", "3")
    zr_keys_cmd(client, "--client")
    for peer in ("1", "2", "3"):
        (client / f"{peer}.key").write_bytes((cluster / f"{peer}.key").read_bytes())
    keys = ClientKeys.from_directory(client)
    pub, sec = zmq.auth.load_certificate(client / "client.key_secret")
    assert (keys.public, keys.secret) == (zmq.utils.z85.decode(pub), zmq.utils.z85.decode(sec))
    for peer in ("1", "2", "3"):
        expected = zmq.utils.z85.decode(zmq.auth.load_certificate(cluster / f"{peer}.key")[0])
        assert keys.servers[peer] == expected
    assert "client" not in keys.servers


# ---- --curve-keys (what the tools connect with), offline ------------------------------------


def args(keys: Path | None = None, name: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(curve_keys=None if keys is None else str(keys), curve_name=name)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A cluster key directory (peers 1-3) and a client directory with peers 1 and 2 only."""
    cluster, client = tmp_path / "keys", tmp_path / "client"
    zr_keys_cmd(cluster, "1", "2", "3")
    zr_keys_cmd(client, "--client")
    for peer in ("1", "2"):
        (client / f"{peer}.key").write_bytes((cluster / f"{peer}.key").read_bytes())
    return cluster, client


def peer_key(directory: Path, peer: str) -> bytes:
    return read_certificate(directory / f"{peer}.key").public


def test_seeds_name_their_peers() -> None:
    assert split_seed("1=127.0.0.1:8047") == ("1", "127.0.0.1:8047")
    assert split_seed("a%2Fb=tcp://127.0.0.1:8047") == ("a%2Fb", "tcp://127.0.0.1:8047")
    assert split_seed("tcp://127.0.0.1:8047/2") == ("2", "tcp://127.0.0.1:8047")
    assert split_seed("tcp://127.0.0.1:8047") == (None, "tcp://127.0.0.1:8047")
    assert split_seed("127.0.0.1") == (None, "127.0.0.1")
    urls, ids = resolve_seeds(["1=127.0.0.1:9001", "127.0.0.1:9002", "tcp://127.0.0.1:9003/3"])
    assert urls == ["tcp://127.0.0.1:9001", "tcp://127.0.0.1:9002", "tcp://127.0.0.1:9003"]
    assert ids == {"tcp://127.0.0.1:9001": "1", "tcp://127.0.0.1:9003": "3"}


def test_curve_keys_from_a_directory(layout: tuple[Path, Path]) -> None:
    cluster, client = layout
    assert curve_keys(args()) is None  # no --curve-keys, no curve in the config: plain TCP
    seeds, ids = resolve_seeds(["1=127.0.0.1:9001", "tcp://127.0.0.1:9002/2"])
    keys = curve_keys(args(client), seeds=seeds, seed_ids=ids)
    assert keys is not None
    assert keys.server_key("tcp://127.0.0.1:9001") == peer_key(cluster, "1")
    assert keys.server_key("tcp://127.0.0.1:9002") == peer_key(cluster, "2")
    # a bare url with two peer keys to choose from: say what to pass
    with pytest.raises(UsageError) as err:
        curve_keys(args(client), seeds=["tcp://127.0.0.1:9009"])
    assert str(err.value) == (
        f"no CurveZMQ server key for tcp://127.0.0.1:9009: {client} holds keys of peers 1, 2; name "
        "the peer (ID=host:port or tcp://host:port/ID) or copy its ID.key into the directory"
    )
    # a named peer whose key is not there
    with pytest.raises(UsageError, match=r"no CurveZMQ server key for peer 3 \(tcp://127.0.0.1:9003\): copy"):
        curve_keys(args(client), seeds=["tcp://127.0.0.1:9003"], seed_ids={"tcp://127.0.0.1:9003": "3"})
    # one peer key only: every url uses it
    os.unlink(client / "2.key")
    keys = curve_keys(args(client), seeds=["tcp://127.0.0.1:9009"])
    assert keys is not None and keys.server_key("tcp://127.0.0.1:9009") == peer_key(cluster, "1")


def test_curve_keys_with_a_config(layout: tuple[Path, Path], tmp_path: Path) -> None:
    """A config's curve.keys (relative to the config file) gives the server keys, by id and
    by the peers' urls; the client pair still comes from --curve-keys."""
    cluster, client = layout
    config_file = str(tmp_path / "cluster.yaml")
    config = {
        "curve": {"keys": "keys", "clients": "*"},
        "peers": [{"id": p, "url": f"tcp://127.0.0.1:900{p}"} for p in ("1", "2", "3")],
    }
    keys = curve_keys(args(client), config, config_file, ["tcp://127.0.0.1:9003"])
    assert keys is not None
    assert keys.server_key("tcp://127.0.0.1:9003") == peer_key(cluster, "3")
    assert keys.servers["3"] == peer_key(cluster, "3")
    assert keys.public == read_certificate(client / "client.key_secret").public
    # the config's folder is not on this host: the client directory's keys serve
    elsewhere = {**config, "curve": {"keys": str(tmp_path / "nowhere")}}
    keys = curve_keys(args(client), elsewhere, config_file, ["tcp://127.0.0.1:9002"])
    assert keys is not None and keys.server_key("tcp://127.0.0.1:9002") == peer_key(cluster, "2")
    with pytest.raises(UsageError) as err:
        curve_keys(args(), config, config_file)
    assert str(err.value).startswith(
        f"the cluster of {config_file} uses CurveZMQ (curve.keys): give --curve-keys DIR"
    )


def test_curve_keys_errors(layout: tuple[Path, Path], tmp_path: Path) -> None:
    _, client = layout
    with pytest.raises(UsageError, match="--curve-name names a key pair in --curve-keys DIR"):
        curve_keys(args(None, "ops"))
    with pytest.raises(UsageError) as err:
        curve_keys(args(client, "ops"))
    assert str(err.value) == (
        f"--curve-keys: {client}/ops.key_secret: no such certificate file (make one: zr-keys {client} ops)"
    )
    os.chmod(client / "client.key_secret", 0o644)
    with pytest.raises(
        UsageError, match=r"secret key file is accessible by others \(mode 0644\); run: chmod 600"
    ):
        curve_keys(args(client))
    assert _common.CURVE_CLIENT_NAME == "client"
