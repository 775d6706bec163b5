"""A PostgreSQL 15 cluster as the state database of several pgshim instances (``state_url``):
one per test module, a fresh database per test; the tests that use it share these fixtures
through conftest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pgcluster import PgCluster


@pytest.fixture(scope="module")
def state_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    cluster = PgCluster(tmp_path_factory.mktemp("state")).start()
    yield cluster
    cluster.stop()


@dataclass
class StateDb:
    cluster: PgCluster
    name: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.cluster.port}/{self.name}"

    def sql(self, statement: str) -> str:
        return self.cluster.psql(statement, dbname=self.name)

    def slot(self, name: str) -> dict[str, str]:
        """The slot's row in pgshim.slots (positions as numbers)."""
        cols = ["holder", "holder_pid", "confirmed_flush", "lease_left"]
        out = self.sql(
            "SELECT coalesce(holder, ''), coalesce(holder_pid::text, ''), confirmed_flush,"
            " coalesce(extract(epoch FROM lease_until - now())::text, '')"
            f" FROM pgshim.slots WHERE name = '{name}'"
        )
        return dict(zip(cols, out.split("|"), strict=True)) if out else {}


@pytest.fixture
def state_db(state_pg: PgCluster, request: pytest.FixtureRequest) -> StateDb:
    name = "ha_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    state_pg.psql(f"DROP DATABASE IF EXISTS {name}")
    state_pg.psql(f"CREATE DATABASE {name}")
    return StateDb(state_pg, name)
