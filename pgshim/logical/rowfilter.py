"""Publication row filters (``FOR TABLE t WHERE (expr)``): checked and evaluated as PostgreSQL 15.

The expression is compiled from pglast's tree into small Python closures over a row's typed
values (never text evaluated): columns of the table, constants, built-in operators, a few
immutable built-in functions, AND/OR/NOT, IS [NOT] NULL, IS TRUE/..., IN, BETWEEN, IS DISTINCT
FROM, NULLIF, COALESCE, GREATEST/LEAST, CASE, ``= ANY (ARRAY[...])`` and casts that PostgreSQL
does without text conversion. What PostgreSQL refuses in a publication WHERE expression gets its
error (SQLSTATE, message, detail, position); what PostgreSQL allows but pgshim does not evaluate
(regular expressions, other functions) gets 0A000. A row is published when the expression is
true (NULL is not). Compiling also prints the expression as PostgreSQL's pg_get_expr does
(``((age > 30) AND (name <> 'x'::text))``), the text catalogs show and tablesync sends back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.transactions import Column

Value = Any
Eval = Callable[[Sequence[Value]], Value]

_SIMPLE_ONLY = (
    "Only columns, constants, built-in operators, built-in data types, built-in collations, "
    "and immutable built-in functions are allowed."
)
_MUTABLE = "User-defined or built-in mutable functions are not allowed."

# type families: how values compare and combine
_INT, _NUM, _FLOAT, _TEXT, _BOOL, _DATE, _TS, _TSTZ, _TIME, _INTERVAL = (
    "int", "numeric", "float", "text", "bool", "date", "timestamp", "timestamptz", "time",
    "interval",
)  # fmt: skip
_UNKNOWN, _NULL, _OTHER = "unknown", "null", "other"
_FAMILY = {
    20: _INT, 21: _INT, 23: _INT, 26: _INT, 1700: _NUM, 700: _FLOAT, 701: _FLOAT,
    25: _TEXT, 1043: _TEXT, 1042: _TEXT, 19: _TEXT, 16: _BOOL, 1082: _DATE, 1114: _TS,
    1184: _TSTZ, 1083: _TIME, 1186: _INTERVAL,
}  # fmt: skip
_NUMERIC_FAMILIES = (_INT, _NUM, _FLOAT)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_LIKE = {"~~": (False, False), "!~~": (True, False), "~~*": (False, True), "!~~*": (True, True)}
_AGGREGATES = frozenset({
    "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or",
    "every", "json_agg", "jsonb_agg", "stddev", "variance",
})  # fmt: skip
_WINDOW_ONLY = frozenset({"row_number", "rank", "dense_rank", "lag", "lead", "ntile"})
_MUTABLE_FUNCTIONS = frozenset({
    "now", "random", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
    "timeofday", "nextval", "currval", "setval", "txid_current", "pg_current_wal_lsn",
    "gen_random_uuid", "to_timestamp", "age", "current_setting",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Expr:
    run: Eval
    family: str
    text: str  # as pg_get_expr prints it
    oid: int = 0  # the PostgreSQL type, when known
    const: bool = False
    node: object = None  # a literal's node, to place errors about it


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A compiled row filter: ``matches(values)`` over a row of the relation it was made for."""

    text: str
    columns: frozenset[str]
    _run: Eval

    def matches(self, values: Sequence[Value]) -> bool:
        return self._run(values) is True


def compile_filter(
    node: ast.Node, columns: Sequence[Column], table: str, statement: str = ""
) -> RowFilter:
    """PostgreSQL's checks of a publication WHERE expression, and its evaluator; ``statement``
    (the text the node's locations refer to) places errors."""
    compiler = _Compiler(list(columns), table)
    expr = compiler.expr(node)
    if expr.family not in (_BOOL, _NULL):
        raise PgError(
            "42804",
            f"argument of PUBLICATION WHERE must be type boolean, not type {_type_name(expr)}",
            position=_position(node),
        )
    return RowFilter(expr.text, frozenset(compiler.used), expr.run)


