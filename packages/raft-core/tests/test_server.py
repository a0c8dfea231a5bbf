"""The peer endpoint (PeerServer, through its PeerDriver) driven frame by frame: client RPCs, RequestEntries
pipelines, debouncing, bad input and the broadcast state machine's messages.

Storage and apply jobs are performed synchronously with the in-memory storage, so every test
sees exactly the frames a runtime would put on the ROUTER and PUB sockets.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from zmqraft.core.client_writes import ACCEPTED_AFTER
from zmqraft.core.cluster import ClusterConfig
from zmqraft.core.driver import PeerDriver
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, encode_entry, entry_term
from zmqraft.core.protocol.reqid import RequestIdGenerator
from zmqraft.core.raft.node import Role
from zmqraft.core.raft.options import RaftOptions
from zmqraft.core.server import ClientRequest, PeerServer, hard_state_from
from zmqraft.core.statemachine import SnapshotReader, StateMachine
from zmqraft.core.storage.base import SnapshotMeta
from zmqraft.core.storage.memory import MemoryLog, MemoryState

WALL = 1_800_000_000.0
SOLE = (("a", "tcp://127.0.0.1:9001"),)
THREE = (*SOLE, ("b", "tcp://127.0.0.1:9002"), ("c", "tcp://127.0.0.1:9003"))


class Counting(StateMachine):
    """Records what it is fed; applied inside the driver's round (it does not block)."""

    blocking = False

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[bytes] = []

    def apply_entries(
        self, entries: list[bytes], next_index: int, term: int, snapshot: SnapshotReader | None = None
    ) -> int:
        self.entries.extend(entries)
        if entries:
            return next_index + len(entries) - 1
        return snapshot.index if snapshot is not None else next_index - 1


class Endpoint:
    """One peer (a PeerDriver around a PeerServer) with synchronous storage and a state
    machine that records what it is fed."""

    def __init__(
        self,
        peers: tuple[tuple[str, str], ...] = SOLE,
        me: str = "a",
        secret: bytes = b"",
        options: RaftOptions | None = None,
    ) -> None:
        self.log = MemoryLog()
        self.state = MemoryState()
        self.state.update({"peers": ClusterConfig(peers).to_json()})
        self.now = 0.0
        self.secret = secret
        self.ids = RequestIdGenerator(random.Random(7), hostname="test", pid=1)
        self.router: dict[bytes, list[list[bytes]]] = defaultdict(list)
        self.peer_out: dict[str, list[list[bytes]]] = defaultdict(list)
        self.pub: list[list[bytes]] = []
        self.machine = Counting()
        self.events: list[object] = []  # what the driver handled, in order
        self.server = PeerServer(
            me,
            self.log,
            hard_state_from(dict(self.state.load())),
            now=self.now,
            wall=WALL,
            options=options or RaftOptions(),
            rng=random.Random(1),
            secret=secret,
        )
        self.driver = PeerDriver(self.server, self.machine, self.log, self.state)
        self.pump()

    @property
    def applied(self) -> list[bytes]:
        return self.machine.entries

    def pump(self) -> None:
        """Rounds until no work is left, each storage job done at once."""
        for _ in range(1000):
            out = self.driver.round(self.now, WALL)
            for work in out.work:
                self.driver.complete(work, work.run(), self.now, WALL)
            for address, frames in out.router:
                self.router[address].append(frames)
            for peer_id, frames in out.peers:
                self.peer_out[peer_id].append(frames)
            self.pub.extend(out.pub)
            self.events.extend(out.events)
            if not out.work:
                return
        raise AssertionError("the driver keeps handing out work")

    def send(self, frames: list[bytes], routing: bytes = b"client") -> list[list[bytes]]:
        """Feed one ROUTER message; return (and forget) the replies it produced."""
        self.server.receive_router(routing, frames, self.now, WALL)
        self.pump()
        return self.router.pop(routing, [])

    def update(self, data: bytes, rid: bytes | None = None) -> int:
        rid = rid or self.ids.next(WALL)
        replies = [
            m.RequestUpdateReply.decode(f) for f in self.send(m.RequestUpdate(rid, data).encode(self.secret))
        ]
        final = replies[-1]
        assert final.status is m.UpdateStatus.COMMITTED and final.index is not None, replies
        return final.index

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.server.handle_timer(self.now, WALL)
        self.pump()


