"""CREATE / ALTER / DROP PUBLICATION: read from pglast's tree, carried out by the server's
PublicationHandler (which checks column lists and row filters against the tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pglast import ast, enums

from pgshim.errors import PgError
from pgshim.logical.publications import (
    Publication,
    TableItem,
    TableOptions,
    parse_table_name,
)
from pgshim.logical.rowfilter import compile_filter
from pgshim.logical.transactions import Relation

if TYPE_CHECKING:
    from pgshim.sql.session import PublicationHandler

_ACTIONS = {"insert", "update", "delete", "truncate"}
_SYSTEM_COLUMNS = frozenset({"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"})
_ALTER_ACTIONS = {
    enums.AlterPublicationAction.AP_AddObjects: "add",
    enums.AlterPublicationAction.AP_SetObjects: "set",
    enums.AlterPublicationAction.AP_DropObjects: "drop",
}


@dataclass
class TableSpec:
    """One ``TABLE name [(columns)] [WHERE (expr)]`` of a publication command."""

    name: str  # "schema.table" or "table"
    columns: list[str] | None = None
    where: ast.Node | None = None


@dataclass
class PublicationCommand:
    verb: str  # "create" | "alter" | "drop"
    name: str
    all_tables: bool = False
    tables: list[TableSpec] = field(default_factory=list)
    schemas: list[str | None] = field(
        default_factory=list
    )  # TABLES IN SCHEMA; None: CURRENT_SCHEMA
    actions: set[str] | None = None  # None: not given (defaults / unchanged)
    alter_action: str = ""  # "add" | "set" | "drop" | "options"
    if_exists: bool = False

    @property
    def tag(self) -> str:
        return f"{self.verb.upper()} PUBLICATION"

    def apply(self, handler: PublicationHandler) -> None:
        if self.verb == "create":
            handler.create(self.name, self.all_tables, self.tables, self.schemas, self.actions)
        elif self.verb == "alter":
            handler.alter(self.name, self.alter_action, self.tables, self.schemas, self.actions)
        else:
            handler.drop(self.name, self.if_exists)


def _objects(
    objects: tuple | None, *, dropping: bool = False
) -> tuple[list[TableSpec], list[str | None]]:
    """The tables and the schemas (TABLES IN SCHEMA) a command names."""
    tables: list[TableSpec] = []
    schemas: list[str | None] = []
    for spec in objects or ():
        if spec.pubobjtype == enums.PublicationObjSpecType.PUBLICATIONOBJ_TABLES_IN_SCHEMA:
            if spec.name not in schemas:
                schemas.append(spec.name)
            continue
        if spec.pubobjtype == enums.PublicationObjSpecType.PUBLICATIONOBJ_TABLES_IN_CUR_SCHEMA:
            if None not in schemas:
                schemas.append(None)
            continue
        table = spec.pubtable
        relation = table.relation
        name = (
            f"{relation.schemaname}.{relation.relname}" if relation.schemaname else relation.relname
        )
        columns = [part.sval for part in table.columns] if table.columns else None
        if dropping and table.whereClause is not None:
            raise PgError(
                "42601", "cannot use a WHERE clause when removing a table from a publication"
            )
        if dropping and columns is not None:
            raise PgError(
                "42601", "column list must not be specified in ALTER PUBLICATION ... DROP"
            )
        tables.append(TableSpec(name, columns, table.whereClause))
    return tables, schemas


def _with_options(options: tuple | None) -> set[str] | None:
    actions: set[str] | None = None
    seen: set[str] = set()
    for option in options or ():
        key = option.defname.lower()
        if key in seen:
            raise PgError("42601", "conflicting or redundant options")
        seen.add(key)
        value = getattr(option.arg, "sval", None)
        if value is None and option.arg is not None:
            value = str(getattr(option.arg, "ival", getattr(option.arg, "boolval", "")))
        if key == "publish":
            actions = {part.strip().lower() for part in (value or "").split(",") if part.strip()}
            unknown = actions - _ACTIONS
            if unknown:
                raise PgError(
                    "22023",
                    f'unrecognized value for publication option "publish": "{unknown.pop()}"',
                )
        elif key != "publish_via_partition_root":
            raise PgError("42601", f'unrecognized publication parameter: "{key}"')
    return actions


def publication_command(node: ast.Node) -> PublicationCommand:
    """The command a CREATE / ALTER / DROP PUBLICATION statement's tree stands for."""
    if isinstance(node, ast.CreatePublicationStmt):
        tables, schemas = _objects(node.pubobjects)
        return PublicationCommand(
            "create",
            node.pubname,
            all_tables=bool(node.for_all_tables),
            tables=tables,
            schemas=schemas,
            actions=_with_options(node.options),
        )
    if isinstance(node, ast.AlterPublicationStmt):
        if node.options:
            return PublicationCommand(
                "alter", node.pubname, actions=_with_options(node.options), alter_action="options"
            )
        action = _ALTER_ACTIONS[node.action]
        tables, schemas = _objects(node.pubobjects, dropping=action == "drop")
        return PublicationCommand(
            "alter", node.pubname, tables=tables, schemas=schemas, alter_action=action
        )
    names = [part.sval for part in node.objects]
    if len(names) != 1:
        raise PgError("0A000", "dropping several publications at once is not supported")
    return PublicationCommand("drop", names[0], if_exists=bool(node.missing_ok))


