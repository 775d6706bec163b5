"""Authentication configured in the TOML file, through the real server: psql, pg_recvlogical, asyncpg."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
import pytest

pytestmark = pytest.mark.timeout(60)

CONFIG = """
[users.alice]
method = "scram-sha-256"
password = "wonder land"
replication = true

[users.bob]
method = "md5"
password = "builder"
"""


@pytest.fixture
def secured(spool, pgshim, tmp_path):
    spool.insert("users", name="x")
    config = tmp_path / "auth.toml"
    config.write_text(CONFIG)
    return pgshim(spool.path, "--config", str(config))


def client(server, user: str, password: str | None, *args: str) -> subprocess.CompletedProcess:
    env = dict(server.env_for_clients(), PGUSER=user)
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=30)


def test_scram_md5_wrong_password_and_replication_attribute(secured) -> None:
    ok = client(secured, "alice", "wonder land", "psql", "-X", "-At", "-c", "SELECT current_user")
    assert (ok.returncode, ok.stdout.strip()) == (0, "alice")
    md5 = client(secured, "bob", "builder", "psql", "-X", "-At", "-c", "SELECT 1")
    assert md5.returncode == 0, md5.stderr
    wrong = client(secured, "alice", "nope", "psql", "-X", "-c", "SELECT 1")
    assert 'password authentication failed for user "alice"' in wrong.stderr
    nobody = client(secured, "mallory", "x", "psql", "-X", "-c", "SELECT 1")
    assert "password authentication failed" in nobody.stderr
    # a replication connection needs the REPLICATION attribute
    denied = client(secured, "bob", "builder", "pg_recvlogical", "-d", "reddb", "-S", "s",
                    "--create-slot", "-P", "test_decoding")  # fmt: skip
    assert "FATAL:  permission denied to start WAL sender" in denied.stderr  # 16's words on
    assert "Only roles with the REPLICATION attribute may start a WAL sender" in denied.stderr
    allowed = client(secured, "alice", "wonder land", "pg_recvlogical", "-d", "reddb", "-S", "s",
                     "--create-slot", "-P", "test_decoding")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


def test_presenting_15_the_replication_attribute_error_is_15s(spool, pgshim, tmp_path) -> None:
    config = tmp_path / "auth.toml"
    config.write_text(CONFIG)
    server = pgshim(spool.path, "--config", str(config), "--server-version", "15")
    denied = client(server, "bob", "builder", "pg_recvlogical", "-d", "reddb", "-S", "s",
                    "--create-slot", "-P", "test_decoding")  # fmt: skip
    assert "FATAL:  must be superuser or replication role to start walsender" in denied.stderr
    assert "DETAIL" not in denied.stderr


def test_asyncpg_scram(secured) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=secured.port, user="alice", password="wonder land",
            database="reddb",
        )  # fmt: skip
        try:
            assert await conn.fetchval("SELECT session_user") == "alice"
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(
                host="127.0.0.1", port=secured.port, user="alice", password="bad",
                database="reddb",
            )  # fmt: skip

    asyncio.run(main())
    assert "wonder land" not in secured.log()
