"""Real PostgreSQL subscribers of a publication with a column list and a row filter: the initial
copy and the live changes carry only the listed columns and the rows the filter allows, with
PostgreSQL 15's UPDATE semantics (into the filter -> INSERT, out of it -> DELETE)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from pgcluster import PgCluster, pg18_bindir, pg_bindir
from test_e2e_subscriber import apply_errors

from pgshim.reddb.values import TypedValue

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed"),
]


def country(code: str) -> TypedValue:
    return TypedValue(37, 1042, code)  # RedDB Country2: character(2)


def subscriber_rows(subscriber: PgCluster) -> list[str]:
    out = subscriber.psql("SELECT rid, name, age, country FROM users ORDER BY rid")
    return out.splitlines() if out else []


def wait_for(subscriber: PgCluster, expected: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    rows: list[str] = []
    while time.monotonic() < deadline:
        rows = subscriber_rows(subscriber)
        if rows == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"subscriber rows differ:\n{rows}\nexpected:\n{expected}")


def published(rows: dict[int, dict]) -> list[str]:
    """The rows the filter (age > 30) lets through, as psql -At prints the listed columns."""
    return [
        f"{rid}|{row['name']}|{row['age']}|{row['country']}"
        for rid, row in sorted(rows.items())
        if row["age"] > 30
    ]


@pytest.mark.parametrize("version", ["15", "18"])
def test_subscriber_with_column_list_and_row_filter(
    spool, pgshim, tmp_path: Path, version: str
) -> None:
    bindir = pg_bindir() if version == "15" else pg18_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL 18 binaries could not be fetched (no network, nothing cached)")
    rows: dict[int, dict] = {}

    def insert(name: str, age: int, code: str) -> int:
        _, rid = spool.insert("users", name=name, age=age, country=country(code), visits=age)
        rows[rid] = {"name": name, "age": age, "country": code}
        return rid

    def update(rid: int, **values: object) -> None:
        spool.update(
            "users", rid, **{k: country(v) if k == "country" else v for k, v in values.items()}
        )
        rows[rid].update({k: v for k, v in values.items() if k in ("name", "age", "country")})

    old = insert("old", 40, "DE")
    young = insert("young", 20, "FR")
    middle = insert("middle", 31, "IT")
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION pub FOR TABLE users (rid, name, age, country) WHERE (age > 30)")
    # the subscriber's table from what pgshim reports: the listed columns with their types
    names, types = server.psql(
        "SELECT columns, types FROM pgshim_collections WHERE tablename = 'users'"
    ).split("|")
    columns = dict(zip(names.strip("{}").split(","), types.strip("{}").split(","), strict=True))
    assert columns["country"] == "character(2)"
    ddl = ", ".join(f"{name} {columns[name]}" for name in ("rid", "name", "age", "country"))
    subscriber = PgCluster(tmp_path / f"subscriber{version}", bindir=bindir).start()
    try:
        subscriber.psql(f"CREATE TABLE users ({ddl}, PRIMARY KEY (rid))")
        # origin = none: PostgreSQL 16+ first asks the publisher (pg_subscription_rel,
        # pg_partition_ancestors, pg_partition_tree) whether the tables came from elsewhere
        options = " WITH (origin = none)" if version != "15" else ""
        subscriber.psql(
            f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 port={server.port} "
            f"user=postgres dbname=reddb' PUBLICATION pub{options}"
        )
        wait_for(subscriber, published(rows))  # the initial copy: rows with age > 30 only

        insert("new in", 50, "ES")  # INSERT matching
        outside = insert("new out", 10, "PT")  # INSERT not matching: not sent
        update(young, age=35)  # old out, new in: INSERT
        update(old, age=25)  # old in, new out: DELETE
        update(middle, name="mid")  # in and in: UPDATE
        spool.update("users", middle, visits=7)  # a column outside the list: UPDATE, same row
        gone = insert("gone", 60, "NL")
        spool.delete("users", gone)  # old row matched: DELETE
        del rows[gone]
        spool.delete("users", outside)  # old row did not match: nothing sent
        del rows[outside]
        update(old, age=45, name="back")  # out of the filter and in again: INSERT
        wait_for(subscriber, published(rows))
        assert apply_errors(subscriber) == []
        # the column list left "visits" out of every message (the table has no such column)
        assert "missing replicated column" not in subscriber.log_text()
    finally:
        subscriber.stop()


DDL_CASES = [
    ["CREATE PUBLICATION p FOR TABLE members (rid, rid)"],
    ["CREATE PUBLICATION p FOR TABLE members (rid, nope)"],
    ["CREATE PUBLICATION p FOR TABLE members (xmin)"],
    ["CREATE PUBLICATION p FOR TABLE members (rid, name), members (rid)"],
    ["CREATE PUBLICATION p FOR TABLE members WHERE (age > 1), members WHERE (age > 2)"],
    ["CREATE PUBLICATION p FOR TABLE members WHERE (nope > 1)"],
    ["CREATE PUBLICATION p FOR TABLE members WHERE (age > random())"],
    ["CREATE PUBLICATION p FOR TABLE members (rid)", "ALTER PUBLICATION p ADD TABLE members"],
    ["CREATE PUBLICATION p FOR TABLE members", "ALTER PUBLICATION p DROP TABLE members (name)"],
    [
        "CREATE PUBLICATION p FOR TABLE members",
        "ALTER PUBLICATION p DROP TABLE members WHERE (age > 1)",
    ],
    [
        "CREATE PUBLICATION p FOR TABLE members (rid, name) WHERE (age > 30 AND name <> 'x')",
        "SELECT * FROM pg_publication_tables",
    ],
    [
        "CREATE PUBLICATION p FOR TABLE members (rid, country)",
        "ALTER PUBLICATION p SET TABLE members (rid, age) WHERE (country = 'DE')",
        "SELECT * FROM pg_publication_tables",
        "SELECT prattrs FROM pg_publication_rel",
        "SELECT DISTINCT pg_get_expr(gpt.qual, gpt.relid) FROM pg_publication p,"
        " LATERAL pg_get_publication_tables(p.pubname) gpt WHERE p.pubname IN ('p')",
    ],
]


def outcome(dsn: str, statements: list[str]) -> list[object]:
    """Each statement's rows or (SQLSTATE, message, detail, position); the publication is
    dropped after."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    results: list[object] = []
    try:
        with conn.cursor() as cur:
            for statement in statements:
                try:
                    cur.execute(statement)
                    results.append(cur.fetchall() if cur.description else cur.statusmessage)
                except psycopg2.Error as error:
                    diag = error.diag
                    results.append((error.pgcode, diag.message_primary, diag.message_detail,
                                    diag.statement_position))  # fmt: skip
            cur.execute("DROP PUBLICATION IF EXISTS p")
    finally:
        conn.close()
    return results


