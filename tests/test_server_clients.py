"""Real clients (psql, psycopg 3, asyncpg, psycopg2) against the server with a test handler."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time

import asyncpg
import psycopg
import psycopg2
import pytest
from wire_fixtures import running_server

from pgshim.config import Config


def _bindir() -> str:
    try:
        return subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


PSQL = shutil.which("psql") or os.path.join(_bindir(), "psql")
needs_psql = pytest.mark.skipif(not os.path.exists(PSQL), reason="psql not installed")


@pytest.fixture(scope="module")
def server():
    with running_server() as srv:
        yield srv


def psql(
    port: int, *args: str, stdin: str | None = None, env: dict | None = None, user: str = "postgres"
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGSSLMODE": "prefer"}
    full_env.pop("PGPASSWORD", None)
    full_env.update(env or {})
    return subprocess.run(
        [PSQL, "-X", "-h", "127.0.0.1", "-p", str(port), "-U", user, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        env=full_env,
    )


@needs_psql
def test_psql_command_and_multiple_statements(server) -> None:
    out = psql(
        server.port,
        "reddb",
        "-At",
        "-c",
        "SELECT 41",
        "-c",
        "SELECT generate_series(1, 3); SELECT 7",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["41", "1", "2", "3", "7"]


@needs_psql
def test_psql_interactive_script_with_expanded_output(server) -> None:
    script = "\\x\nSELECT 5;\nSELECT current_user;\nBEGIN;\nSELECT nonsense;\nROLLBACK;\n"
    out = psql(server.port, "reddb", stdin=script)
    assert "Expanded display is on." in out.stdout
    assert "?column? | 5" in out.stdout
    assert "current_user | postgres" in out.stdout
    assert 'syntax error at or near "SELECT"' in out.stderr
    assert "ROLLBACK" in out.stdout


@needs_psql
def test_psql_wrong_database_is_3d000(server) -> None:
    out = psql(server.port, "otherdb", "-c", "SELECT 1")
    assert out.returncode != 0
    assert 'database "otherdb" does not exist' in out.stderr


def test_psycopg3_parameters_and_prepared_switch(server) -> None:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb"
    with psycopg.connect(dsn) as conn:
        for i in range(8):  # the 6th execution switches to a named prepared statement
            assert conn.execute("SELECT %s::int4, %s::text", (i, f"v{i}")).fetchone() == (
                i,
                f"v{i}",
            )
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.commit()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.info.parameter_status("server_version").startswith("18.")  # the default
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("SELECT broken_%s", (1,))


def test_psycopg3_reports_setting_changes(server) -> None:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb"
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.info.parameter_status("application_name") == ""
        conn.execute("SET application_name = 'changed'")
        assert conn.info.parameter_status("application_name") == "changed"


def test_psycopg3_cancel_stops_a_slow_query(server) -> None:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb"
    with psycopg.connect(dsn, autocommit=True) as conn:
        # cancel_safe() polls without holding the GIL; the blocking cancel() would starve the
        # in-process server thread.
        timer = threading.Timer(0.3, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(20)")
        assert time.monotonic() - started < 10
        timer.join()
        assert conn.execute("SELECT 3").fetchone() == (3,)  # the session goes on


def test_asyncpg_fetch_fetchval_fetchrow_binary(server) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user="postgres", database="reddb"
        )
        try:
            rows = await conn.fetch("SELECT generate_series(1, 4)")
            assert [r[0] for r in rows] == [1, 2, 3, 4]
            assert await conn.fetchval("SELECT generate_series(1, 4)") == 1  # PortalSuspended
            row = await conn.fetchrow("SELECT $1::int8, $2::text, $3::bool", 2**40, "héllo", True)
            assert tuple(row) == (2**40, "héllo", True)
            assert await conn.fetchval("SELECT $1::float8", 1.5) == 1.5
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await conn.fetch("SELECT nonsense")
            assert await conn.fetchval("SELECT 9") == 9  # back in sync after the error
            await conn.execute("SELECT 1; SELECT 2")  # simple Query, several statements
            assert conn.get_server_version().major == 18
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_psycopg2_normal_connection(server) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="reddb")
    try:
        cur = conn.cursor()
        cur.execute("SELECT generate_series(1, %s)", (3,))
        assert cur.fetchall() == [(1,), (2,), (3,)]
        assert conn.server_version == 180006
        assert conn.encoding == "UTF8"
    finally:
        conn.close()


def test_psycopg2_copy_out(server) -> None:
    import io

    conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="reddb")
    try:
        buffer = io.StringIO()
        conn.cursor().copy_expert("COPY things TO STDOUT", buffer)
        assert buffer.getvalue() == "0\tname 0\n1\tname 1\n2\tname 2\n"
    finally:
        conn.close()


def test_empty_query(server) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="reddb")
    try:
        cur = conn.cursor()
        with pytest.raises(psycopg2.ProgrammingError, match="empty query"):
            cur.execute(";")
    finally:
        conn.close()


def test_shutdown_sends_57p01_and_runs_hook() -> None:
    ran = []
    with running_server(Config(port=0), on_shutdown=lambda: ran.append(True)) as srv:
        conn = psycopg.connect(f"host=127.0.0.1 port={srv.port} user=postgres dbname=reddb")
        srv.stop()
        with pytest.raises(psycopg.OperationalError, match="administrator command"):
            conn.execute("SELECT 1")
        conn.close()
    assert ran == [True]


def test_large_result_goes_through_flow_control(server) -> None:
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb"
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT generate_series(1, 200000)").fetchall()
    assert len(rows) == 200000 and rows[-1] == (200000,)
