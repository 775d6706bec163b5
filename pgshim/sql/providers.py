"""Rows of PostgreSQL's catalogs derived from pgshim's relations and publications.

A PostgreSQL subscriber reads pg_publication, pg_publication_tables, pg_class, pg_namespace,
pg_attribute and pg_index to learn what to replicate; each collection appears there as a table
whose replica identity is a primary key on ``rid`` (the RedDB logical id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from zlib import crc32

from pgshim import pgtypes
from pgshim.logical.publications import PublicationStore
from pgshim.logical.transactions import Relation

PG_CATALOG_OID = 11
PUBLIC_OID = 2200
SUPERUSER_OID = 10
DATABASE_OID = 5
INDEX_OID_OFFSET = 1_000_000  # a relation's primary key index: relid + offset
PUBLICATION_OID_BASE = 17_000
# (oid, name, datistemplate, datallowconn); the configured database has DATABASE_OID, the oid
# PostgreSQL gives "postgres", so "postgres" gets the first oid of a user database when apart
BUILTIN_DATABASES = ((16_384, "postgres", False, True), (1, "template1", True, True),
                     (4, "template0", True, False))  # fmt: skip


def namespace_oid(schema: str) -> int:
    if schema == "public":
        return PUBLIC_OID
    if schema == "pg_catalog":
        return PG_CATALOG_OID
    return 16_000 + crc32(schema.encode()) % 300


class CatalogRows:
    """Row providers for the catalog views, reading live state each time a query names them."""

    def __init__(
        self,
        relations: Callable[[], Iterable[Relation]],
        publications: PublicationStore,
        database: str,
    ) -> None:
        self._relations = relations
        self.publications = publications
        self.database = database

    def pg_database(self) -> list[tuple]:
        """The configured database and PostgreSQL's own (connected to for status: psql -l,
        tools that start from "postgres" or "template1"); template0 takes no connections."""
        rows = [
            (DATABASE_OID, self.database, SUPERUSER_OID, 6, "C.UTF-8", "C.UTF-8", False, True, -1)
        ]
        for oid, name, template, allow in BUILTIN_DATABASES:
            if name != self.database:
                rows.append(
                    (oid, name, SUPERUSER_OID, 6, "C.UTF-8", "C.UTF-8", template, allow, -1)
                )
        return rows


    def pg_namespace(self) -> list[tuple]:
        names = {"pg_catalog", "public"} | {rel.schema for rel in self._relations()}
        return [(namespace_oid(name), name, SUPERUSER_OID) for name in sorted(names)]

    def pg_class(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            rows.append((
                rel.oid, rel.name, namespace_oid(rel.schema), 0, SUPERUSER_OID, "r",
                len(rel.columns), rel.replident, "p", False,
            ))  # fmt: skip
            rows.append((
                rel.oid + INDEX_OID_OFFSET, f"{rel.name}_pkey", namespace_oid(rel.schema), 0,
                SUPERUSER_OID, "i", _key_count(rel), "n", "p", False,
            ))  # fmt: skip
        return rows

    def pg_attribute(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            for number, column in enumerate(rel.columns, start=1):
                typlen = pgtypes.BY_OID[column.type_oid].typlen
                rows.append((
                    rel.oid, column.name, column.type_oid, typlen, number, column.typmod,
                    column.is_key, False, "",
                ))  # fmt: skip
        return rows

    def pg_index(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            keys = [n for n, column in enumerate(rel.columns, start=1) if column.is_key]
            rows.append((rel.oid + INDEX_OID_OFFSET, rel.oid, len(keys), True, True, False, keys))
        return rows

    def pg_publication(self) -> list[tuple]:
        return [
            (
                PUBLICATION_OID_BASE + n,
                name,
                SUPERUSER_OID,
                all_tables,
                ins,
                upd,
                dele,
                trunc,
                False,
            )
            for n, (name, all_tables, ins, upd, dele, trunc) in enumerate(
                self.publications.publication_rows()
            )
        ]

    def pg_publication_tables(self) -> list[tuple]:
        return [
            (pubname, schema, table, attnames, None)
            for pubname, schema, table, attnames in self.publications.publication_table_rows(
                self._relations()
            )
        ]

    def publication_rel(self) -> list[tuple]:
        """Backs pg_get_publication_tables(pubname): every column of every published relation."""
        by_name = {(rel.schema, rel.name): rel for rel in self._relations()}
        rows = []
        for pubname, schema, table, _ in self.publications.publication_table_rows(by_name.values()):
            rel = by_name[(schema, table)]
            rows.append((pubname, rel.oid, list(range(1, len(rel.columns) + 1)), None))
        return rows

    def providers(self) -> dict[str, Callable[[], list[tuple]]]:
        return {
            "pg_database": self.pg_database,
            "pg_namespace": self.pg_namespace,
            "pg_class": self.pg_class,
            "pg_attribute": self.pg_attribute,
            "pg_index": self.pg_index,
            "pg_publication": self.pg_publication,
            "pg_publication_tables": self.pg_publication_tables,
            "pgshim_publication_rel": self.publication_rel,
        }


def _key_count(rel: Relation) -> int:
    return sum(1 for column in rel.columns if column.is_key)


class PublicationDDL:
    """CREATE/ALTER/DROP PUBLICATION from the SQL session, applied to the publication store."""

    def __init__(self, store: PublicationStore) -> None:
        self.store = store

    def create(
        self, name: str, all_tables: bool, tables: list[str], actions: set[str] | None
    ) -> None:
        if actions is None:
            self.store.create(name, all_tables=all_tables, tables=tables)
        else:
            self.store.create(
                name, all_tables=all_tables, tables=tables, publish=", ".join(actions)
            )

    def alter(self, name: str, action: str, tables: list[str], actions: set[str] | None) -> None:
        publish = None if actions is None else ", ".join(actions)
        if action == "add":
            self.store.alter(name, add_tables=tables, publish=publish)
        elif action == "drop":
            self.store.alter(name, drop_tables=tables, publish=publish)
        elif action == "set":
            self.store.alter(name, set_tables=tables, publish=publish)
        else:
            self.store.alter(name, publish=publish)

    def drop(self, name: str, if_exists: bool) -> None:
        self.store.drop(name, if_exists=if_exists)
