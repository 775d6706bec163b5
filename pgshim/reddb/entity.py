"""RedDB's UnifiedEntity binary (store formats V9–V12), decoded into named, typed fields.

Rows, nodes, edges, vectors and queue messages are byte-identical in V9–V12; only the
time-series tail differs, so a time-series entity is tried as V11, V12 and V9, and the variant
that consumes exactly all bytes wins.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pgshim import speedups
from pgshim.reddb.binary import (
    Buffer,
    encode_str,
    read_bytes,
    read_str,
    read_varu32,
    read_varu64,
    varu,
)
from pgshim.reddb.errors import ChangeDecodeError
from pgshim.reddb.values import (
    FIXED_ASCII_SIZES,
    OID_BOOL,
    OID_FLOAT4_ARRAY,
    OID_FLOAT8,
    OID_INT8,
    OID_JSONB,
    OID_TEXT,
    OID_TIMESTAMPTZ,
    PLAIN_STR_CODES,
    VALUE_TYPES_BY_CODE,
    TypedValue,
    decode_value,
    encode_typed,
    null_value,
)
from pgshim.reddb.values import (
    OID_INT4 as _OID_INT4,
)

KIND_NAMES = (
    "table_row",
    "graph_node",
    "graph_edge",
    "vector",
    "timeseries",
    "queue_message",
)
DATA_KIND_NAMES = ("row", "node", "edge", "vector", "timeseries", "queue", "named_row")
TIMESERIES_VERSIONS = (11, 12, 9)
TIMESERIES_DATA_TAG = 4  # the order variants are tried in

# Leading fields synthesized from the kind/data for non-row data kinds (not properties).
SYNTHESIZED_FIELDS = {
    "row": (),
    "named_row": (),
    "node": ("label", "node_type"),
    "edge": ("label", "from_node", "to_node", "weight"),
    "vector": ("vector", "content"),
    "timeseries": ("metric", "timestamp", "value", "tags"),
    "queue": ("payload", "enqueued_at", "attempts", "priority", "max_attempts", "acked"),
}

_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(slots=True)
class Field:
    name: str | None  # None for positional row columns
    value: TypedValue


@dataclass(slots=True)
class Entity:
    id: int
    kind: str
    kind_fields: dict
    data_kind: str
    fields: list[Field]
    created_at: int = 0
    updated_at: int = 0
    sequence_id: int = 0
    logical_id: int | None = None
    xmin: int | None = None
    xmax: int | None = None
    embeddings: list = field(default_factory=list)
    cross_refs: list = field(default_factory=list)
    format_version: int = 11  # time-series tail layout (9, 11 or 12); other kinds ignore it

    @property
    def stable_id(self) -> int:
        return self.logical_id if self.logical_id is not None else self.id

    def field_map(self) -> dict[str, TypedValue]:
        """Named fields by name (positional columns are left out)."""
        return {f.name: f.value for f in self.fields if f.name is not None}


def decode_entity(data: bytes | memoryview, *, lsn: int | None = None) -> Entity:
    """Decode UnifiedEntity bytes; errors carry the LSN and the byte position."""
    entity = _row_decoder(data) if type(data) is bytes else None
    if entity is not None:
        return entity
    try:
        return _decode_exact(data)
    except ChangeDecodeError as exc:
        raise exc.with_lsn(lsn) from None


# -- the fast path -----------------------------------------------------------------------------
# Table rows (positional or named) with the common value types, no embeddings and no cross
# references are most of a spool. They are decoded here with inlined one-byte varints and
# strings; anything else, and anything that looks wrong, returns None so that the general
# decoder runs from the start and reports the error with its exact position.

_I64_AT = struct.Struct("<q").unpack_from
_F64_AT = _F64.unpack_from
_U16_AT = struct.Struct("<H").unpack_from
_NULL = TypedValue(0, 0, None)
_TRUE = TypedValue(1, OID_BOOL, True)
_FALSE = TypedValue(1, OID_BOOL, False)
_MS = dt.timedelta(milliseconds=1)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A multi-byte u64 varint; anything the general reader would refuse raises."""
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result > 0xFFFFFFFFFFFFFFFF:
                raise OverflowError
            return result, pos
        shift += 7
        if shift >= 70:
            raise OverflowError


