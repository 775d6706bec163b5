"""The decoded store: catch-up reads load what ingestion decoded instead of decoding the spool again,
and give exactly what decoding the spool gives, from any start, across restarts, stale relations,
late records and damaged chunks."""

from __future__ import annotations

import gc
import pickle
import sqlite3
import time
import weakref
from pathlib import Path

import pytest
import zstandard
from spoolkit import SpoolKit

from pgshim.logical.checkpoint import IngestCheckpoint
from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore
from pgshim.logical.positions import end_pos
from pgshim.logical.publications import PublicationStore
from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.plugins import pgoutput, test_decoding
from pgshim.plugins.base import PluginContext
from pgshim.reddb.entity import decode_entity
from pgshim.reddb.identity import IdentityMap
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.generate import write_workload
from pgshim.state import open_state
from pgshim.walsender.ahead import ChunkFramer


class CountingDecode:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return decode_entity(*args, **kwargs)


class Server:
    """What the application wires together, without the network."""

    def __init__(self, spool: Path, state: Path, *, ring: int = 16) -> None:
        self.conn = open_state(state)
        self.relations = RelationRegistry(self.conn)
        self.decode = CountingDecode()
        builder = TransactionBuilder(IdentityMap(self.conn), self.relations, decode=self.decode)
        self.store = DecodedStore(state / STORE_FILE_NAME, self.relations)
        self.source = ChangeSource(SpoolFollower(spool), builder, ring_size=ring, store=self.store)
        self.source.resume(IngestCheckpoint(self.conn))

    def ingest(self) -> None:
        self.source.ingest()
        self.source.ingest(time.monotonic() + 1)  # past the reorder grace of records above holes
        self.source.save_checkpoint()

    def forget_loaded(self) -> None:
        self.source._loaded.clear()
        self.source._loaded_ahead.clear()
        self.source._loaded_ahead_bytes = 0
        self.source._history_cache = type(self.source._history_cache)(16384, 4 << 20)

    def close(self) -> None:
        self.store.close()
        self.conn.close()


def ingested_rows(tmp_path: Path, rows: int) -> Server:
    """A server that took in a spool of ``rows`` single-row inserts into table t."""
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(rows):
        spool.insert("t", v=i)
    spool.close()
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    return server


def rendered(source: ChangeSource, start: int, *, records: bool) -> list[tuple[int, bytes]]:
    """Every message test_decoding and pgoutput produce for the history after ``start``."""
    ctx = PluginContext(PublicationStore(sqlite3.connect(":memory:"), default="all"))
    plugins = [
        test_decoding.TestDecodingPlugin({"include-xids": "on"}, ctx),
        pgoutput.PgOutputPlugin({"proto_version": "1", "publication_names": "all"}, ctx),
    ]
    out: list[tuple[int, bytes]] = []
    for tx in source.history(start, records=records):
        for plugin in plugins:
            out.extend(plugin.encode(tx))
    return out


@pytest.fixture
def workload_spool(tmp_path: Path) -> Path:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 800, seed=11)
    return spool


def test_catch_up_reads_decode_nothing_and_match_the_spool(tmp_path: Path) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    ids = [spool.insert("users", name=f"u{i}", score=i, active=i % 2 == 0)[1] for i in range(700)]
    for logical_id in ids[:50]:
        spool.update("users", logical_id, name="renamed", score=-1, active=True)
    spool.skip_lsn(3)
    for logical_id in ids[50:80]:
        spool.delete("users", logical_id)
    spool.close()
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    decoded = server.decode.calls
    assert decoded == 750 and server.store.chunks_loaded == 0

    from_store = rendered(server.source, 0, records=False)
    assert server.decode.calls == decoded  # nothing decoded again
    assert server.store.chunks_loaded >= 3
    from_spool = rendered(server.source, 0, records=True)
    assert server.decode.calls == 2 * decoded
    assert from_store == from_spool
    assert sum(1 for _, payload in from_store if payload.startswith(b"COMMIT")) == 780
    server.close()


def test_every_start_gives_what_the_spool_gives(tmp_path: Path, workload_spool: Path) -> None:
    server = Server(workload_spool, tmp_path / "state")
    server.ingest()
    last = server.source.last_lsn
    for lsn in (0, 1, 255, 256, 257, 600, last - 1):
        for start in (end_pos(lsn), end_pos(lsn) - 1, (lsn << 8) | 0xFE):
            server.forget_loaded()
            assert rendered(server.source, start, records=False) == rendered(
                server.source, start, records=True
            ), start
    assert server.store.chunks_loaded > 0
    server.close()


def test_a_restart_reads_the_store_it_left(tmp_path: Path, workload_spool: Path) -> None:
    first = Server(workload_spool, tmp_path / "state")
    first.ingest()
    expected = rendered(first.source, 0, records=True)
    first.close()

    again = Server(workload_spool, tmp_path / "state")
    again.ingest()  # resumes after the checkpoint: nothing to decode
    assert rendered(again.source, 0, records=False) == expected
    assert again.decode.calls < 100  # the stale chunks of relations that grew early, at most
    assert again.store.chunks_loaded > 0
    again.close()


