"""Property: whatever SQL text a session sends (comments ended by \\r or \\n, nested comments,
dollar quotes, E'' strings, CTEs with DML, several statements, dangerous payloads), only single
read-only SELECTs over pgshim's own tables reach the engine, no file appears, the engine's catalog
and settings stay as they were, and only PgError with an expected SQLSTATE escapes."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp
from sqlkit import run_sql
from test_fuzz_parsers import FUZZ, SQL_STATES

from pgshim.errors import PgError
from pgshim.sql import catalog as catalog_module
from pgshim.sql import engine as engine_module
from pgshim.sql.bounds import Bound
from pgshim.sql.catalog import _MACROS, Catalog
from pgshim.sql.check import ENGINE_FUNCTIONS
from pgshim.sql.parse import parse_statements
from pgshim.sql.session import SessionInfo, SqlSession

EXPECTED_STATES = (SQL_STATES - {"XX000"}) | {"54001", "53200", "57014"}
PAYLOAD_DIR = Path(tempfile.mkdtemp(prefix="pgshim-payloads-"))
TARGET = PAYLOAD_DIR / "written"

PAYLOADS = [
    f"COPY (SELECT 'x') TO '{TARGET}'",
    f"COPY pg_type TO '{TARGET}'",
    f"COPY pg_type TO PROGRAM 'touch {TARGET}'",
    f"SELECT content FROM read_text('{PAYLOAD_DIR}')",
    "SELECT * FROM read_csv('/etc/passwd')",
    f"SELECT * FROM pg_type, LATERAL read_blob('{TARGET}') b",
    "DROP TABLE pg_type",
    "DROP TABLE pg_replication_slots",
    "DELETE FROM pg_type",
    "INSERT INTO pg_type (oid) VALUES (1)",
    "UPDATE pg_type SET typlen = 0",
    "WITH x AS (SELECT 1) DELETE FROM pg_type",
    "WITH x AS (DELETE FROM pg_type RETURNING 1) SELECT * FROM x",
    "WITH x AS (INSERT INTO pg_type (oid) VALUES (2) RETURNING oid) SELECT oid FROM x",
    "SET memory_limit = '64GB'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET ALL",
    "PRAGMA enable_external_access",
    f"ATTACH '{TARGET}' AS evil",
    "INSTALL httpfs",
    "CREATE TABLE pg_evil AS SELECT 1",
    "SELECT 1 INTO pg_evil",
    "SELECT * FROM duckdb_settings()",
    "SELECT current_setting('memory_limit')",
    "SELECT set_config('statement_timeout', '1000', false)",
]
QUERIES = [
    "SELECT typname FROM pg_type WHERE oid = 23",
    "SELECT count(*) FROM pg_type",
    "TABLE pg_namespace",
    "VALUES (1, 'a')",
    "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
    "WITH pg_type AS (SELECT 'shadow' AS typname) SELECT typname FROM pg_type",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT max(n) FROM t",
    "SELECT x FROM generate_series(1, 3) g(x)",
    "SELECT slot_name FROM pg_replication_slots",
    "SHOW statement_timeout",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
]


def _comment(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([
        f"-- {text}\r", f"-- {text}\n", f"/* {text} */", f"/* /* {text} */ */",
        f"/* a /* b */ {text} */",
    ])  # fmt: skip


def _string(text: str) -> st.SearchStrategy[str]:
    quoted = text.replace("'", "''")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return st.sampled_from([
        f"'{quoted}'", f"$${text}$$", f"$q${text}$q$", f"E'{escaped}'", f"E'\\\\' || '{quoted}'",
        f"U&'{quoted}'",
    ])  # fmt: skip


@st.composite
def sql_texts(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        payload = draw(st.sampled_from(PAYLOADS))
        query = draw(st.sampled_from(QUERIES))
        shape = draw(st.integers(0, 6))
        if shape == 0:
            parts.append(payload)
        elif shape == 1:
            parts.append(query)
        elif shape == 2:  # a comment, maybe ended by a carriage return, then the payload
            parts.append(draw(_comment("; " + payload)) + " " + query)
            parts.append(draw(_comment("x")) + payload)
        elif shape == 3:  # the payload as a value
            parts.append(f"SELECT {draw(_string(payload + '; ' + payload))} AS v")
        elif shape == 4:  # a payload in a CTE
            parts.append(f"WITH c AS ({payload}) SELECT * FROM c")
        elif shape == 5:
            parts.append(f"SELECT 1 {draw(_comment(payload))}; {payload}")
        else:
            parts.append(f"SELECT * FROM ({query}) s" if query.startswith("SELECT") else query)
    separator = draw(st.sampled_from([";", "; ", ";\r", ";\n-- c\r", " /* ; */ ;"]))
    return separator.join(parts)


class Recorder:
    """Every SQL text the engine is asked to run for a query."""

    def __init__(self) -> None:
        self.statements: list[str] = []


@pytest.fixture(scope="module")
def setup():
    catalog = Catalog(engine=engine_module.Engine(workers=1))  # one process: snapshot reads it
    recorder = Recorder()
    original_open = engine_module.Engine.open

    async def recording_open(self, sql, params, temp_tables, bound, to_pg_error, **options):  # noqa: ANN001, ANN003, ANN202
        recorder.statements.append(sql)
        return await original_open(self, sql, params, temp_tables, bound, to_pg_error, **options)

    engine_module.Engine.open = recording_open
    try:
        session = SqlSession(catalog, SessionInfo(is_superuser=False, rolreplication=False))
        run_sql(session, "SELECT count(*) FROM pg_type")  # the engine exists
        yield catalog, recorder, snapshot(catalog)
    finally:
        engine_module.Engine.open = original_open


def snapshot(catalog: Catalog) -> tuple:
    """The engine's tables, pg_type's rows and its walls, read in its process (the only one:
    the fixture allows one) through the engine itself, past every check."""

    async def read(sql: str) -> list[tuple]:
        cursor = await catalog.engine.open(sql, [], [], Bound(), catalog_module.translate)
        rows = await cursor.fetch(10_000)
        cursor.close()
        return rows

    def run(sql: str) -> list[tuple]:
        return asyncio.run(read(sql))

    tables = run(
        "SELECT database_name, schema_name, table_name, temporary FROM duckdb_tables() "
        "ORDER BY ALL"
    )
    types = run("SELECT count(*), sum(oid) FROM pg_type")
    settings = run(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
        "'lock_configuration', 'memory_limit', 'temp_directory', 'threads', "
        "'autoload_known_extensions', 'autoinstall_known_extensions') ORDER BY name"
    )
    databases = run("SELECT database_name FROM duckdb_databases()")
    return tables, types, settings, databases


_WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Command, exp.Copy, exp.Set,
    exp.Pragma, exp.Attach, exp.Detach, exp.Merge, exp.Into, exp.Lock, exp.Use, exp.TruncateTable,
)  # fmt: skip


def check_engine_statement(sql: str, catalog: Catalog) -> None:
    trees = sqlglot.parse(sql, read="duckdb")
    assert len(trees) == 1 and isinstance(trees[0], exp.Query | exp.Values), sql
    tree = trees[0]
    found = next(tree.find_all(*_WRITES), None)
    assert found is None, (sql, found)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    allowed_tables = set(catalog._tables) | ctes
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            assert table.name in allowed_tables or table.name.startswith("pgshim_rows_"), sql
            assert not table.db and not table.catalog, sql
        else:  # a table function
            call = table.this
            name = call.name if isinstance(call, exp.Anonymous) else call.sql_name()
            assert name.lower() in ENGINE_FUNCTIONS | set(_MACROS), sql
    allowed_functions = ENGINE_FUNCTIONS | set(_MACROS) | set(catalog._functions)
    for call in tree.find_all(exp.Anonymous):
        assert call.name.lower() in allowed_functions, (sql, call.name)


@FUZZ
@given(text=sql_texts())
def test_only_read_only_selects_reach_the_engine(setup, text: str) -> None:
    catalog, recorder, before = setup
    session = SqlSession(catalog, SessionInfo(is_superuser=False, rolreplication=False))
    recorder.statements.clear()
    try:
        statements = parse_statements(text)
    except PgError as error:
        assert error.sqlstate in EXPECTED_STATES, (text, error)
        statements = []
    for statement in statements:
        try:
            run_sql(session, statement)
        except PgError as error:
            assert error.sqlstate in EXPECTED_STATES, (text, error.sqlstate, error.message)
    for sql in recorder.statements:
        check_engine_statement(sql, catalog)
    assert list(PAYLOAD_DIR.iterdir()) == []
    assert snapshot(catalog) == before
