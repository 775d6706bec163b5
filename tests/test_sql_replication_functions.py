"""The replication queries of monitoring guides and scripts, over a real socket: slot functions
in FROM and per row (each side effect exactly once, none when the statement fails), pg_lsn
arithmetic and pg_wal_lsn_diff against known positions, per-row current_setting, NULL for
positions a client never reported, pg_stat_replication_slots and the privilege check."""

from __future__ import annotations

import time
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)


def lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@pytest.fixture
def conn(spool, pgshim):  # noqa: ANN201 - a psycopg2 connection
    server = pgshim(spool.path)
    connection = psycopg2.connect(server.dsn())
    connection.autocommit = True
    yield connection
    connection.close()


def query(conn, sql: str, params: tuple = ()) -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def slots(conn) -> dict[str, str]:  # noqa: ANN001
    return dict(
        query(conn, "SELECT slot_name, confirmed_flush_lsn::text FROM pg_replication_slots")
    )


def test_slot_functions_in_from(spool, conn) -> None:
    lsn, _ = spool.insert("items", label="a")
    rows = query(conn, "SELECT * FROM pg_create_logical_replication_slot('s1', 'pgoutput')")
    assert rows == [("s1", end_pos(lsn))]
    rows = query(
        conn, "SELECT slot_name, lsn FROM pg_create_logical_replication_slot('s2', 'test_decoding')"
    )
    assert rows == [("s2", end_pos(lsn))]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT lsn FROM pg_catalog.pg_create_logical_replication_slot('s3', 'pgoutput')"
        )
        assert cur.description[0].type_code == 3220  # pg_lsn
    assert set(slots(conn)) == {"s1", "s2", "s3"}
    assert query(conn, "SELECT * FROM pg_drop_replication_slot('s2')") == [(None,)]
    assert set(slots(conn)) == {"s1", "s3"}
    (started,) = query(conn, "SELECT * FROM pg_postmaster_start_time()")[0]
    assert started is not None
    assert query(conn, "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()") == [
        (False, None)
    ]


def test_a_failing_statement_creates_no_slot(spool, conn) -> None:
    spool.insert("items", label="a")
    failing = [
        "SELECT * FROM pg_create_logical_replication_slot('bad1', 'pgoutput') WHERE 'x'::int = 1",
        "SELECT pg_create_logical_replication_slot('bad2', 'pgoutput'), 'x'::int",
        # the second row's call fails: the first one's slot is not created either
        "SELECT pg_create_logical_replication_slot(n, 'pgoutput') FROM"
        " (VALUES ('bad3'), ('bad3')) AS t(n)",
        "SELECT pg_create_logical_replication_slot('bad4', 'no_such_plugin')",
    ]
    for sql in failing:
        with pytest.raises(psycopg2.Error):
            query(conn, sql)
    assert slots(conn) == {}
    # a call whose count the engine would decide is refused
    with pytest.raises(psycopg2.errors.FeatureNotSupported):
        query(
            conn,
            "SELECT 1 FROM pg_replication_slots WHERE pg_drop_replication_slot(slot_name) IS NULL",
        )