def table_items(
    specs: list[TableSpec],
    find: Callable[[str, str], Relation | None],
    default_schema: str = "public",
) -> list[TableItem]:
    """What the store keeps of each table: its name, and its column list and row filter
    checked against the table as PostgreSQL checks them (a table with either must exist)."""
    items: list[TableItem] = []
    seen: dict[tuple[str, str], TableSpec] = {}
    for spec in specs:
        schema, table = parse_table_name(spec.name, default_schema)
        earlier = seen.get((schema, table))
        if earlier is not None:
            if spec.columns is not None or earlier.columns is not None:
                raise PgError("42710", f'conflicting or redundant column lists for table "{table}"')
            if spec.where is not None or earlier.where is not None:
                raise PgError(
                    "42710", f'conflicting or redundant WHERE clauses for table "{table}"'
                )
            continue
        seen[(schema, table)] = spec
        if spec.columns is None and spec.where is None:
            items.append(spec.name)
            continue
        relation = find(schema, table)
        if relation is None:
            raise PgError("42P01", f'relation "{spec.name}" does not exist')
        names = {column.name for column in relation.columns}
        columns = None
        if spec.columns is not None:
            for position, name in enumerate(spec.columns):
                if name in _SYSTEM_COLUMNS:
                    raise PgError(
                        "42P10", f'cannot use system column "{name}" in publication column list'
                    )
                if name not in names:
                    raise PgError("42703", f'column "{name}" of relation "{table}" does not exist')
                if name in spec.columns[:position]:
                    raise PgError("42710", f'duplicate column "{name}" in publication column list')
            columns = tuple(spec.columns)
        row_filter = None
        if spec.where is not None:
            row_filter = compile_filter(spec.where, relation.columns, table).text
        items.append((f"{schema}.{table}", TableOptions(columns, row_filter)))
    return items


def check_identity(publication: Publication, find: Callable[[str, str], Relation | None]) -> None:
    """A publication that publishes updates or deletes sends each row's replica identity: its
    column lists must cover it. PostgreSQL refuses the UPDATE or DELETE on the table itself;
    pgshim cannot refuse RedDB's writes, so it refuses the publication."""
    if not publication.actions & {"update", "delete"}:
        return
    for (schema, table), options in publication.options.items():
        relation = find(schema, table)
        if relation is None or options.columns is None:
            continue
        missing = [c.name for c in relation.columns if c.is_key and c.name not in options.columns]
        if missing:
            raise PgError(
                "42P10",
                f'cannot publish UPDATE or DELETE of table "{table}" with this column list',
                detail="Column list used by the publication does not cover the replica identity.",
                hint=f'Add column "{missing[0]}" to the column list, or publish only inserts '
                "(WITH (publish = 'insert, truncate')).",
            )
