"""Role attributes as PostgreSQL enforces them, through a real server with configured users:
the replication slot functions need REPLICATION (or SUPERUSER), is_superuser tells the truth, and
pg_stat_replication hides other roles' sessions from a role that is not a superuser."""

from __future__ import annotations

import os
import subprocess

import psycopg2
import psycopg2.errors
import pytest
from server_proc import wait_for
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)

PASSWORDS = {"root": "r00t-pass", "alice": "wonder-land", "bob": "builder"}
CONFIG = f"""
[users.root]
password = "{PASSWORDS["root"]}"
superuser = true

[users.alice]
method = "scram-sha-256"
password = "{PASSWORDS["alice"]}"
replication = true

[users.bob]
method = "password"
password = "{PASSWORDS["bob"]}"
"""
# CheckSlotPermissions' message and detail, by the version presented (16 reworded them)
SLOT_ERRORS = {
    "15": ("must be superuser or replication role to use replication slots", None),
    "18": ("permission denied to use replication slots",
           "Only roles with the REPLICATION attribute may use replication slots."),
}  # fmt: skip


@pytest.fixture(params=["18"])
def server(spool, pgshim, tmp_path, request):
    """pgshim with CONFIG's roles, presenting ``request.param`` (the default: 18)."""
    config = tmp_path / "roles.toml"
    config.write_text(CONFIG)
    return pgshim(spool.path, "--config", str(config), "--server-version", request.param)


def connect(server, user: str):  # noqa: ANN201 - a psycopg2 connection
    conn = psycopg2.connect(server.dsn(user=user, password=PASSWORDS[user]))
    conn.autocommit = True
    return conn


def query(conn, sql: str, params: tuple = ()) -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def slot_positions(conn) -> dict[str, str]:  # noqa: ANN001
    rows = query(conn, "SELECT slot_name, confirmed_flush_lsn::text FROM pg_replication_slots")
    return dict(rows)


@pytest.mark.parametrize("server", list(SLOT_ERRORS), indirect=True)
def test_a_plain_role_may_not_touch_replication_slots(server, spool) -> None:
    message, detail = SLOT_ERRORS[server.args[-1]]
    alice, bob = connect(server, "alice"), connect(server, "bob")
    try:
        query(alice, "SELECT pg_create_logical_replication_slot('alice_slot', 'test_decoding')")
        lsns = [spool.insert("items", label=f"item {i}")[0] for i in range(3)]
        before = slot_positions(alice)
        attempts = [
            "SELECT * FROM pg_logical_slot_get_changes('alice_slot', NULL, NULL)",
            "SELECT * FROM pg_logical_slot_peek_changes('alice_slot', NULL, NULL)",
            "SELECT * FROM pg_logical_slot_get_binary_changes('alice_slot', NULL, NULL)",
            "SELECT * FROM pg_logical_slot_peek_binary_changes('alice_slot', NULL, NULL)",
            f"SELECT * FROM pg_replication_slot_advance('alice_slot', '{end_pos(lsns[-1])}')",
            "SELECT pg_create_logical_replication_slot('bob_slot', 'test_decoding')",
            "SELECT pgshim_create_history_slot('bob_history', 'test_decoding')",
            "SELECT pg_drop_replication_slot('alice_slot')",
            # the privilege is checked before the slot is looked up
            "SELECT * FROM pg_logical_slot_get_changes('no_such_slot', NULL, NULL)",
        ]
        for sql in attempts:
            with pytest.raises(psycopg2.Error) as denied:
                query(bob, sql)
            error = denied.value
            assert (error.pgcode, error.diag.severity) == ("42501", "ERROR"), sql
            assert error.diag.message_primary == message, sql
            assert error.diag.message_detail == detail, sql
        # nothing moved, nothing was created or dropped, and the owner still gets every change
        assert slot_positions(alice) == before
        assert set(before) == {"alice_slot"}
        rows = query(
            alice, "SELECT data FROM pg_logical_slot_get_changes('alice_slot', NULL, NULL)"
        )
        assert [row[0] for row in rows if row[0].startswith("BEGIN")] == [
            f"BEGIN {lsn}" for lsn in lsns
        ]
        assert len(rows) == 9
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("user", ["alice", "root"])
def test_replication_roles_and_superusers_use_replication_slots(server, spool, user) -> None:
    conn = connect(server, user)
    try:
        query(conn, "SELECT pg_create_logical_replication_slot('s', 'test_decoding')")
        query(conn, "SELECT pgshim_create_history_slot('h', 'test_decoding')")
        lsns = [spool.insert("items", label=f"item {i}")[0] for i in range(3)]
        peeked = query(conn, "SELECT count(*) FROM pg_logical_slot_peek_changes('s', NULL, NULL)")
        binary = query(
            conn, "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL)"
        )
        assert peeked == binary == [(9,)]
        got = query(conn, "SELECT data FROM pg_logical_slot_get_changes('s', NULL, 3)")
        assert got[0][0] == f"BEGIN {lsns[0]}"
        advanced = query(
            conn, "SELECT slot_name, end_lsn::text FROM pg_replication_slot_advance('s', %s)",
            (end_pos(lsns[1]),),
        )  # fmt: skip
        assert advanced == [("s", end_pos(lsns[1]))]
        rest = query(conn, "SELECT data FROM pg_logical_slot_get_binary_changes('s', NULL, NULL)")
        assert bytes(rest[0][0]) == f"BEGIN {lsns[2]}".encode()
        query(conn, "SELECT pg_drop_replication_slot('h')")
        assert set(slot_positions(conn)) == {"s"}
    finally:
        conn.close()