def rid_at(seconds: float) -> bytes:
    return RequestIdGenerator(random.Random(3), hostname="t", pid=2).next(seconds)


# ---- RequestConfig / RequestLogInfo ------------------------------------------------------


def test_a_peer_without_its_own_rng_draws_request_ids_from_the_process_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ids a peer makes (its C(new) entries) and those of clients in the same process
    differ only in the counter: they share the process-wide one (a seeded rng, as in the
    simulator, keeps a counter of its own)."""
    monkeypatch.setattr(random.Random, "getrandbits", lambda self, k: 7)  # the same "random" start
    state = MemoryState()
    state.update({"peers": ClusterConfig(SOLE).to_json()})
    made = set()
    for _ in range(3):  # three peers embedded in one process
        server = PeerServer("a", MemoryLog(), hard_state_from(dict(state.load())), now=0.0, wall=WALL)
        made.add(server.node.request_id_generator.next(WALL))
    seeded = PeerServer(
        "a", MemoryLog(), hard_state_from(dict(state.load())), now=0.0, wall=WALL, rng=random.Random(1)
    )
    assert seeded.node.request_id_generator is not server.node.request_id_generator
    assert len(made) == 3


def test_sole_member_leads_and_answers_config_and_log_info() -> None:
    ep = Endpoint()
    assert ep.server.node.role is Role.LEADER
    (frames,) = ep.send(m.RequestConfig(b"\x01").encode(b""))
    assert m.RequestConfigReply.decode(frames) == m.RequestConfigReply(b"\x01", True, "a", SOLE)
    ep.update(b"one")
    (frames,) = ep.send(m.RequestLogInfo(b"\x02").encode(b""))
    info = m.RequestLogInfoReply.decode(frames)
    assert (info.is_leader, info.leader_id, info.term) == (True, "a", 1)
    assert info.first_index == 1 and info.last_index == info.commit_index == info.last_applied == 1
    assert info.prune_index == 0  # the cached request id of entry 1 pins it


def test_follower_without_leader_answers_with_nil_leader() -> None:
    ep = Endpoint(THREE)
    assert ep.server.node.role is Role.FOLLOWER
    (frames,) = ep.send(m.RequestConfig(b"\x01").encode(b""))
    assert m.RequestConfigReply.decode(frames) == m.RequestConfigReply(b"\x01", False, None, THREE)


# ---- RequestUpdate -----------------------------------------------------------------------


def test_update_is_committed_and_a_retry_gets_the_same_index() -> None:
    ep = Endpoint()
    rid = ep.ids.next(WALL)
    replies = [m.RequestUpdateReply.decode(f) for f in ep.send(m.RequestUpdate(rid, b"x").encode(b""))]
    # committed at once: no ACCEPTED first (it would only say "wait")
    assert [r.status for r in replies] == [m.UpdateStatus.COMMITTED]
    index = replies[0].index
    assert ep.update(b"x", rid) == index
    assert ep.log.last_index == index  # not appended twice


def test_a_drained_batch_of_updates_is_appended_at_once_and_in_order_with_other_requests() -> None:
    """The runtimes feed a drained ROUTER batch in one call: its new updates are one log
    append, each hears the index of its own entry, a retry inside the batch hears ACCEPTED,
    a malformed message costs nothing else, and any other request sees the updates before
    it already appended (the node gets every input in order)."""
    ep = Endpoint()
    log = ep.server.node.log
    appends = []
    append = log.append
    log.append = lambda entries: appends.append(len(entries)) or append(entries)  # type: ignore[method-assign]
    a, b, c = (ep.ids.next(WALL) for _ in range(3))
    first = log.last_index + 1
    batch = [
        [b"c1", *m.RequestUpdate(a, b"A").encode(b"")],
        [b"c2", *m.RequestUpdate(b, b"B").encode(b"")],
        [b"c1", *m.RequestUpdate(a, b"A").encode(b"")],  # a retry in the same batch
        [b"c3", b"\x01", m.REQUEST_UPDATE],  # malformed: no ident
        [b"c4", *m.RequestLogInfo(b"\x07").encode(b"")],
        [b"c5", *m.RequestUpdate(c, b"C").encode(b"")],
    ]
    ep.server.receive_router_batch(batch, ep.now, WALL)
    assert appends == [2, 1]  # A and B before the RequestLogInfo, C after it
    assert ep.server.stats.dropped_malformed == 1
    ep.pump()
    (info,) = ep.router.pop(b"c4")
    assert m.RequestLogInfoReply.decode(info).last_index == first + 1
    got = {}
    for routing in (b"c1", b"c2", b"c5"):
        for frames in ep.router.pop(routing):
            reply = m.RequestUpdateReply.decode(frames)
            got.setdefault(reply.request_id, []).append((reply.status, reply.index))
    assert got == {
        a: [(m.UpdateStatus.ACCEPTED, None), (m.UpdateStatus.COMMITTED, first)],
        b: [(m.UpdateStatus.COMMITTED, first + 1)],
        c: [(m.UpdateStatus.COMMITTED, first + 2)],
    }
    assert [ep.log.entry(i)[:12] for i in range(first, first + 3)] == [a, b, c]
    assert [entry[-1:] for entry in ep.applied[-3:]] == [b"A", b"B", b"C"]  # applied in order


def test_an_update_still_waiting_after_a_while_hears_accepted_once() -> None:
    """ACCEPTED (spec protocol.md §9.3) refreshes the client's 500 ms response timeout; it
    is sent only for an update that waits ACCEPTED_AFTER seconds, and a retry of a waiting id
    hears it at once."""
    ep = Endpoint()
    driver = ep.driver
    rid = ep.ids.next(WALL)
    driver.receive_router(b"c", m.RequestUpdate(rid, b"x").encode(b""), ep.now, WALL)
    out = driver.round(ep.now, WALL)
    (write,) = out.work  # the write is held back: the update cannot commit yet
    assert out.router == []
    deadline = driver.next_deadline()
    assert deadline is not None and deadline <= ep.now + ACCEPTED_AFTER
    driver.handle_timer(ep.now + ACCEPTED_AFTER, WALL)
    out = driver.round(ep.now + ACCEPTED_AFTER, WALL)
    assert [m.RequestUpdateReply.decode(f).status for _, f in out.router] == [m.UpdateStatus.ACCEPTED]
    driver.receive_router(b"c", m.RequestUpdate(rid, b"x").encode(b""), ep.now, WALL)  # a retry
    out = driver.round(ep.now + ACCEPTED_AFTER, WALL)
    assert [m.RequestUpdateReply.decode(f).status for _, f in out.router] == [m.UpdateStatus.ACCEPTED]
    driver.complete(write, write.run(), ep.now + 0.2, WALL)
    out = driver.round(ep.now + 0.2, WALL)
    assert [m.RequestUpdateReply.decode(f).status for _, f in out.router] == [m.UpdateStatus.COMMITTED]
    driver.handle_timer(ep.now + 1.0, WALL)
    assert driver.round(ep.now + 1.0, WALL).router == []  # answered: no second ACCEPTED


def test_update_to_a_follower_names_no_leader() -> None:
    ep = Endpoint(THREE)
    (frames,) = ep.send(m.RequestUpdate(ep.ids.next(WALL), b"x").encode(b""))
    assert m.RequestUpdateReply.decode(frames) == m.RequestUpdateReply(
        frames[0], m.UpdateStatus.NOT_LEADER, None
    )


def test_stale_and_future_request_ids_are_rejected_as_expired() -> None:
    ep = Endpoint()
    for seconds in (WALL - 9 * 3600, WALL + 3600):
        rid = rid_at(seconds)
        (frames,) = ep.send(m.RequestUpdate(rid, b"x").encode(b""))
        assert frames == [rid, b""]  # [reqid, false]: no third frame
    assert ep.log.last_index == 0


def test_a_retry_of_an_id_the_cache_cap_evicted_is_expired_not_applied_twice() -> None:
    ep = Endpoint(options=RaftOptions(request_id_cache_max=8))
    ids = [rid_at(WALL - 100 + n) for n in range(12)]
    for rid in ids:
        ep.send(m.RequestUpdate(rid, b"x").encode(b""))
    assert ep.log.last_index == 12 and len(ep.server.node.request_ids) <= 8
    (first,) = ep.send(m.RequestUpdate(ids[0], b"x").encode(b""))
    assert first == [ids[0], b""] and ep.log.last_index == 12  # EXPIRED, not a second entry
    (last,) = ep.send(m.RequestUpdate(ids[-1], b"x").encode(b""))
    committed = m.RequestUpdateReply(ids[-1], m.UpdateStatus.COMMITTED, index=12)
    assert m.RequestUpdateReply.decode(last) == committed


def test_the_update_fast_path_reads_and_answers_as_the_message_classes_do() -> None:
    """The server reads RequestUpdates without ``RequestUpdate.decode`` and answers without
    ``RequestUpdateReply``: the same frames in, the same frames out, a frame more ignored."""
    ep = Endpoint(secret=b"s3")
    rid = ep.ids.next(WALL)
    (frames,) = ep.send([rid, m.REQUEST_UPDATE, b"s3", b"data", b"extra frame"])
    index = ep.log.last_index
    assert frames == m.RequestUpdateReply(rid, m.UpdateStatus.COMMITTED, index=index).encode()
    assert frames == m.committed_update_reply(rid, index)
    assert ep.log.entry(index)[20:] == b"data"
    big = 1 << 40  # past int32: the original's msgpack dialect sends it as a float64
    assert (
        m.committed_update_reply(rid, big)
        == m.RequestUpdateReply(rid, m.UpdateStatus.COMMITTED, index=big).encode()
    )


def test_wrong_secret_and_malformed_requests_are_dropped_silently() -> None:
    ep = Endpoint(secret=b"s3")
    assert ep.send(m.RequestConfig(b"\x01").encode(b"other")) == []
    assert ep.send([b"\x01" * 12, m.REQUEST_UPDATE, b"s3", b""]) == []  # empty data
    assert ep.send([b"\x01" * 5, m.REQUEST_UPDATE, b"s3", b"x"]) == []  # not a 12-byte reqid
    assert ep.send([b"\x01", m.APPEND_ENTRIES, b"s3", b"a"]) == []  # truncated peer message
    assert ep.send([b"\x01"]) == []
    assert ep.server.stats.dropped_ident == 1
    assert ep.server.stats.dropped_malformed == 4
    assert ep.server.node.role is Role.LEADER


# ---- ConfigUpdate ----------------------------------------------------------------------------


def config_reply(ep: Endpoint, peers: object, rid: bytes | None = None) -> m.ConfigUpdateReply:
    rid = rid or ep.ids.next(WALL)
    replies = ep.send(m.ConfigUpdate(rid, peers).encode(b""))
    return m.ConfigUpdateReply.decode(replies[-1])


def test_config_update_statuses() -> None:
    ep = Endpoint()
    same = [list(p) for p in SOLE]
    bad = config_reply(ep, same)
    assert (bad.status, bad.error_name, bad.error_message) == (
        m.ConfigUpdateStatus.ERROR,
        "Error",
        "no change in cluster membership",
    )
    assert config_reply(ep, same, rid_at(WALL - 9 * 3600)).status is m.ConfigUpdateStatus.EXPIRED
    grow = [*same, ["b", "tcp://127.0.0.1:9002"]]
    accepted = config_reply(ep, grow)
    assert accepted.status is m.ConfigUpdateStatus.ACCEPTED and accepted.index is None
    assert ep.server.node.config.is_joint  # adopted at once; needs b to commit
    assert config_reply(ep, [*grow, ["c", "tcp://127.0.0.1:9003"]]).status is m.ConfigUpdateStatus.BUSY
    follower = Endpoint(THREE)
    assert config_reply(follower, same).status is m.ConfigUpdateStatus.NOT_LEADER


def test_config_update_of_a_sole_member_commits_and_answers_with_the_joint_index() -> None:
    ep = Endpoint()
    ep.update(b"x")
    shrink_to = [["a", SOLE[0][1]], ["b", "tcp://127.0.0.1:9002"]]
    rid = ep.ids.next(WALL)
    first = m.ConfigUpdateReply.decode(ep.send(m.ConfigUpdate(rid, shrink_to).encode(b""))[-1])
    assert first.status is m.ConfigUpdateStatus.ACCEPTED
    # b acknowledges everything: the leader commits C(old,new), then appends C(new)
    for frames in ep.peer_out.pop("b"):
        ae = m.AppendEntries.decode(frames)
        ep.server.receive_peer("b", m.AppendEntriesReply(ae.msg_id, ae.term, False, 1).encode(), ep.now, WALL)
        ep.pump()
    for _ in range(5):
        for frames in ep.peer_out.pop("b", []):
            ae = m.AppendEntries.decode(frames)
            reply = m.AppendEntriesReply(ae.msg_id, ae.term, True)
            ep.server.receive_peer("b", reply.encode(), ep.now, WALL)
            ep.pump()
    done = [m.ConfigUpdateReply.decode(f) for f in ep.router.pop(b"client", [])]
    assert done and done[-1].status is m.ConfigUpdateStatus.ACCEPTED and done[-1].index == 2
    assert not ep.server.node.config.is_joint
    assert ep.log.entries(3, 3)[0][12] == EntryType.CONFIG  # C(new)
    again = config_reply(ep, shrink_to, rid)
    assert (again.status, again.index) == (m.ConfigUpdateStatus.ACCEPTED, 2)


# ---- RequestEntries ------------------------------------------------------------------------


def entries_replies(frames_list: list[list[bytes]]) -> list[m.RequestEntriesReply]:
    return [m.RequestEntriesReply.decode(f) for f in frames_list]


def filled(count: int, size: int = 1000) -> Endpoint:
    ep = Endpoint()
    for n in range(count):
        ep.update(b"%05d" % n + b"x" * (size - 5))
    return ep


def test_entries_stream_keeps_five_messages_in_flight() -> None:
    ep = filled(600)
    first = entries_replies(ep.send(m.RequestEntries(b"\x07", 0).encode(b"")))
    assert len(first) == 5 and all(r.status is m.EntriesStatus.MORE for r in first)
    assert ep.send(m.RequestEntries(b"\x07", 0).encode(b""), routing=b"other") != []  # streams are per client
    # nothing more until the oldest message is acknowledged, then exactly one more
    ack = entries_replies(ep.send(m.RequestEntries(b"\x07", first[0].last_index).encode(b"")))
    assert (
        len(ack) == 1
        and ack[0].entries[0] == ep.log.entries(first[-1].last_index + 1, first[-1].last_index + 1)[0]
    )
    # a follow-up that does not acknowledge the oldest message restarts the stream
    restart = entries_replies(ep.send(m.RequestEntries(b"\x07", 100).encode(b"")))
    assert len(restart) == 5 and restart[0].entries[0] == ep.log.entries(101, 101)[0]
    # count 0 in a follow-up stops it without a reply
    assert ep.send(m.RequestEntries(b"\x07", restart[0].last_index, 0).encode(b"")) == []
    assert len(ep.server._streams) == 1  # only the other client's


def test_entries_stream_returns_every_entry_once_in_order() -> None:
    ep = filled(300)
    seen: list[bytes] = []
    outstanding = entries_replies(ep.send(m.RequestEntries(b"\x09", 0).encode(b"")))
    for reply in outstanding:
        seen += reply.entries
    for _ in range(100):
        if outstanding[-1].status is m.EntriesStatus.LAST and len(outstanding) <= 1:
            break
        oldest = outstanding.pop(0)
        more = entries_replies(ep.send(m.RequestEntries(b"\x09", oldest.last_index).encode(b"")))
        for reply in more:
            seen += reply.entries
        outstanding += more
    assert seen == ep.log.entries(1, 300)
    assert len(ep.server._streams) == 0  # removed once the final message went out


def test_entries_count_zero_stops_and_a_count_limits_the_range() -> None:
    ep = filled(50, 100)
    (only,) = entries_replies(ep.send(m.RequestEntries(b"\x01", 10, 5).encode(b"")))
    assert (only.status, only.last_index, len(only.entries)) == (m.EntriesStatus.LAST, 15, 5)
    assert ep.send(m.RequestEntries(b"\x02", 10, 0).encode(b"")) == []  # count 0 without a stream
    (beyond,) = entries_replies(ep.send(m.RequestEntries(b"\x03", 80).encode(b"")))
    assert (beyond.status, beyond.last_index, beyond.entries) == (m.EntriesStatus.LAST, 50, ())


def test_entries_from_a_follower_name_the_leader() -> None:
    ep = Endpoint(THREE)
    (reply,) = entries_replies(ep.send(m.RequestEntries(b"\x01", 0).encode(b"")))
    assert reply.status is m.EntriesStatus.NOT_LEADER and reply.leader_id is None


def test_entries_before_the_snapshot_come_as_chunks_then_entries() -> None:
    ep = filled(40, 100)
    data = bytes(range(256)) * 300  # 76800 bytes: two chunks
    ep.log.install_snapshot(SnapshotMeta(30, entry_term(ep.log.entries(30, 30)[0]), len(data)), data)
    ep.server.snapshot_installed(ep.now)
    chunks = entries_replies(ep.send(m.RequestEntries(b"\x05", 0).encode(b"")))
    assert [c.status for c in chunks] == [m.EntriesStatus.SNAPSHOT_CHUNK] * 2
    assert b"".join(c.chunk for c in chunks) == data
    assert [c.snapshot_offset for c in chunks] == [0, 65536] and chunks[0].last_index == 30
    after = entries_replies(ep.send(m.RequestEntries(b"\x05", 30).encode(b"")))
    assert after[0].entries[0] == ep.log.entries(31, 31)[0] and after[-1].last_index == 40


# ---- peer RPCs: debouncing ----------------------------------------------------------------


def test_duplicate_append_entries_gets_the_cached_reply_and_is_applied_once() -> None:
    ep = Endpoint(THREE, me="b")
    entry = encode_entry(bytes(12), EntryType.CHECKPOINT, 1, b"\xc0")
    frames = m.AppendEntries(5, "a", 1, 0, 0, 0, (entry,)).encode(b"")
    (reply,) = ep.send(frames, routing=b"peer-a")
    assert ep.send(frames, routing=b"peer-a") == [reply]  # re-sent from the cache
    assert ep.server.stats.debounced == 1 and ep.log.last_index == 1
    assert m.AppendEntriesReply.decode(reply) == m.AppendEntriesReply(5, 1, True)
    # the same id from another connection (the leader reconnected) is processed again
    assert ep.send(frames, routing=b"peer-a2") == [reply]
    assert ep.server.stats.debounced == 1


def test_peer_messages_from_unknown_peers_are_dropped() -> None:
    ep = Endpoint(THREE, me="b")
    assert ep.send(m.RequestVote(1, "zz", 9, 0, 0).encode(b"")) == []
    assert ep.server.stats.dropped_unknown_peer == 1 and ep.server.node.term == 0


# ---- custom requests and the broadcast state machine ------------------------------------


def test_custom_types_become_client_request_events() -> None:
    ep = Endpoint()
    assert ep.send([b"\x01", b"zz", b"", b"arg"]) == []
    requests = [e for e in ep.events if isinstance(e, ClientRequest)]
    assert requests == [ClientRequest(b"client", b"\x01", b"zz", (b"arg",))]


def test_leader_publishes_applied_entries_then_heartbeats() -> None:
    ep = Endpoint(secret=b"k")
    ep.pub.clear()
    index = ep.update(b"hello")
    broadcast = m.decode_state_broadcast(ep.pub[-1])
    assert (broadcast.ident, broadcast.term, broadcast.last_applied) == (b"k", 1, index)
    assert broadcast.entries == tuple(ep.log.entries(index, index))
    ep.pub.clear()
    ep.advance(0.6)
    heartbeat = m.decode_state_broadcast(ep.pub[-1])
    assert (heartbeat.last_applied, heartbeat.entries) == (index, ())


def test_a_leader_nobody_subscribes_to_publishes_nothing_and_greets_a_new_subscriber() -> None:
    ep = Endpoint(secret=b"k")
    ep.server.broadcast_subscribed(False, ep.now)  # the runtime's XPUB: nobody yet
    ep.pub.clear()
    first = ep.update(b"unheard")
    ep.advance(0.6)
    assert ep.pub == [] and first > 0  # neither the applied batch nor a heartbeat
    ep.server.broadcast_subscribed(True, ep.now)
    ep.advance(0.001)  # the heartbeat is due at once: the subscriber learns where it stands
    greeting = m.decode_state_broadcast(ep.pub[-1])
    assert (greeting.last_applied, greeting.entries) == (first, ())
    second = ep.update(b"heard")
    assert m.decode_state_broadcast(ep.pub[-1]).entries == tuple(ep.log.entries(second, second))


def test_followers_publish_nothing() -> None:
    ep = Endpoint(THREE, me="b")
    ep.advance(0.1)
    assert ep.pub == []


# ---- CLIENT-state catch-up (spec/raft.md §10.4) ------------------------------------------


def wire(leader: Endpoint, client: Endpoint, rounds: int = 200) -> int:
    """Carry the client's RequestEntries to the leader and the replies back until quiet."""
    carried = 0
    for _ in range(rounds):
        requests = client.peer_out.pop("a", [])
        for frames in requests:
            for reply in leader.send(frames, routing=b"peer-b"):
                client.server.receive_peer("a", reply, client.now, WALL)
                client.pump()
                carried += 1
        if not requests:
            return carried
    raise AssertionError("catch-up did not settle")


