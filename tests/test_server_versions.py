"""What a client sees of the PostgreSQL version pgshim presents (``server_version``), through
psycopg: ParameterStatus, SHOW, current_setting, version() and pg_settings."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.timeout(120)

VERSIONS = {
    15: ("15.18", 150018),
    16: ("16.15", 160015),
    17: ("17.11", 170011),
    18: ("18.6", 180006),
}


@pytest.mark.parametrize("major", sorted(VERSIONS))
def test_the_served_version_everywhere(spool, pgshim, major: int) -> None:
    text, num = VERSIONS[major]
    spool.insert("users", name="a")
    server = pgshim(spool.path, "--server-version", str(major))
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        assert conn.info.server_version == num
        assert conn.info.parameter_status("server_version") == f"{text} (pgshim 0.1.0)"
        row = conn.execute(
            "SELECT current_setting('server_version_num'), version(), "
            "(SELECT boot_val FROM pg_settings WHERE name = 'server_version_num')"
        ).fetchone()
        assert row == (str(num), f"PostgreSQL {text} (pgshim 0.1.0) on x86_64-pc-linux-gnu, "
                       "compiled by Python, 64-bit", str(num))  # fmt: skip
        assert conn.execute("SHOW server_version").fetchone() == (f"{text} (pgshim 0.1.0)",)
        slots = conn.execute("SELECT * FROM pg_replication_slots LIMIT 0")
        assert [column.name for column in slots.description][-1] == (
            "two_phase" if major == 15 else "conflicting" if major == 16 else "synced"
        )
        # a parameter PostgreSQL 17 added (pg_dump 18 sets it) exists from 17 on
        if major >= 17:
            conn.execute("SET transaction_timeout = '5s'")
            assert conn.execute("SHOW transaction_timeout").fetchone() == ("5s",)
        else:
            with pytest.raises(psycopg.errors.UndefinedObject, match="transaction_timeout"):
                conn.execute("SET transaction_timeout = 0")
    replication = psycopg.connect(server.dsn(replication="database"), autocommit=True)
    with replication:
        assert replication.info.server_version == num
        shown = replication.execute("SHOW server_version_num").fetchone()
        assert shown == (str(num),)


def test_default_is_18(spool, pgshim) -> None:
    server = pgshim(spool.path)
    with psycopg.connect(server.dsn()) as conn:
        assert conn.info.server_version == 180006
        assert conn.execute("SHOW server_version").fetchone() == ("18.6 (pgshim 0.1.0)",)
