"""Publication row filters: what PostgreSQL 15 refuses, how it prints them, which rows they let
through (each compared with a real PostgreSQL 15), and pgoutput's UPDATE transformation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg2
import pytest
from pglast import parse_sql

from pgshim.errors import PgError
from pgshim.logical.publications import (
    Publication,
    PublicationFilter,
    TableOptions,
)
from pgshim.logical.rowfilter import compile_filter, like, parse_filter
from pgshim.logical.transactions import Column, Relation, RowChange
from pgshim.plugins.published_rows import published_action, table_shape

COLUMNS = [
    Column("rid", 20, is_key=True), Column("name", 25), Column("age", 23),
    Column("country", 1042, 6), Column("score", 1700), Column("active", 16),
    Column("created", 1184),
]  # fmt: skip
DDL = (
    "CREATE TABLE users (rid bigint PRIMARY KEY, name text, age int, country char(2),"
    " score numeric, active boolean, created timestamptz)"
)
ROWS = [
    (1, "ann", 25, "DE", Decimal("1.5"), True, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
    (2, "bob", 35, "FR", Decimal("2.25"), False, dt.datetime(2019, 5, 1, tzinfo=dt.UTC)),
    (3, "a%b", None, "IT", None, None, None),
    (4, None, 31, None, Decimal("-3"), True, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
    (5, "Anna_x", 0, "de", Decimal("0"), False, dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)),
]
ALLOWED = [
    "age > 30",
    "age > 30 AND name <> 'x'",
    "age IN (1, 25, 35) AND name IS NOT NULL OR active IS TRUE",
    "age BETWEEN 20 AND 31",
    "age NOT BETWEEN 20 AND 31",
    "users.age >= 31",
    "created > '2020-01-01'",
    "country = 'DE'",
    "name LIKE 'a%'",
    "name NOT LIKE '%n%'",
    "name ILIKE 'a%'",
    "name LIKE 'a\\%b'",
    "name LIKE '_nna\\_x'",
    "age = ANY(ARRAY[0, 35])",
    "age IS DISTINCT FROM 35",
    "age IS NOT DISTINCT FROM NULL",
    "nullif(age, 35) > 1",
    "greatest(age, 30) = 30",
    "least(score, 1) < 1",
    "-age < -30",
    "age % 2 = 1",
    "age / 2 = 12",
    "age * 2 + 1 > 61",
    "abs(score) > 2",
    "length(name) > 3",
    "upper(name) || 'x' = 'ANNx'",
    "lower(name) = 'anna_x'",
    "coalesce(age, 99) > 90",
    "CASE WHEN age > 30 THEN true ELSE false END",
    "CASE age WHEN 25 THEN true WHEN 35 THEN false END",
    "score > 1.5",
    "score > 1",
    "age::numeric > 30.5",
    "score::int = 2",
    "score::int = -3",
    "age > 1::bigint",
    "NOT active",
    "active IS NOT FALSE",
    "active IS UNKNOWN",
    "true",
    "name IS NULL OR age IS NULL",
    "name > 'a' COLLATE \"C\"",
]
REFUSED = [
    "nope > 1",
    "now() > created",
    "random() > 0.5",
    "age > (SELECT 1)",
    "count(*) > 1",
    "age",
    "name",
    "nosuchfn(age) > 1",
    "other.age > 1",
    "age > $1",
    "age::text = '1'",
    "name::int > 1",
    "row_number() OVER () > 1",
    "'a' > 1",
    "age + 'x' > 1",
    'age > 1 COLLATE "C"',
    "current_date > created",
]


@pytest.fixture(scope="module")
def users_db(pg_cluster):
    conn = psycopg2.connect(pg_cluster.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS users CASCADE")
        cur.execute(DDL)
        cur.executemany("INSERT INTO users VALUES (%s, %s, %s, %s, %s, %s, %s)", ROWS)
    yield conn
    with conn.cursor() as cur:
        cur.execute("DROP TABLE users CASCADE")
    conn.close()


def compile_text(expression: str):
    statement = f"CREATE PUBLICATION f FOR TABLE users WHERE ({expression})"
    where = parse_sql(statement)[0].stmt.pubobjects[0].pubtable.whereClause
    return compile_filter(where, COLUMNS, "users", statement)


def postgres_publication(conn, expression: str) -> tuple[str, str | None]:
    """PostgreSQL's rowfilter text of the expression, or raises its error."""
    with conn.cursor() as cur:
        try:
            cur.execute(f"CREATE PUBLICATION f FOR TABLE users WHERE ({expression})")
            cur.execute("SELECT rowfilter FROM pg_publication_tables WHERE pubname = 'f'")
            return cur.fetchone()[0], None
        finally:
            cur.execute("DROP PUBLICATION IF EXISTS f")