def test_a_peer_outside_the_configuration_catches_up_through_snapshot_and_entries() -> None:
    leader = filled(60, 300)
    data = b"state-of-the-machine" * 5000  # 100000 bytes: two chunks
    leader.log.install_snapshot(SnapshotMeta(40, entry_term(leader.log.entries(40, 40)[0]), len(data)), data)
    leader.server.snapshot_installed(leader.now)
    client = Endpoint(SOLE, me="b")
    assert client.server.node.role is Role.CLIENT
    assert wire(leader, client) == 3  # two snapshot chunks, then one message of entries
    assert client.log.snapshot == leader.log.snapshot
    assert client.log.read_snapshot(0, len(data)) == data
    assert client.log.entries(41, 60) == leader.log.entries(41, 60)
    assert client.server.node.term == 1 and client.server.node.role is Role.CLIENT
    # a snapshot is committed state; the entries after it are not committed by a catch-up
    assert client.server.node.commit_index == 40


def test_catch_up_follows_the_leader_hint_and_retries_on_silence() -> None:
    peers = (*SOLE, ("c", "tcp://127.0.0.1:9003"))
    client = Endpoint(peers, me="b")
    first = client.peer_out.pop("a")
    reply = m.RequestEntriesReply(first[0][0], m.EntriesStatus.NOT_LEADER, "c").encode()
    client.server.receive_peer("a", reply, client.now, WALL)
    client.pump()
    assert client.peer_out == {}  # waits the election grace delay first
    client.advance(0.31)
    assert list(client.peer_out) == ["c"]
    client.peer_out.clear()
    client.advance(0.51)  # no answer: the next peer
    assert list(client.peer_out) == ["a"]


