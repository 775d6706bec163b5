"""Real PostgreSQL 15 and 18 subscribers against pgshim presenting the same major version
(``server_version``), with the CREATE SUBSCRIPTION options each version has (origin and
failover are PostgreSQL 16's and 17's), checked row by row and value by value after live
inserts, updates, deletes and a refresh, a dropped connection and a pgshim restart.

One pgshim and one subscriber cluster per version serve every case of that version; each case
has a collection (and subscriber table) of its own and drops its subscription at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import PgCluster, pg18_bindir, pg_bindir
from server_proc import PgshimServer
from spoolkit import SpoolKit
from test_e2e_subscriber import (
    USERS_DDL,
    apply_errors,
    expected_text,
    user_values,
    wait_until_equal,
)

pytestmark = [pytest.mark.timeout(300)]

BINDIRS = {15: pg_bindir, 18: pg18_bindir}


class Setup:
    """A spool, the pgshim serving it as PostgreSQL ``major``, and a subscriber of that version."""

    def __init__(self, base: Path, major: int, served: int | None = None) -> None:
        bindir = BINDIRS[major]()
        if bindir is None:
            pytest.skip(f"PostgreSQL {major} binaries are not available")
        self.major = major
        self.kit = SpoolKit(base / "data.rdb.logical.wal")
        self.server = PgshimServer(
            self.kit.path, base / "state", args=("--server-version", str(served or major))
        ).start()
        self.subscriber = PgCluster(base / "sub", bindir=bindir).start()
        self.rows: dict[str, dict[int, dict[str, object]]] = {}

    def insert(self, table: str, i: int) -> int:
        _, rid = self.kit.insert(table, **user_values(i))
        self.rows.setdefault(table, {})[rid] = user_values(i)
        return rid

    def update(self, table: str, rid: int, **values: object) -> None:
        self.kit.update(table, rid, **values)
        self.rows[table][rid] |= values

    def delete(self, table: str, rid: int) -> None:
        self.kit.delete(table, rid)
        del self.rows[table][rid]

    def refresh(self, table: str, numbers: range) -> list[int]:
        """Every row of ``table`` replaced at once (a RedDB refresh: TRUNCATE, then INSERTs)."""
        _, rids = self.kit.refresh(table, [user_values(i) for i in numbers])
        self.rows[table] = {rid: user_values(i) for rid, i in zip(rids, numbers, strict=True)}
        return rids

    def wait_equal(self, table: str) -> None:
        mine = self.rows.get(table, {})
        expected = [expected_text(rid, mine[rid]) for rid in sorted(mine)]
        wait_until_equal(self.subscriber, expected, table=table)

    def slot(self, name: str, columns: str) -> str:
        return self.server.psql(
            f"SELECT {columns} FROM pg_replication_slots WHERE slot_name = '{name}'"
        )

    def close(self) -> None:
        self.subscriber.stop()
        self.server.stop()
        self.kit.close()


@pytest.fixture(scope="module")
def setups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Setup]]:
    made: dict[int, Setup] = {}

    def get(major: int) -> Setup:
        if major not in made:
            made[major] = Setup(tmp_path_factory.mktemp(f"pg{major}"), major)
        return made[major]

    yield _Lazy(get)  # type: ignore[misc]
    for setup in made.values():
        setup.close()


class _Lazy(dict):
    def __init__(self, make) -> None:  # noqa: ANN001
        super().__init__()
        self._make = make

    def __missing__(self, major: int) -> Setup:
        return self._make(major)


CASES = [
    (15, "copy_data = true, binary = true"),
    (15, "copy_data = false, binary = true, two_phase = true"),  # not with streaming in 15
    (15, "copy_data = true, streaming = on"),
    (18, "copy_data = true"),
    (18, "copy_data = false, binary = true, streaming = parallel, two_phase = true, failover = true"),
    (18, "copy_data = true, binary = true, streaming = parallel, origin = any, two_phase = true"),
    (18, "copy_data = false, streaming = on, origin = none, failover = true"),
    (18, "copy_data = true, origin = none, streaming = off, binary = false"),
]  # fmt: skip
# subscribes to a publication pgshim does not have too: PostgreSQL 18 skips it with a WARNING
# (15 to 17 fail the stream)
MISSING_PUBLICATION_CASE = 6


@pytest.mark.parametrize(("major", "options"), CASES)
def test_subscriber_with_options(setups, major: int, options: str) -> None:
    setup: Setup = setups[major]
    index = CASES.index((major, options))
    table, name = f"users_{index}", f"sub_{index}"
    copy_data = "copy_data = true" in options
    setup.subscriber.psql(USERS_DDL.replace("TABLE users", f"TABLE {table}"))
    history = [setup.insert(table, i) for i in range(1, 4)]  # before the subscription
    if not copy_data:
        setup.rows[table] = {}  # the subscriber never sees these
    setup.server.psql(f"CREATE PUBLICATION pub_{index} FOR TABLE {table}")
    missing = index == MISSING_PUBLICATION_CASE
    publications = f"pub_{index}, gone_{index}" if missing else f"pub_{index}"
    setup.subscriber.psql(
        f"CREATE SUBSCRIPTION {name} CONNECTION 'host=127.0.0.1 port={setup.server.port}"
        f" user=postgres dbname=reddb' PUBLICATION {publications} WITH ({options})"
    )
    live = [setup.insert(table, i) for i in range(4, 10)]
    setup.update(table, live[0], name="renamed", visits=-1)
    setup.update(table, live[0], score=0.25)
    setup.delete(table, live[1])
    if copy_data:
        setup.update(table, history[0], name="history changed")
        setup.delete(table, history[1])
    setup.wait_equal(table)

    expected_flags = _flags(major, options)
    deadline = time.monotonic() + 30  # two_phase pending until the tables are synchronised
    while setup.slot(name, expected_flags[0]) != expected_flags[1] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert setup.slot(name, expected_flags[0]) == expected_flags[1]

    refreshed = setup.refresh(table, range(30, 34))
    setup.update(table, refreshed[0], name="after the refresh")
    setup.wait_equal(table)

    # a dropped connection, then a pgshim killed and restarted
    setup.subscriber.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_subscription"
        f" WHERE subname = '{name}' AND pid IS NOT NULL"
    )
    more = [setup.insert(table, i) for i in range(10, 14)]
    setup.server.kill()
    setup.server.start()
    setup.update(table, more[0], visits=77)
    setup.delete(table, more[1])
    setup.insert(table, 14)
    setup.wait_equal(table)
    if major >= 17 and "failover = true" in options:  # ALTER_REPLICATION_SLOT
        setup.subscriber.psql(f"ALTER SUBSCRIPTION {name} DISABLE")
        _wait_inactive(setup, name)
        setup.subscriber.psql(f"ALTER SUBSCRIPTION {name} SET (failover = false)")
        if "two_phase = true" in options:
            setup.subscriber.psql(f"ALTER SUBSCRIPTION {name} SET (two_phase = false)")
        assert setup.slot(name, "failover, two_phase") == "f|f"
        setup.subscriber.psql(f"ALTER SUBSCRIPTION {name} ENABLE")
        setup.insert(table, 20)
        setup.wait_equal(table)

    # while pgshim was down the apply worker may have found no one to connect to
    errors = apply_errors(setup.subscriber)
    assert [e for e in errors if "could not connect to the publisher" not in e] == []
    if missing:
        assert (
            f'WARNING:  skipped loading publication "gone_{index}"' in setup.subscriber.log_text()
        )
    setup.subscriber.psql(f"DROP SUBSCRIPTION {name}")
    assert setup.slot(name, "count(*)") == "0"


def _flags(major: int, options: str) -> tuple[str, str]:
    """The columns of the subscription's slot the options set, and their values."""
    two_phase = "t" if "two_phase = true" in options else "f"
    if major < 17:
        return "two_phase", two_phase
    failover = "t" if "failover = true" in options else "f"
    return "two_phase, failover, synced", f"{two_phase}|{failover}|f"


def _wait_inactive(setup: Setup, name: str) -> None:
    deadline = time.monotonic() + 30
    while setup.slot(name, "active") != "f" and time.monotonic() < deadline:
        time.sleep(0.1)


def test_postgresql_15_subscriber_of_pgshim_presenting_18(tmp_path: Path) -> None:
    """An older subscriber of a newer publisher, as PostgreSQL allows: protocol 3, its own
    catalog queries, and the copy in text."""
    setup = Setup(tmp_path, 15, served=18)
    try:
        history = [setup.insert("users", i) for i in range(1, 4)]
        setup.subscriber.psql(USERS_DDL)
        setup.server.psql("CREATE PUBLICATION pub FOR TABLE users")
        setup.subscriber.psql(
            f"CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port={setup.server.port}"
            " user=postgres dbname=reddb' PUBLICATION pub WITH (binary = true, streaming = on)"
        )
        setup.insert("users", 4)
        setup.update("users", history[0], name="changed", visits=2)
        setup.delete("users", history[1])
        setup.wait_equal("users")
        assert apply_errors(setup.subscriber) == []
    finally:
        setup.close()
