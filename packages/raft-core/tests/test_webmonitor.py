"""The web monitor's decisions, sans-IO (spec server-and-tools.md (d)): addresses, what each
request gets, the event stream's messages, the peer URL cache and the ``W`` answer."""

from __future__ import annotations

import json

import pytest
from test_server import SOLE, THREE, Endpoint
from zmqraft.core.client.items import LogInfo
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.config import create_options, validate_options
from zmqraft.core.server import ClientRequest
from zmqraft.core.webmonitor import (
    ClusterQuery,
    MetricsRequest,
    PeerLookup,
    Response,
    Stream,
    WebMonitor,
    WebMonitorError,
    sse,
    web_address,
)


def options(**web: object) -> dict[str, object]:
    return validate_options(create_options({"id": "a", "peers": [list(p) for p in SOLE], "webmonitor": web}))


def test_address_from_options() -> None:
    assert web_address(options()) is None  # not enabled
    address = web_address(options(enable=True))
    assert address is not None
    assert (address.url, address.host, address.port) == ("http://localhost:8050", "::", 8050)
    assert address.proto == "http"
    bind = {"host": "127.0.0.1", "port": 9100}
    address = web_address(options(enable=True, host="::1", port=9000, bind=bind))
    assert address is not None  # bind.port counts with bind.host too (the original ignored it)
    assert (address.url, address.host, address.port) == ("http://[::1]:9000", "127.0.0.1", 9100)
    address = web_address(options(enable=True, proto="https", bind={"proto": "https", "cert": "c.pem"}))
    assert address is not None and address.url.startswith("https://") and address.tls == {"cert": "c.pem"}
    with pytest.raises(WebMonitorError, match="unknown webmonitor protocol"):
        web_address(options(enable=True, bind={"proto": "gopher"}))


def monitor(
    peers: tuple[tuple[str, str], ...] = SOLE, label: str | None = "lab"
) -> tuple[Endpoint, WebMonitor]:
    ep = Endpoint(peers)
    address = web_address(options(enable=True, host="h", port=1))
    assert address is not None
    return ep, WebMonitor(ep.server, address, label=label, page=b"<html>")


def handle(mon: WebMonitor, path: str, method: str = "GET", **headers: str) -> object:
    path, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return mon.handle(method, path, params, headers)


def test_requests() -> None:
    _, mon = monitor()
    page = handle(mon, "/")
    assert page == Response(200, "text/html; charset=utf-8", b"<html>") == handle(mon, "/index.html")
    assert handle(mon, "/status") == ClusterQuery(())  # the sole member: nobody else to ask
    assert handle(mon, "/metrics") == MetricsRequest()
    refused = handle(mon, "/status", method="POST")
    assert isinstance(refused, Response) and refused.status == 405
    assert refused.headers == (("Allow", "GET, HEAD"),)
    assert refused.body == b"Method Not Allowed"
    assert isinstance(handle(mon, "/monitor"), Stream)
    assert isinstance(handle(mon, "/monitor", **{"Last-Event-ID": "a"}), Stream)
    wrong = handle(mon, "/monitor", **{"last-event-id": "b"})
    assert isinstance(wrong, Response) and wrong.status == 400
    assert handle(mon, "/assets/css/x.css") == "css/x.css"
    for bad in ("/assets/../secret", "/assets/a/../../b", "/assets/"):
        r = handle(mon, bad)
        assert isinstance(r, Response) and r.status == 403, bad
    missing = handle(mon, "/elsewhere")
    assert isinstance(missing, Response) and (missing.status, missing.body) == (404, b"Not Found")
    _, unlabelled = monitor(label=None)
    assert unlabelled.status() == {"peers": [["a", "tcp://127.0.0.1:9001"]]}


def test_peer_lookups_are_cached_until_the_peer_leaves() -> None:
    _, mon = monitor(THREE)
    me = handle(mon, "/peer?id=a")
    assert isinstance(me, Response) and json.loads(me.body) == {"id": "a", "url": "http://h:1"}
    no_id = handle(mon, "/peer")
    assert isinstance(no_id, Response) and no_id.status == 400
    unknown = handle(mon, "/peer?id=z")
    assert isinstance(unknown, Response) and unknown.status == 404
    lookup = handle(mon, "/peer?id=b")
    assert lookup == PeerLookup("b", "tcp://127.0.0.1:9002")
    failed = mon.peer_found(lookup, None)  # type: ignore[arg-type]
    assert failed.status == 503
    assert handle(mon, "/peer?id=b") == lookup  # a failure is not cached
    found = mon.peer_found(lookup, "http://b:2")  # type: ignore[arg-type]
    assert json.loads(found.body) == {"id": "b", "url": "http://b:2"}
    cached = handle(mon, "/peer?id=b")
    assert isinstance(cached, Response) and json.loads(cached.body)["url"] == "http://b:2"
    mon.config_changed(ClusterConfig(SOLE + THREE[2:]))  # b left
    assert handle(mon, "/peer?id=b") == lookup


