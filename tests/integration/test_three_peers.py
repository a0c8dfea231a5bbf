"""Three real peers: election, replication, the client RPCs, the broadcast state machine."""

from __future__ import annotations

import pytest
import zmq
from raft_harness import Cluster, wait_for
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType, entry_request_id, entry_type

pytestmark = pytest.mark.timeout(120)


def test_three_peers_elect_replicate_and_answer(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    cluster.start()
    leader, term = cluster.leader()
    client = cluster.client
    leader_url = cluster.peers[leader].url

    # RequestConfig and RequestLogInfo answer on every peer, all naming the leader
    for peer_id, peer in cluster.peers.items():
        config = client.config(peer.url)
        assert config is not None
        assert config.is_leader == (peer_id == leader)
        assert config.leader_id == leader
        assert [p for p, _ in config.peers] == ["1", "2", "3"]
        assert dict(config.peers) == cluster.urls()
        info = client.log_info(peer.url)
        assert info is not None and info.term == term and info.leader_id == leader

    # the leader's broadcast state machine publishes every applied batch
    pub_url = client.broadcast_url(leader_url)
    assert pub_url == cluster.peers[leader].pub
    assert client.broadcast_url(cluster.peers[next(p for p in cluster.peers if p != leader)].url)
    sub = client.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    for peer in cluster.peers.values():  # whoever leads (a slow disk may cause an election)
        sub.connect(peer.pub)
    wait_for("a StateBroadcast heartbeat", lambda: sub.poll(100), 5.0)

    datas = [f"update {n}".encode() for n in range(1000)]
    done = client.pipelined_updates(lambda: cluster.peers[cluster.leader()[0]].url, datas, window=64)
    assert len(done) == 1000
    by_index = {index: (rid, data) for rid, (data, index) in done.items()}
    assert len(by_index) == 1000, "two updates committed at the same index"
    last = max(by_index)

    # every peer applies everything (the leader's commit and each peer's last applied index)
    def applied_everywhere() -> bool:
        infos = [client.log_info(p.url, 0.5) for p in cluster.peers.values()]
        return all(i is not None and i.last_applied >= last and i.commit_index >= last for i in infos)

    wait_for("every peer to apply the updates", applied_everywhere, 10.0)

    # RequestEntries streams them back from the leader, in the order they were committed
    entries, snapshot = client.entries(leader_url, 0)
    assert snapshot is None
    assert [i for i, _ in entries] == list(range(1, len(entries) + 1))
    assert len(entries) >= last
    state = [(i, e) for i, e in entries if entry_type(e) == EntryType.STATE]
    assert len(state) == 1000
    for index, entry in state:
        rid, data = by_index[index]
        assert entry_request_id(entry) == rid and entry[20:] == data

    # the broadcasts carry the same entries in the same order, without gaps
    seen: dict[int, bytes] = {}
    while sub.poll(0):
        msg = m.StateBroadcast.decode(sub.recv_multipart())
        first = msg.last_applied - len(msg.entries) + 1
        for k, e in enumerate(msg.entries):
            seen[first + k] = e
    assert seen, "no StateBroadcast with entries"
    assert all(seen[i] == entries[i - 1][1] for i in seen)
    sub.close(0)

    # every peer's files hold the same log, and its state machine applied all of it
    cluster.stop()
    for peer in cluster.peers.values():
        assert peer.proc is not None and peer.proc.returncode == 0, peer.output()[-3000:]
    from zmqraft.core.storage.files import open_data_dir

    logs = {}
    for peer_id in cluster.peers:
        d = open_data_dir(str(cluster.data_dir(peer_id)), read_only=True)
        try:
            assert d.state is not None and d.state.last_applied >= last
            logs[peer_id] = d.log.entries(1, last)
        finally:
            d.close()
    assert logs["1"] == logs["2"] == logs["3"] == [e for _, e in entries[:last]]