@pytest.mark.parametrize("expression", ALLOWED)
def test_rows_and_text_as_postgresql(users_db, expression: str) -> None:
    row_filter = compile_text(expression)
    with users_db.cursor() as cur:
        cur.execute(f"SELECT rid FROM users WHERE ({expression}) ORDER BY rid")
        expected = [rid for (rid,) in cur.fetchall()]
    assert [row[0] for row in ROWS if row_filter.matches(list(row))] == expected
    text, _ = postgres_publication(users_db, expression)
    assert parse_filter(row_filter.text, COLUMNS, "users").text == row_filter.text
    # the printed text means the same to PostgreSQL (tablesync sends it back in COPY)
    with users_db.cursor() as cur:
        cur.execute(f"SELECT rid FROM users WHERE {row_filter.text} ORDER BY rid")
        assert [rid for (rid,) in cur.fetchall()] == expected
    if expression in ("age > 30", "age > 30 AND name <> 'x'", "created > '2020-01-01'"):
        assert row_filter.text == text


@pytest.mark.parametrize("expression", REFUSED)
def test_refusals_as_postgresql(users_db, expression: str) -> None:
    with pytest.raises(psycopg2.Error) as expected:
        postgres_publication(users_db, expression)
    with pytest.raises(PgError) as error:
        compile_text(expression)
    diag = expected.value.diag
    assert (error.value.sqlstate, error.value.message, error.value.detail) == (
        expected.value.pgcode,
        diag.message_primary,
        diag.message_detail,
    )
    if error.value.sqlstate == "22P02":
        assert error.value.position is None  # pglast's tree does not place constants
    else:
        assert error.value.position == int(diag.statement_position)


def test_what_pgshim_does_not_evaluate() -> None:
    with pytest.raises(PgError) as error:
        compile_text("name ~ 'a+'")
    assert error.value.sqlstate == "0A000"


def test_like_without_backtracking() -> None:
    assert like("abc", "a%c") and like("abc", "%") and like("", "%") and not like("abc", "a_")
    assert like("a%b", "a\\%b") and not like("axb", "a\\%b")
    assert not like("a" * 5000, "%a%a%a%a%a%b")  # linear in the text, not exponential
    assert like("xaybzc", "%a%b%c") and not like("xaybz", "%a%b%c")


USERS = Relation(16384, "public", "users", COLUMNS)


def shape(row_filter: str, publish: str = "insert, update, delete, truncate"):
    text = compile_text(row_filter).text
    publication = Publication(
        "p", False, frozenset(a.strip() for a in publish.split(",")), (("public", "users"),),
        {("public", "users"): TableOptions(("rid", "name"), text)},
    )  # fmt: skip
    return table_shape(PublicationFilter((publication,)), USERS)


def change(action: str, age: int | None) -> RowChange:
    values = [1, "x", age, "DE", None, None, None]
    return RowChange(action, USERS, values if action != "D" else None, values, 0, 0)


@pytest.mark.parametrize(
    ("old_age", "new_age", "sent"),
    [(40, 50, "U"), (20, 50, "I"), (40, 20, "D"), (20, 10, None), (None, 50, "I")],
)
def test_update_becomes_what_postgresql_sends(old_age, new_age, sent) -> None:
    table = shape("age > 30")
    old = None if old_age is None else change("I", old_age).new
    assert published_action(table, change("U", new_age), old) == sent


