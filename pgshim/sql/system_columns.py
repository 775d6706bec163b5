"""System columns of PostgreSQL's catalog tables: tableoid, the oid of the table a row is in
(pg_dump reads it of every catalog it scans). The engine's tables have no such column: each
reference becomes the table's oid, a constant."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from pgshim.errors import PgError

SYSTEM_COLUMNS = frozenset({"tableoid"})


def replace_system_columns(tree: exp.Expression, tables: Mapping[str, int]) -> None:
    """Replace, in place, each tableoid of a table in ``tables`` (name -> oid) by its oid."""
    if not any(column.name.lower() in SYSTEM_COLUMNS for column in tree.find_all(exp.Column)):
        return
    for scope in traverse_scope(tree):
        for column in scope.columns:
            if column.name.lower() not in SYSTEM_COLUMNS:
                continue
            oid = _owner_oid(scope, column, tables)
            if oid is not None:
                column.replace(
                    exp.Cast(
                        this=exp.Literal.number(oid),
                        to=exp.DataType.build("UINTEGER", dialect="duckdb"),
                    )
                )


def _owner_oid(scope: Scope, column: exp.Column, tables: Mapping[str, int]) -> int | None:
    """The oid of the catalog table the column belongs to, looked up from the innermost scope
    out, as PostgreSQL resolves names; None when it is not a catalog table's."""
    level: Scope | None = scope
    while level is not None:
        catalogs = {
            alias.lower(): tables[source.name.lower()]
            for alias, source in level.sources.items()
            if isinstance(source, exp.Table)
            and isinstance(source.this, exp.Identifier)
            and source.name.lower() in tables
            and source.db.lower() in ("", "pg_catalog")
        }
        if column.table:
            if column.table in level.sources:
                return catalogs.get(column.table.lower())
        elif len(catalogs) > 1:
            raise PgError("42702", f'column reference "{column.name}" is ambiguous')
        elif catalogs:
            return next(iter(catalogs.values()))
        level = level.parent
    return None
