"""SqlSession: settings, transaction status, SQLSTATEs, publication DDL."""

from __future__ import annotations

import pytest
from pglast import ast, parse_sql
from sqlkit import prepare, run_sql

from pgshim.errors import PgError
from pgshim.sql.catalog import Catalog
from pgshim.sql.publications import TableSpec
from pgshim.sql.results import CommandResult, RowsResult
from pgshim.sql.session import DEFAULT_SETTINGS, SessionInfo, SqlSession


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture
def session(catalog: Catalog) -> SqlSession:
    return SqlSession(catalog, SessionInfo(user="alice", application_name="psql", pid=7))


def _value(result: RowsResult | CommandResult) -> object:
    assert isinstance(result, RowsResult)
    return result.rows[0][0]


def test_first_thirteen_defaults_are_pg15_parameter_status() -> None:
    assert list(DEFAULT_SETTINGS)[:13] == [
        "application_name",
        "client_encoding",
        "DateStyle",
        "default_transaction_read_only",
        "in_hot_standby",
        "integer_datetimes",
        "IntervalStyle",
        "is_superuser",
        "server_encoding",
        "server_version",
        "session_authorization",
        "standard_conforming_strings",
        "TimeZone",
    ]


def test_show(session: SqlSession) -> None:
    result = run_sql(session, "SHOW wal_level")
    assert isinstance(result, RowsResult)
    assert [(c.name, c.type_oid) for c in result.columns] == [("wal_level", 25)]
    assert result.rows == [("logical",)] and result.tag == "SHOW"
    assert _value(run_sql(session, "show DateStyle")) == "ISO, MDY"
    assert run_sql(session, "SHOW datestyle").columns[0].name == "datestyle"
    assert _value(run_sql(session, "SHOW application_name")) == "psql"
    assert _value(run_sql(session, "SHOW server_version_num")) == "180006"
    assert _value(run_sql(session, "SHOW session_authorization")) == "alice"


def test_show_all(session: SqlSession) -> None:
    result = run_sql(session, "SHOW ALL")
    assert [c.name for c in result.columns] == ["name", "setting", "description"]
    assert (
        "wal_segment_size",
        "16MB",
        "Shows the size of write ahead log segments.",
    ) in result.rows


def test_unknown_parameter(session: SqlSession) -> None:
    with pytest.raises(PgError) as caught:
        run_sql(session, "SHOW no_such_thing")
    assert caught.value.sqlstate == "42704"
    assert caught.value.message == 'unrecognized configuration parameter "no_such_thing"'


def test_set_reset_and_reported_changes(session: SqlSession) -> None:
    assert session.reported_changes() == []
    assert run_sql(session, "SET application_name = 'my app'").tag == "SET"
    assert run_sql(session, "SET extra_float_digits TO 3").tag == "SET"
    assert _value(run_sql(session, "SHOW extra_float_digits")) == "3"
    assert run_sql(session, "SET TIME ZONE 'UTC'").tag == "SET"
    assert session.reported_changes() == [("TimeZone", "UTC"), ("application_name", "my app")]
    assert session.reported_changes() == []
    assert run_sql(session, "RESET application_name").tag == "RESET"
    assert session.reported_changes() == [("application_name", "psql")]
    run_sql(session, "SET search_path = public, 'x y'")
    assert _value(run_sql(session, "SHOW search_path")) == 'public, "x y"'  # as PostgreSQL


def test_read_only_parameter(session: SqlSession) -> None:
    with pytest.raises(PgError) as caught:
        run_sql(session, "SET server_version = '1'")
    assert caught.value.sqlstate == "55P02"


def test_transaction_status(session: SqlSession) -> None:
    assert session.tx_status == "I"
    assert run_sql(session, "BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ").tag == "BEGIN"
    assert session.tx_status == "T"
    assert run_sql(session, "COMMIT").tag == "COMMIT"
    assert session.tx_status == "I"


def test_error_aborts_transaction_until_rollback(session: SqlSession) -> None:
    run_sql(session, "BEGIN")
    with pytest.raises(PgError) as first:
        run_sql(session, "INSERT INTO t VALUES (1)")
    assert first.value.sqlstate == "25006"
    assert session.tx_status == "E"
    with pytest.raises(PgError) as second:
        run_sql(session, "SELECT 1")
    assert second.value.sqlstate == "25P02"
    assert run_sql(session, "COMMIT").tag == "ROLLBACK"
    assert session.tx_status == "I"
    assert _value(run_sql(session, "SELECT 1")) == 1


