"""CREATE PUBLICATION ... FOR TABLES IN SCHEMA (PostgreSQL 15): every collection of the schema,
later ones too. pgshim's answers (rows, errors, psql's \\dRp+ and \\d) are compared with a real
PostgreSQL 15 holding the same tables, and the schema's collections are streamed by pgoutput."""

from __future__ import annotations

import select
import subprocess
import time

import psycopg2
import psycopg2.extras
import pytest
from pgcluster import pg_bindir
from pgoutput_parser import parse
from test_e2e_subscriber_filters import outcome

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed"),
]

TABLES = "SELECT tablename, attnames, rowfilter FROM pg_publication_tables WHERE pubname = 'p'" \
         " ORDER BY tablename"  # fmt: skip
SCHEMAS = (
    "SELECT n.nspname FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid"
    " JOIN pg_publication p ON p.oid = pn.pnpubid WHERE p.pubname = 'p'"
)

CASES = [
    ["CREATE PUBLICATION p FOR TABLES IN SCHEMA public", TABLES, SCHEMAS],
    ["CREATE PUBLICATION p FOR TABLES IN SCHEMA CURRENT_SCHEMA", SCHEMAS],
    [
        "CREATE PUBLICATION p FOR TABLES IN SCHEMA public, TABLE members WHERE (age > 30)",
        TABLES,
        "SELECT count(*) FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid"
        " WHERE p.pubname = 'p'",
    ],
    ["CREATE PUBLICATION p FOR TABLES IN SCHEMA nope"],
    ["CREATE PUBLICATION p FOR TABLES IN SCHEMA pg_catalog"],
    ["CREATE PUBLICATION p FOR TABLES IN SCHEMA public, TABLE members (rid, age)"],
    [
        "CREATE PUBLICATION p FOR TABLE members (rid, age)",
        "ALTER PUBLICATION p ADD TABLES IN SCHEMA public",
    ],
    [
        "CREATE PUBLICATION p FOR TABLES IN SCHEMA public",
        "ALTER PUBLICATION p ADD TABLES IN SCHEMA public",
        "ALTER PUBLICATION p ADD TABLE members (rid)",
        "ALTER PUBLICATION p ADD TABLE members",
        TABLES,
        SCHEMAS,
    ],
    [
        "CREATE PUBLICATION p",
        "ALTER PUBLICATION p DROP TABLES IN SCHEMA public",
        "ALTER PUBLICATION p ADD TABLES IN SCHEMA public",
        TABLES,
        "ALTER PUBLICATION p DROP TABLES IN SCHEMA public, TABLE members",
        SCHEMAS,
        "ALTER PUBLICATION p DROP TABLES IN SCHEMA public",
        SCHEMAS,
        TABLES,
    ],
    [
        "CREATE PUBLICATION p FOR ALL TABLES",
        "ALTER PUBLICATION p ADD TABLES IN SCHEMA public",
        "ALTER PUBLICATION p DROP TABLES IN SCHEMA public, TABLE members",
        "ALTER PUBLICATION p SET TABLE members",
        "ALTER PUBLICATION p SET TABLES IN SCHEMA public",
    ],
    [
        "CREATE PUBLICATION p FOR TABLE members",
        "ALTER PUBLICATION p SET TABLES IN SCHEMA public",
        TABLES,
        SCHEMAS,
        "ALTER PUBLICATION p SET TABLE orders",
        TABLES,
        SCHEMAS,
    ],
]


def _psql(dsn: str, *commands: str) -> str:
    args = ["psql", "-X", "-d", dsn]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, capture_output=True, text=True, timeout=60).stdout