def parse_filter(text: str, columns: Sequence[Column], table: str) -> RowFilter:
    """A stored filter's text (as compile_filter printed it) compiled again."""
    try:
        stmt = parse_sql(f"SELECT FROM t WHERE {text}")[0].stmt
    except ParseError as error:
        raise PgError("42601", f"invalid row filter: {error}") from None
    return compile_filter(stmt.whereClause, columns, table)


def _position(node: object) -> int | None:
    """Where PostgreSQL places an error about ``node``: its leftmost token (a cast's operand,
    an operator's left side)."""
    location = getattr(node, "location", None)
    here = location + 1 if isinstance(location, int) and location >= 0 else None
    inner = getattr(node, "arg", None) if isinstance(node, ast.TypeCast) else None
    if inner is not None:
        left = _position(inner)
        if left is not None and (here is None or left < here):
            return left
    return here


def _type_name(expr: _Expr) -> str:
    if expr.oid:
        return pgtypes.BY_OID[expr.oid].sql_name
    return {_UNKNOWN: "unknown", _NULL: "unknown", _BOOL: "boolean", _INT: "integer"}.get(
        expr.family, expr.family
    )


def _refuse(node: object, detail: str = _SIMPLE_ONLY) -> PgError:
    return PgError(
        "0A000", "invalid publication WHERE expression", detail=detail, position=_position(node)
    )


def _const(value: Value, family: str, text: str, oid: int = 0) -> _Expr:
    return _Expr(lambda row: value, family, text, oid, const=True)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _coerce_text(text: str, oid: int, node: object) -> Value:
    """An untyped literal read as ``oid`` (PostgreSQL's input function), or its 22P02."""
    try:
        if oid in (1184, 1114):
            value = pgtypes.text_in(1114, text) if oid == 1114 else _timestamptz(text)
        elif oid == 16:
            parsed = _parse_bool(text)
            if parsed is None:
                raise ValueError(text)
            value = parsed
        else:
            value = pgtypes.text_in(oid, text)
    except (ValueError, InvalidOperation, ArithmeticError):
        raise PgError(
            "22P02",
            f'invalid input syntax for type {pgtypes.BY_OID[oid].sql_name}: "{text}"',
            position=_position(node),
        ) from None
    if _FAMILY.get(oid) == _TEXT and oid == 1042:
        value = str(value).rstrip(" ")
    return value


