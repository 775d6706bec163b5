"""The state shared by several instances in a real PostgreSQL database (``state_url``): the
connection that gives the stores sqlite's interface, its migrations and failures, and the stores
on it as two instances see them (slot leases, relations, identities, publications)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pgcluster import PgCluster, pg_bindir

from pgshim.errors import PgError
from pgshim.logical.publications import PublicationStore
from pgshim.logical.relations import RelationRegistry
from pgshim.reddb.identity import IdentityMap
from pgshim.shared_state import MIGRATIONS, SCHEMA_VERSION, SharedConnection, StateStoreError
from pgshim.state import ensure_meta, system_identifier, transaction
from pgshim.walsender.slots import SlotStore

pytestmark = pytest.mark.skipif(
    pg_bindir() is None, reason="PostgreSQL server binaries are not installed"
)

_databases = itertools.count()


@pytest.fixture
def state_url(pg_cluster: PgCluster) -> str:
    """A new, empty database of the session's PostgreSQL for one test."""
    name = f"shared_state_{next(_databases)}_{int(time.time() * 1000) % 10**9}"
    pg_cluster.psql(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/{name}"


@pytest.fixture
def connect(state_url: str) -> Iterator:
    opened: list[SharedConnection] = []

    def open_one(url: str = state_url) -> SharedConnection:
        conn = SharedConnection(url)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close()


def slots_of(conn: SharedConnection, instance: str, lease: float = 10.0) -> SlotStore:
    return SlotStore(conn, database="reddb", instance=instance, lease_seconds=lease)


# --- the connection -------------------------------------------------------------------------------


def test_migrations_create_the_schema_once_and_record_its_version(connect, state_url) -> None:
    first, second = connect(), connect()  # the second finds it done
    rows = second.execute("SELECT version FROM schema_migrations").fetchall()
    assert rows == [(version,) for version in sorted(MIGRATIONS)]
    with psycopg.connect(state_url) as raw:
        tables = {name for (name,) in raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'pgshim'"
        )}  # fmt: skip
    assert {"meta", "slots", "publications", "identity_map", "relations"} <= tables
    assert first.execute("SELECT count(*) FROM slots").fetchone() == (0,)


