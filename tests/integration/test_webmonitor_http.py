"""The web monitor of real peers over real HTTP (spec server-and-tools.md (d)): the page, the
status, the peer lookups through ``W`` requests, the event stream, the refusals."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from raft_harness import Cluster, wait_for
from zmqraft.client import PeerClient

pytestmark = pytest.mark.timeout(60)


def get(
    www: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(www)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def listening(www: str) -> bool:
    try:
        return get(www, "/status")[0] == 200
    except OSError:
        return False


def events(www: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The first ``count`` Server-Sent Events of ``/monitor``: their fields, data decoded."""
    parts = urlsplit(www)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", "/monitor")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        assert response.getheader("Access-Control-Allow-Origin") == "*"
        out: list[dict[str, Any]] = []
        fields: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while len(out) < count:
            assert time.monotonic() < deadline, f"only {len(out)} events in {timeout} s"
            line = response.fp.readline().decode().rstrip("\n")
            if not line:
                if fields:
                    fields["data"] = json.loads(fields["data"])
                    out.append(fields)
                    fields = {}
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        return out
    finally:
        conn.close()


def test_web_monitor(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(web=True, label="the test cluster")
    cluster.start()
    leader, term = cluster.leader()
    www = {p: peer.www for p, peer in cluster.peers.items()}
    for url in www.values():
        wait_for("the web monitors", lambda url=url: listening(url), 10.0)

    status, headers, body = get(www["1"], "/status")
    assert headers["Content-Type"].startswith("application/json")
    assert int(headers["Content-Length"]) == len(body)
    peers = [[p, cluster.peers[p].url] for p in "123"]
    status_body = json.loads(body)  # the original's keys, then the whole cluster (test_metrics_http.py)
    assert (status_body["peers"], status_body["label"]) == (peers, "the test cluster")

    status, headers, body = get(www["1"], "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "ØMQ Raft" in body.decode()
    assert get(www["1"], "/index.html")[2] == body
    status, _, head = get(www["1"], "/", method="HEAD")
    assert status == 200 and head == b""

    # /peer: itself, the others through their W answer, refusals
    assert json.loads(get(www["1"], "/peer?id=1")[2]) == {"id": "1", "url": www["1"]}
    for other in "23":
        assert json.loads(get(www["1"], f"/peer?id={other}")[2]) == {"id": other, "url": www[other]}
    assert get(www["1"], "/peer?id=9")[:1] == (404,)
    status, headers, body = get(www["1"], "/peer")
    assert status == 400 and body == b"Bad Request" and headers["Content-Type"].startswith("text/plain")
    status, headers, _ = get(www["1"], "/status", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert get(www["1"], "/nothing")[0] == 404
    assert get(www["1"], "/monitor", headers={"Last-Event-ID": "2"})[0] == 400

    # a W request to the ROUTER: the monitor's url (what /peer asks other peers)
    with PeerClient(cluster.peers["2"].url, secret=cluster.secret, timeout=2.0) as client:
        assert client.request(b"W") == [www["2"].encode()]
        assert client.request_webmonitor_url() == www["2"]
    with PeerClient(cluster.peers[leader].url, secret=cluster.secret, timeout=2.0) as client:
        index = client.request_update(b"something to commit")

    # the event stream: the state at once (with the retry delay), then every second
    began = time.monotonic()
    got = events(www[leader], 3)
    assert got[0]["retry"] == "2000" and all(e["id"] == leader for e in got)
    state = got[-1]["data"]
    assert state["state"] == "Leader" and state["currentTerm"] >= term and state["votedFor"] == leader
    assert state["commitIndex"] >= index and state["lastApplied"] >= index
    assert state["lastIndex"] >= state["commitIndex"] and state["firstIndex"] == 1
    assert set(state["snapshot"]) == {"logTerm", "logIndex", "dataSize"}
    assert 1.5 < time.monotonic() - began < 6.0  # three messages: now, +1 s, +2 s
    follower = next(p for p in "123" if p != leader)
    assert events(www[follower], 1)[0]["data"]["state"] == "Follower"
