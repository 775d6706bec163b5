"""The catalogs in PostgreSQL 16-18's layouts: each change applies once, and the engine holds
every catalog of each version (a column added twice would keep its processes from starting)."""

from __future__ import annotations

import pytest
from sqlkit import run_sql

from pgshim.sql.catalog import CATALOG_VIEWS, Catalog, ServerFacts
from pgshim.sql.catalog_versions import CHANGES, catalog_columns, changed_catalogs
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.versions import ServerVersion


@pytest.mark.parametrize("major", [16, 17, 18])
def test_each_change_applies_once(major: int) -> None:
    for version, changes in CHANGES.items():
        named = [(change.catalog, tuple(change.add), tuple(change.rename.items()))
                 for change in changes]  # fmt: skip
        assert len(named) == len(set(named)), f"a change of {version} is listed twice"
    for catalog in changed_catalogs(major):
        base = CATALOG_VIEWS.get(catalog)
        names = [name for name, _ in catalog_columns(catalog, major, base)]
        assert len(names) == len(set(names)), (catalog, names)


@pytest.mark.parametrize("major", [16, 18])
def test_the_engine_holds_the_versions_catalogs(major: int) -> None:
    session = SqlSession(Catalog(ServerFacts(version=ServerVersion(major))), SessionInfo())
    result = run_sql(session, "SELECT count(*) FROM pg_subscription")
    assert result.rows == [(0,)]
