"""Bad statements get PostgreSQL 15's error: pgshim and a real PostgreSQL 15 holding the same
tables (made from pgshim_collections) answer each statement of a corpus with the same SQLSTATE,
message, hint and position, over the simple (psycopg2) and the extended (psycopg 3) protocol."""

from __future__ import annotations

import psycopg
import psycopg2
import pytest
from pgcluster import PgCluster
from twins import users_and_orders

pytestmark = pytest.mark.timeout(180)

DATABASE = "errors"  # PostgreSQL's copy of pgshim's tables

CORPUS = [
    # columns and tables that are not there (42703, 42P01), with PostgreSQL's hints
    "SELECT nope FROM users",
    "SELECT users.nope FROM users",
    "SELECT 'é', nope FROM users",
    "  SELECT nope FROM users",
    "SELECT nope",
    "SELECT name FROM users ORDER BY nope",
    "SELECT x.name FROM users",
    "SELECT users.name FROM users u",
    "SELECT u.name FROM users u JOIN orders o ON o.item = u.nam",
    "SELECT 1 FROM users a JOIN orders b ON c.rid = a.rid JOIN users c ON true",
    "SELECT name FROM users WHERE rid IN (SELECT rid FROM orders WHERE itme = 'x')",
    "WITH t AS (SELECT rid AS id FROM users) SELECT idd FROM t",
    "SELECT s.x FROM (SELECT 1 AS y) s",
    "SELECT x FROM (SELECT 1 AS y) s",
    "SELECT age AS a FROM users ORDER BY a + 1",
    "SELECT relname FROM pg_class WHERE relnam = 'x'",
    "SELECT slot_name FROM pg_replication_slots WHERE nope = 1",
    "SELECT slot_name FROM pg_replication_slots s WHERE s.slotname = 'x'",
    "SELECT * FROM users u JOIN orders o USING (nope)",
    "SELECT t.*",
    "SELECT ri FROM users u, orders o",
    "SELECT ri FROM users u, orders o, users x",
    # relations, functions and types pgshim has not (42P01, 42883, 42704), with positions
    "SELECT * FROM nope",
    "SELECT * FROM users, public.nope",
    "SELECT 1::nosuchtype",
    "SELECT CAST(1 AS nosuch)",
    "SELECT f(1)",
    "SELECT pg_catalog.f(1, 'a')",
    "SELECT * FROM f(1)",
    "SELECT 1 FROM users WHERE name = f(2)",
    # ambiguous columns (42702)
    "SELECT name FROM users u, users v",
    "SELECT rid FROM users JOIN orders ON true",
    "SELECT 1 FROM users u, orders o WHERE rid = 1",
    # functions and operators that do not exist for the argument types (42883)
    "SELECT abs('a'::text)",
    "SELECT length(1)",
    "SELECT substr(1, 2)",
    "SELECT array_length(1, 1)",
    "SELECT sum(name) FROM users",
    "SELECT 1 + 'a'::text",
    "SELECT name + 1 FROM users",
    "SELECT -'a'::text",
    # operators PostgreSQL has not for a column's type and a number (42883), found before running
    "SELECT age FROM users WHERE name = 1",
    "SELECT age FROM users WHERE 1.5 = name",
    "SELECT age FROM users u WHERE u.name <> 12345678901",
    "SELECT age FROM users WHERE active = 1",
    "SELECT age FROM users WHERE born > 5",
    "SELECT name - 1 FROM users",
    "SELECT count(*) FROM users GROUP BY name HAVING name = 2",
    "SELECT slot_name FROM pg_replication_slots WHERE slot_name = 1",
    "SELECT 'a'::text LIKE 1",
    # conditions and set operations of types that do not fit (42804)
    "SELECT name FROM users WHERE 1",
    "SELECT 1 WHERE 1",
    "SELECT 1 FROM users JOIN orders ON 1",
    "SELECT (SELECT 1 WHERE 1)",
    "SELECT 1.5 WHERE 1.5",
    "SELECT name FROM users WHERE age",
    "SELECT name FROM users u WHERE u.name",
    "SELECT count(*) FROM users HAVING 2",
    "SELECT 1 FROM users JOIN orders ON users.rid",
    "SELECT name FROM users UNION SELECT 1",
    "SELECT name, age FROM users UNION ALL SELECT item, qty FROM orders",
    "SELECT age FROM users EXCEPT SELECT 'x'::text",
    "SELECT true UNION SELECT 1",
    # invalid input (22P02, 22007) and values out of range (22003)
    "SELECT 'x'::int",
    "SELECT * FROM users WHERE age = 'abc'",
    "SELECT item FROM orders WHERE qty > 'x'",
    "SELECT * FROM users LIMIT 'a'",
    "SELECT 'x'::bool",
    "SELECT 'x'::float8",
    "SELECT 'x'::uuid",
    "SELECT 'abc'::date",
    "SELECT 2147483647::int + 1",
    "SELECT 9223372036854775807::bigint * 2",
    "SELECT 300000::smallint",
    # division by zero (22012)
    "SELECT 1/0",
    "SELECT 1::int / 0.0",
    "SELECT 1 % 0",
    # grouping and aggregates (42803)
    "SELECT name, count(*) FROM users",
    "SELECT name FROM users GROUP BY age",
    "SELECT count(*) FROM users HAVING name = 'a'",
    "SELECT u.age FROM users u GROUP BY u.name",
    "SELECT sum(count(*)) FROM users",
    "SELECT * FROM users WHERE count(*) > 1",
    "SELECT count(*) AS n FROM users GROUP BY n",
    # positions in the select list (42P10), set operations and syntax (42601)
    "SELECT count(*) FROM users GROUP BY 3",
    "SELECT rid, name FROM users ORDER BY 30",
    "SELECT 1 UNION SELECT 1, 2",
    "SELECT 1 INTERSECT SELECT 1, 2",
    "SELECT *",
    "SELECT FROM WHERE",
    "SELECT 1 +",
    # a subquery's rows (21000), LIMIT and OFFSET (2201W, 2201X)
    "SELECT (SELECT 1 UNION ALL SELECT 2)",
    "SELECT * FROM users LIMIT -1",
    "SELECT 1 OFFSET -1",
    # what is right stays right: integer division, names that do resolve
    "SELECT 5 / 2, -7 / 2, 7.0 / 2",
    "SELECT rid FROM users JOIN orders USING (rid)",
    "SELECT rid FROM users NATURAL JOIN orders",
    "SELECT age AS a FROM users ORDER BY a",
    "SELECT users FROM users",
    "SELECT born + 1, name || 1 FROM users WHERE age = '3' AND score > 1",
    "SELECT name FROM users WHERE active AND true",
    "SELECT 1::int UNION SELECT 2::bigint UNION SELECT 1.5",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster):
    with users_and_orders(tmp_path_factory.mktemp("sqlerrors"), pg_cluster, DATABASE) as server:
        yield server, pg_cluster


