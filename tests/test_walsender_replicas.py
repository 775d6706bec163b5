"""Replica registry and commit waiter: RedDB's ack rules applied to PostgreSQL feedback."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.state import open_state
from pgshim.walsender.replicas import (
    REPLICA_COLUMNS,
    CommitWaiter,
    ReplicaRegistry,
    default_replica_id,
)


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return open_state(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(conn: sqlite3.Connection, clock: FakeClock) -> ReplicaRegistry:
    return ReplicaRegistry(conn, clock=clock)


def covered_dense(pos: int) -> int:
    """Every LSN exists: the last n with end_pos(n) = (n << 8) | 0xFF <= pos."""
    return max(0, ((pos + 1) >> 8) - 1)


def test_default_replica_id() -> None:
    assert default_replica_id("sub1") == "pgshim:sub1"


def test_topology_epoch_on_register_and_unregister(registry: ReplicaRegistry) -> None:
    e0 = registry.topology_epoch
    registry.register("r1", "s1", "app")
    registry.register("r2", "s2", "app")
    assert registry.topology_epoch == e0 + 2
    registry.register("r1", "s1", "renamed")  # already connected: same shape
    assert registry.topology_epoch == e0 + 2
    assert registry.get("r1").application_name == "renamed"
    assert registry.unregister("r1") is True
    assert registry.topology_epoch == e0 + 3
    assert registry.unregister("r1") is False
    assert registry.unregister("ghost") is False
    assert registry.topology_epoch == e0 + 3
    registry.register("r1", "s1", "app")  # reconnect
    assert registry.topology_epoch == e0 + 4
    assert registry.connected_ids() == ["r1", "r2"]


def test_acks_are_monotonic_and_recorded_for_unknown_ids(registry: ReplicaRegistry) -> None:
    registry.register("r1", "s1", "app")
    registry.ack_replica_lsn("r1", 10, 8)
    registry.ack_replica_lsn("r1", 9, 5)
    replica = registry.get("r1")
    assert (replica.last_acked_lsn, replica.last_durable_lsn) == (10, 8)
    registry.ack_replica_lsn("ghost", 3, 3)
    assert registry.get("ghost") is None
    assert registry.waiter.acks() == {"r1": 8, "ghost": 3}
    assert registry.is_durable(3, 2)
    assert not registry.is_durable(4, 2)


def test_note_sent_and_touch(registry: ReplicaRegistry, clock: FakeClock) -> None:
    registry.register("r1", "s1", "app")
    clock.now += 5
    registry.note_sent("r1", 12)
    registry.note_sent("r1", 7)
    assert registry.get("r1").last_sent_lsn == 12
    assert registry.get("r1").last_seen_at == clock.now
    clock.now += 5
    registry.touch("r1")
    assert registry.get("r1").last_seen_at == clock.now
    registry.touch("ghost")  # no error


def test_feedback_maps_positions_to_lsns(registry: ReplicaRegistry) -> None:
    registry.register("r1", "s1", "app")
    # flush at the end of LSN 7, apply further (end of 9), write inside LSN 11
    registry.feedback("r1", 0xB00, 0x7FF, 0x9FF, covered_dense)
    replica = registry.get("r1")
    assert (replica.last_durable_lsn, replica.last_acked_lsn, replica.write_lsn) == (7, 9, 0xB)
    # apply 0/0 (pg_recvlogical): applied follows flush
    registry.feedback("r1", 0xC00, 0xAFF, 0, covered_dense)
    assert (replica.last_durable_lsn, replica.last_acked_lsn) == (10, 10)
    # a flush one short of a commit end does not cover that commit
    registry.feedback("r1", 0xC00, 0xBFE, 0, covered_dense)
    assert replica.last_durable_lsn == 10
    # 0/0 and backwards positions change nothing
    registry.feedback("r1", 0, 0, 0, covered_dense)
    registry.feedback("r1", 0x300, 0x3FF, 0x3FF, covered_dense)
    assert (replica.last_durable_lsn, replica.last_acked_lsn, replica.write_lsn) == (10, 10, 0xC)
    assert registry.waiter.acks()["r1"] == 10


def test_feedback_uses_the_callers_coverage_with_gaps(registry: ReplicaRegistry) -> None:
    existing = [3, 8, 20]  # RedDB LSNs may have holes

    def covered(pos: int) -> int:
        return max((n for n in existing if ((n << 8) | 0xFF) <= pos), default=0)

    registry.register("r1", "s1", "app")
    registry.feedback("r1", 0x1000, 0x13FF, 0x13FF, covered)
    assert registry.get("r1").last_durable_lsn == 8


def test_feedback_flush_zero_with_apply(registry: ReplicaRegistry) -> None:
    registry.register("r1", "s1", "app")
    registry.feedback("r1", 0x5FF, 0, 0x5FF, covered_dense)
    replica = registry.get("r1")
    assert (replica.last_durable_lsn, replica.last_acked_lsn) == (0, 5)


def test_hot_standby_feedback_is_recorded_only(registry: ReplicaRegistry) -> None:
    registry.register("r1", "s1", "app")
    registry.hot_standby_feedback("r1", 1234, 0)
    replica = registry.get("r1")
    assert (replica.xmin, replica.catalog_xmin) == (1234, None)
    assert (replica.last_durable_lsn, replica.last_acked_lsn) == (0, 0)


def test_rows_and_lag(registry: ReplicaRegistry, clock: FakeClock) -> None:
    start = clock.now
    registry.register("r1", "s1", "sub1", region="eu")
    registry.note_sent("r1", 40)
    registry.ack_replica_lsn("r1", 35, 30)
    clock.now += 12.5
    rows = registry.rows(current_lsn=50)
    assert [name for name, _ in REPLICA_COLUMNS] == [
        "replica_id",
        "slot_name",
        "application_name",
        "last_sent_lsn",
        "last_acked_lsn",
        "last_durable_lsn",
        "write_lsn",
        "connected_at",
        "last_seen_at",
        "region",
        "lag_records",
        "lag_seconds",
        "topology_epoch",
        "connected",
    ]
    when = datetime.fromtimestamp(start, UTC)
    assert rows == [
        ("r1", "s1", "sub1", 40, 35, 30, 0, when, when, "eu", 20, 12.5, 1, True),
    ]
    registry.ack_replica_lsn("r1", 50, 50)
    assert registry.rows(current_lsn=50)[0][10:12] == (0, 0.0)


def test_restart_keeps_acks_and_lists_replica_as_disconnected(tmp_path: Path) -> None:
    clock = FakeClock()
    conn = open_state(tmp_path)
    registry = ReplicaRegistry(conn, clock=clock)
    registry.register("r1", "s1", "sub1")
    registry.note_sent("r1", 9)
    registry.ack_replica_lsn("r1", 9, 7)
    registry.feedback("r1", 0xA00, 0, 0, covered_dense)
    assert registry.flush() == 1
    registry.ack_replica_lsn("r1", 9, 8)  # not flushed: lost with the process
    conn.close()

    reopened = ReplicaRegistry(open_state(tmp_path), clock=clock)
    replica = reopened.get("r1")
    assert (replica.last_sent_lsn, replica.last_acked_lsn, replica.last_durable_lsn) == (9, 9, 7)
    assert replica.write_lsn == 0xA
    assert replica.connected is False
    assert reopened.connected_ids() == []
    assert reopened.waiter.acks() == {"r1": 7}
    assert reopened.rows(current_lsn=7)[0][-1] is False
    reopened.register("r1", "s1", "sub1")
    assert reopened.get("r1").last_durable_lsn == 7
    assert reopened.topology_epoch == 1


def test_unregister_persists(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    registry = ReplicaRegistry(conn)
    registry.register("r1", "s1", "sub1")
    registry.ack_replica_lsn("r1", 4, 4)
    registry.unregister("r1")
    conn.close()
    assert ReplicaRegistry(open_state(tmp_path)).get("r1").last_durable_lsn == 4


def test_forget_slot_removes_its_replicas(tmp_path: Path) -> None:
    conn = open_state(tmp_path)
    registry = ReplicaRegistry(conn)
    registry.register("r1", "s1", "sub1")
    registry.register("r2", "s2", "sub2")
    registry.ack_replica_lsn("r1", 4, 4)
    epoch = registry.topology_epoch
    assert registry.forget_slot("s1") == ["r1"]
    assert registry.forget_slot("s1") == []
    assert registry.topology_epoch == epoch + 1
    assert registry.get("r1") is None and "r1" not in registry.waiter.acks()
    registry.flush()
    conn.close()
    reopened = ReplicaRegistry(open_state(tmp_path))
    assert [replica.replica_id for replica in reopened.list()] == ["r2"]


# --- commit waiter --------------------------------------------------------------------------------


def test_waiter_nth_highest() -> None:
    waiter = CommitWaiter()
    for replica_id, durable in [("a", 10), ("b", 30), ("c", 20)]:
        waiter.record_replica_ack(replica_id, durable)
    waiter.record_replica_ack("b", 5)  # never backwards
    assert [waiter.commit_watermark(n) for n in (1, 2, 3, 4)] == [30, 20, 10, 0]
    assert waiter.is_durable(20, 2) and not waiter.is_durable(21, 2)
    assert waiter.is_durable(10**9, 0)


def test_quorum_is_a_majority_of_registered_replicas(registry: ReplicaRegistry) -> None:
    assert registry.quorum(1) is False  # nobody to form a majority
    for replica_id in ("r1", "r2", "r3"):
        registry.register(replica_id, replica_id, "app")
    registry.ack_replica_lsn("r1", 10, 10)
    registry.ack_replica_lsn("ghost", 10, 10)  # not registered: not a member
    assert registry.waiter.quorum_size() == 2
    assert registry.quorum(10) is False
    registry.ack_replica_lsn("r2", 12, 12)
    assert registry.quorum(10) is True
    assert registry.quorum(11) is False
    registry.unregister("r3")  # two members left: both must ack
    assert registry.quorum(10) is True
    registry.unregister("r1")
    assert registry.quorum(12) is True


def test_await_acks_wakes_on_ack() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        waiter = CommitWaiter()
        waiter.record_replica_ack("a", 100)
        already = await waiter.await_acks(100, 1, timeout=0.01)
        pending = asyncio.create_task(waiter.await_acks(150, 2, timeout=2))
        await asyncio.sleep(0.01)
        waiter.record_replica_ack("b", 149)
        await asyncio.sleep(0.01)
        still_waiting = not pending.done()
        waiter.record_replica_ack("a", 200)
        waiter.record_replica_ack("b", 150)
        return already, still_waiting, await asyncio.wait_for(pending, 1)

    assert asyncio.run(scenario()) == (True, True, True)


def test_await_acks_times_out() -> None:
    async def scenario() -> bool:
        waiter = CommitWaiter()
        waiter.record_replica_ack("a", 10)
        return await waiter.await_acks(11, 1, timeout=0.05)

    assert asyncio.run(scenario()) is False


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 1000)), max_size=30))
def test_waiter_matches_max_per_replica(acks: list[tuple[str, int]]) -> None:
    waiter = CommitWaiter()
    best: dict[str, int] = {}
    for replica_id, durable in acks:
        waiter.record_replica_ack(replica_id, durable)
        best[replica_id] = max(best.get(replica_id, 0), durable)
    assert waiter.acks() == best
    ranked = sorted(best.values(), reverse=True)
    for n in range(1, 6):
        assert waiter.commit_watermark(n) == (ranked[n - 1] if n <= len(ranked) else 0)
