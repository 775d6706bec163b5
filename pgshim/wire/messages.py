"""Every PostgreSQL v3 message layout pgshim reads or writes, declared once with construct.

Typed messages are framed as Byte1 tag + Int32 length (including itself) + body; the body
schemas below serve both parsing and building. The hot paths (DataRow, CopyData carrying
XLogData/keepalive, standby status updates) also have precompiled ``struct`` packers which the
tests hold byte-equal to the construct schemas.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from construct import (
    Byte,
    Bytes,
    Const,
    Construct,
    ExprAdapter,
    GreedyBytes,
    If,
    Int16sb,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64sb,
    Int64ub,
    Prefixed,
    PrefixedArray,
    Rebuild,
    RepeatUntil,
    SizeofError,
    StreamError,
    Struct,
    Switch,
    this,
)

from pgshim.errors import PgError

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3_0 = 196608

# The v3 length field counts itself; construct sees only the body.
MessageLength = ExprAdapter(Int32ub, lambda obj, ctx: obj - 4, lambda obj, ctx: obj + 4)


class _CString(Construct):
    """A NUL-terminated UTF-8 string, found with one search (construct's CString reads a byte
    at a time and joins: quadratic, minutes for a 1 MiB Query message)."""

    def _parse(self, stream, context, path):  # noqa: ANN001, ANN202 - construct's signature
        start = stream.tell()
        rest = stream.read()
        end = rest.find(b"\0")
        if end < 0:
            raise StreamError("a string is missing its terminating NUL byte", path=path)
        stream.seek(start + end + 1)
        return rest[:end].decode("utf8")

    def _build(self, obj, stream, context, path):  # noqa: ANN001, ANN202
        data = obj.encode("utf8")
        if b"\0" in data:
            raise ValueError("a string sent to the client contains a NUL byte")
        stream.write(data + b"\0")
        return obj

    def _sizeof(self, context, path):  # noqa: ANN001, ANN202
        raise SizeofError("a C string has no fixed size")


Text = _CString()

# A value that may be NULL: Int32 length (-1 = NULL) followed by the bytes.
NullableBytes = Struct(
    "length" / Rebuild(Int32sb, lambda ctx: -1 if ctx.data is None else len(ctx.data)),
    "data" / If(this.length >= 0, Bytes(this.length)),
)

# ---------------------------------------------------------------- untyped startup packets

StartupPacket = Prefixed(MessageLength, Struct("code" / Int32ub, "payload" / GreedyBytes))
StartupParams = RepeatUntil(lambda obj, lst, ctx: obj == "", Text)
CancelRequestBody = Struct("pid" / Int32sb, "secret" / Int32sb)

# ---------------------------------------------------------------- frontend message bodies

FieldDesc = Struct(
    "name" / Text,
    "table_oid" / Int32ub,
    "attnum" / Int16sb,
    "type_oid" / Int32ub,
    "typlen" / Int16sb,
    "typmod" / Int32sb,
    "format" / Int16sb,
)

FRONTEND_BODIES: dict[bytes, Construct] = {
    b"Q": Struct("sql" / Text),
    b"P": Struct("name" / Text, "sql" / Text, "param_oids" / PrefixedArray(Int16ub, Int32ub)),
    b"B": Struct(
        "portal" / Text,
        "statement" / Text,
        "param_formats" / PrefixedArray(Int16ub, Int16sb),
        "params" / PrefixedArray(Int16ub, NullableBytes),
        "result_formats" / PrefixedArray(Int16ub, Int16sb),
    ),
    b"D": Struct("kind" / Bytes(1), "name" / Text),
    b"E": Struct("portal" / Text, "max_rows" / Int32sb),
    b"C": Struct("kind" / Bytes(1), "name" / Text),
    b"S": Struct(),
    b"H": Struct(),
    b"X": Struct(),
    b"d": Struct("data" / GreedyBytes),
    b"c": Struct(),
    b"f": Struct("message" / Text),
    # PasswordMessage, SASLInitialResponse and SASLResponse share the tag; auth.py reads
    # the payload with the schemas below depending on what it asked for.
    b"p": Struct("data" / GreedyBytes),
    b"F": Struct("data" / GreedyBytes),
}

PasswordBody = Struct("password" / Text)
SASLInitialResponseBody = Struct(
    "mechanism" / Text,
    "response" / NullableBytes,
)

FrontendMessage = Struct(
    "tag" / Bytes(1),
    "body" / Prefixed(MessageLength, Switch(this.tag, FRONTEND_BODIES)),
)

# ---------------------------------------------------------------- backend message bodies

ErrorField = Struct("code" / Bytes(1), "value" / If(this.code != b"\x00", Text))
ErrorFields = RepeatUntil(lambda obj, lst, ctx: obj["code"] == b"\x00", ErrorField)

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12

AuthenticationBody = Struct(
    "code" / Int32ub,
    "payload"
    / Switch(
        this.code,
        {
            AUTH_MD5: Bytes(4),
            AUTH_SASL: RepeatUntil(lambda obj, lst, ctx: obj == "", Text),
        },
        default=GreedyBytes,
    ),
)

BACKEND_BODIES: dict[bytes, Construct] = {
    b"R": AuthenticationBody,
    b"S": Struct("name" / Text, "value" / Text),
    b"K": Struct("pid" / Int32sb, "secret" / Int32sb),
    b"Z": Struct("status" / Bytes(1)),
    b"T": Struct("fields" / PrefixedArray(Int16ub, FieldDesc)),
    b"D": Struct("values" / PrefixedArray(Int16ub, NullableBytes)),
    b"C": Struct("tag" / Text),
    b"I": Struct(),
    b"E": Struct("fields" / ErrorFields),
    b"N": Struct("fields" / ErrorFields),
    b"1": Struct(),
    b"2": Struct(),
    b"3": Struct(),
    b"n": Struct(),
    b"s": Struct(),
    b"t": Struct("param_oids" / PrefixedArray(Int16ub, Int32ub)),
    b"H": Struct("format" / Byte, "column_formats" / PrefixedArray(Int16ub, Int16sb)),
    b"W": Struct("format" / Byte, "column_formats" / PrefixedArray(Int16ub, Int16sb)),
    b"d": Struct("data" / GreedyBytes),
    b"c": Struct(),
    b"v": Struct("newest_minor" / Int32ub, "unrecognized" / PrefixedArray(Int32ub, Text)),
}

BackendMessage = Struct(
    "tag" / Bytes(1),
    "body" / Prefixed(MessageLength, Switch(this.tag, BACKEND_BODIES)),
)

# ---------------------------------------------------------------- replication sub-messages

XLogData = Struct(
    Const(b"w"),
    "data_start" / Int64ub,
    "wal_end" / Int64ub,
    "send_time" / Int64sb,
    "payload" / GreedyBytes,
)
PrimaryKeepalive = Struct(
    Const(b"k"),
    "wal_end" / Int64ub,
    "send_time" / Int64sb,
    "reply_requested" / Byte,
)
StandbyStatusUpdate = Struct(
    Const(b"r"),
    "write" / Int64ub,
    "flush" / Int64ub,
    "apply" / Int64ub,
    "send_time" / Int64sb,
    "reply_requested" / Byte,
)
HotStandbyFeedback = Struct(
    Const(b"h"),
    "send_time" / Int64sb,
    "xmin" / Int32ub,
    "epoch" / Int32ub,
    "catalog_xmin" / Int32ub,
    "catalog_epoch" / Int32ub,
)


# ---------------------------------------------------------------- generic build / parse


def build_backend(tag: bytes, /, **fields: Any) -> bytes:
    return BackendMessage.build({"tag": tag, "body": fields})


def build_frontend(tag: bytes, /, **fields: Any) -> bytes:
    """Used by tests and tools that play the client side."""
    return FrontendMessage.build({"tag": tag, "body": fields})


def parse_frontend_body(tag: bytes, body: bytes) -> Any:
    schema = FRONTEND_BODIES.get(tag)
    if schema is None:
        raise PgError("08P01", f"invalid frontend message type {tag[0]}", severity="FATAL")
    try:
        return schema.parse(body)
    except Exception as exc:
        raise PgError(
            "08P01", f"invalid message format ({_name_of(tag)})", severity="FATAL"
        ) from exc


def _name_of(tag: bytes) -> str:
    return tag.decode("latin-1")


# ---------------------------------------------------------------- backend builders


def authentication(code: int, payload: Any = b"") -> bytes:
    return build_backend(b"R", code=code, payload=payload)


def auth_ok() -> bytes:
    return authentication(AUTH_OK)


def parameter_status(name: str, value: str) -> bytes:
    return build_backend(b"S", name=name, value=value)


def backend_key_data(pid: int, secret: int) -> bytes:
    return build_backend(b"K", pid=pid, secret=secret)


def ready_for_query(status: str) -> bytes:
    return build_backend(b"Z", status=status.encode("ascii"))


def command_complete(tag: str) -> bytes:
    return build_backend(b"C", tag=tag)


def empty_query_response() -> bytes:
    return build_backend(b"I")


def parse_complete() -> bytes:
    return build_backend(b"1")


def bind_complete() -> bytes:
    return build_backend(b"2")


def close_complete() -> bytes:
    return build_backend(b"3")


def no_data() -> bytes:
    return build_backend(b"n")


def portal_suspended() -> bytes:
    return build_backend(b"s")


def parameter_description(param_oids: Sequence[int]) -> bytes:
    return build_backend(b"t", param_oids=list(param_oids))


def row_description(fields: Iterable[dict[str, Any]]) -> bytes:
    return build_backend(b"T", fields=list(fields))


def field(name: str, type_oid: int, typlen: int = -1, typmod: int = -1, fmt: int = 0) -> dict:
    return {
        "name": name,
        "table_oid": 0,
        "attnum": 0,
        "type_oid": type_oid,
        "typlen": typlen,
        "typmod": typmod,
        "format": fmt,
    }


def copy_out_response(column_formats: Sequence[int], overall_format: int = 0) -> bytes:
    return build_backend(b"H", format=overall_format, column_formats=list(column_formats))


def copy_both_response(column_formats: Sequence[int] = (), overall_format: int = 0) -> bytes:
    return build_backend(b"W", format=overall_format, column_formats=list(column_formats))


def copy_done() -> bytes:
    return build_backend(b"c")


def negotiate_protocol_version(newest_minor: int, unrecognized: Sequence[str]) -> bytes:
    return build_backend(b"v", newest_minor=newest_minor, unrecognized=list(unrecognized))


def _error_fields(err: PgError) -> list[dict]:
    fields = [
        {"code": b"S", "value": err.severity},
        {"code": b"V", "value": err.severity},
        {"code": b"C", "value": err.sqlstate},
        {"code": b"M", "value": err.message},
    ]
    if err.detail:
        fields.append({"code": b"D", "value": err.detail})
    if err.hint:
        fields.append({"code": b"H", "value": err.hint})
    if err.position:
        fields.append({"code": b"P", "value": str(err.position)})
    fields.append({"code": b"\x00", "value": None})
    return fields


def error_response(err: PgError) -> bytes:
    return build_backend(b"E", fields=_error_fields(err))


def notice_response(
    severity: str,
    sqlstate: str,
    message: str,
    *,
    detail: str | None = None,
    hint: str | None = None,
) -> bytes:
    err = PgError(sqlstate, message, severity=severity, detail=detail, hint=hint)
    return build_backend(b"N", fields=_error_fields(err))


# ---------------------------------------------------------------- hot paths (struct)

_HEADER = struct.Struct("!cI")
_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_XLOG_HEADER = struct.Struct("!cIcQQq")
_XLOG_BEFORE_SEND_TIME = struct.Struct("!cIcQQ")
_KEEPALIVE = struct.Struct("!cIcQqB")
_STATUS_UPDATE = struct.Struct("!cQQQqB")
_NULL = _INT32.pack(-1)


def data_row(values: Sequence[bytes | None]) -> bytes:
    """DataRow from already-encoded column values (None = NULL)."""
    parts = [b"", _INT16.pack(len(values))]
    size = 2
    for value in values:
        if value is None:
            parts.append(_NULL)
            size += 4
        else:
            parts.append(_INT32.pack(len(value)))
            parts.append(value)
            size += 4 + len(value)
    parts[0] = _HEADER.pack(b"D", size + 4)
    return b"".join(parts)


def copy_data(data: bytes) -> bytes:
    return _HEADER.pack(b"d", len(data) + 4) + data


def xlog_data(data_start: int, wal_end: int, send_time: int, payload: bytes) -> bytes:
    """CopyData('w' XLogData) framed and ready to write."""
    header = _XLOG_HEADER.pack(b"d", 29 + len(payload), b"w", data_start, wal_end, send_time)
    return header + payload


def xlog_data_head(data_start: int, wal_end: int, payload_size: int) -> bytes:
    """The framing of an XLogData message that comes before its sendTime."""
    return _XLOG_BEFORE_SEND_TIME.pack(b"d", 29 + payload_size, b"w", data_start, wal_end)


def keepalive(wal_end: int, send_time: int, reply_requested: bool = False) -> bytes:
    """CopyData('k' PrimaryKeepalive) framed and ready to write."""
    return _KEEPALIVE.pack(b"d", 22, b"k", wal_end, send_time, int(reply_requested))


def parse_standby_status(data: bytes) -> tuple[int, int, int, int, bool]:
    """(write, flush, apply, send_time, reply_requested) from a CopyData 'r' payload."""
    if len(data) != _STATUS_UPDATE.size or data[:1] != b"r":
        raise PgError("08P01", "invalid standby status update message", severity="FATAL")
    _, write, flush, apply, send_time, reply = _STATUS_UPDATE.unpack(data)
    return write, flush, apply, send_time, bool(reply)


def standby_status(write: int, flush: int, apply: int, send_time: int, reply: bool) -> bytes:
    """CopyData payload of a standby status update (the client side, for tests and tools)."""
    return _STATUS_UPDATE.pack(b"r", write, flush, apply, send_time, int(reply))