def test_a_schema_newer_than_this_pgshim_is_refused(connect, state_url) -> None:
    connect()
    with psycopg.connect(state_url, autocommit=True) as raw:
        raw.execute(
            "INSERT INTO pgshim.schema_migrations VALUES (%s, now())", (SCHEMA_VERSION + 1,)
        )
    with pytest.raises(StateStoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        connect()


def test_two_instances_share_one_system_identifier(connect) -> None:
    a, b = connect(), connect()
    ensure_meta(a)
    ensure_meta(b)
    assert system_identifier(a) == system_identifier(b) > 0


def test_sqlite_parameters_and_errors(connect) -> None:
    conn = connect()
    conn.execute(
        "INSERT INTO relations (collection, oid, columns, version) VALUES (?, ?, ?, ?)",
        ("c", 16384, "[]", 1),
    )
    assert conn.execute("SELECT oid FROM relations WHERE collection = ?", ("c",)).fetchone() == (
        16384,
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO relations (collection, oid, columns, version) VALUES (?, ?, ?, ?)",
            ("d", 16384, "[]", 1),
        )
    assert not conn.in_transaction
    # a literal percent sign is not a parameter
    assert conn.execute("SELECT '100%' || ?", ("!",)).fetchone() == ("100%!",)


def test_a_failed_statement_rolls_its_transaction_back(connect) -> None:
    conn = connect()
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO publications (name, all_tables, publish) VALUES ('p', 1, '')")
        conn.execute("INSERT INTO publications (name, all_tables, publish) VALUES ('p', 1, '')")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM publications").fetchone() == (0,)


def test_unreachable_database_fails_at_once_and_without_the_password(pg_cluster) -> None:
    from pgcluster import free_port

    url = f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x"
    with pytest.raises(StateStoreError) as raised:
        SharedConnection(url)
    assert "cannot connect to the state database 127.0.0.1" in str(raised.value)
    assert "s3cret" not in str(raised.value)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[PgCluster]:
    cluster = PgCluster(tmp_path / "state").start()
    yield cluster
    cluster.stop()


def test_a_restarted_database_is_used_again_and_a_lost_transaction_stays_lost(
    own_cluster: PgCluster,
) -> None:
    conn = SharedConnection(f"postgresql://postgres@127.0.0.1:{own_cluster.port}/postgres")
    try:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO publications (name, all_tables, publish) VALUES ('a', 1, '')")
        own_cluster.restart()
        # the transaction went with the connection: its rest must not run on a new one
        with pytest.raises(StateStoreError):
            conn.execute("INSERT INTO publications (name, all_tables, publish) VALUES ('b', 1, '')")
        with pytest.raises(StateStoreError, match="lost inside a transaction"):
            conn.execute("COMMIT")
        conn.execute("ROLLBACK")
        assert not conn.in_transaction
        assert conn.execute("SELECT count(*) FROM publications").fetchone() == (0,)
        own_cluster.pause()
        with pytest.raises(StateStoreError, match="state database 127.0.0.1"):
            conn.execute("SELECT 1")  # the connection it had is gone
        started = time.monotonic()
        for _ in range(5):  # refused at once, then not tried again for a moment
            with pytest.raises(StateStoreError, match="cannot connect to the state database"):
                conn.execute("SELECT 1")
        assert time.monotonic() - started < 2
        own_cluster.resume()
        deadline = time.monotonic() + 15
        while True:
            try:
                assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except StateStoreError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        conn.close()


# --- slots held through leases --------------------------------------------------------------------


def create_slot(store: SlotStore, name: str = "s") -> None:
    store.create(name, "test_decoding", temporary=False, two_phase=False,
                 confirmed_flush=0x100, restart_pos=0x100)  # fmt: skip


def test_a_slot_one_instance_streams_from_is_active_for_the_other(connect) -> None:
    a, b = slots_of(connect(), "a"), slots_of(connect(), "b")
    create_slot(a)
    with pytest.raises(PgError) as exists:
        create_slot(b)
    assert exists.value.sqlstate == "42710"
    a.acquire("s", pid=101)
    with pytest.raises(PgError) as active:
        b.acquire("s", pid=101)  # the same PID on another instance is another session
    assert active.value.sqlstate == "55006"
    assert str(active.value) == 'replication slot "s" is active for PID 101'
    assert [row[-1] for row in b.pgshim_slot_rows()] == ["a"]
    with pytest.raises(PgError) as dropping:
        b.drop("s", pid=7)
    assert dropping.value.sqlstate == "55006"
    a.release("s", 101)
    b.acquire("s", pid=7)
    assert [row[-1] for row in a.pgshim_slot_rows()] == ["b"]


def test_positions_move_only_while_the_lease_is_held(connect) -> None:
    a, b = slots_of(connect(), "a", lease=1.0), slots_of(connect(), "b", lease=1.0)
    create_slot(a)
    a.acquire("s", pid=1)
    assert a.confirm("s", 0x300)
    assert a.flush_dirty() == 1
    time.sleep(1.2)  # a stopped renewing: its lease ran out
    slot = b.acquire("s", pid=2)
    assert slot.confirmed_flush == 0x300  # the position a stored, not the one b read first
    assert a.confirm("s", 0x900)
    a.flush_dirty()  # a no longer holds it: nothing is written
    assert slots_of(connect(), "c").get("s").confirmed_flush == 0x300
    assert b.confirm("s", 0x500) and b.flush_dirty() == 1
    assert slots_of(connect(), "c").get("s").confirmed_flush == 0x500


def test_a_session_whose_lease_went_elsewhere_is_ended(connect) -> None:
    a, b = slots_of(connect(), "a", lease=1.0), slots_of(connect(), "b", lease=1.0)
    create_slot(a)
    a.acquire("s", pid=1)
    ended: list[PgError] = []

    class Stream:
        def fail(self, error: PgError) -> None:
            ended.append(error)

    a.streams.add("s", Stream())  # type: ignore[arg-type]
    time.sleep(1.2)
    b.acquire("s", pid=2)
    a.renew_leases()
    assert [e.sqlstate for e in ended] == ["55006"]
    assert "another instance holds it now" in str(ended[0])
    assert a.get("s").holder == "b" and a.get("s").active_pid == 2


def test_leases_are_renewed_while_held(connect) -> None:
    a, b = slots_of(connect(), "a", lease=1.0), slots_of(connect(), "b", lease=1.0)
    create_slot(a)
    a.acquire("s", pid=1)
    for _ in range(8):  # 2 s: twice the lease
        a.renew_leases()
        time.sleep(0.25)
    with pytest.raises(PgError) as active:
        b.acquire("s", pid=2)
    assert active.value.sqlstate == "55006"


def test_a_dropped_slot_disappears_from_the_other_instance(connect) -> None:
    a, b = slots_of(connect(), "a"), slots_of(connect(), "b")
    create_slot(a, "x")
    assert [slot.name for slot in b.list()] == []  # read at the next refresh
    b.refresh()
    assert [slot.name for slot in b.list()] == ["x"]
    a.drop("x", pid=1)
    assert [row[0] for row in b.slot_rows()] == []


def test_drop_wait_waits_for_the_other_instance(connect) -> None:
    a, b = slots_of(connect(), "a"), slots_of(connect(), "b")
    create_slot(a)
    a.acquire("s", pid=1)

    async def scenario() -> float:
        started = time.monotonic()
        waiting = asyncio.ensure_future(b.drop_wait("s", pid=2))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        a.release("s", 1)
        await asyncio.wait_for(waiting, 5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 3
    assert slots_of(connect(), "c").list() == []


# --- what decoding learns ---------------------------------------------------------------------------


def test_relations_keep_one_oid_per_collection_across_instances(connect) -> None:
    a, b = RelationRegistry(connect()), RelationRegistry(connect())
    users = a.get("users")
    orders = b.get("orders")  # b does not know users yet: it must not take its OID
    assert orders.oid != users.oid
    assert b.get("users").oid == users.oid
    assert RelationRegistry(connect()).get("orders").oid == orders.oid


def test_identities_learned_by_one_instance_resolve_on_another(connect) -> None:
    a, b = IdentityMap(connect()), IdentityMap(connect())
    a.learn("users", 2**63 + 5, 7)
    a.flush()
    b.learn("users", 2**63 + 5, 7)  # the same fact learned again
    b.flush()
    assert IdentityMap(connect()).resolve("users", 2**63 + 5) == 7


def test_publications_created_on_one_instance_appear_on_another(connect, monkeypatch) -> None:
    monkeypatch.setattr("pgshim.logical.publications.SHARED_REFRESH_SECONDS", 0.1)
    a, b = PublicationStore(connect()), PublicationStore(connect())
    assert b.find("p") is None
    generation = b.generation
    a.create("p", all_tables=True)
    time.sleep(0.15)
    assert b.find("p") is not None and b.generation > generation
    with pytest.raises(PgError) as exists:
        b.create("p", all_tables=True)
    assert exists.value.sqlstate == "42710"


def test_a_session_checks_its_lease_before_sending_after_a_busy_loop(connect) -> None:
    a, b = slots_of(connect(), "a", lease=1.0), slots_of(connect(), "b", lease=1.0)
    create_slot(a)
    a.acquire("s", pid=1)
    a.check_lease("s")  # fresh: nothing asked
    time.sleep(0.8)  # past the safe share of the lease, not past the lease: renewed there
    a.check_lease("s")
    with pytest.raises(PgError):
        b.acquire("s", pid=2)
    time.sleep(1.2)  # the loop was busy beyond the lease: another instance took the slot
    b.acquire("s", pid=2)
    with pytest.raises(PgError) as ended:
        a.check_lease("s")
    assert ended.value.sqlstate == "55006"
    assert str(ended.value).endswith("no longer held by this instance: another instance holds it now")


def test_two_processes_with_one_instance_name_never_share_a_slot(connect) -> None:
    # a careless deployment, or an instance restarted after kill -9 while its lease still runs
    first, second = slots_of(connect(), "a", lease=1.0), slots_of(connect(), "a", lease=1.0)
    create_slot(first)
    first.acquire("s", pid=1)
    with pytest.raises(PgError) as active:
        second.acquire("s", pid=1)
    assert active.value.sqlstate == "55006"
    assert first.confirm("s", 0x400) and first.flush_dirty() == 1
    time.sleep(1.2)  # the first stopped renewing
    second.acquire("s", pid=1)
    first.confirm("s", 0x800)
    first.flush_dirty()  # its lease is gone: nothing written
    assert slots_of(connect(), "c").get("s").confirmed_flush == 0x400


def test_a_slot_looked_up_before_another_instance_moved_it_is_current(connect) -> None:
    a, b = slots_of(connect(), "a"), slots_of(connect(), "b")
    create_slot(a)
    seen = b.get("s")  # START_REPLICATION looks the slot up, then acquires it
    a.acquire("s", pid=1)
    a.confirm("s", 0x700)
    a.release("s", 1)
    assert b.acquire("s", pid=2) is seen
    assert seen.confirmed_flush == 0x700
