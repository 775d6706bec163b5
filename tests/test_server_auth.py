"""Password methods, the REPLICATION attribute and TLS against real clients."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import asyncpg
import psycopg
import pytest
from wire_fixtures import running_server

from pgshim.config import Config, UserConfig
from pgshim.wire.auth import ScramSecret


def _psql_path() -> str | None:
    found = shutil.which("psql")
    if found:
        return found
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    candidate = os.path.join(bindir, "psql")
    return candidate if os.path.exists(candidate) else None


PSQL = _psql_path()
needs_psql = pytest.mark.skipif(PSQL is None, reason="psql not installed")

USERS = {
    "scram": UserConfig(method="scram-sha-256", password="s3cret", replication=True),
    "stored": UserConfig(
        method="scram-sha-256", secret=ScramSecret.from_password("from-secret").format()
    ),
    "md5user": UserConfig(method="md5", password="m5pass"),
    "plain": UserConfig(method="password", password="clear"),
}


@pytest.fixture(scope="module")
def server():
    with running_server(Config(port=0, users=USERS)) as srv:
        yield srv


def run_psql(port: int, user: str, password: str | None, *args: str, dsn_extra: str = ""):
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    env.pop("PGPASSWORD", None)
    if password is not None:
        env["PGPASSWORD"] = password
    dsn = f"host=127.0.0.1 port={port} user={user} dbname=reddb {dsn_extra}"
    return subprocess.run(
        [PSQL, "-X", "-At", dsn, *args], capture_output=True, text=True, timeout=30, env=env
    )


@needs_psql
def test_psql_scram(server) -> None:
    out = run_psql(server.port, "scram", "s3cret", "-c", "SELECT current_user")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "scram"


@needs_psql
def test_psql_scram_wrong_password_is_28p01(server) -> None:
    out = run_psql(server.port, "scram", "wrong", "-c", "SELECT 1")
    assert out.returncode != 0
    assert 'password authentication failed for user "scram"' in out.stderr


@needs_psql
def test_unknown_user_fails_like_a_wrong_password(server) -> None:
    out = run_psql(server.port, "nobody", "whatever", "-c", "SELECT 1")
    assert 'password authentication failed for user "nobody"' in out.stderr


def test_asyncpg_scram_with_stored_secret(server) -> None:
    async def scenario() -> str:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=server.port,
            user="stored",
            password="from-secret",
            database="reddb",
        )
        try:
            return await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == "stored"


def test_md5_and_cleartext(server) -> None:
    for user, password in (("md5user", "m5pass"), ("plain", "clear")):
        dsn = f"host=127.0.0.1 port={server.port} user={user} password={password} dbname=reddb"
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"host=127.0.0.1 port={server.port} user=md5user password=x dbname=reddb")


def test_replication_needs_the_attribute(server) -> None:
    base = f"host=127.0.0.1 port={server.port} dbname=reddb replication=database"
    with pytest.raises(psycopg.OperationalError, match="permission denied to start WAL sender"):
        psycopg.connect(f"{base} user=md5user password=m5pass")
    with psycopg.connect(f"{base} user=scram password=s3cret", autocommit=True) as conn:
        # the extended protocol is refused on replication connections
        with pytest.raises(psycopg.errors.ProtocolViolation, match="extended query protocol"):
            conn.execute("SELECT %s::int4", (1,))
        assert conn.execute("SELECT 4").fetchone() == (4,)


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_require_and_verify_full(tmp_path: Path) -> None:
    cert, key = _make_certificate(tmp_path)
    config = Config(port=0, tls_cert=str(cert), tls_key=str(key))
    with running_server(config) as srv:
        for mode, host in (
            ("require", "127.0.0.1"),
            ("verify-full", "127.0.0.1"),
            ("verify-full", "localhost"),
        ):
            dsn = (
                f"host={host} port={srv.port} user=postgres dbname=reddb "
                f"sslmode={mode} sslrootcert={cert}"
            )
            with psycopg.connect(dsn) as conn:
                assert conn.pgconn.ssl_in_use
                assert conn.execute("SELECT generate_series(1, 2)").fetchall() == [(1,), (2,)]

        async def over_tls() -> int:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=srv.port, user="postgres", database="reddb", ssl="require"
            )
            try:
                return await conn.fetchval("SELECT $1::int4", 12)
            finally:
                await conn.close()

        assert asyncio.run(over_tls()) == 12


def test_without_tls_sslmode_require_is_refused() -> None:
    with running_server() as srv, pytest.raises(psycopg.OperationalError, match="SSL"):
        psycopg.connect(
            f"host=127.0.0.1 port={srv.port} user=postgres dbname=reddb sslmode=require"
        )
