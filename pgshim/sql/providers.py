"""Rows of PostgreSQL's catalogs derived from pgshim's relations and publications.

A PostgreSQL subscriber reads pg_publication, pg_publication_tables, pg_class, pg_namespace,
pg_attribute and pg_index to learn what to replicate; each collection appears there as a table
whose replica identity is a primary key on ``rid`` (the RedDB logical id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from zlib import crc32

from pgshim.errors import PgError
from pgshim.logical.publications import (
    ALL_ACTIONS,
    DEFAULT_SCHEMA,
    NO_OPTIONS,
    Publication,
    PublicationStore,
    TableItem,
    parse_publish,
    parse_table_name,
)
from pgshim.logical.transactions import Relation
from pgshim.sql.pg_functions import (
    DEFAULT_TABLESPACE_OID,
    attribute_row,
    catalog_row,
    class_row,
    quote_ident,
)
from pgshim.sql.privileges import INSUFFICIENT_PRIVILEGE, is_superuser
from pgshim.sql.publications import TableSpec, check_identity, table_items
from pgshim.sql.shared_tables import Derived

PG_CATALOG_OID = 11
PUBLIC_OID = 2200
SUPERUSER_OID = 10
DATABASE_OID = 5
INDEX_OID_OFFSET = 1_000_000  # a relation's primary key index: relid + offset
PUBLICATION_OID_BASE = 17_000
CONSTRAINT_OID_OFFSET = 2_000_000  # a relation's primary key constraint: relid + offset
# PostgreSQL 18's NOT NULL constraint of key column n: relid + offset + (n - 1) * stride
NOT_NULL_OID_OFFSET = 3_000_000
NOT_NULL_OID_STRIDE = 100_000_000
_INT8_BTREE_OPCLASS = 3124  # int8_ops
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
        owner: str = "postgres",
        major: int = 15,
    ) -> None:
        self._relations = relations
        self.publications = publications
        self.database = database
        self.owner = owner  # the bootstrap role's name (see bootstrap_role)
        self.major = major  # the PostgreSQL version served
        self._providers: dict[str, Callable[[], list[tuple]]] | None = None

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
        """Every schema belongs to the bootstrap role; public has PostgreSQL 15's privileges of
        public (usage for everyone, which pg_dump expects), the others the default ones."""
        names = {"pg_catalog", "public"} | {rel.schema for rel in self._relations()}
        owner = acl_role(self.owner)
        public = [f"{owner}=UC/{owner}", f"=U/{owner}"]
        return [
            catalog_row("pg_namespace", oid=namespace_oid(name), nspname=name,
                        nspowner=SUPERUSER_OID, nspacl=public if name == "public" else None)
            for name in sorted(names)
        ]  # fmt: skip

    def pg_class(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            namespace = namespace_oid(rel.schema)
            rows.append(class_row(rel.oid, rel.name, namespace, "r", len(rel.columns),
                                  has_index=True, replident=rel.replident))  # fmt: skip
            rows.append(class_row(rel.oid + INDEX_OID_OFFSET, f"{rel.name}_pkey", namespace, "i",
                                  _key_count(rel)))  # fmt: skip
        return rows

    def pg_attribute(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            for number, column in enumerate(rel.columns, start=1):
                rows.append(attribute_row(rel.oid, column.name, column.type_oid, number,
                                          column.typmod, column.is_key))  # fmt: skip
            index = rel.oid + INDEX_OID_OFFSET
            keys = [column for column in rel.columns if column.is_key]
            for number, column in enumerate(keys, start=1):
                rows.append(attribute_row(index, column.name, column.type_oid, number,
                                          column.typmod))  # fmt: skip
        return rows

    def pg_index(self) -> list[tuple]:
        rows = []
        for rel in self._relations():
            keys = [n for n, column in enumerate(rel.columns, start=1) if column.is_key]
            rows.append(catalog_row(
                "pg_index", indexrelid=rel.oid + INDEX_OID_OFFSET, indrelid=rel.oid,
                indnatts=len(keys), indnkeyatts=len(keys), indisunique=True, indisprimary=True,
                indimmediate=True, indisvalid=True, indisready=True, indislive=True,
                indisreplident=False, indkey=keys, indcollation=[0] * len(keys),
                indclass=[_INT8_BTREE_OPCLASS] * len(keys), indoption=[0] * len(keys),
            ))  # fmt: skip
        return rows

    def pg_constraint(self) -> list[tuple]:
        """Each collection's primary key (on rid); from PostgreSQL 18 on also the NOT NULL
        constraint of each key column."""
        rows = []
        for rel in self._relations():
            keys = [n for n, column in enumerate(rel.columns, start=1) if column.is_key]
            rows.append(catalog_row(
                "pg_constraint", oid=rel.oid + CONSTRAINT_OID_OFFSET, conname=f"{rel.name}_pkey",
                connamespace=namespace_oid(rel.schema), contype="p", convalidated=True,
                conrelid=rel.oid, conindid=rel.oid + INDEX_OID_OFFSET, confupdtype=" ",
                confdeltype=" ", confmatchtype=" ", conislocal=True, connoinherit=True,
                conkey=keys,
            ))  # fmt: skip
            rows += [
                catalog_row(
                    "pg_constraint", oid=oid, conname=f"{rel.name}_{column}_not_null",
                    connamespace=namespace_oid(rel.schema), contype="n", convalidated=True,
                    conrelid=rel.oid, confupdtype=" ", confdeltype=" ", confmatchtype=" ",
                    conislocal=True, conkey=[attnum],
                )
                for oid, attnum, column in self._not_null(rel)
            ]  # fmt: skip
        return rows

    def _not_null(self, rel: Relation) -> list[tuple[int, int, str]]:
        """(oid, attnum, column) of the NOT NULL constraints PostgreSQL 18 keeps in pg_constraint."""
        if self.major < 18:
            return []
        return [
            (rel.oid + NOT_NULL_OID_OFFSET + (n - 1) * NOT_NULL_OID_STRIDE, n, column.name)
            for n, column in enumerate(rel.columns, start=1)
            if column.is_key
        ]

    def index_definitions(self) -> list[tuple]:
        """pg_get_indexdef's text of each primary key index, and its columns."""
        rows = []
        for rel in self._relations():
            keys = [quote_ident(column.name) for column in rel.columns if column.is_key]
            definition = (
                f"CREATE UNIQUE INDEX {quote_ident(rel.name + '_pkey')} ON "
                f"{quote_ident(rel.schema)}.{quote_ident(rel.name)} USING btree "
                f"({', '.join(keys)})"
            )
            rows.append((rel.oid + INDEX_OID_OFFSET, definition, keys))
        return rows

    def constraint_definitions(self) -> list[tuple]:
        """pg_get_constraintdef's text of each primary key (and NOT NULL constraint)."""
        rows = []
        for rel in self._relations():
            keys = ", ".join(quote_ident(c.name) for c in rel.columns if c.is_key)
            rows.append((rel.oid + CONSTRAINT_OID_OFFSET, f"PRIMARY KEY ({keys})"))
            rows += [(oid, f"NOT NULL {quote_ident(name)}") for oid, _, name in self._not_null(rel)]
        return rows

    def pg_publication_rel(self) -> list[tuple]:
        """One row per table named by a publication (not FOR ALL TABLES): its column list
        (attribute numbers) and row filter, kept even where TABLES IN SCHEMA of its schema
        makes the publication ignore them, as PostgreSQL 15 keeps them."""
        oids = {row[1]: row[0] for row in self.pg_publication()}
        by_name = {(rel.schema, rel.name): rel for rel in self._relations()}
        rows = []
        for publication in self.publications.list():
            if publication.all_tables:
                continue
            for key in publication.tables:
                relation = by_name.get(key)
                if relation is None:
                    continue
                options = publication.options.get(key, NO_OPTIONS)
                rows.append(catalog_row(
                    "pg_publication_rel", oid=oids[publication.name] * 1000 + relation.oid % 1000,
                    prpubid=oids[publication.name], prrelid=relation.oid,
                    prattrs=_attnums(relation, options.columns), prqual=options.row_filter,
                ))  # fmt: skip
        return rows

    def pg_publication_namespace(self) -> list[tuple]:
        """One row per schema a publication publishes the tables of (TABLES IN SCHEMA)."""
        oids = {row[1]: row[0] for row in self.pg_publication()}
        return [
            (oids[p.name] * 1000 + namespace_oid(schema) % 1000, oids[p.name],
             namespace_oid(schema))
            for p in self.publications.list()
            for schema in p.schemas
        ]  # fmt: skip

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
        return self.publications.publication_table_rows(self._relations())

    def publication_rel(self) -> list[tuple]:
        """Backs pg_get_publication_tables(pubname): the published columns (all, or the column
        list's) and row filter of every published relation."""
        by_name = {(rel.schema, rel.name): rel for rel in self._relations()}
        rows = []
        for pubname, schema, table, attnames, rowfilter in self.publications.publication_table_rows(
            by_name.values()
        ):
            rel = by_name[(schema, table)]
            rows.append((pubname, rel.oid, _attnums(rel, attnames), rowfilter))
        return rows

    def providers(self) -> dict[str, Callable[[], list[tuple]]]:
        """The row providers, each computing its rows again only after the relations or the
        publications changed (the rows are read by many queries, and change seldom)."""
        if self._providers is None:
            self._providers = {
                name: Derived(rows, self._state) for name, rows in self._computed().items()
            }
        return self._providers

    def _state(self) -> tuple:
        """What the rows derive from, by value: every relation's name, columns and replica
        identity, and the publications' generation."""
        return self.publications.generation, [
            (rel.oid, rel.schema, rel.name, rel.replident, rel.version,
             [(c.name, c.type_oid, c.typmod, c.is_key) for c in rel.columns])
            for rel in self._relations()
        ]  # fmt: skip

    def _computed(self) -> dict[str, Callable[[], list[tuple]]]:
        return {
            "pg_database": lambda: [database_row(*row) for row in self.pg_database()],
            "pg_namespace": self.pg_namespace,
            "pg_class": self.pg_class,
            "pg_attribute": self.pg_attribute,
            "pg_index": self.pg_index,
            "pg_constraint": self.pg_constraint,
            "pg_publication_rel": self.pg_publication_rel,
            "pg_publication_namespace": self.pg_publication_namespace,
            "pgshim_index_definitions": self.index_definitions,
            "pgshim_constraint_definitions": self.constraint_definitions,
            "pg_publication": self.pg_publication,
            "pg_publication_tables": self.pg_publication_tables,
            "pgshim_publication_rel": self.publication_rel,
        }


