"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hastate import state_db, state_pg  # noqa: F401  (fixtures)
from pgcluster import PgCluster, pg_bindir
from server_proc import PgshimServer
from spoolkit import SpoolKit


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """A real PostgreSQL 15 server (wal_level=logical) shared by the whole test session."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    cluster = PgCluster(tmp_path_factory.mktemp("pg"), {"wal_level": "logical"}).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[SpoolKit]:
    """An empty RedDB spool that the test appends known rows to."""
    kit = SpoolKit(tmp_path / "data.rdb.logical.wal")
    yield kit
    kit.close()


@pytest.fixture
def pgshim(tmp_path: Path) -> Iterator[Callable[..., PgshimServer]]:
    """Starts real pgshim server processes on free loopback ports; stops them at the end."""
    servers: list[PgshimServer] = []

    def start(spool_file: Path, *args: str, state_dir: Path | None = None) -> PgshimServer:
        server = PgshimServer(spool_file, state_dir or tmp_path / "state", args=args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
