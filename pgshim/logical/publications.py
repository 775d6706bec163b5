"""Publications: which relations and actions a pgoutput session receives.

CREATE/ALTER/DROP PUBLICATION semantics over a small sqlite schema (``publications``,
``publication_tables`` and ``publication_schemas``). Tables are stored as (schema, name) and may
name collections that have not produced a record yet; each with its column list and row filter
(the filter's text as pgshim.logical.rowfilter prints it), when given. A publication FOR TABLES
IN SCHEMA publishes every table of the schema, later ones too, with neither column list nor row
filter (PostgreSQL 15 ignores a named table's filter when its schema is published as well). A
configured default publication is created FOR ALL TABLES when absent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pgshim.errors import PgError
from pgshim.logical.transactions import Relation
from pgshim.state import columns_of, is_shared

log = logging.getLogger(__name__)

SHARED_REFRESH_SECONDS = 1.0  # how old the publications read from a shared database may be

ALL_ACTIONS = ("insert", "update", "delete", "truncate")
ACTION_BY_CODE = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}
DEFAULT_SCHEMA = "public"


@dataclass(frozen=True, slots=True)
class TableOptions:
    """A published table's column list and row filter (None: every column, every row)."""

    columns: tuple[str, ...] | None = None
    row_filter: str | None = None


NO_OPTIONS = TableOptions()
TableItem = str | tuple[str, TableOptions]


@dataclass(frozen=True, slots=True)
class Publication:
    name: str
    all_tables: bool
    actions: frozenset[str]
    tables: tuple[tuple[str, str], ...]
    options: dict[tuple[str, str], TableOptions] = field(default_factory=dict)
    schemas: tuple[str, ...] = ()

    def covers(self, relation: Relation) -> bool:
        return (
            self.all_tables
            or relation.schema in self.schemas
            or (relation.schema, relation.name) in self.tables
        )

    def table_options(self, relation: Relation) -> TableOptions:
        if self.all_tables or relation.schema in self.schemas:
            return NO_OPTIONS
        return self.options.get((relation.schema, relation.name), NO_OPTIONS)

    def includes(self, relation: Relation, action: str) -> bool:
        action_name = ACTION_BY_CODE.get(action, action)
        if action_name not in self.actions:
            return False
        return self.covers(relation)


