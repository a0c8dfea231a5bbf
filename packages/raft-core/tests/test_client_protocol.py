"""ClientProtocol and SubscriberProtocol, sans-IO: scripted replies, a manual clock.

Every test drives the protocol the way a runtime wrapper does (``frames_to_send``,
``receive``, ``handle_timer`` at ``get_timer``) and checks the exact requests it sends, to
which peer, and what the caller finally gets (spec/client.md §4–§8).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zmqraft.core.client import (
    BroadcastTimeout,
    ClientClosedError,
    ClientError,
    ClientProtocol,
    ClusterBusyError,
    Completed,
    ConfigUpdateError,
    ConnectError,
    EntriesStream,
    Entry,
    ExpiredRequestError,
    ItemsReady,
    LeaderChanged,
    NotLeaderError,
    OutOfOrderError,
    PeersChanged,
    Pulse,
    Readable,
    RequestTimeoutError,
    SnapshotChunk,
    Subscribe,
    SubscriberProtocol,
    UpdateTooLargeError,
)
from zmqraft.core.client.protocol import DEFAULT_MAX_UPDATE_SIZE
from zmqraft.core.cluster import ConfigError
from zmqraft.core.protocol import (
    EntryType,
    RequestIdGenerator,
    checkpoint_entry,
    decode_request,
    encode_entry,
)
from zmqraft.core.protocol import messages as m
from zmqraft.core.raft.options import RaftOptions

U1, U2, U3 = "tcp://127.0.0.1:9001", "tcp://127.0.0.1:9002", "tcp://127.0.0.1:9003"
PEERS = (("1", U1), ("2", U2), ("3", U3))
URL_OF = dict(PEERS)
SEED = "tcp://seed:9000"
RID = bytes.fromhex("5956dc8826f27e10dcccab20")
WALL = 1_700_000_000.0


def entry(i: int, term: int = 1, data: bytes | None = None) -> bytes:
    return encode_entry(RID, EntryType.STATE, term, data if data is not None else f"e{i}".encode())


class Harness:
    def __init__(self, urls: Any = SEED, **kw: Any) -> None:
        self.now = 1000.0
        kw.setdefault("request_ids", RequestIdGenerator(hostname="test", pid=1))
        self.p = ClientProtocol(urls, now=self.now, **kw)

    def sent(self) -> list[tuple[str, Any]]:
        return [(url, decode_request(frames)) for url, frames in self.p.frames_to_send()]

    def one(self) -> tuple[str, Any]:
        sent = self.sent()
        assert len(sent) == 1, sent
        return sent[0]

    def nothing_sent(self) -> None:
        assert self.sent() == []

    def feed(self, reply: Any) -> None:
        self.p.receive(reply.encode(), self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.p.handle_timer(self.now)

    def fire(self) -> float:
        """Jump to the next deadline; returns how far that was."""
        timer = self.p.get_timer()
        assert timer is not None
        step = timer - self.now
        self.now = timer
        self.p.handle_timer(self.now)
        return step

    def events(self) -> list[Any]:
        out = []
        while (event := self.p.next_event()) is not None:
            out.append(event)
        return out

    def discover(self, leader: str = "1") -> None:
        """Answer the pending RequestConfig as the leader."""
        _url, req = self.one()
        assert isinstance(req, m.RequestConfig)
        self.feed(m.RequestConfigReply(req.request_id, True, leader, PEERS))
        assert self.p.leader_id == leader


def known(**kw: Any) -> Harness:
    """A client that knows the peers and the leader "1"."""
    h = Harness(SEED, **kw)
    op = h.p.request_config(h.now)
    h.discover("1")
    assert op.result().leader_id == "1"
    h.events()
    return h


# ---- construction -----------------------------------------------------------------------------


def test_needs_urls_or_peers() -> None:
    with pytest.raises(ValueError, match="seed urls or its peers"):
        ClientProtocol([], now=0.0)
    with pytest.raises(ValueError, match="timeout"):
        ClientProtocol(SEED, now=0.0, timeout=0)
    with pytest.raises(ConfigError):
        ClientProtocol(now=0.0, peers=[["1", "tcp://localhost:1"]])  # peers must be IP literals


def test_known_peers_skip_discovery_and_rotate() -> None:
    h = Harness((), peers=PEERS)
    op = h.p.request_update(b"x", h.now, WALL)
    url, req = h.one()
    assert url == U1 and isinstance(req, m.RequestUpdate)
    h.fire()  # response timeout: next peer, same request id
    url2, req2 = h.one()
    assert url2 == U2 and req2.request_id == req.request_id
    h.fire()
    assert h.one()[0] == U3
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=7))
    assert op.result() == 7


def test_peers_accept_mapping_and_dicts() -> None:
    p = ClientProtocol(now=0.0, peers={"1": U1, "2": U2})
    assert p.peers == (("1", U1), ("2", U2))
    p = ClientProtocol(now=0.0, peers=[{"id": "a", "url": U1}, U2])
    assert p.peers == (("a", U1), (U2, U2))


# ---- discovery and RequestConfig ------------------------------------------------------------


def test_request_config_follows_the_named_leader() -> None:
    h = Harness([SEED])
    op = h.p.request_config(h.now)
    url, req = h.one()
    assert url == SEED and isinstance(req, m.RequestConfig)
    h.feed(m.RequestConfigReply(req.request_id, False, "2", PEERS))
    assert not op.done and h.p.peers == PEERS and h.p.leader_id == "2"
    url, req = h.one()
    assert url == U2  # at once, to the leader only
    h.feed(m.RequestConfigReply(req.request_id, True, "2", PEERS))
    info = op.result()
    assert (info.leader_id, info.is_leader, info.urls, info.url) == ("2", True, URL_OF, U2)
    events = h.events()
    assert PeersChanged(PEERS, (U1, U2, U3)) in events
    assert LeaderChanged("2", U2) in events
    assert Completed(op) in events


def test_request_config_without_leader_waits_the_grace_delay() -> None:
    h = Harness([SEED], election_grace_delay=0.3)
    op = h.p.request_config(h.now)
    _, req = h.one()
    h.feed(m.RequestConfigReply(req.request_id, False, None, PEERS))
    h.nothing_sent()
    assert h.fire() == pytest.approx(0.3)
    url, req = h.one()
    assert url in (U1, U2, U3)
    h.feed(m.RequestConfigReply(req.request_id, True, "3", PEERS))
    assert op.result().leader_id == "3"


def test_request_config_timeout_tries_the_next_peer() -> None:
    h = Harness((), peers=PEERS, timeout=0.5)
    op = h.p.request_config(h.now, timeout=1.2)
    assert h.one()[0] == U1
    assert h.fire() == pytest.approx(0.5)
    assert h.one()[0] == U2
    h.fire()
    assert h.one()[0] == U3
    assert not op.done  # the deadline (1.2 s) passed during this attempt, not before it
    h.fire()
    with pytest.raises(RequestTimeoutError, match=r"no peer answered within 1.2 s.*secret") as err:
        op.result()
    assert err.value.is_timeout and isinstance(err.value, TimeoutError)
    assert U1 in str(err.value) and U3 in str(err.value)
    h.nothing_sent()
    assert h.p.get_timer() is None


def test_unusable_peer_list_is_ignored() -> None:
    h = Harness([SEED])
    op = h.p.request_config(h.now)
    _, req = h.one()
    h.feed(m.RequestConfigReply(req.request_id, True, "x", (("x", "tcp://host:1"),)))
    assert not op.done and h.p.peers == ()
    h.fire()
    _, req = h.one()
    h.feed(m.RequestConfigReply(req.request_id, True, "1", PEERS))
    assert op.done


def test_one_discovery_is_shared_by_concurrent_requests() -> None:
    h = Harness([SEED])
    a = h.p.request_update(b"a", h.now, WALL)
    b = h.p.request_update(b"b", h.now, WALL)
    c = h.p.request_log_info(h.now)
    _url, req = h.one()  # only one RequestConfig
    assert isinstance(req, m.RequestConfig)
    h.feed(m.RequestConfigReply(req.request_id, True, "1", PEERS))
    sent = h.sent()
    assert [u for u, _ in sent] == [U1, U1, U1]
    assert [type(r) for _, r in sent] == [m.RequestUpdate, m.RequestUpdate, m.RequestLogInfo]
    assert not (a.done or b.done or c.done)


def test_waiting_for_discovery_respects_the_deadline() -> None:
    h = Harness([SEED], timeout=0.5)
    op = h.p.request_update(b"a", h.now, WALL, timeout=2.0)
    while not op.done:
        h.sent()
        h.fire()
    assert h.now == pytest.approx(1002.0)
    with pytest.raises(RequestTimeoutError, match="no peer answered within 2 s"):
        op.result()
    # nobody waits for the discovery any more: it stops
    h.sent()
    assert h.p.get_timer() is None


def test_heartbeat_refreshes_the_configuration() -> None:
    h = Harness((), peers=PEERS, heartbeat=5.0, timeout=0.5)
    h.fire()
    _url, req = h.one()
    assert isinstance(req, m.RequestConfig)
    new_peers = (*PEERS, ("4", "tcp://127.0.0.1:9004"))
    h.feed(m.RequestConfigReply(req.request_id, True, "1", new_peers))
    assert h.p.peers == new_peers
    assert h.events()[0] == PeersChanged(new_peers, (U1, U2, U3, "tcp://127.0.0.1:9004"))
    assert h.fire() == pytest.approx(5.0)
    assert isinstance(h.one()[1], m.RequestConfig)
    # a refresh that fails (5 x timeout) is only logged; the next one follows
    while h.p.get_timer() is not None and h.p.get_timer() < h.now + 2.6:  # type: ignore[operator]
        h.fire()
        h.sent()
    assert h.fire() == pytest.approx(5.0, abs=0.6)
    assert isinstance(h.one()[1], m.RequestConfig)


# ---- RequestUpdate ------------------------------------------------------------------------


def test_update_accepted_refreshes_then_committed() -> None:
    h = known(timeout=0.5)
    op = h.p.request_update(b"data", h.now, WALL)
    url, req = h.one()
    assert url == U1 and req.data == b"data" and req.request_id[:4] == int(WALL).to_bytes(4, "big")
    h.advance(0.4)
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.ACCEPTED))
    h.advance(0.4)  # 0.8 s after sending, 0.4 s after [true]: still waiting
    h.nothing_sent()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=42))
    assert op.result() == 42
    assert Completed(op) in h.events()


def test_update_not_leader_with_known_leader_resends_at_once() -> None:
    h = known()
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, "3"))
    url, req2 = h.one()
    assert url == U3 and req2.request_id == req.request_id and req2.data == b"d"
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=5))
    assert op.result() == 5


def test_update_not_leader_without_leader_waits_and_rediscovers() -> None:
    h = known(election_grace_delay=0.3)
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, None))
    assert h.p.leader_id is None
    h.nothing_sent()
    assert h.fire() == pytest.approx(0.3)
    url, cfg = h.one()
    assert isinstance(cfg, m.RequestConfig)
    h.feed(m.RequestConfigReply(cfg.request_id, True, "2", PEERS))
    url, req2 = h.one()
    assert url == U2 and req2.request_id == req.request_id
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=9))
    assert op.result() == 9


def test_update_redirect_ping_pong_waits_for_the_election() -> None:
    h = known(election_grace_delay=0.3)
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, "2"))
    assert h.one()[0] == U2
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, "1"))
    h.nothing_sent()  # two redirects in a row: let the election settle first
    assert h.fire() == pytest.approx(0.3)
    assert isinstance(h.one()[1], m.RequestConfig)
    assert not op.done


def test_update_timeout_goes_to_the_next_peer_with_the_same_id() -> None:
    h = known(timeout=0.5)
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    assert h.fire() == pytest.approx(0.5)
    assert h.p.leader_id is None
    url, req2 = h.one()
    assert url == U2  # not the silent leader again
    assert req2.request_id == req.request_id
    # a late final answer from the first attempt still counts
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=3))
    assert op.result() == 3


def test_update_late_not_leader_while_waiting_is_ignored() -> None:
    h = known(election_grace_delay=0.3)
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, None))
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, "2"))  # duplicate, late
    h.nothing_sent()
    assert not op.done


def test_update_expired_is_final() -> None:
    h = known()
    op = h.p.request_update(b"d", h.now, WALL)
    _, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.EXPIRED))
    with pytest.raises(ExpiredRequestError, match=r"expired request id .*clock"):
        op.result()
    h.nothing_sent()


def test_update_caller_request_id_and_validation() -> None:
    h = known()
    op = h.p.request_update(b"d", h.now, WALL, request_id=RID.hex())
    assert h.one()[1].request_id == RID
    with pytest.raises(ValueError, match="already in use"):
        h.p.request_update(b"e", h.now, WALL, request_id=RID)
    with pytest.raises(ValueError, match="non-empty"):
        h.p.request_update(b"", h.now, WALL)
    with pytest.raises(ValueError, match="12 bytes"):
        h.p.request_update(b"x", h.now, WALL, request_id=b"short")
    assert not op.done


def test_clients_in_one_process_never_draw_the_same_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids made in one process and second differ only in the counter.  Every client draws
    from the process-wide one: with a counter per client (each from a random start) two of a
    thousand clients drew the same id now and then, and the leader answered the second
    update with the first one's index without appending it."""
    monkeypatch.setattr(random.Random, "getrandbits", lambda self, k: 7)  # the same "random" start
    sent = []
    for _ in range(3):
        p = ClientProtocol((), peers=PEERS, now=1000.0)
        p.request_update(b"x", 1000.0, WALL)
        ((_url, frames),) = p.frames_to_send()
        sent.append(decode_request(frames).request_id)
    assert len(set(sent)) == 3, [rid.hex() for rid in sent]


