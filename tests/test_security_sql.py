"""The SQL surface under attack, over real sockets: a logged-in role that is not a superuser tries
to read files, write files, hide statements from the checks, change the engine's settings and
reach the engine's own syntax and catalog. Each must end in PostgreSQL's error with nothing read,
written or changed for any other session."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import psycopg
import psycopg2
import psycopg2.errors
import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit

pytestmark = pytest.mark.timeout(60)

CONFIG = """
[users.postgres]
method = "trust"
superuser = true

[users.mallory]
method = "trust"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("security-sql")
    kit = SpoolKit(root / "data.rdb.logical.wal")
    kit.insert("users", name="alice")
    config = root / "pgshim.toml"
    config.write_text(CONFIG)
    srv = PgshimServer(kit.path, root / "state", args=("--config", str(config))).start()
    subprocess.run(
        ["psql", "-X", "-c", "SELECT pgshim_create_history_slot('keep', 'test_decoding')"],
        env=srv.env_for_clients(), check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    yield srv, root
    srv.stop()
    kit.close()


def connect(srv: PgshimServer, user: str = "mallory"):  # noqa: ANN201
    conn = psycopg2.connect(srv.dsn(user=user), connect_timeout=10)
    conn.autocommit = True
    return conn


def fails(conn, sql: str, params: tuple | None = None) -> psycopg2.Error:  # noqa: ANN001
    with conn.cursor() as cur, pytest.raises(psycopg2.Error) as caught:
        cur.execute(sql, params)
    return caught.value


def rows(conn, sql: str) -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def psql(srv: PgshimServer, user: str, sql: str) -> subprocess.CompletedProcess[str]:
    env = srv.env_for_clients() | {"PGUSER": user}
    return subprocess.run(
        ["psql", "-X", "-v", "VERBOSITY=verbose", "-c", sql],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def catalog_digest(srv: PgshimServer) -> tuple:
    """What every session sees of the catalog a write would change."""
    conn = connect(srv, "postgres")
    try:
        types = rows(conn, "SELECT oid, typname, typlen, typarray FROM pg_type ORDER BY oid")
        slots = rows(conn, "SELECT slot_name, plugin FROM pg_replication_slots")
        regtype = rows(conn, "SELECT 23::regtype::text, 'users'::regclass::oid")
    finally:
        conn.close()
    return hashlib.sha256(repr(types).encode()).hexdigest(), len(types), slots, regtype


FILE_READS = [
    "SELECT content FROM read_text('{config}')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT read_blob('{state}/state.db')",
    "SELECT content FROM read_blob('{state}/state.db')",
    "SELECT content FROM read_text('/proc/self/environ')",
    "SELECT * FROM pg_type, LATERAL read_text('{config}') f",
    "SELECT (SELECT content FROM read_text('{config}'))",
    "WITH t AS (SELECT * FROM read_text('{config}')) SELECT * FROM t",
    "SELECT * FROM pg_catalog.read_text('{config}')",
    "SELECT * FROM main.read_text('{config}')",
    "SELECT * FROM glob('{state}/*')",
    "SELECT getenv('HOME')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM pg_type WHERE typname = (SELECT content FROM read_text('{config}'))",
]


def test_engine_file_and_catalog_functions_do_not_exist(server) -> None:
    srv, root = server
    conn = connect(srv)
    try:
        for sql in FILE_READS:
            text = sql.format(config=root / "pgshim.toml", state=root / "state")
            error = fails(conn, text)
            assert error.pgcode == "42883", (text, error)
            assert "does not exist" in error.pgerror
            assert "users.mallory" not in error.pgerror and "trust" not in error.pgerror
            assert rows(conn, "SELECT 1") == [(1,)]  # the session goes on
    finally:
        conn.close()


def test_a_comment_ended_by_a_carriage_return_hides_no_copy_to_a_file(server, tmp_path) -> None:
    srv, _ = server
    target = tmp_path / "written.txt"
    for sql in (
        f"SELECT 1 -- \r; COPY (SELECT 'x') TO '{target}'",
        f"COPY (SELECT 'x') TO '{target}'",
        f"COPY pg_type TO '{target}'",
        f"SELECT 1; /* a /* nested */ comment */ COPY pg_type TO '{target}'",
    ):
        out = psql(srv, "mallory", sql)
        assert out.returncode != 0
        assert (
            "42501: must be superuser or have privileges of the pg_write_server_files role "
            "to COPY to a file" in out.stderr
        ), out.stderr
    out = psql(srv, "mallory", f"COPY pg_type TO PROGRAM 'touch {target}'")
    assert (
        "42501: must be superuser or have privileges of the pg_write_server_files role to "
        "COPY to or from an external program" in out.stderr
    ), out.stderr
    # not even a superuser writes files through pgshim
    out = psql(srv, "postgres", f"SELECT 1 -- \r; COPY (SELECT 'x') TO '{target}'")
    assert out.returncode != 0 and "0A000" in out.stderr, out.stderr
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("sql", "command"),
    [
        ("SELECT 1 -- \r; DROP TABLE pg_replication_slots", "DROP TABLE"),
        ("SELECT 1 -- \r DROP TABLE pg_type", None),  # one statement: a syntax error
        ("WITH x AS (SELECT 1) DELETE FROM pg_type", "DELETE"),
        ("WITH x AS (SELECT 1) INSERT INTO pg_type (oid) VALUES (1)", "INSERT"),
        ("WITH x AS (SELECT 1) UPDATE pg_type SET typname = 'x'", "UPDATE"),
        ("WITH x AS (DELETE FROM pg_type RETURNING 1) SELECT * FROM x", "DELETE"),
        (
            "WITH x AS (SELECT 1), y AS (UPDATE pg_type SET typlen = 0 RETURNING 1) "
            "SELECT * FROM x",
            "UPDATE",
        ),  # fmt: skip
        (
            "SELECT * FROM (WITH y AS (INSERT INTO pg_type (oid) VALUES (1) RETURNING 1) "
            "SELECT 1) s",
            "INSERT",
        ),  # fmt: skip
        ("SELECT $$; DROP TABLE pg_type; $$; DROP TABLE pg_type", "DROP TABLE"),
        ("SELECT $a$ $$ ; $a$; TRUNCATE pg_type", "TRUNCATE TABLE"),
        ("SELECT E'\\'; DELETE FROM pg_type; --'; DELETE FROM pg_type", "DELETE"),
        ("SELECT /* /* */ ; */ 1; CREATE TABLE pg_evil (a int)", "CREATE TABLE"),
        ('SELECT 1; DROP TABLE U&"pg_t\\0079pe"', "DROP TABLE"),
        ("SELECT 1 INTO pg_evil", "SELECT INTO"),
        ("SELECT * FROM pg_type FOR UPDATE", "SELECT FOR UPDATE"),
        ("SELECT * FROM pg_type FOR SHARE", "SELECT FOR SHARE"),
        ("CREATE TABLE pg_evil AS SELECT 1", "CREATE TABLE AS"),
        ("ALTER TABLE pg_type RENAME TO pg_gone", "ALTER TABLE"),
        ("COPY pg_type FROM STDIN", "COPY FROM"),
    ],
)
def test_writes_are_read_only_errors_and_change_nothing(server, sql: str, command) -> None:
    srv, _ = server
    before = catalog_digest(srv)
    conn = connect(srv)
    try:
        error = fails(conn, sql)
        if command is None:
            assert error.pgcode == "42601", error
        else:
            assert error.pgcode == "25006", error
            assert f"cannot execute {command} in a read-only transaction" in error.pgerror
        assert rows(conn, "SELECT count(*) FROM pg_replication_slots") == [(1,)]
    finally:
        conn.close()
    assert catalog_digest(srv) == before


def test_quoting_tricks_are_values_not_statements(server) -> None:
    srv, _ = server
    conn = connect(srv)
    try:
        assert rows(conn, "SELECT $$; DROP TABLE pg_type; $$") == [("; DROP TABLE pg_type; ",)]
        assert rows(conn, "SELECT E'\\\\'' ; DROP TABLE pg_type --'") == [
            ("\\' ; DROP TABLE pg_type --",)
        ]
        assert rows(conn, "SELECT /* /* nested */ ; DROP TABLE pg_type */ 1") == [(1,)]
        assert rows(conn, "SELECT 1 -- \r+ 1") == [(2,)]
        assert rows(conn, 'SELECT typname FROM U&"pg_t\\0079pe" WHERE oid = 23') == [("int4",)]
        assert rows(conn, "SELECT U&'\\0041' || 'b'") == [("Ab",)]
        assert rows(conn, 'SELECT 1 AS "a"" ; DROP TABLE pg_type --"') == [(1,)]
    finally:
        conn.close()


def test_several_statements_in_one_message(server) -> None:
    srv, _ = server
    before = catalog_digest(srv)
    # psql -c sends one Query message; the first statement runs, the second is refused
    out = psql(srv, "mallory", "SELECT 41 + 1 AS answer; DELETE FROM pg_type")
    assert out.returncode != 0 and "42" in out.stdout
    assert "25006: cannot execute DELETE in a read-only transaction" in out.stderr
    conn = connect(srv)
    try:
        error = fails(conn, "SELECT 1; SELECT * FROM read_text('/etc/passwd')")
        assert error.pgcode == "42883"
        error = fails(conn, "SELECT 1; PRAGMA enable_external_access")
        assert error.pgcode == "42601"
    finally:
        conn.close()
    # the extended protocol: Parse takes exactly one statement
    with psycopg.connect(srv.dsn(user="mallory"), autocommit=True) as pconn:
        for sql in ("SELECT %s; SELECT 2", "SELECT %s::int; DROP TABLE pg_type"):
            with pytest.raises(psycopg.errors.SyntaxError) as caught:
                pconn.execute(sql, (1,))
            assert str(caught.value).startswith(
                "cannot insert multiple commands into a prepared statement"
            )
        assert pconn.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
    assert catalog_digest(srv) == before


ENGINE_SURFACE = [
    ("PRAGMA version", "42601"),
    ("PRAGMA enable_external_access = true", "42601"),
    ("ATTACH '/tmp/pgshim-attached.db' AS x", "42601"),
    ("INSTALL httpfs", "42601"),
    ("LOAD httpfs", "42601"),
    ("FROM pg_type", "42601"),
    ("SELECT * FROM pg_type USING SAMPLE 10", "42601"),
    ("SUMMARIZE pg_type", "42601"),
    ("DESCRIBE pg_type", "42601"),
    ("EXPORT DATABASE '/tmp/pgshim-export'", "42601"),
    ("SELECT current_setting('memory_limit')", "42704"),
    ("SELECT current_setting('enable_external_access')", "42704"),
    ("SET memory_limit = '64GB'", "42704"),
    ("SET enable_external_access = true", "42704"),
    ("SET lock_configuration = false", "42704"),
    ("SET threads = 64", "42704"),
    ("RESET memory_limit", "42704"),
    ("SELECT set_config('memory_limit', '64GB', false)", "42704"),
    ("SHOW memory_limit", "42704"),
    ("SELECT * FROM pgshim_infoschema_tables", "42P01"),  # information_schema: by that name only
    ("SELECT * FROM tables", "42P01"),
    ("SELECT * FROM pg_catalog.tables", "42P01"),
    ("SELECT * FROM information_schema.pg_type", "42P01"),
    ("SELECT * FROM duckdb_settings", "42P01"),
    ("SELECT * FROM main.pg_type", "42P01"),
    ("SELECT * FROM memory.main.pg_type", "42P01"),
    ("SELECT * FROM pgshim_type_names", "42P01"),
    ("SELECT * FROM pgshim_publication_rel", "42P01"),
    ("SELECT 1::HUGEINT", "42704"),
    ("SELECT 1::UBIGINT", "42704"),
    ("SELECT NULL::MAP(INT, INT)", "42704"),
    ("SELECT NULL::STRUCT", "42704"),
    ("SELECT CAST(1 AS pg_catalog.hugeint)", "42704"),
    ("SELECT * FROM pg_type WHERE typname = pgshim_fn_lsn_text(1)", "42883"),
    (
        "WITH RECURSIVE t AS (SELECT 1 UNION ALL SELECT 1 FROM duckdb_tables) SELECT * FROM t",
        "42P01",
    ),  # fmt: skip
    ("WITH t AS (SELECT 1) SELECT * FROM t, duckdb_views", "42P01"),
    ("SELECT (SELECT count(*) FROM duckdb_columns)", "42P01"),
    ("SELECT * FROM pg_type t, LATERAL (SELECT * FROM duckdb_settings()) s", "42883"),
]


def test_the_engine_s_own_syntax_settings_and_catalog_are_unreachable(server) -> None:
    srv, _ = server
    conn = connect(srv)
    try:
        for sql, state in ENGINE_SURFACE:
            error = fails(conn, sql)
            assert error.pgcode == state, (sql, error)
            assert rows(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()
    assert not Path("/tmp/pgshim-attached.db").exists()


def test_pg_settings_and_cte_shadowing_show_nothing_of_the_engine(server) -> None:
    srv, _ = server
    before = catalog_digest(srv)
    conn = connect(srv)
    try:
        names = {name for (name,) in rows(conn, "SELECT name FROM pg_settings")}
        assert names and not names & {"memory_limit", "enable_external_access", "threads",
                                      "lock_configuration", "temp_directory"}  # fmt: skip
        # a CTE may shadow a view, for this query only
        assert rows(
            conn, "WITH pg_type AS (SELECT 'evil' AS typname) SELECT typname FROM pg_type"
        ) == [("evil",)]
        assert rows(
            conn, "WITH duckdb_settings AS (SELECT 1 AS x) SELECT x FROM duckdb_settings"
        ) == [(1,)]
        assert rows(conn, "TABLE pg_namespace") == [
            (11, "pg_catalog", 10, None),
            (2200, "public", 10, ["postgres=UC/postgres", "=U/postgres"]),
        ]
        assert rows(conn, "VALUES (1, 'a'), (2, 'b')") == [(1, "a"), (2, "b")]
    finally:
        conn.close()
    assert catalog_digest(srv) == before


def test_parameter_numbers_are_bounded(server) -> None:
    srv, _ = server
    conn = connect(srv)
    try:
        for sql in ("SELECT $300000000", "SELECT $0", "SELECT $65536"):
            error = fails(conn, sql)
            assert error.pgcode == "42P02", error
            assert error.pgerror.startswith(f"ERROR:  there is no parameter ${sql.split('$')[1]}")
            assert rows(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()
    with psycopg.connect(srv.dsn(user="mallory"), autocommit=True) as pconn:
        with pytest.raises(psycopg.errors.UndefinedParameter):
            pconn.execute("SELECT $300000000::int + %s", (1,))
        assert pconn.execute("SELECT 1").fetchone() == (1,)


def test_a_parameter_without_a_value_is_42p02(server) -> None:
    srv, _ = server
    conn = connect(srv)
    try:
        error = fails(conn, "SELECT $1")
        assert (error.pgcode, error.pgerror.splitlines()[0]) == (
            "42P02", "ERROR:  there is no parameter $1"
        )  # fmt: skip
    finally:
        conn.close()


def test_a_type_name_cast_to_regtype(server) -> None:
    srv, _ = server
    conn = connect(srv)
    try:
        assert rows(conn, "SELECT 'int4'::regtype::text") == [("integer",)]
    finally:
        conn.close()
