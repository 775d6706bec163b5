"""RedDB ChangeRecord JSON (every version from v1.2.0 to HEAD) → ChangeRecord."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from pgshim import speedups
from pgshim.reddb.errors import ChangeDecodeError

__all__ = [
    "OPERATIONS",
    "ChangeDecodeError",
    "ChangeRecord",
    "parse_change_record",
    "public_kind",
    "unwrap_entity_record",
]

OPERATIONS = frozenset({"insert", "update", "delete", "refresh"})
ENTITY_RECORD_MAGIC = b"RER1"
_U32 = struct.Struct("<I")


@dataclass(slots=True, frozen=True)
class ChangeRecord:
    lsn: int
    timestamp_ms: int
    operation: str  # "insert" | "update" | "delete" | "refresh"
    collection: str
    rid: int  # physical entity id (0 for refresh)
    kind: str  # public kind: row, node, edge, kv, document, vector, item
    entity_bytes: bytes | None
    metadata: dict | None
    term: int
    refresh_records: tuple[bytes, ...]  # entity bytes of each RER1 record (already unwrapped)
    range_id: int | None
    ownership_epoch: int | None
    raw: bytes  # the original JSON payload
    # what could not be read as RedDB wrote it but was replaced (a timestamp that is no integer)
    problems: tuple[str, ...] = ()


def public_kind(internal: str) -> str:
    """RedDB's public_item_kind: the kind string a record carries for an internal entity kind."""
    if internal in ("table", "entity", "row"):
        return "row"
    if internal in ("graph_node", "node"):
        return "node"
    if internal in ("graph_edge", "edge"):
        return "edge"
    for name in ("kv", "document", "vector"):
        if name in internal:
            return name
    return "item"


def _loads(payload: bytes) -> object:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers wider than 64 bits; the stdlib parser does not.
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChangeDecodeError(f"invalid JSON: {exc}") from None


def _as_int(value: object, key: str) -> int:
    if isinstance(value, bool):
        raise ChangeDecodeError(f"{key} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # v1.2.0–v1.10.0 wrote every number through f64
    raise ChangeDecodeError(f"{key} is not an integer")


def _optional_int(obj: dict, key: str) -> int | None:
    value = obj.get(key)
    return None if value is None else _as_int(value, key)


def _hex(value: object, key: str) -> bytes:
    if not isinstance(value, str):
        raise ChangeDecodeError(f"{key} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ChangeDecodeError(f"{key} is not valid hex") from None


def unwrap_entity_record(record: bytes) -> bytes:
    """The entity bytes inside an RER1 entity record (refresh_records_hex items)."""
    if record[:4] != ENTITY_RECORD_MAGIC:
        raise ChangeDecodeError("refresh record lacks RER1 magic", position=0)
    if len(record) < 8:
        raise ChangeDecodeError("truncated refresh record", position=4)
    (entity_len,) = _U32.unpack_from(record, 4)
    end = 8 + entity_len
    if end + 4 > len(record):
        raise ChangeDecodeError("truncated refresh record entity", position=8)
    (metadata_len,) = _U32.unpack_from(record, end)
    if end + 4 + metadata_len != len(record):
        raise ChangeDecodeError("refresh record length mismatch", position=end)
    return record[8:end]


def parse_change_record(
    payload: bytes, frame_lsn: int | None = None, frame_timestamp_ms: int = 0
) -> ChangeRecord:
    """Parse one spool payload; a bad payload raises ChangeDecodeError carrying the LSN.

    A ``timestamp`` that is not an integer does not make the record unreadable: a finite number
    is truncated, anything else replaced by ``frame_timestamp_ms`` (the frame's append time),
    and ``problems`` says so.
    """
    if _compiled is not None:  # plain inserts, updates and deletes: the same record, or None
        record = _compiled(payload, frame_lsn, frame_timestamp_ms)
        if record is not None:
            return record
    return reference_parse(payload, frame_lsn, frame_timestamp_ms)


def reference_parse(
    payload: bytes, frame_lsn: int | None = None, frame_timestamp_ms: int = 0
) -> ChangeRecord:
    """parse_change_record in Python, for every payload (the compiled core's reference)."""
    try:
        return _parse(payload, frame_lsn, frame_timestamp_ms)
    except ChangeDecodeError as exc:
        raise exc.with_lsn(frame_lsn) from None


def _compiled_parser() -> Callable[[bytes, int | None, int], ChangeRecord | None] | None:
    if speedups.core is None:
        return None
    speedups.core.setup_records(ChangeRecord, orjson.loads)
    return speedups.core.change_record


_compiled = _compiled_parser()


def _timestamp(obj: dict, fallback: int) -> tuple[int, tuple[str, ...]]:
    value = obj.get("timestamp", 0)
    if isinstance(value, int) and not isinstance(value, bool):
        return value, ()
    if isinstance(value, float) and math.isfinite(value):
        if value.is_integer():
            return int(value), ()  # v1.2.0–v1.10.0 wrote every number through f64
        return int(value), (f"timestamp {value!r} is not an integer; truncated to {int(value)}",)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return fallback, (
        f"timestamp {shown} is not an integer; the frame's timestamp {fallback} ms used instead",
    )


def _parse(payload: bytes, frame_lsn: int | None, frame_timestamp_ms: int = 0) -> ChangeRecord:
    obj = _loads(payload)
    if not isinstance(obj, dict):
        raise ChangeDecodeError("payload is not a JSON object")
    lsn = frame_lsn if frame_lsn is not None else _optional_int(obj, "lsn")
    if lsn is None:
        raise ChangeDecodeError("missing lsn")
    try:
        return _fields(obj, lsn, payload, frame_timestamp_ms)
    except ChangeDecodeError as exc:
        raise exc.with_lsn(lsn) from None


def _fields(obj: dict, lsn: int, payload: bytes, frame_timestamp_ms: int = 0) -> ChangeRecord:
    operation = obj.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        reason = "missing operation" if operation is None else f"unknown operation {operation!r}"
        raise ChangeDecodeError(reason)
    collection = obj.get("collection")
    if not isinstance(collection, str):
        raise ChangeDecodeError("missing collection")
    rid_value = obj.get("rid", obj.get("entity_id"))
    if rid_value is None and operation != "refresh":
        raise ChangeDecodeError("missing rid")
    kind = obj.get("kind")
    if kind is None and isinstance(obj.get("entity_kind"), str):
        kind = public_kind(obj["entity_kind"])
    entity_hex = obj.get("entity_bytes_hex")
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ChangeDecodeError("metadata is not an object")
    refresh_hex = obj.get("refresh_records_hex") or []
    if not isinstance(refresh_hex, list):
        raise ChangeDecodeError("refresh_records_hex is not an array")
    refresh = tuple(unwrap_entity_record(_hex(item, "refresh_records_hex")) for item in refresh_hex)
    term = obj.get("term")
    timestamp_ms, problems = _timestamp(obj, frame_timestamp_ms)
    return ChangeRecord(
        lsn=lsn,
        timestamp_ms=timestamp_ms,
        operation=operation,
        collection=collection,
        rid=0 if rid_value is None else _as_int(rid_value, "rid"),
        kind=kind if isinstance(kind, str) else "",
        entity_bytes=None if entity_hex is None else _hex(entity_hex, "entity_bytes_hex"),
        metadata=metadata,
        term=1 if term is None else _as_int(term, "term"),
        refresh_records=refresh,
        range_id=_optional_int(obj, "range_id"),
        ownership_epoch=_optional_int(obj, "ownership_epoch"),
        raw=bytes(payload),
        problems=problems,
    )
