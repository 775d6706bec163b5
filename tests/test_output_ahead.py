"""Output rendered ahead: a session catching up copies XLogData framed when the chunk was stored,
and sends byte for byte what rendering the transactions gives, from any start, for every format
rendered ahead, with publications that filter, relations that change and damaged rows."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest
from spoolkit import SpoolKit
from test_decoded_store import Server, ingested_rows

from pgshim.logical.decoded_store import CHUNK_TRANSACTIONS, STORE_FILE_NAME, AheadOutput
from pgshim.logical.positions import end_pos
from pgshim.logical.publications import PublicationStore
from pgshim.logical.source import AheadChunk
from pgshim.plugins import ahead_messages, default_ahead_key, load_plugin
from pgshim.plugins.base import PluginContext
from pgshim.spool.generate import write_workload
from pgshim.walsender import ahead, stream
from pgshim.walsender.ahead import AheadKeys
from pgshim.walsender.stream import StreamState
from pgshim.wire.messages import xlog_data

NOW = 0x0123_4567_89AB

TD_OPTIONS = [
    {},
    {"include-xids": "0", "include-timestamp": "1"},
    {"skip-empty-xacts": "1"},
]
PGOUTPUT_OPTIONS = [
    {"proto_version": "1", "publication_names": "all"},
    {"proto_version": "2", "publication_names": "all", "binary": "true"},
]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "pg_now_us", lambda: NOW)


@pytest.fixture
def context() -> PluginContext:
    publications = PublicationStore(sqlite3.connect(":memory:"), default="all")
    publications.create("only_users", tables=["users"])
    return PluginContext(publications)


def session_bytes(server: Server, plugin_name: str, options: dict, ctx: PluginContext,
                  start: int, *, use_ahead: bool) -> bytes:  # fmt: skip
    """What one session sends catching up from ``start``, in batches as the stream does."""
    plugin = load_plugin(plugin_name, dict(options), ctx)
    state = StreamState(plugin, start)
    key = plugin.ahead_key if use_ahead else None
    items = list(server.source.history(start, ahead=key))
    out: list = []
    for first in range(0, len(items), 7):
        state.encode(items[first : first + 7], out)
    assert state.sent == (items[-1].end_pos if items else start)
    return b"".join(out)


def kinds(out: bytes) -> list[str]:
    """The first byte of every XLogData payload in ``out``."""
    found, at = [], 0
    while at < len(out):
        assert out[at : at + 1] == b"d" and out[at + 5 : at + 6] == b"w"
        (length,) = struct.unpack_from("!i", out, at + 1)
        found.append(chr(out[at + 30]))
        at += 1 + length
    return found


def ahead_server(spool: Path, state: Path, keys: list[str]) -> Server:
    server = Server(spool, state)
    registry = AheadKeys(server.conn, server.store, max_keys=len(keys))
    for key in keys:
        registry.use(key)
    server.ingest()
    return server


ALL_KEYS = ["test_decoding:100", "test_decoding:010", "test_decoding:101", "pgoutput:text",
            "pgoutput:binary"]  # fmt: skip


@pytest.fixture
def workload_spool(tmp_path: Path) -> Path:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 900, seed=3)
    return spool


def test_keys_name_the_options_that_shape_the_output(context: PluginContext) -> None:
    keys = {load_plugin("test_decoding", dict(o), context).ahead_key for o in TD_OPTIONS}
    keys |= {load_plugin("pgoutput", dict(o), context).ahead_key for o in PGOUTPUT_OPTIONS}
    assert keys == set(ALL_KEYS[:3]) | {"pgoutput:text", "pgoutput:binary"}
    assert default_ahead_key("test_decoding") == "test_decoding:100"
    assert default_ahead_key("pgoutput") == "pgoutput:text"
    assert default_ahead_key("wal2json") is None and default_ahead_key("reddb") is None
    assert load_plugin("wal2json", {}, context).ahead_key is None


def test_every_start_sends_what_rendering_sends(
    tmp_path: Path, workload_spool: Path, context: PluginContext
) -> None:
    server = ahead_server(workload_spool, tmp_path / "state", ALL_KEYS)
    last = server.source.last_lsn
    starts = [0]
    for lsn in (1, 255, 256, 257, 511, 700, last - 1):
        starts += [end_pos(lsn), end_pos(lsn) - 1, lsn << 8]
    cases = [("test_decoding", o) for o in TD_OPTIONS]
    cases += [("pgoutput", o) for o in PGOUTPUT_OPTIONS]
    cases.append(("pgoutput", {"proto_version": "1", "publication_names": "only_users"}))
    for name, options in cases:
        for start in starts:
            server.forget_loaded()
            rendered = session_bytes(server, name, options, context, start, use_ahead=False)
            loaded = server.store.ahead_loaded
            copied = session_bytes(server, name, options, context, start, use_ahead=True)
            assert copied == rendered, (name, options, start)
            if start < end_pos(last - 300):
                assert server.store.ahead_loaded > loaded, (name, options, start)
    assert b"\x00\x00\x01\x23\x45\x67\x89\xab" in rendered  # sendTime is the session's clock
    server.close()


def test_test_decoding_catch_up_neither_decodes_nor_loads(
    tmp_path: Path, workload_spool: Path, context: PluginContext
) -> None:
    server = ahead_server(workload_spool, tmp_path / "state", ["test_decoding:100"])
    decoded = server.decode.calls
    server.forget_loaded()
    out = session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True)
    assert server.decode.calls == decoded
    assert server.store.ahead_loaded >= 3
    assert out.count(b"COMMIT ") == server.source.transactions
    server.close()


def test_pgoutput_takes_rendered_chunks_once_its_relations_are_sent(
    tmp_path: Path, context: PluginContext
) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(2000):
        spool.insert("users" if i % 3 else "orders", name=f"n{i}", amount=i)
    spool.close()
    server = ahead_server(spool.path, tmp_path / "state", ["pgoutput:text"])
    chunks = server.store._conn.execute("SELECT count(*) FROM ahead").fetchone()[0]
    assert chunks >= 7
    server.forget_loaded()
    decoded = server.decode.calls
    out = session_bytes(server, "pgoutput", PGOUTPUT_OPTIONS[0], context, 0, use_ahead=True)
    # the chunk that introduces the relations is decoded (and the record after it, to see it
    # ends) and rendered by the session, the others copied
    assert server.decode.calls - decoded == CHUNK_TRANSACTIONS + 1
    assert server.store.ahead_loaded == chunks
    assert kinds(out).count("R") == 2 and kinds(out).count("B") == 2000
    filtered = session_bytes(server, "pgoutput", {"proto_version": "1",
                             "publication_names": "only_users"}, context, 0, use_ahead=True)  # fmt: skip
    # each chunk has an unpublished change: decoded (the first one still in the shared cache)
    assert server.decode.calls - decoded == 2000
    assert kinds(filtered).count("R") == 1 and kinds(filtered).count("I") == 1333
    server.close()


def test_a_relation_that_changed_is_not_copied(tmp_path: Path, context: PluginContext) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(600):
        spool.insert("items", name=f"i{i}")
    server = ahead_server(spool.path, tmp_path / "state", ["test_decoding:100"])
    spool.insert("items", name="new", colour="red")  # a new column: the relation's version moves
    spool.close()
    server.ingest()
    server.forget_loaded()
    copied = session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True)
    assert copied == session_bytes(server, "test_decoding", {}, context, 0, use_ahead=False)
    assert b"colour[text]:null" in copied
    assert server.store.chunks_stale >= 3 and server.store.ahead_loaded == 1  # the newest only
    server.close()


def test_a_damaged_row_is_rendered_again(
    tmp_path: Path, workload_spool: Path, context: PluginContext
) -> None:
    server = ahead_server(workload_spool, tmp_path / "state", ["test_decoding:100"])
    expected = session_bytes(server, "test_decoding", {}, context, 0, use_ahead=False)
    db = sqlite3.connect(tmp_path / "state" / STORE_FILE_NAME)
    (after,) = db.execute("SELECT min(after_lsn) FROM ahead").fetchone()
    db.execute("UPDATE ahead SET data = ? WHERE after_lsn = ?", (b"not zstd", after))
    db.commit()
    rows = db.execute("SELECT count(*) FROM ahead").fetchone()[0]
    server.forget_loaded()
    assert session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True) == expected
    assert db.execute("SELECT count(*) FROM ahead").fetchone()[0] == rows  # rendered again
    assert server.store.ahead_rendered == 1
    db.close()
    server.close()


def test_the_chunk_layout_is_read_back_as_written(tmp_path: Path) -> None:
    server = ingested_rows(tmp_path, 10)
    plugin = load_plugin("test_decoding", {}, PluginContext())
    framer = ahead.ChunkFramer(plugin.render)
    output = framer.render(server.source.ring)
    ends, message_ends, pieces = framer.parse(output)
    assert list(ends) == [end_pos(lsn) for lsn in range(1, 11)]
    assert list(message_ends) == list(range(3, 31, 3)) and len(pieces) == 31
    rendered = AheadOutput({}, [], framer.parse(output), len(output))
    for skip in (0, 4, 10, 3, 0):
        chunk = AheadChunk(rendered, end_pos(skip), 10, end_pos(10), list)
        out, messages = ahead.chunk_messages(chunk, NOW)
        assert messages == 30 - 3 * skip
        expected = [xlog_data(at, at, NOW, payload) for tx in server.source.ring[skip:]
                    for at, payload in plugin.render(tx)]  # fmt: skip
        assert out == b"".join(expected)
    server.close()


def test_values_are_sent_as_they_are(tmp_path: Path) -> None:
    """Binary zeros, what a sendTime not yet stamped would hold, stay in the values."""
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    spool.insert("t", v=0, w=0.0)
    spool.close()
    server = Server(spool.path, tmp_path / "state")
    server.ingest()
    render = ahead_messages("pgoutput:binary")
    assert render is not None
    framer = ahead.ChunkFramer(render)
    output = framer.render(server.source.ring)
    chunk = AheadChunk(
        AheadOutput({}, [], framer.parse(output), len(output)), 0, 1, end_pos(1), list
    )
    out, messages = ahead.chunk_messages(chunk, NOW)
    expected = [xlog_data(at, at, NOW, payload) for tx in server.source.ring
                for at, payload in render(tx)]  # fmt: skip
    assert messages == len(expected) and bytes(out) == b"".join(expected)
    assert bytes(out).count(bytes(8)) >= 2  # the bigint and the double
    server.close()


def test_keys_are_kept_bounded_recent_and_across_restarts(tmp_path: Path) -> None:
    server = Server(tmp_path / "none.rdb.logical.wal", tmp_path / "state")
    registry = AheadKeys(server.conn, server.store)
    registry.use("wal2json:x")  # no plugin renders it ahead
    registry.use(None)
    assert registry.active() == []
    for age, key in enumerate(["test_decoding:000", "test_decoding:100", "test_decoding:110",
                               "pgoutput:text", "pgoutput:binary"]):  # fmt: skip
        registry.use(key, now=1000.0 + age)
    assert len(registry.active()) == 4
    assert "test_decoding:000" not in registry.active()  # the least recently used went
    assert set(server.store.renderers) == set(registry.active())
    again = AheadKeys(server.conn, server.store)
    assert again.active() == []  # all of them unused for far longer than a week
    registry.use("pgoutput:text")
    latest = AheadKeys(server.conn, server.store)
    assert latest.active() == ["pgoutput:text"]
    ((name, used, chunks, size),) = latest.rows()
    assert (name, chunks, size) == ("pgoutput:text", 0, 0) and used.tzinfo is not None
    server.close()


def test_a_format_registered_mid_chunk_starts_with_the_next(
    tmp_path: Path, context: PluginContext
) -> None:
    spool = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for i in range(100):
        spool.insert("items", n=i)
    server = Server(spool.path, tmp_path / "state")
    server.ingest()  # a checkpoint: the first chunk is written
    for i in range(50):
        spool.insert("items", n=i)
    server.source.ingest()  # within the checkpoint interval: buffered
    assert server.store._count == 50
    AheadKeys(server.conn, server.store).use("test_decoding:100")
    for i in range(600):
        spool.insert("items", n=i)
    spool.close()
    server.ingest()
    db = server.store._conn
    chunks = [row[0] for row in db.execute("SELECT after_lsn FROM chunks ORDER BY after_lsn")]
    rendered = [row[0] for row in db.execute("SELECT after_lsn FROM ahead ORDER BY after_lsn")]
    assert rendered == chunks[2:]  # not the one written before, not the one half buffered
    server.forget_loaded()
    copied = session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True)
    assert copied == session_bytes(server, "test_decoding", {}, context, 0, use_ahead=False)
    assert server.store.ahead_loaded == len(rendered)
    server.close()


def test_a_format_asked_for_later_is_rendered_once_by_its_first_reader(
    tmp_path: Path, workload_spool: Path, context: PluginContext
) -> None:
    server = ahead_server(workload_spool, tmp_path / "state", [])  # nothing ahead at ingestion
    assert server.store._conn.execute("SELECT count(*) FROM ahead").fetchone()[0] == 0
    AheadKeys(server.conn, server.store).use("test_decoding:100")  # a consumer asks for it now
    server.forget_loaded()
    first = session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True)
    rendered = server.store.ahead_rendered
    stored = server.store._conn.execute("SELECT count(*) FROM ahead").fetchone()[0]
    assert rendered == stored > 0
    assert first == session_bytes(server, "test_decoding", {}, context, 0, use_ahead=False)
    server.forget_loaded()
    loaded = server.store.ahead_loaded
    assert session_bytes(server, "test_decoding", {}, context, 0, use_ahead=True) == first
    assert server.store.ahead_rendered == rendered  # the second reader copies
    assert server.store.ahead_loaded - loaded == stored
    # a session starting within a chunk renders what it reads of it, and does not store it
    AheadKeys(server.conn, server.store).use("test_decoding:110")
    server.forget_loaded()
    timestamps = {"include-timestamp": "1"}
    start = end_pos(300)
    part = session_bytes(server, "test_decoding", timestamps, context, start, use_ahead=True)
    assert part == session_bytes(server, "test_decoding", timestamps, context, start,
                                 use_ahead=False)  # fmt: skip
    whole = [after for (after,) in server.store._conn.execute("SELECT after_lsn FROM chunks")
             if end_pos(after + (1 << 63)) >= start]  # fmt: skip
    assert 0 < len(whole) < stored
    assert server.store.ahead_rendered == rendered + len(whole)  # not the one it started in
    rendered = server.store.ahead_rendered
    # a format nobody registered is rendered by its sessions, never stored
    other = {"include-xids": "0"}
    assert session_bytes(server, "test_decoding", other, context, 0, use_ahead=True)
    assert server.store.ahead_rendered == rendered
    server.close()