def test_update_deadline() -> None:
    h = known(timeout=0.5)
    op = h.p.request_update(b"d", h.now, WALL, timeout=0.9)
    h.sent()
    h.fire()  # 0.5: retry
    h.sent()
    assert not op.done
    h.fire()  # 1.0: the attempt failed after the deadline
    with pytest.raises(RequestTimeoutError):
        op.result()


# ---- ConfigUpdate -------------------------------------------------------------------------

NEW = [["1", U1], ["2", U2], ["4", "tcp://127.0.0.1:9004"]]


def config_update(h: Harness) -> tuple[Any, Any]:
    op = h.p.config_update(NEW, h.now, WALL)
    url, req = h.one()
    assert url == U1 and isinstance(req, m.ConfigUpdate) and req.peers == NEW
    return op, req


def test_config_update_accepted_then_index() -> None:
    h = known(timeout=0.5)
    op, req = config_update(h)
    h.advance(0.4)
    h.feed(m.ConfigUpdateReply(req.request_id, m.ConfigUpdateStatus.ACCEPTED))
    h.advance(0.4)
    h.nothing_sent()
    h.feed(m.ConfigUpdateReply(req.request_id, m.ConfigUpdateStatus.ACCEPTED, index=11))
    assert op.result() == 11


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        (
            {
                "status": m.ConfigUpdateStatus.ERROR,
                "error_name": "Error",
                "error_message": "no change in cluster membership",
            },
            ConfigUpdateError,
            "no change in cluster membership",
        ),
        ({"status": m.ConfigUpdateStatus.BUSY}, ClusterBusyError, "configuration transition.*retry"),
        ({"status": m.ConfigUpdateStatus.EXPIRED}, ExpiredRequestError, "configUpdate: expired request id"),
    ],
)
def test_config_update_final_errors(reply: dict[str, Any], error: type[Exception], match: str) -> None:
    h = known()
    op, req = config_update(h)
    h.feed(m.ConfigUpdateReply(req.request_id, **reply))
    with pytest.raises(error, match=match):
        op.result()
    h.nothing_sent()