def database_row(oid: int, name: str, owner: int, encoding: int, collate: str, ctype: str,
                 template: bool, allow: bool, limit: int) -> tuple:  # fmt: skip
    """A pg_database row with all of PostgreSQL 15's columns."""
    return catalog_row(
        "pg_database", oid=oid, datname=name, datdba=owner, encoding=encoding,
        datlocprovider="c", datistemplate=template, datallowconn=allow, datconnlimit=limit,
        datfrozenxid=716, datminmxid=1, dattablespace=DEFAULT_TABLESPACE_OID,
        datcollate=collate, datctype=ctype,
        datacl=["=c/postgres", "postgres=CTc/postgres"] if template else None,
    )  # fmt: skip


def bootstrap_role(users: dict) -> str:
    """The name of the bootstrap role (oid 10, the owner of every object): "postgres" when it
    is a configured user or no users are configured, else the first superuser."""
    if not users or "postgres" in users:
        return "postgres"
    superusers = sorted(name for name, user in users.items() if user.superuser)
    return (superusers or sorted(users))[0]


def acl_role(name: str) -> str:
    """A role's name as an aclitem shows it (double quotes unless letters, digits and _)."""
    if name and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
        return name
    return '"' + name.replace('"', '""') + '"'


def role_rows(users: dict, session: object) -> list[tuple]:
    """pg_roles: the configured users (superuser and replication as configured; a superuser
    has every attribute, as PostgreSQL's bootstrap role), or with no [users] the bootstrap role
    "postgres" and the session's own user name, both superusers. The bootstrap role, oid 10,
    owns every object: "postgres" when it is a configured user, else the first superuser."""
    if users:
        declared = {name: (user.superuser, user.replication) for name, user in users.items()}
    else:
        declared = {"postgres": (True, True)}
        user = getattr(getattr(session, "info", None), "user", None)
        if user:
            declared.setdefault(user, (True, True))
    owner = bootstrap_role(users)
    taken = {SUPERUSER_OID}
    rows = []
    for name in sorted(declared):
        superuser, replication = declared[name]
        if name == owner:
            oid = SUPERUSER_OID
        else:
            oid = 16_400 + crc32(name.encode()) % 1_000
            while oid in taken:
                oid += 1
            taken.add(oid)
        rows.append(catalog_row(
            "pg_roles", rolname=name, rolsuper=superuser, rolinherit=True,
            rolcreaterole=superuser, rolcreatedb=superuser, rolcanlogin=True,
            rolreplication=superuser or replication, rolconnlimit=-1, rolpassword="********",
            rolbypassrls=superuser, oid=oid,
        ))  # fmt: skip
    return rows


