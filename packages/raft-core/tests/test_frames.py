"""Frame codecs (spec/protocol.md §2), request ids (§3) and entry layout (§5)."""

from __future__ import annotations

import hashlib
import platform
import random
import subprocess
import sys
import textwrap

import pytest
from zmqraft.core.protocol import (
    ProtocolError,
    RequestIdGenerator,
    checkpoint_entry,
    decode_bool,
    decode_json,
    decode_nuint,
    decode_reqid,
    decode_string,
    decode_uint,
    decode_uint32,
    encode_bool,
    encode_entry,
    encode_json,
    encode_nuint,
    encode_reqid,
    encode_string,
    encode_uint,
    encode_uint32,
    is_request_id,
    new_request_id,
    request_id_seconds,
)
from zmqraft.core.protocol import reqid as rq
from zmqraft.core.protocol.entry import EntryType, LogEntry, validate_entry
from zmqraft.core.protocol.frames import FrameReader, json_int

H = bytes.fromhex

# ---- §2.1 worked examples ---------------------------------------------------------------------

UINT_EXAMPLES = [
    (0, "00"),
    (255, "ff"),
    (256, "0001"),
    (65536, "000001"),
    (4294967295, "ffffffff"),
    (9007199254740991, "ffffffffffff1f"),
]


@pytest.mark.parametrize(("value", "hex_"), UINT_EXAMPLES)
def test_uint_worked_examples(value: int, hex_: str) -> None:
    assert encode_uint(value) == H(hex_)
    assert decode_uint(H(hex_), "T", 1) == value


def test_other_worked_examples() -> None:
    assert encode_nuint(None) == b""
    assert decode_nuint(b"", "T", 1) is None
    assert encode_bool(False) == b""
    assert encode_bool(True) == H("01")
    assert encode_string("foo") == H("666f6f")
    assert encode_json(None) == H("c0")
    assert encode_json([42, "foo", False]) == H("932aa3666f6fc2")
    assert decode_json(H("932aa3666f6fc2"), "T", 1) == [42, "foo", False]


def test_uint_decode_accepts_non_minimal_up_to_8_bytes() -> None:
    assert decode_uint(H("0100000000000000"), "T", 1) == 1
    assert decode_uint(H("ffffffffffff1f00"), "T", 1) == 2**53 - 1
    with pytest.raises(ProtocolError, match="T frame 3: unsigned integer exceeds 2\\^53-1"):
        decode_uint(H("0000000000002000"), "T", 3)
    with pytest.raises(ProtocolError, match="too long"):
        decode_uint(bytes(9), "T", 1)


def test_uint_empty_frame_error_names_message_and_frame() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_uint(b"", "AppendEntries", 5)
    assert str(info.value) == "AppendEntries frame 5: unsigned integer must not be null"


