"""``zr-config`` as a command against real peers (the integration harness's
``cluster_factory``: real processes on ephemeral ports, killed by the fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from zmqraft.client import Client, Entry
from zmqraft.core.protocol import mpack
from zmqraft.core.protocol.reqid import new_request_id

HAVE_HARNESS = (Path(__file__).resolve().parents[3] / "tests" / "integration" / "raft_harness.py").is_file()

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not HAVE_HARNESS, reason="needs the repository's tests/integration harness"),
]


def zr_config(*args: str | Path, code: int = 0, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command; it must end by itself (the original hangs after a change) with ``code``."""
    proc = subprocess.run(
        [sys.executable, "-m", "zmqraft.client.tools.zr_config", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def started(cluster_factory: Callable[..., Any], **options: Any) -> Any:
    cluster = cluster_factory(**options)
    cluster.start()
    cluster.leader()
    return cluster


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_show_add_delete(cluster_factory: Callable[..., Any]) -> None:
    cluster = started(cluster_factory, spare=["4"])
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()  # each test cluster has a secret of its own
    k = ("-k", sec)
    leader, _ = cluster.leader()

    # no -a/-d/-r: the current configuration, the leader marked
    out = zr_config(u["1"], *k).stdout
    expected = [f"  {u[p]}/{p}" + (" (leader)" if p == leader else "") for p in ("1", "2", "3")]
    assert lines(out) == ["Current cluster configuration (no changes):", *expected]

    # dry run: the change is shown, nothing is sent
    out = zr_config(u["2"], *k, "-n", "-a", f"{u['4']}/4").stdout
    assert lines(out)[0].startswith("Requesting configuration change with ")
    assert f"  {u['4']}/4 (added)" in lines(out)
    assert "Dry run: nothing was sent." in lines(out)
    with Client([u["1"]], secret=sec) as client:
        assert dict(client.request_config(timeout=5).peers) == {p: u[p] for p in ("1", "2", "3")}

    # add: joint then final configuration, and the command ends by itself
    cluster.peers["4"].start()
    ident = new_request_id(time.time()).hex()  # ids carry their time: the leader checks it
    out = lines(zr_config(u["3"], *k, "-a", f"{u['4']}/4", "--ident", ident, "-t", "5000").stdout)
    assert out[0] == f"Requesting configuration change with {ident}:"
    assert f"  {u['4']}/4 (added)" in out
    joint_line = next(line for line in out if line.startswith("Cluster joined configuration changed at"))
    joint = int(joint_line.rsplit(" ", 1)[1].rstrip("."))
    final_at = out.index(next(line for line in out if line.startswith("Cluster final configuration")))
    final_index = int(out[final_at].split("index ")[1].rstrip(":"))
    assert final_index > joint
    assert {line.split(" ")[2] for line in out[final_at + 1 :]} == {f"{u[p]}/{p}" for p in "1234"}
    with Client([u["1"]], secret=sec) as client:
        assert dict(client.request_config(timeout=5).peers) == {p: u[p] for p in "1234"}
        entries = {e.index: e for e in client.request_entries(0) if isinstance(e, Entry)}
    # the joint entry carries our ident and {old, new}; the final one the new list
    assert entries[joint].request_id.hex() == ident
    assert set(mpack.unpack(entries[joint].data)) == {"old", "new"}
    assert [tuple(p) for p in mpack.unpack(entries[final_index].data)] == [(p, u[p]) for p in "1234"]

    # delete by id, seeds from the config file
    out = lines(zr_config("-c", cluster.root / "config.json", "-d", "1").stdout)
    assert f"  {u['1']}/1 (removed)" in out
    assert out[-4].startswith("Cluster final configuration changed at index ")
    assert {line.split(" ")[2] for line in out[-3:]} == {f"{u[p]}/{p}" for p in "234"}
    with Client([u["2"]], secret=sec) as client:
        assert dict(client.request_config(timeout=5).peers) == {p: u[p] for p in "234"}

    # replace with a list that is the same set: no change
    out = zr_config(u["2"], *k, "-r", ",".join(f"{u[p]}/{p}" for p in "432")).stdout
    assert lines(out)[0] == "Current cluster configuration (no changes):"


def test_errors(cluster_factory: Callable[..., Any], tmp_path: Path) -> None:
    cluster = started(cluster_factory)
    u = {p: peer.url for p, peer in cluster.peers.items()}
    sec = cluster.secret.decode()
    k = ("-k", sec)

    err = zr_config(u["1"], *k, "-r", f"{u['1']}/1", "-a", "tcp://127.0.0.1:1/9", code=1).stderr
    assert "can not be combined" in err
    assert "already a member" in zr_config(u["1"], *k, "-a", f"{u['2']}/2", code=2).stderr
    assert "not a member" in zr_config(u["1"], *k, "-d", "9", code=3).stderr
    assert "invalid ident format" in zr_config(u["1"], "--ident", "abc", "-d", "1", code=3).stderr
    assert "usage: zr-config" in zr_config(code=1).stderr  # no seeds: help
    # a url already used by another id: the server's consistency rule, checked before sending
    err = zr_config(u["1"], *k, "-a", f"{u['2']}/new", code=1).stderr
    assert err.splitlines() == [f"connecting to {u['1']} ...", "zr-config: peer url must be unique"]
    # a wrong secret looks like an unreachable cluster: the -t deadline, then one line
    err = zr_config(u["1"], "-k", "wrong", "-t", "1000", code=1, timeout=30).stderr
    last = err.splitlines()[-1]
    assert "Traceback" not in err and last.startswith("zr-config: requestConfig: no peer answered within 1 s")
    assert f"(tried {u['1']}); likely causes: a wrong secret" in last
    # the secret of a config file is used
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"raft": {"secret": "wrong", "peers": [{"id": "1", "url": u["1"]}]}}))
    zr_config("-c", config, "-t", "1000", code=1, timeout=30)
    zr_config("-c", config, *k, "-t", "5000")
    with Client([u["1"]], secret=sec) as client:
        assert dict(client.request_config(timeout=5).peers) == {p: u[p] for p in "123"}
