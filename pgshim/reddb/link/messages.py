"""Protocol Buffers encoding of the three messages in ``proto/reddb.proto``.

Only what these messages need: varints, length-delimited strings and a bool, in proto3 form (a
field holding its default value is not written). Decoders skip unknown fields of any wire type,
as protobuf requires, so a newer RedDB that adds fields still decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5


class MessageDecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


@dataclass(slots=True, frozen=True)
class Empty:
    pass


@dataclass(slots=True, frozen=True)
class JsonPayloadRequest:
    payload_json: str = ""


@dataclass(slots=True, frozen=True)
class PayloadReply:
    ok: bool = False
    payload: str = ""


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise MessageDecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise MessageDecodeError("varint longer than 10 bytes")


def _string_field(number: int, text: str) -> bytes:
    if not text:
        return b""
    raw = text.encode()
    return encode_varint(number << 3 | _LENGTH_DELIMITED) + encode_varint(len(raw)) + raw


def _fields(data: bytes) -> dict[int, tuple[int, int | bytes]]:
    """Field number -> (wire type, value) for every field; the last occurrence wins."""
    fields: dict[int, tuple[int, int | bytes]] = {}
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise MessageDecodeError("field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = decode_varint(data, pos)
        elif wire_type == _LENGTH_DELIMITED:
            size, pos = decode_varint(data, pos)
            if pos + size > len(data):
                raise MessageDecodeError("truncated length-delimited field")
            value, pos = bytes(data[pos : pos + size]), pos + size
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if pos + width > len(data):
                raise MessageDecodeError("truncated fixed-width field")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise MessageDecodeError(f"unsupported wire type {wire_type}")
        fields[number] = (wire_type, value)
    return fields


def _text(fields: dict[int, tuple[int, int | bytes]], number: int) -> str:
    if number not in fields:
        return ""
    wire_type, value = fields[number]
    if wire_type != _LENGTH_DELIMITED or not isinstance(value, bytes):
        raise MessageDecodeError(f"field {number} is not a string")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise MessageDecodeError(f"field {number} is not UTF-8") from exc


def encode_empty(_message: object = None) -> bytes:
    return b""


def decode_empty(data: bytes) -> Empty:
    _fields(data)
    return Empty()


def encode_json_payload_request(message: JsonPayloadRequest) -> bytes:
    return _string_field(1, message.payload_json)


def decode_json_payload_request(data: bytes) -> JsonPayloadRequest:
    return JsonPayloadRequest(_text(_fields(data), 1))


def encode_payload_reply(message: PayloadReply) -> bytes:
    ok = encode_varint(1 << 3 | _VARINT) + b"\x01" if message.ok else b""
    return ok + _string_field(2, message.payload)


def decode_payload_reply(data: bytes) -> PayloadReply:
    fields = _fields(data)
    ok = False
    if 1 in fields:
        wire_type, value = fields[1]
        if wire_type != _VARINT:
            raise MessageDecodeError("field 1 is not a bool")
        ok = bool(value)
    return PayloadReply(ok, _text(fields, 2))
