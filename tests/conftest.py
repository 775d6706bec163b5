"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgcluster import PgCluster, pg_bindir


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """A real PostgreSQL 15 server (wal_level=logical) shared by the whole test session."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    cluster = PgCluster(tmp_path_factory.mktemp("pg"), {"wal_level": "logical"}).start()
    yield cluster
    cluster.stop()