def test_config_update_error_keeps_name_and_message() -> None:
    h = known()
    op, req = config_update(h)
    h.feed(
        m.ConfigUpdateReply(
            req.request_id,
            m.ConfigUpdateStatus.ERROR,
            error_name="AssertionError",
            error_message="peer url must be unique",
        )
    )
    assert isinstance(op.error, ConfigUpdateError) and isinstance(op.error, ValueError)
    assert (op.error.name, op.error.message) == ("AssertionError", "peer url must be unique")


def test_config_update_not_leader_follows() -> None:
    h = known()
    op, req = config_update(h)
    h.feed(m.ConfigUpdateReply(req.request_id, m.ConfigUpdateStatus.NOT_LEADER, leader_id="2"))
    url, req2 = h.one()
    assert url == U2 and req2.request_id == req.request_id
    h.feed(m.ConfigUpdateReply(req.request_id, m.ConfigUpdateStatus.ACCEPTED, index=4))
    assert op.result() == 4


def test_config_update_rejects_bad_peers_before_sending() -> None:
    h = known()
    with pytest.raises(ConfigError, match="valid ip address"):
        h.p.config_update([["1", "tcp://localhost:1"]], h.now, WALL)
    h.nothing_sent()


def test_config_update_bytes_are_sent_as_they_are() -> None:
    h = known()
    h.p.config_update(b"\x91\x92\xa11\xb4tcp://127.0.0.1:9001", h.now, WALL)
    assert h.one()[1].peers == [["1", U1]]


# ---- RequestLogInfo ------------------------------------------------------------------------


def log_info(rid: bytes, leader: bool, leader_id: str | None) -> m.RequestLogInfoReply:
    return m.RequestLogInfoReply(rid, leader, leader_id, 3, 1, 10, 10, 11, 0, 5)


def test_log_info_goes_to_the_leader() -> None:
    h = Harness((), peers=PEERS)
    op = h.p.request_log_info(h.now)
    url, req = h.one()
    assert url == U1
    h.feed(log_info(req.request_id, False, "2"))
    url, req = h.one()
    assert url == U2
    h.feed(log_info(req.request_id, True, "2"))
    info = op.result()
    assert (info.is_leader, info.leader_id, info.term, info.commit_index, info.prune_index, info.url) == (
        True,
        "2",
        3,
        10,
        5,
        U2,
    )


def test_log_info_any_peer_takes_the_first_answer_without_discovery() -> None:
    h = Harness([SEED])
    op = h.p.request_log_info(h.now, any_peer=True)
    url, req = h.one()
    assert url == SEED and isinstance(req, m.RequestLogInfo)
    h.feed(log_info(req.request_id, False, None))
    assert op.result().leader_id is None


def test_pinned_requests_make_one_attempt() -> None:
    h = known(timeout=0.5)
    op = h.p.request_log_info(h.now, url=U3)
    url, req = h.one()
    assert url == U3
    h.feed(log_info(req.request_id, False, "1"))
    assert op.result().url == U3
    op = h.p.request_config(h.now, url=U2, timeout=0.2)
    assert h.one()[0] == U2
    assert h.fire() == pytest.approx(0.2)
    with pytest.raises(RequestTimeoutError, match=f"no answer from {U2}"):
        op.result()
    h.nothing_sent()


def test_pinned_broadcast_url_missing() -> None:
    h = known()
    op = h.p.request_broadcast_url(h.now, url=U2)
    url, req = h.one()
    assert url == U2 and isinstance(req, m.ClientDispatch) and req.type == b"*"
    h.feed(m.RequestBroadcastStateUrlReply(req.request_id, None))
    with pytest.raises(Exception, match="broadcast state url missing"):
        op.result()


def test_broadcast_url_asks_the_leader() -> None:
    h = Harness((), peers=PEERS, election_grace_delay=0.3)
    op = h.p.request_broadcast_url(h.now)
    url, req = h.one()
    assert isinstance(req, m.RequestConfig)  # the leader is not known yet: find it first
    h.feed(m.RequestConfigReply(req.request_id, True, "1", PEERS))
    url, req = h.one()
    assert url == U1 and req.type == b"*"
    h.feed(m.RequestBroadcastStateUrlReply(req.request_id, None))  # "ask the leader again"
    assert h.fire() == pytest.approx(0.3)
    url, req = h.one()
    assert url == U1 and isinstance(req, m.RequestConfig)  # the whole discovery again
    h.feed(m.RequestConfigReply(req.request_id, True, "1", PEERS))
    url, req = h.one()
    assert url == U1 and isinstance(req, m.ClientDispatch)
    h.feed(m.RequestBroadcastStateUrlReply(req.request_id, "tcp://127.0.0.1:9101"))
    assert op.result() == "tcp://127.0.0.1:9101"


