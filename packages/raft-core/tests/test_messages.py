"""Every message class and status: exact frames both ways, and malformed input.

Frames marked "golden" are copied from tests/interop/golden/wire/*.json (recorded from the
original); the others are written from the frame tables of spec/protocol.md §8–§9.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import zmqraft.core.protocol
from zmqraft.core.protocol import (
    ProtocolError,
    checkpoint_entry,
    decode_request,
    decode_state_broadcast,
    encode_entry,
    render,
)
from zmqraft.core.protocol import messages as m
from zmqraft.core.protocol.entry import EntryType


def message_classes() -> set[type]:
    """Every public message class, from the modules the index gathers (``*_messages``)."""
    package = zmqraft.core.protocol
    modules = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.endswith("_messages")
    ]
    assert modules, "no *_messages modules found"
    return {
        obj
        for mod in modules
        for name, obj in vars(mod).items()
        if isinstance(obj, type)
        and obj.__module__ == mod.__name__
        and hasattr(obj, "__dataclass_fields__")
        and not name.startswith("_")  # private bases are not messages
    }


H = bytes.fromhex
RID = H("6b0bd06a686c823d84a938d2")
E1 = encode_entry(H("5956dc8826f27e10dcccab20"), EntryType.STATE, 42, b"foo")
E2 = checkpoint_entry(43)
E3 = H("6b0bd071686c823d84a938de000800000000000062726f6164636173742d6d652d30")  # golden broadcast entry
PEERS3 = (("1", "tcp://127.0.0.1:9047"), ("2", "tcp://127.0.0.1:9147"), ("3", "tcp://127.0.0.1:9247"))
PEERS3_HEX = (
    "9392a131b47463703a2f2f3132372e302e302e313a3930343792a132b47463703a2f2f3132372e302e302e313a39"
    "31343792a133b47463703a2f2f3132372e302e302e313a39323437"
)


def hx(*parts: str | bytes) -> list[bytes]:
    return [p if isinstance(p, bytes) else H(p) for p in parts]


# (message, ident or None for replies, frames)
REQUESTS: list[tuple[Any, bytes, list[bytes]]] = [
    (m.RequestVote(5, "a", 3, 10, 2), b"", hx("05", "3f", "", "61", "03", "0a", "02")),
    (
        m.RequestVote(0xFFFFFF, "peer-1", 0, 0, 0),
        b"secret",
        hx("ffffff", "3f", b"secret", b"peer-1", "00", "00", "00"),
    ),
    (m.AppendEntries(1, "a", 3, 10, 2, 9), b"", hx("01", "2b", "", "61", "03", "0a", "02", "09")),
    # beyond the original (docs/protocol-extensions.md): RequestVote's frames under type "!"
    (m.PreVote(5, "a", 4, 10, 2), b"", hx("05", "21", "", "61", "04", "0a", "02")),
    (
        m.AppendEntries(256, "a", 2**32, 300, 3, 301, (E1, E2)),
        b"s",
        hx("0001", "2b", b"s", "61", "0000000001", "2c01", "03", "2d01", E1, E2),
    ),
    (
        m.InstallSnapshot(7, "b", 4, 280, 8, 65536, 70000, b"chunk"),
        b"",
        hx("07", "24", "", "62", "04", "1801", "08", "000001", "701101", b"chunk"),
    ),
    (
        m.InstallSnapshot(0, "b", 4, 0, 0, 0, 0, b""),
        b"",
        hx("00", "24", "", "62", "04", "00", "00", "00", "00", ""),
    ),
    (m.RequestConfig(H("65")), b"", hx("65", "5e", "")),  # golden
    (m.RequestConfig(H("ffffffff")), b"", hx("ffffffff", "5e", "")),  # golden
    (m.RequestLogInfo(H("67")), b"", hx("67", "25", "")),  # golden
    (
        m.RequestUpdate(RID, b"to-follower"),
        b"",
        hx("6b0bd06a686c823d84a938d2", "3d", "", "746f2d666f6c6c6f776572"),
    ),  # golden
    (
        m.ConfigUpdate(H("6b0bd06b686c823d84a938d8"), "not an array"),
        b"",
        hx("6b0bd06b686c823d84a938d8", "26", "", "ac6e6f7420616e206172726179"),
    ),  # golden
    (
        m.ConfigUpdate(H("6b0bd06b686c823d84a938d9"), [list(p) for p in PEERS3]),
        b"",
        hx("6b0bd06b686c823d84a938d9", "26", "", PEERS3_HEX),
    ),  # golden
    (m.RequestEntries(H("6a"), 282, 3), b"", hx("6a", "3c", "", "1a01", "03")),  # golden
    (m.RequestEntries(H("6b"), 280, null_count_frame=True), b"", hx("6b", "3c", "", "1801", "")),  # golden
    (m.RequestEntries(H("6d"), 1009), b"", hx("6d", "3c", "", "f103")),  # golden
    (m.RequestEntries(H("6c"), 383, 0), b"", hx("6c", "3c", "", "7f01", "00")),  # golden
    (m.RequestEntries(H("66"), 0, 5), b"", hx("66", "3c", "", "00", "05")),  # golden
    (m.RequestEntries(H("07"), 5, None, 4096), b"", hx("07", "3c", "", "05", "", "0010")),
    (m.RequestEntries(H("07"), 5, 10, 0), b"", hx("07", "3c", "", "05", "0a", "00")),
    (m.ClientDispatch(H("72"), b"zz"), b"", hx("72", "7a7a", "")),  # golden
    (m.ClientDispatch(H("72"), b"*"), b"", hx("72", "2a", "")),
    (m.ClientDispatch(b"", b"app", (b"a", b"")), b"x", hx("", b"app", b"x", b"a", "")),
]

# requests whose class is not what decode_request returns
SIDE_REQUESTS: list[tuple[Any, bytes, list[bytes]]] = [
    (m.RequestBroadcastStateUrl(H("6f")), b"", hx("6f", "2a", "")),  # golden
    (m.RequestWebmonitorUrl(H("71")), b"", hx("71", "57", "")),  # golden
]

REPLIES: list[tuple[Any, list[bytes]]] = [
    (m.RequestVoteReply(5, 3, True), hx("05", "03", "01")),
    (m.RequestVoteReply(5, 3, False), hx("05", "03", "")),
    (m.PreVoteReply(5, 4, True), hx("05", "04", "01")),
    (m.PreVoteReply(5, 3, False), hx("05", "03", "")),
    (m.AppendEntriesReply(9, 3, True), hx("09", "03", "01")),
    (m.AppendEntriesReply(9, 4, False), hx("09", "04", "")),
    (m.AppendEntriesReply(9, 3, False, 11), hx("09", "03", "", "0b")),
    (m.AppendEntriesReply(9, 3, False, 11, 2), hx("09", "03", "", "0b", "02")),
    (m.AppendEntriesReply(9, 3, False, None, 2), hx("09", "03", "", "", "02")),
    (m.InstallSnapshotReply(7, 4), hx("07", "04")),
    (m.InstallSnapshotReply(7, 4, 65536), hx("07", "04", "000001")),
    (m.RequestConfigReply(H("65"), True, "1", PEERS3), hx("65", "01", "a131", PEERS3_HEX)),  # golden
    (m.RequestConfigReply(H("66"), False, "1", PEERS3), hx("66", "", "a131", PEERS3_HEX)),  # golden
    (m.RequestConfigReply(H("01"), False, None, ()), hx("01", "", "c0", "90")),
    (
        m.RequestLogInfoReply(H("67"), True, "1", 8, 281, 1008, 1008, 1008, 9428, 0),
        hx("67", "01", "a131", "08", "1901", "f003", "f003", "f003", "d424", "00"),
    ),  # golden
    (
        m.RequestLogInfoReply(H("68"), False, "1", 8, 281, 1008, 1008, 1008, 9428, 0),
        hx("68", "", "a131", "08", "1901", "f003", "f003", "f003", "d424", "00"),
    ),  # golden
    (m.RequestUpdateReply(RID, m.UpdateStatus.ACCEPTED), [RID, H("01")]),  # golden
    (m.RequestUpdateReply(RID, m.UpdateStatus.COMMITTED, index=1009), [RID, H("01"), H("cd03f1")]),  # golden
    (m.RequestUpdateReply(RID, m.UpdateStatus.NOT_LEADER, leader_id="1"), [RID, b"", H("a131")]),  # golden
    (m.RequestUpdateReply(RID, m.UpdateStatus.NOT_LEADER), [RID, b"", H("c0")]),
    (m.RequestUpdateReply(RID, m.UpdateStatus.EXPIRED), [RID, b""]),  # golden
    (
        m.RequestUpdateReply(RID, m.UpdateStatus.COMMITTED, index=2**32),
        [RID, H("01"), H("cb41f0000000000000")],
    ),  # msgpack-lite writes >= 2^31 as float64
    (
        m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.NOT_LEADER, leader_id="1"),
        [RID, H("00"), H("a131")],
    ),  # golden
    (m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.NOT_LEADER), [RID, H("00"), H("c0")]),
    (m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.ACCEPTED), [RID, H("01")]),
    (m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.ACCEPTED, index=1009), [RID, H("01"), H("cd03f1")]),
    (
        m.ConfigUpdateReply(
            RID, m.ConfigUpdateStatus.ERROR, error_name="TypeError", error_message="peers must be an array"
        ),
        [
            RID,
            H("02"),
            H(
                "82a46e616d65a9547970654572726f72a76d657373616765b67065657273206d75737420626520616e20"
                "6172726179"
            ),
        ],
    ),  # golden
    (m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.BUSY), [RID, H("03")]),
    (m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.EXPIRED), [RID, H("04")]),
    (m.RequestEntriesReply(H("6e"), m.EntriesStatus.NOT_LEADER, "1"), hx("6e", "00", "a131")),  # golden
    (m.RequestEntriesReply(H("6e"), m.EntriesStatus.NOT_LEADER), hx("6e", "00", "c0")),
    (
        m.RequestEntriesReply(H("6d"), m.EntriesStatus.LAST, last_index=1009),
        hx("6d", "01", "c0", "f103"),
    ),  # golden
    (
        m.RequestEntriesReply(H("6b"), m.EntriesStatus.MORE, last_index=301, entries=(E1, E2)),
        hx("6b", "02", "c0", "2d01", E1, E2),
    ),
    (
        m.RequestEntriesReply(H("6b"), m.EntriesStatus.LAST, last_index=300, entries=(E3,)),
        hx("6b", "01", "c0", "2c01", E3),
    ),
    (
        m.RequestEntriesReply(
            H("66"),
            m.EntriesStatus.SNAPSHOT_CHUNK,
            last_index=280,
            snapshot_offset=0,
            snapshot_size=9428,
            snapshot_term=8,
            chunk=b"\x1f\x8b",
        ),
        hx("66", "03", "9300cd24d408", "1801", "1f8b"),
    ),  # golden (chunk shortened)
    (
        m.RequestBroadcastStateUrlReply(H("6f"), "tcp://127.0.0.1:9048"),
        [H("6f"), b"tcp://127.0.0.1:9048"],
    ),  # golden
    (m.RequestBroadcastStateUrlReply(H("6f"), None), [H("6f")]),
    (
        m.RequestWebmonitorUrlReply(H("71"), "http://127.0.0.1:9050"),
        [H("71"), b"http://127.0.0.1:9050"],
    ),  # golden
    (m.StateBroadcast(b"", 8, 1009), hx("", "08", "f103")),  # golden
    (m.StateBroadcast(b"", 8, 1010, (E3,)), hx("", "08", "f203", E3)),  # golden
    (m.StateBroadcast(b"secret", 2**40, 0, (E1, E2)), hx(b"secret", "0000000000" + "01", "00", E1, E2)),
]


def _name(msg: Any) -> str:
    return str(msg)


@pytest.mark.parametrize(("msg", "ident", "frames"), REQUESTS + SIDE_REQUESTS, ids=_name)
def test_request_frames(msg: Any, ident: bytes, frames: list[bytes]) -> None:
    assert msg.encode(ident) == frames
    assert type(msg).decode(frames) == msg


@pytest.mark.parametrize(("msg", "ident", "frames"), REQUESTS, ids=_name)
def test_decode_request_dispatch(msg: Any, ident: bytes, frames: list[bytes]) -> None:
    decoded = decode_request(frames)
    assert type(decoded) is type(msg)
    assert decoded == msg
    assert decoded.encode(ident) == frames


@pytest.mark.parametrize(("msg", "frames"), REPLIES, ids=_name)
def test_reply_frames(msg: Any, frames: list[bytes]) -> None:
    assert msg.encode() == frames
    decoded = type(msg).decode(frames)
    assert decoded == msg
    assert decoded.encode() == frames


def test_every_message_class_is_covered() -> None:
    covered = {type(msg) for msg, _, _ in REQUESTS + SIDE_REQUESTS} | {type(msg) for msg, _ in REPLIES}
    classes = message_classes()
    assert classes - covered == set()


def test_the_index_exports_every_message_class() -> None:
    exported = {obj for name in m.__all__ if isinstance(obj := getattr(m, name), type)}
    assert message_classes() - exported == set()


def test_every_status_is_covered() -> None:
    statuses = {(type(msg), msg.status) for msg, _ in REPLIES if hasattr(msg, "status")}
    for cls, enum in [
        (m.RequestUpdateReply, m.UpdateStatus),
        (m.ConfigUpdateReply, m.ConfigUpdateStatus),
        (m.RequestEntriesReply, m.EntriesStatus),
    ]:
        assert {(cls, s) for s in enum} <= statuses


def test_single_byte_star_and_w_are_client_dispatch() -> None:
    star = decode_request(hx("6f", "2a", ""))
    assert star == m.ClientDispatch(H("6f"), b"*")
    assert isinstance(star, m.ClientDispatch)
    assert m.RequestBroadcastStateUrl.from_dispatch(star) == m.RequestBroadcastStateUrl(H("6f"))
    assert decode_request(hx("71", "57", "")) == m.ClientDispatch(H("71"), b"W")
    assert decode_request(hx("01", "3f3f", "", "aa")) == m.ClientDispatch(H("01"), b"??", (H("aa"),))
    with pytest.raises(ProtocolError, match="RequestBroadcastStateUrl frame 2"):
        m.RequestBroadcastStateUrl.from_dispatch(m.ClientDispatch(H("01"), b"W"))


def test_entries_are_kept_as_the_received_objects() -> None:
    e1 = bytes(E1)
    e2 = bytes(E2)
    frames = [*hx("01", "2b", "", "61", "03", "0a", "02", "09"), e1, e2]
    msg = m.AppendEntries.decode(frames)
    assert msg.entries[0] is e1 and msg.entries[1] is e2
    assert m.RequestEntriesReply.decode([*hx("6b", "02", "c0", "2d01"), e1]).entries[0] is e1
    assert decode_state_broadcast([*hx("", "08", "f103"), e2]).entries[0] is e2


def test_integral_floats_accepted_where_ints_expected() -> None:
    f1009 = H("cb408f880000000000")  # 1009.0
    assert m.RequestUpdateReply.decode([RID, H("01"), f1009]).index == 1009
    assert m.ConfigUpdateReply.decode([RID, H("01"), f1009]).index == 1009
    # [offset, size, term] as float64 / uint64, as other writers may produce
    arg = H("93cb0000000000000000cf0000000100000000cb4020000000000000")
    chunk = m.RequestEntriesReply.decode([H("01"), H("03"), arg, H("01"), b"x"])
    assert (chunk.snapshot_offset, chunk.snapshot_size, chunk.snapshot_term) == (0, 2**32, 8)


def test_request_entries_null_count_frame_is_not_part_of_equality() -> None:
    with_empty = m.RequestEntries.decode(hx("6b", "3c", "", "1801", ""))
    without = m.RequestEntries.decode(hx("6b", "3c", "", "1801"))
    assert with_empty == without == m.RequestEntries(H("6b"), 280)
    assert with_empty.null_count_frame and not without.null_count_frame
    assert with_empty.encode(b"") == hx("6b", "3c", "", "1801", "")
    assert without.encode(b"") == hx("6b", "3c", "", "1801")


def test_extra_trailing_frames_are_ignored() -> None:
    assert m.RequestVote.decode(hx("05", "3f", "", "61", "03", "0a", "02", "ff")) == m.RequestVote(
        5, "a", 3, 10, 2
    )
    assert m.RequestConfig.decode(hx("65", "5e", "", "00")) == m.RequestConfig(H("65"))


# ---- malformed input ------------------------------------------------------------------------

AE = ["01", "2b", "", "61", "03", "0a", "02", "09"]

MALFORMED: list[tuple[Callable[[Sequence[bytes]], Any], list[bytes], str]] = [
    (
        m.AppendEntries.decode,
        hx("01", "2b", "", "61", "", "0a", "02", "09"),
        "AppendEntries frame 5: unsigned integer must not be null",
    ),
    (
        decode_request,
        hx("01", "2b", "", "61", "", "0a", "02", "09"),
        "AppendEntries frame 5: unsigned integer must not be null",
    ),
    (m.AppendEntries.decode, hx(*AE[:7]), "AppendEntries frame 8: missing"),
    (
        m.AppendEntries.decode,
        hx("01020304", *AE[1:]),
        "AppendEntries frame 1: message id must be 1 to 3 bytes",
    ),
    (m.AppendEntries.decode, hx("", *AE[1:]), "AppendEntries frame 1: message id must be 1 to 3 bytes"),
    (
        m.AppendEntries.decode,
        hx(*AE, bytes(20)),
        "AppendEntries frame 9: log entry must be longer than 20 bytes",
    ),
    (
        m.AppendEntries.decode,
        hx(*AE, E1, bytes(12) + b"\x03" + bytes(8)),
        "AppendEntries frame 10: unknown log entry type 3",
    ),
    (m.AppendEntries.decode, hx(*AE[:3], "ff", *AE[4:]), "AppendEntries frame 4: invalid UTF-8"),
    (m.RequestVote.decode, hx(*AE), "RequestVote frame 2: message type must be b'?'"),
    (
        m.RequestVote.decode,
        hx("05", "3f", "", "61", "03", "000000000000000001", "02"),
        "RequestVote frame 6: unsigned integer too long",
    ),
    (m.RequestVoteReply.decode, hx("05", "03"), "RequestVoteReply frame 3: missing"),
    (
        m.AppendEntriesReply.decode,
        hx("05", "", "01"),
        "AppendEntriesReply frame 2: unsigned integer must not be null",
    ),
    (
        m.InstallSnapshot.decode,
        hx("07", "24", "", "62", "04", "1801", "08", "00", "00"),
        "InstallSnapshot frame 10: missing",
    ),
    (
        m.InstallSnapshotReply.decode,
        hx("07", "04", ""),
        "InstallSnapshotReply frame 3: unsigned integer must not be null",
    ),
    (
        m.RequestUpdate.decode,
        hx("0102", "3d", "", "aa"),
        "RequestUpdate frame 1: request id must be 12 bytes, got 2",
    ),
    (
        m.RequestUpdate.decode,
        [RID, H("3d"), b"", b""],
        "RequestUpdate frame 4: update data must not be empty",
    ),
    (decode_request, [RID, H("3d"), b"", b""], "RequestUpdate frame 4"),
    (
        m.ConfigUpdate.decode,
        [RID[:11], H("26"), b"", H("90")],
        "ConfigUpdate frame 1: request id must be 12 bytes",
    ),
    (m.ConfigUpdate.decode, [RID, H("26"), b"", H("92")], "ConfigUpdate frame 4: invalid msgpack"),
    (m.ConfigUpdate.decode, [RID, H("26"), b""], "ConfigUpdate frame 4: missing"),
    (m.ConfigUpdate.decode, [RID, H("26"), b"", H("819000")], "ConfigUpdate frame 4: invalid msgpack"),
    (
        m.RequestConfigReply.decode,
        hx("65", "01", "a131", "a131"),
        "RequestConfigReply frame 4: peers must be an array",
    ),
    (
        m.RequestConfigReply.decode,
        hx("65", "01", "a131", "91a131"),
        "RequestConfigReply frame 4: peer must be",
    ),
    (
        m.RequestConfigReply.decode,
        hx("65", "01", "01", "90"),
        "RequestConfigReply frame 3: leader id must be",
    ),
    (
        m.RequestLogInfoReply.decode,
        hx("67", "01", "a131", "08", "1901", "f003", "f003", "f003", "d424"),
        "RequestLogInfoReply frame 10: missing",
    ),
    (m.RequestUpdateReply.decode, [RID, H("01"), H("a131")], "RequestUpdateReply frame 3: log index must be"),
    (
        m.RequestUpdateReply.decode,
        [RID, H("01"), H("cb3ff8000000000000")],
        "RequestUpdateReply frame 3: log index",
    ),
    (m.RequestUpdateReply.decode, [RID, H("01"), H("ff")], "RequestUpdateReply frame 3: log index"),  # -1
    (m.RequestUpdateReply.decode, [RID], "RequestUpdateReply frame 2: missing"),
    (m.ConfigUpdateReply.decode, [RID, H("05")], "ConfigUpdateReply frame 2: unknown config update status 5"),
    (m.ConfigUpdateReply.decode, [RID, H("02"), H("a131")], "ConfigUpdateReply frame 3: error must be a map"),
    (
        m.ConfigUpdateReply.decode,
        [RID, H("02"), H("81a46e616d6501")],
        "ConfigUpdateReply frame 3: error name",
    ),
    (m.ConfigUpdateReply.decode, [RID, H("02")], "ConfigUpdateReply frame 3: missing"),
    (m.ConfigUpdateReply.decode, [RID, H("00")], "ConfigUpdateReply frame 3: missing"),
    (
        m.RequestEntries.decode,
        hx("07", "3c", "", "05", "", ""),
        "RequestEntries frame 6: unsigned integer must not",
    ),
    (m.RequestEntries.decode, hx("07", "3c", ""), "RequestEntries frame 4: missing"),
    (
        m.RequestEntriesReply.decode,
        hx("07", "04", "c0", "00"),
        "RequestEntriesReply frame 2: unknown entries status 4",
    ),
    (m.RequestEntriesReply.decode, hx("07", "01", "c0"), "RequestEntriesReply frame 4: missing"),
    (
        m.RequestEntriesReply.decode,
        hx("07", "02", "c0", "05", "00"),
        "RequestEntriesReply frame 5: log entry must be",
    ),
    (
        m.RequestEntriesReply.decode,
        hx("07", "03", "920102", "05", "00"),
        "RequestEntriesReply frame 3: snapshot chunk argument must be [offset, size, term]",
    ),
    (
        m.RequestEntriesReply.decode,
        hx("07", "03", "930102a131", "05", "00"),
        "RequestEntriesReply frame 3: snapshot term must be",
    ),
    (m.RequestEntriesReply.decode, hx("07", "03", "93010203", "05"), "RequestEntriesReply frame 5: missing"),
    (
        m.RequestBroadcastStateUrlReply.decode,
        [H("6f"), b"\xc3("],
        "RequestBroadcastStateUrlReply frame 2: invalid",
    ),
    (m.RequestBroadcastStateUrlReply.decode, [], "RequestBroadcastStateUrlReply frame 1: missing"),
    (m.RequestWebmonitorUrlReply.decode, [H("71")], "RequestWebmonitorUrlReply frame 2: missing"),
    (decode_state_broadcast, hx("", "08"), "StateBroadcast frame 3: missing"),
    (decode_state_broadcast, hx("", "08", "f103", "00"), "StateBroadcast frame 4: log entry must be"),
    (decode_request, hx("01", "3f"), "request frame 3: missing"),
    (decode_request, hx("01", "", ""), "ClientDispatch frame 2: message type must not be empty"),
    (m.ClientDispatch.decode, hx("01", "3f", ""), "ClientDispatch frame 2: message type b'?' is built-in"),
    (m.RequestBroadcastStateUrl.decode, hx("01", "57", ""), "RequestBroadcastStateUrl frame 2: message type"),
]


@pytest.mark.parametrize(
    ("decode", "frames", "text"), MALFORMED, ids=lambda v: v if isinstance(v, str) else None
)
def test_malformed_raises_protocol_error(
    decode: Callable[[Sequence[bytes]], Any], frames: list[bytes], text: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(frames)
    assert str(info.value).startswith(text), str(info.value)


# ---- encoder validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: m.RequestVote(0x1000000, "a", 1, 1, 1).encode(b""),
        lambda: m.RequestVote(-1, "a", 1, 1, 1).encode(b""),
        lambda: m.AppendEntries(1, "a", -1, 0, 0, 0).encode(b""),
        lambda: m.RequestUpdate(RID[:11], b"x").encode(b""),
        lambda: m.RequestUpdate(RID, b"").encode(b""),
        lambda: m.ConfigUpdate(b"", []).encode(b""),
        lambda: m.RequestUpdateReply(RID, m.UpdateStatus.COMMITTED).encode(),
        lambda: m.ConfigUpdateReply(RID, m.ConfigUpdateStatus.ERROR, error_name="Error").encode(),
        lambda: m.ClientDispatch(b"", b"+").encode(b""),
        lambda: m.ClientDispatch(b"", b"").encode(b""),
        lambda: m.RequestEntriesReply(b"", m.EntriesStatus.SNAPSHOT_CHUNK, snapshot_size=-1).encode(),
        lambda: m.RequestConfigReply(b"", True, 5, ()).encode(),  # type: ignore[arg-type]
    ],
)
def test_encoders_reject_unencodable_values(make: Callable[[], object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        make()


# ---- rendering --------------------------------------------------------------------------------


def test_rendering_examples() -> None:
    assert str(m.AppendEntries(5, "a", 3, 10, 2, 9, (E1, E2, E3))) == (
        "AppendEntries(id=5 leader=a term=3 prev=10/2 commit=9 entries=3)"
    )
    assert str(m.RequestVote(1, "b", 4, 7, 3)) == "RequestVote(id=1 candidate=b term=4 last=7/3)"
    assert str(m.RequestVoteReply(1, 4, True)) == "RequestVoteReply(id=1 term=4 granted)"
    assert (
        str(m.AppendEntriesReply(2, 3, False, 11)) == "AppendEntriesReply(id=2 term=3 fail conflict_index=11)"
    )
    assert str(m.RequestUpdateReply(RID, m.UpdateStatus.COMMITTED, index=7)) == (
        "RequestUpdateReply(id=6b0bd06a686c823d84a938d2 COMMITTED index=7)"
    )
    assert str(m.ConfigUpdateReply(H("01"), m.ConfigUpdateStatus.ERROR, None, None, "Error", "boom")) == (
        "ConfigUpdateReply(id=01 ERROR Error: boom)"
    )
    assert str(m.RequestEntriesReply(H("07"), m.EntriesStatus.MORE, None, 9, (E1,))) == (
        "RequestEntriesReply(id=07 MORE last=9 entries=1)"
    )
    assert str(m.StateBroadcast(b"", 8, 1009)) == "StateBroadcast(term=8 applied=1009 entries=0)"


@pytest.mark.parametrize(
    "msg", [msg for msg, _, _ in REQUESTS + SIDE_REQUESTS] + [msg for msg, _ in REPLIES], ids=_name
)
def test_every_rendering_names_its_class_on_one_line(msg: Any) -> None:
    text = render(msg)
    assert text.startswith(type(msg).__name__ + "(") and text.endswith(")")
    assert "\n" not in text
    assert text == str(msg)
