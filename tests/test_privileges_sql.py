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
    return pgshim(spool.path, "--config", str(config), "--server-version", "15")


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
    with pytest.raises(
        psycopg2.errors.InsufficientPrivilege, match="permission denied for database"
    ):
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


PRIVILEGE_QUERIES = [
    "SELECT has_table_privilege('pg_authid', 'select'), has_table_privilege('pg_class', 'SELECT'),"
    " has_table_privilege('public.users', 'insert'), has_table_privilege('pg_catalog.pg_class',"
    " 'select, insert'), has_table_privilege('pg_class', 'update WITH GRANT OPTION')",
    "SELECT relname, has_table_privilege(oid, 'select'), has_table_privilege(c.oid, 'delete')"
    " FROM pg_class c WHERE relname IN ('pg_authid', 'pg_class', 'pg_roles') ORDER BY 1",
    "SELECT has_table_privilege('root', 'pg_authid', 'select'),"
    " has_table_privilege('bob', 'pg_authid', 'select')",
    "SELECT has_schema_privilege('public', 'usage'), has_schema_privilege('public', 'create'),"
    " has_schema_privilege('pg_catalog', 'USAGE'), has_database_privilege('reddb', 'connect'),"
    " has_database_privilege('reddb', 'create'), has_database_privilege('reddb', 'temporary')",
    "SELECT has_table_privilege('nope', 'select')",
    "SELECT has_table_privilege('pg_class', 'fly')",
    "SELECT has_schema_privilege('public', 'fly')",
]


def _answers(dsn: str) -> list:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    answers = []
    try:
        for query in PRIVILEGE_QUERIES:
            try:
                answers.append(run(conn, query))
            except psycopg2.Error as error:
                answers.append((error.pgcode, error.diag.message_primary))
    finally:
        conn.close()
    return answers


@pytest.mark.parametrize("user", ["root", "bob"])
def test_privilege_functions_answer_like_postgresql(server, pg_cluster, user) -> None:
    """has_table/schema/database_privilege for a superuser and a plain role, per row too, as
    PostgreSQL 15 answers for the same roles holding PostgreSQL's default privileges."""
    pg_cluster.psql("DROP DATABASE IF EXISTS reddb")
    pg_cluster.psql("CREATE DATABASE reddb")
    pg_cluster.psql("CREATE TABLE users (rid bigint PRIMARY KEY, name text)", dbname="reddb")
    for role, attributes in (("root", "SUPERUSER"), ("bob", "NOSUPERUSER")):
        pg_cluster.psql(f"DROP ROLE IF EXISTS {role}")
        pg_cluster.psql(f"CREATE ROLE {role} LOGIN {attributes}")
    try:
        ours = _answers(server.dsn(user=user, password=PASSWORDS[user]))
        assert ours == _answers(pg_cluster.dsn("reddb", user=user))
    finally:
        pg_cluster.psql("DROP DATABASE reddb")
        pg_cluster.psql("DROP ROLE root; DROP ROLE bob")
