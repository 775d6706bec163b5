"""Splitting and classifying SQL statements by PostgreSQL's grammar."""

from __future__ import annotations

import time

import pytest

from pgshim.errors import PgError
from pgshim.sql.parse import StatementKind, parse_statements
from pgshim.sql.parse import split_statements as split_statements_only


def split_statements(sql: str) -> list[str]:
    return [statement.text for statement in parse_statements(sql)]


def classify(sql: str):  # noqa: ANN201
    (statement,) = parse_statements(sql)
    return statement


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';'; SELECT 2", ["SELECT ';'", "SELECT 2"]),
        ('SELECT 1 AS "a;b"', ['SELECT 1 AS "a;b"']),
        ("SELECT 'it''s; here'", ["SELECT 'it''s; here'"]),
        ("SELECT E'\\'; x'; SELECT 3", ["SELECT '''; x'", "SELECT 3"]),
        ("SELECT $$a;b$$; SELECT $tag$ ; $$ ; $tag$", ["SELECT 'a;b'", "SELECT ' ; $$ ; '"]),
        ("SELECT 1 -- c; d\n; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("/* a; /* nested; */ b; */ SELECT 1", ["SELECT 1"]),
        ("SELECT $1; SELECT 2", ["SELECT $1", "SELECT 2"]),
        (";;  ; ", []),
        ("", []),
        ("-- only a comment", []),
        ("/* c */ ; SELECT 1", ["SELECT 1"]),
        # PostgreSQL ends a -- comment at a carriage return too: what follows is a statement
        ("SELECT 1 -- \r; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1 -- \r, 2", ["SELECT 1, 2"]),
    ],
)
def test_split(sql: str, expected: list[str]) -> None:
    assert split_statements(sql) == expected


@pytest.mark.parametrize(
    ("stmt", "kind", "tag"),
    [
        ("select 1", StatementKind.QUERY, "SELECT"),
        ("  (SELECT 1)", StatementKind.QUERY, "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", StatementKind.QUERY, "SELECT"),
        ("VALUES (1)", StatementKind.QUERY, "SELECT"),
        ("/* hi */ SHOW wal_level", StatementKind.SHOW, "SHOW"),
        ("SET search_path = ''", StatementKind.SET, "SET"),
        ("RESET ALL", StatementKind.RESET, "RESET"),
        ("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ", StatementKind.BEGIN, "BEGIN"),
        ("START TRANSACTION", StatementKind.BEGIN, "START TRANSACTION"),
        ("COMMIT", StatementKind.COMMIT, "COMMIT"),
        ("END", StatementKind.COMMIT, "COMMIT"),
        ("ROLLBACK", StatementKind.ROLLBACK, "ROLLBACK"),
        ("ABORT", StatementKind.ROLLBACK, "ROLLBACK"),
        ("ROLLBACK TO SAVEPOINT s", StatementKind.ROLLBACK_TO, "ROLLBACK"),
        ("SAVEPOINT s", StatementKind.SAVEPOINT, "SAVEPOINT"),
        ("RELEASE SAVEPOINT s", StatementKind.RELEASE, "RELEASE"),
        ("COPY public.t (a) TO STDOUT", StatementKind.COPY, "COPY"),
        ("DISCARD ALL", StatementKind.NOOP, "DISCARD ALL"),
        ("DEALLOCATE ALL", StatementKind.NOOP, "DEALLOCATE ALL"),
        ("LISTEN x", StatementKind.NOOP, "LISTEN"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", StatementKind.DECLARE, "DECLARE CURSOR"),
        ("FETCH ALL FROM c", StatementKind.FETCH, "FETCH"),
        ("MOVE 5 IN c", StatementKind.FETCH, "MOVE"),
        ("CLOSE c", StatementKind.CLOSE, "CLOSE CURSOR"),
        ("CLOSE ALL", StatementKind.CLOSE, "CLOSE CURSOR ALL"),
        ("CREATE PUBLICATION p FOR ALL TABLES", StatementKind.PUBLICATION, "CREATE PUBLICATION"),
        ("alter publication p add table t", StatementKind.PUBLICATION, "ALTER PUBLICATION"),
        ("DROP PUBLICATION IF EXISTS p", StatementKind.PUBLICATION, "DROP PUBLICATION"),
    ],
)
def test_classify(stmt: str, kind: StatementKind, tag: str) -> None:
    classified = classify(stmt)
    assert (classified.kind, classified.tag) == (kind, tag)


@pytest.mark.parametrize(
    ("stmt", "message"),
    [
        ("INSERT INTO t VALUES (1)", "cannot execute INSERT in a read-only transaction"),
        ("update t set a = 1", "cannot execute UPDATE in a read-only transaction"),
        ("DELETE FROM t", "cannot execute DELETE in a read-only transaction"),
        ("CREATE TABLE t (a int)", "cannot execute CREATE TABLE in a read-only transaction"),
        ("DROP TABLE t", "cannot execute DROP TABLE in a read-only transaction"),
        ("TRUNCATE t", "cannot execute TRUNCATE TABLE in a read-only transaction"),
        ("GRANT ALL ON t TO u", "cannot execute GRANT in a read-only transaction"),
    ],
)
def test_writes_are_read_only_errors(stmt: str, message: str) -> None:
    with pytest.raises(PgError) as caught:
        classify(stmt)
    assert (caught.value.sqlstate, caught.value.message) == ("25006", message)


@pytest.mark.parametrize("stmt", ["PREPARE p AS SELECT 1", "NOTIFY c", "EXPLAIN SELECT 1"])
def test_unsupported(stmt: str) -> None:
    with pytest.raises(PgError) as caught:
        classify(stmt)
    assert caught.value.sqlstate == "0A000"
    assert stmt.split()[0].upper() in caught.value.message


def test_a_tree_too_deep_is_refused_like_postgresql() -> None:
    with pytest.raises(PgError) as caught:
        classify("SELECT " + " + ".join(["1"] * 5000))
    assert caught.value.sqlstate == "54001"
    with pytest.raises(PgError) as caught:
        classify("SELECT " + "(" * 20000 + "1" + ")" * 20000)
    assert caught.value.sqlstate == "42601"  # bison's "memory exhausted", as PostgreSQL says


def test_many_statements_are_split_without_building_their_trees() -> None:
    started = time.perf_counter()
    assert len(split_statements_only("SELECT 1;" * 100_000)) == 100_000
    assert time.perf_counter() - started < 2.0  # building 100k trees at once took 15 s


def test_a_syntax_error_anywhere_refuses_the_whole_message() -> None:
    with pytest.raises(PgError) as caught:
        split_statements_only("SELECT 1; SELECT 2; selec 3")
    assert (caught.value.sqlstate, caught.value.position) == ("42601", 21)
