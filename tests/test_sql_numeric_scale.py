"""Numeric values keep PostgreSQL 15's display scale: pgshim and a real PostgreSQL 15 answer
each expression of a list with the same text (psycopg2, text format) and the same Decimal
(psycopg 3's binary format), and with the type numeric."""

from __future__ import annotations

import re
from decimal import Decimal

import psycopg
import psycopg2
import psycopg2.extensions
import pytest
from pgcluster import PgCluster
from server_proc import PgshimServer
from spoolkit import SpoolKit
from test_psql_meta import create_like

from pgshim.sql.numeric_scale import scale_of, trimmed

pytestmark = pytest.mark.timeout(120)

DATABASE = "numeric"  # PostgreSQL's copy of pgshim's collection
ROWS = [(1, 2), (2, 3), (4, 5)]
EXPRESSIONS = [
    "1::numeric",
    "1.50::numeric",
    "-1.50::numeric",
    "2.5::numeric(10,2)",
    "'1.250'::numeric",
    "'-0.00'::numeric",
    "1e3::numeric",
    "1.5e-3::numeric",
    "0::numeric",
    "CAST(7 AS numeric)",
    "1.50",
    "1.50 + 2.125",
    "1.50::numeric - 2::numeric",
    "1.50::numeric * 1.5::numeric",
    "2::numeric * 3",
    "12345678901234567890::numeric",
    "(2 + 3)::numeric",
    "pg_wal_lsn_diff('0/3000060', '0/3000028')",
    "pg_wal_lsn_diff('0/10', '0/20')",
    "'0/3000060'::pg_lsn - '0/3000028'::pg_lsn",
    "(SELECT sum(i::numeric) FROM nums)",
    "(SELECT sum(i::numeric * 1.50) FROM nums)",
    "(SELECT max(i::numeric + 0.5) FROM nums)",
    "(SELECT sum((i + b)::numeric) FROM nums)",
    "(SELECT sum(-(n.b * 2)::numeric) FROM nums n)",
    "(SELECT count(*)::numeric * 1.5 FROM nums)",
    "(SELECT min(i::numeric - 0.25) FROM nums WHERE b > 2)",
    "(SELECT sum(x::numeric) FROM (VALUES (1), (2)) AS t(x))",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster):
    base = tmp_path_factory.mktemp("numeric")
    kit = SpoolKit(base / "data.rdb.logical.wal")
    for i, b in ROWS:
        kit.insert("nums", i=i, b=b)
    kit.close()
    server = PgshimServer(kit.path, base / "state", args=pg_cluster.server_version_args()).start()
    try:
        create_like(server.psql, pg_cluster, DATABASE)
        values = ", ".join(f"({n}, {i}, {b})" for n, (i, b) in enumerate(ROWS, 1))
        pg_cluster.psql(f"INSERT INTO nums (rid, i, b) VALUES {values}", dbname=DATABASE)
        yield server, pg_cluster
    finally:
        server.stop()
        pg_cluster.psql(f"DROP DATABASE IF EXISTS {DATABASE}")


def _text(dsn: str, sql: str) -> tuple[list[int], list[tuple]]:
    """The values as the server wrote them (text format), and the columns' type oids."""
    conn = psycopg2.connect(dsn)
    try:
        as_text = psycopg2.extensions.new_type((1700,), "NUMERIC_TEXT", lambda v, _c: v)
        psycopg2.extensions.register_type(as_text, conn)
        with conn.cursor() as cur:
            cur.execute(sql)
            return [c.type_code for c in cur.description], cur.fetchall()
    finally:
        conn.close()


def _binary(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        rows = cur.execute(sql).fetchall()
    return [tuple((str(value), value.as_tuple()) for value in row) for row in rows]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_numeric_text_is_postgresqls(servers, expression: str) -> None:
    server, pg = servers
    sql = f"SELECT {expression}"
    assert _text(server.dsn(), sql) == _text(pg.dsn(DATABASE), sql)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_numeric_binary_is_postgresqls(servers, expression: str) -> None:
    server, pg = servers
    sql = f"SELECT {expression}"
    assert _binary(server.dsn(), sql) == _binary(pg.dsn(DATABASE), sql)


def test_status_counters_print_as_integers(servers) -> None:
    """The numeric counters of the status views hold whole numbers: PostgreSQL prints them
    without a fraction."""
    server, pg = servers
    sql = "SELECT wal_bytes FROM pg_stat_wal"
    for dsn in (server.dsn(), pg.dsn(DATABASE)):
        types, rows = _text(dsn, sql)
        assert types == [1700]
        assert [bool(re.fullmatch(r"\d+", row[0])) for row in rows] == [True]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.0000000000", "1"),
        ("10.0000000000", "10"),
        ("-0.0000000000", "0"),
        ("1.2500000000", "1.25"),
        ("0.3333333333", "0.3333333333"),
        ("123456789012345678901234567.8900000000", "123456789012345678901234567.89"),
        ("NaN", "NaN"),
    ],
)
def test_trimmed(value: str, expected: str) -> None:
    assert str(trimmed(Decimal(value))) == expected


@pytest.mark.parametrize(
    ("text", "scale"),
    [("1", 0), ("1.50", 2), (" -0.00 ", 2), ("1e3", 0), ("1.5e-3", 4), ("NaN", None), ("x", None)],
)
def test_scale_of(text: str, scale: int | None) -> None:
    assert scale_of(text) == scale