def _answer_psycopg2(dsn: str, sql: str) -> tuple:
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return ("ok", cur.fetchall())
    except psycopg2.Error as error:
        diag = error.diag
        return (diag.sqlstate, diag.message_primary, diag.message_hint, diag.statement_position)
    finally:
        conn.close()


def _answer_psycopg(dsn: str, sql: str) -> tuple:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            return ("ok", conn.execute(sql).fetchall())
        except psycopg.Error as error:
            diag = error.diag
            return (diag.sqlstate, diag.message_primary, diag.message_hint, diag.statement_position)


@pytest.mark.parametrize("answer", [_answer_psycopg2, _answer_psycopg], ids=["simple", "extended"])
@pytest.mark.parametrize("sql", CORPUS)
def test_error_is_postgresqls(servers, answer, sql: str) -> None:
    server, pg = servers
    ours = answer(server.dsn(), sql)
    theirs = answer(pg.dsn(DATABASE), sql)
    if theirs[0] == "ok":  # the tables differ in rows only: compare outcomes, not rows
        assert ours[0] == "ok", ours
    else:
        assert ours == theirs


def test_position_counts_from_the_message_start(servers) -> None:
    """In a Query message of several statements a position counts from the message's start."""
    server, pg = servers
    sql = "SELECT 1; SELECT nope FROM users"
    assert _answer_psycopg2(server.dsn(), sql) == _answer_psycopg2(pg.dsn(DATABASE), sql)
