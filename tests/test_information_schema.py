"""information_schema answers tools' queries as a PostgreSQL 15 or 18 holding the same tables does
(its tables made from pgshim_collections, rid the primary key; pgshim presenting the same
version): the same rows, columns and types."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from pgcluster import PgCluster, pg18_bindir
from twins import users_and_orders

from pgshim.sql.information_schema import VIEWS

pytestmark = pytest.mark.timeout(180)

DATABASE = "reddb"  # PostgreSQL's copy of pgshim's tables, under pgshim's database name

QUERIES = [
    "SELECT table_schema, table_name, table_type FROM information_schema.tables"
    " WHERE table_schema = 'public' ORDER BY 2",
    "SELECT * FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 3",
    "SELECT table_name, column_name, ordinal_position, data_type, udt_name, is_nullable,"
    " column_default, character_maximum_length, numeric_precision, numeric_scale"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3",
    "SELECT * FROM information_schema.columns WHERE table_schema = 'public'"
    " ORDER BY table_name, ordinal_position",
    # SQLAlchemy's and many ORMs' primary key lookup
    "SELECT tc.constraint_name, tc.table_name, kcu.column_name, kcu.ordinal_position"
    " FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu"
    " ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema"
    " WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' ORDER BY 2",
    "SELECT * FROM information_schema.table_constraints WHERE table_schema = 'public'"
    " AND constraint_type <> 'CHECK' ORDER BY constraint_name",
    "SELECT constraint_type, count(*) FROM information_schema.table_constraints"
    " WHERE table_schema = 'public' GROUP BY 1 ORDER BY 1",
    "SELECT * FROM information_schema.key_column_usage WHERE table_schema = 'public'"
    " ORDER BY constraint_name, ordinal_position",
    "SELECT * FROM information_schema.constraint_column_usage WHERE table_schema = 'public'"
    " ORDER BY constraint_name",
    "SELECT * FROM information_schema.referential_constraints",
    "SELECT * FROM information_schema.character_sets",
    "SELECT schema_name FROM information_schema.schemata"
    " WHERE schema_name IN ('public', 'pg_catalog', 'information_schema') ORDER BY 1",
    "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema ="
    " 'pg_catalog' AND table_name IN ('pg_class', 'pg_stat_activity', 'pg_type', 'pg_roles')"
    " ORDER BY 1",
    "SELECT table_schema, table_name, check_option, is_updatable FROM information_schema.views"
    " WHERE table_name IN ('pg_stat_activity', 'pg_replication_slots', 'pg_roles') ORDER BY 2",
    "SELECT table_name, column_name, data_type, ordinal_position FROM information_schema.columns"
    " WHERE table_schema = 'pg_catalog' AND table_name = 'pg_replication_slots' ORDER BY 4",
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
    " AND table_schema = 'public' AND is_nullable = 'NO'",
    "SELECT routine_schema, routine_name, routine_type, data_type, type_udt_schema,"
    " type_udt_name, routine_body, external_language, dtd_identifier, parameter_style,"
    " sql_data_access, schema_level_routine, max_dynamic_result_sets, security_type"
    " FROM information_schema.routines WHERE routine_name IN ('version', 'pg_backend_pid',"
    " 'pg_is_in_recovery', 'pg_current_wal_lsn', 'pg_get_userbyid', 'format_type') ORDER BY 2",
]


@pytest.fixture(scope="module", params=[15, 18])
def servers(tmp_path_factory: pytest.TempPathFactory, request):
    base = tmp_path_factory.mktemp("infoschema")
    if request.param == 15:
        pg, owned = request.getfixturevalue("pg_cluster"), False
    else:
        bindir = pg18_bindir()
        if bindir is None:
            pytest.skip("no PostgreSQL 18: not installed, nor fetched (no network, no cache)")
        pg, owned = PgCluster(base / "pg18", bindir=bindir).start(), True
    more = {"uid": uuid.uuid4(), "blob": b"x", "tags": ["a", "b"]}
    try:
        with users_and_orders(base, pg, DATABASE, **more) as server:
            yield server, pg
    finally:
        if owned:
            pg.stop()


def _answer(dsn: str, sql: str) -> tuple[list, list]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql)
        columns = [(column.name, column.type_code) for column in cur.description or ()]
        return columns, cur.fetchall()


@pytest.mark.parametrize("sql", QUERIES)
def test_answers_like_postgresql(servers, sql: str) -> None:
    server, pg = servers
    ours, theirs = _answer(server.dsn(), sql), _answer(pg.dsn(DATABASE), sql)
    assert ours[0] == theirs[0]  # names and type oids
    assert ours[1] == theirs[1]
    assert theirs[1] or "referential" in sql, "the query must find something"


def test_views_have_postgresqls_columns(servers) -> None:
    """Each view pgshim defines has PostgreSQL's columns in order, domains as base types."""
    _, pg = servers
    names = ", ".join(f"'{name}'" for name in VIEWS)
    sql = (
        "SELECT c.relname, a.attname, coalesce(nullif(t.typbasetype, 0), a.atttypid)::regtype"
        " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " JOIN pg_type t ON t.oid = a.atttypid"
        f" WHERE c.relnamespace = 'information_schema'::regnamespace AND c.relname IN ({names})"
        " AND a.attnum > 0 ORDER BY c.relname, a.attnum"
    )
    _, rows = _answer(pg.dsn(DATABASE), sql)
    theirs: dict[str, list[tuple[str, str]]] = {}
    for relname, column, kind in rows:
        theirs.setdefault(relname, []).append((column, kind))
    from pgshim import pgtypes

    ours = {
        name: [(column, pgtypes.lookup(kind).sql_name) for column, kind in columns]
        for name, columns in VIEWS.items()
    }
    assert ours == theirs


NOT_NULL_QUERIES = [
    "SELECT constraint_name, table_name, constraint_type FROM information_schema.table_constraints"
    " WHERE table_schema = 'public' ORDER BY 2, 1",
    "SELECT * FROM information_schema.check_constraints WHERE constraint_schema = 'public'"
    " ORDER BY check_clause",
]


@pytest.mark.parametrize("sql", NOT_NULL_QUERIES)
def test_not_null_columns_are_check_constraints(servers, sql: str) -> None:
    """PostgreSQL 18 names them as its pg_constraint does (orders_rid_not_null), 15 after the
    namespace's and table's oids, which differ between the servers (compared without them)."""
    server, pg = servers
    ours, theirs = (_answer(dsn, sql)[1] for dsn in (server.dsn(), pg.dsn(DATABASE)))
    if pg.major < 18:
        ours, theirs = ([tuple(re.sub(r"^\d+_\d+_", "", str(v)) for v in row) for row in rows]
                        for rows in (ours, theirs))  # fmt: skip
    assert ours == theirs
    assert any(str(value).endswith("_not_null") for row in theirs for value in row)


def test_the_engines_own_information_schema_is_not_reachable(servers) -> None:
    server, _ = servers
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for sql in ("SELECT * FROM information_schema.duckdb_tables",
                    "SELECT * FROM information_schema.sequences", "SELECT * FROM tables"):  # fmt: skip
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute(sql)