def authid_rows(users: dict, session: object) -> list[tuple]:
    """pg_authid, which only a superuser may read: pg_roles' roles, with no password (pgshim
    shows no secret in SQL: pg_dumpall dumps the roles without their passwords)."""
    if not is_superuser(session):
        raise PgError(INSUFFICIENT_PRIVILEGE, "permission denied for table pg_authid")
    return [
        catalog_row(
            "pg_authid",
            oid=row[12],
            rolname=row[0],
            rolsuper=row[1],
            rolinherit=row[2],
            rolcreaterole=row[3],
            rolcreatedb=row[4],
            rolcanlogin=row[5],
            rolreplication=row[6],
            rolbypassrls=row[10],
            rolconnlimit=row[7],
        )
        for row in role_rows(users, session)
    ]


def user_rows(users: dict, session: object) -> list[tuple]:
    """pg_user: pg_roles' login roles under pg_user's column names."""
    return [
        catalog_row(
            "pg_user",
            usename=row[0],
            usesysid=row[12],
            usecreatedb=row[4],
            usesuper=row[1],
            userepl=row[6],
            usebypassrls=row[10],
            passwd="********",
        )
        for row in role_rows(users, session)
    ]


def _attnums(relation: Relation, columns: Iterable[str] | None) -> list[int] | None:
    """The attribute numbers of ``columns`` (None: no column list), in the table's order."""
    if columns is None:
        return None
    wanted = set(columns)
    return [n for n, column in enumerate(relation.columns, start=1) if column.name in wanted]