def test_custom_request() -> None:
    h = known(timeout=0.5)
    op = h.p.request(b"zz", [b"a", b"b"], h.now)
    url, req = h.one()
    assert url == U1 and req == m.ClientDispatch(req.request_id, b"zz", (b"a", b"b"))
    h.fire()  # no answer: the leader is forgotten; find it again
    url, cfg = h.one()
    assert isinstance(cfg, m.RequestConfig)
    h.feed(m.RequestConfigReply(cfg.request_id, True, "2", PEERS))
    url, req2 = h.one()
    assert url == U2 and req2.request_id != req.request_id
    h.p.receive([req.request_id, b"late"], h.now)  # the first attempt is over
    h.p.receive([req2.request_id, b"x", b"y"], h.now)
    assert op.result() == [b"x", b"y"]
    with pytest.raises(ValueError, match="built-in"):
        h.p.request(b"=", [], h.now)


def test_malformed_and_unknown_replies_are_dropped() -> None:
    h = known()
    op = h.p.request_log_info(h.now)
    _, req = h.one()
    h.p.receive([req.request_id, b"\x01"], h.now)  # too short for a RequestLogInfo reply
    h.p.receive([b"\x99\x99"], h.now)
    h.p.receive([], h.now)
    assert h.p.malformed_replies == 1 and h.p.dropped_replies == 1
    assert not op.done
    h.feed(log_info(req.request_id, True, "1"))
    assert op.done


def test_close_fails_everything() -> None:
    h = known()
    a = h.p.request_update(b"x", h.now, WALL)
    b = h.p.request_entries(h.now, 0)
    h.sent()
    h.p.close(h.now)
    for op in (a, b):
        with pytest.raises(ClientClosedError):
            op.result()
    with pytest.raises(ClientClosedError):
        h.p.request_config(h.now)
    assert h.p.get_timer() is None


def test_cancel() -> None:
    h = known()
    op = h.p.request_update(b"x", h.now, WALL)
    _, req = h.one()
    h.p.cancel(op, h.now)
    assert isinstance(op.error, ClientClosedError)
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=1))
    assert isinstance(op.error, ClientClosedError)
    assert h.p.get_timer() is None


# ---- RequestEntries ----------------------------------------------------------------------


def entries_reply(rid: bytes, status: m.EntriesStatus, first: int, last: int) -> m.RequestEntriesReply:
    return m.RequestEntriesReply(rid, status, None, last, tuple(entry(i) for i in range(first, last + 1)))


def chunk_reply(
    rid: bytes, index: int, offset: int, size: int, data: bytes, term: int = 2
) -> m.RequestEntriesReply:
    return m.RequestEntriesReply(
        rid,
        m.EntriesStatus.SNAPSHOT_CHUNK,
        last_index=index,
        snapshot_offset=offset,
        snapshot_size=size,
        snapshot_term=term,
        chunk=data,
    )


def indexes(items: list[Any]) -> list[int]:
    return [i.index for i in items]


def start_stream(h: Harness, prev: int = 0, count: int | None = None, **kw: Any) -> tuple[EntriesStream, Any]:
    stream = h.p.request_entries(h.now, prev, count, **kw)
    url, req = h.one()
    assert url == U1 and isinstance(req, m.RequestEntries)
    assert (req.prev_index, req.count) == (prev, count)
    return stream, req


def test_entries_acknowledges_each_more_message_but_not_the_last() -> None:
    h = known()
    stream, req = start_stream(h)
    rid = req.request_id
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 1, 3))
    url, ack = h.one()
    assert url == U1 and ack == m.RequestEntries(rid, 3)
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 4, 4))
    assert h.one()[1] == m.RequestEntries(rid, 4)
    h.feed(entries_reply(rid, m.EntriesStatus.LAST, 5, 6))
    h.nothing_sent()  # status 1 is never acknowledged
    assert stream.result() is True
    items = h.p.take(stream, h.now)
    assert indexes(items) == [1, 2, 3, 4, 5, 6]
    assert items[0] == Entry(entry(1), 1) and items[0].data == b"e1" and items[0].term == 1
    assert items[0].type is EntryType.STATE and items[0].request_id == RID and items[0].is_state
    assert any(isinstance(e, Readable) for e in h.events())


def test_entries_empty_last_message_ends_the_stream() -> None:
    h = known()
    stream, req = start_stream(h, prev=10)
    h.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.LAST, None, 8))  # leader behind us
    assert stream.result() is True and h.p.take(stream, h.now) == []


def test_entries_count_is_used_up() -> None:
    h = known()
    stream, req = start_stream(h, prev=0, count=5)
    rid = req.request_id
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 1, 3))
    assert h.one()[1] == m.RequestEntries(rid, 3, 2)  # acks carry the remaining count
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 4, 5))
    assert h.one()[1] == m.RequestEntries(rid, 5, 0)  # count used up: stop the leader's stream
    assert stream.result() is True
    assert stream.count == 0


def test_entries_stop_sends_count_zero() -> None:
    h = known()
    stream, req = start_stream(h)
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 1, 2))
    h.sent()
    h.p.stop(stream, h.now)
    assert h.one()[1] == m.RequestEntries(req.request_id, 2, 0)
    assert stream.result() is False
    assert h.p.take(stream, h.now) == []
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 3, 4))  # in flight: dropped
    h.nothing_sent()


def test_entries_out_of_order_fails_with_resume_state() -> None:
    h = known()
    stream, req = start_stream(h, prev=0, count=10)
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 1, 2))
    h.sent()
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 4, 5))
    assert h.one()[1] == m.RequestEntries(req.request_id, 2, 0)  # stop the leader's stream
    with pytest.raises(OutOfOrderError, match=r"out of order: got 4\.\.5 after 2") as err:
        stream.result()
    assert err.value.resume is not None
    assert (err.value.resume.prev_index, err.value.resume.count, err.value.resume.snapshot_offset) == (
        2,
        8,
        None,
    )
    assert indexes(h.p.take(stream, h.now)) == [1, 2]


def test_entries_continue_at_the_new_leader_after_not_leader() -> None:
    h = known()
    stream, req = start_stream(h, prev=0, count=10)
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 1, 3))
    h.sent()
    h.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "2"))
    url, req2 = h.one()
    assert url == U2 and req2.request_id != req.request_id
    assert (req2.prev_index, req2.count, req2.snapshot_offset) == (3, 7, None)
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 4, 5))  # the old stream: ignored
    h.feed(entries_reply(req2.request_id, m.EntriesStatus.LAST, 4, 10))
    assert stream.result() is True
    assert indexes(h.p.take(stream, h.now)) == list(range(1, 11))


def test_entries_timeout_grows_and_moves_on() -> None:
    h = known(timeout=0.5)
    stream, _req = start_stream(h)
    assert h.fire() == pytest.approx(0.5)
    _url, req2 = h.one()
    assert req2.prev_index == 0
    assert h.fire() == pytest.approx(1.0)  # 2 x timeout
    h.sent()
    assert h.fire() == pytest.approx(1.5)
    h.sent()
    h.fire()
    h.sent()
    assert h.fire() == pytest.approx(2.5)  # at most 5 x timeout
    h.sent()
    assert h.fire() == pytest.approx(2.5)
    assert not stream.done


