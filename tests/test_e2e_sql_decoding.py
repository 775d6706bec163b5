"""SQL-level decoding through psycopg 3: peek/get (text and binary) and slot advance."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from pgoutput_parser import parse
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(60)


def connect(server) -> psycopg.Connection:
    return psycopg.connect(server.dsn(), autocommit=True)


def test_peek_get_and_advance(spool, pgshim) -> None:
    server = pgshim(spool.path)
    with connect(server) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('sq', 'test_decoding')")
        lsns = [spool.insert("items", label=f"item {i}")[0] for i in range(5)]

        peek = conn.execute(
            "SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes("
            "'sq', NULL, NULL, 'include-xids', '0')"
        ).fetchall()
        assert len(peek) == 15
        assert peek[0][2] == "BEGIN" and peek[2] == (end_pos(lsns[0]), str(lsns[0]), "COMMIT")
        # peeking again gives the same rows: nothing was consumed
        again = conn.execute("SELECT count(*) FROM pg_logical_slot_peek_changes('sq', NULL, NULL)")
        assert again.fetchone() == (15,)

        # upto_nchanges stops after the transaction in which the count is reached
        got = conn.execute("SELECT data FROM pg_logical_slot_get_changes('sq', NULL, 4)").fetchall()
        assert [row[0].split(" ")[0] for row in got] == ["BEGIN", "table", "COMMIT"] * 2
        slot = conn.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots").fetchone()
        assert slot == (end_pos(lsns[1]),)

        # upto_lsn: transactions whose commit starts before it
        got = conn.execute(
            "SELECT data FROM pg_logical_slot_get_changes('sq', %s, NULL)", (end_pos(lsns[2]),)
        ).fetchall()
        assert got[0][0] == f"BEGIN {lsns[2]}" and len(got) == 3

        advanced = conn.execute(
            "SELECT slot_name, end_lsn::text FROM pg_replication_slot_advance('sq', %s)",
            (end_pos(lsns[3]),),
        ).fetchone()
        assert advanced == ("sq", end_pos(lsns[3]))
        rest = conn.execute("SELECT data FROM pg_logical_slot_get_changes('sq', NULL, NULL)")
        assert rest.fetchall()[0][0] == f"BEGIN {lsns[4]}"

        with pytest.raises(psycopg.errors.InvalidParameterValue, match="minimum is"):
            conn.execute("SELECT * FROM pg_replication_slot_advance('sq', '0/1')")
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("SELECT * FROM pg_logical_slot_get_changes('nope', NULL, NULL)")


def test_binary_changes_with_pgoutput(spool, pgshim) -> None:
    server = pgshim(spool.path)
    with connect(server) as conn:
        conn.execute("CREATE PUBLICATION allpub FOR ALL TABLES")
        conn.execute("SELECT pg_create_logical_replication_slot('bin', 'pgoutput')")
        lsn, rid = spool.insert("items", label="boxed", qty=3)
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="binary output"):
            conn.execute("SELECT * FROM pg_logical_slot_peek_changes('bin', NULL, NULL)")
        rows = conn.execute(
            "SELECT data FROM pg_logical_slot_get_binary_changes('bin', NULL, NULL,"
            " 'proto_version', '1', 'publication_names', 'allpub')"
        ).fetchall()
        messages = [parse(bytes(row[0])) for row in rows]
        assert [m["type"] for m in messages] == ["B", "R", "I", "C"]
        insert = messages[2]
        assert insert["N"] == [("t", str(rid).encode()), ("t", b"boxed"), ("t", b"3")]
        assert messages[3]["end_lsn"] == (lsn << 8) | 0xFF


def _peek_seconds(conn: psycopg.Connection, transactions: int) -> float:
    started = time.perf_counter()
    rows = conn.execute(
        "SELECT count(*) FROM pg_logical_slot_peek_changes('big', NULL, %s)", (transactions * 3,)
    ).fetchone()
    assert rows == (transactions * 3,)
    return time.perf_counter() - started


@pytest.mark.timeout(120)
def test_decoding_is_linear_and_leaves_others_served(spool, pgshim) -> None:
    """Peeking N changes costs O(N) (it once built a query whose size grew with the rows, and
    600 rows took 20 s), and other sessions are answered while a large peek runs."""
    for i in range(6000):
        spool.insert("items", label=f"item {i}")
    server = pgshim(spool.path)
    with connect(server) as conn:
        conn.execute("SELECT pgshim_create_history_slot('big', 'test_decoding')")
        _peek_seconds(conn, 100)  # warm
        small, large = _peek_seconds(conn, 600), _peek_seconds(conn, 6000)
        assert large < 5.0, f"6000 transactions took {large:.2f} s"
        assert large < 30 * max(small, 0.02), (small, large)

        latencies: list[float] = []
        done = threading.Event()

        def other_session() -> None:
            with connect(server) as other:
                while not done.is_set():
                    started = time.perf_counter()
                    other.execute("SELECT 1").fetchone()
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.005)

        thread = threading.Thread(target=other_session)
        thread.start()
        try:
            for _ in range(3):
                _peek_seconds(conn, 6000)
        finally:
            done.set()
            thread.join(10)
        assert latencies and max(latencies) < 0.5, max(latencies)