def _decode_row_fast(buf: bytes) -> Entity | None:
    try:
        return _row_fast(buf)
    except Exception:  # the general decoder knows what went wrong and where
        return None


def _row_fast(buf: bytes) -> Entity | None:  # noqa: C901, PLR0912, PLR0915 - one inlined loop
    size = len(buf)
    pos = 0
    entity_id = buf[0]
    if entity_id >= 0x80:
        entity_id, pos = _varint(buf, 0)
    else:
        pos = 1
    if buf[pos] != 0:  # kind tag: only table rows here
        return None
    length = buf[pos + 1]
    if length >= 0x80:
        return None
    pos += 2
    end = pos + length
    if end > size:
        return None
    table = buf[pos:end].decode()
    row_id = buf[end]
    if row_id >= 0x80:
        row_id, pos = _varint(buf, end)
    else:
        pos = end + 1
    data_tag = buf[pos]
    if data_tag == 6:
        named = True
    elif data_tag == 0:
        named = False
    else:
        return None
    count = buf[pos + 1]
    if count >= 0x80:
        return None
    pos += 2
    fields: list[Field] = []
    append = fields.append
    name: str | None = None
    for _ in range(count):
        if named:
            length = buf[pos]
            if length >= 0x80:
                return None
            end = pos + 1 + length
            if end > size:
                return None
            name = buf[pos + 1 : end].decode()
            pos = end
        code = buf[pos]
        pos += 1
        if code == 5:
            length = buf[pos]
            if length >= 0x80:
                return None
            end = pos + 1 + length
            if end > size:
                return None
            value = TypedValue(5, OID_TEXT, buf[pos + 1 : end].decode())
            pos = end
        elif code == 2 or code == 43:
            value = TypedValue(code, OID_INT8, _I64_AT(buf, pos)[0])
            pos += 8
        elif code == 4:
            value = TypedValue(4, OID_FLOAT8, _F64_AT(buf, pos)[0])
            pos += 8
        elif code == 1:
            value = _TRUE if buf[pos] else _FALSE
            pos += 1
        elif code == 0:
            value = _NULL
        elif code == 29:
            value = TypedValue(29, OID_TIMESTAMPTZ, _EPOCH + _I64_AT(buf, pos)[0] * _MS)
            pos += 8
        elif code == 33:
            value = TypedValue(33, _OID_INT4, _U16_AT(buf, pos)[0])
            pos += 2
        else:
            return None
        append(Field(name, value))
    if pos > size:
        return None
    created_at = buf[pos]
    if created_at >= 0x80:
        created_at, pos = _varint(buf, pos)
    else:
        pos += 1
    updated_at = buf[pos]
    if updated_at >= 0x80:
        updated_at, pos = _varint(buf, pos)
    else:
        pos += 1
    if buf[pos] != 0 or buf[pos + 1] != 0:  # embeddings, cross references
        return None
    pos += 2
    sequence_id = buf[pos]
    if sequence_id >= 0x80:
        sequence_id, pos = _varint(buf, pos)
    else:
        pos += 1
    logical_id = xmin = xmax = None
    if pos < size:
        has_logical_id = buf[pos]
        pos += 1
        if has_logical_id:
            logical_id, pos = _varint(buf, pos)
    if pos < size:
        xmin, pos = _varint(buf, pos)
        xmax, pos = _varint(buf, pos)
    if pos != size:
        return None
    return Entity(
        entity_id,
        "table_row",
        {"table": table, "row_id": row_id},
        "named_row" if named else "row",
        fields,
        created_at,
        updated_at,
        sequence_id,
        logical_id,
        xmin,
        xmax,
        [],
        [],
        TIMESERIES_VERSIONS[0],
    )


def _compiled_row_decoder() -> Callable[[bytes], Entity | None] | None:
    """The compiled core's row decoder (same results as ``_decode_row_fast``), when built."""
    core = speedups.core
    if core is None:
        return None
    core.setup(Entity, Field, TypedValue, decode_value, VALUE_TYPES_BY_CODE, PLAIN_STR_CODES,
               FIXED_ASCII_SIZES, _EPOCH, _MS)  # fmt: skip
    return core.decode_row


