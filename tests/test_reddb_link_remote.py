"""RemoteFollower against an in-test server implementing RedDB's documented PullWalRecords contract
(reddb-logical-wal.md §5; RedDB itself cannot run here)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fake_reddb import FakeRedDb

from pgshim.reddb.link.client import RedDbClient
from pgshim.reddb.link.remote import RemoteFollower, WalPrunedError
from pgshim.spool.frames import Frame


@pytest.fixture
def reddb() -> Iterator[FakeRedDb]:
    server = FakeRedDb()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(reddb: FakeRedDb) -> Iterator[RedDbClient]:
    with RedDbClient(f"grpc://127.0.0.1:{reddb.port}", timeout=5) as client:
        yield client


def _poll_until(follower: RemoteFollower, count: int, timeout: float = 5.0) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {len(frames)} of {count} frames")
        frames.extend(follower.poll())
        time.sleep(0.005)
    return frames


def test_in_test_server_poll_tails_the_primary(reddb: FakeRedDb, client: RedDbClient) -> None:
    for _ in range(3):
        reddb.append()
    follower = RemoteFollower(client, await_timeout_ms=200)
    try:
        frames = _poll_until(follower, 3)
        assert [f.lsn for f in frames] == [1, 2, 3]
        first = frames[0]
        payload = reddb.records[0][1]
        assert first == Frame("grpc", 1, 0, 1, 0, payload, 0, len(payload))
        reddb.append(lsn=5)  # a hole at 4 (a KV watch event takes an LSN too)
        assert [f.lsn for f in _poll_until(follower, 1)] == [5]
        status = follower.status
        assert status.path == client.target
        assert status.exists and status.layouts_seen == {"grpc"}
        assert (status.first_lsn, status.last_lsn, status.records) == (1, 5, 4)
        assert status.gaps == 1
        assert status.current_lsn == 5 and status.oldest_available_lsn == 1
        assert status.corrupt_offset is None and status.prunes == 0
    finally:
        follower.close()


def test_in_test_server_seek_restarts_the_tail(reddb: FakeRedDb, client: RedDbClient) -> None:
    for _ in range(6):
        reddb.append()
    follower = RemoteFollower(client, await_timeout_ms=100)
    follower.seek(4)
    try:
        assert [f.lsn for f in _poll_until(follower, 2)] == [5, 6]
        follower.seek(1)
        assert [f.lsn for f in _poll_until(follower, 5)] == [2, 3, 4, 5, 6]
    finally:
        follower.close()


def test_in_test_server_iter_from_reads_pages(reddb: FakeRedDb, client: RedDbClient) -> None:
    for _ in range(7):
        reddb.append()
    follower = RemoteFollower(client, max_count=3)
    assert [f.lsn for f in follower.iter_from(1)] == [2, 3, 4, 5, 6, 7]
    assert [f.lsn for f in follower.iter_from(0, limit=4)] == [1, 2, 3, 4]
    assert list(follower.iter_from(7)) == []
    pulls = [body for method, body in reddb.calls if method == "PullWalRecords"]
    assert [(p["since_lsn"], p["max_count"]) for p in pulls[:3]] == [(1, 3), (4, 3), (7, 3)]
    assert all("replica_id" not in p for p in pulls)


def test_in_test_server_iter_from_detects_pruned_history(
    reddb: FakeRedDb, client: RedDbClient
) -> None:
    for _ in range(6):
        reddb.append()
    reddb.prune_through(3)
    follower = RemoteFollower(client)
    with pytest.raises(WalPrunedError) as info:
        list(follower.iter_from(1))
    error = info.value
    assert error.sqlstate == "58P01"
    assert (error.missing_from, error.missing_to, error.oldest_available) == (2, 3, 4)
    assert "LSNs 2..3" in error.message
    assert [f.lsn for f in follower.iter_from(3)] == [4, 5, 6]


def test_in_test_server_tail_reports_a_prune(reddb: FakeRedDb, client: RedDbClient) -> None:
    for _ in range(5):
        reddb.append()
    reddb.prune_through(2)
    follower = RemoteFollower(client, await_timeout_ms=100)
    try:
        assert [f.lsn for f in _poll_until(follower, 3)] == [3, 4, 5]
        assert follower.status.prunes == 1
        assert "LSNs 1..2" in (follower.status.corrupt_reason or "")
    finally:
        follower.close()


def test_in_test_server_invalidated_slot_stops_the_tail(
    reddb: FakeRedDb, client: RedDbClient
) -> None:
    for _ in range(3):
        reddb.append()
    follower = RemoteFollower(client, replica_id="pgshim:remote", await_timeout_ms=50)
    follower.seek(3)
    try:
        assert follower.poll() == []
        deadline = time.monotonic() + 5
        while "pgshim:remote" not in reddb.slots:  # the first pull registers the slot at 3
            assert time.monotonic() < deadline
            time.sleep(0.005)
        for _ in range(5):
            reddb.append()
        reddb.prune_through(6)  # oldest 7 > max(restart 3, since) + 1 once the tail is behind
        follower.seek(3)
        with pytest.raises(WalPrunedError) as info:
            while time.monotonic() < deadline:
                follower.poll()
                time.sleep(0.005)
        assert "wal-removed" in info.value.message
        assert reddb.slots["pgshim:remote"].invalidation_reason == "wal-removed"
    finally:
        follower.close()


def test_in_test_server_follows_the_primary_term(reddb: FakeRedDb, client: RedDbClient) -> None:
    reddb.term = 2
    reddb.append()
    follower = RemoteFollower(client, await_timeout_ms=50)
    try:
        frames = _poll_until(follower, 1)
        assert frames[0].term == 2
        assert follower.status.term == 2
        reddb.term = 3  # a new leader: pulls with term 2 are now fenced
        reddb.append()
        frames = _poll_until(follower, 1)
        assert (frames[0].lsn, frames[0].term) == (2, 3)
        # a pull already waiting when the term changed may bring the record; the next pull is
        # fenced and takes the new term
        deadline = time.monotonic() + 5
        while follower.status.term != 3 and time.monotonic() < deadline:
            follower.poll()
            time.sleep(0.01)
        assert follower.status.term == 3
    finally:
        follower.close()
    terms = [body.get("term") for method, body in reddb.calls if method == "PullWalRecords"]
    assert 2 in terms and terms[-1] == 3