def test_event_stream_messages() -> None:
    ep, mon = monitor()
    first = mon.open_message().decode()
    assert first.startswith("retry: 2000\nid: a\ndata: {") and first.endswith("}\n\n")
    state = json.loads(first.split("data: ", 1)[1])
    assert state["state"] == "Leader" and state["currentTerm"] >= 1 and "votedFor" in state
    assert state["snapshot"] == {"logTerm": 0, "logIndex": 0, "dataSize": 0}
    index = ep.update(b"x")
    again = json.loads(mon.state_message().decode().split("data: ", 1)[1])
    assert again["commitIndex"] >= index and again["lastIndex"] >= index and again["lastApplied"] >= index
    config = mon.config_message().decode()
    assert config.startswith("event: config\ndata: ") and "id:" not in config
    assert sse("two\nlines", id="x") == b"id: x\ndata: two\ndata: lines\n\n"


def test_w_requests_are_answered_with_the_monitor_url() -> None:
    ep, mon = monitor()
    assert mon.answer(ClientRequest(b"peer", b"\x01\x02", b"W", ()))
    ep.pump()
    assert ep.router[b"peer"] == [[b"\x01\x02", b"http://h:1"]]
    assert not mon.answer(ClientRequest(b"peer", b"\x03", b"X", ()))


def test_cluster_status_is_the_whole_cluster_in_one_answer() -> None:
    _, mon = monitor(THREE)
    assert handle(mon, "/status") == ClusterQuery(THREE[1:])
    infos = {
        "b": LogInfo(True, "b", 7, 1, 40, 40, 42, 0, 0, "tcp://127.0.0.1:9002"),
        "c": None,  # did not answer
    }
    status = mon.cluster_status(infos, now=1.0, wall=1_800_000_000.5)
    assert status["peers"] == [list(p) for p in THREE] and status["label"] == "lab"  # the original's
    assert (status["id"], status["leader"], status["term"]) == ("a", "b", 7)
    assert status["time"] == 1_800_000_000_500
    assert status["config"] == {"joint": False, "old": [list(p) for p in THREE], "new": None}
    members = {member["id"]: member for member in status["members"]}
    assert members["b"]["state"] == "Leader" and members["b"]["lag"] == 0 and members["b"]["reachable"]
    assert members["c"] == {
        "id": "c",
        "url": THREE[2][1],
        "reachable": False,
        "lag": None,
        "matchIndex": None,
        "lastHeard": None,
    }
    assert members["a"]["lastHeard"] == 0.0 and members["a"]["lag"] == 42 - members["a"]["lastIndex"]
    assert status["quorumHealthy"] is False  # a follower that never heard from the leader
    assert isinstance(status["commitHistory"], list) and isinstance(status["events"], list)
    response = mon.cluster_response(infos, 1.0, 1_800_000_000.5)
    assert response.content_type == "application/json" and json.loads(response.body) == status


def test_cluster_status_of_a_sole_leader() -> None:
    ep, mon = monitor()
    ep.update(b"x")
    status = mon.cluster_status({}, now=ep.now, wall=1_800_000_000.0)
    assert status["leader"] == "a" and status["quorumHealthy"] is True
    (me,) = status["members"]
    assert me["state"] == "Leader" and me["lag"] == 0 and me["commitIndex"] == status["commitIndex"] >= 1
    assert status["commitHistory"][-1][1] >= 0
    assert [e["kind"] for e in status["events"]] == ["leader"]


def test_a_taken_port_is_retried_and_logged_once_any_other_failure_ends_the_monitor() -> None:
    """Both runtimes' listen loops: what to log and whether to try again."""
    import errno

    from zmqraft.core.webmonitor import WebAddress, listen_failed, port_taken

    address = WebAddress("http://127.0.0.1:8050/", "127.0.0.1", 8050, "http")
    taken = OSError(errno.EADDRINUSE, "Address already in use")
    assert listen_failed(address, taken, 1) == (port_taken(address), True)
    assert listen_failed(address, taken, 2) == (None, True)
    line, again = listen_failed(address, OSError(errno.EACCES, "Permission denied"), 1)
    assert not again and line is not None
    assert line.startswith("web monitor: can not listen at 127.0.0.1:8050:") and "Permission denied" in line