_row_decoder = _compiled_row_decoder() or _decode_row_fast


def _decode_exact(data: Buffer) -> Entity:
    if not _is_timeseries_data(data):
        entity, end = _decode(data, TIMESERIES_VERSIONS[0])
        if end != len(data):
            raise ChangeDecodeError(f"{len(data) - end} trailing bytes", position=end)
        return entity
    first_error: ChangeDecodeError | None = None
    for version in TIMESERIES_VERSIONS:
        try:
            entity, end = _decode(data, version)
        except ChangeDecodeError as exc:
            first_error = first_error or exc
            continue
        if end == len(data):
            return entity
        first_error = first_error or ChangeDecodeError(
            f"{len(data) - end} trailing bytes (time-series V{version})", position=end
        )
    assert first_error is not None
    raise first_error


def _is_timeseries_data(data: Buffer) -> bool:
    _, pos = read_varu64(data, 0)
    _, _, pos = _decode_kind(data, pos)
    return pos < len(data) and data[pos] == TIMESERIES_DATA_TAG


def _text(value: str | None) -> TypedValue:
    return null_value() if value is None else TypedValue(5, OID_TEXT, value)


def _ns_timestamp(ns: int) -> TypedValue:
    try:
        moment = _EPOCH + dt.timedelta(microseconds=ns // 1000)
    except OverflowError:
        raise ChangeDecodeError(f"timestamp {ns} ns out of range") from None
    return TypedValue(7, OID_TIMESTAMPTZ, moment, ns)


def _decode_kind(buf: Buffer, pos: int) -> tuple[str, dict, int]:
    if pos >= len(buf):
        raise ChangeDecodeError("truncated: missing entity kind", position=pos)
    tag = buf[pos]
    pos += 1
    if tag == 0:
        table, pos = read_str(buf, pos)
        row_id, pos = read_varu64(buf, pos)
        return "table_row", {"table": table, "row_id": row_id}, pos
    if tag == 1:
        label, pos = read_str(buf, pos)
        node_type, pos = read_str(buf, pos)
        return "graph_node", {"label": label, "node_type": node_type}, pos
    if tag == 2:
        label, pos = read_str(buf, pos)
        from_node, pos = read_str(buf, pos)
        to_node, pos = read_str(buf, pos)
        (weight,) = _unpack(_U32, buf, pos)
        return (
            "graph_edge",
            {"label": label, "from_node": from_node, "to_node": to_node, "weight": weight},
            pos + 4,
        )
    if tag == 3:
        collection, pos = read_str(buf, pos)
        return "vector", {"collection": collection}, pos
    if tag == 4:
        series, pos = read_str(buf, pos)
        metric, pos = read_str(buf, pos)
        return "timeseries", {"series": series, "metric": metric}, pos
    if tag == 5:
        queue, pos = read_str(buf, pos)
        position, pos = read_varu64(buf, pos)
        return "queue_message", {"queue": queue, "position": position}, pos
    raise ChangeDecodeError(f"unknown entity kind tag {tag}", position=pos - 1)


def _unpack(unpacker: struct.Struct, buf: Buffer, pos: int) -> tuple:
    if pos + unpacker.size > len(buf):
        raise ChangeDecodeError("truncated fixed-width field", position=pos)
    return unpacker.unpack_from(buf, pos)


def _decode_properties(buf: Buffer, pos: int) -> tuple[list[Field], int]:
    count, pos = read_varu32(buf, pos)
    fields = []
    for _ in range(count):
        name, pos = read_str(buf, pos)
        value, pos = decode_value(buf, pos)
        fields.append(Field(name, value))
    return fields, pos


def _decode_data(
    buf: Buffer, pos: int, kind_fields: dict, ts_version: int
) -> tuple[str, list[Field], int]:
    if pos >= len(buf):
        raise ChangeDecodeError("truncated: missing entity data", position=pos)
    tag = buf[pos]
    pos += 1
    if tag == 0:
        count, pos = read_varu32(buf, pos)
        fields = []
        for _ in range(count):
            value, pos = decode_value(buf, pos)
            fields.append(Field(None, value))
        return "row", fields, pos
    if tag == 6:
        fields, pos = _decode_properties(buf, pos)
        return "named_row", fields, pos
    if tag == 1:
        properties, pos = _decode_properties(buf, pos)
        head = [
            Field("label", _text(kind_fields.get("label"))),
            Field("node_type", _text(kind_fields.get("node_type"))),
        ]
        return "node", head + properties, pos
    if tag == 2:
        (weight,) = _unpack(_F32, buf, pos)
        properties, pos = _decode_properties(buf, pos + 4)
        head = [
            Field("label", _text(kind_fields.get("label"))),
            Field("from_node", _text(kind_fields.get("from_node"))),
            Field("to_node", _text(kind_fields.get("to_node"))),
            Field("weight", TypedValue(4, OID_FLOAT8, weight)),
        ]
        return "edge", head + properties, pos
    if tag == 3:
        dim, pos = read_varu32(buf, pos)
        raw, pos = read_bytes(buf, pos, 4 * dim)
        vector = TypedValue(11, OID_FLOAT4_ARRAY, list(struct.unpack(f"<{dim}f", raw)))
        content = null_value()
        if pos >= len(buf):
            raise ChangeDecodeError("truncated: missing vector content flag", position=pos)
        has_content = buf[pos]
        pos += 1
        if has_content:
            text, pos = read_str(buf, pos)
            content = _text(text)
        return "vector", [Field("vector", vector), Field("content", content)], pos
    if tag == 4:
        return _decode_timeseries(buf, pos, kind_fields, ts_version)
    if tag == 5:
        payload, pos = decode_value(buf, pos)
        enqueued_ns, pos = read_varu64(buf, pos)
        attempts, pos = read_varu32(buf, pos)
        fields = [
            Field("payload", payload),
            Field("enqueued_at", _ns_timestamp(enqueued_ns)),
            Field("attempts", TypedValue(2, OID_INT8, attempts)),
        ]
        return "queue", fields, pos
    raise ChangeDecodeError(f"unknown entity data tag {tag}", position=pos - 1)


def _decode_timeseries(
    buf: Buffer, pos: int, kind_fields: dict, version: int
) -> tuple[str, list[Field], int]:
    metric, pos = read_str(buf, pos)
    timestamp_ns, pos = read_varu64(buf, pos)
    (value,) = _unpack(_F64, buf, pos)
    pos += 8
    tags: TypedValue = null_value()
    discriminator = 0
    if version >= 11:
        discriminator, pos = read_varu32(buf, pos)
        if discriminator not in (0, 1):
            raise ChangeDecodeError(f"unknown series discriminator {discriminator}", position=pos)
    if discriminator == 1:
        kind_fields["series_id"], pos = read_varu64(buf, pos)
    else:
        count, pos = read_varu32(buf, pos)
        pairs = {}
        for _ in range(count):
            key, pos = read_str(buf, pos)
            pairs[key], pos = read_str(buf, pos)
        tags = TypedValue(12, OID_JSONB, json.dumps(pairs, ensure_ascii=False))
    fields = [
        Field("metric", _text(metric)),
        Field("timestamp", _ns_timestamp(timestamp_ns)),
        Field("value", TypedValue(4, OID_FLOAT8, value)),
        Field("tags", tags),
    ]
    if version >= 12:
        extra, pos = _decode_properties(buf, pos)
        fields.extend(extra)
    return "timeseries", fields, pos


def _decode_embeddings(buf: Buffer, pos: int) -> tuple[list, int]:
    count, pos = read_varu32(buf, pos)
    embeddings = []
    for _ in range(count):
        name, pos = read_str(buf, pos)
        dim, pos = read_varu32(buf, pos)
        raw, pos = read_bytes(buf, pos, 4 * dim)
        model, pos = read_str(buf, pos)
        vector = list(struct.unpack(f"<{dim}f", raw))
        embeddings.append({"name": name, "vector": vector, "model": model})
    return embeddings, pos


def _decode_cross_refs(buf: Buffer, pos: int) -> tuple[list, int]:
    count, pos = read_varu32(buf, pos)
    refs = []
    for _ in range(count):
        source, pos = read_varu64(buf, pos)
        target, pos = read_varu64(buf, pos)
        if pos >= len(buf):
            raise ChangeDecodeError("truncated cross reference", position=pos)
        ref_type = buf[pos]
        target_collection, pos = read_str(buf, pos + 1)
        (weight,) = _unpack(_F32, buf, pos)
        created_at, pos = read_varu64(buf, pos + 4)
        refs.append(
            {
                "source": source,
                "target": target,
                "ref_type": ref_type,
                "target_collection": target_collection,
                "weight": weight,
                "created_at": created_at,
            }
        )
    return refs, pos


def _decode(buf: Buffer, ts_version: int) -> tuple[Entity, int]:
    entity_id, pos = read_varu64(buf, 0)
    kind, kind_fields, pos = _decode_kind(buf, pos)
    data_kind, fields, pos = _decode_data(buf, pos, kind_fields, ts_version)
    created_at, pos = read_varu64(buf, pos)
    updated_at, pos = read_varu64(buf, pos)
    embeddings, pos = _decode_embeddings(buf, pos)
    cross_refs, pos = _decode_cross_refs(buf, pos)
    sequence_id, pos = read_varu64(buf, pos)
    if data_kind == "queue":
        pos = _decode_queue_extras(buf, pos, fields)
    logical_id = xmin = xmax = None
    if pos < len(buf):
        has_logical_id = buf[pos]
        pos += 1
        if has_logical_id:
            logical_id, pos = read_varu64(buf, pos)
    if pos < len(buf):
        xmin, pos = read_varu64(buf, pos)
        xmax, pos = read_varu64(buf, pos)
    entity = Entity(
        id=entity_id,
        kind=kind,
        kind_fields=kind_fields,
        data_kind=data_kind,
        fields=fields,
        created_at=created_at,
        updated_at=updated_at,
        sequence_id=sequence_id,
        logical_id=logical_id,
        xmin=xmin,
        xmax=xmax,
        embeddings=embeddings,
        cross_refs=cross_refs,
        format_version=ts_version,
    )
    return entity, pos


def _decode_queue_extras(buf: Buffer, pos: int, fields: list[Field]) -> int:
    if pos >= len(buf):
        raise ChangeDecodeError("truncated queue extras", position=pos)
    priority = null_value()
    has_priority = buf[pos]
    pos += 1
    if has_priority:
        (number,) = _unpack(_I32, buf, pos)
        priority = TypedValue(2, OID_INT8, number)
        pos += 4
    max_attempts, pos = read_varu32(buf, pos)
    if pos >= len(buf):
        raise ChangeDecodeError("truncated queue extras", position=pos)
    acked = buf[pos] != 0
    fields.append(Field("priority", priority))
    fields.append(Field("max_attempts", TypedValue(2, OID_INT8, max_attempts)))
    fields.append(Field("acked", TypedValue(1, OID_BOOL, acked)))
    return pos + 1


# ---------------------------------------------------------------------------------------------
# encoding (the inverse, for the writer, the demo workload and tests)


def encode_entity(entity: Entity) -> bytes:
    """Encode in the V9 layout (time-series: ``entity.format_version``, V11 by default)."""
    out = bytearray(varu(entity.id))
    out += _encode_kind(entity)
    out += _encode_data(entity)
    out += varu(entity.created_at) + varu(entity.updated_at)
    out += varu(len(entity.embeddings))
    for emb in entity.embeddings:
        vector = emb["vector"]
        out += encode_str(emb["name"]) + varu(len(vector))
        out += struct.pack(f"<{len(vector)}f", *vector) + encode_str(emb["model"])
    out += varu(len(entity.cross_refs))
    for ref in entity.cross_refs:
        out += varu(ref["source"]) + varu(ref["target"]) + bytes((ref["ref_type"],))
        out += encode_str(ref["target_collection"]) + _F32.pack(ref["weight"])
        out += varu(ref["created_at"])
    out += varu(entity.sequence_id)
    if entity.data_kind == "queue":
        by_name = entity.field_map()
        priority = by_name["priority"].value
        out += b"\x00" if priority is None else b"\x01" + _I32.pack(priority)
        out += varu(by_name["max_attempts"].value) + bytes((1 if by_name["acked"].value else 0,))
    if entity.logical_id is None:
        out += b"\x00"
    else:
        out += b"\x01" + varu(entity.logical_id)
    out += varu(entity.xmin or 0) + varu(entity.xmax or 0)
    return bytes(out)


def _encode_kind(entity: Entity) -> bytes:
    k = entity.kind_fields
    tag = KIND_NAMES.index(entity.kind)
    head = bytes((tag,))
    if entity.kind == "table_row":
        return head + encode_str(k["table"]) + varu(k["row_id"])
    if entity.kind == "graph_node":
        return head + encode_str(k["label"]) + encode_str(k["node_type"])
    if entity.kind == "graph_edge":
        return (
            head
            + encode_str(k["label"])
            + encode_str(k["from_node"])
            + encode_str(k["to_node"])
            + _U32.pack(k["weight"])
        )
    if entity.kind == "vector":
        return head + encode_str(k["collection"])
    if entity.kind == "timeseries":
        return head + encode_str(k["series"]) + encode_str(k["metric"])
    return head + encode_str(k["queue"]) + varu(k["position"])


def _encode_properties(fields: list[Field]) -> bytes:
    ordered = sorted(fields, key=lambda f: (f.name or "").encode("utf-8"))
    out = bytearray(varu(len(ordered)))
    for f in ordered:
        out += encode_str(f.name or "") + encode_typed(f.value)
    return bytes(out)


def _ns_of(value: TypedValue) -> int:
    if value.native is not None:
        return int(value.native)  # type: ignore[call-overload]
    delta = value.value - _EPOCH  # type: ignore[operator]
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def _encode_data(entity: Entity) -> bytes:
    kind = entity.data_kind
    fields = entity.fields
    rest = fields[len(SYNTHESIZED_FIELDS[kind]) :]
    by_name = {f.name: f.value for f in fields[: len(SYNTHESIZED_FIELDS[kind])]}
    if kind == "row":
        return b"\x00" + varu(len(fields)) + b"".join(encode_typed(f.value) for f in fields)
    if kind == "named_row":
        return b"\x06" + _encode_properties(fields)
    if kind == "node":
        return b"\x01" + _encode_properties(rest)
    if kind == "edge":
        return b"\x02" + _F32.pack(by_name["weight"].value) + _encode_properties(rest)
    if kind == "vector":
        vector = by_name["vector"].value
        content = by_name["content"].value
        out = b"\x03" + varu(len(vector)) + struct.pack(f"<{len(vector)}f", *vector)
        return out + (b"\x00" if content is None else b"\x01" + encode_str(content))
    if kind == "timeseries":
        return b"\x04" + _encode_timeseries(entity, by_name, rest)
    return (
        b"\x05"
        + encode_typed(by_name["payload"])
        + varu(_ns_of(by_name["enqueued_at"]))
        + varu(by_name["attempts"].value)
    )


def _encode_timeseries(entity: Entity, by_name: dict, extra: list[Field]) -> bytes:
    version = entity.format_version
    out = bytearray(encode_str(by_name["metric"].value))
    out += varu(_ns_of(by_name["timestamp"])) + _F64.pack(by_name["value"].value)
    series_id = entity.kind_fields.get("series_id")
    if version >= 11:
        out += b"\x00" if series_id is None else b"\x01" + varu(series_id)
    if series_id is None or version < 11:
        tags_text = by_name["tags"].value
        tags = json.loads(tags_text) if tags_text else {}
        out += varu(len(tags))
        for key in sorted(tags, key=lambda k: k.encode("utf-8")):
            out += encode_str(key) + encode_str(tags[key])
    if version >= 12:
        out += _encode_properties(extra)
    return bytes(out)