def test_publication_ddl_as_postgresql(spool, pgshim, pg_cluster) -> None:
    spool.insert("members", age=40, country=country("DE"), name="ann", visits=1)
    server = pgshim(spool.path)
    pg_cluster.psql(
        "DROP TABLE IF EXISTS members; CREATE TABLE members (rid bigint PRIMARY KEY,"
        " age bigint, country character(2), name text, visits bigint)"
    )
    try:
        for statements in DDL_CASES:
            assert outcome(server.dsn(), statements) == outcome(pg_cluster.dsn(), statements)
        # psql's \dRp+ lists the column list and the row filter as for PostgreSQL
        create = (
            "CREATE PUBLICATION p FOR TABLE members (rid, name) WHERE (age > 30 AND name <> 'x')"
        )
        footers = []
        for dsn in (server.dsn(), pg_cluster.dsn()):
            psql = subprocess.run(["psql", "-X", "-d", dsn, "-c", create, "-c", "\\dRp+ p",
                                   "-c", "DROP PUBLICATION p"], capture_output=True, text=True)  # fmt: skip
            footers.append(psql.stdout[psql.stdout.index("Tables:") :].splitlines()[:2])
        assert footers[0] == footers[1]
        assert footers[0][1].strip() == (
            "\"public.members\" (rid, name) WHERE ((age > 30) AND (name <> 'x'::text))"
        )
    finally:
        pg_cluster.psql("DROP TABLE members")
    # PostgreSQL refuses the UPDATE of a table whose column list misses the replica identity;
    # pgshim cannot refuse RedDB's writes, so it refuses such a publication
    refused = outcome(server.dsn(), ["CREATE PUBLICATION p FOR TABLE members (name)"])
    assert refused[0][:3] == (  # type: ignore[index]
        "42P10",
        'cannot publish UPDATE or DELETE of table "members" with this column list',
        "Column list used by the publication does not cover the replica identity.",
    )
    allowed = ["CREATE PUBLICATION p FOR TABLE members (name) WITH (publish = 'insert')"]
    assert outcome(server.dsn(), allowed) == ["CREATE PUBLICATION"]