def test_per_row_drop_drops_exactly_the_rows_slots(spool, conn) -> None:
    spool.insert("items", label="a")
    for name in ("keep_a", "tmp_1", "tmp_2", "keep_b"):
        query(conn, "SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))
    rows = query(
        conn,
        "SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name LIKE 'tmp%%' ORDER BY slot_name",
    )
    assert rows == [("tmp_1", None), ("tmp_2", None)]
    assert set(slots(conn)) == {"keep_a", "keep_b"}
    # per-row creation: one slot per row, the results in place
    rows = query(
        conn,
        "SELECT pg_create_logical_replication_slot('gen_' || i, 'test_decoding') AS created"
        " FROM generate_series(1, 3) AS g(i) ORDER BY i",
    )
    assert [row[0].split(",")[0] for row in rows] == ["(gen_1", "(gen_2", "(gen_3"]
    assert set(slots(conn)) == {"keep_a", "keep_b", "gen_1", "gen_2", "gen_3"}


def test_lag_against_known_positions(spool, conn) -> None:
    first, _ = spool.insert("items", label="a")
    query(conn, "SELECT pg_create_logical_replication_slot('lagging', 'test_decoding')")
    last = [spool.insert("items", label=f"b{i}")[0] for i in range(4)][-1]
    behind = lsn_int(end_pos(last)) - lsn_int(end_pos(first))
    # the current position is what ingestion, in the background, has taken in
    deadline = time.monotonic() + 10
    while query(conn, "SELECT pg_current_wal_lsn()::text") != [(end_pos(last),)]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rows = query(
        conn,
        "SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn),"
        " pg_current_wal_lsn() - confirmed_flush_lsn,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float,"
        " confirmed_flush_lsn < pg_current_wal_lsn(), confirmed_flush_lsn = %s,"
        " (confirmed_flush_lsn + 256)::text, confirmed_flush_lsn::numeric"
        " FROM pg_replication_slots",
        (end_pos(first),),
    )
    assert rows == [
        (
            "lagging", Decimal(behind), Decimal(behind), float(behind), True, True,
            f"0/{lsn_int(end_pos(first)) + 256:X}", Decimal(lsn_int(end_pos(first))),
        )
    ]  # fmt: skip
    assert query(conn, "SELECT pg_wal_lsn_diff('0/100', '0/1FF')") == [(Decimal(-255),)]
    assert query(conn, "SELECT pg_lsn('0/1FF') - '0/FF'::pg_lsn") == [(Decimal(256),)]
    assert query(conn, "SELECT pg_current_wal_lsn()::text") == [(end_pos(last),)]
    # consuming moves the lag to 0, and pg_stat_replication_slots counts what was sent
    changes = query(conn, "SELECT * FROM pg_logical_slot_get_changes('lagging', NULL, NULL)")
    assert len(changes) == 4 * 3  # BEGIN, the insert, COMMIT
    assert query(
        conn,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) FROM"
        " pg_replication_slots",
    ) == [(Decimal(0),)]
    ((name, txns, size),) = query(
        conn, "SELECT slot_name, total_txns, total_bytes FROM pg_stat_replication_slots"
    )
    assert (name, txns) == ("lagging", 4)
    assert size == sum(len(row[2].encode()) for row in changes)


def test_settings_per_row(conn) -> None:
    assert query(conn, "SELECT current_setting($$wal_level$$)") == [("logical",)]
    rows = dict(
        query(
            conn,
            "SELECT name, current_setting(name) FROM pg_settings"
            " WHERE name IN ('wal_level', 'max_replication_slots')",
        )
    )
    assert rows == {"wal_level": "logical", "max_replication_slots": "128"}
    assert query(conn, "SELECT current_setting('no.such', true)") == [(None,)]
    with pytest.raises(psycopg2.errors.UndefinedObject):
        query(conn, "SELECT current_setting(n) FROM (VALUES ('no_such_setting')) AS t(n)")


def test_unreported_positions_are_null(spool, pgshim) -> None:
    server = pgshim(spool.path)
    spool.insert("items", label="a")
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    query(conn, "SELECT pg_create_logical_replication_slot('quiet', 'test_decoding')")
    replication = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        with replication.cursor() as cur:
            cur.start_replication(slot_name="quiet", decode=True, status_interval=3600)
            rows = []
            for _ in range(50):
                rows = query(
                    conn,
                    "SELECT state, write_lsn, flush_lsn, replay_lsn FROM pg_stat_replication",
                )
                if rows:
                    break
                import time

                time.sleep(0.1)
            assert rows == [("streaming", None, None, None)]
    finally:
        replication.close()
        conn.close()


def test_a_plain_role_gets_42501(spool, pgshim, tmp_path) -> None:
    config = tmp_path / "roles.toml"
    config.write_text('[users.root]\nmethod = "trust"\nsuperuser = true\n'
                      '[users.bob]\nmethod = "trust"\n')  # fmt: skip
    server = pgshim(spool.path, "--config", str(config))
    root = psycopg2.connect(server.dsn(user="root"))
    bob = psycopg2.connect(server.dsn(user="bob"))
    root.autocommit = bob.autocommit = True
    query(root, "SELECT * FROM pg_create_logical_replication_slot('owned', 'test_decoding')")
    for sql in [
        "SELECT * FROM pg_create_logical_replication_slot('bob1', 'test_decoding')",
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots",
        "SELECT * FROM pg_drop_replication_slot('owned')",
    ]:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(bob, sql)
    assert set(slots(root)) == {"owned"}
    root.close()
    bob.close()


def test_publication_tables_right_after_create(spool, conn) -> None:
    spool.insert("items", label="a")
    with conn.cursor() as cur:
        cur.execute("CREATE PUBLICATION pub FOR ALL TABLES")
    rows = query(
        conn,
        "SELECT c.relname FROM pg_get_publication_tables('pub') AS p"
        " JOIN pg_class AS c ON c.oid = p.relid",
    )
    assert rows == [("items",)]