def test_schema_publications_as_postgresql(spool, pgshim, pg_cluster) -> None:
    spool.insert("members", age=40, name="ann")
    spool.insert("orders", item="x", qty=2)
    server = pgshim(spool.path, *pg_cluster.server_version_args())
    pg_cluster.psql(
        "DROP TABLE IF EXISTS members, orders;"
        " CREATE TABLE members (rid bigint PRIMARY KEY, age bigint, name text);"
        " CREATE TABLE orders (rid bigint PRIMARY KEY, item text, qty bigint)"
    )
    try:
        for statements in CASES:
            assert outcome(server.dsn(), statements) == outcome(pg_cluster.dsn(), statements)
        # psql 15's \dRp+ lists the schemas (and the tables named too), \d the publications
        commands = (
            "CREATE PUBLICATION p FOR TABLES IN SCHEMA public, TABLE members WHERE (age > 30)",
            "CREATE PUBLICATION q FOR TABLE orders",
            "\\dRp+ p",
            "\\d orders",
            "DROP PUBLICATION p",
            "DROP PUBLICATION q",
        )
        ours, theirs = _psql(server.dsn(), *commands), _psql(pg_cluster.dsn(), *commands)
        assert 'Tables from schemas:\n    "public"' in ours
        assert ours[ours.index("Publication p") :] == theirs[theirs.index("Publication p") :]
    finally:
        pg_cluster.psql("DROP TABLE members, orders")


def test_a_schema_publication_streams_collections_made_later(spool, pgshim) -> None:
    spool.insert("members", age=40, name="ann")
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION p FOR TABLES IN SCHEMA public")
    conn = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        cur = conn.cursor()
        cur.create_replication_slot("s", output_plugin="pgoutput")
        spool.insert("later", label="new")  # a collection that did not exist before
        spool.insert("members", age=20, name="bob")
        cur.start_replication(
            slot_name="s", decode=False, options={"proto_version": "1", "publication_names": "p"}
        )
        messages: list[dict] = []
        deadline = time.monotonic() + 30
        while len(messages) < 8:
            message = cur.read_message()
            if message is not None:
                messages.append(parse(message.payload))
                continue
            assert time.monotonic() < deadline, messages
            select.select([cur], [], [], 0.5)
    finally:
        conn.close()
    assert [m["type"] for m in messages] == ["B", "R", "I", "C", "B", "R", "I", "C"]
    assert [messages[1]["name"], messages[5]["name"]] == ["later", "members"]
    tables = server.psql("SELECT tablename FROM pg_publication_tables ORDER BY 1").split()
    assert tables == ["later", "members"]


def test_a_postgresql_15_subscriber_of_a_schema_publication(spool, pgshim, tmp_path) -> None:
    """The initial copy and the changes of every collection of the schema, and the row filter
    of a table named beside the schema is not applied (as PostgreSQL 15's publisher does)."""
    from pgcluster import PgCluster
    from test_e2e_subscriber import apply_errors

    _, young = spool.insert("members", age=20, name="ann")
    spool.insert("orders", item="x", qty=2)
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION p FOR TABLES IN SCHEMA public, TABLE members WHERE (age > 30)")
    subscriber = PgCluster(tmp_path / "subscriber").start()
    try:
        subscriber.psql(
            "CREATE TABLE members (rid bigint PRIMARY KEY, age bigint, name text);"
            " CREATE TABLE orders (rid bigint PRIMARY KEY, item text, qty bigint)"
        )
        subscriber.psql(
            f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 port={server.port} "
            "user=postgres dbname=reddb' PUBLICATION p"
        )
        expected = ["members|1", "orders|1"]
        query = "SELECT 'members', count(*) FROM members UNION ALL SELECT 'orders', count(*)" \
                " FROM orders ORDER BY 1"  # fmt: skip
        deadline = time.monotonic() + 60
        while subscriber.psql(query).replace(" ", "").splitlines() != expected:
            assert time.monotonic() < deadline, subscriber.psql(query)
            time.sleep(0.2)
        spool.update("members", young, age=25)  # outside the (ignored) filter: still sent
        spool.insert("orders", item="y", qty=3)
        deadline = time.monotonic() + 60
        while subscriber.psql(query).replace(" ", "").splitlines() != ["members|1", "orders|2"] \
                or subscriber.psql("SELECT age FROM members") != "25":  # fmt: skip
            assert time.monotonic() < deadline, subscriber.psql(query)
            time.sleep(0.2)
        assert apply_errors(subscriber) == []
    finally:
        subscriber.stop()
