"""Byte-level tests of the protobuf encoding of reddb.v1's JsonPayloadRequest and PayloadReply."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.reddb.link import messages
from pgshim.reddb.link.messages import (
    JsonPayloadRequest,
    MessageDecodeError,
    PayloadReply,
    decode_json_payload_request,
    decode_payload_reply,
    encode_json_payload_request,
    encode_payload_reply,
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
     (2**64 - 1, b"\xff" * 9 + b"\x01")],
)  # fmt: skip
def test_varint_bytes(value: int, encoded: bytes) -> None:
    assert messages.encode_varint(value) == encoded
    assert messages.decode_varint(encoded, 0) == (value, len(encoded))


def test_json_payload_request_bytes() -> None:
    # field 1, wire type 2 -> key 0x0a; then the length and the UTF-8 bytes
    assert encode_json_payload_request(JsonPayloadRequest('{"since_lsn":7}')) == (
        b'\x0a\x0f{"since_lsn":7}'
    )
    assert encode_json_payload_request(JsonPayloadRequest("")) == b""  # proto3 default omitted
    long_text = "x" * 200
    assert encode_json_payload_request(JsonPayloadRequest(long_text)) == (
        b"\x0a\xc8\x01" + long_text.encode()
    )
    assert encode_json_payload_request(JsonPayloadRequest("é")) == b"\x0a\x02\xc3\xa9"


def test_payload_reply_bytes() -> None:
    assert encode_payload_reply(PayloadReply(True, "{}")) == b"\x08\x01\x12\x02{}"
    assert encode_payload_reply(PayloadReply(False, "{}")) == b"\x12\x02{}"
    assert encode_payload_reply(PayloadReply()) == b""
    assert decode_payload_reply(b"") == PayloadReply(False, "")


def test_decoders_skip_unknown_fields() -> None:
    unknown = (
        b"\x18\x96\x01"  # field 3 varint 150
        + b"\x21" + b"\x00" * 8  # field 4 fixed64
        + b"\x2d" + b"\x00" * 4  # field 5 fixed32
        + b"\x32\x03abc"  # field 6 bytes
    )  # fmt: skip
    assert decode_payload_reply(unknown + b"\x08\x01\x12\x02{}") == PayloadReply(True, "{}")
    assert decode_json_payload_request(unknown + b"\x0a\x02{}") == JsonPayloadRequest("{}")


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05{}", b"\x0a", b"\x08", b"\x08\x80", b"\x0b", b"\x00\x01", b"\x0a\x02\xff\xfe",
     b"\x21\x00", b"\x80" * 11],
)  # fmt: skip
def test_malformed_bytes_are_rejected(data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode_json_payload_request(data)


def test_wrong_wire_type_is_rejected() -> None:
    with pytest.raises(MessageDecodeError):
        decode_payload_reply(b"\x0a\x00")  # ok as a length-delimited field
    with pytest.raises(MessageDecodeError):
        decode_payload_reply(b"\x10\x01")  # payload as a varint


@given(st.booleans(), st.text())
def test_payload_reply_round_trip(ok: bool, payload: str) -> None:
    assert decode_payload_reply(encode_payload_reply(PayloadReply(ok, payload))) == PayloadReply(
        ok, payload
    )


@given(st.text())
def test_json_payload_request_round_trip(text: str) -> None:
    encoded = encode_json_payload_request(JsonPayloadRequest(text))
    assert decode_json_payload_request(encoded) == JsonPayloadRequest(text)
