"""The store of output rendered ahead is a cache: a full disk, a locked or damaged file never fails ingestion or a
catch-up read, never lets a stale chunk be read, keeps memory bounded, and the store recovers by
itself once the cause is gone. Failures are real sqlite ones: ``max_page_count`` makes sqlite
report SQLITE_FULL exactly as for a full disk, another connection's lock SQLITE_BUSY."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from spoolkit import SpoolKit

from pgshim.logical import decoded_store
from pgshim.logical.checkpoint import IngestCheckpoint
from pgshim.logical.decoded_store import CHUNK_TRANSACTIONS, STORE_FILE_NAME, DecodedStore
from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import AheadChunk, ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.plugins import ahead_messages
from pgshim.reddb.identity import IdentityMap
from pgshim.spool.follower import SpoolFollower
from pgshim.state import open_state, write_error
from pgshim.walsender.ahead import ChunkFramer
from pgshim.walsender.slots import SlotStore

KEY = "test_decoding:100"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "state"
        self.spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
        self.conn = open_state(self.state)
        self.relations = RelationRegistry(self.conn)
        self.clock = Clock()
        self.store = DecodedStore(self.state / STORE_FILE_NAME, self.relations, clock=self.clock)
        self.store.keep_ahead({KEY: ChunkFramer(ahead_messages(KEY))})
        builder = TransactionBuilder(IdentityMap(self.conn), self.relations)
        self.source = ChangeSource(SpoolFollower(self.spool.path), builder, store=self.store,
                                   ring_size=16)  # fmt: skip
        self.source.resume(IngestCheckpoint(self.conn))

    def write(self, count: int) -> None:
        for _ in range(count):
            self.spool.insert("t", v=self.spool.lsn, pad="x" * 200)

    def ingest(self) -> None:
        self.source.ingest()
        self.source.ingest(time.monotonic() + 1)
        self.source.save_checkpoint()

    def history_lsns(self) -> list[int]:
        """What a session catching up from the start would be sent, copied or decoded."""
        self.source._loaded_ahead.clear()
        lsns = []
        for item in self.source.history(0, ahead=KEY):
            if type(item) is AheadChunk:
                lsns += [pos >> 8 for pos in item.ahead.output[0] if pos > item.after_pos]
            else:
                lsns.append(item.last_lsn)
        return lsns

    def chunks(self) -> int:
        with sqlite3.connect(self.state / STORE_FILE_NAME) as db:
            return db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def close(self) -> None:
        self.store.close()
        self.conn.close()
        self.spool.close()


@pytest.fixture
def rig(tmp_path: Path):  # noqa: ANN201
    rig = Rig(tmp_path)
    yield rig
    rig.close()


def fill_store(store: DecodedStore) -> None:
    """From now on the store's file cannot grow: SQLITE_FULL, as on a full disk."""
    conn = store._conn
    assert conn is not None
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")


