"""Slot invalidation, the position clamps and temporary slot lifetime, as pure units."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgshim.errors import PgError
from pgshim.metrics import StateSnapshot, metric_families
from pgshim.plugins import PluginContext, load_plugin
from pgshim.state import open_state
from pgshim.walsender.slots import SLOT_COLUMNS, SlotStore, SpoolPrune, lost_slot_error
from pgshim.walsender.stream import ActiveStreams, StreamState, start_position

OLD_SLOTS_SCHEMA = """
CREATE TABLE slots (
    name TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    database TEXT NOT NULL,
    two_phase INTEGER NOT NULL,
    confirmed_flush INTEGER NOT NULL,
    restart_pos INTEGER NOT NULL,
    created_at TEXT NOT NULL
)
"""


def new_store(path: Path) -> tuple[sqlite3.Connection, SlotStore]:
    conn = open_state(path)
    return conn, SlotStore(conn, database="reddb")


def make(store: SlotStore, name: str, confirmed: int, **kw: object) -> None:
    args: dict = {"temporary": False, "two_phase": False, "confirmed_flush": confirmed,
                  "restart_pos": confirmed}  # fmt: skip
    args.update(kw)
    store.create(name, "test_decoding", **args)


def row_of(store: SlotStore, name: str) -> dict:
    names = [column for column, _ in SLOT_COLUMNS]
    return next(dict(zip(names, r, strict=True)) for r in store.slot_rows() if r[0] == name)


def test_invalidate_persists_across_restart(tmp_path: Path) -> None:
    conn, store = new_store(tmp_path)
    make(store, "lost", 0x7FF)
    make(store, "kept", 0x7FF)
    assert store.invalidate("lost", "RedDB pruned LSN 8 to 9", log_detail="offsets 0 to 99")
    assert not store.invalidate("lost", "a second reason")  # the first one stays
    assert store.invalidations == 1
    conn.close()

    conn, store = new_store(tmp_path)
    lost = store.get("lost")
    assert lost.lost and lost.invalidation_reason == "RedDB pruned LSN 8 to 9"
    assert lost.lost_after == 0x7FF
    assert row_of(store, "lost")["wal_status"] == "lost"
    assert row_of(store, "lost")["restart_lsn"] is None
    assert row_of(store, "lost")["confirmed_flush_lsn"] == 0x7FF
    assert row_of(store, "kept")["wal_status"] == "reserved"
    assert row_of(store, "kept")["restart_lsn"] == 0x7FF
    pgshim_row = next(r for r in store.pgshim_slot_rows() if r[0] == "lost")
    assert pgshim_row[6:9] == ("lost", "RedDB pruned LSN 8 to 9", 0x7FF)
    # a lost slot takes no confirmation
    assert not store.confirm("lost", 0x9FF)
    assert store.get("lost").confirmed_flush == 0x7FF
    error = lost_slot_error(lost)
    assert (error.sqlstate, error.message) == (
        "55000",
        'can no longer get changes from replication slot "lost"',
    )
    assert error.detail == "This slot has been invalidated because RedDB pruned LSN 8 to 9."
    conn.close()


def test_state_db_of_an_older_pgshim_is_migrated(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    conn.execute(OLD_SLOTS_SCHEMA)
    conn.execute(
        "INSERT INTO slots VALUES ('old', 'pgoutput', 'reddb', 0, 2303, 2048, "
        "'2024-01-01T00:00:00+00:00')"
    )
    conn.close()
    conn, store = new_store(tmp_path)
    slot = store.get("old")
    assert (slot.confirmed_flush, slot.restart_pos, slot.lost) == (0x8FF, 0x800, False)
    store.invalidate("old", "it was wrong")
    conn.close()
    conn, store = new_store(tmp_path)
    assert store.get("old").invalidation_reason == "it was wrong"
    conn.close()


def test_invalidate_confirmed_past(tmp_path: Path) -> None:
    conn, store = new_store(tmp_path)
    make(store, "behind", 0x4FF)
    make(store, "at", 0x5FF)
    make(store, "past", 0x6FF)
    store.create("tmp", "test_decoding", temporary=True, two_phase=False,
                 confirmed_flush=0x9FF, restart_pos=0x9FF, pid=5)  # fmt: skip
    assert store.invalidate_confirmed_past(0x5FF, "RedDB LSN 6 diverged") == ["past", "tmp"]
    assert [s.name for s in store.list() if s.lost] == ["past", "tmp"]
    assert store.get("past").lost_after == 0x5FF
    assert store.invalidate_confirmed_past(0x5FF, "again") == []
    conn.close()


class FakeStream:
    def __init__(self, sent: int) -> None:
        self.state = type("S", (), {"sent": sent})()
        self.failure: PgError | None = None

    def fail(self, error: PgError) -> None:
        self.failure = error


def test_invalidate_ends_the_running_stream_and_registry_ends_sent_past(tmp_path: Path) -> None:
    conn, store = new_store(tmp_path)
    make(store, "a", 0x4FF)
    make(store, "b", 0x4FF)
    a, b = FakeStream(0x6FF), FakeStream(0x4FF)
    store.streams.add("a", a)  # type: ignore[arg-type]
    store.streams.add("b", b)  # type: ignore[arg-type]
    store.invalidate("a", "gone")
    assert a.failure is not None and a.failure.sqlstate == "55000"
    assert b.failure is None
    registry = ActiveStreams()
    registry.add("a", a)  # type: ignore[arg-type]
    registry.add("b", b)  # type: ignore[arg-type]
    ended = registry.end_sent_past(0x5FF, lambda slot: PgError("55000", f"bad {slot}"))
    assert ended == ["a"]
    registry.remove("a", b)  # type: ignore[arg-type]  # not its stream: kept
    assert registry.get("a") is a
    conn.close()


def test_temporary_slot_outlives_release_until_session_end(tmp_path: Path) -> None:
    conn, store = new_store(tmp_path)
    store.create("tmp", "test_decoding", temporary=True, two_phase=False,
                 confirmed_flush=0xFF, restart_pos=0xFF, pid=7)  # fmt: skip
    store.acquire("tmp", 7)
    store.release("tmp", 7)  # CopyDone, or the end of a SQL peek
    assert store.get("tmp").active_pid == 7
    with pytest.raises(PgError) as caught:
        store.acquire("tmp", 8)
    assert (caught.value.sqlstate, caught.value.message) == (
        "55006",
        'replication slot "tmp" is active for PID 7',
    )
    store.release_all(8)
    assert store.get("tmp") is not None
    store.release_all(7)
    assert store.get("tmp") is None
    conn.close()


# --- positions ----------------------------------------------------------------------------------


def test_start_position_clamps_a_future_request_to_the_end() -> None:
    assert start_position(0x10_0000_0000, 0x4FF, 0x9FF) == 0x9FF
    assert start_position(0, 0x4FF, 0x9FF) == 0x4FF
    assert start_position(0x6FF, 0x4FF, 0x9FF) == 0x6FF
    # the slot's own confirmed position stands even before ingestion reached it again
    assert start_position(0, 0xBFF, 0x9FF) == 0xBFF


def test_status_update_beyond_sent_is_clamped() -> None:
    state = StreamState(load_plugin("test_decoding", {}, PluginContext()), 0x9FF)
    keepalive = state.keepalive()  # CopyData 'd', length, then 'k' and walEnd
    assert keepalive[5:6] == b"k" and keepalive[6:14] == (0x9FF).to_bytes(8, "big")
    assert state.on_status_update(0x10_0000_0000, 0x10_0000_0000, 0x10_0000_0000, 1) == 0x9FF
    fb = state.feedback
    assert (fb.write, fb.flush, fb.apply) == (0x9FF, 0x9FF, 0x9FF)
    assert state.on_status_update(0x5FF, 0x4FF, 0, 2) == 0x4FF
    assert (fb.write, fb.flush, fb.apply) == (0x5FF, 0x4FF, 0)


def test_spool_prune_names_only_records_that_existed() -> None:
    # records 6..10 and 14 were pruned; 11..13 never existed (holes)
    prune = SpoolPrune("spool", 15, [6, 7, 8, 9, 10, 14], [100, 200, 300, 400, 500, 600])
    assert prune.gone_after(0x5FF) == (6, 6, 14, 100, 600)
    assert prune.gone_after(0x9FF) == (2, 10, 14, 500, 600)
    assert prune.gone_after(0xAFF) == (1, 14, 14, 600, 600)  # the holes count for nothing
    assert prune.gone_after(0xDFF) == (1, 14, 14, 600, 600)
    assert prune.gone_after(0xEFF) is None


def test_invalidate_pruned_and_the_metric(tmp_path: Path) -> None:
    conn, store = new_store(tmp_path)
    make(store, "behind", 0x5FF)
    make(store, "past", 0xDFF)
    prune = SpoolPrune("spool", 14, [6, 7, 8, 9, 10], [100, 200, 300, 400, 500])
    assert store.prune_floor() == 0x5FF
    assert store.invalidate_pruned(prune) == ["behind"]
    assert store.get("behind").invalidation_reason == (
        "RedDB pruned 5 change records it had not confirmed from the spool "
        "(RedDB LSN 6 to 10; the spool now starts at LSN 14)"
    )
    assert not store.get("past").lost
    assert store.prune_floor() == 0xDFF
    state = StateSnapshot(
        started_at=0, spool_exists=True, spool_bytes=0, spool_records=0, spool_first_lsn=None,
        spool_last_lsn=None, spool_gaps=0, spool_out_of_order=0, spool_prunes=1,
        spool_corrupt=False, end_position=0, transactions=0, decode_errors=0, sessions={},
        slot_invalidations=store.invalidations,
    )  # fmt: skip
    values = {f.name: f.samples[0].value for f in metric_families(state) if f.samples}
    assert values["pgshim_slot_invalidations"] == 1
    conn.close()


def test_failover_and_two_phase_are_kept_altered_and_shown_per_version(tmp_path: Path) -> None:
    from pgshim.walsender.slots import slot_columns

    conn, store = new_store(tmp_path / "state.db")
    make(store, "f", 0x500, failover=True, two_phase=True)
    make(store, "plain", 0x600)
    with pytest.raises(PgError, match="cannot enable failover for a temporary replication slot"):
        make(store, "t", 0x600, temporary=True, pid=7, failover=True)
    store.acquire("plain", pid=9)
    with pytest.raises(PgError) as active:  # ALTER_REPLICATION_SLOT needs the slot free
        store.alter("plain", pid=8, failover=True)
    assert active.value.sqlstate == "55006"
    store.release("plain", 9)
    store.alter("plain", pid=8, failover=True, two_phase=True)
    store.alter("f", pid=8, two_phase=False)
    store.enable_two_phase("f", 0x700)  # START_REPLICATION (two_phase 'on')
    conn.close()

    _, reopened = new_store(tmp_path / "state.db")
    names = [name for name, _ in slot_columns(18)]
    rows = {row[0]: dict(zip(names, row, strict=True)) for row in reopened.slot_rows(18)}
    assert {name: (r["failover"], r["two_phase"], r["two_phase_at"]) for name, r in rows.items()} == {
        "f": (True, True, 0x700), "plain": (True, True, 0x600),
    }  # fmt: skip
    assert all(r["inactive_since"] is not None and r["synced"] is False for r in rows.values())
    assert [len(row) for row in reopened.slot_rows(15)] == [15, 15]
    assert [name for name, _ in slot_columns(16)][-2:] == ["two_phase", "conflicting"]
    assert "two_phase_at" not in dict(slot_columns(17)) and "failover" in dict(slot_columns(17))
