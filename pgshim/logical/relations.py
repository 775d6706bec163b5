"""Collections as PostgreSQL tables.

Every collection becomes one relation whose first column is the key ``rid`` bigint: the
entity's logical id (replica identity DEFAULT, ``replident 'd'``). The other columns come from,
in order of preference:

1. a declaration in the configuration (``DeclaredColumn(name, pg_type, source)``), in the
   declared order; ``source`` is a RedDB field name, a 0-based positional index, or ``None``
   (the field with the column's name, or for positional rows the declaration's own index);
2. named rows (and the synthesized fields of nodes, edges, vectors, time series and queue
   messages): the ordered union of the names seen so far; a new name is appended and bumps
   ``relation.version`` so pgoutput sends the Relation again. The type of an inferred column
   is the PostgreSQL type of its first non-null value (``text`` when it first appears null);
3. positional rows without a declaration: columns ``c1, c2, ...`` by position.

A field called ``rid`` is renamed ``rid_`` so it cannot clash with the key. A value whose type
does not fit its column is reported and sent as NULL; compatible widenings (integers into
numeric or float, float4 into float8, anything into text) are converted.

Relation OIDs are ``16384 + n`` and, with the columns and version, persist in the table
``relations`` of the state database so they stay stable across restarts. On a database shared by
several instances, a collection one of them stored first is taken as stored (its OID, columns and
version), and a stored version is never replaced by an older one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pgshim import pgtypes
from pgshim.logical.transactions import Column, Relation
from pgshim.reddb.values import value_typmod
from pgshim.state import is_shared

FIRST_RELATION_OID = 16384
SHARED_CREATE_ATTEMPTS = 100  # instances creating relations at once each take the next OID free
KEY_COLUMN = "rid"
INT8_OID = 20
TEXT_OID = 25
_INTEGER_OIDS = frozenset({20, 21, 23, 26, 28})
_INTEGER_RANGES = {21: 1 << 15, 23: 1 << 31, 20: 1 << 63}
_FLOAT_OIDS = frozenset({700, 701})
_NUMERIC_OID = 1700
_TEXTUAL_OIDS = frozenset({25, 1043, 1042, 19})
_JSON_OIDS = frozenset({114, 3802})


@dataclass(frozen=True, slots=True)
class DeclaredColumn:
    name: str
    pg_type: str
    source: str | int | None = None


@dataclass(frozen=True, slots=True)
class ColumnSource:
    """Where a column's value comes from: a field name, a position, or nothing yet."""

    field_name: str | None
    position: int | None


@dataclass(frozen=True, slots=True)
class FastPlan:
    """See ``RelationRegistry.fast_plan``."""

    relation: Relation
    named: dict[str | int, tuple[int, int]]
    positional: dict[str | int, tuple[int, int]]
    width: int
    learns: bool


@dataclass(slots=True)
class RowValues:
    relation: Relation
    values: list[Any]
    problems: list[str]


def type_oid_by_name(name: str) -> int:
    try:
        return pgtypes.lookup(name).oid
    except KeyError:
        raise ValueError(f"unknown PostgreSQL type {name!r}") from None


def column_name_for_field(field_name: str) -> str:
    return f"{field_name}_" if field_name == KEY_COLUMN else field_name


def coerce(value: Any, value_oid: int, column_oid: int) -> tuple[Any, str | None]:
    """Convert a decoded value to its column's type, or explain why it does not fit."""
    if value is None or value_oid == column_oid:
        return value, None
    if column_oid in _TEXTUAL_OIDS:
        return pgtypes.text_out(value_oid, value), None
    if value_oid in _INTEGER_OIDS and isinstance(value, int):
        if column_oid in _INTEGER_RANGES:
            bound = _INTEGER_RANGES[column_oid]
            if -bound <= value < bound:
                return value, None
            return None, f"value {value} out of range for {_type_name(column_oid)}"
        if column_oid == _NUMERIC_OID:
            return Decimal(value), None
        if column_oid in _FLOAT_OIDS:
            return float(value), None
    if value_oid in _FLOAT_OIDS and column_oid in _FLOAT_OIDS:
        return float(value), None
    if value_oid in _FLOAT_OIDS and column_oid == _NUMERIC_OID:
        return Decimal(repr(float(value))), None
    if value_oid == _NUMERIC_OID and column_oid in _FLOAT_OIDS:
        return float(value), None
    if value_oid in _JSON_OIDS and column_oid in _JSON_OIDS:
        return value, None
    if value_oid in _TEXTUAL_OIDS and column_oid in _TEXTUAL_OIDS:
        return value, None
    return None, (
        f"type mismatch: {_type_name(value_oid)} value does not fit column of type "
        f"{_type_name(column_oid)}"
    )


def _column_type(value: Any) -> tuple[int, int]:
    """The type OID and typmod of a column first seen with this value (text when NULL)."""
    if value.value is None:
        return TEXT_OID, -1
    return value.type_oid, value_typmod(value.type_code)


def _type_name(oid: int) -> str:
    pg_type = pgtypes.BY_OID.get(oid)
    return pg_type.sql_name if pg_type is not None else f"oid {oid}"


