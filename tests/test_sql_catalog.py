"""The status catalog answers what real clients send (transcripts) with PostgreSQL's column types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlkit import prepare, run_sql

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.sql.catalog import CATALOG_VIEWS, Catalog, ServerFacts
from pgshim.sql.pg_functions import attribute_row, catalog_row, class_row
from pgshim.sql.session import SessionInfo, SqlSession

START = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def session() -> SqlSession:
    catalog = Catalog(ServerFacts(current_lsn=lambda: 0x1DB9B70, start_time=START))
    views = {
        "pg_publication": [(16400, "pub1", 10, False, True, True, True, True, False)],
        "pg_publication_tables": [
            ("pub1", "public", "s_pk", ["id", "name"], None),
            ("pub1", "public", "s_full", ["id", "data"], None),
            ("pub2", "public", "other", ["id"], None),
        ],
        "pgshim_publication_rel": [("pub1", 16414, [1, 2], None), ("pub1", 16421, [1, 2], None)],
        "pg_class": [
            class_row(16414, "s_pk", 2200, "r", 2, has_index=True, replident="d"),
            class_row(16421, "s_full", 2200, "r", 2, replident="f"),
        ],
        "pg_attribute": [
            attribute_row(16414, "id", 23, 1, not_null=True),
            attribute_row(16414, "name", 25, 2),
        ],
        "pg_index": [
            catalog_row(
                "pg_index",
                indexrelid=16415,
                indrelid=16414,
                indnatts=1,
                indisunique=True,
                indisprimary=True,
                indkey=[1],
            )
        ],
        "pg_stat_replication": [
            (
                4242,
                10,
                "postgres",
                "sub1",
                "127.0.0.1",
                None,
                50000,
                START,
                None,
                "streaming",
                0x1DB9B70,
                0x1DB9B70,
                0x1DB9B70,
                0x1DB9B70,
                timedelta(microseconds=1500),
                None,
                None,
                0,
                "async",
                START,
            )
        ],
        "pg_replication_slots": [
            ("sub1", "pgoutput", "logical", 16384, "pubdb", False, True, 4242, None, 730)
            + (0x1DB9B00, 0x1DB9B70, "reserved", None, False)
        ],
    }
    for name, rows in views.items():
        catalog.register_view(name, CATALOG_VIEWS[name], lambda rows=rows: rows)
    return SqlSession(catalog, SessionInfo(user="postgres", database="pubdb", pid=99))


def shape(result) -> list[tuple[str, int]]:
    return [(column.name, column.type_oid) for column in result.columns]


SUBSCRIBER_QUERIES = [
    (
        "SELECT t.pubname FROM\n pg_catalog.pg_publication t WHERE\n t.pubname IN ('pub1')",
        [("pubname", 19)],
        [("pub1",)],
    ),
    (
        "SELECT DISTINCT t.schemaname, t.tablename \n, t.attnames\n"
        "FROM pg_catalog.pg_publication_tables t\n WHERE t.pubname IN ('pub1')",
        [("schemaname", 19), ("tablename", 19), ("attnames", 1003)],
        {("public", "s_pk", ("id", "name")), ("public", "s_full", ("id", "data"))},
    ),
    (
        "SELECT c.oid, c.relreplident, c.relkind  FROM pg_catalog.pg_class c  INNER JOIN "
        "pg_catalog.pg_namespace n        ON (c.relnamespace = n.oid) WHERE n.nspname = 'public'"
        "   AND c.relname = 's_pk'",
        [("oid", 26), ("relreplident", 18), ("relkind", 18)],
        [(16414, "d", "r")],
    ),
    (
        "SELECT DISTINCT  (CASE WHEN (array_length(gpt.attrs, 1) = c.relnatts)   THEN NULL ELSE "
        "gpt.attrs END)  FROM pg_publication p,  LATERAL pg_get_publication_tables(p.pubname) gpt,"
        "  pg_class c WHERE gpt.relid = 16414 AND c.oid = gpt.relid   AND p.pubname IN ( 'pub1' )",
        [("attrs", 22)],
        [(None,)],
    ),
    (
        "SELECT a.attnum,       a.attname,       a.atttypid,       a.attnum = ANY(i.indkey)  "
        "FROM pg_catalog.pg_attribute a  LEFT JOIN pg_catalog.pg_index i       ON (i.indexrelid "
        "= pg_get_replica_identity_index(16414)) WHERE a.attnum > 0::pg_catalog.int2   AND NOT "
        "a.attisdropped AND a.attgenerated = ''   AND a.attrelid = 16414 ORDER BY a.attnum",
        [("attnum", 21), ("attname", 19), ("atttypid", 26), ("?column?", 16)],
        [(1, "id", 23, True), (2, "name", 25, False)],
    ),
    (
        "SELECT DISTINCT pg_get_expr(gpt.qual, gpt.relid)  FROM pg_publication p,  LATERAL "
        "pg_get_publication_tables(p.pubname) gpt WHERE gpt.relid = 16414   AND p.pubname IN "
        "( 'pub1' )",
        [("pg_get_expr", 25)],
        [(None,)],
    ),
    ("SELECT pg_current_wal_lsn();", [("pg_current_wal_lsn", 3220)], [(0x1DB9B70,)]),
    ("SELECT 1", [("?column?", 23)], [(1,)]),
]


@pytest.mark.parametrize(("sql", "columns", "rows"), SUBSCRIBER_QUERIES)
def test_client_queries(session: SqlSession, sql: str, columns, rows) -> None:
    result = run_sql(session, sql)
    assert shape(result) == columns
    if isinstance(rows, set):
        assert {
            tuple(tuple(v) if isinstance(v, list) else v for v in r) for r in result.rows
        } == rows
    else:
        assert result.rows == rows
    assert result.tag == f"SELECT {len(rows)}"


def test_view_columns_match_pg15(session: SqlSession) -> None:
    for view in ("pg_stat_replication", "pg_replication_slots"):
        result = run_sql(session, f"SELECT * FROM {view};")
        expected = [
            (name, pgtypes.lookup(type_name).oid) for name, type_name in CATALOG_VIEWS[view]
        ]
        assert shape(result) == expected
        assert len(result.rows) == 1


def test_pg_stat_replication_values_render(session: SqlSession) -> None:
    result = run_sql(
        session, "SELECT client_addr, sent_lsn, write_lag, backend_start FROM pg_stat_replication"
    )
    rendered = [
        pgtypes.text_out(c.type_oid, v) for c, v in zip(result.columns, result.rows[0], strict=True)
    ]
    assert rendered == ["127.0.0.1", "0/1DB9B70", "00:00:00.0015", "2024-01-02 03:04:05+00"]


def test_asyncpg_prepared_slot_query(session: SqlSession) -> None:
    sql = "SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1"
    prepared = prepare(session, sql, [0])
    assert prepared.param_oids == [19]
    assert prepared.columns is not None
    assert [(c.name, c.type_oid) for c in prepared.columns] == [
        ("slot_name", 19),
        ("confirmed_flush_lsn", 3220),
    ]
    result = run_sql(session, prepared, ["sub1"])
    assert result.rows == [("sub1", 0x1DB9B70)]
    assert run_sql(session, prepared, ["nope"]).rows == []


def test_asyncpg_jit_query(session: SqlSession) -> None:
    sql = "\n SELECT\n current_setting('jit') AS cur,\n set_config('jit', 'off', false) AS new\n"
    result = run_sql(session, sql)
    assert shape(result) == [("cur", 25), ("new", 25)]
    assert result.rows == [("off", "off")]


def test_builtin_functions(session: SqlSession) -> None:
    result = run_sql(
        session,
        "SELECT version(), current_database(), current_user, pg_backend_pid(), "
        "pg_is_in_recovery(), pg_postmaster_start_time(), '16/B374D848'::pg_lsn, 'x'::text, NULL",
    )
    assert shape(result) == [
        ("version", 25),
        ("current_database", 19),
        ("current_user", 19),
        ("pg_backend_pid", 23),
        ("pg_is_in_recovery", 16),
        ("pg_postmaster_start_time", 1184),
        ("pg_lsn", 3220),
        ("text", 25),
        ("?column?", 25),
    ]
    row = result.rows[0]
    assert row[0].startswith("PostgreSQL 18.6 (pgshim")
    assert row[1:5] == ("pubdb", "postgres", 99, False)
    assert row[5] == START
    assert row[6:] == (0x16B374D848, "x", None)


def test_lsn_comparison(session: SqlSession) -> None:
    result = run_sql(
        session,
        "SELECT slot_name FROM pg_replication_slots WHERE confirmed_flush_lsn >= '0/1DB9B70'::pg_lsn",
    )
    assert result.rows == [("sub1",)]


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM pg_replication_slots", "42703"),
        ("SELECT FROM WHERE", "42601"),
        ("SELECT 'garbage'::pg_lsn", "22P02"),
    ],
)
def test_errors(session: SqlSession, sql: str, sqlstate: str) -> None:
    with pytest.raises(PgError) as caught:
        run_sql(session, sql)
    assert caught.value.sqlstate == sqlstate