def test_snapshot_chunks_then_entries() -> None:
    h = known()
    stream, req = start_stream(h, prev=0)
    rid = req.request_id
    h.feed(chunk_reply(rid, 50, 0, 10, b"abcd"))
    assert h.one()[1] == m.RequestEntries(rid, 0, None, 4)  # original prevIndex, next offset
    h.feed(chunk_reply(rid, 50, 4, 10, b"efgh"))
    assert h.one()[1] == m.RequestEntries(rid, 0, None, 8)
    h.feed(chunk_reply(rid, 50, 8, 10, b"ij"))
    assert h.one()[1] == m.RequestEntries(rid, 50)  # after the final chunk: entries after it
    h.feed(chunk_reply(rid, 50, 8, 10, b"ij"))  # the leader's duplicate of the final chunk
    h.nothing_sent()
    h.feed(entries_reply(rid, m.EntriesStatus.LAST, 51, 52))
    assert stream.result() is True
    items = h.p.take(stream, h.now)
    chunks = [i for i in items if isinstance(i, SnapshotChunk)]
    assert [(c.offset, c.data, c.is_first, c.is_last, c.index, c.term) for c in chunks] == [
        (0, b"abcd", True, False, 50, 2),
        (4, b"efgh", False, False, 50, 2),
        (8, b"ij", False, True, 50, 2),
    ]
    assert indexes(items[3:]) == [51, 52]


def test_snapshot_counts_as_one_entry() -> None:
    h = known()
    stream, req = start_stream(h, prev=0, count=1)
    h.feed(chunk_reply(req.request_id, 50, 0, 3, b"abc"))
    h.nothing_sent()
    assert stream.result() is True and stream.prev_index == 50


def test_snapshot_offset_resume_and_out_of_order_chunk() -> None:
    h = known()
    stream, req = start_stream(h, prev=0, snapshot_offset=4)
    assert req.snapshot_offset == 4
    h.feed(chunk_reply(req.request_id, 50, 6, 10, b"xx"))
    with pytest.raises(OutOfOrderError, match="snapshot chunks received out of order") as err:
        stream.result()
    assert err.value.resume is not None and err.value.resume.snapshot_offset == 4


def test_snapshot_transfer_resumes_at_the_next_leader() -> None:
    h = known()
    _stream, req = start_stream(h, prev=0)
    h.feed(chunk_reply(req.request_id, 50, 0, 10, b"abcd"))
    h.sent()
    h.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "3"))
    url, req2 = h.one()
    assert url == U3 and (req2.prev_index, req2.snapshot_offset) == (0, 4)
    h.feed(chunk_reply(req2.request_id, 50, 4, 10, b"efghij"))
    assert h.one()[1] == m.RequestEntries(req2.request_id, 50)


def test_snapshot_replaced_mid_transfer_starts_over() -> None:
    h = known()
    stream, req = start_stream(h, prev=0)
    h.feed(chunk_reply(req.request_id, 50, 0, 10, b"abcd"))
    h.sent()
    h.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "3"))
    _, req2 = h.one()
    h.feed(chunk_reply(req2.request_id, 80, 4, 20, b"zzzz"))  # a newer snapshot, same offset
    sent = h.sent()
    assert sent[0][1] == m.RequestEntries(req2.request_id, 0, 0)  # stop that stream
    req3 = sent[1][1]
    assert (req3.prev_index, req3.snapshot_offset) == (0, None)
    h.feed(chunk_reply(req3.request_id, 80, 0, 4, b"ABCD"))
    chunks = h.p.take(stream, h.now)
    assert [(c.index, c.offset, c.is_first) for c in chunks] == [(50, 0, True), (80, 0, True)]


def test_back_pressure_pauses_and_resumes_without_losing_in_flight_data() -> None:
    h = known()
    stream = h.p.request_entries(h.now, 0, high_water=100)
    _, req = h.one()
    rid = req.request_id
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 1, 5))  # 5 x 23 bytes > 100
    assert h.one()[1] == m.RequestEntries(rid, 5, 0)  # stopped
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 6, 7))  # was in flight: kept, not acked
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 9, 9))  # does not continue: dropped
    h.nothing_sent()
    assert h.p.get_timer() is None  # a paused stream has no deadline
    assert indexes(h.p.take(stream, h.now, 2)) == [1, 2]
    h.nothing_sent()  # still above half the high water mark
    assert indexes(h.p.take(stream, h.now, 3)) == [3, 4, 5]
    _url, req2 = h.one()
    assert req2.request_id != rid and req2.prev_index == 7
    h.feed(entries_reply(rid, m.EntriesStatus.MORE, 8, 8))  # the old stream is over now
    h.feed(entries_reply(req2.request_id, m.EntriesStatus.LAST, 8, 9))
    assert indexes(h.p.take(stream, h.now)) == [6, 7, 8, 9]
    assert stream.result() is True


def test_entries_count_zero_finishes_at_once() -> None:
    h = known()
    stream = h.p.request_entries(h.now, 5, 0)
    assert stream.result() is True
    h.nothing_sent()


# ---- SubscriberProtocol -------------------------------------------------------------------

PUB = "tcp://127.0.0.1:9101"


class SubHarness(Harness):
    def __init__(self, from_index: int | None = 0, timeout: float = 0.5, **kw: Any) -> None:
        super().__init__((), peers=PEERS, secret="s3cret", timeout=timeout)
        self.sub = SubscriberProtocol(self.p, self.now, from_index=from_index, **kw)
        self.catchups: list[tuple[bytes, m.RequestEntries]] = []

    def sent(self) -> list[tuple[str, Any]]:
        return [(url, decode_request(frames)) for url, frames in self.sub.frames_to_send()]

    def sub_events(self) -> list[Any]:
        out = []
        while (event := self.sub.next_event()) is not None:
            out.append(event)
        return out

    def fire_sub(self) -> None:
        timer = self.sub.get_timer()
        assert timer is not None
        self.now = timer
        self.sub.handle_timer(self.now)

    def serve(self, leader: str = "1", pub: str = PUB) -> list[m.RequestEntries]:
        """Answer configuration and URL requests; return the RequestEntries sent."""
        out = []
        for _url, req in self.sent():
            if isinstance(req, m.RequestConfig):
                self.feed(m.RequestConfigReply(req.request_id, True, leader, PEERS))
            elif isinstance(req, m.ClientDispatch):
                self.feed(m.RequestBroadcastStateUrlReply(req.request_id, pub))
            elif isinstance(req, m.RequestEntries):
                out.append(req)
        return out

    def broadcast(self, last: int, first: int | None = None, ident: bytes = b"s3cret") -> None:
        entries = () if first is None else tuple(entry(i) for i in range(first, last + 1))
        self.sub.receive_broadcast(m.StateBroadcast(ident, 1, last, entries).encode(), self.now)

    def take(self) -> list[int]:
        return indexes(self.sub.take(self.now))


