"""Column references checked before a query runs (resolve.py) and the engine's errors translated
(engine_errors.py): pure parts, over pglast's tree and DuckDB's messages."""

from __future__ import annotations

import pytest
from pglast import parse_sql

from pgshim.errors import PgError
from pgshim.sql.engine import EngineError
from pgshim.sql.engine_errors import translate
from pgshim.sql.resolve import check_references, column_owner

TABLES = {
    "users": (("rid", 20), ("name", 25), ("age", 20), ("born", 1082)),
    "orders": (("rid", 20), ("item", 25), ("qty", 20)),
}


def lookup(schema: str | None, name: str) -> tuple[tuple[str, int], ...] | None:
    return TABLES.get(name) if schema in (None, "public") else None


def check(sql: str) -> PgError | None:
    try:
        check_references(parse_sql(sql)[0].stmt, lookup)
    except PgError as error:
        return error
    return None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT rid, name FROM users",
        "SELECT u.rid FROM users u JOIN orders o USING (rid)",
        "SELECT rid FROM users JOIN orders USING (rid)",
        "SELECT rid FROM users NATURAL JOIN orders",
        "SELECT age AS a FROM users ORDER BY a",
        "SELECT age AS a, count(*) FROM users GROUP BY ROLLUP (a)",
        "SELECT users FROM users",  # a whole-row reference
        "SELECT ctid, xmin FROM users",  # system columns
        "SELECT x FROM users, LATERAL (SELECT age AS x) s",
        "SELECT x FROM users u JOIN LATERAL (SELECT u.age AS x) s ON true",
        "SELECT n FROM generate_series(1, 3) AS g(n)",
        "SELECT anything FROM generate_series(1, 3) g",  # a function's columns are not known
        "SELECT a FROM (VALUES (1, 2)) AS v(a, b)",
        "WITH t (x) AS (SELECT rid FROM users) SELECT x FROM t",
        "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT n FROM t",
        "SELECT name FROM users WHERE rid IN (SELECT rid FROM orders WHERE qty > age)",
        "SELECT * FROM unknown_relation WHERE whatever = 1",  # check.py's to refuse
        "SELECT pg_catalog.users.rid FROM users",  # three names: left to the engine
        "SELECT rid FROM users WHERE name = '1' AND age = 1 AND born > '2000-01-01'",
    ],
)
def test_what_resolves_raises_nothing(sql: str) -> None:
    assert check(sql) is None


@pytest.mark.parametrize(
    ("sql", "sqlstate", "message", "hint", "position"),
    [
        ("SELECT nme FROM users", "42703", 'column "nme" does not exist',
         'Perhaps you meant to reference the column "users.name".', 8),
        ("SELECT u.nme FROM users u", "42703", "column u.nme does not exist",
         'Perhaps you meant to reference the column "u.name".', 8),
        ("SELECT zzzzz FROM users", "42703", 'column "zzzzz" does not exist', None, 8),
        ("SELECT rid FROM users, orders", "42702", 'column reference "rid" is ambiguous', None, 8),
        ("SELECT x.rid FROM users", "42P01", 'missing FROM-clause entry for table "x"', None, 8),
        ("SELECT users.rid FROM users u", "42P01",
         'invalid reference to FROM-clause entry for table "users"',
         'Perhaps you meant to reference the table alias "u".', 8),
        ("SELECT 1 FROM users JOIN orders USING (nope)", "42703",
         'column "nope" specified in USING clause does not exist in left table', None, None),
        ("SELECT *", "42601", "SELECT * with no tables specified is not valid", None, 8),
        ("SELECT * FROM (SELECT 1)", "42601", "subquery in FROM must have an alias",
         "For example, FROM (SELECT ...) [AS] foo.", None),
        ("SELECT rid FROM users WHERE name = 1", "42883",
         "operator does not exist: text = integer",
         "No operator matches the given name and argument types. "
         "You might need to add explicit type casts.", 34),
        ("SELECT qty FROM orders o WHERE o.item > 1.5", "42883",
         "operator does not exist: text > numeric",
         "No operator matches the given name and argument types. "
         "You might need to add explicit type casts.", 39),
    ],
)  # fmt: skip
def test_what_names_nothing_gets_postgresqls_error(
    sql: str, sqlstate: str, message: str, hint: str | None, position: int | None
) -> None:
    error = check(sql)
    assert error is not None
    assert (error.sqlstate, error.message, error.hint, error.position) == (
        sqlstate, message, hint, position,
    )  # fmt: skip


def test_two_equally_close_columns_are_both_hinted_three_none() -> None:
    error = check("SELECT ri FROM users u, orders o")
    assert error is not None and error.hint == (
        'Perhaps you meant to reference the column "u.rid" or the column "o.rid".'
    )
    error = check("SELECT ri FROM users u, orders o, users x")
    assert error is not None and error.hint is None


def test_column_owner_names_the_from_item() -> None:
    node = parse_sql("SELECT name, count(*) FROM users u JOIN orders o ON true")[0].stmt
    assert column_owner(node, lookup, "name") == "u"
    assert column_owner(node, lookup, "rid") is None  # in both


@pytest.mark.parametrize(
    ("kind", "text", "sqlstate", "message"),
    [
        ("BinderException", 'Binder Error: Referenced column "x" not found in FROM clause!',
         "42703", 'column "x" does not exist'),
        ("BinderException", "Binder Error: No function matches the given name and argument "
         "types 'abs(VARCHAR)'. You might need to add explicit type casts.",
         "42883", "function abs(text) does not exist"),
        ("BinderException", "Binder Error: No function matches the given name and argument "
         "types '+(INTEGER_LITERAL, VARCHAR)'. You might need to add explicit type casts.",
         "42883", "operator does not exist: integer + text"),
        ("ConversionException", "Conversion Error: Could not convert string 'x' to INT32",
         "22P02", 'invalid input syntax for type integer: "x"'),
        ("ConversionException", 'Conversion Error: Could not convert string "x" to DECIMAL(18,3)',
         "22P02", 'invalid input syntax for type numeric: "x"'),
        ("OutOfRangeException", "Out of Range Error: Overflow in addition of INT64 (1 + 2)!",
         "22003", "bigint out of range"),
        ("InvalidInputException", "Invalid Input Error: Division by zero in expression (1 // 0).",
         "22012", "division by zero"),
        ("BinderException", "Binder Error: Something the translation does not know!",
         "42000", "something the translation does not know"),
        ("ConversionException", "Conversion Error: Unimplemented type for cast (A -> B)",
         "22000", "unimplemented type for cast (A -> B)"),
    ],
)  # fmt: skip
def test_engine_errors_in_postgresqls_words(
    kind: str, text: str, sqlstate: str, message: str
) -> None:
    error = translate(EngineError(kind, text))
    assert (error.sqlstate, error.message) == (sqlstate, message)
