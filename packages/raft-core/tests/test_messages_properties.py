"""Property tests: every message class round-trips; decoders raise only ProtocolError.

Example counts are kept moderate so the file runs in a few seconds on a 2-core CI runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_messages import message_classes
from zmqraft.core.protocol import (
    MAX_SAFE_INTEGER,
    ProtocolError,
    checkpoint_entry,
    decode_request,
    decode_state_broadcast,
    encode_entry,
)
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType

ROUNDTRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- value strategies -------------------------------------------------------------------------

uints = st.one_of(st.integers(0, 300), st.integers(0, MAX_SAFE_INTEGER))
msg_ids = st.integers(0, m.MAX_MSG_ID)
texts = st.text(max_size=12)
leaders = st.none() | texts
reqids = st.binary(min_size=12, max_size=12)
client_ids = st.binary(max_size=13)
idents = st.binary(max_size=8)
entries = st.builds(
    encode_entry,
    reqids,
    st.sampled_from(list(EntryType)),
    st.integers(0, (1 << 56) - 1),
    st.binary(min_size=1, max_size=24),
)
entry_lists = st.lists(entries, max_size=4).map(tuple)
peer_lists = st.lists(st.tuples(texts, texts), max_size=4).map(tuple)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | texts
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
dispatch_types = st.binary(min_size=1, max_size=4).filter(lambda t: t not in m.BUILTIN_TYPES)

# ---- message strategies (requests carry the ident to encode with) -----------------------------

REQUEST_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    m.RequestVote: st.builds(m.RequestVote, msg_ids, texts, uints, uints, uints),
    m.PreVote: st.builds(m.PreVote, msg_ids, texts, uints, uints, uints),
    m.AppendEntries: st.builds(m.AppendEntries, msg_ids, texts, uints, uints, uints, uints, entry_lists),
    m.InstallSnapshot: st.builds(
        m.InstallSnapshot, msg_ids, texts, uints, uints, uints, uints, uints, st.binary(max_size=40)
    ),
    m.RequestConfig: st.builds(m.RequestConfig, client_ids),
    m.RequestLogInfo: st.builds(m.RequestLogInfo, client_ids),
    m.RequestUpdate: st.builds(m.RequestUpdate, reqids, st.binary(min_size=1, max_size=40)),
    m.ConfigUpdate: st.builds(m.ConfigUpdate, reqids, json_values),
    m.RequestEntries: st.builds(
        m.RequestEntries, client_ids, uints, st.none() | uints, st.none() | uints, st.booleans()
    ),
    m.RequestBroadcastStateUrl: st.builds(m.RequestBroadcastStateUrl, client_ids),
    m.RequestWebmonitorUrl: st.builds(m.RequestWebmonitorUrl, client_ids),
    m.ClientDispatch: st.builds(
        m.ClientDispatch, client_ids, dispatch_types, st.lists(st.binary(max_size=8), max_size=4).map(tuple)
    ),
}

REPLY_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    m.RequestVoteReply: st.builds(m.RequestVoteReply, msg_ids, uints, st.booleans()),
    m.PreVoteReply: st.builds(m.PreVoteReply, msg_ids, uints, st.booleans()),
    m.AppendEntriesReply: st.builds(
        m.AppendEntriesReply, msg_ids, uints, st.booleans(), st.none() | uints, st.none() | uints
    ),
    m.InstallSnapshotReply: st.builds(m.InstallSnapshotReply, msg_ids, uints, st.none() | uints),
    m.RequestConfigReply: st.builds(m.RequestConfigReply, client_ids, st.booleans(), leaders, peer_lists),
    m.RequestLogInfoReply: st.builds(
        m.RequestLogInfoReply,
        client_ids,
        st.booleans(),
        leaders,
        uints,
        uints,
        uints,
        uints,
        uints,
        uints,
        uints,
    ),
    m.RequestUpdateReply: st.one_of(
        st.builds(m.RequestUpdateReply, reqids, st.just(m.UpdateStatus.NOT_LEADER), leader_id=leaders),
        st.builds(m.RequestUpdateReply, reqids, st.just(m.UpdateStatus.EXPIRED)),
        st.builds(m.RequestUpdateReply, reqids, st.just(m.UpdateStatus.ACCEPTED)),
        st.builds(m.RequestUpdateReply, reqids, st.just(m.UpdateStatus.COMMITTED), index=uints),
    ),
    m.ConfigUpdateReply: st.one_of(
        st.builds(m.ConfigUpdateReply, reqids, st.just(m.ConfigUpdateStatus.NOT_LEADER), leader_id=leaders),
        st.builds(
            m.ConfigUpdateReply, reqids, st.just(m.ConfigUpdateStatus.ACCEPTED), index=st.none() | uints
        ),
        st.builds(
            m.ConfigUpdateReply,
            reqids,
            st.just(m.ConfigUpdateStatus.ERROR),
            error_name=texts,
            error_message=texts,
        ),
        st.builds(
            m.ConfigUpdateReply,
            reqids,
            st.sampled_from([m.ConfigUpdateStatus.BUSY, m.ConfigUpdateStatus.EXPIRED]),
        ),
    ),
    m.RequestEntriesReply: st.one_of(
        st.builds(m.RequestEntriesReply, client_ids, st.just(m.EntriesStatus.NOT_LEADER), leader_id=leaders),
        st.builds(
            m.RequestEntriesReply,
            client_ids,
            st.sampled_from([m.EntriesStatus.LAST, m.EntriesStatus.MORE]),
            last_index=uints,
            entries=entry_lists,
        ),
        st.builds(
            m.RequestEntriesReply,
            client_ids,
            st.just(m.EntriesStatus.SNAPSHOT_CHUNK),
            last_index=uints,
            snapshot_offset=uints,
            snapshot_size=uints,
            snapshot_term=uints,
            chunk=st.binary(max_size=40),
        ),
    ),
    m.RequestBroadcastStateUrlReply: st.builds(
        m.RequestBroadcastStateUrlReply, client_ids, st.none() | texts
    ),
    m.RequestWebmonitorUrlReply: st.builds(m.RequestWebmonitorUrlReply, client_ids, texts),
    m.StateBroadcast: st.builds(m.StateBroadcast, idents, uints, uints, entry_lists),
}


def test_every_class_has_a_strategy() -> None:
    assert message_classes() == set(REQUEST_STRATEGIES) | set(REPLY_STRATEGIES)


# ---- round trips --------------------------------------------------------------------------------


def _check_request(msg: Any, ident: bytes) -> list[bytes]:
    frames = msg.encode(ident)
    decoded = type(msg).decode(frames)
    assert decoded == msg
    assert decoded.encode(ident) == frames
    via_dispatch = decode_request(frames)
    if type(msg) in m.REQUEST_CLASSES.values() or isinstance(msg, m.ClientDispatch):
        assert via_dispatch == msg
    else:  # "*" and "W" reach the state machine as a ClientDispatch
        assert via_dispatch == m.ClientDispatch(msg.request_id, frames[1])
    assert via_dispatch.encode(ident) == frames
    return frames


def _check_reply(msg: Any) -> list[bytes]:
    frames = msg.encode()
    decoded = type(msg).decode(frames)
    assert decoded == msg
    assert decoded.encode() == frames
    return frames


def _roundtrip_request_test(cls: type) -> Callable[[], None]:
    @ROUNDTRIP
    @given(REQUEST_STRATEGIES[cls], idents)
    def test(msg: Any, ident: bytes) -> None:
        _check_request(msg, ident)

    test.__name__ = f"test_roundtrip_{cls.__name__}"
    return test


def _roundtrip_reply_test(cls: type) -> Callable[[], None]:
    @ROUNDTRIP
    @given(REPLY_STRATEGIES[cls])
    def test(msg: Any) -> None:
        _check_reply(msg)

    test.__name__ = f"test_roundtrip_{cls.__name__}"
    return test


for _cls in REQUEST_STRATEGIES:
    globals()[f"test_roundtrip_{_cls.__name__}"] = _roundtrip_request_test(_cls)
for _cls in REPLY_STRATEGIES:
    globals()[f"test_roundtrip_{_cls.__name__}"] = _roundtrip_reply_test(_cls)


# ---- decoders never raise anything but ProtocolError ----------------------------------------

DECODERS: list[Callable[[Sequence[bytes]], Any]] = [
    decode_request,
    decode_state_broadcast,
    *(cls.decode for cls in REQUEST_STRATEGIES),
    *(cls.decode for cls in REPLY_STRATEGIES),
]

INTERESTING = [
    b"",
    b"\x00",
    b"\x01",
    b"\x02",
    b"\x03",
    b"\x04",
    b"\xff\xff\xff",
    b"\xff" * 8,
    b"\xff" * 9,
    b"\xc0",
    b"\x93\x00\x01\x02",
    b"\x82\xa4name\xa1x\xa7message\xa1y",
    b"\xcb\x40\x8f\x88\x00\x00\x00\x00\x00",
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # inf
    b"\xc7\x09\x0d" + b"\x00" * 9,  # ext (a Date in msgpack-lite)
    b"\xdd\xff\xff\xff\xff",  # array32 announcing 4G elements
    b"\x81\x90\x00",  # map with an array key: msgpack raises TypeError
    b"\xc1",
    b"\xff\xfe",
    bytes(12),
    bytes(20),
    bytes(21),
    checkpoint_entry(1),
    bytes(12) + b"\x07" + bytes(8),
    *sorted(m.BUILTIN_TYPES),
    b"*",
    b"W",
]
frames_strategy = st.one_of(st.binary(max_size=24), st.sampled_from(INTERESTING))
frame_lists = st.lists(frames_strategy, max_size=12)


def _feed_all(frames: list[bytes]) -> None:
    for decode in DECODERS:
        with contextlib.suppress(ProtocolError):
            decode(frames)


@FUZZ
@given(frame_lists)
def test_arbitrary_frames_raise_only_protocol_error(frames: list[bytes]) -> None:
    _feed_all(frames)


@st.composite
def valid_frames(draw: st.DrawFn) -> list[bytes]:
    if draw(st.booleans()):
        msg = draw(st.one_of(*REQUEST_STRATEGIES.values()))
        return list(msg.encode(draw(idents)))
    return list(draw(st.one_of(*REPLY_STRATEGIES.values())).encode())


@st.composite
def mutated_frames(draw: st.DrawFn) -> list[bytes]:
    frames = draw(valid_frames())
    op = draw(st.sampled_from(["replace", "truncate", "extend", "delete", "flip", "insert"]))
    if op == "truncate":
        return frames[: draw(st.integers(0, max(len(frames) - 1, 0)))]
    if op == "extend":
        return frames + draw(st.lists(frames_strategy, min_size=1, max_size=3))
    if not frames:
        return frames
    i = draw(st.integers(0, len(frames) - 1))
    if op == "replace":
        frames[i] = draw(frames_strategy)
    elif op == "delete":
        del frames[i]
    elif op == "insert":
        frames.insert(i, draw(frames_strategy))
    elif frames[i]:
        j = draw(st.integers(0, len(frames[i]) - 1))
        flipped = bytearray(frames[i])
        flipped[j] ^= draw(st.integers(1, 255))
        frames[i] = bytes(flipped)
    return frames


@FUZZ
@given(mutated_frames())
def test_mutated_messages_raise_only_protocol_error(frames: list[bytes]) -> None:
    _feed_all(frames)