def test_idle_entry_streams_expire_and_the_watermark_refuses_new_ones() -> None:
    ep = filled(600)
    ep.send(m.RequestEntries(b"\x01", 0).encode(b""), routing=b"c1")
    assert len(ep.server._streams) == 1
    ep.advance(4.0)
    assert len(ep.server._streams) == 1  # ttl 5 s, swept every 2 s
    ep.advance(3.1)
    assert len(ep.server._streams) == 0
    ep.server.options = ep.server._streams.options = RaftOptions(request_entries_high_watermark=1)
    for n in range(3):
        ep.send(m.RequestEntries(b"\x02", 0).encode(b""), routing=b"w%d" % n)
    # the check is `active > watermark`, as the original's: two streams open, the third is refused
    assert len(ep.server._streams) == 2


def test_the_last_snapshot_chunk_is_sent_once_when_earlier_chunks_are_acknowledged_late() -> None:
    ep = filled(40, 100)
    data = bytes(range(256)) * 300  # two chunks
    ep.log.install_snapshot(SnapshotMeta(30, entry_term(ep.log.entries(30, 30)[0]), len(data)), data)
    ep.server.snapshot_installed(ep.now)
    first, final = entries_replies(ep.send(m.RequestEntries(b"\x05", 0).encode(b"")))
    assert final.snapshot_offset + len(final.chunk) == len(data)
    # the acknowledgement of the first chunk arrives after the last chunk went out
    ack = m.RequestEntries(b"\x05", 0, None, first.snapshot_offset + len(first.chunk)).encode(b"")
    assert ep.send(ack) == []
    assert len(ep.server._streams) == 0
    after = entries_replies(ep.send(m.RequestEntries(b"\x05", 30).encode(b"")))
    assert after[0].entries[0] == ep.log.entries(31, 31)[0]


