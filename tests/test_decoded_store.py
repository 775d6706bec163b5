"""The store of chunks and their output rendered ahead: chunks cover every released LSN, holes
included, one relation version each; it keeps no decoded transactions; late records drop the
chunk they belong to; damaged, foreign or old-layout files are never used (see test_output_ahead
for what sessions copy from it)."""

from __future__ import annotations

import pickle
import sqlite3
import time
from pathlib import Path

import pytest
import zstandard
from spoolkit import SpoolKit

from pgshim.logical.checkpoint import IngestCheckpoint
from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore
from pgshim.logical.positions import end_pos
from pgshim.logical.publications import PublicationStore
from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import AheadChunk, ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.plugins import ahead_messages, pgoutput, test_decoding
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
        self.source._loaded_ahead.clear()
        self.source._loaded_ahead_bytes = 0
        self.source._history_cache = type(self.source._history_cache)(16384, 12 << 20)

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


def rendered(source: ChangeSource, start: int) -> list[tuple[int, bytes]]:
    """Every message test_decoding and pgoutput produce for the history after ``start``."""
    ctx = PluginContext(PublicationStore(sqlite3.connect(":memory:"), default="all"))
    plugins = [
        test_decoding.TestDecodingPlugin({"include-xids": "on"}, ctx),
        pgoutput.PgOutputPlugin({"proto_version": "1", "publication_names": "all"}, ctx),
    ]
    out: list[tuple[int, bytes]] = []
    for tx in source.history(start):
        for plugin in plugins:
            out.extend(plugin.encode(tx))
    return out


@pytest.fixture
def workload_spool(tmp_path: Path) -> Path:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 800, seed=11)
    return spool


KEY = "test_decoding:100"


def keep_ahead(server: Server) -> None:
    server.store.keep_ahead({KEY: ChunkFramer(ahead_messages(KEY))})


def chunk_bounds(server: Server) -> list[tuple[int, int]]:
    bounds, lsn = [], 0
    while (found := server.store.find(lsn)) is not None:
        bounds.append(found)
        lsn = found[1]
    return bounds


def test_chunks_cover_every_released_lsn_holes_included(tmp_path: Path) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(700):
        spool.insert("users", name=f"u{i}", score=i)
        if i % 97 == 0:
            spool.skip_lsn(3)  # holes, released past after their grace
    spool.close()
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    server.store.flush()
    bounds = chunk_bounds(server)
    assert len(bounds) >= 3 and bounds[0][0] == 0 and bounds[-1][1] == server.source.last_lsn
    assert all(prev[1] == nxt[0] for prev, nxt in zip(bounds, bounds[1:], strict=False))
    # a catch-up read in a format nobody renders ahead decodes the spool, whatever is stored
    decoded = server.decode.calls
    assert sum(1 for _, m in rendered(server.source, 0) if m.startswith(b"COMMIT")) == 700
    assert server.decode.calls == decoded + 700
    server.close()


def test_no_decoded_transaction_is_kept(tmp_path: Path, workload_spool: Path) -> None:
    server = Server(workload_spool, tmp_path / "state")
    keep_ahead(server)
    server.ingest()
    server.store.flush()
    db = sqlite3.connect(tmp_path / "state" / STORE_FILE_NAME)
    assert [row[1] for row in db.execute("PRAGMA table_info(chunks)")] == ["after_lsn", "last_lsn"]
    rows = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert rows == db.execute("SELECT count(*) FROM ahead").fetchone()[0] >= 3
    db.close()
    server.close()


def test_a_restart_copies_the_output_it_left(tmp_path: Path, workload_spool: Path) -> None:
    first = Server(workload_spool, tmp_path / "state")
    keep_ahead(first)
    first.ingest()
    first.store.flush()
    chunks = len(chunk_bounds(first))
    first.close()

    again = Server(workload_spool, tmp_path / "state")
    keep_ahead(again)
    again.ingest()  # resumes after the checkpoint: nothing to decode
    decoded = again.decode.calls
    items = list(again.source.history(0, ahead=KEY))
    assert sum(1 for item in items if type(item) is AheadChunk) == chunks
    assert again.decode.calls == decoded
    again.close()


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
    server.close()


