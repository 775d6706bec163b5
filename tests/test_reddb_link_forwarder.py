"""AckForwarder: batching, retries with backoff, registration; the end-to-end tests run against an
in-test server implementing RedDB's documented replication contract (RedDB cannot run here)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from fake_reddb import FakeRedDb, Principal

from pgshim.reddb.link.client import RedDbClient, RedDbError
from pgshim.reddb.link.forwarder import AckForwarder, ForwardStatus


class RecordingClient:
    """Records calls; fails the acks of ids listed in ``failing``."""

    def __init__(self) -> None:
        self.acks: list[tuple[str, int, int]] = []
        self.pulls: list[str] = []
        self.failing: set[str] = set()
        self.gate: threading.Event | None = None

    def ack_replica_lsn(self, replica_id: str, applied_lsn: int, durable_lsn: int) -> dict:
        if self.gate is not None:
            self.gate.wait(5)
        if replica_id in self.failing:
            raise RedDbError("UNAVAILABLE", "connection refused", method="AckReplicaLsn")
        self.acks.append((replica_id, applied_lsn, durable_lsn))
        return {}

    def pull_wal_records(self, *, since_lsn: int, max_count: int, replica_id: str) -> object:
        self.pulls.append(replica_id)
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reddb() -> Iterator[FakeRedDb]:
    server = FakeRedDb()
    server.start()
    yield server
    server.stop()


def test_note_keeps_the_maximum_and_flush_sends_only_advances() -> None:
    client = RecordingClient()
    forwarder = AckForwarder(client, clock=lambda: 1234.5)
    assert forwarder.status("pgshim:a") == ForwardStatus(None, None, None, None)

    async def scenario() -> None:
        forwarder.note("pgshim:a", 5, 3)
        forwarder.note("pgshim:a", 4, 4)  # applied goes back: kept at 5
        assert await forwarder.flush() == 1
        assert await forwarder.flush() == 0  # nothing advanced
        forwarder.note("pgshim:a", 5, 2)
        assert await forwarder.flush() == 0
        forwarder.note("pgshim:a", 5, 5)
        assert await forwarder.flush() == 1

    asyncio.run(scenario())
    assert client.acks == [("pgshim:a", 5, 4), ("pgshim:a", 5, 5)]
    assert client.pulls == ["pgshim:a"]  # identified once, before its first ack
    assert forwarder.status("pgshim:a") == ForwardStatus(5, 5, None, 1234.5)


def test_failures_back_off_exponentially_per_replica() -> None:
    client = RecordingClient()
    client.failing.add("pgshim:bad")
    clock = Clock()
    forwarder = AckForwarder(client, interval_ms=100, max_backoff_ms=500, monotonic=clock)

    async def flush_at(t: float) -> int:
        clock.now = 100.0 + t
        return await forwarder.flush()

    async def scenario() -> list[int]:
        forwarder.note("pgshim:bad", 1, 1)
        forwarder.note("pgshim:good", 1, 1)
        sent = [await flush_at(0.0)]  # bad fails: next try after 0.2s
        forwarder.note("pgshim:good", 2, 2)
        sent.append(await flush_at(0.1))  # good goes on; bad waits
        sent.append(await flush_at(0.2))  # bad fails again: next after 0.4s more
        sent.append(await flush_at(0.5))  # too early
        sent.append(await flush_at(0.65))  # fails: 0.8s, capped at 0.5s
        sent.append(await flush_at(1.1))  # too early
        client.failing.clear()
        sent.append(await flush_at(1.2))
        return sent

    assert asyncio.run(scenario()) == [1, 1, 0, 0, 0, 0, 1]
    assert [ack for ack in client.acks if ack[0] == "pgshim:bad"] == [("pgshim:bad", 1, 1)]
    bad_tries = client.pulls.count("pgshim:bad")
    assert bad_tries == 1  # registration is tried once, failing acks are not re-registering
    assert forwarder.status("pgshim:bad").last_error is None


def test_error_is_reported_until_a_send_succeeds() -> None:
    client = RecordingClient()
    client.failing.add("pgshim:a")
    forwarder = AckForwarder(client)
    forwarder.note("pgshim:a", 3, 3)
    asyncio.run(forwarder.flush())
    status = forwarder.status("pgshim:a")
    assert status.last_forwarded_applied is None
    assert status.last_error is not None and "UNAVAILABLE" in status.last_error


def test_note_never_waits_for_a_slow_primary() -> None:
    client = RecordingClient()
    client.gate = threading.Event()
    forwarder = AckForwarder(client, interval_ms=10)

    async def scenario() -> float:
        forwarder.note("pgshim:a", 1, 1)
        task = asyncio.create_task(forwarder.run())
        await asyncio.sleep(0.05)  # the ack is now stuck in the worker thread
        started = time.monotonic()
        for lsn in range(2, 1000):
            forwarder.note("pgshim:a", lsn, lsn)
        await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        client.gate.set()
        await forwarder.stop()
        await task
        return elapsed

    assert asyncio.run(scenario()) < 0.5
    assert client.acks[-1] == ("pgshim:a", 999, 999)


def test_in_test_server_forwarder_registers_and_acks(reddb: FakeRedDb) -> None:
    for _ in range(10):
        reddb.append()
    client = RedDbClient(f"grpc://127.0.0.1:{reddb.port}", timeout=5)
    forwarder = AckForwarder(client, interval_ms=20)
    replica_id = forwarder.replica_id("main")
    assert replica_id == "pgshim:main"

    async def scenario() -> None:
        task = asyncio.create_task(forwarder.run())
        forwarder.note(replica_id, 8, 6)
        await _until(lambda: forwarder.status(replica_id).last_forwarded_durable == 6)
        forwarder.note(replica_id, 10, 10)
        await forwarder.stop()
        await task

    asyncio.run(scenario())
    client.close()
    replica = reddb.replicas[replica_id]  # PullWalRecords with replica_id registered it
    assert (replica.last_acked_lsn, replica.last_durable_lsn) == (10, 10)
    assert reddb.slots[replica_id].restart_lsn == 10
    assert reddb.commit_acks == {replica_id: 10}
    acks = [body for method, body in reddb.calls if method == "AckReplicaLsn"]
    assert [(a["applied_lsn"], a["durable_lsn"]) for a in acks] == [(8, 6), (10, 10)]


def test_in_test_server_retries_until_the_primary_accepts(reddb: FakeRedDb) -> None:
    reddb.role = "replica"  # FAILED_PRECONDITION "this instance is not a replication primary"
    client = RedDbClient(f"grpc://127.0.0.1:{reddb.port}", timeout=5)
    forwarder = AckForwarder(client, interval_ms=10, max_backoff_ms=40)

    async def scenario() -> None:
        task = asyncio.create_task(forwarder.run())
        forwarder.note("pgshim:main", 3, 3)
        await _until(lambda: forwarder.status("pgshim:main").last_error is not None)
        assert "not a replication primary" in (forwarder.status("pgshim:main").last_error or "")
        reddb.role = "primary"
        await _until(lambda: forwarder.status("pgshim:main").last_forwarded_durable == 3)
        await forwarder.stop()
        await task

    asyncio.run(scenario())
    client.close()
    assert forwarder.status("pgshim:main").last_error is None
    assert reddb.commit_acks == {"pgshim:main": 3}


def test_in_test_server_denied_replica_does_not_hold_back_others() -> None:
    server = FakeRedDb(principals={"rk_main": Principal("pgshim:main")})
    server.start()
    client = RedDbClient(f"grpc://127.0.0.1:{server.port}", token="rk_main", timeout=5)
    forwarder = AckForwarder(client)

    async def scenario() -> None:
        forwarder.note("pgshim:other", 4, 4)  # not the principal: PERMISSION_DENIED
        forwarder.note("pgshim:main", 4, 4)
        await forwarder.flush()

    asyncio.run(scenario())
    client.close()
    server.stop()
    assert server.commit_acks == {"pgshim:main": 4}
    assert "PERMISSION_DENIED" in (forwarder.status("pgshim:other").last_error or "")


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)
