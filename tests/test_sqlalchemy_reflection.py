"""SQLAlchemy's reflection (psycopg2 and psycopg 3 dialects) sees pgshim's collections as it
sees the same tables in PostgreSQL 15 and 18 (pgshim presenting each): names, columns and types,
primary keys, indexes."""

from __future__ import annotations

import pytest
from pgcluster import PgCluster, pg18_bindir, pg_bindir
from test_psql_meta import _psql
from twins import users_and_orders

sqlalchemy = pytest.importorskip("sqlalchemy")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", params=[15, 18])
def servers(tmp_path_factory, request):
    bindir = pg_bindir() if request.param == 15 else pg18_bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL {request.param} binaries are not available")
    base = tmp_path_factory.mktemp("sqlalchemy")
    pg = PgCluster(base / "pg", bindir=bindir).start()
    try:
        with users_and_orders(base, pg) as server:
            yield server, pg
    finally:
        pg.stop()


def _reflect(url: str) -> dict:
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        tables = sorted(inspector.get_table_names())
        found = {
            "schemas": [s for s in inspector.get_schema_names() if s != "information_schema"],
            "tables": tables,
            "views": inspector.get_view_names(),
        }
        for table in tables:
            found[table] = {
                "columns": [
                    (c["name"], repr(c["type"]), c["nullable"], c["default"])
                    for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table),
                "indexes": inspector.get_indexes(table),
                "unique": inspector.get_unique_constraints(table),
                "foreign": inspector.get_foreign_keys(table),
            }
            loaded = sqlalchemy.Table(table, sqlalchemy.MetaData(), autoload_with=engine)
            found[table]["autoload"] = [
                (c.name, repr(c.type), c.primary_key, c.nullable) for c in loaded.columns
            ]
        return found
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_reflection_matches_postgresql(servers, driver: str) -> None:
    pytest.importorskip(driver)
    server, pg = servers
    ours = _reflect(f"postgresql+{driver}://postgres@127.0.0.1:{server.port}/reddb")
    theirs = _reflect(f"postgresql+{driver}://postgres@127.0.0.1:{pg.port}/reddb")
    assert ours == theirs
    assert ours["users"]["pk"]["constrained_columns"] == ["rid"]


def test_psql_and_reflection_share_one_server(servers) -> None:
    server, _ = servers
    assert _psql(server.port, "SELECT 1").returncode == 0
