"""The engine's errors in PostgreSQL's words: SQLSTATE, message, hint and position.

What resolve.py could not catch before the query ran comes back as the engine's exception (its
class name and message); each kind PostgreSQL reports differently is translated here, in one
place, and anything else keeps its message (without the engine's prefix) under the SQLSTATE class
PostgreSQL uses for that kind of failure. ``place`` then finds what the error is about in the
statement's tree, for PostgreSQL's position (and the names as the client wrote them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pglast import ast, enums

from pgshim.errors import PgError
from pgshim.sql.check import arg_type
from pgshim.sql.constants import constant_location

FUNCTION_HINT = (
    "No function matches the given name and argument types. "
    "You might need to add explicit type casts."
)
OPERATOR_HINT = (
    "No operator matches the given name and argument types. "
    "You might need to add explicit type casts."
)
PREFIX_OPERATOR_HINT = (
    "No operator matches the given name and argument type. "
    "You might need to add an explicit type cast."
)


class EngineQueryError(PgError):
    """A translated engine error; ``about`` says what in the statement it is about."""

    def __init__(self, sqlstate: str, message: str, about: tuple[str, ...] = (), **kw: str) -> None:
        super().__init__(sqlstate, message, **kw)
        self.about = about


# DuckDB's names of types -> PostgreSQL's (as format_type prints them)
_TYPE_NAMES = {
    "INTEGER_LITERAL": "integer", "STRING_LITERAL": "unknown", "NULL": "unknown",
    '"NULL"': "unknown", "BOOLEAN": "boolean", "BOOL": "boolean", "TINYINT": "smallint",
    "SMALLINT": "smallint", "INT16": "smallint", "INTEGER": "integer", "INT32": "integer",
    "BIGINT": "bigint", "INT64": "bigint", "HUGEINT": "numeric", "INT128": "numeric",
    "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "oid", "UINT32": "oid",
    "UBIGINT": "pg_lsn", "UINT64": "pg_lsn", "UHUGEINT": "xid8", "FLOAT": "real",
    "DOUBLE": "double precision", "VARCHAR": "text", "BLOB": "bytea", "DATE": "date",
    "TIME": "time without time zone", "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "INTERVAL": "interval",
    "UUID": "uuid", "JSON": "json",
}  # fmt: skip
_OUT_OF_RANGE = {"smallint": "smallint", "integer": "integer", "bigint": "bigint"}
_OPERATORS = frozenset({
    "+", "-", "*", "/", "//", "%", "^", "**", "~~", "!~~", "~~*", "!~~*", "||", "<", ">", "<=",
    ">=", "=", "<>", "!=", "&", "|", "#", "<<", ">>", "~", "@", "@>", "<@", "&&",
})  # fmt: skip
_DUCK_OPERATORS = {"//": "/", "**": "^", "!=": "<>"}


def pg_type_name(duck: str) -> str:
    duck = duck.strip()
    if duck.endswith("[]"):
        return pg_type_name(duck[:-2]) + "[]"
    base = duck.split("(", 1)[0].strip()
    if base == "DECIMAL":
        return "numeric"
    return _TYPE_NAMES.get(duck, _TYPE_NAMES.get(base, duck.lower()))


@dataclass(frozen=True, slots=True)
class _Rule:
    kinds: tuple[str, ...]  # the engine's exception classes it applies to ("" for any)
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], EngineQueryError]


def _rule(kinds: str, pattern: str) -> Callable[[Callable], Callable]:
    def register(build: Callable[[re.Match[str]], EngineQueryError]) -> Callable:
        _RULES.append(_Rule(tuple(kinds.split()), re.compile(pattern), build))
        return build

    return register


_RULES: list[_Rule] = []


@_rule("BinderException", r'Referenced column "(?P<c>[^"]+)" (not found|was not found)')
def _missing_column(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42703", f'column "{m["c"]}" does not exist', ("column", m["c"]))


@_rule("BinderException", r'Table "(?P<t>[^"]+)" does not have a column named "(?P<c>[^"]+)"')
def _missing_qualified(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42703", f"column {m['t']}.{m['c']} does not exist", ("column", m["t"], m["c"])
    )


@_rule("BinderException", r'Referenced table "(?P<t>[^"]+)" not found')
def _missing_table(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42P01", f'missing FROM-clause entry for table "{m["t"]}"', ("table_ref", m["t"])
    )


@_rule("BinderException", r'Ambiguous reference to column name "(?P<c>[^"]+)"')
def _ambiguous(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42702", f'column reference "{m["c"]}" is ambiguous', ("column", m["c"])
    )


@_rule("BinderException", r"argument types '(?P<f>[^(]+)\((?P<a>.*)\)'")
def _no_function(m: re.Match[str]) -> EngineQueryError:
    name, types = m["f"], [pg_type_name(t) for t in _split_types(m["a"])]
    if name in _OPERATORS or name == "regexp_matches" and len(types) == 2:
        op = {"regexp_matches": "~"}.get(name, _DUCK_OPERATORS.get(name, name))
        if len(types) == 1:
            return EngineQueryError(
                "42883", f"operator does not exist: {op} {types[0]}", ("operator", op),
                hint=PREFIX_OPERATOR_HINT,
            )  # fmt: skip
        return EngineQueryError(
            "42883", f"operator does not exist: {' '.join((types[0], op, types[-1]))}",
            ("operator", op), hint=OPERATOR_HINT,
        )  # fmt: skip
    return EngineQueryError(
        "42883", f"function {name}({', '.join(types)}) does not exist",
        ("function", name, ", ".join(types)), hint=FUNCTION_HINT,
    )  # fmt: skip


@_rule("CatalogException", r"Scalar Function with name (?P<f>\S+) does not exist")
def _unknown_function(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42883", f"function {m['f']}() does not exist", ("function", m["f"], None),
        hint=FUNCTION_HINT,
    )  # fmt: skip


@_rule("BinderException", r'column "(?P<c>[^"]+)" must appear in the GROUP BY clause')
def _ungrouped(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42803",
        f'column "{m["c"]}" must appear in the GROUP BY clause or be used in an aggregate function',
        ("ungrouped", m["c"]),
    )


@_rule("BinderException", r"aggregate function calls cannot be nested")
def _nested(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42803", "aggregate function calls cannot be nested", ("nested",))


@_rule("BinderException", r"WHERE clause cannot contain aggregates")
def _aggregate_in_where(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42803", "aggregate functions are not allowed in WHERE", ("where_agg",))


@_rule("BinderException", r"(?P<c>ORDER|GROUP)( BY)? term out of range")
def _position_out_of_range(m: re.Match[str]) -> EngineQueryError:
    clause = f"{m['c']} BY"
    return EngineQueryError(
        "42P10", f"{clause} position is not in select list", ("position", clause)
    )


@_rule("BinderException", r"Set operations can only apply to expressions with the same number")
def _set_widths(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42601", "each UNION query must have the same number of columns", ("set_width",)
    )


@_rule("BinderException", r"GROUP BY clause cannot contain aggregates")
def _aggregate_in_group_by(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "42803", "aggregate functions are not allowed in GROUP BY", ("group_agg",)
    )


@_rule("BinderException", r"LIMIT/OFFSET cannot be negative")
def _negative_limit(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("2201W", "LIMIT must not be negative", ("limit",))


@_rule("InvalidInputException OutOfRangeException", r"Division by zero")
def _division_by_zero(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("22012", "division by zero")


@_rule("InvalidInputException", r"More than one row returned by a subquery")
def _subquery_rows(_m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "21000", "more than one row returned by a subquery used as an expression"
    )


@_rule(
    "ConversionException", r"""Could not convert string (['"])(?P<v>.*?)\1 to (?P<t>[A-Z0-9_]+)"""
)
def _bad_input(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "22P02",
        f'invalid input syntax for type {pg_type_name(m["t"])}: "{m["v"]}"',
        ("literal", m["v"]),
    )


@_rule("ConversionException", r'invalid (?P<t>date|timestamp|time) field format: "(?P<v>.*?)"')
def _bad_datetime(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError(
        "22007", f'invalid input syntax for type {m["t"]}: "{m["v"]}"', ("literal", m["v"])
    )


@_rule("ConversionException", r"out of range for the destination type (?P<t>[A-Z0-9_]+)")
def _cast_out_of_range(m: re.Match[str]) -> EngineQueryError:
    return _out_of_range(pg_type_name(m["t"]))


@_rule("OutOfRangeException", r"Overflow in \w+ of (?P<t>[A-Z0-9_]+)")
def _overflow(m: re.Match[str]) -> EngineQueryError:
    return _out_of_range(pg_type_name(m["t"]))


def _out_of_range(pg_type: str) -> EngineQueryError:
    if pg_type in _OUT_OF_RANGE:
        return EngineQueryError("22003", f"{pg_type} out of range")
    return EngineQueryError("22003", "value out of range: overflow")


@_rule("CatalogException", r"Table with name (?P<t>\S+) does not exist")
def _missing_relation(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42P01", f'relation "{m["t"]}" does not exist')


@_rule("CatalogException", r'Type with name "?(?P<t>[^"!\s]+)"? does not exist')
def _missing_type(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42704", f'type "{m["t"]}" does not exist')


@_rule("InvalidInputException", r'unrecognized privilege type: "(?P<p>[^"]*)"')
def _unknown_privilege(m: re.Match[str]) -> EngineQueryError:  # has_*_privilege's macros
    return EngineQueryError("22023", f'unrecognized privilege type: "{m["p"]}"')


@_rule("InvalidInputException", r'relation "(?P<t>[^"]*)" does not exist')
def _no_such_relation(m: re.Match[str]) -> EngineQueryError:  # has_table_privilege's macro
    return EngineQueryError("42P01", f'relation "{m["t"]}" does not exist')


@_rule("", r'unrecognized configuration parameter "(?P<p>[^"]+)"')
def _unknown_setting(m: re.Match[str]) -> EngineQueryError:
    return EngineQueryError("42704", f'unrecognized configuration parameter "{m["p"]}"')


# the SQLSTATE PostgreSQL reports that kind of failure with, when no rule above knew the error
_KIND_STATES = {
    "BinderException": "42000",  # an error in analysing the query (class 42)
    "CatalogException": "42704",
    "ParserException": "42601",
    "ConversionException": "22000",
    "InvalidInputException": "22000",
    "OutOfRangeException": "22003",
    "NotImplementedException": "0A000",
    "InterruptException": "57014",
    "PermissionException": "42501",
    "OutOfMemoryException": "53200",
    "TypeMismatchException": "42804",
    "InvalidTypeException": "42804",
    "ValueOutOfRangeException": "22003",
    "SyntaxException": "42601",
    "ParameterNotResolvedException": "42P18",
    "ParameterNotAllowedException": "42P02",
    "ConstraintException": "23000",
    "DependencyException": "2BP01",
    "TransactionException": "25000",
    "SequenceException": "2200H",
    "IOException": "58030",
    "InternalException": "XX000",  # the engine's own failure, as PostgreSQL's elog(ERROR)
    "FatalException": "XX000",
}
_UNKNOWN_KIND = "42000"  # a kind not listed: most likely the query's, found in analysing it
_PREFIX = re.compile(r"^[A-Z][A-Za-z ]* Error: ")


def translate(error: Exception) -> PgError:
    """The PostgreSQL error for an engine error (an EngineError carries DuckDB's class name)."""
    text = str(error).splitlines()[0] if str(error) else ""
    kind = getattr(error, "kind", type(error).__name__)
    if kind == "OutOfMemoryException":
        return PgError("53200", "out of memory", detail=f"The query exceeds query_memory: {text}")
    if kind == "PermissionException":
        return PgError("42501", "permission denied")
    for rule in _RULES:
        if rule.kinds and kind not in rule.kinds:
            continue
        found = rule.pattern.search(text)
        if found is not None:
            return rule.build(found)
    message = _PREFIX.sub("", text).rstrip("!").strip()
    message = message[:1].lower() + message[1:] if message[1:2].islower() else message
    return PgError(_KIND_STATES.get(kind, _UNKNOWN_KIND), message or "internal error")


# --- positions -----------------------------------------------------------------------------------


def place(
    error: PgError, node: ast.Node, source: str, qualify: Callable[[str], str | None]
) -> PgError:
    """The error with what it is about found in the statement's tree: PostgreSQL's position, the
    function's name as written, the set operation and clause; ``qualify`` names the FROM item a
    bare column belongs to."""
    about = getattr(error, "about", ())
    if not about or error.position is not None:
        return error
    what = about[0]
    found: ast.Node | None = None
    if what == "column":
        fields = about[1:]
        found = _unique(
            n for n in _walk(node) if isinstance(n, ast.ColumnRef) and _names(n)[-len(fields):] == fields
        )  # fmt: skip
    elif what == "ungrouped":
        refs = [
            n for n in _walk(node) if isinstance(n, ast.ColumnRef) and _names(n)[-1:] == about[1:]
        ]
        if refs:
            found = refs[0]
            names = _names(found)
            owner = ".".join(names) if len(names) > 1 else _qualified(qualify, about[1])
            error.message = error.message.replace(f'"{about[1]}"', f'"{owner}"', 1)
    elif what == "operator":
        found = _unique(
            n for n in _walk(node)
            if isinstance(n, ast.A_Expr) and n.name and _op_name(n) in (about[1], _LIKE.get(about[1]))
        )  # fmt: skip
    elif what == "function":
        calls = [
            n for n in _walk(node)
            if isinstance(n, ast.FuncCall) and n.funcname[-1].sval.lower() in _ALIASES.get(about[1], (about[1],))
        ]  # fmt: skip
        found = _unique(calls)
        if found is not None:
            written = ".".join(part.sval for part in found.funcname)
            types = (
                about[2]
                if about[2] is not None
                else ", ".join(arg_type(a) for a in found.args or ())
            )
            error.message = f"function {written}({types}) does not exist"
    elif what == "literal":
        found = _constant(source, "sval", about[1])
    elif what == "nested":
        found = _first(
            n for n in _walk(node) if isinstance(n, ast.FuncCall) and any(isinstance(a, ast.FuncCall) for a in n.args or ())
        )  # fmt: skip
        found = found.args[0] if found is not None else None
    elif what == "where_agg":
        where = getattr(node, "whereClause", None)
        found = _first(n for n in _walk(where) if isinstance(n, ast.FuncCall))
    elif what == "group_agg":
        groups, targets = getattr(node, "groupClause", None), getattr(node, "targetList", None)
        found = _first(n for n in _walk([groups, targets]) if isinstance(n, ast.FuncCall))
    elif what == "position":
        found = _place_position(error, node, source, about[1])
    elif what == "set_width":
        found = _place_set_width(error, node)
    elif what == "limit":
        offset = getattr(node, "limitOffset", None)
        if _negative(offset) and not _negative(getattr(node, "limitCount", None)):
            error.sqlstate, error.message = "2201X", "OFFSET must not be negative"
    location = getattr(found, "location", None)
    if isinstance(location, int) and location >= 0:
        error.position = location + 1
    return error


_ALIASES = {"substring": ("substring", "substr"), "strpos": ("strpos", "position")}
_LIKE = {"~~": "~~", "!~~": "!~~"}


def _op_name(node: ast.A_Expr) -> str:
    if node.kind in (enums.A_Expr_Kind.AEXPR_LIKE, enums.A_Expr_Kind.AEXPR_ILIKE):
        return {"~~": "~~", "!~~": "!~~", "~~*": "~~*", "!~~*": "!~~*"}.get(
            node.name[-1].sval, "~~"
        )
    return node.name[-1].sval


def _place_position(error: PgError, node: ast.Node, source: str, clause: str) -> _Located | None:
    items = getattr(node, "sortClause" if clause == "ORDER BY" else "groupClause", None) or ()
    width = len(getattr(node, "targetList", None) or ())
    for item in items:
        value = item.node if isinstance(item, ast.SortBy) else item
        constant = isinstance(value, ast.A_Const) and isinstance(value.val, ast.Integer)
        if constant and not 1 <= value.val.ival <= width:
            error.message = f"{clause} position {value.val.ival} is not in select list"
            return _constant(source, "ival", value.val.ival)
    return None


def _place_set_width(error: PgError, node: ast.Node) -> ast.Node | None:
    for set_op in _walk(node):
        if not isinstance(set_op, ast.SelectStmt) or set_op.op == enums.SetOperation.SETOP_NONE:
            continue
        left, right = _width(set_op.larg), _width(set_op.rarg)
        if left is not None and right is not None and left != right:
            name = enums.SetOperation(set_op.op).name.removeprefix("SETOP_")
            error.message = f"each {name} query must have the same number of columns"
            return set_op.rarg.targetList[0] if set_op.rarg.targetList else None
    return None


@dataclass(frozen=True, slots=True)
class _Located:
    location: int


def _constant(source: str, kind: str, value: object) -> _Located | None:
    found = constant_location(source, kind, value)
    return None if found is None else _Located(found)


def _width(node: ast.SelectStmt) -> int | None:
    if node.op != enums.SetOperation.SETOP_NONE:
        return _width(node.larg)
    if node.valuesLists:
        return len(node.valuesLists[0])
    return len(node.targetList or ())


def _negative(node: object) -> bool:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer | ast.Float):
        return str(
            node.val.ival if isinstance(node.val, ast.Integer) else node.val.fval
        ).startswith("-")
    return isinstance(node, ast.A_Expr) and node.name[-1].sval == "-" and node.lexpr is None


def _qualified(qualify: Callable[[str], str | None], column: str) -> str:
    owner = qualify(column)
    return f"{owner}.{column}" if owner else column


def _names(ref: ast.ColumnRef) -> tuple[str, ...]:
    return tuple(part.sval if isinstance(part, ast.String) else "*" for part in ref.fields)


def _unique(nodes: Iterator[ast.Node] | list[ast.Node]) -> ast.Node | None:
    found = list(nodes)
    return found[0] if len(found) == 1 else None


def _first(nodes: Iterator[ast.Node]) -> ast.Node | None:
    return next(nodes, None)


def _walk(node: object) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
        return
    if not isinstance(node, ast.Node):
        return
    yield node
    for name in type(node).__slots__:
        value = getattr(node, name)
        if isinstance(value, ast.Node | tuple | list):
            yield from _walk(value)


def _split_types(text: str) -> list[str]:
    """DuckDB's argument type list, split at its top-level commas (DECIMAL(18,3) is one)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        current += ch
    return [part.strip() for part in [*parts, current] if part.strip()]
