"""PostgreSQL 16-18's catalog layouts built from PostgreSQL 15's rows (the columns themselves are
compared with a real PostgreSQL 18 in test_psql_meta.py), and the engine holding them."""

from __future__ import annotations

import pytest
from sqlkit import run_sql

from pgshim.sql.catalog import Catalog, ServerFacts
from pgshim.sql.catalog_versions import adapt_rows, catalog_columns, changed_catalogs
from pgshim.sql.pg_functions import PG15_COLUMNS, catalog_row
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.versions import ServerVersion


def _adapted(catalog: str, major: int, **values: object) -> dict[str, object]:
    rows = adapt_rows(
        catalog, major, PG15_COLUMNS[catalog], lambda: [catalog_row(catalog, **values)]
    )
    names = [name for name, _ in catalog_columns(catalog, major)]
    return dict(zip(names, rows()[0], strict=True))


def test_renamed_columns_keep_their_values_and_new_ones_get_postgresql_s() -> None:
    database = _adapted("pg_database", 18, oid=5, datname="reddb", daticulocale="und")
    assert (database["datname"], database["datlocale"], database["dathasloginevt"]) == (
        "reddb", "und", False
    )  # fmt: skip
    assert "daticulocale" not in database and database["daticurules"] is None
    assert _adapted("pg_database", 16, daticulocale="und")["daticulocale"] == "und"
    publication = _adapted("pg_publication", 18, oid=1, pubname="p", pubviaroot=True)
    assert (publication["pubviaroot"], publication["pubgencols"]) == (True, "n")
    assert "pubgencols" not in _adapted("pg_publication", 17, oid=1, pubname="p")
    attribute = _adapted("pg_attribute", 18, attname="a", attstattarget=-1, attcacheoff=-1)
    assert attribute["attstattarget"] is None and "attcacheoff" not in attribute
    assert _adapted("pg_attribute", 16, attstattarget=-1)["attstattarget"] == -1


def test_postgresql_15_is_unchanged() -> None:
    assert changed_catalogs(15) == set()
    assert all(catalog_columns(name, 15) == columns for name, columns in PG15_COLUMNS.items())
    assert changed_catalogs(16) < changed_catalogs(17) < changed_catalogs(18)


def test_every_layout_names_each_column_once() -> None:
    from pgshim.sql.catalog import CATALOG_VIEWS
    from pgshim.sql.statistics import CHECKPOINTER_COLUMNS

    first = CATALOG_VIEWS | {"pg_stat_checkpointer": CHECKPOINTER_COLUMNS}  # 17's own view
    for major in (16, 17, 18):
        for catalog in changed_catalogs(major):
            names = [name for name, _ in catalog_columns(catalog, major, first[catalog])]
            assert len(names) == len(set(names)), (catalog, major)


@pytest.mark.parametrize("major", [16, 17, 18])
def test_the_engine_holds_the_versions_catalogs(major: int) -> None:
    """A layout naming a column twice keeps every engine process from starting."""
    session = SqlSession(Catalog(ServerFacts(version=ServerVersion(major))), SessionInfo())
    result = run_sql(session, "SELECT count(*) FROM pg_subscription")
    assert result.rows == [(0,)]