@pytest.mark.parametrize("bad", [-1, 2**53, 1.0, True, "1", None])
def test_uint_encoder_rejects(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_uint(bad)  # type: ignore[arg-type]


def test_uint32() -> None:
    assert encode_uint32(0xFFFFFFFF) == H("ffffffff")
    assert encode_uint32(1) == H("01")
    with pytest.raises(ValueError):
        encode_uint32(0x100000000)
    assert decode_uint32(H("ffffffff"), "T", 1) == 0xFFFFFFFF
    with pytest.raises(ProtocolError, match="32 bits"):
        decode_uint32(H("0000000001"), "T", 1)
    with pytest.raises(ProtocolError, match="must not be null"):
        decode_uint32(b"", "T", 1)


def test_bool_decoding() -> None:
    assert decode_bool(b"") is False
    assert decode_bool(b"\x00") is False
    assert decode_bool(b"\x00\x01") is False  # only the first byte counts
    assert decode_bool(b"\x01") is True
    assert decode_bool(b"\x02\x00") is True


def test_string_decoding() -> None:
    assert decode_string(b"", "T", 1) == ""
    assert decode_string("zażółć".encode(), "T", 1) == "zażółć"
    with pytest.raises(ProtocolError, match="T frame 4: invalid UTF-8"):
        decode_string(b"\xff\xfe", "T", 4)


def test_json_decoding_errors_and_dialect() -> None:
    with pytest.raises(ProtocolError, match="T frame 2: msgpack value must not be empty"):
        decode_json(b"", "T", 2)
    with pytest.raises(ProtocolError, match="T frame 2: invalid msgpack"):
        decode_json(b"\xc1", "T", 2)  # never-used byte
    with pytest.raises(ProtocolError, match="invalid msgpack"):
        decode_json(b"\xc0\xc0", "T", 2)  # trailing data
    with pytest.raises(ProtocolError, match="invalid msgpack"):
        decode_json(b"\x92\x01", "T", 2)  # truncated
    # the original writes integers >= 2^31 as float64; readers must take them as ints
    assert encode_json(4294967295) == H("cb41efffffffe00000")
    assert json_int(decode_json(H("cb41efffffffe00000"), "T", 1), "T", 1) == 4294967295
    with pytest.raises(ProtocolError, match="non-negative integer"):
        json_int(1.5, "T", 1)
    with pytest.raises(ProtocolError, match="non-negative integer"):
        json_int(True, "T", 1)


def test_reqid_frame() -> None:
    rid = H("5956dc8826f27e10dcccab20")
    assert encode_reqid(rid) == rid
    assert decode_reqid(rid, "T", 1) is rid
    with pytest.raises(ValueError):
        encode_reqid(rid[:11])
    with pytest.raises(ProtocolError, match="T frame 1: request id must be 12 bytes, got 13"):
        decode_reqid(rid + b"\x00", "T", 1)


def test_frame_reader_missing_frame() -> None:
    r = FrameReader("RequestVote", [b"\x01", b"?"])
    with pytest.raises(ProtocolError, match=r"^RequestVote frame 3: missing \(message has 2 frames\)$"):
        r.require(7)
    with pytest.raises(ProtocolError, match=r"^RequestVote frame 6: missing"):
        r.uint(6)
    with pytest.raises(ProtocolError, match="message id must be 1 to 3 bytes, got 4"):
        FrameReader("X", [b"\x01\x02\x03\x04"]).msg_id(1)


# ---- §3 request ids ---------------------------------------------------------------------------

SPEC_REQID = H("5956dc8826f27e10dcccab20")


def test_spec_reqid_example_layout() -> None:
    assert request_id_seconds(SPEC_REQID) == 1498864776
    assert SPEC_REQID[4:7] == H("26f27e")
    assert int.from_bytes(SPEC_REQID[7:9], "big") == 4316
    assert int.from_bytes(SPEC_REQID[9:12], "big") == 0xCCAB20


def test_generator_layout_and_counter() -> None:
    gen = RequestIdGenerator(random.Random(7), hostname="example", pid=0x1_10DC)
    first = gen.next(1498864776.9)
    second = gen.next(1498864777)
    assert len(first) == 12
    assert first[:4] == H("5956dc88")
    assert first[4:7] == hashlib.md5(b"example").digest()[:3]
    assert first[7:9] == H("10dc")  # pid & 0xffff, big-endian
    assert second[:4] == H("5956dc89")
    assert int.from_bytes(second[9:], "big") == (int.from_bytes(first[9:], "big") + 1) & 0xFFFFFF
    # the counter starts at 3 random bytes drawn from the given rng
    expected_start = random.Random(7).getrandbits(24)
    assert int.from_bytes(first[9:], "big") == expected_start


def test_counter_wraps_at_2_24() -> None:
    class Top(random.Random):
        def getrandbits(self, k: int) -> int:
            return (1 << k) - 1

    gen = RequestIdGenerator(Top(), hostname="h", pid=1)
    assert gen.next(0)[9:] == H("ffffff")
    assert gen.next(0)[9:] == H("000000")


def test_default_generator_uses_host_and_pid() -> None:
    import os

    rid = new_request_id(1_700_000_000)
    assert rid[4:7] == hashlib.md5(platform.node().encode()).digest()[:3]
    assert rid[7:9] == (os.getpid() & 0xFFFF).to_bytes(2, "big")
    assert request_id_seconds(rid) == 1_700_000_000


def test_ids_unique_within_process() -> None:
    gen = RequestIdGenerator()
    ids = {gen.next(1_700_000_000) for _ in range(5000)}
    ids |= {new_request_id(1_700_000_000) for _ in range(5000)}
    assert len(ids) == 10000


def test_ids_unique_across_processes() -> None:
    code = textwrap.dedent(
        """
        from zmqraft.core.protocol import new_request_id
        for _ in range(2000):
            print(new_request_id(1700000000).hex())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    theirs = set(out.split())
    ours = {new_request_id(1_700_000_000).hex() for _ in range(2000)}
    assert len(theirs) == 2000
    assert not theirs & ours
    # different pid bytes make them disjoint whatever the random counter starts are
    assert {h[14:18] for h in theirs} != {h[14:18] for h in ours}


def test_reqid_text_forms() -> None:
    assert rq.to_hex(SPEC_REQID) == "5956dc8826f27e10dcccab20"
    assert rq.from_hex("5956dc8826f27e10dcccab20") == SPEC_REQID
    key = rq.to_key(SPEC_REQID)
    assert key == "WVbciCbyfhDczKsg" and len(key) == 16
    assert rq.from_key(key) == SPEC_REQID
    for bad in ["5956DC8826F27E10DCCCAB20", "5956dc8826f27e10dcccab2", "x" * 24]:
        with pytest.raises(ValueError):
            rq.from_hex(bad)
    with pytest.raises(ValueError):
        rq.from_key("WVbciCbyfhDczKs=")
    assert is_request_id(SPEC_REQID)
    assert is_request_id("5956dc8826f27e10dcccab20")
    assert not is_request_id(SPEC_REQID[:11])
    assert not is_request_id("5956DC8826F27E10DCCCAB20")
    assert not is_request_id(12)
    assert rq.as_request_id("5956dc8826f27e10dcccab20") == SPEC_REQID


# ---- §5 entries -------------------------------------------------------------------------------


def test_spec_state_entry_example() -> None:
    entry = encode_entry(SPEC_REQID, EntryType.STATE, 42, b"foo")
    assert entry == H("5956dc8826f27e10dcccab20002a000000000000666f6f")
    assert len(entry) == 23
    decoded = LogEntry.from_bytes(entry)
    assert (decoded.request_id, decoded.type, decoded.term, decoded.data) == (
        SPEC_REQID,
        EntryType.STATE,
        42,
        b"foo",
    )


def test_spec_checkpoint_entry_example() -> None:
    entry = checkpoint_entry(43)
    assert entry == H("000000000000000000000000022b000000000000c0")
    assert len(entry) == 21


def test_entry_validation() -> None:
    with pytest.raises(ProtocolError, match="AppendEntries frame 9: log entry must be longer than 20 bytes"):
        validate_entry(bytes(20), "AppendEntries frame 9")
    with pytest.raises(ProtocolError, match="unknown log entry type 3"):
        validate_entry(bytes(12) + b"\x03" + bytes(8))