def started(from_index: int = 0, last: int = 0, **kw: Any) -> SubHarness:
    """A subscriber whose first catch-up found nothing after ``from_index`` up to ``last``."""
    s = SubHarness(from_index, **kw)
    reqs = s.serve()
    reqs += s.serve()
    (catchup,) = reqs
    assert (catchup.prev_index, catchup.count) == (from_index, None)
    if last > from_index:
        s.feed(entries_reply(catchup.request_id, m.EntriesStatus.LAST, from_index + 1, last))
    else:
        s.feed(m.RequestEntriesReply(catchup.request_id, m.EntriesStatus.LAST, None, from_index))
    assert Subscribe(PUB, b"s3cret") in s.sub_events()
    assert s.take() == list(range(from_index + 1, last + 1))
    return s


def test_subscriber_catches_up_then_follows_broadcasts() -> None:
    s = started(from_index=0, last=3)
    assert s.sub.last_index == 3 and s.sub.pub_url == PUB
    s.broadcast(5, first=4)
    assert ItemsReady() in s.sub_events()
    assert s.take() == [4, 5]
    s.broadcast(5)  # heartbeat, nothing new
    s.broadcast(5, first=4)  # duplicate batch
    assert s.take() == []
    assert s.serve() == []


def test_subscriber_overlapping_batch_delivers_only_new_entries() -> None:
    s = started(last=3)
    s.broadcast(6, first=2)
    assert s.take() == [4, 5, 6]


def test_subscriber_fills_a_gap_and_flushes_what_came_ahead() -> None:
    s = started(last=2)
    s.broadcast(6, first=5)  # 3..4 lost
    (req,) = s.serve()
    assert (req.prev_index, req.count) == (2, 2)
    s.broadcast(8, first=7)  # arrives while catching up: kept ahead
    assert s.take() == []
    s.feed(entries_reply(req.request_id, m.EntriesStatus.LAST, 3, 4))
    assert s.take() == [3, 4, 5, 6, 7, 8]
    assert s.sub.last_index == 8 and s.serve() == []


def test_subscriber_heartbeat_reveals_missing_entries() -> None:
    s = started(last=2)
    s.broadcast(4)  # 3..4 were published while we missed them
    (req,) = s.serve()
    assert (req.prev_index, req.count) == (2, None)
    s.feed(entries_reply(req.request_id, m.EntriesStatus.LAST, 3, 4))
    assert s.take() == [3, 4]


def test_subscriber_delivers_state_entries_only_but_counts_all() -> None:
    s = started()
    raw = (entry(1), checkpoint_entry(2), entry(3))
    s.sub.receive_broadcast(m.StateBroadcast(b"s3cret", 2, 3, raw).encode(), s.now)
    assert s.take() == [1, 3] and s.sub.last_index == 3
    s2 = started(state_only=False)
    s2.sub.receive_broadcast(m.StateBroadcast(b"s3cret", 2, 3, raw).encode(), s2.now)
    assert s2.take() == [1, 2, 3]


def test_subscriber_ignores_other_clusters_and_garbage() -> None:
    s = started()
    s.broadcast(1, first=1, ident=b"s3cret-other")
    s.sub.receive_broadcast([b"s3cret"], s.now)
    assert s.take() == [] and s.sub.auth_failures == 1 and s.sub.malformed == 1
    assert s.serve() == []


def test_subscriber_snapshot_then_entries() -> None:
    s = SubHarness()
    reqs = s.serve() + s.serve()
    (req,) = reqs
    s.feed(chunk_reply(req.request_id, 40, 0, 3, b"abc"))
    (follow,) = s.serve()
    assert follow.prev_index == 40
    s.feed(entries_reply(req.request_id, m.EntriesStatus.LAST, 41, 41))
    items = s.sub.take(s.now)
    assert isinstance(items[0], SnapshotChunk) and items[0].is_last
    assert indexes(items) == [40, 41] and s.sub.last_index == 41


def test_subscriber_broadcast_silence_rediscovers_the_publisher() -> None:
    s = started(last=1, broadcast_timeout=1.0)
    s.fire_sub()  # no broadcast for 1 s
    sent = s.sent()
    kinds = sorted(type(r).__name__ for _, r in sent)
    assert kinds == ["ClientDispatch", "RequestEntries"]  # the PUB URL again, and a catch-up
    for _url, req in sent:
        if isinstance(req, m.ClientDispatch):
            s.feed(m.RequestBroadcastStateUrlReply(req.request_id, "tcp://127.0.0.1:9202"))
        else:
            assert req.prev_index == 1
            s.feed(entries_reply(req.request_id, m.EntriesStatus.LAST, 2, 2))
    assert Subscribe("tcp://127.0.0.1:9202", b"s3cret") in s.sub_events()
    assert s.take() == [2]


def test_subscriber_follows_the_catchup_to_a_new_leader() -> None:
    s = started(last=1)
    s.broadcast(5)
    (req,) = s.serve()
    s.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 2, 3))
    s.sent()
    s.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "2"))
    ((url, req2),) = s.sent()
    assert url == U2 and req2.prev_index == 3
    s.feed(entries_reply(req2.request_id, m.EntriesStatus.LAST, 4, 5))
    assert s.take() == [2, 3, 4, 5]


def test_subscriber_does_not_spin_while_the_new_leader_catches_up() -> None:
    s = started(last=2)
    s.broadcast(5)
    (req,) = s.serve()
    s.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.LAST, None, 2))  # not applied yet
    assert s.take() == []
    assert s.serve() == []  # wait the grace delay before asking again
    s.fire_sub()
    (req2,) = s.serve()
    assert req2.prev_index == 2


def test_subscriber_buffer_limit_drops_broadcasts_and_fetches_later() -> None:
    s = started(buffer_limit=2)
    s.broadcast(2, first=1)
    s.broadcast(4, first=3)  # buffer full: kept ahead
    assert s.serve() == []
    assert s.take() == [1, 2, 3, 4]


def test_subscriber_close() -> None:
    s = started()
    s.sub.close(s.now)
    with pytest.raises(ClientClosedError):
        s.sub.take(s.now)


def test_subscriber_from_index_validation() -> None:
    with pytest.raises(ValueError):
        SubHarness(from_index=-1)


def test_not_leader_error_message() -> None:
    err = NotLeaderError("2", U1)
    assert err.leader_id == "2" and "the leader is '2'" in str(err) and U1 in str(err)


def test_subscriber_retries_a_failed_catchup_after_the_grace_delay() -> None:
    s = started(last=2)
    s.broadcast(6)
    (req,) = s.serve()
    s.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 5, 6))  # not after 2: out of order
    s.sent()  # the stop
    assert s.take() == []
    assert s.serve() == []
    s.fire_sub()
    (req2,) = s.serve()
    assert (req2.prev_index, req2.count) == (2, None)
    s.feed(entries_reply(req2.request_id, m.EntriesStatus.LAST, 3, 6))
    assert s.take() == [3, 4, 5, 6]


def test_subscriber_take_limit_and_last_index() -> None:
    s = started()
    s.broadcast(3, first=1)
    assert indexes(s.sub.take(s.now, 2)) == [1, 2] and s.sub.last_index == 2
    assert indexes(s.sub.take(s.now, 2)) == [3] and s.sub.last_index == 3