def _timestamptz(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _parse_bool(text: str) -> bool | None:
    from pgshim.plugins.base import parse_bool

    return parse_bool(text.strip())


def _cast_text(value: Value, oid: int) -> str:
    return f"{_literal(pgtypes.text_out(oid, value))}::{_cast_name(oid)}"


def _cast_name(oid: int) -> str:
    return "bpchar" if oid == 1042 else pgtypes.BY_OID[oid].sql_name  # format_type(oid, -1)


class _Compiler:
    def __init__(self, columns: list[Column], table: str) -> None:
        self.columns = {column.name: (index, column) for index, column in enumerate(columns)}
        self.table = table
        self.used: set[str] = set()

    def expr(self, node: object) -> _Expr:
        handler = getattr(self, "_" + type(node).__name__, None)
        if handler is None:
            raise _refuse(node)
        return handler(node)

    # --- leaves ------------------------------------------------------------------------------

    def _ColumnRef(self, node: ast.ColumnRef) -> _Expr:
        fields = node.fields or ()
        if any(isinstance(part, ast.A_Star) for part in fields):
            raise _refuse(node)
        names = [part.sval for part in fields]
        if len(names) > 1 and names[-2] != self.table:
            raise PgError(
                "42P01",
                f'missing FROM-clause entry for table "{names[-2]}"',
                position=_position(node),
            )
        name = names[-1]
        if name not in self.columns:
            if name in ("xmin", "xmax", "cmin", "cmax", "ctid", "tableoid"):
                raise _refuse(node, "System columns are not allowed.")
            raise PgError("42703", f'column "{name}" does not exist', position=_position(node))
        index, column = self.columns[name]
        self.used.add(name)
        family = _FAMILY.get(column.type_oid, _OTHER)
        oid = column.type_oid
        if family == _OTHER:
            render = pgtypes.text_renderer(oid)

            def run(row: Sequence[Value]) -> Value:
                value = row[index] if index < len(row) else None
                return None if value is None else render(value)

        elif oid == 1042:

            def run(row: Sequence[Value]) -> Value:
                value = row[index] if index < len(row) else None
                return None if value is None else str(value).rstrip(" ")

        else:

            def run(row: Sequence[Value]) -> Value:
                return row[index] if index < len(row) else None

        return _Expr(run, family, _quote_ident(name), oid)

    def _A_Const(self, node: ast.A_Const) -> _Expr:
        if node.isnull:
            return _const(None, _NULL, "NULL")
        value = node.val
        if isinstance(value, ast.Integer):
            return _const(value.ival, _INT, str(value.ival), 23)
        if isinstance(value, ast.Float):
            text = value.fval
            if text.isdigit():  # an integer literal too wide for int4 is an int8
                return _const(int(text), _INT, _cast_text(int(text), 20), 20)
            return _const(Decimal(text), _NUM, text, 1700)
        if isinstance(value, ast.Boolean):
            return _const(bool(value.boolval), _BOOL, "true" if value.boolval else "false", 16)
        if isinstance(value, ast.String):
            return _Expr(lambda row: value.sval, _UNKNOWN, _literal(value.sval), 0, True, node)
        raise _refuse(node)

    def _ParamRef(self, node: ast.ParamRef) -> _Expr:
        raise PgError("42P02", f"there is no parameter ${node.number}", position=_position(node))

    def _TypeCast(self, node: ast.TypeCast) -> _Expr:
        names = [part.sval for part in node.typeName.names]
        try:
            target = pgtypes.lookup(names[-1]).oid
        except KeyError:
            raise PgError(
                "42704", f'type "{".".join(names)}" does not exist', position=_position(node)
            ) from None
        inner = self.expr(node.arg)
        family = _FAMILY.get(target)
        if family is None:
            raise _refuse(node)
        if inner.const and inner.family == _UNKNOWN:
            value = _coerce_text(inner.run(()), target, node)
            return _const(value, family, _cast_text(value, target), target)
        if inner.const and inner.family == _NULL:
            return _const(None, family, f"NULL::{_cast_name(target)}", target)
        if not _cast_allowed(inner.family, family):
            raise _refuse(node)  # a cast through text (CoerceViaIO): not a simple expression
        convert = _converter(family)
        run = inner.run

        def cast(row: Sequence[Value]) -> Value:
            value = run(row)
            return None if value is None else convert(value)

        if inner.const:
            value = cast(())
            return _const(value, family, f"({inner.text})::{_cast_name(target)}", target)
        return _Expr(cast, family, f"({inner.text})::{_cast_name(target)}", target)

    def _CollateClause(self, node: ast.CollateClause) -> _Expr:
        inner = self.expr(node.arg)
        if inner.family not in (_TEXT, _UNKNOWN):
            raise PgError(
                "42804",
                f"collations are not supported by type {_type_name(inner)}",
                position=_position(node),
            )
        name = ".".join(part.sval for part in node.collname)
        if name not in ("C", "POSIX", "default", "pg_catalog.C", "pg_catalog.default"):
            raise PgError(
                "42704", f'collation "{name}" for encoding "UTF8" does not exist',
                position=_position(node),
            )  # fmt: skip
        return inner

    # --- operators ---------------------------------------------------------------------------

    def _A_Expr(self, node: ast.A_Expr) -> _Expr:
        kind = enums.A_Expr_Kind
        names = [part.sval for part in node.name]
        op = names[-1]
        if len(names) > 1 and names[0] != "pg_catalog":
            raise _refuse(node, "User-defined operators are not allowed.")
        if node.kind == kind.AEXPR_OP:
            if node.lexpr is None:
                return self._unary(node, op)
            return self._binary(node, op, self.expr(node.lexpr), self.expr(node.rexpr))
        if node.kind in (kind.AEXPR_LIKE, kind.AEXPR_ILIKE):
            return self._binary(node, op, self.expr(node.lexpr), self.expr(node.rexpr))
        if node.kind == kind.AEXPR_IN:
            left = self.expr(node.lexpr)
            items = [self.expr(item) for item in node.rexpr]
            return self._any(node, "=" if op == "=" else "<>", left, items, every=op != "=")
        if node.kind in (kind.AEXPR_OP_ANY, kind.AEXPR_OP_ALL):
            if not isinstance(node.rexpr, ast.A_ArrayExpr):
                raise _refuse(node.rexpr)
            items = [self.expr(item) for item in node.rexpr.elements or ()]
            left = self.expr(node.lexpr)
            return self._any(node, op, left, items, every=node.kind == kind.AEXPR_OP_ALL)
        if node.kind in (kind.AEXPR_BETWEEN, kind.AEXPR_NOT_BETWEEN):
            left = self.expr(node.lexpr)
            low, high = (self.expr(item) for item in node.rexpr)
            ge = self._binary(node, ">=", left, low)
            le = self._binary(node, "<=", left, high)
            both = _and([ge, le])
            return _not(both) if node.kind == kind.AEXPR_NOT_BETWEEN else both
        if node.kind in (kind.AEXPR_DISTINCT, kind.AEXPR_NOT_DISTINCT):
            left, right = self.expr(node.lexpr), self.expr(node.rexpr)
            self._binary(node, "=", left, right)  # the types must compare
            equal = self._distinct_equal(left, right)
            negate = node.kind == kind.AEXPR_DISTINCT
            words = "IS DISTINCT FROM" if negate else "IS NOT DISTINCT FROM"
            return _Expr(
                lambda row: equal(row) != negate, _BOOL, f"({left.text} {words} {right.text})", 16
            )
        if node.kind == kind.AEXPR_NULLIF:
            left, right = self.expr(node.lexpr), self.expr(node.rexpr)
            equal = self._binary(node, "=", left, right).run
            run = left.run
            return _Expr(
                lambda row: None if equal(row) is True else run(row),
                left.family,
                f"NULLIF({left.text}, {right.text})",
                left.oid,
            )
        raise _refuse(node)

    def _unary(self, node: ast.A_Expr, op: str) -> _Expr:
        inner = self.expr(node.rexpr)
        if op not in ("-", "+") or inner.family not in (*_NUMERIC_FAMILIES, _INTERVAL):
            raise PgError(
                "42883", f"operator does not exist: {op} {_type_name(inner)}",
                position=_position(node),
            )  # fmt: skip
        run = inner.run
        if op == "+":
            return inner
        return _Expr(
            lambda row: None if (v := run(row)) is None else -v,
            inner.family, f"(- {inner.text})", inner.oid, inner.const,
        )  # fmt: skip

    def _unify(self, node: object, op: str, left: _Expr, right: _Expr) -> tuple[_Expr, _Expr]:
        """Both sides in one comparable family: an untyped literal takes the other's type."""
        if left.family == _UNKNOWN and right.family not in (_UNKNOWN, _NULL):
            left = self._typed_literal(left, right, node)
        elif right.family == _UNKNOWN and left.family not in (_UNKNOWN, _NULL):
            right = self._typed_literal(right, left, node)
        elif left.family == _UNKNOWN and right.family == _UNKNOWN:
            left = _Expr(left.run, _TEXT, left.text + "::text", 25, True)
            right = _Expr(right.run, _TEXT, right.text + "::text", 25, True)
        families = {left.family, right.family}
        if _NULL in families or len(families) == 1 or families <= set(_NUMERIC_FAMILIES):
            return left, right
        if families <= {_DATE, _TS, _TSTZ}:
            return left, right
        raise PgError(
            "42883",
            f"operator does not exist: {_type_name(left)} {op} {_type_name(right)}",
            hint="No operator matches the given name and argument types. "
            "You might need to add explicit type casts.",
            position=_position(node),
        )

    def _typed_literal(self, literal: _Expr, other: _Expr, node: object) -> _Expr:
        if other.family == _OTHER:  # compared with the column's text output
            return _const(literal.run(()), _OTHER, literal.text, 25)
        oid = other.oid or {_INT: 23, _NUM: 1700, _FLOAT: 701, _BOOL: 16}.get(other.family, 25)
        value = _coerce_text(literal.run(()), oid, literal.node or node)
        if other.family in (_INT, _NUM):
            text = pgtypes.text_out(oid, value)
        elif oid == 16:
            text = "true" if value else "false"
        else:
            text = _cast_text(value, oid)
        return _const(value, other.family, text, oid)

    def _binary(self, node: object, op: str, left: _Expr, right: _Expr) -> _Expr:
        if op in _LIKE:
            return self._like(node, op, left, right)
        if op in ("~", "!~", "~*", "!~*"):
            raise PgError(
                "0A000",
                "pgshim does not evaluate regular expressions in publication WHERE expressions",
                position=_position(node),
            )
        left, right = self._unify(node, op, left, right)
        text = f"({left.text} {op} {right.text})"
        lrun, rrun = left.run, right.run
        if op in _COMPARISONS:
            compare = _COMPARISONS[op]
            mixed = _FLOAT in (left.family, right.family)

            def run(row: Sequence[Value]) -> Value:
                a, b = lrun(row), rrun(row)
                if a is None or b is None:
                    return None
                if mixed:
                    a, b = float(a), float(b)
                return compare(a, b)

            return _Expr(run, _BOOL, text, 16)
        if op == "||":
            if not {left.family, right.family} <= {_TEXT, _NULL}:
                raise self._no_operator(node, op, left, right)
            return _Expr(
                lambda row: None if (a := lrun(row)) is None or (b := rrun(row)) is None
                else str(a) + str(b),
                _TEXT, text, 25,
            )  # fmt: skip
        if op in ("+", "-", "*", "/", "%") and {left.family, right.family} <= {
            *_NUMERIC_FAMILIES, _NULL,
        }:  # fmt: skip
            family = max((left.family, right.family), key=lambda f: (f != _NULL, _rank(f)))
            arithmetic = _arithmetic(op, family)

            def calc(row: Sequence[Value]) -> Value:
                a, b = lrun(row), rrun(row)
                if a is None or b is None:
                    return None
                return arithmetic(a, b)

            oid = {_INT: max(left.oid, right.oid, 23) if family == _INT else 0}.get(family, 0)
            oid = oid or {_NUM: 1700, _FLOAT: 701}.get(family, 23)
            return _Expr(calc, family, text, oid)
        raise self._no_operator(node, op, left, right)

    def _no_operator(self, node: object, op: str, left: _Expr, right: _Expr) -> PgError:
        return PgError(
            "42883",
            f"operator does not exist: {_type_name(left)} {op} {_type_name(right)}",
            hint="No operator matches the given name and argument types. "
            "You might need to add explicit type casts.",
            position=_position(node),
        )

    def _like(self, node: object, op: str, left: _Expr, right: _Expr) -> _Expr:
        left, right = self._unify(node, op, left, right)
        if left.family != _TEXT and left.family != _NULL:
            raise self._no_operator(node, op, left, right)
        negate, fold = _LIKE[op]
        lrun, rrun = left.run, right.run

        def run(row: Sequence[Value]) -> Value:
            text, pattern = lrun(row), rrun(row)
            if text is None or pattern is None:
                return None
            if fold:
                text, pattern = text.lower(), pattern.lower()
            return like(text, pattern) != negate

        return _Expr(run, _BOOL, f"({left.text} {op} {right.text})", 16)

    def _any(self, node: object, op: str, left: _Expr, items: list[_Expr], *, every: bool) -> _Expr:
        tests = [self._binary(node, op, left, item).run for item in items]
        word = "ALL" if every else "ANY"
        unified = [self._unify(node, op, left, item)[1].text for item in items]
        text = f"({left.text} {op} {word} (ARRAY[{', '.join(unified)}]))"

        def run(row: Sequence[Value]) -> Value:
            results = [test(row) for test in tests]
            if every:
                return False if False in results else (None if None in results else True)
            return True if True in results else (None if None in results else False)

        return _Expr(run, _BOOL, text, 16)

    def _distinct_equal(self, left: _Expr, right: _Expr) -> Eval:
        left, right = self._unify(None, "=", left, right)
        lrun, rrun = left.run, right.run

        def equal(row: Sequence[Value]) -> bool:
            a, b = lrun(row), rrun(row)
            if a is None or b is None:
                return a is None and b is None
            return bool(a == b)

        return equal

    # --- boolean structure -------------------------------------------------------------------

    def _BoolExpr(self, node: ast.BoolExpr) -> _Expr:
        args = [self._boolean(arg, node) for arg in node.args]
        if node.boolop == enums.BoolExprType.NOT_EXPR:
            return _not(args[0])
        if node.boolop == enums.BoolExprType.AND_EXPR:
            return _and(args)
        return _or(args)

    def _boolean(self, node: object, parent: object) -> _Expr:
        expr = self.expr(node)
        if expr.family == _UNKNOWN:
            value = _coerce_text(expr.run(()), 16, node)
            return _const(value, _BOOL, "true" if value else "false", 16)
        if expr.family not in (_BOOL, _NULL):
            raise PgError(
                "42804",
                f"argument of {_bool_word(parent)} must be type boolean, not type "
                f"{_type_name(expr)}",
                position=_position(node),
            )
        return expr

    def _NullTest(self, node: ast.NullTest) -> _Expr:
        inner = self.expr(node.arg)
        negate = node.nulltesttype == enums.NullTestType.IS_NOT_NULL
        run = inner.run
        words = "IS NOT NULL" if negate else "IS NULL"
        return _Expr(lambda row: (run(row) is None) != negate, _BOOL, f"({inner.text} {words})")

    def _BooleanTest(self, node: ast.BooleanTest) -> _Expr:
        inner = self._boolean(node.arg, node)
        kinds = enums.BoolTestType
        test, words = {
            kinds.IS_TRUE: (lambda v: v is True, "IS TRUE"),
            kinds.IS_NOT_TRUE: (lambda v: v is not True, "IS NOT TRUE"),
            kinds.IS_FALSE: (lambda v: v is False, "IS FALSE"),
            kinds.IS_NOT_FALSE: (lambda v: v is not False, "IS NOT FALSE"),
            kinds.IS_UNKNOWN: (lambda v: v is None, "IS UNKNOWN"),
            kinds.IS_NOT_UNKNOWN: (lambda v: v is not None, "IS NOT UNKNOWN"),
        }[node.booltesttype]
        run = inner.run
        return _Expr(lambda row: test(run(row)), _BOOL, f"({inner.text} {words})", 16)

    def _CaseExpr(self, node: ast.CaseExpr) -> _Expr:
        subject = self.expr(node.arg) if node.arg is not None else None
        branches: list[tuple[Eval, _Expr]] = []
        for when in node.args:
            if subject is not None:
                condition = self._binary(when, "=", subject, self.expr(when.expr))
            else:
                condition = self._boolean(when.expr, node)
            branches.append((condition.run, self.expr(when.result)))
        default = self.expr(node.defresult) if node.defresult is not None else None
        results = [result for _, result in branches] + ([default] if default else [])
        family = _common_family(node, results)
        parts = [f"WHEN {cond_text} THEN {result.text}" for cond_text, result in zip(
            [self._case_text(when, subject) for when in node.args],
            [result for _, result in branches], strict=True,
        )]  # fmt: skip
        text = "CASE " + " ".join(parts) + (f" ELSE {default.text}" if default else "") + " END"

        def run(row: Sequence[Value]) -> Value:
            for condition, result in branches:
                if condition(row) is True:
                    return result.run(row)
            return default.run(row) if default is not None else None

        return _Expr(run, family, text, results[0].oid if results else 0)

    def _case_text(self, when: ast.CaseWhen, subject: _Expr | None) -> str:
        condition = self.expr(when.expr)
        return f"({subject.text} = {condition.text})" if subject else condition.text

    def _CoalesceExpr(self, node: ast.CoalesceExpr) -> _Expr:
        args = [self.expr(arg) for arg in node.args]
        family = _common_family(node, args)
        runs = [arg.run for arg in args]

        def run(row: Sequence[Value]) -> Value:
            for each in runs:
                value = each(row)
                if value is not None:
                    return value
            return None

        return _Expr(run, family, f"COALESCE({', '.join(a.text for a in args)})", args[0].oid)

    def _MinMaxExpr(self, node: ast.MinMaxExpr) -> _Expr:
        args = [self.expr(arg) for arg in node.args]
        family = _common_family(node, args)
        greatest = node.op == enums.MinMaxOp.IS_GREATEST
        pick = max if greatest else min
        runs = [arg.run for arg in args]

        def run(row: Sequence[Value]) -> Value:
            values = [v for v in (each(row) for each in runs) if v is not None]
            return pick(values) if values else None

        word = "GREATEST" if greatest else "LEAST"
        return _Expr(run, family, f"{word}({', '.join(a.text for a in args)})", args[0].oid)

    def _FuncCall(self, node: ast.FuncCall) -> _Expr:
        names = [part.sval for part in node.funcname]
        name = names[-1].lower()
        if len(names) > 1 and names[0] != "pg_catalog":
            raise _refuse(node, "User-defined or built-in mutable functions are not allowed.")
        if node.over is not None:
            raise PgError(
                "42P20", "window functions are not allowed in WHERE", position=_position(node)
            )
        if name in _AGGREGATES or node.agg_star:
            raise PgError(
                "42803", "aggregate functions are not allowed in WHERE", position=_position(node)
            )
        args = [self.expr(arg) for arg in node.args or ()]
        if name in _MUTABLE_FUNCTIONS:
            raise _refuse(node, _MUTABLE)
        function = _FUNCTIONS.get((name, tuple(_function_family(a) for a in args)))
        if function is None:
            types = ", ".join(_type_name(a) for a in args)
            raise PgError(
                "42883",
                f"function {name}({types}) does not exist",
                hint="No function matches the given name and argument types. "
                "You might need to add explicit type casts.",
                position=_position(node),
            )
        apply, family, oid = function
        runs = [arg.run for arg in args]

        def run(row: Sequence[Value]) -> Value:
            values = [each(row) for each in runs]
            return None if None in values else apply(*values)

        return _Expr(run, family, f"{name}({', '.join(a.text for a in args)})", oid)

    def _SQLValueFunction(self, node: ast.SQLValueFunction) -> _Expr:
        raise _refuse(node, _MUTABLE)

    def _SubLink(self, node: ast.SubLink) -> _Expr:
        raise _refuse(node)


def _bool_word(parent: object) -> str:
    if isinstance(parent, ast.BoolExpr):
        return {0: "AND", 1: "OR", 2: "NOT"}[int(parent.boolop)]
    if isinstance(parent, ast.BooleanTest):
        return "IS TRUE"
    return "CASE"


def _and(args: list[_Expr]) -> _Expr:
    runs = [arg.run for arg in args]

    def run(row: Sequence[Value]) -> Value:
        unknown = False
        for each in runs:
            value = each(row)
            if value is False:
                return False
            if value is None:
                unknown = True
        return None if unknown else True

    return _Expr(run, _BOOL, "(" + " AND ".join(arg.text for arg in args) + ")", 16)


def _or(args: list[_Expr]) -> _Expr:
    runs = [arg.run for arg in args]

    def run(row: Sequence[Value]) -> Value:
        unknown = False
        for each in runs:
            value = each(row)
            if value is True:
                return True
            if value is None:
                unknown = True
        return None if unknown else False

    return _Expr(run, _BOOL, "(" + " OR ".join(arg.text for arg in args) + ")", 16)


def _not(arg: _Expr) -> _Expr:
    run = arg.run
    return _Expr(
        lambda row: None if (v := run(row)) is None else not v, _BOOL, f"(NOT {arg.text})", 16
    )


def _rank(family: str) -> int:
    return {_INT: 0, _NUM: 1, _FLOAT: 2}.get(family, -1)


def _cast_allowed(source: str, target: str) -> bool:
    if source in (target, _NULL):
        return True
    if source in _NUMERIC_FAMILIES and target in _NUMERIC_FAMILIES:
        return True
    return {source, target} <= {_DATE, _TS, _TSTZ}


def _converter(family: str) -> Callable[[Value], Value]:
    if family == _INT:
        return _to_int
    if family == _NUM:
        return lambda v: (
            v if isinstance(v, Decimal) else Decimal(repr(v) if isinstance(v, float) else v)
        )
    if family == _FLOAT:
        return float
    return lambda v: v


def _to_int(value: Value) -> int:
    """PostgreSQL's casts to integers: numeric rounds half away from zero, float half to even."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    return int(Decimal(value).to_integral_value(rounding=ROUND_HALF_UP))


def _arithmetic(op: str, family: str) -> Callable[[Value, Value], Value]:
    def convert(value: Value) -> Value:
        if family == _FLOAT:
            return float(value)
        if family == _NUM and not isinstance(value, Decimal):
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return value

    def divide(a: Value, b: Value) -> Value:
        if b == 0:
            raise PgError("22012", "division by zero")
        if family == _INT:
            quotient = abs(a) // abs(b)
            return quotient if (a >= 0) == (b >= 0) else -quotient
        return a / b

    def modulo(a: Value, b: Value) -> Value:
        if b == 0:
            raise PgError("22012", "division by zero")
        if family == _FLOAT:
            raise PgError("42883", "operator does not exist: double precision % double precision")
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder

    operation: Callable[[Value, Value], Value] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": divide,
        "%": modulo,
    }[op]
    return lambda a, b: operation(convert(a), convert(b))


def _common_family(node: object, args: list[_Expr]) -> str:
    families = {arg.family for arg in args} - {_NULL}
    if not families:
        return _NULL
    if families <= set(_NUMERIC_FAMILIES):
        return max(families, key=_rank)
    if families - {_UNKNOWN}:
        families -= {_UNKNOWN}
    if len(families) == 1:
        family = families.pop()
        return _TEXT if family == _UNKNOWN else family
    raise PgError(
        "42804",
        "COALESCE types cannot be matched" if isinstance(node, ast.CoalesceExpr)
        else "CASE types cannot be matched" if isinstance(node, ast.CaseExpr)
        else "GREATEST/LEAST types cannot be matched",
        position=_position(node),
    )  # fmt: skip


def _function_family(expr: _Expr) -> str:
    return _TEXT if expr.family == _UNKNOWN else expr.family


def _quote_ident(name: str) -> str:
    from pgshim.sql.pg_functions import quote_ident

    return quote_ident(name)


# immutable built-ins: (name, argument families) -> (function, result family, result type)
_FUNCTIONS: dict[tuple[str, tuple[str, ...]], tuple[Callable[..., Value], str, int]] = {
    ("lower", (_TEXT,)): (str.lower, _TEXT, 25),
    ("upper", (_TEXT,)): (str.upper, _TEXT, 25),
    ("length", (_TEXT,)): (len, _INT, 23),
    ("char_length", (_TEXT,)): (len, _INT, 23),
    ("btrim", (_TEXT,)): (lambda s: s.strip(" "), _TEXT, 25),
    ("ltrim", (_TEXT,)): (lambda s: s.lstrip(" "), _TEXT, 25),
    ("rtrim", (_TEXT,)): (lambda s: s.rstrip(" "), _TEXT, 25),
    ("abs", (_INT,)): (abs, _INT, 23),
    ("abs", (_NUM,)): (abs, _NUM, 1700),
    ("abs", (_FLOAT,)): (abs, _FLOAT, 701),
}


def like(text: str, pattern: str) -> bool:
    """SQL LIKE with ``%``, ``_`` and backslash escapes, without backtracking: each piece
    between ``%`` is matched at its earliest place (which is optimal for such patterns)."""
    pieces: list[list[str | None]] = [[]]  # None stands for "_"
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            pieces[-1].append(pattern[index + 1])
            index += 2
            continue
        if char == "%":
            pieces.append([])
        else:
            pieces[-1].append(None if char == "_" else char)
        index += 1
    first, *middle = pieces
    if not middle:
        return len(text) == len(first) and _fits(text, 0, first)
    last = middle.pop()
    if len(first) + len(last) > len(text) or not _fits(text, 0, first):
        return False
    end = len(text) - len(last)
    if not _fits(text, end, last):
        return False
    position = len(first)
    for piece in middle:
        found = _find(text, piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _fits(text: str, start: int, piece: list[str | None]) -> bool:
    return all(want is None or text[start + offset] == want for offset, want in enumerate(piece))


def _find(text: str, piece: list[str | None], start: int, end: int) -> int:
    for position in range(start, end - len(piece) + 1):
        if _fits(text, position, piece):
            return position
    return -1


def any_of(filters: Sequence[RowFilter]) -> RowFilter:
    """The filters of several publications together: a row matching one is published."""
    if len(filters) == 1:
        return filters[0]
    runs = [each.matches for each in filters]
    return RowFilter(
        " OR ".join(each.text for each in filters),
        frozenset().union(*(each.columns for each in filters)),
        lambda row: any(run(row) for run in runs),
    )
