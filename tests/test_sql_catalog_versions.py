"""The engine holds every catalog of each version presented (a catalog whose layout names a
column twice keeps its processes from starting: test_catalog_versions checks the layouts)."""

from __future__ import annotations

import pytest
from sqlkit import run_sql

from pgshim.sql.catalog import Catalog, ServerFacts
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.versions import ServerVersion


@pytest.mark.parametrize("major", [16, 17, 18])
def test_the_engine_holds_the_versions_catalogs(major: int) -> None:
    session = SqlSession(Catalog(ServerFacts(version=ServerVersion(major))), SessionInfo())
    result = run_sql(session, "SELECT count(*) FROM pg_subscription")
    assert result.rows == [(0,)]