# ---- pinned to one peer (the single-peer client, client.md §4) ---------------------------------


def test_pinned_update_surfaces_not_leader_after_one_attempt() -> None:
    h = known()
    op = h.p.request_update(b"x", h.now, WALL, url=U2)
    url, req = h.one()
    assert url == U2 and isinstance(req, m.RequestUpdate)
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, leader_id="1"))
    with pytest.raises(NotLeaderError) as err:
        op.result()
    assert err.value.leader_id == "1"
    h.nothing_sent()  # no redirect to the leader


def test_pinned_update_accepted_refreshes_then_times_out_without_moving_on() -> None:
    h = known(timeout=0.5)
    op = h.p.request_update(b"x", h.now, WALL, url=U1)
    _url, req = h.one()
    h.advance(0.4)
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.ACCEPTED))
    assert h.fire() == pytest.approx(0.5)  # the accepted answer restarted the response timer
    with pytest.raises(RequestTimeoutError, match=f"no answer from {U1}"):
        op.result()
    h.nothing_sent()


def test_pinned_update_committed() -> None:
    h = known()
    op = h.p.request_update(b"x", h.now, WALL, url=U1)
    _url, req = h.one()
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=7))
    assert op.result() == 7


def test_pinned_config_update_not_leader() -> None:
    h = known()
    op = h.p.config_update([("1", U1), ("2", U2)], h.now, WALL, url=U3)
    url, req = h.one()
    assert url == U3 and isinstance(req, m.ConfigUpdate)
    h.feed(m.ConfigUpdateReply(req.request_id, m.ConfigUpdateStatus.NOT_LEADER, leader_id="1"))
    with pytest.raises(NotLeaderError):
        op.result()


def test_pinned_entries_stay_on_their_peer_and_fail_with_resume_state() -> None:
    h = known()
    stream = h.p.request_entries(h.now, 0, 10, url=U2)
    url, req = h.one()
    assert url == U2
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 1, 3))
    assert h.one()[0] == U2  # the acknowledgement
    h.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "1"))
    h.nothing_sent()
    with pytest.raises(NotLeaderError) as err:
        stream.result()
    assert err.value.resume is not None and (err.value.resume.prev_index, err.value.resume.count) == (3, 7)
    assert indexes(h.p.take(stream, h.now)) == [1, 2, 3]


def test_pinned_entries_time_out_and_resume_after_back_pressure_on_the_same_peer() -> None:
    h = known(timeout=0.5)
    stream = h.p.request_entries(h.now, 0, url=U3, high_water=4)
    _url, req = h.one()
    h.feed(entries_reply(req.request_id, m.EntriesStatus.MORE, 1, 3))  # 6 bytes > high water
    assert h.one()[1] == m.RequestEntries(req.request_id, 3, 0)  # paused
    assert indexes(h.p.take(stream, h.now)) == [1, 2, 3]
    url, req2 = h.one()
    assert url == U3 and req2.prev_index == 3
    assert h.fire() == pytest.approx(0.5)
    with pytest.raises(RequestTimeoutError, match=f"no answer from {U3}"):
        stream.result()
    h.nothing_sent()


# ---- the subscriber's duplex side and the peer subscriber (client.md §7, §8) -----------------


def test_subscriber_writes_updates_and_knows_when_it_has_read_them() -> None:
    s = started(last=2)
    op = s.sub.request_update(b"mine", s.now, WALL)
    ((url, req),) = s.sent()
    assert url == U1 and isinstance(req, m.RequestUpdate)
    assert s.sub.last_update_index == 0 and s.sub.is_fresh  # from_index until an update lands
    s.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.COMMITTED, index=3))
    assert op.result() == 3
    assert Completed(op) in s.sub_events()  # a runtime wakes the writer on it
    assert s.sub.last_update_index == 3 and not s.sub.is_fresh
    s.broadcast(3, first=3)
    assert s.take() == [3] and s.sub.is_fresh


def test_a_failed_update_leaves_last_update_index() -> None:
    s = started(last=2)
    op = s.sub.request_update(b"mine", s.now, WALL)
    ((_url, req),) = s.sent()
    s.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.EXPIRED))
    with pytest.raises(ExpiredRequestError):
        op.result()
    assert s.sub.last_update_index == 0


def peer_sub(from_index: int | None = 0, **kw: Any) -> tuple[SubHarness, list[m.RequestEntries]]:
    """A subscriber pinned to peer 2 that found its publisher; the catch-ups it sent."""
    s = SubHarness(from_index, peer_url=U2, **kw)
    sent = s.sent()
    assert {url for url, _r in sent} == {U2}
    assert not any(isinstance(r, m.RequestConfig) for _u, r in sent)  # no discovery
    catchups = []
    for _url, req in sent:
        if isinstance(req, m.ClientDispatch):
            s.feed(m.RequestBroadcastStateUrlReply(req.request_id, PUB))
        else:
            catchups.append(req)
    assert Subscribe(PUB, b"s3cret") in s.sub_events()
    return s, catchups


def test_peer_subscriber_reads_its_peer_until_it_no_longer_leads() -> None:
    s, (req,) = peer_sub(0)
    assert isinstance(req, m.RequestEntries) and req.prev_index == 0
    s.feed(entries_reply(req.request_id, m.EntriesStatus.LAST, 1, 2))
    assert s.take() == [1, 2]
    s.broadcast(4)  # a heartbeat announcing more
    ((url, req),) = s.sent()
    assert url == U2 and req.prev_index == 2
    s.feed(m.RequestEntriesReply(req.request_id, m.EntriesStatus.NOT_LEADER, "1"))
    assert ItemsReady() in s.sub_events()
    with pytest.raises(NotLeaderError):
        s.sub.take(s.now)
    s.broadcast(5, first=5)
    s.nothing_sent()  # ended: nothing more is fetched


def test_peer_subscriber_pulses_and_one_timeout_per_silence() -> None:
    s, catchups = peer_sub(None, pulses=True, broadcast_timeout=1.0)
    assert catchups == []  # pulses only: no entries
    s.broadcast(3, first=2)
    s.broadcast(3)
    pulses = [e for e in s.sub_events() if isinstance(e, Pulse)]
    assert [(p.last_index, p.term, len(p.entries)) for p in pulses] == [(3, 1, 2), (3, 1, 0)]
    assert s.sub.take(s.now) == [] and s.sub.pub_last_index == 3
    s.fire_sub()
    s.sent()
    s.fire_sub()
    timeouts = [e for e in s.sub_events() if isinstance(e, BroadcastTimeout)]
    assert timeouts == [BroadcastTimeout(PUB)]  # once per silence
    s.broadcast(4)
    s.fire_sub()
    assert [e for e in s.sub_events() if isinstance(e, BroadcastTimeout)] == [BroadcastTimeout(PUB)]


def test_peer_subscriber_retries_an_unanswered_url_request() -> None:
    s = SubHarness(None, peer_url=U2, broadcast_timeout=1.0, timeout=0.5)
    ((url, _req),) = s.sent()
    assert url == U2
    s.fire_sub()  # no answer in 0.5 s
    s.nothing_sent()
    s.fire_sub()  # the silence timer asks again
    ((url, req),) = s.sent()
    assert url == U2 and isinstance(req, m.ClientDispatch)


