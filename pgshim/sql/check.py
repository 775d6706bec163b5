"""What a query may name: an allow-list walk over PostgreSQL's syntax tree (pure).

A query reaches the engine only when it reads nothing but the relations pgshim defines (and its own
CTEs), calls nothing but the functions pgshim defines or the built-ins listed here, casts only to
PostgreSQL types pgshim knows, and writes nothing (no INTO, no row locks, no data-modifying WITH).
Everything else gets PostgreSQL's error before any work is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pglast import ast, enums

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.sql.parse import MAX_PARAMETER

# Built-ins the engine evaluates as PostgreSQL does, none of which can reach files, the network,
# the engine's settings or unbounded memory.
ENGINE_FUNCTIONS = frozenset({
    # aggregates
    "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "string_agg",
    "array_agg", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
    # window functions
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    # numbers
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "sqrt", "exp", "ln",
    "log", "sign", "div",
    # text
    "length", "char_length", "character_length", "octet_length", "lower", "upper", "substr",
    "substring", "position", "strpos", "replace", "btrim", "ltrim", "rtrim", "left", "right",
    "concat", "concat_ws", "split_part", "starts_with", "reverse", "md5", "to_hex", "chr",
    "ascii", "translate", "regexp_replace",
    # time
    "now", "statement_timestamp", "transaction_timestamp", "clock_timestamp", "date_trunc",
    "date_part", "extract", "age", "to_timestamp", "timezone",
    # arrays and sets
    "array_length", "array_to_string", "cardinality", "unnest", "generate_series",
    "generate_subscripts",
    # JSON (json_build_object is DuckDB's json_object)
    "json_build_object",
    # the parser's form of LIKE ... ESCAPE (the engine gets ESCAPE back)
    "like_escape",
})  # fmt: skip

# Types of the catalog pgshim serves beyond pgtypes: regnamespace (an oid printing a schema name)
# and regproc (a function's, as pg_dump reads it)
CATALOG_TYPES = frozenset({"regnamespace", "regproc"})

# Set-returning built-ins the engine streams only as FROM items: elsewhere it builds the whole
# series as one list first, outside its memory limit and deaf to interrupts.
FROM_ONLY_FUNCTIONS = frozenset({"generate_series"})

_LOCK_TAGS = {
    enums.LockClauseStrength.LCS_FORKEYSHARE: "SELECT FOR KEY SHARE",
    enums.LockClauseStrength.LCS_FORSHARE: "SELECT FOR SHARE",
    enums.LockClauseStrength.LCS_FORNOKEYUPDATE: "SELECT FOR NO KEY UPDATE",
    enums.LockClauseStrength.LCS_FORUPDATE: "SELECT FOR UPDATE",
}
_DML_TAGS = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
}
CATALOG_SCHEMAS = (None, "pg_catalog")

# Functions that change the server's state (its replication slots): refused, as writes, in a
# session that may change nothing (see check_no_writes)
WRITING_FUNCTIONS = frozenset({
    "pg_create_logical_replication_slot", "pg_drop_replication_slot",
    "pgshim_create_history_slot", "pg_logical_slot_get_changes",
    "pg_logical_slot_get_binary_changes", "pg_replication_slot_advance",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Names:
    """What a query may refer to, beyond ENGINE_FUNCTIONS (all lower case)."""

    relations: frozenset[str]
    functions: frozenset[str]  # scalar functions pgshim defines
    table_functions: frozenset[str]  # set-returning functions pgshim defines (FROM only)
    collections: frozenset[str] = frozenset()  # tables of the collections (names as they are)
    schema: str = "public"  # the schema the collections are in
    information_schema: frozenset[str] = frozenset()  # its views (information_schema.<name>)


def check_query(node: ast.SelectStmt, names: Names) -> int:
    """Raise PostgreSQL's error for anything the query may not do; the highest $n it uses."""
    if node.intoClause is not None:
        raise _read_only("SELECT INTO")
    checker = _Checker(names)
    checker.visit(node, frozenset())
    return checker.max_param


def check_no_writes(node: ast.Node) -> None:
    """PostgreSQL's error for a read-only transaction if the query calls a writing function."""
    for call in _calls(node):
        parts = [part.sval for part in call.funcname]
        if parts[-1].lower() in WRITING_FUNCTIONS and (len(parts) == 1 or parts[0] == "pg_catalog"):
            raise _read_only(f"{parts[-1].lower()}()")


def _calls(node: object) -> Iterator[ast.FuncCall]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _calls(item)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.FuncCall):
        yield node
    for child in _children(node):
        yield from _calls(child)


