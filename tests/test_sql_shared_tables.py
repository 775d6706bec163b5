"""Catalog views every session sees alike stay loaded in the engine processes: a query sends
their rows only when they changed since the version its process holds, and still reads exactly
the rows of its start; views whose rows depend on the session go with every query."""

from __future__ import annotations

import itertools

import pytest
from sqlkit import run_sql

from pgshim.sql.catalog import Catalog
from pgshim.sql.engine import Engine
from pgshim.sql.results import RowsResult
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.sql.shared_tables import RECENT, Derived, SharedTables

VIEW = "pgshim_test_items"


_TEXTS = itertools.count()


def _rows(session: SqlSession, sql: str) -> list[tuple]:
    """The rows of ``sql`` as computed now: each time a text of its own (a LIMIT no result
    reaches), so that no kept result answers it (see result_cache.py)."""
    result = run_sql(session, f"{sql} LIMIT {1_000_000 + next(_TEXTS)}")
    assert isinstance(result, RowsResult)
    return list(result.rows)


@pytest.fixture
def served():
    """A catalog with one view whose rows the test changes, on ``workers`` engine processes."""
    items = [(n, f"item {n}") for n in range(500)]

    def make(workers: int) -> tuple[Catalog, SqlSession]:
        catalog = Catalog(engine=Engine(workers=workers))
        catalog.register_view(VIEW, [("n", "int8"), ("label", "text")], lambda: list(items))
        return catalog, SqlSession(catalog, SessionInfo(user="alice", pid=1))

    made: list[Catalog] = []

    def start(workers: int = 1) -> tuple[Catalog, SqlSession, list[tuple]]:
        catalog, session = make(workers)
        made.append(catalog)
        return catalog, session, items

    yield start
    for catalog in made:
        catalog.engine.close()


def test_unchanged_catalog_tables_are_not_sent_again(served) -> None:
    catalog, session, items = served(workers=1)
    sent = catalog.engine.shared.rows_sent
    query = f"SELECT count(*), sum(n) FROM {VIEW}"
    assert _rows(session, query) == [(500, sum(range(500)))]
    assert _rows(session, "SELECT count(*) FROM pg_class") == _rows(
        session, "SELECT count(*) FROM pg_class"
    )
    before = dict(sent)
    for _ in range(3):
        assert _rows(session, query) == [(500, sum(range(500)))]
        _rows(session, "SELECT relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid")
    assert sent[VIEW] == before.get(VIEW, 0)
    assert sent["pg_class"] == before.get("pg_class", 0)
    assert sent["pg_attribute"] == before.get("pg_attribute", 0)


def test_changed_rows_are_sent_once_and_seen_at_once(served) -> None:
    catalog, session, items = served(workers=1)
    sent = catalog.engine.shared.rows_sent
    query = f"SELECT count(*), max(label) FROM {VIEW}"
    assert _rows(session, query) == [(500, "item 99")]
    before = sent[VIEW]
    items.append((1000, "item 999"))
    assert _rows(session, query) == [(501, "item 999")]
    assert sent[VIEW] == before + 501  # the new version, whole
    assert _rows(session, query) == [(501, "item 999")]
    assert sent[VIEW] == before + 501
    items[:] = items[:10]
    assert _rows(session, query) == [(10, "item 9")]
    assert sent[VIEW] == before + 511


def test_each_process_gets_a_version_at_most_once(served) -> None:
    catalog, session, items = served(workers=2)
    sent = catalog.engine.shared.rows_sent
    query = f"SELECT count(*) FROM {VIEW}"
    _rows(session, query)
    items.append((1000, "item 999"))
    for _ in range(8):
        assert _rows(session, query) == [(501,)]
    # the processes there are (two computing, the others started ahead), each sent it once
    assert sent[VIEW] % 501 == 0 and 501 <= sent[VIEW] <= 501 * catalog.engine._live


def test_views_of_the_session_go_with_every_query(served) -> None:
    catalog, alice, _ = served(workers=1)
    bob = SqlSession(catalog, SessionInfo(user="bob", pid=2))
    sent = catalog.engine.shared.rows_sent
    run_sql(alice, "SET application_name = 'alice app'")
    counts = []
    query = "SELECT setting FROM pg_settings WHERE name = 'application_name'"
    for _ in range(2):  # the one process runs both sessions' queries, in turn
        assert _rows(alice, query) == [("alice app",)]
        assert _rows(bob, query) == [("",)]
        counts.append(sent["pg_settings"])
    assert counts[0] > 0 and counts[1] == 2 * counts[0]


def test_versions_stand_for_one_content() -> None:
    shared = SharedTables()
    columns = [("a", "INTEGER")]
    first = shared.stamp("t", columns, [(1,), (2,)])
    assert shared.stamp("t", columns, [(1,), (2,)]).version == first.version
    second = shared.stamp("t", columns, [(1,)])
    assert second.version != first.version
    assert shared.stamp("t", columns, [(1,), (2,)]).version == first.version  # back to it
    assert shared.newest()[0].rows == [(1,), (2,)]
    for n in range(RECENT):  # beyond RECENT other contents, a content gets a new number
        shared.stamp("t", columns, [(n, n)])
    assert shared.stamp("t", columns, [(1,), (2,)]).version not in (first.version, second.version)
    assert shared.to_send({"t": second.version}, [second]) == []
    assert shared.to_send({"t": first.version}, [second]) == [second]
    assert shared.rows_sent["t"] == 1


def test_derived_rows_are_computed_again_only_after_a_change() -> None:
    state = {"generation": 0}
    computed = []

    def rows() -> list[tuple]:
        computed.append(state["generation"])
        return [(state["generation"],)]

    derived = Derived(rows, lambda: dict(state))
    assert derived() == derived() == [(0,)]
    state["generation"] = 1
    assert derived() == [(1,)]
    assert computed == [0, 1]
