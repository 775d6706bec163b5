"""A PostgreSQL 16 subscriber, run in a container through testcontainers where Docker is available.

PostgreSQL 16 subscribers pick pgoutput's protocol from the publisher's server_version (pgshim
reports 15.x, so proto_version 3) and send the PG16 variants of the catalog queries.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from server_proc import free_port


def docker_available() -> str | None:
    """None when a Docker engine answers, else why not."""
    try:
        import testcontainers.community.postgres  # noqa: F401
    except ImportError:
        return "testcontainers is not installed"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "no docker client"
    if probe.returncode != 0:
        return "no Docker engine on this machine (docker info failed)"
    return None


REASON = docker_available()
pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def test_pg16_subscriber_applies_changes(spool, pgshim) -> None:
    from testcontainers.community.postgres import PostgresContainer

    spool.insert("users", name="seed", visits=0)
    server = pgshim(spool.path)
    subprocess.run(
        ["psql", "-X", "-c", "CREATE PUBLICATION pub FOR ALL TABLES"],
        env=server.env_for_clients(), check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    # host networking: the subscriber reaches pgshim on 127.0.0.1 and listens on its own port
    container = PostgresContainer("postgres:16", port=port).with_kwargs(network_mode="host")
    container.with_command(f"postgres -c port={port} -c listen_addresses=127.0.0.1")
    with container:
        import psycopg

        dsn = f"host=127.0.0.1 port={port} user={container.username} password={container.password} dbname={container.dbname}"  # noqa: E501
        with psycopg.connect(dsn, autocommit=True) as sub:
            sub.execute("CREATE TABLE users (rid bigint PRIMARY KEY, name text, visits bigint)")
            sub.execute(
                f"CREATE SUBSCRIPTION s16 CONNECTION 'host=127.0.0.1 port={server.port}"
                " user=postgres dbname=reddb' PUBLICATION pub WITH (copy_data = false)"
            )
            _, rid = spool.insert("users", name="from redddb", visits=3)
            spool.update("users", rid, visits=4)
            deadline = time.monotonic() + 60
            rows: list = []
            while time.monotonic() < deadline:
                rows = sub.execute("SELECT rid, name, visits FROM users").fetchall()
                if rows == [(rid, "from redddb", 4)]:
                    break
                time.sleep(0.3)
            assert rows == [(rid, "from redddb", 4)]