def _key_count(rel: Relation) -> int:
    return sum(1 for column in rel.columns if column.is_key)


class PublicationDDL:
    """CREATE/ALTER/DROP PUBLICATION from the SQL session, applied to the publication store;
    column lists and row filters are checked against the relations pgshim knows."""

    def __init__(
        self, store: PublicationStore, relations: Callable[[], Iterable[Relation]] = list
    ) -> None:
        self.store = store
        self._relations = relations

    def _find(self, schema: str, table: str) -> Relation | None:
        for relation in self._relations():
            if relation.schema == schema and relation.name == table:
                return relation
        return None

    def _schemas(self, names: list[str | None]) -> list[str]:
        """The schemas of TABLES IN SCHEMA, which must exist and not be pg_catalog."""
        known = {"pg_catalog", DEFAULT_SCHEMA} | {rel.schema for rel in self._relations()}
        schemas = []
        for name in names:
            schema = DEFAULT_SCHEMA if name is None else name  # CURRENT_SCHEMA: search_path's
            if schema not in known:
                raise PgError("3F000", f'schema "{schema}" does not exist')
            if schema == "pg_catalog":
                raise PgError(
                    "22023",
                    f'cannot add schema "{schema}" to publication',
                    detail="This operation is not supported for system schemas.",
                )
            if schema not in schemas:
                schemas.append(schema)
        return schemas

    def create(
        self, name: str, all_tables: bool, tables: list[TableSpec],
        schemas: list[str | None], actions: set[str] | None,
    ) -> None:  # fmt: skip
        in_schemas = self._schemas(schemas)
        items = table_items(tables, self._find)
        if in_schemas:
            _no_column_lists(name, items)
        publish = ", ".join(ALL_ACTIONS) if actions is None else ", ".join(sorted(actions))
        if self.store.find(name) is None:
            check_identity(_draft(name, all_tables, items, publish), self._find)
        self.store.create(
            name, all_tables=all_tables, tables=items, publish=publish, schemas=in_schemas
        )

    def alter(
        self, name: str, action: str, tables: list[TableSpec],
        schemas: list[str | None], actions: set[str] | None,
    ) -> None:  # fmt: skip
        publish = None if actions is None else ", ".join(sorted(actions))
        in_schemas = self._schemas(schemas)
        if action == "drop":
            self.store.alter(
                name, drop_tables=[spec.name for spec in tables], drop_schemas=in_schemas
            )
            return
        items = table_items(tables, self._find)
        before = self.store.find(name)
        if before is None:
            self.store.alter(name)  # its "does not exist"
            return
        if action in ("add", "set") and not before.all_tables:
            kept_schemas = before.schemas if action == "add" else ()
            if in_schemas or kept_schemas:
                _no_column_lists(name, items)
            if (
                action == "add"
                and in_schemas
                and any(options.columns is not None for options in before.options.values())
            ):
                raise PgError(
                    "22023",
                    f'cannot add schema to publication "{name}"',
                    detail="Schemas cannot be added if any tables that specify a column list "
                    "are already part of the publication.",
                )
        kept = [] if action == "set" else _items_of(before)
        draft = _draft(name, before.all_tables, kept + items, publish or ", ".join(before.actions))
        check_identity(draft, self._find)
        if action == "add":
            self.store.alter(name, add_tables=items, add_schemas=in_schemas)
        elif action == "set":
            self.store.alter(name, set_tables=items, set_schemas=in_schemas)
        else:
            self.store.alter(name, publish=publish)

    def drop(self, name: str, if_exists: bool) -> None:
        self.store.drop(name, if_exists=if_exists)


def _no_column_lists(name: str, items: list[TableItem]) -> None:
    """PostgreSQL 15 takes no column list in a publication with TABLES IN SCHEMA."""
    for item in items:
        if not isinstance(item, str) and item[1].columns is not None:
            raise PgError(
                "22023",
                f'cannot use column list for relation "{item[0]}" in publication "{name}"',
                detail="Column lists cannot be specified in publications containing FOR TABLES "
                "IN SCHEMA elements.",
            )


def _items_of(publication: Publication) -> list[TableItem]:
    return [
        (f"{schema}.{table}", publication.options[(schema, table)])
        if (schema, table) in publication.options else f"{schema}.{table}"
        for schema, table in publication.tables
    ]  # fmt: skip


def _draft(name: str, all_tables: bool, items: list[TableItem], publish: str) -> Publication:
    """The publication as a command would leave it, to check before storing anything."""
    options = {}
    tables = []
    for item in items:
        table, table_options = (item, None) if isinstance(item, str) else item
        key = parse_table_name(table)
        tables.append(key)
        if table_options is not None:
            options[key] = table_options
    return Publication(name, all_tables, parse_publish(publish), tuple(tables), options)
