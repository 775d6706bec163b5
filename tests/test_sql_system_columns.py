"""tableoid of a catalog table's rows becomes the table's oid (pure: sqlglot trees)."""

from __future__ import annotations

import pytest
import sqlglot

from pgshim.errors import PgError
from pgshim.sql.system_columns import replace_system_columns

TABLES = {"pg_class": 1259, "pg_namespace": 2615, "pg_type": 1247}


def rewritten(sql: str) -> str:
    tree = sqlglot.parse_one(sql, read="postgres")
    replace_system_columns(tree, TABLES)
    return tree.sql("duckdb")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT c.tableoid FROM pg_class AS c",
            "SELECT CAST(1259 AS UINTEGER) FROM pg_class AS c",
        ),
        (
            "SELECT tableoid FROM pg_catalog.pg_type",
            "SELECT CAST(1247 AS UINTEGER) FROM pg_catalog.pg_type",
        ),
        (  # the inner query names the outer one's table
            "SELECT (SELECT n.tableoid FROM pg_type AS t LIMIT 1) FROM pg_namespace AS n",
            "SELECT (SELECT CAST(2615 AS UINTEGER) FROM pg_type AS t LIMIT 1) FROM pg_namespace AS n",
        ),
        (  # unqualified in a subquery: its own table first
            "SELECT (SELECT tableoid FROM pg_type LIMIT 1) FROM pg_namespace",
            "SELECT (SELECT CAST(1247 AS UINTEGER) FROM pg_type LIMIT 1) FROM pg_namespace",
        ),
        (  # a CTE's or subquery's column of that name is theirs
            "WITH t AS (SELECT 1 AS tableoid) SELECT tableoid FROM t",
            "WITH t AS (SELECT 1 AS tableoid) SELECT tableoid FROM t",
        ),
        (
            "SELECT s.tableoid FROM (SELECT oid AS tableoid FROM pg_class) AS s",
            "SELECT s.tableoid FROM (SELECT oid AS tableoid FROM pg_class) AS s",
        ),
        ("SELECT tableoid FROM users", "SELECT tableoid FROM users"),  # not a catalog table
        ("SELECT oid FROM pg_class", "SELECT oid FROM pg_class"),
    ],
)  # fmt: skip
def test_tableoid_of_catalog_tables(sql: str, expected: str) -> None:
    assert rewritten(sql) == expected


def test_tableoid_of_two_catalog_tables_is_ambiguous() -> None:
    with pytest.raises(PgError) as caught:
        rewritten("SELECT tableoid FROM pg_class, pg_namespace")
    assert (caught.value.sqlstate, caught.value.message) == (
        "42702",
        'column reference "tableoid" is ambiguous',
    )