def test_error_outside_transaction_keeps_idle(session: SqlSession) -> None:
    with pytest.raises(PgError):
        run_sql(session, "DELETE FROM t")
    assert session.tx_status == "I"


def test_set_local_is_undone_at_transaction_end(session: SqlSession) -> None:
    run_sql(session, "BEGIN")
    run_sql(session, "SET LOCAL statement_timeout = 5")
    assert _value(run_sql(session, "SHOW statement_timeout")) == "5ms"  # as PostgreSQL
    run_sql(session, "ROLLBACK")
    assert _value(run_sql(session, "SHOW statement_timeout")) == "0"


def test_savepoint_outside_block(session: SqlSession) -> None:
    with pytest.raises(PgError) as caught:
        run_sql(session, "SAVEPOINT s")
    assert caught.value.sqlstate == "25P01"


def test_set_config_and_current_setting(session: SqlSession) -> None:
    result = run_sql(session, "SELECT pg_catalog.set_config('search_path', '', false);")
    assert [(c.name, c.type_oid) for c in result.columns] == [("set_config", 25)]
    assert result.rows == [("",)] and result.tag == "SELECT 1"
    assert _value(run_sql(session, "SELECT current_setting('search_path')")) == ""
    with pytest.raises(PgError) as caught:
        run_sql(session, "SELECT current_setting('nope')")
    assert caught.value.sqlstate == "42704"


def test_startup_options_become_defaults(catalog: Catalog) -> None:
    info = SessionInfo(options={"datestyle": "ISO", "extra_float_digits": "3"})
    session = SqlSession(catalog, info)
    assert _value(run_sql(session, "SHOW DateStyle")) == "ISO, MDY"
    assert _value(run_sql(session, "SHOW extra_float_digits")) == "3"
    run_sql(session, "SET extra_float_digits = 1")
    run_sql(session, "RESET ALL")
    assert _value(run_sql(session, "SHOW extra_float_digits")) == "3"


def test_prepare_show_and_set(session: SqlSession) -> None:
    prepared = prepare(session, "SHOW wal_level", [])
    assert prepared.columns is not None and prepared.columns[0].name == "wal_level"
    assert prepare(session, "SET jit = off", []).columns is None
    assert run_sql(session, prepare(session, "SET jit = on", []), []).tag == "SET"


class FakePublications:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def create(self, name, all_tables, tables, schemas, actions) -> None:
        self.calls.append(("create", name, all_tables, tables, schemas, actions))

    def alter(self, name, action, tables, schemas, actions) -> None:
        self.calls.append(("alter", name, action, tables, schemas, actions))

    def drop(self, name, if_exists) -> None:
        self.calls.append(("drop", name, if_exists))


def _where(expression: str) -> ast.Node:
    return parse_sql(f"SELECT WHERE {expression}")[0].stmt.whereClause