def free_store(store: DecodedStore) -> None:
    assert store._conn is not None
    store._conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_store_drops_chunks_and_every_change_is_still_read(rig: Rig) -> None:
    rig.write(CHUNK_TRANSACTIONS)
    rig.ingest()
    stored = rig.chunks()
    assert stored == 1 and rig.store.state == "ok"

    fill_store(rig.store)
    rig.write(CHUNK_TRANSACTIONS * 6)
    rig.ingest()  # raised, and kept every transaction in memory, before
    assert rig.store.state == "failing"
    assert "full" in rig.store.error
    assert rig.source._unstored == []  # nothing piles up for the store
    assert rig.store._count == 0  # nor in it: writes wait for the next try
    assert rig.chunks() == stored
    assert rig.history_lsns() == list(range(1, rig.spool.lsn + 1))
    # the checkpoint (in the state database, which has room) moves on
    assert IngestCheckpoint(rig.conn).load().lsn == rig.spool.lsn

    # still failing at the next try (the file is locked now): it waits longer
    locker = sqlite3.connect(rig.state / STORE_FILE_NAME, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    rig.clock.now += decoded_store.RETRY_FIRST
    rig.write(CHUNK_TRANSACTIONS)
    rig.ingest()
    assert rig.store.state == "failing" and rig.store._backoff == 2 * decoded_store.RETRY_FIRST
    locker.execute("ROLLBACK")
    locker.close()

    rig.clock.now += 2 * decoded_store.RETRY_FIRST  # tried on a new connection: it has room
    rig.write(CHUNK_TRANSACTIONS * 2)
    rig.ingest()
    assert rig.store.state == "ok" and rig.store.error is None
    assert rig.chunks() > stored  # in use again: readable chunks
    loaded_before = rig.store.ahead_loaded
    assert rig.history_lsns() == list(range(1, rig.spool.lsn + 1))
    assert rig.store.ahead_loaded >= loaded_before + 2


def test_the_failure_is_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.write(10)
    rig.ingest()
    fill_store(rig.store)
    locker = sqlite3.connect(rig.state / STORE_FILE_NAME, isolation_level=None)
    with caplog.at_level("INFO", logger="pgshim.logical.decoded_store"):
        for _ in range(5):
            rig.write(CHUNK_TRANSACTIONS)
            rig.ingest()
            rig.clock.now += decoded_store.RETRY_MAX
            if not locker.in_transaction:  # the next tries find the file locked
                locker.execute("BEGIN EXCLUSIVE")
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "full" in warnings[0].getMessage()
        locker.execute("ROLLBACK")
        locker.close()
        rig.write(CHUNK_TRANSACTIONS)
        rig.ingest()
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_a_chunk_that_cannot_be_dropped_is_never_read(rig: Rig) -> None:
    rig.write(5)
    rig.ingest()
    rig.store.flush()
    assert rig.store.find(0) is not None
    late = rig.source.ring[2]
    locker = sqlite3.connect(rig.state / STORE_FILE_NAME, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # the store's file is locked by another process
    rig.store.add(late, 5)  # LSN 3 released again: the chunk (0, 5] lacks it, and stays
    assert rig.store.state == "failing" and "locked" in rig.store.error
    assert rig.store.find(0) is None and rig.store.next_start(0) is None  # nothing is read
    locker.execute("ROLLBACK")
    locker.close()
    rig.clock.now += decoded_store.RETRY_FIRST
    rig.write(1)
    rig.ingest()
    assert rig.store.state == "ok"
    assert rig.store.find(0) is None  # dropped now
    assert rig.history_lsns() == list(range(1, rig.spool.lsn + 1))


def test_pending_drops_stay_bounded(rig: Rig) -> None:
    rig.write(5)
    rig.ingest()
    rig.store.flush()
    fill_store(rig.store)
    locker = sqlite3.connect(rig.state / STORE_FILE_NAME, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for lsn in range(10_000):
        rig.store.discard_covering(lsn)
    assert len(rig.store._drops) <= decoded_store.MAX_PENDING_DROPS
    locker.execute("ROLLBACK")
    locker.close()
    free_store(rig.store)
    rig.clock.now += decoded_store.RETRY_MAX
    rig.write(CHUNK_TRANSACTIONS)
    rig.ingest()
    assert rig.store.state == "ok" and rig.store.find(0) is None  # (0, 5] was dropped


def test_a_store_that_cannot_be_opened_is_tried_again_and_not_deleted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    conn = open_state(state)
    (state / STORE_FILE_NAME).mkdir()  # cannot be opened: not damaged, not removed
    clock = Clock()
    store = DecodedStore(state / STORE_FILE_NAME, RelationRegistry(conn), clock=clock)
    assert store.state == "failing" and store.find(0) is None
    assert (state / STORE_FILE_NAME).is_dir()
    (state / STORE_FILE_NAME).rmdir()
    clock.now += decoded_store.RETRY_FIRST
    store.trim(0)
    assert store._conn is not None and store.find(0) is None  # open: the next chunk tells
    store.close()
    conn.close()


def test_a_truncated_store_is_started_again(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.write(CHUNK_TRANSACTIONS * 8)
    rig.ingest()
    rig.store.close()
    path = rig.state / STORE_FILE_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    store = DecodedStore(path, rig.relations, clock=rig.clock)
    rig.source.store = rig.store = store
    assert rig.history_lsns() == list(range(1, rig.spool.lsn + 1))  # never raises
    rig.clock.now += decoded_store.RETRY_MAX
    rig.write(CHUNK_TRANSACTIONS)
    rig.ingest()
    assert store.state == "ok" and rig.chunks() >= 1
    assert rig.history_lsns() == list(range(1, rig.spool.lsn + 1))
    rig.close()


def test_slot_positions_that_cannot_be_written_stay_dirty(tmp_path: Path) -> None:
    conn = open_state(tmp_path / "state")
    slots = SlotStore(conn, database="reddb")
    slots.create("s", "test_decoding", temporary=False, two_phase=False,
                 confirmed_flush=16, restart_pos=16)  # fmt: skip
    conn.execute("PRAGMA busy_timeout = 10")
    locker = sqlite3.connect(tmp_path / "state" / "state.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the state database cannot be written
    assert slots.confirm("s", 512)
    assert slots.flush_dirty() == 0  # not written, and no exception
    assert slots.flush_error is not None and "s" in slots._dirty
    with pytest.raises(Exception) as refused:
        slots.create("t", "test_decoding", temporary=False, two_phase=False,
                     confirmed_flush=16, restart_pos=16)  # fmt: skip
    assert refused.value.sqlstate == "58030" and slots.get("t") is None
    with pytest.raises(Exception) as refused:
        slots.drop("s", pid=1)
    assert refused.value.sqlstate == "58030" and slots.get("s") is not None
    locker.execute("ROLLBACK")
    assert slots.flush_dirty() == 1 and slots.flush_error is None
    assert SlotStore(conn, database="reddb").get("s").confirmed_flush == 512
    conn.close()


def test_a_full_disk_is_postgresql_disk_full() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (b BLOB)")
    db.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        db.execute("INSERT INTO t VALUES (zeroblob(100000))")
    error = write_error(full.value)
    assert error.sqlstate == "53100"
    assert error.message == 'could not write to file "state.db": No space left on device'