@pytest.mark.parametrize(("user", "expected"), [("root", "on"), ("alice", "off"), ("bob", "off")])
def test_is_superuser_tells_the_truth(server, user, expected) -> None:
    conn = connect(server, user)
    try:
        assert conn.get_parameter_status("is_superuser") == expected
        assert query(conn, "SHOW is_superuser") == [(expected,)]
        assert query(conn, "SELECT current_setting('is_superuser')") == [(expected,)]
    finally:
        conn.close()


def test_without_users_every_session_is_a_superuser(spool, pgshim) -> None:
    server = pgshim(spool.path)
    conn = psycopg2.connect(server.dsn(user="anyone"))
    conn.autocommit = True
    try:
        assert conn.get_parameter_status("is_superuser") == "on"
        assert query(conn, "SHOW is_superuser") == [("on",)]
        query(conn, "SELECT pg_create_logical_replication_slot('mine', 'test_decoding')")
        assert set(slot_positions(conn)) == {"mine"}
    finally:
        conn.close()


def test_pg_stat_replication_hides_other_roles_sessions(server, spool) -> None:
    spool.insert("items", label="first")
    env = dict(server.env_for_clients(), PGUSER="alice", PGPASSWORD=PASSWORDS["alice"])
    env.pop("PGPASSFILE", None)
    created = subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-S", "watched", "--create-slot", "-P", "test_decoding"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    stream = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "watched", "--start", "-f", os.devnull],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    root, alice, bob = connect(server, "root"), connect(server, "alice"), connect(server, "bob")
    try:
        sql = "SELECT * FROM pg_stat_replication"
        wait_for(lambda: query(root, "SELECT state FROM pg_stat_replication") == [("streaming",)])
        full = query(root, sql)[0]
        pid, usesysid, usename, application_name, client_addr = full[:5]
        assert (usename, application_name, client_addr) == ("alice", "pg_recvlogical", "127.0.0.1")
        assert full[9] == "streaming" and full[10] is not None and full[7] is not None
        # the role's own session, seen from another connection: every column
        own = query(alice, sql)
        assert len(own) == 1 and own[0][:10] == full[:10] and own[0][10] is not None
        # another role's session: what pg_stat_get_activity gives everyone, nothing else
        hidden = query(bob, sql)
        assert hidden == [(pid, usesysid, "alice", "pg_recvlogical") + (None,) * 16]
        assert query(bob, "SELECT count(*) FROM pg_stat_replication WHERE state IS NULL") == [(1,)]
    finally:
        for conn in (root, alice, bob):
            conn.close()
        stream.terminate()
        stream.wait(10)
