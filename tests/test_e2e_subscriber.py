"""A real PostgreSQL 15 subscriber applying RedDB's changes through pgshim (CREATE SUBSCRIPTION)."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from pgcluster import PgCluster, pg_bindir

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed"),
]

USERS_DDL = """
CREATE TABLE users (
    rid bigint PRIMARY KEY, active boolean, balance numeric, born date, id uuid,
    joined timestamptz, name text, photo bytea, prefs jsonb, score double precision, visits bigint
)"""
USERS_COLUMNS = "rid, active, balance, born, id, joined, name, photo, prefs, score, visits"


def user_values(i: int) -> dict[str, object]:
    return {
        "active": i % 2 == 0,
        "balance": Decimal(f"{i * 10}.{i:04d}"),
        "born": dt.date(1990, 1 + i % 12, 1 + i % 28),
        "id": uuid.UUID(int=i * 7919),
        "joined": dt.datetime(2026, 1, 1, 12, 0, i % 60, 125000, tzinfo=dt.UTC),
        "name": f"user {i} o'neil",
        "photo": bytes([i % 256, 0, 255]),
        "prefs": {"theme": "dark" if i % 2 else "light", "n": i},
        "score": i / 8,
        "visits": i * 1000,
    }


def expected_text(rid: int, values: dict[str, object]) -> str:
    """The row as psql -At prints it on the subscriber, from the values the test wrote."""
    v = values
    joined = v["joined"].strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0") + "+00"  # type: ignore[union-attr]
    prefs = f'{{"n": {v["prefs"]["n"]}, "theme": "{v["prefs"]["theme"]}"}}'  # type: ignore[index]
    return "|".join([
        str(rid), "t" if v["active"] else "f", str(v["balance"]), v["born"].isoformat(),  # type: ignore[union-attr]
        str(v["id"]), joined, str(v["name"]), "\\x" + v["photo"].hex(), prefs,  # type: ignore[union-attr]
        repr(v["score"]).removesuffix(".0"), str(v["visits"]),
    ])  # fmt: skip


@pytest.fixture
def subscriber(tmp_path: Path):
    cluster = PgCluster(tmp_path / "subscriber").start()
    cluster.psql(USERS_DDL)
    yield cluster
    cluster.stop()


def wait_until_equal(
    subscriber: PgCluster, expected: list[str], timeout: float = 60, table: str = "users"
) -> None:
    deadline = time.monotonic() + timeout
    rows: list[str] = []
    while time.monotonic() < deadline:
        out = subscriber.psql(f"SELECT {USERS_COLUMNS} FROM {table} ORDER BY rid")
        rows = out.splitlines() if out else []
        if rows == expected:
            return
        time.sleep(0.2)
    raise AssertionError(f"subscriber rows differ:\n{rows}\nexpected:\n{expected}")


APPLY_ERRORS = ("duplicate key", "could not", "does not exist", "did not send", "incorrect")


def apply_errors(subscriber: PgCluster) -> list[str]:
    """Errors of the apply worker, less the lost connection that a kill -9 of pgshim causes."""
    return [
        line
        for line in subscriber.log_text().splitlines()
        if "ERROR" in line
        and any(marker in line for marker in APPLY_ERRORS)
        and "could not receive data from WAL stream" not in line
    ]


def test_subscriber_copy_data_false_applies_live_changes(spool, pgshim, subscriber) -> None:
    spool.insert("users", **user_values(0))  # the collection exists before the subscription
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION pub FOR ALL TABLES")
    subscriber.psql(
        f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 port={server.port} user=postgres"
        " dbname=reddb' PUBLICATION pub WITH (copy_data = false)"
    )
    mine: dict[int, dict[str, object]] = {}
    for i in range(1, 11):
        _, rid = spool.insert("users", **user_values(i))
        mine[rid] = user_values(i)
    rids = sorted(mine)
    for step in range(3):  # several updates of the same row: each gets a new physical id
        mine[rids[0]] |= {"name": f"renamed {step}", "visits": step}
        spool.update("users", rids[0], name=f"renamed {step}", visits=step)
    spool.delete("users", rids[1])
    del mine[rids[1]]
    wait_until_equal(subscriber, [expected_text(rid, mine[rid]) for rid in sorted(mine)])
    slot = server.psql("SELECT slot_name, active FROM pg_replication_slots")
    assert slot == "sub|t"
    assert server.psql("SELECT application_name, state FROM pg_stat_replication") == (
        "sub|streaming"
    )

    # kill -9 pgshim and restart the subscriber in the middle of a burst
    for i in range(11, 21):
        _, rid = spool.insert("users", **user_values(i))
        mine[rid] = user_values(i)
        if i == 15:
            server.kill()
            server.start()
        if i == 18:
            subscriber.restart()
    spool.update("users", rids[2], score=99.5)
    mine[rids[2]]["score"] = 99.5
    spool.delete("users", rids[3])
    del mine[rids[3]]
    wait_until_equal(subscriber, [expected_text(rid, mine[rid]) for rid in sorted(mine)])
    assert apply_errors(subscriber) == []


def test_subscriber_binary_mode(spool, pgshim, subscriber) -> None:
    spool.insert("users", **user_values(0))
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION pub FOR TABLE users")
    subscriber.psql(
        f"CREATE SUBSCRIPTION subbin CONNECTION 'host=127.0.0.1 port={server.port} user=postgres"
        " dbname=reddb' PUBLICATION pub WITH (copy_data = false, binary = true, streaming = on)"
    )
    mine = {}
    for i in range(1, 6):
        _, rid = spool.insert("users", **user_values(i))
        mine[rid] = user_values(i)
    wait_until_equal(subscriber, [expected_text(rid, mine[rid]) for rid in sorted(mine)])
    subscriber.psql("DROP SUBSCRIPTION subbin")
    assert server.psql("SELECT count(*) FROM pg_replication_slots") == "0"


def test_subscriber_copy_data_true_copies_history_then_streams(spool, pgshim, subscriber) -> None:
    mine: dict[int, dict[str, object]] = {}
    for i in range(1, 8):  # history: the spool holds it all, from LSN 1
        _, rid = spool.insert("users", **user_values(i))
        mine[rid] = user_values(i)
    rids = sorted(mine)
    spool.update("users", rids[0], name="changed before", visits=1)
    mine[rids[0]] |= {"name": "changed before", "visits": 1}
    spool.delete("users", rids[1])
    del mine[rids[1]]
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION pub FOR ALL TABLES")
    subscriber.psql(
        f"CREATE SUBSCRIPTION subcopy CONNECTION 'host=127.0.0.1 port={server.port}"
        " user=postgres dbname=reddb' PUBLICATION pub"
    )
    for i in range(8, 12):  # live changes while and after the table is copied
        _, rid = spool.insert("users", **user_values(i))
        mine[rid] = user_values(i)
    spool.update("users", rids[2], score=-1.5)
    mine[rids[2]]["score"] = -1.5
    wait_until_equal(subscriber, [expected_text(rid, mine[rid]) for rid in sorted(mine)])
    state = subscriber.psql("SELECT srsubstate FROM pg_subscription_rel")
    deadline = time.monotonic() + 30
    while state != "r" and time.monotonic() < deadline:
        time.sleep(0.2)
        state = subscriber.psql("SELECT srsubstate FROM pg_subscription_rel")
    assert state == "r"  # the tablesync worker finished and handed over to the apply worker
    # the tablesync slot is gone again; only the subscription's slot remains
    assert server.psql("SELECT slot_name FROM pg_replication_slots") == "subcopy"
    assert apply_errors(subscriber) == []


def test_copy_to_stdout_from_psql_and_pruned_history(spool, pgshim, tmp_path: Path) -> None:
    _, a = spool.insert("users", name="tab\there", visits=1)
    _, b = spool.insert("users", name="back\\slash", visits=2)
    _, c = spool.insert("users", name="gone", visits=3)
    spool.delete("users", c)
    server = pgshim(spool.path)
    out = server.psql("COPY public.users (rid, name, visits) TO STDOUT")
    assert out.splitlines() == [f"{a}\ttab\\there\t1", f"{b}\tback\\\\slash\t2"]
    missing = subprocess.run(
        ["psql", "-X", "-c", "COPY users (nope) TO STDOUT"], env=server.env_for_clients(),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert 'column "nope" of relation "users" does not exist' in missing.stderr

    # a spool RedDB has pruned (it starts after LSN 1) cannot give a table's full contents
    from spoolkit import SpoolKit

    pruned = SpoolKit(tmp_path / "pruned.rdb.logical.wal")
    pruned.skip_lsn(40)
    pruned.insert("users", name="late", visits=3)
    pruned.close()
    other = pgshim(pruned.path, state_dir=tmp_path / "state2")
    refused = subprocess.run(
        ["psql", "-X", "-c", "COPY users TO STDOUT"], env=other.env_for_clients(),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "RedDB pruned the spool before LSN 41" in refused.stderr
    assert "copy_data = false" in refused.stderr
