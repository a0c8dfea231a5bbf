"""Malformed frames, a wrong cluster ident, unknown types and oversized messages: the peer
drops them (logged at debug level) and keeps serving."""

from __future__ import annotations

import pytest
from raft_harness import Cluster, new_rid, wait_for
from zmqraft.core.protocol import messages as m

pytestmark = pytest.mark.timeout(60)


def test_peer_survives_bad_input(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(["1"], secret="s3cret", maxLogEntryDataSize=1000)
    cluster.peers["1"].args = ["-v"]
    cluster.start()
    client = cluster.client
    url = cluster.peers["1"].url
    wait_for("the peer to lead", lambda: (i := client.log_info(url, 0.3)) and i.is_leader, 10)

    rid = new_rid()
    bad: list[list[bytes]] = [
        [b""],
        [rid],
        [rid, m.REQUEST_LOG_INFO],  # no ident
        [rid, m.REQUEST_LOG_INFO, b"wrong ident"],
        m.RequestUpdate(rid, b"x").encode(b"wrong ident"),
        [rid, m.REQUEST_UPDATE, b"s3cret"],  # no data
        [b"\x01\x02", m.REQUEST_UPDATE, b"s3cret", b"data"],  # request id of 2 bytes
        m.RequestUpdate(rid, b"x" * 2000).encode(b"s3cret"),  # over maxLogEntryDataSize
        [rid, m.REQUEST_ENTRIES, b"s3cret", b"\xff" * 9],  # prevIndex too big a uint
        [rid, m.CONFIG_UPDATE, b"s3cret", b"\xc1"],  # invalid msgpack
        [rid, m.CONFIG_UPDATE, b"s3cret", b"\x93\x01\x02\x03"],  # peers that are not peers
        [b"\x01", m.APPEND_ENTRIES, b"s3cret", b"garbage"],
        [b"\x01\x02\x03\x04", m.REQUEST_VOTE, b"s3cret"],  # peer message id of 4 bytes
        m.RequestVote(7, "intruder", 99, 0, 0).encode(b"s3cret"),  # not a known peer
        [rid, b"Z", b"s3cret", b"custom"],  # nobody handles type Z
        [rid, b"", b"s3cret"],
        # big, yet under the ROUTER's ZMQ_MAXMSGSIZE (a larger part makes libzmq drop the
        # connection, replies queued on it included: test_oversized_messages)
        [b"x" * 100_000, b"y" * 100_000, b"s3cret"],
    ]
    for frames in bad:
        client.send(url, frames)
    # every one is dropped without a reply, except the ConfigUpdate whose peers are not peers:
    # a well-formed request, refused with status 2
    replies = []
    while (raw := client.recv(url, 0.5)) is not None:
        replies.append(raw)
    assert len(replies) == 1, replies
    refused = m.ConfigUpdateReply.decode(replies[0])
    assert refused.status is m.ConfigUpdateStatus.ERROR and refused.error_name == "AssertionError"
    info = client.log_info(url)
    assert info is not None and info.is_leader and info.last_index == info.commit_index
    index = client.update(url, b"still serving")
    assert index is not None
    assert client.update(url, b"y" * 1000) is not None  # the limit itself is fine
    cluster.stop()
    output = cluster.peers["1"].output()
    assert "dropped malformed" in output
    assert "Traceback" not in output
