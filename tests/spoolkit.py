"""Writes RedDB spools with known rows, the way a RedDB primary would, for end-to-end tests.

Inserts, updates (a new physical id, the same logical id, like RedDB's MVCC) and deletes (only the
physical id of the current version) of named rows; the expected PostgreSQL view of each row is
known to the test without going through pgshim's decoder.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pgshim.reddb.entity import Entity, Field, encode_entity
from pgshim.reddb.values import TypedValue
from pgshim.spool.writer import SpoolWriter

# Python type -> (RedDB value type byte, PostgreSQL type OID)
_CODES: dict[type, tuple[int, int]] = {
    bool: (1, 16),  # Boolean -> boolean
    int: (2, 20),  # Integer -> bigint
    float: (4, 701),  # Float -> double precision
    str: (5, 25),  # Text -> text
    bytes: (6, 17),  # Blob -> bytea
    dt.datetime: (29, 1184),  # TimestampMs -> timestamptz
    dt.date: (24, 1082),  # Date -> date
    uuid.UUID: (13, 2950),  # Uuid -> uuid
    Decimal: (26, 1700),  # Decimal (scale 4) -> numeric
}


def typed(value: object) -> TypedValue:
    if isinstance(value, TypedValue):
        return value
    if isinstance(value, dict | list):
        return TypedValue(12, 3802, json.dumps(value))  # Json -> jsonb
    code, oid = _CODES[type(value)]
    return TypedValue(code, oid, value)


@dataclass
class Row:
    logical_id: int
    physical_id: int
    values: dict[str, object]


@dataclass
class SpoolKit:
    path: Path
    layout: str = "v3-41"
    lsn: int = 0
    term: int = 1  # RedDB's leader term, stamped on each record (and its v3 frame)
    next_id: int = 1
    rows: dict[tuple[str, int], Row] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.writer = SpoolWriter(self.path, layout=self.layout, fsync=False)

    def close(self) -> None:
        self.writer.close()

    def skip_lsn(self, count: int = 1) -> None:
        """Leave a hole, as RedDB does for KV watch events."""
        self.lsn += count

    def _append(self, record: dict, lsn: int | None = None) -> int:
        if lsn is None:
            self.lsn += 1
            lsn = self.lsn
        record["lsn"] = lsn
        record.setdefault("timestamp", int(time.time() * 1000))
        record["term"] = self.term
        self.writer.append_record(record)
        return lsn

    def _entity(self, collection: str, row: Row, positional: tuple | None = None) -> str:
        if positional is None:
            fields = [Field(name, typed(row.values[name])) for name in sorted(row.values)]
        else:
            fields = [Field(None, typed(value)) for value in positional]
        entity = Entity(
            id=row.physical_id,
            kind="table_row",
            kind_fields={"table": collection, "row_id": row.logical_id},
            data_kind="row" if positional is not None else "named_row",
            fields=fields,
            created_at=int(time.time()),
            updated_at=int(time.time()),
            logical_id=row.logical_id,
            xmin=self.lsn + 1,
            xmax=0,
        )
        return encode_entity(entity).hex()

    def insert(self, collection: str, **values: object) -> tuple[int, int]:
        """Returns (RedDB LSN, logical id)."""
        row = Row(self.next_id, self.next_id, dict(values))
        self.next_id += 1
        self.rows[(collection, row.logical_id)] = row
        lsn = self._append({
            "collection": collection, "kind": "row", "operation": "insert",
            "rid": row.physical_id, "entity_bytes_hex": self._entity(collection, row),
        })  # fmt: skip
        return lsn, row.logical_id

    def insert_positional(self, collection: str, *values: object) -> tuple[int, int]:
        """A row without column names, as RedDB's multi-row INSERT writes them."""
        row = Row(self.next_id, self.next_id, {})
        self.next_id += 1
        lsn = self._append({
            "collection": collection, "kind": "row", "operation": "insert",
            "rid": row.physical_id, "entity_bytes_hex": self._entity(collection, row, values),
        })  # fmt: skip
        return lsn, row.logical_id

    def update(self, collection: str, logical_id: int, **values: object) -> int:
        row = self.rows[(collection, logical_id)]
        row.values.update(values)
        row.physical_id = self.next_id  # RedDB installs a new version with a new id
        self.next_id += 1
        return self._append({
            "collection": collection, "kind": "row", "operation": "update",
            "rid": row.physical_id, "entity_bytes_hex": self._entity(collection, row),
        })  # fmt: skip

    def delete(self, collection: str, logical_id: int) -> int:
        row = self.rows.pop((collection, logical_id))
        return self._append({
            "collection": collection, "kind": "row", "operation": "delete",
            "rid": row.physical_id,
        })  # fmt: skip

    def refresh(self, collection: str, rows: list[dict[str, object]]) -> tuple[int, list[int]]:
        """A RedDB refresh of ``collection`` (a materialized view): every row replaced by
        ``rows``, in one record (TRUNCATE and INSERTs downstream). Returns (LSN, logical ids)."""
        for key in [key for key in self.rows if key[0] == collection]:
            del self.rows[key]
        wrapped = []
        for values in rows:
            row = Row(self.next_id, self.next_id, dict(values))
            self.next_id += 1
            self.rows[(collection, row.logical_id)] = row
            raw = bytes.fromhex(self._entity(collection, row))
            wrapped.append((b"RER1" + len(raw).to_bytes(4, "little") + raw + bytes(4)).hex())
        lsn = self._append({
            "collection": collection, "kind": "row", "operation": "refresh", "rid": 0,
            "refresh_records_hex": wrapped,
        })  # fmt: skip
        return lsn, [self.next_id - len(rows) + i for i in range(len(rows))]


def end_pos(lsn: int) -> str:
    """COMMIT's position of RedDB LSN ``lsn`` as PostgreSQL prints it."""
    pos = (lsn << 8) | 0xFF
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"