def test_a_relation_that_changed_is_decoded_again(tmp_path: Path) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(600):
        spool.insert("items", name=f"i{i}")
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    spool.insert("items", name="new", colour="red")  # a new column: the relation's version moves
    spool.close()
    server.ingest()
    calls = server.decode.calls
    server.forget_loaded()
    from_store = rendered(server.source, 0, records=False)
    assert server.store.chunks_stale > 0
    assert server.decode.calls > calls  # decoded from the spool with the columns of today
    assert from_store == rendered(server.source, 0, records=True)
    assert b"colour[text]:null" in from_store[1][1]
    server.close()


def test_a_relation_changing_within_a_chunk_starts_the_next(tmp_path: Path) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(10):
        spool.insert("items", name=f"i{i}")
    for i in range(10):
        spool.insert("items", name=f"j{i}", colour="red")  # the relation's version moves
    spool.close()
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    assert server.store.find(0) == (0, 10) and server.store.find(10) == (10, 20)
    server.forget_loaded()
    calls = server.decode.calls
    assert rendered(server.source, end_pos(10), records=False) == rendered(
        server.source, end_pos(10), records=True
    )
    assert server.store.chunks_loaded == 1 and server.store.chunks_stale == 0
    assert server.decode.calls == calls + 10  # the spool read, the store's chunk loaded
    server.close()


def test_a_written_chunk_is_freed_without_the_cycle_collector(tmp_path: Path) -> None:
    """The server runs full collections rarely: what encoded a chunk, and the transactions its
    pickler remembers, must go as soon as the chunk is written."""
    server = ingested_rows(tmp_path, 3)
    store = DecodedStore(tmp_path / "another.db", server.relations)
    gc.disable()
    try:
        for tx in server.source.ring:
            store.add(tx, tx.first_lsn - 1)
        encoder = weakref.ref(store._encoder)
        store.flush()
        assert encoder() is None
    finally:
        gc.enable()
    assert store.find(0) == (0, 3)
    store.close()
    server.close()


def test_output_kept_while_a_chunk_is_encoded_leaves_it_whole(tmp_path: Path) -> None:
    """A first reader writes back rendered output whenever it reads, while ingestion is in the
    middle of encoding the next chunk."""
    server = ingested_rows(tmp_path, 6)
    store = DecodedStore(tmp_path / "another.db", server.relations)
    plugin = test_decoding.TestDecodingPlugin({}, PluginContext())
    store.keep_ahead({"test_decoding:100": ChunkFramer(plugin.render)})
    first, rest = server.source.ring[:3], server.source.ring[3:]
    for tx in first:
        store.add(tx, tx.first_lsn - 1)
    store.render_ahead("test_decoding:100", 3, 6, rest)  # another chunk's output written back
    for tx in rest:
        store.add(tx, tx.first_lsn - 1)
    store.flush()
    loaded = store.load(0, 6)
    assert loaded is not None and [tx.end_pos for tx in loaded] == [end_pos(i) for i in range(1, 7)]
    store.close()
    server.close()


def test_a_late_record_drops_the_chunk_it_belongs_to(tmp_path: Path) -> None:
    conn = open_state(tmp_path / "state")
    relations = RelationRegistry(conn)
    store = DecodedStore(tmp_path / "state" / STORE_FILE_NAME, relations)
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for _ in range(5):
        spool.insert("t", v=1)
    spool.close()
    builder = TransactionBuilder(IdentityMap(conn), relations)
    source = ChangeSource(SpoolFollower(spool.path), builder, store=store)
    source.ingest()
    store.flush()
    assert store.find(0) == (0, 5)
    assert source._load((0, 5)) is not None  # loaded, and kept for other sessions
    late = source.ring[2]  # as if LSN 3 were released again after 5
    store.add(late, 5)
    assert store.find(0) is None and store.find(3) is None
    assert source._load((0, 5)) is None  # the loaded copy is gone with it
    store.close()


def test_a_damaged_or_foreign_chunk_is_never_used(tmp_path: Path, workload_spool: Path) -> None:
    server = Server(workload_spool, tmp_path / "state")
    server.ingest()
    expected = rendered(server.source, 0, records=True)
    db = sqlite3.connect(tmp_path / "state" / STORE_FILE_NAME)
    keys = db.execute("SELECT after_lsn, last_lsn FROM chunks ORDER BY after_lsn").fetchall()
    first_last = keys[0][1] + (1 << 63)  # stored as order-preserving signed integers
    assert len(keys) >= 3
    db.execute("UPDATE chunks SET data = ? WHERE after_lsn = ?", (b"not zstd", keys[0][0]))

    class Boom:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "executed",))

    evil = zstandard.ZstdCompressor().compress(pickle.dumps(([], [Boom()])))
    db.execute("UPDATE chunks SET data = ? WHERE after_lsn = ?", (evil, keys[1][0]))
    db.commit()
    db.close()
    server.forget_loaded()
    assert rendered(server.source, 0, records=False) == expected
    assert not (tmp_path / "executed").exists()
    assert server.store.find(first_last - 1) is None  # dropped, the spool answers instead
    server.close()


def test_an_unreadable_store_file_is_started_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / STORE_FILE_NAME).write_bytes(b"this is not a database" * 100)
    conn = open_state(state)
    store = DecodedStore(state / STORE_FILE_NAME, RelationRegistry(conn))
    assert store.find(0) is None
    store.close()
