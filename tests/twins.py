"""A pgshim and a database of a real PostgreSQL holding the same tables (made from what
pgshim_collections shows), for tests that compare both servers' answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from pgcluster import PgCluster
from server_proc import PgshimServer
from spoolkit import SpoolKit
from test_psql_meta import create_like


@contextmanager
def users_and_orders(
    base: Path, pg: PgCluster, database: str = "reddb", **more_user_fields: object
) -> Iterator[PgshimServer]:
    """A user row of the common value types (and ``more_user_fields``) and an order row; the
    pgshim presents ``pg``'s major version."""
    kit = SpoolKit(base / "data.rdb.logical.wal")
    kit.insert("users", name="ann", age=3, score=1.5, active=True, born=dt.date(2000, 1, 1),
               data={"a": 1}, amount=Decimal("1.5"), ts=dt.datetime.now(dt.UTC),
               **more_user_fields)  # fmt: skip
    kit.insert("orders", item="x", qty=2)
    kit.close()
    server = PgshimServer(kit.path, base / "state", args=pg.server_version_args()).start()
    try:
        create_like(server.psql, pg, database)
        yield server
    finally:
        server.stop()
        pg.psql(f"DROP DATABASE IF EXISTS {database}")