class _Checker:
    def __init__(self, names: Names) -> None:
        self.names = names
        self.max_param = 0

    def visit(self, node: object, ctes: frozenset[str]) -> None:
        if isinstance(node, tuple | list):
            for item in node:
                self.visit(item, ctes)
            return
        if not isinstance(node, ast.Node):
            return
        if isinstance(node, ast.SelectStmt):
            self._select(node, ctes)
            return
        if type(node) in _DML_TAGS:
            raise _read_only(_DML_TAGS[type(node)])
        if isinstance(node, ast.RangeVar):
            self._relation(node, ctes)
        elif isinstance(node, ast.RangeFunction):
            self._range_function(node, ctes)
            return
        elif isinstance(node, ast.FuncCall):
            self._function(node, allowed=self.names.functions)
        elif isinstance(node, ast.TypeName):
            _check_type(node)
        elif isinstance(node, ast.ParamRef):
            self._param(node)
        elif isinstance(node, ast.RangeTableFunc | ast.XmlExpr | ast.XmlSerialize):
            raise PgError("0A000", "XML functions are not supported by pgshim")
        for child in _children(node):
            self.visit(child, ctes)

    def _select(self, node: ast.SelectStmt, ctes: frozenset[str]) -> None:
        if node.intoClause is not None:
            raise _read_only("SELECT INTO")
        for clause in node.lockingClause or ():
            raise _read_only(_LOCK_TAGS.get(clause.strength, "SELECT FOR UPDATE"))
        with_clause = node.withClause
        if with_clause is not None:
            names = [cte.ctename for cte in with_clause.ctes]
            if with_clause.recursive:
                ctes = ctes | frozenset(names)
            for cte in with_clause.ctes:
                if type(cte.ctequery) in _DML_TAGS:
                    raise _read_only(_DML_TAGS[type(cte.ctequery)])
                self.visit(cte.ctequery, ctes)
                ctes = ctes | {cte.ctename}
        for name in type(node).__slots__:
            if name != "withClause":
                self.visit(getattr(node, name), ctes)

    def _relation(self, node: ast.RangeVar, ctes: frozenset[str]) -> None:
        name = node.relname
        if node.catalogname is None and node.schemaname is None and name in ctes:
            return
        if (
            node.catalogname is None
            and node.schemaname in CATALOG_SCHEMAS
            and name.lower() in self.names.relations
        ):
            return
        if (
            node.catalogname is None
            and node.schemaname == "information_schema"
            and name in self.names.information_schema
        ):
            return
        if (
            node.catalogname is None
            and node.schemaname in (None, self.names.schema)
            and name in self.names.collections
        ):
            return  # a collection: its rows need a privilege, checked when they are read
        shown = ".".join(part for part in (node.catalogname, node.schemaname, name) if part)
        raise PgError("42P01", f'relation "{shown}" does not exist', position=_position(node))

    def _range_function(self, node: ast.RangeFunction, ctes: frozenset[str]) -> None:
        allowed = self.names.functions | self.names.table_functions
        for item in node.functions or ():
            call = item[0] if isinstance(item, tuple | list) else item
            if isinstance(call, ast.FuncCall):
                self._function(call, allowed=allowed, in_from=True)
                self.visit(call.args, ctes)
            else:
                self.visit(call, ctes)
        self.visit(node.coldeflist, ctes)

    def _function(self, node: ast.FuncCall, allowed: frozenset[str], in_from: bool = False) -> None:
        parts = [part.sval for part in node.funcname]
        name = parts[-1].lower()
        schema = parts[-2].lower() if len(parts) > 1 else None
        if (
            len(parts) <= 2
            and schema in CATALOG_SCHEMAS
            and (name in allowed or name in ENGINE_FUNCTIONS)
        ):
            if name in FROM_ONLY_FUNCTIONS and not in_from and name not in allowed:
                raise PgError(
                    "0A000",
                    f"pgshim supports {name}() only in FROM",
                    hint=f"Write SELECT ... FROM {name}(...) AS t(x).",
                )
            return
        arg_types = ", ".join(arg_type(arg) for arg in node.args or ())
        raise PgError(
            "42883",
            f"function {'.'.join(parts)}({arg_types}) does not exist",
            hint="No function matches the given name and argument types. "
            "You might need to add explicit type casts.",
            position=_position(node),
        )

    def _param(self, node: ast.ParamRef) -> None:
        if not 1 <= node.number <= MAX_PARAMETER:
            raise PgError("42P02", f"there is no parameter ${node.number}")
        self.max_param = max(self.max_param, node.number)


def _children(node: ast.Node) -> Iterator[object]:
    for name in type(node).__slots__:
        value = getattr(node, name)
        if isinstance(value, ast.Node | tuple | list):
            yield value


def _check_type(node: ast.TypeName) -> None:
    parts = [part.sval for part in node.names or ()]
    if not parts:
        return  # %TYPE references and the like carry no name here
    name = parts[-1]
    schema = parts[-2].lower() if len(parts) > 1 else None
    known = schema in CATALOG_SCHEMAS and len(parts) <= 2
    if known and name.lower() in CATALOG_TYPES:
        return
    if known:
        try:
            pgtypes.lookup(name)
        except KeyError:
            known = False
    if not known:
        raise PgError("42704", f'type "{".".join(parts)}" does not exist', position=_position(node))


def arg_type(arg: object) -> str:
    if isinstance(arg, ast.A_Const):
        value = arg.val
        if isinstance(value, ast.Integer):
            return "integer"
        if isinstance(value, ast.Float):
            return "numeric"
        if isinstance(value, ast.Boolean):
            return "boolean"
        return "unknown"
    if isinstance(arg, ast.TypeCast) and arg.typeName is not None and arg.typeName.names:
        return arg.typeName.names[-1].sval
    return "unknown"


def _position(node: ast.Node) -> int | None:
    """PostgreSQL's 1-based position of a node of the statement's text."""
    location = getattr(node, "location", None)
    return location + 1 if isinstance(location, int) and location >= 0 else None


def _read_only(command: str) -> PgError:
    return PgError("25006", f"cannot execute {command} in a read-only transaction")
