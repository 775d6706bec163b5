"""Slots: PostgreSQL's SQLSTATEs and rules, persistence across reopen, and the state database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pgshim.errors import PgError
from pgshim.state import durable_commit, open_state, read_meta, system_identifier
from pgshim.walsender.slots import SLOT_COLUMNS, SlotStore, slot_rows, validate_slot_name


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return open_state(tmp_path / "state")


@pytest.fixture
def store(conn: sqlite3.Connection) -> SlotStore:
    return SlotStore(conn, database="testdb")


def make(store: SlotStore, name: str = "s1", **overrides: object) -> object:
    args: dict = {
        "temporary": False,
        "two_phase": False,
        "confirmed_flush": 0x7FF,
        "restart_pos": 0x700,
    }
    args.update(overrides)
    return store.create(name, "test_decoding", **args)


def error_of(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(PgError) as caught:
        call(*args, **kwargs)
    return caught.value.sqlstate, caught.value.message


# --- state database -------------------------------------------------------------------------------


def test_state_system_identifier_is_created_once(tmp_path: Path) -> None:
    first = open_state(tmp_path / "a" / "b")
    meta = read_meta(first)
    assert 0 < meta.system_identifier < 2**63
    assert first.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.close()
    again = open_state(tmp_path / "a" / "b")
    assert read_meta(again) == meta
    assert system_identifier(again) == meta.system_identifier
    other = open_state(tmp_path / "other")
    assert system_identifier(other) != meta.system_identifier


def test_durable_commit_commits_open_transaction(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    conn.execute("CREATE TABLE t (a INTEGER)")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")
    durable_commit(conn)
    assert not conn.in_transaction
    conn.close()
    assert open_state(tmp_path).execute("SELECT a FROM t").fetchall() == [(1,)]


# --- names and limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "sub1", "pg_16411_sync_16385_7712283772604212333", "x" * 63])
def test_valid_names(name: str) -> None:
    validate_slot_name(name)


@pytest.mark.parametrize(
    ("name", "sqlstate", "message"),
    [
        ("", "42602", 'replication slot name "" is too short'),
        ("Sub1", "42602", 'replication slot name "Sub1" contains invalid character'),
        ("a-b", "42602", 'replication slot name "a-b" contains invalid character'),
        ("é", "42602", 'replication slot name "é" contains invalid character'),
        ("x" * 64, "42622", f'replication slot name "{"x" * 64}" is too long'),
    ],
)
def test_invalid_names(store: SlotStore, name: str, sqlstate: str, message: str) -> None:
    assert error_of(make, store, name) == (sqlstate, message)
    assert store.get(name) is None


def test_invalid_character_hint(store: SlotStore) -> None:
    with pytest.raises(PgError) as caught:
        make(store, "A")
    assert caught.value.hint == (
        "Replication slot names may only contain lower case letters, numbers, "
        "and the underscore character."
    )


def test_duplicate_and_limit(conn: sqlite3.Connection) -> None:
    store = SlotStore(conn, database="testdb", max_slots=2)
    make(store, "a")
    assert error_of(make, store, "a") == ("42710", 'replication slot "a" already exists')
    make(store, "b", temporary=True, pid=7)
    assert error_of(make, store, "c") == ("53400", "all replication slots are in use")
    store.drop("a", pid=1)
    make(store, "c")


# --- acquire / release / drop ---------------------------------------------------------------------


def test_one_consumer_per_slot(store: SlotStore) -> None:
    make(store)
    slot = store.acquire("s1", 100, [("include-xids", "0")])
    assert slot.active and slot.active_pid == 100 and slot.options == [("include-xids", "0")]
    assert error_of(store.acquire, "s1", 200) == (
        "55006",
        'replication slot "s1" is active for PID 100',
    )
    assert error_of(store.drop, "s1", pid=200) == (
        "55006",
        'replication slot "s1" is active for PID 100',
    )
    store.release("s1", 200)  # not the holder: no effect
    assert store.get("s1").active_pid == 100
    store.release("s1", 100)
    assert not store.get("s1").active and store.get("s1").options == []
    assert store.acquire("s1", 200).active_pid == 200


def test_unknown_slot(store: SlotStore) -> None:
    missing = ("42704", 'replication slot "nope" does not exist')
    assert error_of(store.acquire, "nope", 1) == missing
    assert error_of(store.drop, "nope", pid=1) == missing
    assert error_of(store.confirm, "nope", 0x100) == missing
    with pytest.raises(PgError) as caught:
        asyncio.run(store.drop_wait("nope", pid=1))
    assert caught.value.sqlstate == "42704"


def test_slot_of_another_database(conn: sqlite3.Connection) -> None:
    make(SlotStore(conn, database="other"), "elsewhere")
    store = SlotStore(conn, database="testdb")
    assert error_of(store.acquire, "elsewhere", 1) == (
        "55000",
        'replication slot "elsewhere" was not created in this database',
    )
    assert not store.get("elsewhere").active


def test_drop_by_holder_and_idle(store: SlotStore) -> None:
    make(store, "a")
    make(store, "b")
    store.acquire("a", 5)
    store.drop("a", pid=5)
    store.drop("b", pid=9)
    assert store.list() == []


def test_drop_wait_waits_for_release(store: SlotStore) -> None:
    make(store)
    store.acquire("s1", 100)

    async def scenario() -> list[str]:
        events: list[str] = []
        waiter = asyncio.create_task(store.drop_wait("s1", pid=200))
        await asyncio.sleep(0.01)
        events.append(f"waiting:{waiter.done()}")
        store.release("s1", 100)
        await asyncio.wait_for(waiter, 1)
        events.append(f"dropped:{store.get('s1') is None}")
        return events

    assert asyncio.run(scenario()) == ["waiting:False", "dropped:True"]


def test_temporary_slot_is_owned_and_dropped_at_session_end(store: SlotStore) -> None:
    slot = make(store, "tmp", temporary=True, pid=42)
    assert slot.active_pid == 42
    assert error_of(store.acquire, "tmp", 43)[0] == "55006"
    store.acquire("tmp", 42)
    store.confirm("tmp", 0x9FF)
    store.release("tmp", 42)  # a stream's end keeps it, still the session's
    assert store.get("tmp").active_pid == 42
    store.release_all(42)
    assert store.get("tmp") is None


def test_release_all_releases_and_drops_temporary(store: SlotStore) -> None:
    make(store, "keep")
    make(store, "tmp", temporary=True, pid=42)
    store.acquire("keep", 42)
    make(store, "other")
    store.acquire("other", 7)
    store.release_all(42)
    assert store.get("tmp") is None
    assert not store.get("keep").active
    assert store.get("other").active_pid == 7


def test_temporary_slot_needs_pid(store: SlotStore) -> None:
    with pytest.raises(ValueError):
        make(store, "tmp", temporary=True)


# --- confirmations and persistence ----------------------------------------------------------------


def test_confirm_rules(store: SlotStore) -> None:
    make(store, confirmed_flush=0x1E49598, restart_pos=0x1E49560)
    assert store.confirm("s1", 0x1E49650) is True
    assert store.confirm("s1", 0x1E49640) is False  # backwards: ignored
    assert store.confirm("s1", 1) is False
    assert store.confirm("s1", 0) is False
    assert store.confirm("s1", 0x1E49650) is False  # same value: nothing moves
    slot = store.get("s1")
    assert (slot.confirmed_flush, slot.restart_pos) == (0x1E49650, 0x1E49650)
    assert store.confirm("s1", 0x1E49700, restart_pos=0x1E49600) is True
    assert store.get("s1").restart_pos == 0x1E49650  # never backwards
    assert store.confirm("s1", 0x1E49800, restart_pos=0x1E49780) is True
    assert store.get("s1").restart_pos == 0x1E49780
    assert store.confirm("s1", 0x1E49900, restart_pos=0x1E49A00) is True
    assert store.get("s1").restart_pos == 0x1E49900  # capped at the confirmation


def test_restart_persistence(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    store = SlotStore(conn, database="testdb")
    make(store, "s1", two_phase=True)
    make(store, "tmp", temporary=True, pid=3)
    store.acquire("s1", 10)
    store.confirm("s1", 0xAFF)
    assert store.flush_dirty() == 1
    assert store.flush_dirty() == 0
    conn.close()

    reopened = SlotStore(open_state(tmp_path), database="testdb")
    assert [s.name for s in reopened.list()] == ["s1"]
    slot = reopened.get("s1")
    assert (slot.confirmed_flush, slot.restart_pos, slot.two_phase) == (0xAFF, 0xAFF, True)
    assert (slot.plugin, slot.database, slot.temporary, slot.active) == (
        "test_decoding",
        "testdb",
        False,
        False,
    )


def test_crash_without_flush_keeps_last_durable_value(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    store = SlotStore(conn, database="testdb")
    make(store, "s1")
    store.acquire("s1", 10)
    store.confirm("s1", 0xAFF)
    store.flush_dirty()
    store.confirm("s1", 0xCFF)  # not flushed: lost by the crash, re-delivered afterwards
    conn.close()  # no flush_dirty, no release

    slot = SlotStore(open_state(tmp_path), database="testdb").get("s1")
    assert slot.confirmed_flush == 0xAFF


def test_release_persists_confirmations(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    store = SlotStore(conn, database="testdb")
    make(store, "s1")
    store.acquire("s1", 10)
    store.confirm("s1", 0xCFF)
    store.release("s1", 10)
    conn.close()
    assert SlotStore(open_state(tmp_path), database="testdb").get("s1").confirmed_flush == 0xCFF


def test_drop_is_persistent_and_large_positions_round_trip(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    store = SlotStore(conn, database="testdb")
    make(store, "gone")
    make(store, "big", confirmed_flush=2**64 - 1, restart_pos=2**63)
    store.drop("gone", pid=1)
    conn.close()
    reopened = SlotStore(open_state(tmp_path), database="testdb")
    assert reopened.get("gone") is None
    assert (reopened.get("big").confirmed_flush, reopened.get("big").restart_pos) == (
        2**64 - 1,
        2**63,
    )


def test_rows(store: SlotStore) -> None:
    make(store, "b", two_phase=True)
    make(store, "a", temporary=True, pid=77, confirmed_flush=0x1FF, restart_pos=0x100)
    assert [name for name, _ in SLOT_COLUMNS][:4] == ["slot_name", "plugin", "slot_type", "datoid"]
    assert store.slot_rows() == [
        ("a", "test_decoding", "logical", 5, "testdb", True, True, 77, None, None)
        + (0x100, 0x1FF, "reserved", None, False),
        ("b", "test_decoding", "logical", 5, "testdb", False, False, None, None, None)
        + (0x700, 0x7FF, "reserved", None, True),
    ]
    assert all(len(row) == len(SLOT_COLUMNS) for row in store.slot_rows())
    assert slot_rows(store.list(), {})[0][3] is None