def test_insert_delete_and_column_list() -> None:
    table = shape("age > 30")
    assert published_action(table, change("I", 31), None) == "I"
    assert published_action(table, change("I", 30), None) is None
    assert published_action(table, change("D", None), change("I", 40).new) == "D"
    assert published_action(table, change("D", None), change("I", 4).new) is None
    assert published_action(table, change("T", None), None) == "T"
    assert [column.name for column in table.columns] == ["rid", "name"]
    assert table.project([1, "x", 3, "DE"]) == [1, "x"]
    # a publication that does not publish updates has no update filter
    assert shape("age > 30", "insert").filters["U"] is None


def test_old_rows_replay_the_history_before_the_first_streamed_change() -> None:
    from pgshim.logical.transactions import Transaction
    from pgshim.plugins.published_rows import OldRows

    def tx(n: int, *changes: RowChange) -> Transaction:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        return Transaction(n, n, n, n * 10, n * 10 + 5, n * 10 + 9, now, list(changes), [])

    def row(rid: int, age: int) -> list:
        return [rid, "x", age, None, None, None, None]

    history = [
        tx(1, RowChange("I", USERS, row(1, 40), None, 10, 1)),
        tx(2, RowChange("I", USERS, row(2, 20), None, 20, 2)),
        tx(3, RowChange("U", USERS, row(1, 45), None, 30, 3)),
        tx(4, RowChange("D", USERS, None, row(2, 0), 40, 4)),
        tx(5, RowChange("U", USERS, row(1, 10), None, 50, 5)),
    ]
    old_rows = OldRows(lambda: iter(history))
    rows = old_rows.rows_of(USERS, history[4])  # what the stream starting at tx 5 needs
    assert rows == {1: row(1, 45)}
    assert published_action(shape("age > 30"), history[4].changes[0], rows[1]) == "D"


def _history(count: int) -> list:
    from pgshim.logical.transactions import Transaction

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        Transaction(
            n,
            n,
            n,
            n * 10,
            n * 10 + 5,
            n * 10 + 9,
            now,
            [
                RowChange(
                    "I" if n <= 3 else "U",
                    USERS,
                    [n % 3 + 1, "x" * 20, n, None, None, None, None],
                    None,
                    n * 10,
                    n,
                )
            ],
            [],
        )  # fmt: skip
        for n in range(1, count + 1)
    ]


def test_old_rows_rebuilt_in_paced_steps_are_the_synchronous_replay() -> None:
    import asyncio

    from pgshim.plugins.published_rows import OldRows
    from pgshim.sql.bounds import Bound

    history = _history(1000)
    at_once = OldRows(lambda: iter(history))
    expected = at_once.rows_of(USERS, history[990])
    paced = OldRows(lambda: iter(history))
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    async def rebuild() -> None:
        counter = asyncio.ensure_future(count_turns())
        await paced.rebuild({USERS.oid: USERS}, history[990].commit_pos, Bound())
        counter.cancel()

    asyncio.run(rebuild())
    assert paced.kept(USERS) and paced.rows_of(USERS, history[990]) == expected
    assert turns >= 2  # the other task ran between the steps (at once: never)
    assert paced.used == at_once.used > 0


def test_old_rows_are_bounded_and_a_stopped_replay_keeps_nothing() -> None:
    from pgshim.plugins.published_rows import OldRows, row_bytes

    history = _history(50)
    row = history[0].changes[0].new
    old_rows = OldRows(lambda: iter(history), budget=3 * row_bytes(row))
    old_rows.rows_of(USERS, history[-1])  # three ids: within the budget
    assert old_rows.used == 3 * row_bytes(row)
    old_rows.take(RowChange("D", USERS, None, [1, None, None, None, None, None, None], 0, 0))
    assert old_rows.used == 2 * row_bytes(row)
    with pytest.raises(PgError) as caught:  # a fourth, larger row is one too many
        old_rows.take(RowChange("I", USERS, [9, "y" * 100, 1, None, None, None, None], None, 0, 0))
    assert caught.value.sqlstate == "53200"

    stopped = OldRows(lambda: iter(history))
    replay = stopped._replay({USERS.oid: USERS}, history[-1].commit_pos)
    next(replay)
    replay.close()
    assert not stopped.kept(USERS) and stopped.used == 0
