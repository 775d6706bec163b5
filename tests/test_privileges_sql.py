"""What a role without SUPERUSER or REPLICATION may not do through SQL, over a real socket:
change publications (they shape every subscriber's stream) or COPY a collection's rows."""

from __future__ import annotations

import io

import psycopg2
import psycopg2.errors
import pytest

pytestmark = pytest.mark.timeout(60)

CONFIG = """
[users.root]
password = "r00t-pass"
superuser = true

[users.alice]
password = "wonder-land"
replication = true

[users.bob]
password = "builder"
"""
PASSWORDS = {"root": "r00t-pass", "alice": "wonder-land", "bob": "builder"}


@pytest.fixture
def server(spool, pgshim, tmp_path):
    config = tmp_path / "roles.toml"
    config.write_text(CONFIG)
    spool.insert("users", name="ann")
    return pgshim(spool.path, "--config", str(config))


def connect(server, user: str):  # noqa: ANN201 - a psycopg2 connection
    conn = psycopg2.connect(server.dsn(user=user, password=PASSWORDS[user]))
    conn.autocommit = True
    return conn


def run(conn, sql: str) -> list[tuple]:  # noqa: ANN001
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall() if cur.description else []


def test_publications_belong_to_the_superuser(server) -> None:
    root, bob = connect(server, "root"), connect(server, "bob")
    run(root, "CREATE PUBLICATION everything FOR ALL TABLES")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied for database"):
        run(bob, "CREATE PUBLICATION mine FOR ALL TABLES")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="must be owner of publication"):
        run(bob, "ALTER PUBLICATION everything SET (publish = 'delete')")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="must be owner of publication"):
        run(bob, "DROP PUBLICATION everything")
    assert run(root, "SELECT pubname, pubinsert FROM pg_publication") == [("everything", True)]


@pytest.mark.parametrize(("user", "allowed"), [("root", True), ("alice", True), ("bob", False)])
def test_copy_of_a_collection_needs_replication_or_superuser(server, user, allowed) -> None:
    conn = connect(server, user)
    out = io.StringIO()
    with conn.cursor() as cur:
        if allowed:
            cur.copy_expert("COPY users TO STDOUT (FORMAT csv)", out)
            assert out.getvalue().endswith(",ann\n")
        else:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="table users"):
                cur.copy_expert("COPY users TO STDOUT", out)
            assert out.getvalue() == ""


def test_pg_authid_is_the_superusers_and_shows_no_password(server) -> None:
    root, bob = connect(server, "root"), connect(server, "bob")
    assert run(root, "SELECT rolname, rolsuper, rolpassword FROM pg_authid ORDER BY 1") == [
        ("alice", False, None), ("bob", False, None), ("root", True, None),
    ]  # fmt: skip
    with pytest.raises(
        psycopg2.errors.InsufficientPrivilege, match="permission denied for table pg_authid"
    ):
        run(bob, "SELECT rolname FROM pg_authid")
    # the bootstrap role (here root) owns public, which everyone may use
    assert run(bob, "SELECT nspacl FROM pg_namespace WHERE nspname = 'public'") == [
        (["root=UC/root", "=U/root"],)
    ]
