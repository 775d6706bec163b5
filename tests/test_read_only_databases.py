"""The postgres and template1 databases are a read-only status view: what changes the server's
state there (slot functions, publication DDL) gets PostgreSQL's read-only transaction error,
while the configured database still does it; over psql and psycopg 3."""

from __future__ import annotations

import psycopg
import pytest
from pgcluster import PgCluster

pytestmark = pytest.mark.timeout(90)

WRITES = [
    ("SELECT pg_create_logical_replication_slot('s1', 'pgoutput')",
     "pg_create_logical_replication_slot()"),
    ("SELECT * FROM pg_create_logical_replication_slot('s1', 'test_decoding')",
     "pg_create_logical_replication_slot()"),
    ("SELECT pgshim_create_history_slot('s1', 'pgoutput')", "pgshim_create_history_slot()"),
    ("SELECT pg_drop_replication_slot('s0')", "pg_drop_replication_slot()"),
    ("SELECT * FROM pg_logical_slot_get_changes('s0', NULL, NULL)",
     "pg_logical_slot_get_changes()"),
    ("SELECT * FROM pg_replication_slot_advance('s0', '0/0')", "pg_replication_slot_advance()"),
    ("CREATE PUBLICATION p1 FOR ALL TABLES", "CREATE PUBLICATION"),
    ("ALTER PUBLICATION p0 ADD TABLE users", "ALTER PUBLICATION"),
    ("DROP PUBLICATION p0", "DROP PUBLICATION"),
]  # fmt: skip


@pytest.fixture
def server(spool, pgshim):  # noqa: ANN201 - a started pgshim with a slot and a publication
    spool.insert("users", name="ann")
    srv = pgshim(spool.path, "--server-version", "15")  # compared with pg_cluster
    with psycopg.connect(srv.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('s0', 'pgoutput')")
        conn.execute("CREATE PUBLICATION p0 FOR TABLE users")
    return srv


def _state(srv) -> tuple:  # noqa: ANN001
    with psycopg.connect(srv.dsn(), autocommit=True) as conn:
        slots = conn.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1").fetchall()
        pubs = conn.execute("SELECT pubname FROM pg_publication ORDER BY 1").fetchall()
        tables = conn.execute("SELECT tablename FROM pg_publication_tables").fetchall()
    return slots, pubs, tables


@pytest.mark.parametrize("dbname", ["postgres", "template1"])
def test_status_databases_refuse_writes(server, dbname: str) -> None:
    before = _state(server)
    with psycopg.connect(server.dsn(dbname=dbname), autocommit=True) as conn:
        for sql, command in WRITES:
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as caught:
                conn.execute(sql)
            assert caught.value.diag.message_primary == (
                f"cannot execute {command} in a read-only transaction"
            )
        # reading goes on as before
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (1,)
    assert _state(server) == before
    out = server.run("psql", "-X", "-d", dbname, "-c", WRITES[0][0])
    assert out.returncode == 1
    assert "ERROR:  cannot execute pg_create_logical_replication_slot() in a read-only " \
        "transaction" in out.stderr  # fmt: skip


def test_the_configured_database_still_writes(server) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('s1', 'pgoutput')")
        conn.execute("SELECT pgshim_create_history_slot('s2', 'pgoutput')")
        conn.execute("SELECT pg_drop_replication_slot('s0')")
        conn.execute("CREATE PUBLICATION p1 FOR ALL TABLES")
        conn.execute("DROP PUBLICATION p0")
    slots, pubs, _ = _state(server)
    assert slots == [("s1",), ("s2",)]
    assert pubs == [("p1",)]


def test_publication_ddl_words_are_postgresqls(server, pg_cluster: PgCluster) -> None:
    """PostgreSQL's own answer to publication DDL in a read-only transaction."""
    for sql, command in WRITES[-3:]:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = on")
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as theirs:
                conn.execute(sql)
        with (
            psycopg.connect(server.dsn(dbname="postgres"), autocommit=True) as conn,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as ours,
        ):
            conn.execute(sql)
        assert ours.value.diag.message_primary == theirs.value.diag.message_primary
        assert theirs.value.diag.message_primary.startswith(f"cannot execute {command}")