class RelationRegistry:
    """collection -> Relation, learned from the entities that flow by and persisted in sqlite."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        schema: str = "public",
        declared: dict[str, list[DeclaredColumn]] | None = None,
        schema_source: Callable[[str], list[DeclaredColumn] | None] | None = None,
    ) -> None:
        self._conn = conn
        self._schema = schema
        self._declared = dict(declared or {})
        # asked once for each new collection without a declaration (RedDB's declared columns)
        self._schema_source = schema_source
        self._relations: dict[str, Relation] = {}
        self._sources: dict[str, list[ColumnSource]] = {}
        # collection -> (len(sources) when built, known field names, known positions)
        self._known: dict[str, tuple[int, set[str], set[int]]] = {}
        # collection -> fast_plan(collection) while its columns and sources are unchanged
        self._plans: dict[str, FastPlan | None] = {}
        self._shared = is_shared(conn)
        self.mismatch_count = 0
        conn.execute(
            "CREATE TABLE IF NOT EXISTS relations ("
            " collection TEXT PRIMARY KEY, oid INTEGER NOT NULL UNIQUE,"
            " columns TEXT NOT NULL, version INTEGER NOT NULL)"
        )
        self._load()

    def _load(self) -> None:
        rows = self._conn.execute(
            "SELECT collection, oid, columns, version FROM relations ORDER BY oid"
        ).fetchall()
        for row in rows:
            self._take_stored(*row)
        for collection in list(self._declared):
            if collection in self._relations:
                self._apply_declaration(collection)
            else:
                self.get(collection)  # declared tables exist before their first record

    def relations(self) -> list[Relation]:
        return sorted(self._relations.values(), key=lambda relation: relation.oid)

    def find(self, collection: str) -> Relation | None:
        return self._relations.get(collection)

    def get(self, collection: str) -> Relation:
        """The relation of a collection, created with just the key (or its declaration)."""
        relation = self._relations.get(collection)
        if relation is None:
            if collection not in self._declared and self._schema_source is not None:
                columns = self._schema_source(collection)
                if columns:
                    self._declared[collection] = columns
            relation = self._create(collection)
        return relation

    def fast_plan(self, collection: str) -> FastPlan | None:
        """How the compiled core places an entity's fields in this relation's columns without
        deciding anything ``row`` decides (learning a column, converting a value): the field
        name (named rows) or position (positional rows) of each column with its index and type.
        None when a field feeds two columns or the collection is not known yet."""
        if collection in self._plans:
            return self._plans[collection]
        relation = self._relations.get(collection)
        plan: FastPlan | None = None
        if relation is not None:
            named: dict[str | int, tuple[int, int]] = {}
            positional: dict[str | int, tuple[int, int]] = {}
            unique = True
            for index, (column, source) in enumerate(
                zip(relation.columns, self._sources[collection], strict=True)
            ):
                for key, targets in ((source.field_name, named), (source.position, positional)):
                    if key is None:
                        continue
                    unique = unique and key not in targets
                    targets[key] = (index, column.type_oid)
            if unique:
                learns = collection not in self._declared
                plan = FastPlan(relation, named, positional, len(relation.columns), learns)
        self._plans[collection] = plan
        return plan

    def row(self, collection: str, entity: Any, logical_id: int) -> RowValues:
        """Column values of one entity (key first), growing the relation if it must."""
        relation = self._relations.get(collection) or self.get(collection)
        fields = entity.fields
        if collection not in self._declared:
            self._learn_columns(relation, fields)
        sources = self._sources[collection]
        values: list[Any] = [logical_id]
        problems: list[str] = []
        positional = bool(fields) and all(f.name is None for f in fields)
        if not positional:
            return self._named_row(relation, sources, fields, values, problems)
        by_name = {f.name: f for f in fields if f.name is not None}
        for index, (column, source) in enumerate(zip(relation.columns, sources, strict=True)):
            if index == 0:
                continue
            field = None
            if source.position is not None and positional:
                if source.position < len(entity.fields):
                    field = entity.fields[source.position]
            elif source.field_name is not None and not positional:
                field = by_name.get(source.field_name)
            if field is None:
                values.append(None)
                continue
            converted, problem = coerce(field.value.value, field.value.type_oid, column.type_oid)
            if problem is not None:
                self.mismatch_count += 1
                problems.append(f"{relation.name}.{column.name}: {problem}")
            values.append(converted)
        return RowValues(relation, values, problems)

    def _named_row(
        self,
        relation: Relation,
        sources: list[ColumnSource],
        fields: Sequence[Any],
        values: list[Any],
        problems: list[str],
    ) -> RowValues:
        """row() for named fields: each column takes the field with its source's name."""
        columns = relation.columns
        if len(columns) != len(sources):
            raise ValueError("columns and their sources differ in length")
        by_name = {f.name: f.value for f in fields if f.name is not None}
        append = values.append
        for index in range(1, len(columns)):
            name = sources[index].field_name
            typed = by_name.get(name) if name is not None else None
            if typed is None:
                append(None)
                continue
            value = typed.value
            column_oid = columns[index].type_oid
            if value is None or typed.type_oid == column_oid:
                append(value)
                continue
            converted, problem = coerce(value, typed.type_oid, column_oid)
            if problem is not None:
                self.mismatch_count += 1
                problems.append(f"{relation.name}.{columns[index].name}: {problem}")
            append(converted)
        return RowValues(relation, values, problems)

    def _take_stored(self, collection: str, oid: int, columns_json: str, version: int) -> Relation:
        stored = json.loads(columns_json)
        columns = [
            Column(c["name"], c["type_oid"], c.get("typmod", -1), c.get("is_key", False))
            for c in stored
        ]
        relation = Relation(
            oid=oid, schema=self._schema, name=collection, columns=columns, version=version
        )
        self._relations[collection] = relation
        self._sources[collection] = [ColumnSource(c.get("field"), c.get("position")) for c in stored]
        self._plans.pop(collection, None)
        self._known.pop(collection, None)
        return relation

    def _create(self, collection: str) -> Relation:
        if not self._shared:
            return self._create_new(collection, FIRST_RELATION_OID + len(self._relations))
        created = None
        for _ in range(SHARED_CREATE_ATTEMPTS):  # another instance may store it, or take the OID
            row = self._conn.execute(
                "SELECT collection, oid, columns, version FROM relations WHERE collection = ?",
                (collection,),
            ).fetchone()
            if row is not None:
                if created is not None and created.oid == row[1]:
                    return created
                relation = self._take_stored(*row)
                if collection in self._declared:
                    self._apply_declaration(collection)
                return relation
            (highest,) = self._conn.execute("SELECT max(oid) FROM relations").fetchone()
            try:
                created = self._create_new(collection, max(FIRST_RELATION_OID, (highest or 0) + 1))
            except sqlite3.IntegrityError:  # the OID went to another collection
                self._relations.pop(collection, None)
                self._sources.pop(collection, None)
        raise sqlite3.OperationalError(f"no relation OID could be stored for {collection!r}")

    def _create_new(self, collection: str, oid: int) -> Relation:
        taken = {relation.oid for relation in self._relations.values()}
        while oid in taken:
            oid += 1
        relation = Relation(
            oid=oid,
            schema=self._schema,
            name=collection,
            columns=[Column(KEY_COLUMN, INT8_OID, is_key=True)],
        )
        self._relations[collection] = relation
        self._sources[collection] = [ColumnSource(None, None)]
        self._plans.pop(collection, None)
        if collection in self._declared:
            self._apply_declaration(collection)
        self._save(relation)
        return relation

    def _apply_declaration(self, collection: str) -> None:
        relation = self._relations[collection]
        columns = [Column(KEY_COLUMN, INT8_OID, is_key=True)]
        sources = [ColumnSource(None, None)]
        for index, declared in enumerate(self._declared[collection]):
            columns.append(Column(declared.name, type_oid_by_name(declared.pg_type)))
            if isinstance(declared.source, int):
                sources.append(ColumnSource(None, declared.source))
            elif isinstance(declared.source, str):
                sources.append(ColumnSource(declared.source, None))
            else:
                sources.append(ColumnSource(declared.name, index))
        if columns != relation.columns:
            relation.columns = columns
            relation.version += 1
        self._sources[collection] = sources
        self._plans.pop(collection, None)
        self._save(relation)

    def _learn_columns(self, relation: Relation, fields: Sequence[Any]) -> None:
        sources = self._sources[relation.name]
        known = self._known.get(relation.name)
        if known is None or known[0] != len(sources):
            known = (
                len(sources),
                {source.field_name for source in sources if source.field_name is not None},
                {source.position for source in sources if source.position is not None},
            )
            self._known[relation.name] = known
        _, known_names, known_positions = known
        grew = False
        for position, field in enumerate(fields):
            if field.name is None:
                if position in known_positions:
                    continue
                value_oid, typmod = _column_type(field.value)
                relation.columns.append(Column(f"c{position + 1}", value_oid, typmod))
                sources.append(ColumnSource(None, position))
                known_positions.add(position)
            else:
                if field.name in known_names:
                    continue
                value_oid, typmod = _column_type(field.value)
                relation.columns.append(
                    Column(column_name_for_field(field.name), value_oid, typmod)
                )
                sources.append(ColumnSource(field.name, None))
                known_names.add(field.name)
            grew = True
        if grew:
            self._plans.pop(relation.name, None)
            self._known[relation.name] = (len(sources), known_names, known_positions)
            relation.version += 1
            self._save(relation)

    def _save(self, relation: Relation) -> None:
        sources = self._sources[relation.name]
        stored = [
            {
                "name": column.name,
                "type_oid": column.type_oid,
                "typmod": column.typmod,
                "is_key": column.is_key,
                "field": source.field_name,
                "position": source.position,
            }
            for column, source in zip(relation.columns, sources, strict=True)
        ]
        self._conn.execute(
            "INSERT INTO relations (collection, oid, columns, version) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(collection) DO UPDATE SET columns = excluded.columns,"
            " version = excluded.version WHERE relations.version < excluded.version",
            (relation.name, relation.oid, json.dumps(stored), relation.version),
        )
        self._conn.commit()
