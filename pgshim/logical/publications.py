"""Publications: which relations and actions a pgoutput session receives.

CREATE/ALTER/DROP PUBLICATION semantics over a small sqlite schema (``publications`` and
``publication_tables``). Tables are stored as (schema, name) and may name collections that have
not produced a record yet. A configured default publication is created FOR ALL TABLES when
absent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from pgshim.errors import PgError
from pgshim.logical.transactions import Relation

ALL_ACTIONS = ("insert", "update", "delete", "truncate")
ACTION_BY_CODE = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}
DEFAULT_SCHEMA = "public"


@dataclass(frozen=True, slots=True)
class Publication:
    name: str
    all_tables: bool
    actions: frozenset[str]
    tables: tuple[tuple[str, str], ...]

    def includes(self, relation: Relation, action: str) -> bool:
        action_name = ACTION_BY_CODE.get(action, action)
        if action_name not in self.actions:
            return False
        return self.all_tables or (relation.schema, relation.name) in self.tables


@dataclass(frozen=True, slots=True)
class PublicationFilter:
    publications: tuple[Publication, ...]

    def includes(self, relation: Relation, action: str) -> bool:
        return any(publication.includes(relation, action) for publication in self.publications)

    def includes_relation(self, relation: Relation) -> bool:
        return any(
            publication.all_tables or (relation.schema, relation.name) in publication.tables
            for publication in self.publications
        )


def parse_publish(publish: str) -> frozenset[str]:
    """The ``publish = '...'`` parameter: a comma-separated list of actions."""
    actions = [item.strip().lower() for item in publish.split(",") if item.strip()]
    for action in actions:
        if action not in ALL_ACTIONS:
            raise PgError("22023", f'unrecognized "publish" value: "{action}"')
    return frozenset(actions)


def parse_table_name(name: str, default_schema: str = DEFAULT_SCHEMA) -> tuple[str, str]:
    schema, dot, table = name.rpartition(".")
    return (schema if dot else default_schema, table)


class PublicationStore:
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        default: str | None = None,
        default_publication: str | None = None,
    ) -> None:
        default_publication = default_publication or default
        self._conn = conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS publications ("
            " name TEXT PRIMARY KEY, all_tables INTEGER NOT NULL, publish TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS publication_tables ("
            " pubname TEXT NOT NULL, schemaname TEXT NOT NULL, tablename TEXT NOT NULL,"
            " PRIMARY KEY (pubname, schemaname, tablename))"
        )
        conn.commit()
        self._cache: dict[str, Publication] | None = None
        self.generation = 0  # bumped by every change, so readers can cache what they resolved
        if default_publication is not None and self.find(default_publication) is None:
            self.create(default_publication, all_tables=True)

    def _publications(self) -> dict[str, Publication]:
        if self._cache is None:
            tables: dict[str, list[tuple[str, str]]] = {}
            for pubname, schema, table in self._conn.execute(
                "SELECT pubname, schemaname, tablename FROM publication_tables ORDER BY rowid"
            ):
                tables.setdefault(pubname, []).append((schema, table))
            self._cache = {
                name: Publication(
                    name,
                    bool(all_tables),
                    parse_publish(publish),
                    tuple(tables.get(name, ())),
                )
                for name, all_tables, publish in self._conn.execute(
                    "SELECT name, all_tables, publish FROM publications ORDER BY rowid"
                )
            }
        return self._cache

    def find(self, name: str) -> Publication | None:
        return self._publications().get(name)

    def list(self) -> list[Publication]:
        return list(self._publications().values())

    def _require(self, name: str) -> Publication:
        publication = self.find(name)
        if publication is None:
            raise PgError("42704", f'publication "{name}" does not exist')
        return publication

    def create(
        self,
        name: str,
        *,
        all_tables: bool = False,
        tables: Iterable[str] = (),
        publish: str = ", ".join(ALL_ACTIONS),
    ) -> Publication:
        if self.find(name) is not None:
            raise PgError("42710", f'publication "{name}" already exists')
        parse_publish(publish)
        self._conn.execute(
            "INSERT INTO publications (name, all_tables, publish) VALUES (?, ?, ?)",
            (name, int(all_tables), publish),
        )
        self._insert_tables(name, tables)
        return self._require(name)

    def alter(
        self,
        name: str,
        *,
        add_tables: Iterable[str] = (),
        drop_tables: Iterable[str] = (),
        set_tables: Iterable[str] | None = None,
        publish: str | None = None,
    ) -> Publication:
        publication = self._require(name)
        add_tables, drop_tables = list(add_tables), list(drop_tables)
        changes_tables = set_tables is not None or bool(add_tables) or bool(drop_tables)
        if publication.all_tables and changes_tables:
            raise PgError(
                "55000",
                f'publication "{name}" is defined as FOR ALL TABLES',
                detail="Tables cannot be added to or dropped from FOR ALL TABLES publications.",
            )
        if publish is not None:
            parse_publish(publish)
            self._conn.execute(
                "UPDATE publications SET publish = ? WHERE name = ?", (publish, name)
            )
        if set_tables is not None:
            self._conn.execute("DELETE FROM publication_tables WHERE pubname = ?", (name,))
            self._insert_tables(name, set_tables)
        self._insert_tables(name, add_tables)
        for table in drop_tables:
            schema, tablename = parse_table_name(table)
            deleted = self._conn.execute(
                "DELETE FROM publication_tables WHERE pubname = ? AND schemaname = ?"
                " AND tablename = ?",
                (name, schema, tablename),
            ).rowcount
            if not deleted:
                self._invalidate()
                raise PgError("42704", f'relation "{tablename}" is not part of the publication')
        self._invalidate()
        return self._require(name)

    def drop(self, name: str, *, if_exists: bool = False) -> None:
        if self.find(name) is None:
            if if_exists:
                return
            raise PgError("42704", f'publication "{name}" does not exist')
        self._conn.execute("DELETE FROM publications WHERE name = ?", (name,))
        self._conn.execute("DELETE FROM publication_tables WHERE pubname = ?", (name,))
        self._invalidate()

    def resolve(self, names: list[str]) -> PublicationFilter:
        return PublicationFilter(tuple(self._require(name) for name in names))

    def publication_rows(self) -> list[tuple[str, bool, bool, bool, bool, bool]]:
        """pg_publication: (pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate)."""
        return [
            (p.name, p.all_tables, *(action in p.actions for action in ALL_ACTIONS))
            for p in self.list()
        ]

    def publication_table_rows(
        self, relations: Iterable[Relation]
    ) -> list[tuple[str, str, str, list[str]]]:
        """pg_publication_tables: (pubname, schemaname, tablename, attnames) per known relation."""
        known = list(relations)
        rows = []
        for publication in self.list():
            for relation in known:
                if publication.all_tables or (relation.schema, relation.name) in publication.tables:
                    attnames = [column.name for column in relation.columns]
                    rows.append((publication.name, relation.schema, relation.name, attnames))
        return rows

    def _insert_tables(self, name: str, tables: Iterable[str]) -> None:
        for table in tables:
            schema, tablename = parse_table_name(table)
            self._conn.execute(
                "INSERT OR IGNORE INTO publication_tables (pubname, schemaname, tablename)"
                " VALUES (?, ?, ?)",
                (name, schema, tablename),
            )
        self._invalidate()

    def _invalidate(self) -> None:
        self._conn.commit()
        self._cache = None
        self.generation += 1