def test_output_kept_while_a_chunk_is_buffered_leaves_it_whole(tmp_path: Path) -> None:
    """A first reader writes back rendered output whenever it reads, while ingestion is in the
    middle of buffering the next chunk."""
    server = ingested_rows(tmp_path, 6)
    store = DecodedStore(tmp_path / "another.db", server.relations)
    store.keep_ahead({KEY: ChunkFramer(ahead_messages(KEY))})
    first, rest = server.source.ring[:3], server.source.ring[3:]
    for tx in first:
        store.add(tx, tx.first_lsn - 1)
    assert store.render_ahead(KEY, 3, 6, rest) is not None  # another chunk's output written back
    for tx in rest:
        store.add(tx, tx.first_lsn - 1)
    store.flush()
    loaded = store.load_ahead(KEY, 0, 6)
    assert loaded is not None and list(loaded.output[0]) == [end_pos(i) for i in range(1, 7)]
    store.close()
    server.close()


def test_a_late_record_drops_the_chunk_it_belongs_to(tmp_path: Path) -> None:
    conn = open_state(tmp_path / "state")
    relations = RelationRegistry(conn)
    store = DecodedStore(tmp_path / "state" / STORE_FILE_NAME, relations)
    store.keep_ahead({KEY: ChunkFramer(ahead_messages(KEY))})
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for _ in range(5):
        spool.insert("t", v=1)
    spool.close()
    builder = TransactionBuilder(IdentityMap(conn), relations)
    source = ChangeSource(SpoolFollower(spool.path), builder, store=store)
    source.ingest()
    store.flush()
    assert store.find(0) == (0, 5)
    assert source._load_ahead(KEY, (0, 5)) is not None  # loaded, and kept for other sessions
    late = source.ring[2]  # as if LSN 3 were released again after 5
    store.add(late, 5)
    assert store.find(0) is None and store.find(3) is None
    source._check_generation()
    assert (KEY, 0, 5) not in source._loaded_ahead  # the loaded copy is gone with it
    store.close()


def test_a_damaged_or_foreign_row_is_never_used(tmp_path: Path, workload_spool: Path) -> None:
    server = Server(workload_spool, tmp_path / "state")
    keep_ahead(server)
    server.ingest()
    server.store.flush()
    db = sqlite3.connect(tmp_path / "state" / STORE_FILE_NAME)
    keys = db.execute("SELECT after_lsn FROM ahead ORDER BY after_lsn").fetchall()
    assert len(keys) >= 3
    db.execute("UPDATE ahead SET data = ? WHERE after_lsn = ?", (b"not zstd", keys[0][0]))

    class Boom:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "executed",))

    evil = zstandard.ZstdCompressor().compress(pickle.dumps(([], [], [Boom()])))
    db.execute("UPDATE ahead SET data = ? WHERE after_lsn = ?", (evil, keys[1][0]))
    db.commit()
    db.close()
    server.forget_loaded()
    assert server.store.load_ahead(KEY, *chunk_bounds(server)[0]) is None
    assert server.store.load_ahead(KEY, *chunk_bounds(server)[1]) is None
    assert not (tmp_path / "executed").exists()
    server.close()


def test_a_store_of_another_layout_is_started_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    old = sqlite3.connect(state / STORE_FILE_NAME)  # decoded transactions, as kept before
    old.executescript(
        "CREATE TABLE chunks (after_lsn INTEGER NOT NULL, last_lsn INTEGER NOT NULL,"
        " data BLOB NOT NULL, PRIMARY KEY (after_lsn, last_lsn)) WITHOUT ROWID;"
        "INSERT INTO chunks VALUES (0, 5, x'00'); PRAGMA user_version = 6;"
    )
    old.commit()
    old.close()
    server = ingested_rows(tmp_path, 300)
    server.store.flush()
    assert chunk_bounds(server) == [(0, 256), (256, 300)]
    server.close()


def test_an_unreadable_store_file_is_started_again(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / STORE_FILE_NAME).write_bytes(b"this is not a database" * 100)
    conn = open_state(state)
    store = DecodedStore(state / STORE_FILE_NAME, RelationRegistry(conn))
    assert store.find(0) is None
    store.close()
