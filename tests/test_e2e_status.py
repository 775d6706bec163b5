"""Status over SQL from psql, psycopg 3, asyncpg and psycopg2 against a real pgshim with slots."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess

import asyncpg
import psycopg
import psycopg2
import pytest
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def busy_server(spool, pgshim):
    """A server with two slots, one of them confirmed up to the second of three changes."""
    lsns = [spool.insert("users", name=f"u{i}")[0] for i in range(3)]
    server = pgshim(spool.path)
    env = server.env_for_clients()
    for slot in ("alpha", "beta"):
        subprocess.run(
            ["psql", "-X", "-c", f"SELECT pgshim_create_history_slot('{slot}', 'test_decoding')"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-S", "alpha", "--start", "-f", "-", "--endpos",
         end_pos(lsns[1])], env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return server, lsns


def test_psql_expanded_and_plain(busy_server) -> None:
    server, lsns = busy_server
    script = (
        "\\x on\n"
        "SELECT slot_name, plugin, confirmed_flush_lsn FROM pg_replication_slots "
        "WHERE slot_name = 'alpha';\n"
        "\\x off\n"
        "SELECT count(*) AS slots, max(confirmed_flush_lsn) FROM pg_replication_slots;\n"
        "SELECT current_database(), current_user, pg_is_in_recovery();\n"
        "SHOW server_version;\n"
    )
    out = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1"], input=script, env=server.env_for_clients(),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "slot_name           | alpha" in text
    assert f"confirmed_flush_lsn | {end_pos(lsns[1])}" in text
    assert f"     2 | {end_pos(lsns[1])}" in text
    assert " reddb            | postgres     | f" in text
    assert "18." in text.split("server_version")[1]  # the default


def test_psycopg3_parameters_past_prepare_threshold(busy_server) -> None:
    server, lsns = busy_server
    with psycopg.connect(server.dsn()) as conn:
        seen = []
        for _ in range(8):  # the 6th execution switches to a named prepared statement
            row = conn.execute(
                "SELECT slot_name, confirmed_flush_lsn::text FROM pg_replication_slots"
                " WHERE slot_name = %s",
                ("alpha",),
            ).fetchone()
            seen.append(row)
        assert seen == [("alpha", end_pos(lsns[1]))] * 8
        lag = conn.execute(
            "SELECT replica_id, last_durable_lsn FROM pgshim_replicas WHERE slot_name = %s",
            ("alpha",),
        ).fetchall()
        assert lag == [("pgshim:alpha", lsns[1])]
        conn.rollback()


def test_asyncpg_binary_results(busy_server) -> None:
    server, lsns = busy_server

    async def main() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user="postgres", database="reddb"
        )
        try:
            rows = await conn.fetch(
                "SELECT slot_name, active, confirmed_flush_lsn, datoid FROM pg_replication_slots"
                " ORDER BY slot_name"
            )
            assert [r["slot_name"] for r in rows] == ["alpha", "beta"]
            assert rows[0]["active"] is False
            assert rows[0]["confirmed_flush_lsn"] in (end_pos(lsns[1]), (lsns[1] << 8) | 0xFF)
            records = await conn.fetchval("SELECT records FROM pgshim_spool")
            assert records == 3
            row = await conn.fetchrow(
                "SELECT last_lsn, bytes > $1::int8 AS big FROM pgshim_spool", 10
            )
            assert (row["last_lsn"], row["big"]) == (lsns[-1], True)
            now = await conn.fetchval("SELECT now()")
            assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        finally:
            await conn.close()

    asyncio.run(main())


def test_psycopg2_plain_connection(busy_server) -> None:
    server, _ = busy_server
    conn = psycopg2.connect(server.dsn())
    cur = conn.cursor()
    cur.execute("SELECT collection FROM (SELECT tablename AS collection FROM pgshim_collections) c")
    assert cur.fetchall() == [("users",)]
    cur.execute("SELECT pg_current_wal_lsn()::text")
    assert cur.fetchone()[0].endswith("FF")
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        cur.execute("INSERT INTO users VALUES (1)")
    conn.rollback()
    conn.close()


def test_commit_waiter_is_visible(busy_server) -> None:
    server, lsns = busy_server
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT acking_replicas, durable_on_one FROM pgshim_commit_waiter"
        ).fetchone()
        assert row == (1, lsns[1])  # alpha confirmed the second change
        durable = conn.execute(
            "SELECT pgshim_is_durable(%s, 1), pgshim_is_durable(%s, 1), pgshim_is_durable(%s, 2)",
            (lsns[1], lsns[2], lsns[1]),
        ).fetchone()
        assert durable == (True, False, False)