def test_a_debounced_append_entries_still_rearms_the_election_timer() -> None:
    """The leader re-sends while our write is slow: not processed again, but it is alive."""
    ep = Endpoint(THREE, me="b")
    frames = m.AppendEntries(5, "a", 1, 0, 0, 0, ()).encode(b"")
    ep.server.receive_router(b"peer-a", frames, ep.now, WALL)  # held: term 1 not yet durable
    first = ep.server.node._election_deadline
    assert first is not None
    ep.now += 0.15
    ep.server.receive_router(b"peer-a", frames, ep.now, WALL)
    assert ep.server.stats.debounced == 1
    deadline = ep.server.node._election_deadline
    assert deadline is not None and deadline > first


def test_an_append_entries_ignored_during_a_snapshot_install_is_taken_when_re_sent() -> None:
    """A peer ignores AppendEntries while a snapshot installs, so that one gets no answer;
    the leader re-sends the same message until it hears back, and that copy must reach the
    node, not the debounce (a simulated history stalled a joining peer there forever)."""
    ep = Endpoint(THREE, me="b")
    data = b"snapshot state"
    chunk = m.InstallSnapshot(4, "a", 1, 10, 1, 0, len(data), data).encode(b"")
    ep.server.receive_router(b"peer-a", chunk, ep.now, WALL)  # the last chunk: the install starts
    append = m.AppendEntries(5, "a", 1, 10, 1, 10, ()).encode(b"")
    ep.server.receive_router(b"peer-a", append, ep.now, WALL)  # ignored while it installs
    ep.pump()
    answered = [m.InstallSnapshotReply.decode(f).msg_id for f in ep.router.pop(b"peer-a", [])]
    assert answered == [4]  # the chunk's reply only
    ep.now += 0.15
    ep.server.receive_router(b"peer-a", append, ep.now, WALL)  # the leader's re-send
    ep.pump()
    (reply,) = [m.AppendEntriesReply.decode(f) for f in ep.router.pop(b"peer-a", [])]
    assert (reply.msg_id, reply.success) == (5, True)
    assert ep.server.node.leader_id == "a" and ep.server.node.commit_index == 10
