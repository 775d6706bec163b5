"""RedDB Value encoding (type byte + payload) → PostgreSQL type OID + Python value, and back.

The Python value follows the table in docs/architecture.md. Where that value loses information
RedDB carried (Money's asset code, the parts of a reference, array element types, nanosecond
timestamps), ``TypedValue.native`` keeps the exact RedDB value so ``encode_typed`` round-trips.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import zstandard

from pgshim.reddb.binary import Buffer, encode_str, read_bytes, read_str, read_varu32, varu
from pgshim.reddb.errors import ChangeDecodeError

# PostgreSQL type OIDs used here.
OID_NULL = 0
OID_BOOL = 16
OID_BYTEA = 17
OID_INT8 = 20
OID_INT2 = 21
OID_INT4 = 23
OID_TEXT = 25
OID_POINT = 600
OID_CIDR = 650
OID_FLOAT8 = 701
OID_MACADDR = 829
OID_INET = 869
OID_FLOAT4_ARRAY = 1021
OID_BPCHAR = 1042
OID_VARCHAR = 1043
OID_DATE = 1082
OID_TIME = 1083
OID_TIMESTAMPTZ = 1184
OID_INTERVAL = 1186
OID_NUMERIC = 1700
OID_UUID = 2950
OID_JSONB = 3802

COMPRESSED_TEXT = 0x85
COMPRESSED_BLOB = 0x86
COMPRESSION_THRESHOLD = 2048
ZSTD_LEVEL = 3
DECIMAL_SCALE = 4

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)

_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")
_F64 = struct.Struct("<d")
_F32 = struct.Struct("<f")
_I32_PAIR = struct.Struct("<ii")
_U32_PAIR = struct.Struct("<II")


@dataclass(slots=True, frozen=True)
class TypedValue:
    type_code: int
    type_oid: int
    value: object
    native: object = None  # exact RedDB value when ``value`` is lossy (see module docstring)


@dataclass(slots=True, frozen=True)
class ValueType:
    code: int
    name: str
    oid: int


_TYPES: dict[int, ValueType] = {
    code: ValueType(code, name, oid)
    for code, name, oid in [
        (0, "Null", OID_NULL),
        (1, "Boolean", OID_BOOL),
        (2, "Integer", OID_INT8),
        (3, "UnsignedInteger", OID_NUMERIC),
        (4, "Float", OID_FLOAT8),
        (5, "Text", OID_TEXT),
        (6, "Blob", OID_BYTEA),
        (7, "Timestamp", OID_TIMESTAMPTZ),
        (8, "Duration", OID_INTERVAL),
        (9, "IpAddr", OID_INET),
        (10, "MacAddr", OID_MACADDR),
        (11, "Vector", OID_FLOAT4_ARRAY),
        (12, "Json", OID_JSONB),
        (13, "Uuid", OID_UUID),
        (14, "NodeRef", OID_TEXT),
        (15, "EdgeRef", OID_TEXT),
        (16, "VectorRef", OID_TEXT),
        (17, "RowRef", OID_TEXT),
        (18, "Color", OID_TEXT),
        (19, "Email", OID_TEXT),
        (20, "Url", OID_TEXT),
        (21, "Phone", OID_TEXT),
        (22, "Semver", OID_TEXT),
        (23, "Cidr", OID_CIDR),
        (24, "Date", OID_DATE),
        (25, "Time", OID_TIME),
        (26, "Decimal", OID_NUMERIC),
        (27, "EnumValue", OID_INT2),
        (28, "Array", OID_JSONB),
        (29, "TimestampMs", OID_TIMESTAMPTZ),
        (30, "Ipv4", OID_INET),
        (31, "Ipv6", OID_INET),
        (32, "Subnet", OID_CIDR),
        (33, "Port", OID_INT4),
        (34, "Latitude", OID_FLOAT8),
        (35, "Longitude", OID_FLOAT8),
        (36, "GeoPoint", OID_POINT),
        (37, "Country2", OID_BPCHAR),
        (38, "Country3", OID_BPCHAR),
        (39, "Lang2", OID_BPCHAR),
        (40, "Lang5", OID_VARCHAR),
        (41, "Currency", OID_BPCHAR),
        (42, "ColorAlpha", OID_TEXT),
        (43, "BigInt", OID_INT8),
        (44, "KeyRef", OID_TEXT),
        (45, "DocRef", OID_TEXT),
        (46, "TableRef", OID_TEXT),
        (47, "PageRef", OID_INT8),
        (48, "Secret", OID_BYTEA),
        (49, "Password", OID_TEXT),
        (50, "AssetCode", OID_TEXT),
        (51, "Money", OID_NUMERIC),
        (52, "DecimalText", OID_NUMERIC),
        (COMPRESSED_TEXT, "CompressedText", OID_TEXT),
        (COMPRESSED_BLOB, "CompressedBlob", OID_BYTEA),
    ]
}

VALUE_TYPES: tuple[ValueType, ...] = tuple(_TYPES.values())
_FIXED_ASCII = {37: 2, 38: 3, 39: 2, 40: 5, 41: 3}
_PLAIN_STR = frozenset({14, 15, 19, 20, 46, 49, 50})
# for the compiled core (pgshim/_ingest_core.pyx), which reads these types the same way
VALUE_TYPES_BY_CODE = _TYPES
FIXED_ASCII_SIZES = _FIXED_ASCII
PLAIN_STR_CODES = _PLAIN_STR


def value_typmod(code: int) -> int:
    """The type modifier of a column of this value type: the length of the fixed-length ASCII
    codes (Country2 is character(2), Lang5 character varying(5)), -1 for the others."""
    size = _FIXED_ASCII.get(code)
    return -1 if size is None else size + 4  # PostgreSQL's VARHDRSZ + length


def value_type(code: int) -> ValueType:
    try:
        return _TYPES[code]
    except KeyError:
        raise ChangeDecodeError(f"unknown value type byte {code}") from None


def null_value() -> TypedValue:
    return TypedValue(0, OID_NULL, None)


# ---------------------------------------------------------------------------------------------
# decoding

Decoded = tuple[object, object, int]  # (value, native, next position)


def _timestamp(seconds: float) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=seconds)


def _fixed(
    unpacker: struct.Struct, convert: Callable[..., object]
) -> Callable[[Buffer, int], Decoded]:
    size = unpacker.size

    def decode(buf: Buffer, pos: int) -> Decoded:
        return convert(*unpacker.unpack_from(buf, pos)), None, pos + size

    return decode


def _dec_null(buf: Buffer, pos: int) -> Decoded:
    return None, None, pos


def _dec_bool(buf: Buffer, pos: int) -> Decoded:
    if pos >= len(buf):
        raise struct.error("truncated")
    return buf[pos] != 0, None, pos + 1


def _dec_text(buf: Buffer, pos: int) -> Decoded:
    text, pos = read_str(buf, pos)
    return text, None, pos


def _dec_blob(buf: Buffer, pos: int) -> Decoded:
    size, pos = read_varu32(buf, pos)
    raw, pos = read_bytes(buf, pos, size)
    return raw, None, pos


def _dec_ipaddr(buf: Buffer, pos: int) -> Decoded:
    raw, end = read_bytes(buf, pos + 1, 4 if buf[pos] == 4 else 16)
    return _interface(raw), None, end


def _interface(raw: bytes) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    # from the integer: given an address object, the interface goes through its text (6x slower)
    number = int.from_bytes(raw, "big")
    if len(raw) == 4:
        return ipaddress.IPv4Interface(number)
    return ipaddress.IPv6Interface(number)


def _dec_mac(buf: Buffer, pos: int) -> Decoded:
    raw, end = read_bytes(buf, pos, 6)
    return ":".join(f"{b:02x}" for b in raw), None, end


def _dec_vector(buf: Buffer, pos: int) -> Decoded:
    count, pos = read_varu32(buf, pos)
    raw, end = read_bytes(buf, pos, 4 * count)
    return list(struct.unpack(f"<{count}f", raw)), None, end


def _dec_json(buf: Buffer, pos: int) -> Decoded:
    start = pos
    text, pos = read_str(buf, pos)
    try:
        json.loads(text)
    except ValueError:
        raise ChangeDecodeError("invalid JSON in Json value", position=start) from None
    return text, None, pos


def _dec_uuid(buf: Buffer, pos: int) -> Decoded:
    raw, end = read_bytes(buf, pos, 16)
    return uuid.UUID(bytes=raw), None, end


def _dec_str_u64_ref(buf: Buffer, pos: int) -> Decoded:
    name, pos = read_str(buf, pos)
    (ident,) = _U64.unpack_from(buf, pos)
    return f"{name}:{ident}", (name, ident), pos + 8


def _dec_color(buf: Buffer, pos: int) -> Decoded:
    raw, end = read_bytes(buf, pos, 3)
    return "#" + raw.hex().upper(), None, end


def _dec_color_alpha(buf: Buffer, pos: int) -> Decoded:
    raw, end = read_bytes(buf, pos, 4)
    return "#" + raw.hex().upper(), None, end


def _dec_semver(packed: int) -> str:
    return f"{packed // 1_000_000}.{packed // 1000 % 1000}.{packed % 1000}"


def _dec_cidr(buf: Buffer, pos: int) -> Decoded:
    (ip,) = _U32.unpack_from(buf, pos)
    if pos + 4 >= len(buf):
        raise struct.error("truncated")
    prefix = buf[pos + 4]
    if prefix > 32:
        raise ChangeDecodeError(f"Cidr prefix {prefix} out of range", position=pos + 4)
    network = ipaddress.IPv4Network((ip, prefix), strict=False)
    return network, (ip, prefix), pos + 5


def _dec_subnet(buf: Buffer, pos: int) -> Decoded:
    ip, mask = _U32_PAIR.unpack_from(buf, pos)
    try:
        network = ipaddress.IPv4Network((ip, str(ipaddress.IPv4Address(mask))), strict=False)
    except ValueError:
        raise ChangeDecodeError(
            f"Subnet mask {mask:#010x} is not contiguous", position=pos
        ) from None
    return network, (ip, mask), pos + 8


def _dec_date(days: int) -> dt.date:
    return _EPOCH_DATE + dt.timedelta(days=days)


def _dec_time(millis: int) -> dt.time:
    if millis >= 86_400_000:
        raise ValueError("time of day out of range")
    seconds, ms = divmod(millis, 1000)
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, ms * 1000)


def _dec_array(buf: Buffer, pos: int) -> Decoded:
    count, pos = read_varu32(buf, pos)
    items = []
    for _ in range(count):
        item, pos = decode_value(buf, pos)
        items.append(item)
    return array_json(items), tuple(items), pos


def _dec_fixed_ascii(size: int) -> Callable[[Buffer, int], Decoded]:
    def decode(buf: Buffer, pos: int) -> Decoded:
        raw, end = read_bytes(buf, pos, size)
        try:
            return raw.decode("ascii"), None, end
        except UnicodeDecodeError:
            raise ChangeDecodeError("non-ASCII code value", position=pos) from None

    return decode


def _dec_key_ref(buf: Buffer, pos: int) -> Decoded:
    collection, pos = read_str(buf, pos)
    key, pos = read_str(buf, pos)
    return f"{collection}:{key}", (collection, key), pos


def _dec_money(buf: Buffer, pos: int) -> Decoded:
    asset, pos = read_str(buf, pos)
    if pos >= len(buf):
        raise struct.error("truncated")
    scale = buf[pos]
    (minor,) = _I64.unpack_from(buf, pos + 1)
    return Decimal(minor).scaleb(-scale), (asset, scale, minor), pos + 9


def _dec_decimal_text(buf: Buffer, pos: int) -> Decoded:
    start = pos
    literal, pos = read_str(buf, pos)
    try:
        number = Decimal(literal)
    except InvalidOperation:
        raise ChangeDecodeError(f"invalid decimal literal {literal!r}", position=start) from None
    if not number.is_finite():
        raise ChangeDecodeError(f"invalid decimal literal {literal!r}", position=start)
    return number, literal, pos


def _dec_compressed(as_text: bool) -> Callable[[Buffer, int], Decoded]:
    def decode(buf: Buffer, pos: int) -> Decoded:
        start = pos
        original, pos = read_varu32(buf, pos)
        compressed, pos = read_varu32(buf, pos)
        frame, pos = read_bytes(buf, pos, compressed)
        try:
            raw = zstandard.ZstdDecompressor().decompress(frame, max_output_size=original)
        except zstandard.ZstdError as exc:
            raise ChangeDecodeError(f"bad zstd frame: {exc}", position=start) from None
        if len(raw) != original:
            raise ChangeDecodeError("zstd frame length mismatch", position=start)
        if not as_text:
            return raw, None, pos
        try:
            return raw.decode("utf-8"), None, pos
        except UnicodeDecodeError:
            raise ChangeDecodeError("invalid UTF-8 in compressed text", position=start) from None

    return decode


_DECODERS: dict[int, Callable[[Buffer, int], Decoded]] = {
    0: _dec_null,
    1: _dec_bool,
    2: _fixed(_I64, int),
    3: _fixed(_U64, Decimal),
    4: _fixed(_F64, float),
    5: _dec_text,
    6: _dec_blob,
    7: _fixed(_I64, _timestamp),
    8: _fixed(_I64, lambda ms: dt.timedelta(milliseconds=ms)),
    9: _dec_ipaddr,
    10: _dec_mac,
    11: _dec_vector,
    12: _dec_json,
    13: _dec_uuid,
    16: _dec_str_u64_ref,
    17: _dec_str_u64_ref,
    18: _dec_color,
    21: _fixed(_U64, lambda digits: f"+{digits}"),
    22: _fixed(_U32, _dec_semver),
    23: _dec_cidr,
    24: _fixed(_I32, _dec_date),
    25: _fixed(_U32, _dec_time),
    26: _fixed(_I64, lambda units: Decimal(units).scaleb(-DECIMAL_SCALE)),
    27: _fixed(struct.Struct("<B"), int),
    28: _dec_array,
    29: _fixed(_I64, lambda ms: _EPOCH + dt.timedelta(milliseconds=ms)),
    30: _fixed(_U32, lambda ip: ipaddress.IPv4Interface(ip)),
    31: lambda buf, pos: (_interface(read_bytes(buf, pos, 16)[0]), None, pos + 16),
    32: _dec_subnet,
    33: _fixed(_U16, int),
    34: _fixed(_I32, lambda micro: micro / 1e6),
    35: _fixed(_I32, lambda micro: micro / 1e6),
    36: _fixed(_I32_PAIR, lambda lat, lon: (lon / 1e6, lat / 1e6)),
    42: _dec_color_alpha,
    43: _fixed(_I64, int),
    44: _dec_key_ref,
    45: _dec_str_u64_ref,
    47: _fixed(_U32, int),
    48: _dec_blob,
    51: _dec_money,
    52: _dec_decimal_text,
    COMPRESSED_TEXT: _dec_compressed(True),
    COMPRESSED_BLOB: _dec_compressed(False),
}
for _code in _PLAIN_STR:
    _DECODERS[_code] = _dec_text
for _code, _size in _FIXED_ASCII.items():
    _DECODERS[_code] = _dec_fixed_ascii(_size)


def decode_value(buf: Buffer, pos: int) -> tuple[TypedValue, int]:
    """Decode the Value starting at ``pos`` (its type byte); returns it and the next position."""
    if pos >= len(buf):
        raise ChangeDecodeError("truncated: missing value type byte", position=pos)
    code = buf[pos]
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise ChangeDecodeError(f"unknown value type byte {code}", position=pos)
    try:
        value, native, end = decoder(buf, pos + 1)
    except ChangeDecodeError as exc:
        position = exc.position if exc.position is not None else pos
        raise ChangeDecodeError(
            f"{_TYPES[code].name} value: {exc.reason}", position=position
        ) from None
    except (struct.error, IndexError):
        raise ChangeDecodeError(f"truncated {_TYPES[code].name} value", position=pos) from None
    except (ValueError, OverflowError) as exc:
        raise ChangeDecodeError(
            f"{_TYPES[code].name} value out of range: {exc}", position=pos
        ) from None
    if end > len(buf):
        raise ChangeDecodeError(f"truncated {_TYPES[code].name} value", position=pos)
    return TypedValue(code, _TYPES[code].oid, value, native), end


# ---------------------------------------------------------------------------------------------
# JSON rendering of arrays (Array → jsonb)


def array_json(items: list[TypedValue] | tuple[TypedValue, ...]) -> str:
    """The jsonb text of an Array value, formatted like PostgreSQL prints jsonb."""
    return "[" + ", ".join(_json_fragment(item) for item in items) + "]"


def _json_fragment(item: TypedValue) -> str:
    value = item.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_json(value)
    if isinstance(value, Decimal):
        return str(value)
    if item.type_code == 28:
        return value  # already jsonb text
    if item.type_code == 12:
        return json.dumps(json.loads(value), ensure_ascii=False, separators=(", ", ": "))
    if item.type_code == 11:
        return "[" + ", ".join(_float_json(x) for x in value) + "]"
    if item.type_code == 36:
        return "[" + ", ".join(_float_json(x) for x in value) + "]"
    return json.dumps(_text_of(value), ensure_ascii=False)


def _float_json(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return json.dumps(repr(value))  # jsonb has no NaN/Infinity: keep it as a string


def _text_of(value: object) -> str:
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        full = value.network.max_prefixlen == value.network.prefixlen
        return str(value.ip) if full else str(value)
    return str(value)


# ---------------------------------------------------------------------------------------------
# encoding


def encode_typed(value: TypedValue) -> bytes:
    """Encode a decoded value back to the exact bytes (uses ``native`` when present)."""
    if value.native is not None:
        return encode_value(value.type_code, value.native)
    return encode_value(value.type_code, value.value)


def encode_value(type_code: int, value: object) -> bytes:
    """Encode a Value of the given type byte; the inverse of ``decode_value``.

    ``value`` is the Python value ``decode_value`` produces, or the ``native`` form it keeps
    for lossy types. Text and Blob are compressed like RedDB does (zstd level 3 at 2048 bytes
    or more, when smaller), which changes their type byte to 0x85/0x86.
    """
    encoder = _ENCODERS.get(type_code)
    if encoder is None:
        raise ValueError(f"unknown value type byte {type_code}")
    return encoder(type_code, value)


def _enc_text_like(code: int, value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{_TYPES[code].name} needs str")
    return bytes((code,)) + encode_str(value)


def _enc_text(code: int, value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("Text needs str")
    raw = value.encode("utf-8")
    return _maybe_compressed(5, COMPRESSED_TEXT, raw)


def _enc_blob(code: int, value: object) -> bytes:
    raw = bytes(value)  # type: ignore[arg-type]
    return _maybe_compressed(6, COMPRESSED_BLOB, raw)


def _maybe_compressed(plain_code: int, compressed_code: int, raw: bytes) -> bytes:
    if len(raw) >= COMPRESSION_THRESHOLD:
        frame = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
        if len(frame) < len(raw):
            return bytes((compressed_code,)) + varu(len(raw)) + varu(len(frame)) + frame
    return bytes((plain_code,)) + varu(len(raw)) + raw


def _enc_compressed(code: int, value: object) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
    frame = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
    return bytes((code,)) + varu(len(raw)) + varu(len(frame)) + frame


def _enc_struct(packer: struct.Struct, convert: Callable[[object], tuple]) -> Callable:
    def encode(code: int, value: object) -> bytes:
        return bytes((code,)) + packer.pack(*convert(value))

    return encode


def _seconds_since_epoch(value: object) -> int:
    if isinstance(value, int):
        return value
    delta = _as_utc(value) - _EPOCH
    return delta.days * 86_400 + delta.seconds


def _millis_since_epoch(value: object) -> int:
    if isinstance(value, int):
        return value
    delta = _as_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _as_utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError("timestamp needs datetime or int")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _duration_ms(value: object) -> int:
    if isinstance(value, int):
        return value
    if not isinstance(value, dt.timedelta):
        raise TypeError("Duration needs timedelta or int milliseconds")
    return (value.days * 86_400 + value.seconds) * 1000 + value.microseconds // 1000


def _enc_ipaddr(code: int, value: object) -> bytes:
    address = ipaddress.ip_interface(value).ip  # type: ignore[arg-type]
    return bytes((9, address.version)) + address.packed


def _enc_mac(code: int, value: object) -> bytes:
    raw = bytes.fromhex(str(value).replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError("MacAddr needs 6 bytes")
    return bytes((10,)) + raw


def _enc_vector(code: int, value: object) -> bytes:
    floats = list(value)  # type: ignore[call-overload]
    return bytes((11,)) + varu(len(floats)) + struct.pack(f"<{len(floats)}f", *floats)


def _enc_uuid(code: int, value: object) -> bytes:
    return bytes((13,)) + (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes


def _split_ref(value: object) -> tuple[str, str]:
    if isinstance(value, tuple):
        return str(value[0]), str(value[1])
    head, sep, tail = str(value).rpartition(":")
    if not sep:
        raise ValueError(f"reference {value!r} needs collection:id")
    return head, tail


def _enc_str_u64_ref(code: int, value: object) -> bytes:
    name, ident = _split_ref(value)
    return bytes((code,)) + encode_str(name) + _U64.pack(int(ident))


def _enc_key_ref(code: int, value: object) -> bytes:
    if isinstance(value, tuple):
        collection, key = value
    else:
        collection, sep, key = str(value).partition(":")
        if not sep:
            raise ValueError("KeyRef needs collection:key")
    return bytes((44,)) + encode_str(collection) + encode_str(key)


def _enc_color(size: int) -> Callable[[int, object], bytes]:
    def encode(code: int, value: object) -> bytes:
        raw = bytes.fromhex(str(value).lstrip("#"))
        if len(raw) != size:
            raise ValueError(f"color needs {size} bytes")
        return bytes((code,)) + raw

    return encode


def _phone_digits(value: object) -> tuple[int]:
    return (int(str(value).lstrip("+")),)


def _semver_packed(value: object) -> tuple[int]:
    major, minor, patch = (int(part) for part in str(value).split("."))
    return (major * 1_000_000 + minor * 1000 + patch,)


def _enc_cidr(code: int, value: object) -> bytes:
    if isinstance(value, tuple):
        ip, prefix = value
    else:
        network = ipaddress.IPv4Network(value)  # type: ignore[arg-type]
        ip, prefix = int(network.network_address), network.prefixlen
    return bytes((23,)) + _U32.pack(ip) + bytes((prefix,))


def _enc_subnet(code: int, value: object) -> bytes:
    if isinstance(value, tuple):
        ip, mask = value
    else:
        network = ipaddress.IPv4Network(value)  # type: ignore[arg-type]
        ip, mask = int(network.network_address), int(network.netmask)
    return bytes((32,)) + _U32_PAIR.pack(ip, mask)


def _days(value: object) -> tuple[int]:
    if isinstance(value, int):
        return (value,)
    return ((value - _EPOCH_DATE).days,)  # type: ignore[operator]


def _time_ms(value: object) -> tuple[int]:
    if isinstance(value, int):
        return (value,)
    t = value  # type: dt.time
    return (((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000,)  # type: ignore[union-attr]


def _decimal_units(value: object) -> tuple[int]:
    if isinstance(value, int):
        return (value,)
    return (int(Decimal(value).scaleb(DECIMAL_SCALE)),)  # type: ignore[arg-type]


def _enc_array(code: int, value: object) -> bytes:
    if isinstance(value, str):
        items = [_typed_from_json(item) for item in json.loads(value)]
    else:
        items = list(value)  # type: ignore[call-overload]
    return bytes((28,)) + varu(len(items)) + b"".join(encode_typed(item) for item in items)


def _typed_from_json(item: object) -> TypedValue:
    """Best-effort RedDB type for a JSON array element (used when encoding from jsonb text)."""
    if item is None:
        return TypedValue(0, OID_NULL, None)
    if isinstance(item, bool):
        return TypedValue(1, OID_BOOL, item)
    if isinstance(item, int):
        return TypedValue(2, OID_INT8, item)
    if isinstance(item, float):
        return TypedValue(4, OID_FLOAT8, item)
    if isinstance(item, str):
        return TypedValue(5, OID_TEXT, item)
    if isinstance(item, list):
        return TypedValue(28, OID_JSONB, json.dumps(item))
    return TypedValue(12, OID_JSONB, json.dumps(item, separators=(",", ":")))


def _enc_ipv4(code: int, value: object) -> bytes:
    address = ipaddress.ip_interface(value).ip  # type: ignore[arg-type]
    return bytes((30,)) + _U32.pack(int(address))


def _enc_ipv6(code: int, value: object) -> bytes:
    address = ipaddress.ip_interface(value).ip  # type: ignore[arg-type]
    return bytes((31,)) + address.packed


def _microdegrees(value: object) -> tuple[int]:
    return (round(float(value) * 1e6),)  # type: ignore[arg-type]


def _geo(value: object) -> tuple[int, int]:
    lon, lat = value  # type: ignore[misc]
    return round(lat * 1e6), round(lon * 1e6)


def _enc_fixed_ascii(code: int, value: object) -> bytes:
    raw = str(value).encode("ascii")
    if len(raw) != _FIXED_ASCII[code]:
        raise ValueError(f"{_TYPES[code].name} needs {_FIXED_ASCII[code]} ASCII characters")
    return bytes((code,)) + raw


def _enc_secret(code: int, value: object) -> bytes:
    raw = bytes(value)  # type: ignore[arg-type]
    return bytes((48,)) + varu(len(raw)) + raw


def _enc_money(code: int, value: object) -> bytes:
    if isinstance(value, tuple):
        asset, scale, minor = value
    else:
        number = Decimal(value)  # type: ignore[arg-type]
        scale = max(0, -number.as_tuple().exponent)  # type: ignore[operator]
        asset, minor = "", int(number.scaleb(scale))
    return bytes((51,)) + encode_str(asset) + bytes((scale,)) + _I64.pack(minor)


def _enc_decimal_text(code: int, value: object) -> bytes:
    return bytes((52,)) + encode_str(value if isinstance(value, str) else str(value))


def _enc_bool(code: int, value: object) -> bytes:
    return bytes((1, 1 if value else 0))


_ENCODERS: dict[int, Callable[[int, object], bytes]] = {
    0: lambda code, value: b"\x00",
    1: _enc_bool,
    2: _enc_struct(_I64, lambda v: (v,)),
    3: _enc_struct(_U64, lambda v: (int(v),)),  # type: ignore[call-overload]
    4: _enc_struct(_F64, lambda v: (v,)),
    5: _enc_text,
    6: _enc_blob,
    7: _enc_struct(_I64, lambda v: (_seconds_since_epoch(v),)),
    8: _enc_struct(_I64, lambda v: (_duration_ms(v),)),
    9: _enc_ipaddr,
    10: _enc_mac,
    11: _enc_vector,
    12: _enc_text_like,
    13: _enc_uuid,
    16: _enc_str_u64_ref,
    17: _enc_str_u64_ref,
    18: _enc_color(3),
    21: _enc_struct(_U64, _phone_digits),
    22: _enc_struct(_U32, _semver_packed),
    23: _enc_cidr,
    24: _enc_struct(_I32, _days),
    25: _enc_struct(_U32, _time_ms),
    26: _enc_struct(_I64, _decimal_units),
    27: _enc_struct(struct.Struct("<B"), lambda v: (v,)),
    28: _enc_array,
    29: _enc_struct(_I64, lambda v: (_millis_since_epoch(v),)),
    30: _enc_ipv4,
    31: _enc_ipv6,
    32: _enc_subnet,
    33: _enc_struct(_U16, lambda v: (v,)),
    34: _enc_struct(_I32, _microdegrees),
    35: _enc_struct(_I32, _microdegrees),
    36: _enc_struct(_I32_PAIR, _geo),
    42: _enc_color(4),
    43: _enc_struct(_I64, lambda v: (v,)),
    44: _enc_key_ref,
    45: _enc_str_u64_ref,
    47: _enc_struct(_U32, lambda v: (v,)),
    48: _enc_secret,
    51: _enc_money,
    52: _enc_decimal_text,
    COMPRESSED_TEXT: _enc_compressed,
    COMPRESSED_BLOB: _enc_compressed,
}
for _code in _PLAIN_STR:
    _ENCODERS[_code] = _enc_text_like
for _code in _FIXED_ASCII:
    _ENCODERS[_code] = _enc_fixed_ascii