# ---- garbage from the network never escapes as an exception -------------------------------------

frames_strategy = st.lists(st.binary(max_size=24), max_size=8)


@settings(max_examples=300, deadline=None)
@given(replies=st.lists(frames_strategy, max_size=6), broadcasts=st.lists(frames_strategy, max_size=6))
def test_random_replies_and_broadcasts_are_dropped_not_raised(
    replies: list[list[bytes]], broadcasts: list[list[bytes]]
) -> None:
    """Every pending operation's request id gets random frames after it (and random
    broadcasts arrive): the protocols drop what they cannot use, never raise, and still
    work afterwards."""
    s = started(last=2)
    ops = [
        s.sub.request_update(b"u", s.now, WALL),
        s.p.request_log_info(s.now),
        s.p.config_update([("1", U1)], s.now, WALL),
        s.p.request_entries(s.now, 0, 5),
    ]
    sent = s.sent()
    rids = [req.request_id for _url, req in sent]
    for n, frames in enumerate(replies):
        s.p.receive([rids[n % len(rids)], *frames], s.now)
    for frames in broadcasts:
        s.sub.receive_broadcast(frames, s.now)
    s.sub.take(s.now)
    s.fire_sub()  # timers still run
    s.sub.take(s.now)
    for op in ops:  # each either ended with a ClientError or is still pending
        if op.done and op.error is not None:
            assert isinstance(op.error, ClientError)
    fresh = s.p.request_log_info(s.now, url=U1)  # and the client still works
    req = [r for url, r in s.sent() if isinstance(r, m.RequestLogInfo) and url == U1][-1]
    s.feed(log_info(req.request_id, True, "1"))
    assert fresh.result().is_leader


# ---- failing clearly (issues 12 and 13) --------------------------------------------------------


def test_an_update_over_max_update_size_is_refused_before_sending() -> None:
    h = known(max_update_size=10)
    with pytest.raises(
        UpdateTooLargeError, match=r"11 bytes, over the limit of 10 bytes.*maxLogEntryDataSize"
    ):
        h.p.request_update(b"x" * 11, h.now, WALL)
    h.nothing_sent()
    h.p.request_update(b"x" * 10, h.now, WALL)
    assert isinstance(h.one()[1], m.RequestUpdate)
    assert ClientProtocol(SEED, now=0.0).max_update_size == DEFAULT_MAX_UPDATE_SIZE == 10 << 20
    unlimited = known(max_update_size=None)
    unlimited.p.request_update(b"x" * (DEFAULT_MAX_UPDATE_SIZE + 1), unlimited.now, WALL)
    assert isinstance(unlimited.one()[1], m.RequestUpdate)


def test_a_failed_send_fails_its_operation_and_the_discovery_waiters() -> None:
    h = Harness([SEED])
    a = h.p.request_update(b"a", h.now, WALL, timeout=30.0)
    b = h.p.request_log_info(h.now, timeout=30.0)
    (out,) = h.p.frames_to_send()  # the shared discovery
    boom = ConnectError(SEED, "Too many open files")
    h.p.send_failed(out[1], boom, h.now)
    assert a.error is boom and b.error is boom
    assert h.p.get_timer() is None
    # the client is still usable
    c = h.p.request_log_info(h.now, timeout=30.0)
    assert isinstance(h.one()[1], m.RequestConfig) and not c.done


def test_a_timeout_says_peers_answered_without_a_leader() -> None:
    h = known(timeout=0.5)
    op = h.p.request_update(b"a", h.now, WALL, timeout=1.0)
    while not op.done:
        for _url, req in h.sent():
            if isinstance(req, m.RequestUpdate):
                h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.NOT_LEADER, None))
            elif isinstance(req, m.RequestConfig):
                h.feed(m.RequestConfigReply(req.request_id, False, None, PEERS))
        if not op.done:
            h.fire()
    with pytest.raises(RequestTimeoutError) as err:
        op.result()
    text = str(err.value)
    assert "no leader answered within 1 s" in text and "answered without leading" in text, text
    assert "quorum" in text and "timeout=None" in text and "secret" not in text


def test_expired_says_when_the_clocks_differ() -> None:
    h = known()
    op = h.p.request_update(b"d", h.now, WALL)  # an id stamped now, by this machine's clock
    _, req = h.one()
    h.now += 2.0
    h.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.EXPIRED))
    with pytest.raises(ExpiredRequestError) as err:
        op.result()
    assert err.value.clock_skew_suspected and err.value.age == pytest.approx(2.0, abs=1.0)
    text = str(err.value)
    assert "7 h 45 min" in text and "15 min" in text and "behind" in text and "NTP" in text, text
    old = known()
    op = old.p.request_update(b"d", old.now, WALL, request_id=bytes.fromhex("00000001") + RID[4:])
    _, req = old.one()
    old.feed(m.RequestUpdateReply(req.request_id, m.UpdateStatus.EXPIRED))
    assert op.error is not None and "too old" in str(op.error) and not op.error.clock_skew_suspected  # type: ignore[attr-defined]


def test_subscriber_silence_raises_once_per_silence() -> None:
    s = started(last=2, silence_timeout=2.0)
    s.broadcast(2)  # heartbeats keep it quiet
    while s.now < 1003.5:
        s.fire_sub()
        s.serve()
        if s.now < 1001.5:
            s.broadcast(2)
    with pytest.raises(RequestTimeoutError, match=r"no broadcast from the cluster's leader within 2 s"):
        s.sub.take(s.now)
    assert s.take() == []  # once: it keeps trying
    s.broadcast(2)  # heard again: the next error only after another whole silence
    heard = s.now
    while (s.sub.get_timer() or heard) < heard + 1.9:
        s.fire_sub()
        s.serve()
        assert s.take() == []
    assert SubHarness(silence_timeout=None).sub.get_timer() is not None  # the broadcast timer only


def test_client_writes_log_an_oversized_update_once(caplog: pytest.LogCaptureFixture) -> None:
    from zmqraft.core.client_writes import OVERSIZED_LOG_INTERVAL, ClientWrites

    class Node:
        id = "1"

    writes = ClientWrites(Node(), RaftOptions(max_log_entry_data_size=10), lambda _r, _f: None)  # type: ignore[arg-type]
    big = m.RequestUpdate(RID, b"x" * 11)
    with caplog.at_level("WARNING", logger="zmqraft.server"):
        for n in range(20):
            writes.request_update(b"route", big, 100.0 + n * 0.5, 0)
        assert len(caplog.records) == 1
        assert "11 bytes" in caplog.text and "maxLogEntryDataSize = 10" in caplog.text
        writes.request_update(b"route", big, 100.0 + OVERSIZED_LOG_INTERVAL, 0)
    assert len(caplog.records) == 2 and "19 more dropped" in caplog.records[1].getMessage()
    assert writes.oversized_updates == 21