@dataclass(frozen=True, slots=True)
class PublicationFilter:
    publications: tuple[Publication, ...]

    def includes(self, relation: Relation, action: str) -> bool:
        return any(publication.includes(relation, action) for publication in self.publications)

    def includes_relation(self, relation: Relation) -> bool:
        return any(publication.covers(relation) for publication in self.publications)

    def column_list(self, relation: Relation) -> tuple[str, ...] | None:
        """The columns sent of ``relation`` (None: all); as PostgreSQL 15, every publication
        of the table must have the same list (none, or naming every column, means all)."""
        every = tuple(column.name for column in relation.columns)
        lists = set()
        for publication in self.publications:
            if publication.covers(relation):
                columns = publication.table_options(relation).columns
                lists.add(None if columns is None or set(columns) >= set(every) else columns)
        if len(lists) > 1:
            raise PgError(
                "0A000",
                f'cannot use different column lists for table "{relation.schema}.'
                f'{relation.name}" in different publications',
            )
        return lists.pop() if lists else None

    def row_filters(self, relation: Relation, action: str) -> list[str] | None:
        """The row filters of the publications that publish ``action`` on ``relation``, to be
        OR-ed; None when one of them has none (every row is published)."""
        texts: list[str] = []
        for publication in self.publications:
            if publication.includes(relation, action):
                text = publication.table_options(relation).row_filter
                if text is None:
                    return None
                if text not in texts:
                    texts.append(text)
        return texts or None


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
        conn.execute(
            "CREATE TABLE IF NOT EXISTS publication_schemas ("
            " pubname TEXT NOT NULL, schemaname TEXT NOT NULL, PRIMARY KEY (pubname, schemaname))"
        )
        known = columns_of(conn, "publication_tables")
        for column in ("attnames", "rowfilter"):  # added in a later version
            if column not in known:
                conn.execute(f"ALTER TABLE publication_tables ADD COLUMN {column} TEXT")
        conn.commit()
        self._cache: dict[str, Publication] | None = None
        self._shared = is_shared(conn)
        self._loaded_at = 0.0
        self._generation = 0  # bumped by every change (see ``generation``)
        if default_publication is not None and self.find(default_publication) is None:
            with contextlib.suppress(PgError):  # another instance created it meanwhile
                self.create(default_publication, all_tables=True)

    @property
    def generation(self) -> int:
        """Bumped by every change, so readers can cache what they resolved. On a shared
        database it first reads the publications again when they are older than a moment:
        another instance's changes move it too."""
        if self._shared and self._cache is not None:
            self._publications()
        return self._generation

    def _publications(self) -> dict[str, Publication]:
        stale = self._cache
        if stale is None:
            return self._load()
        # other instances change them too: read again when it is older than a moment
        if self._shared and time.monotonic() - self._loaded_at >= SHARED_REFRESH_SECONDS:
            try:
                if self._load() != stale:
                    self._generation += 1
            except sqlite3.Error as exc:  # the state database is away: what was read stands
                log.debug("publications not read again: %s", exc)
                self._loaded_at = time.monotonic()
        return self._cache  # type: ignore[return-value]

    def _load(self) -> dict[str, Publication]:
        tables: dict[str, list[tuple[str, str]]] = {}
        options: dict[str, dict[tuple[str, str], TableOptions]] = {}
        for pubname, schema, table, attnames, rowfilter in self._conn.execute(
            "SELECT pubname, schemaname, tablename, attnames, rowfilter"
            " FROM publication_tables ORDER BY rowid"
        ):
            tables.setdefault(pubname, []).append((schema, table))
            if attnames is not None or rowfilter is not None:
                columns = None if attnames is None else tuple(json.loads(attnames))
                options.setdefault(pubname, {})[(schema, table)] = TableOptions(
                    columns, rowfilter
                )
        schemas: dict[str, list[str]] = {}
        for pubname, schema in self._conn.execute(
            "SELECT pubname, schemaname FROM publication_schemas ORDER BY rowid"
        ):
            schemas.setdefault(pubname, []).append(schema)
        self._cache = {
            name: Publication(
                name,
                bool(all_tables),
                parse_publish(publish),
                tuple(tables.get(name, ())),
                options.get(name, {}),
                tuple(schemas.get(name, ())),
            )
            for name, all_tables, publish in self._conn.execute(
                "SELECT name, all_tables, publish FROM publications ORDER BY rowid"
            )
        }
        self._loaded_at = time.monotonic()
        return self._cache

    def find(self, name: str) -> Publication | None:
        return self._publications().get(name)

    def read_again_for(self, names: Iterable[str]) -> None:
        """On a shared database, read the publications again now when one of ``names`` is not
        known: another instance may have created it a moment ago (a session starting to stream
        it must not take it for missing)."""
        stale = self._cache
        if not self._shared or stale is None or all(name in stale for name in names):
            return
        try:
            if self._load() != stale:
                self._generation += 1
        except sqlite3.Error as exc:  # the state database is away: what was read stands
            log.debug("publications not read again: %s", exc)

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
        tables: Iterable[TableItem] = (),
        publish: str = ", ".join(ALL_ACTIONS),
        schemas: Iterable[str] = (),
    ) -> Publication:
        if self.find(name) is not None:
            raise PgError("42710", f'publication "{name}" already exists')
        parse_publish(publish)
        try:
            self._conn.execute(
                "INSERT INTO publications (name, all_tables, publish) VALUES (?, ?, ?)",
                (name, int(all_tables), publish),
            )
        except sqlite3.IntegrityError:  # another instance created it meanwhile
            raise PgError("42710", f'publication "{name}" already exists') from None
        self._insert_schemas(name, schemas)
        self._insert_tables(name, tables)
        return self._require(name)

    def alter(
        self,
        name: str,
        *,
        add_tables: Iterable[TableItem] = (),
        drop_tables: Iterable[str] = (),
        set_tables: Iterable[TableItem] | None = None,
        publish: str | None = None,
        add_schemas: Iterable[str] = (),
        drop_schemas: Iterable[str] = (),
        set_schemas: Iterable[str] | None = None,
    ) -> Publication:
        """ALTER PUBLICATION: ``set_tables`` with ``set_schemas`` replaces both (SET names
        every table and schema the publication keeps)."""
        publication = self._require(name)
        add_tables, drop_tables = list(add_tables), list(drop_tables)
        add_schemas, drop_schemas = list(add_schemas), list(drop_schemas)
        changes_tables = set_tables is not None or bool(add_tables) or bool(drop_tables)
        changes_schemas = set_schemas is not None or bool(add_schemas) or bool(drop_schemas)
        if publication.all_tables and (changes_tables or changes_schemas):
            what = "Schemas" if add_schemas or drop_schemas or set_schemas else "Tables"
            raise PgError(
                "55000",
                f'publication "{name}" is defined as FOR ALL TABLES',
                detail=f"{what} cannot be added to or dropped from FOR ALL TABLES publications.",
            )
        for schema in add_schemas:
            if schema in publication.schemas:
                raise PgError(
                    "42710", f'schema "{schema}" is already member of publication "{name}"'
                )
        if publish is not None:
            parse_publish(publish)
            self._conn.execute(
                "UPDATE publications SET publish = ? WHERE name = ?", (publish, name)
            )
        for item in add_tables:
            schema, tablename = parse_table_name(item if isinstance(item, str) else item[0])
            if (schema, tablename) in publication.tables:
                self._invalidate()
                raise PgError(
                    "42710", f'relation "{tablename}" is already member of publication "{name}"'
                )
        if set_tables is not None:
            self._conn.execute("DELETE FROM publication_tables WHERE pubname = ?", (name,))
            self._insert_tables(name, set_tables)
        if set_schemas is not None:
            self._conn.execute("DELETE FROM publication_schemas WHERE pubname = ?", (name,))
            self._insert_schemas(name, set_schemas)
        self._insert_schemas(name, add_schemas)
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
        for schema in drop_schemas:
            deleted = self._conn.execute(
                "DELETE FROM publication_schemas WHERE pubname = ? AND schemaname = ?",
                (name, schema),
            ).rowcount
            if not deleted:
                self._invalidate()
                raise PgError(
                    "42704", f'tables from schema "{schema}" are not part of the publication'
                )
        self._invalidate()
        return self._require(name)

    def drop(self, name: str, *, if_exists: bool = False) -> None:
        if self.find(name) is None:
            if if_exists:
                return
            raise PgError("42704", f'publication "{name}" does not exist')
        self._conn.execute("DELETE FROM publications WHERE name = ?", (name,))
        self._conn.execute("DELETE FROM publication_tables WHERE pubname = ?", (name,))
        self._conn.execute("DELETE FROM publication_schemas WHERE pubname = ?", (name,))
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
    ) -> list[tuple[str, str, str, list[str], str | None]]:
        """pg_publication_tables: (pubname, schemaname, tablename, attnames, rowfilter) per
        known relation; attnames are the column list's, in the table's order."""
        known = list(relations)
        rows = []
        for publication in self.list():
            for relation in known:
                if publication.covers(relation):
                    options = publication.table_options(relation)
                    attnames = [
                        column.name
                        for column in relation.columns
                        if options.columns is None or column.name in options.columns
                    ]
                    rows.append((publication.name, relation.schema, relation.name, attnames,
                                 options.row_filter))  # fmt: skip
        return rows

    def _insert_tables(self, name: str, tables: Iterable[TableItem]) -> None:
        for item in tables:
            table, options = (item, NO_OPTIONS) if isinstance(item, str) else item
            schema, tablename = parse_table_name(table)
            columns = None if options.columns is None else json.dumps(list(options.columns))
            self._conn.execute(
                "INSERT INTO publication_tables"
                " (pubname, schemaname, tablename, attnames, rowfilter) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (name, schema, tablename, columns, options.row_filter),
            )
        self._invalidate()

    def _insert_schemas(self, name: str, schemas: Iterable[str]) -> None:
        for schema in schemas:
            self._conn.execute(
                "INSERT INTO publication_schemas (pubname, schemaname) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (name, schema),
            )
        self._invalidate()

    def _invalidate(self) -> None:
        self._conn.commit()
        self._cache = None
        self._generation += 1
