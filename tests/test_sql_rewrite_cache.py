"""Kept rewrites of catalog queries: reused for the same text only while everything the rewrite
read gives the same answer (the session's settings and user, parameters taken as constants,
regclass lookups, the collections), never once a registration changed the catalog; psql's
``\\d`` and ``\\dRp+`` see new collections and publications."""

from __future__ import annotations

import subprocess
import time

import pytest
from pgcluster import pg_bindir
from sqlkit import run_sql

from pgshim.sql.catalog import Catalog
from pgshim.sql.engine import Engine
from pgshim.sql.results import RowsResult
from pgshim.sql.rewrite_cache import RewriteCache, Rewritten, fingerprint
from pgshim.sql.session import SessionInfo, SqlSession

VIEW = "pgshim_test_items"


def _rows(session: SqlSession, sql: str, params: list | None = None) -> list[tuple]:
    result = run_sql(session, sql, params)
    assert isinstance(result, RowsResult)
    return list(result.rows)


@pytest.fixture
def catalog():
    catalog = Catalog(engine=Engine(workers=1))
    catalog.register_view(VIEW, [("n", "int8")], lambda: [(n,) for n in range(10)])
    yield catalog
    catalog.engine.close()


def _hits(catalog: Catalog) -> int:
    return catalog._rewrites.hits


def test_the_same_text_is_rewritten_once(catalog) -> None:
    session = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    query = f"SELECT n FROM {VIEW} WHERE n < 3 ORDER BY n"
    assert _rows(session, query) == [(0,), (1,), (2,)]
    assert _hits(catalog) == 0
    assert _rows(session, query) == [(0,), (1,), (2,)]
    assert _hits(catalog) == 1


def test_a_setting_changed_is_read_again(catalog) -> None:
    session = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    query = "SELECT current_setting('application_name'), current_schema()"
    run_sql(session, "SET application_name = 'first'")
    assert _rows(session, query) == [("first", "public")]
    assert _rows(session, query) == [("first", "public")]
    assert _hits(catalog) == 1
    run_sql(session, "SET application_name = 'second'")
    run_sql(session, "SET search_path = pg_catalog")
    assert _rows(session, query) == [("second", "pg_catalog")]
    assert _hits(catalog) == 1


def test_sessions_taking_turns_each_get_their_own_values(catalog) -> None:
    alice = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    bob = SqlSession(catalog, SessionInfo(user="bob", pid=2))
    query = "SELECT current_user, pg_backend_pid()"
    for _ in range(3):
        assert _rows(alice, query) == [("alice", 1)]
        assert _rows(bob, query) == [("bob", 2)]
    assert _hits(catalog) == 4  # each session's rewrite kept beside the other's


def test_a_parameter_taken_as_a_constant_is_read_again(catalog) -> None:
    session = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    run_sql(session, "SET application_name = 'app'")
    query = "SELECT current_setting($1)"
    assert _rows(session, query, ["application_name"]) == [("app",)]
    assert _rows(session, query, ["search_path"]) == [('"$user", public',)]
    assert _rows(session, query, ["application_name"]) == [("app",)]
    # parameters the engine gets stay parameters: one rewrite for every value
    query = f"SELECT n FROM {VIEW} WHERE n = $1"
    assert [_rows(session, query, [n]) for n in (3, 4, 5)] == [[(3,)], [(4,)], [(5,)]]
    assert _hits(catalog) == 3


def test_a_regclass_is_looked_up_again(catalog) -> None:
    session = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    query = f"SELECT '{VIEW}'::regclass::oid = (SELECT oid FROM pg_class WHERE relname = '{VIEW}')"
    assert _rows(session, query) == [(True,)]
    catalog.register_view(VIEW, [("n", "int8"), ("m", "int8")], lambda: [(1, 2)])
    assert _rows(session, query) == [(True,)]
    assert _hits(catalog) == 0  # a registration: every rewrite is made again


def test_result_columns_follow_a_view_registered_again(catalog) -> None:
    session = SqlSession(catalog, SessionInfo(user="alice", pid=1))
    query = f"SELECT n FROM {VIEW} LIMIT 1"
    for _ in range(2):
        result = run_sql(session, query)
        assert isinstance(result, RowsResult)
        assert [(c.name, c.type_oid) for c in result.columns] == [("n", 20)]
    catalog.register_view(VIEW, [("n", "int4")], lambda: [(7,)])
    result = run_sql(session, query)
    assert isinstance(result, RowsResult)
    assert [(c.name, c.type_oid) for c in result.columns] == [("n", 23)]
    assert result.rows == [(7,)]


def test_a_read_that_fails_now_is_no_match() -> None:
    kept = RewriteCache()
    rewritten = Rewritten(
        (("regclass", ("gone",), fingerprint(1)),), "SELECT 1", (), (), (), (), True
    )
    kept.put("SELECT 'gone'::regclass", 1, rewritten)
    assert kept.find("SELECT 'gone'::regclass", 1, lambda _read: True) is rewritten
    assert kept.find("SELECT 'gone'::regclass", 1, lambda _read: False) is None
    assert kept.find("SELECT 'gone'::regclass", 2, lambda _read: True) is None  # generation
    assert fingerprint(1) != fingerprint(True) and fingerprint(1) != fingerprint(1.0)


def _psql(port: int, command: str) -> str:
    done = subprocess.run(
        [str(pg_bindir() / "psql"), "-X", "-A", "-h", "127.0.0.1", "-p", str(port), "-U",
         "postgres", "-d", "reddb", "-c", command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout + done.stderr


@pytest.mark.timeout(120)
def test_psql_describes_new_collections_and_publications(spool, pgshim) -> None:
    spool.insert("users", name="ann", n=1)
    server = pgshim(spool.path)
    users = _psql(server.port, "\\d users")
    assert 'Table "public.users"' in users and "name" in users and "Publications" not in users
    assert "Did not find any relation named" in _psql(server.port, "\\d orders")
    spool.insert("orders", item="book", price=12.5)
    deadline = time.monotonic() + 20
    while "Did not find" in (orders := _psql(server.port, "\\d orders")):
        assert time.monotonic() < deadline, orders
        time.sleep(0.2)
    assert 'Table "public.orders"' in orders and "item" in orders and "price" in orders
    assert _psql(server.port, "\\d users") == users  # the same texts, other oids
    _psql(server.port, "CREATE PUBLICATION first_pub FOR TABLE orders")
    assert '"first_pub"' in _psql(server.port, "\\d orders")
    assert "first_pub" not in _psql(server.port, "\\d users")
    _psql(server.port, "CREATE PUBLICATION second_pub FOR TABLE orders, users")
    assert '"second_pub"' in _psql(server.port, "\\d users")
    both = _psql(server.port, "\\d orders")
    assert '"first_pub"' in both and '"second_pub"' in both
    listed = _psql(server.port, "\\dRp+")
    assert "first_pub" in listed and "second_pub" in listed and '"public.users"' in listed