@pytest.mark.parametrize(
    ("stmt", "tag", "call"),
    [
        (
            "CREATE PUBLICATION p FOR ALL TABLES",
            "CREATE PUBLICATION",
            ("create", "p", True, [], [], None),
        ),
        (
            'CREATE PUBLICATION "My Pub" FOR TABLE a, public.B, "Q"',
            "CREATE PUBLICATION",
            ("create", "My Pub", False, [TableSpec("a"), TableSpec("public.b"), TableSpec("Q")],
             [], None),
        ),
        (
            "create publication p for table t with (publish = 'insert, update')",
            "CREATE PUBLICATION",
            ("create", "p", False, [TableSpec("t")], [], {"insert", "update"}),
        ),
        (
            "CREATE PUBLICATION p FOR TABLE t (b, \"A\") WHERE (b > 1), u WHERE (c IS NULL)",
            "CREATE PUBLICATION",
            ("create", "p", False,
             [TableSpec("t", ["b", "A"], _where("b > 1")), TableSpec("u", None, _where("c IS NULL"))],
             [], None),
        ),
        ("CREATE PUBLICATION empty", "CREATE PUBLICATION", ("create", "empty", False, [], [], None)),
        (
            "ALTER PUBLICATION p ADD TABLE s_extra",
            "ALTER PUBLICATION",
            ("alter", "p", "add", [TableSpec("s_extra")], [], None),
        ),
        (
            "ALTER PUBLICATION p SET TABLE a, b (x)",
            "ALTER PUBLICATION",
            ("alter", "p", "set", [TableSpec("a"), TableSpec("b", ["x"])], [], None),
        ),
        (
            "ALTER PUBLICATION p DROP TABLE a",
            "ALTER PUBLICATION",
            ("alter", "p", "drop", [TableSpec("a")], [], None),
        ),
        (
            "ALTER PUBLICATION p SET (publish = 'delete')",
            "ALTER PUBLICATION",
            ("alter", "p", "options", [], [], {"delete"}),
        ),
        (
            "CREATE PUBLICATION p FOR TABLES IN SCHEMA public, CURRENT_SCHEMA, TABLE t, u",
            "CREATE PUBLICATION",
            ("create", "p", False, [TableSpec("t"), TableSpec("u")], ["public", None], None),
        ),
        (
            "ALTER PUBLICATION p ADD TABLES IN SCHEMA s, TABLES IN SCHEMA s",
            "ALTER PUBLICATION",
            ("alter", "p", "add", [], ["s"], None),
        ),
        (
            "ALTER PUBLICATION p DROP TABLES IN SCHEMA s, TABLE a",
            "ALTER PUBLICATION",
            ("alter", "p", "drop", [TableSpec("a")], ["s"], None),
        ),
        ("DROP PUBLICATION p", "DROP PUBLICATION", ("drop", "p", False)),
        ("DROP PUBLICATION IF EXISTS p", "DROP PUBLICATION", ("drop", "p", True)),
    ],
)  # fmt: skip
def test_publication_ddl(catalog: Catalog, stmt: str, tag: str, call: tuple) -> None:
    handler = FakePublications()
    session = SqlSession(catalog, SessionInfo(), publications=handler)
    assert run_sql(session, stmt).tag == tag
    assert handler.calls == [call]


def test_publication_bad_option(catalog: Catalog) -> None:
    session = SqlSession(catalog, SessionInfo(), publications=FakePublications())
    with pytest.raises(PgError) as caught:
        run_sql(session, "CREATE PUBLICATION p FOR ALL TABLES WITH (publish = 'upsert')")
    assert caught.value.sqlstate == "22023"


def test_pg_settings_shows_postgresql_settings_with_units(session: SqlSession) -> None:
    run_sql(session, "SET statement_timeout = '2s'")
    result = run_sql(
        session,
        "SELECT name, setting, unit, vartype, source FROM pg_settings "
        "WHERE name IN ('statement_timeout', 'work_mem', 'wal_segment_size', 'memory_limit') "
        "ORDER BY name",
    )
    assert result.rows == [
        ("statement_timeout", "2000", "ms", "integer", "session"),
        ("wal_segment_size", "16777216", "B", "integer", "default"),
        ("work_mem", "4096", "kB", "integer", "default"),
    ]  # the engine's own settings (memory_limit, threads, ...) are not PostgreSQL's


def test_statement_timeout_values(session: SqlSession) -> None:
    run_sql(session, "SET statement_timeout = 1500")
    assert session.bound().timeout_ms == 1500
    run_sql(session, "SET statement_timeout TO '1min'")
    assert session.bound().timeout_ms == 60_000
    with pytest.raises(PgError) as caught:
        run_sql(session, "SET statement_timeout = 'soon'")
    assert caught.value.sqlstate == "22023"
    assert session.bound().timeout_ms == 60_000


def test_set_config_per_row_sets_every_value_or_none(session: SqlSession) -> None:
    """pg_dump's first query: set_config once per row of pg_settings."""
    run_sql(
        session,
        "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name IN ('jit', 'row_security')",
    )
    assert run_sql(session, "SHOW jit").rows == [("off",)]
    assert run_sql(session, "SHOW row_security").rows == [("off",)]
    with pytest.raises(PgError) as caught:
        run_sql(
            session,
            "SELECT set_config(name, CASE name WHEN 'jit' THEN 'on' ELSE 'bogus' END, false) "
            "FROM pg_settings WHERE name IN ('jit', 'row_security')",
        )
    assert caught.value.sqlstate == "22023"
    assert run_sql(session, "SHOW jit").rows == [("off",)]  # checked for every row first
