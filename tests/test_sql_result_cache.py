"""Kept results of catalog queries: reused only for the same statement over the same versions
of the shared tables it reads, never for a statement that reads the session's views, calls a
function that is not deterministic, or has a side effect."""

from __future__ import annotations

import pytest
import sqlglot
from sqlkit import run_sql

from pgshim.sql.catalog import _MACRO_NAMES, Catalog
from pgshim.sql.engine import Engine
from pgshim.sql.result_cache import MAX_BYTES, MAX_TEXT, TOTAL_BYTES, ResultCache, deterministic
from pgshim.sql.results import RowsResult
from pgshim.sql.session import SessionInfo, SqlSession

VIEW = "pgshim_test_items"


def _rows(session: SqlSession, sql: str) -> list[tuple]:
    result = run_sql(session, sql)
    assert isinstance(result, RowsResult)
    return list(result.rows)


@pytest.fixture
def served():
    items = [(n, f"item {n}") for n in range(50)]
    catalog = Catalog(engine=Engine(workers=1))
    catalog.register_view(VIEW, [("n", "int8"), ("label", "text")], lambda: list(items))
    yield catalog, SqlSession(catalog, SessionInfo(user="alice", pid=1)), items
    catalog.engine.close()


def test_the_same_query_over_the_same_tables_is_answered_from_its_kept_result(served) -> None:
    catalog, session, items = served
    results = catalog.engine.results
    query = f"SELECT n, label FROM {VIEW} WHERE label ~ '^item [1-3]$' ORDER BY n"
    assert _rows(session, query) == [(1, "item 1"), (2, "item 2"), (3, "item 3")]
    assert results.hits == 0
    assert _rows(session, query) == [(1, "item 1"), (2, "item 2"), (3, "item 3")]
    assert results.hits == 1
    items.remove((3, "item 3"))  # a new version of the view: computed again
    assert _rows(session, query) == [(1, "item 1"), (2, "item 2")]
    assert results.hits == 1
    assert _rows(session, query) == [(1, "item 1"), (2, "item 2")]
    assert results.hits == 2


def test_clocks_are_always_computed(served) -> None:
    catalog, session, _ = served
    for sql in (f"SELECT n, now() FROM {VIEW}", f"SELECT n, current_timestamp FROM {VIEW}"):
        _rows(session, sql)
        _rows(session, sql)
    assert catalog.engine.results.hits == 0


def test_views_of_the_session_are_reused_only_with_the_same_rows(served) -> None:
    catalog, alice, _ = served
    bob = SqlSession(catalog, SessionInfo(user="bob", pid=2))
    results = catalog.engine.results
    run_sql(alice, "SET application_name = 'alice app'")
    query = "SELECT setting FROM pg_settings WHERE name = 'application_name'"
    for _ in range(2):
        assert _rows(alice, query) == [("alice app",)]
        assert _rows(bob, query) == [("",)]
    # their settings differ (bob's second query finds alice's rows no more): each session's
    # second query used the result its first one kept
    assert results.hits == 2


def test_each_session_sees_its_own_values() -> None:
    catalog = Catalog(engine=Engine(workers=1))
    try:
        for user in ("alice", "bob", "alice"):
            session = SqlSession(catalog, SessionInfo(user=user, pid=1))
            assert _rows(session, "SELECT current_user, count(*) FROM pg_type") == [
                (user, len(_rows(session, "SELECT oid FROM pg_type")))
            ]
    finally:
        catalog.engine.close()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c ORDER BY 1", True),
        ("SELECT coalesce(max(oid), 0), array_to_string(ARRAY[1, 2], ',') FROM pg_type", True),
        ("SELECT now()", False),
        ("SELECT current_timestamp", False),
        ("SELECT random()", False),
        ("SELECT clock_timestamp()", False),
        ("SELECT * FROM pg_class TABLESAMPLE SYSTEM (10)", False),
        ("SELECT gen_random_uuid()", False),
    ],
)
def test_deterministic_statements(sql: str, expected: bool) -> None:
    assert deterministic(sqlglot.parse_one(sql, read="postgres"), _MACRO_NAMES) is expected


def test_kept_results_are_bounded_in_size() -> None:
    cache = ResultCache()
    big = [("x" * 1000,)] * 2000  # about 2 MB: not kept
    cache.put(ResultCache.key("SELECT big", [], []), [], big)
    assert cache.get(ResultCache.key("SELECT big", [], [])) is None
    assert ResultCache.key("SELECT " + "1" * MAX_TEXT, [], []) is None
    row = [("x" * (MAX_BYTES // 2),)]
    keys = [
        ResultCache.key(f"SELECT {n}", [], [("t", 1)])
        for n in range(TOTAL_BYTES // MAX_BYTES * 2 + 2)
    ]
    for key in keys:
        cache.put(key, [], row)
    assert cache.get(keys[-1]) == ([], row)
    assert cache.get(keys[0]) is None  # the least recently used went first
