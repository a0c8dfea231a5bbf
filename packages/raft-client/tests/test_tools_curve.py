"""The tools against a real CurveZMQ cluster (the integration harness's ``cluster_factory``,
asyncio peers on 127.0.0.1), keys made with ``zr-keys`` as the docs say: ``keys/`` holds the
peers' pairs (``curve.keys``), ``clients/`` the allowed client certificates
(``curve.clients``), ``client/`` what a tool holds (``--curve-keys``: its pair and copies of
the peers' ``ID.key``).  ``--curve-keys`` works with seeds that name their peer and with the
config file; without it, or with a key the peers do not know, the tool fails in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from zmqraft.client import Client

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]


def run(
    module: str, *args: str | Path, code: int = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", f"zmqraft.client.tools.{module}", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def curve_cluster(cluster_factory: Callable[..., Any]) -> tuple[Any, Path]:
    """A started 3-peer curve cluster and its folder (config.json, keys/, clients/, client/)."""
    cluster = cluster_factory(curve={"keys": "keys", "clients": "clients"})
    root = cluster.root
    run("zr_keys", root / "keys", *cluster.peers)
    run("zr_keys", "--client", root / "client")
    run("zr_keys", "--client", root / "stranger")  # a pair no peer admits
    (root / "clients").mkdir()
    shutil.copy(root / "client" / "client.key", root / "clients")
    for peer in cluster.peers:
        shutil.copy(root / "keys" / f"{peer}.key", root / "client")
        shutil.copy(root / "keys" / f"{peer}.key", root / "stranger")
    cluster.start()
    peers = [(pid, peer.url) for pid, peer in cluster.peers.items()]
    with Client(peers=peers, secret=cluster.secret, curve=root / "client", rpc_timeout=20) as client:
        assert client.request_config().leader_id in cluster.peers  # elected, and it answers
    return cluster, root


def test_zr_config_and_zr_monitor_with_curve_keys(cluster_factory: Callable[..., Any]) -> None:
    cluster, root = curve_cluster(cluster_factory)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    k = ("-k", cluster.secret.decode())
    client = ("--curve-keys", root / "client")
    expected = {"1": u["1"], "2": u["2"], "3": u["3"]}

    # a seed that names its peer: that peer's key
    out = json.loads(run("zr_config", *k, *client, "--json", f"2={u['2'][6:]}").stdout)
    assert {p["id"]: p["url"] for p in out["peers"]} == expected
    out = json.loads(run("zr_config", *k, *client, "--json", f"{u['3']}/3").stdout)
    assert {p["id"]: p["url"] for p in out["peers"]} == expected

    # the config file: seeds, secret and the peers' keys from it; the client pair from --curve-keys
    config = root / "config.json"
    out = json.loads(run("zr_config", "-c", config, *client, "--json").stdout)
    assert {p["id"]: p["url"] for p in out["peers"]} == expected
    out = json.loads(run("zr_monitor", "-c", config, *client, "--once", "-w", "json").stdout)
    assert {p["id"]: p["error"] for p in out["peers"]} == {"1": None, "2": None, "3": None}
    assert out["leader"] in expected
    # zr-monitor -p: the ids name the urls' peers, so each url gets its peer's key
    args = ("--once", "-w", "json", "-p", "1", "2", "3", "--", u["1"], u["2"], u["3"])
    out = json.loads(run("zr_monitor", *k, *client, *args).stdout)
    assert {p["id"]: (p["url"], p["error"]) for p in out["peers"]} == {p: (u[p], None) for p in "123"}

    # what goes wrong, in one line each
    err = run("zr_config", "-c", config, "--json", code=1).stderr
    assert err.startswith(f"zr-config: the cluster of {config} uses CurveZMQ (curve.keys): give --curve-keys")
    err = run("zr_config", *k, *client, u["1"], code=1).stderr
    assert err == (
        f"zr-config: no CurveZMQ server key for {u['1']}: {root / 'client'} holds keys of peers 1, 2, 3; "
        "name the peer (ID=host:port or tcp://host:port/ID) or copy its ID.key into the directory\n"
    )
    err = run("zr_monitor", *k, *client, "--once", u["1"], code=1).stderr
    assert "no CurveZMQ server key for" in err
    # a key the peers do not admit: silence, reported as a timeout
    err = run("zr_config", *k, "--curve-keys", root / "stranger", "-t", "1500", f"1={u['1']}", code=1).stderr
    lines = [line for line in err.splitlines() if not line.startswith("connecting to ")]
    assert len(lines) == 1 and lines[0].startswith("zr-config: requestConfig: no peer answered within 1.5 s")
    assert "refused key" in lines[0]
    # plain TCP against curve peers: silence too
    err = run("zr_config", *k, "-t", "1500", u["1"], code=1).stderr
    assert "zr-config: requestConfig: no peer answered within 1.5 s" in err, err


def test_zr_console_with_curve_keys(cluster_factory: Callable[..., Any]) -> None:
    """zr-console (piped) connects with the client's keys, writes and reads."""
    cluster, root = curve_cluster(cluster_factory)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    k = ("-k", cluster.secret.decode())
    client = ("--curve-keys", root / "client")

    # zr-console, piped: connect by named seed, write, read back
    script = f".connect 1={u['1'][6:]}\n.peers\nclient.request_update(b'curve-console')\n.exit\n"
    out = run("zr_console", *k, *client, stdin=script).stdout
    assert "Cluster peers:" in out and all(f"{p}: {u[p]}" in out for p in "123"), out
    with Client(peers=list(u.items()), secret=cluster.secret, curve=root / "client") as c:
        data = [e.data for e in c.request_entries(0)]
    assert b"curve-console" in data
    # without the client's key the console refuses to connect, in one line, and goes on
    out = run("zr_console", *k, *client, stdin=f".connect {u['1'][6:]}\n.exit\n").stdout
    assert "error: no CurveZMQ server key for" in out


def test_zr_log_compact_asks_a_curve_peer(cluster_factory: Callable[..., Any]) -> None:
    """zr-log-compact -p ID=URL --curve-keys gets the peer's indexes over CurveZMQ (the
    request-id horizon keeps the prune index at 0, so it then finds nothing to compact)."""
    cluster, root = curve_cluster(cluster_factory)
    u1 = cluster.peers["1"].url
    with Client(
        peers=[(p, peer.url) for p, peer in cluster.peers.items()],
        secret=cluster.secret,
        curve=root / "client",
    ) as client:
        index = client.request_update(b"compact me")
    common = (
        "-d",
        cluster.data_dir("1"),
        "-m",
        "zmqraft.client.tools.passthrough_state",
        "-t",
        root / "snap.new",
    )
    k = ("-k", cluster.secret.decode())
    err = run("zr_log_compact", *common, *k, "--curve-keys", root / "client", "-p", f"1={u1}", code=5).stderr
    assert f"nothing to compact up to index 0: {u1} reports commit index " in err, err
    assert int(err.split("reports commit index ")[1].split()[0]) >= index
    err = run("zr_log_compact", *common, *k, "--curve-keys", root / "client", "-p", u1, code=1).stderr
    assert "no CurveZMQ server key for" in err
