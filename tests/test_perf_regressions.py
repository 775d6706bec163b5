"""Performance properties checked by counting work, not by timing it.

* every session streaming with the same plugin and options shares one decode and one render of
  each change; a session with other options renders its own once;
* tailing the spool reads each new byte once (O(new bytes) per poll, never the whole file);
* ingestion computes no text output nobody asked for; a slot created at the oldest change
  waits for no decoding;
* what the server keeps by the thousand for seconds (decoded transactions, their output, the
  released records' versions) is out of the cyclic collector's sight, and still freed.
"""

from __future__ import annotations

import gc
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgshim.logical import source as source_module
from pgshim.logical.checkpoint import Checkpoint, IngestCheckpoint
from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore
from pgshim.logical.publications import ALL_ACTIONS, Publication, PublicationFilter
from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.plugins import ahead_messages, pgoutput, test_decoding
from pgshim.plugins.base import PluginContext
from pgshim.reddb import entity as entity_module
from pgshim.reddb.change import ChangeDecodeError
from pgshim.reddb.entity import Entity, Field, decode_entity, encode_entity
from pgshim.reddb.identity import IdentityMap
from pgshim.speedups import core, untrack_transaction
from pgshim.spool import follower as follower_module
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.generate import sample_value, write_workload
from pgshim.state import open_state
from pgshim.walsender.ahead import ChunkFramer
from pgshim.walsender.stream import StreamState
from pgshim.wire import messages as wire_messages


class Counter:
    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.wrapped(*args, **kwargs)


def make_source(tmp_path: Path, records: int) -> tuple[ChangeSource, Counter]:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), records, seed=3, fsync=False)
    conn = open_state(tmp_path / "state")
    decode = Counter(decode_entity)
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn), decode=decode)
    source = ChangeSource(SpoolFollower(spool), builder, ring_size=records + 1)
    return source, decode


def stream_all(source: ChangeSource, state: StreamState) -> bytes:
    out: list = []
    state.encode(source.read(state.sent, 10**9), out)
    # the send time in each XLogData header differs between sessions: compare the payloads
    return bytes(out[0][:1]) + b"".join(
        payload for tx in source.read(0, 10**9) for _, payload in state.plugin.encode(tx)
    )


def test_sessions_with_the_same_options_decode_and_render_each_change_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, decode = make_source(tmp_path, 300)
    assert source.ingest() > 0
    transactions = source.read(0, 10**9)
    changes = sum(len(tx.changes) for tx in transactions)
    assert changes > 0
    decoded_once = decode.calls
    render = Counter(test_decoding.TestDecodingPlugin.render)  # a transaction's changes
    monkeypatch.setattr(test_decoding.TestDecodingPlugin, "render", lambda *a: render(*a))
    ctx = PluginContext()

    sessions = [StreamState(test_decoding.TestDecodingPlugin({}, ctx), 0) for _ in range(4)]
    outputs = {stream_all(source, state) for state in sessions}
    assert len(outputs) == 1
    assert render.calls == len(transactions)
    assert decode.calls == decoded_once

    other = StreamState(test_decoding.TestDecodingPlugin({"include-xids": "0"}, ctx), 0)
    assert stream_all(source, other) not in outputs
    assert render.calls == 2 * changes
    assert all(s.changes_sent == changes + 2 * len(transactions) for s in [*sessions, other])


def test_sessions_with_the_same_options_share_the_framed_xlogdata(tmp_path: Path) -> None:
    source, _ = make_source(tmp_path, 200)
    source.ingest()
    transactions = source.read(0, 10**9)
    xlog = Counter(wire_messages.xlog_data)
    ctx = PluginContext()
    sessions = [StreamState(test_decoding.TestDecodingPlugin({}, ctx), 0) for _ in range(5)]
    outputs = []
    original = wire_messages.xlog_data
    wire_messages.xlog_data = xlog
    try:
        for state in sessions:
            out: list = []
            state.encode(transactions, out)
            outputs.append(b"".join(out))
    finally:
        wire_messages.xlog_data = original
    messages = sessions[0].changes_sent
    assert messages > len(transactions)
    assert xlog.calls == messages  # framed for the first session only
    assert len(set(outputs)) == 1  # the others send the very same bytes


class _AllTables:
    everything = Publication("all", True, frozenset(ALL_ACTIONS), ())

    def list(self) -> list[Publication]:
        return [self.everything]

    def resolve(self, names: list[str]) -> PublicationFilter:
        return PublicationFilter((self.everything,))


def test_pgoutput_sessions_share_the_encoded_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = make_source(tmp_path, 200)
    source.ingest()
    transactions = source.read(0, 10**9)
    changes = sum(len(tx.changes) for tx in transactions)
    relations = len({c.relation.oid for tx in transactions for c in tx.changes})
    change_message = Counter(pgoutput.change_message)
    relation_message = Counter(pgoutput.relation_message)
    monkeypatch.setattr(pgoutput, "change_message", change_message)
    monkeypatch.setattr(pgoutput, "relation_message", relation_message)
    ctx = PluginContext(publications=_AllTables())  # type: ignore[arg-type]
    options = {"proto_version": "1", "publication_names": "all"}
    outputs = {
        stream_all(source, StreamState(pgoutput.PgOutputPlugin(options, ctx), 0)) for _ in range(3)
    }
    assert len(outputs) == 1
    assert changes > 0
    assert change_message.calls == changes
    # Relation messages are per session: each session announces each table once
    assert 0 < relation_message.calls <= 3 * relations


class CountedReads:
    """The bytes the spool follower reads (``os.pread``), from when it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        real_pread = os.pread

        def counting_pread(fd: int, size: int, offset: int) -> bytes:
            data = real_pread(fd, size, offset)
            self.bytes += len(data)
            return data

        monkeypatch.setattr(follower_module.os, "pread", counting_pread)


def test_tailing_reads_each_new_byte_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    reads = CountedReads(monkeypatch)
    write_workload(str(spool), 500, seed=1, fsync=False)
    follower = SpoolFollower(spool, chunk_size=4096)
    first = follower.poll()
    assert reads.bytes == spool.stat().st_size
    for round_ in range(5):
        before_size, before_read = spool.stat().st_size, reads.bytes
        write_workload(
            str(spool), 40, seed=10 + round_, fsync=False, start_lsn=10_000 * (round_ + 1)
        )
        new = follower.poll()
        assert len(new) == 40
        assert reads.bytes - before_read == spool.stat().st_size - before_size
    assert follower.poll() == []
    assert len(first) == 500


def test_a_catch_up_read_of_a_chunk_reads_about_that_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a catch-up read stops after the chunk whose output is missing: reading a megabyte to
    # take 256 records was most of what it cost
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 6000, seed=2, fsync=False)
    follower = SpoolFollower(spool)
    follower.poll()
    reads = CountedReads(monkeypatch)
    for after in (0, 1000, 4000):
        reads.bytes = 0
        frames = []
        for frame in follower.iter_from(after):
            frames.append(frame)
            if len(frames) == 256:
                break
        taken = frames[-1].offset + frames[-1].size - frames[0].offset
        assert spool.stat().st_size > 8 * taken
        assert reads.bytes <= 4 * max(taken, follower_module.FIRST_READ_BYTES)

_ROW_CODES = (0, 1, 2, 4, 5, 29, 33, 43, 3, 7, 13, 28)  # the fast path's types and a few others


def _general_decode(raw: bytes) -> Entity | ChangeDecodeError:
    try:
        return entity_module._decode_exact(raw)
    except ChangeDecodeError as exc:
        return exc


def _decode(raw: bytes) -> Entity | ChangeDecodeError:
    try:
        return decode_entity(raw)
    except ChangeDecodeError as exc:
        return exc


def _same(fast: Entity | ChangeDecodeError, general: Entity | ChangeDecodeError) -> bool:
    if isinstance(general, ChangeDecodeError):
        return isinstance(fast, ChangeDecodeError) and str(fast) == str(general)
    return repr(fast) == repr(general)  # repr: a NaN float equals itself, -0.0 differs from 0.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_ROW_CODES), st.integers(0, 2**32)), max_size=10),
    st.booleans(),
    st.integers(0, 2**64 - 1),
    st.data(),
)
def test_fast_row_decoder_agrees_with_the_general_decoder(
    specs: list, named: bool, entity_id: int, data: st.DataObject
) -> None:
    values = [sample_value(code, random.Random(seed)) for code, seed in specs]
    fields = [Field(f"c{i:02d}" if named else None, v) for i, v in enumerate(values)]
    entity = Entity(
        id=entity_id,
        kind="table_row",
        kind_fields={"table": "bench", "row_id": entity_id // 3},
        data_kind="named_row" if named else "row",
        fields=fields,
        created_at=entity_id % 5000,
        updated_at=entity_id % 7000,
        logical_id=entity_id // 7 if entity_id % 2 else None,
        xmin=entity_id % 300,
        xmax=0,
    )
    raw = encode_entity(entity)
    assert _same(_decode(raw), _general_decode(raw))
    # damaged bytes: the same error (reason and byte position) or the same entity
    cut = data.draw(st.integers(0, len(raw)))
    assert _same(_decode(raw[:cut]), _general_decode(raw[:cut]))
    where = data.draw(st.integers(0, len(raw) - 1))
    flipped = raw[:where] + bytes([data.draw(st.integers(0, 255))]) + raw[where + 1 :]
    assert _same(_decode(flipped), _general_decode(flipped))
    assert _same(_decode(raw + b"\x00"), _general_decode(raw + b"\x00"))


def _history_source(tmp_path: Path, name: str) -> tuple[ChangeSource, Counter]:
    conn = open_state(tmp_path / name)
    decode = Counter(decode_entity)
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn), decode=decode)
    # a ring far smaller than the spool and a cache smaller than it too: sessions read history
    source = ChangeSource(
        SpoolFollower(tmp_path / "data.rdb.logical.wal"),
        builder,
        ring_size=16,
        history_cache_size=64,
        reorder_grace=0.0,
    )
    source.ingest()
    assert not source.covers(0)
    decode.calls = 0
    return source, decode


def test_catch_up_sessions_share_one_decode_of_each_history_record(tmp_path: Path) -> None:
    write_workload(str(tmp_path / "data.rdb.logical.wal"), 400, seed=5, fsync=False)
    alone, alone_decode = _history_source(tmp_path, "alone")
    assert len(list(alone.history(0))) == alone.transactions
    one_session = alone_decode.calls
    assert one_session > 300

    source, decode = _history_source(tmp_path, "shared")
    sessions = [source.history(0) for _ in range(4)]
    streams: list[list] = [[] for _ in sessions]
    finished = [False] * len(sessions)
    # interleaved like sessions of one event loop, at slightly different speeds
    while not all(finished):
        for index, session in enumerate(sessions):
            for _ in range(25 + index):
                tx = next(session, None)
                if tx is None:
                    finished[index] = True
                    break
                streams[index].append(tx)
    assert all(len(s) == source.transactions for s in streams)
    assert decode.calls == one_session
    # the same transaction objects, so the plugin output cached on them is shared as well
    assert all(a is b for a, b in zip(streams[0], streams[3], strict=True))


def test_restart_after_a_checkpoint_decodes_only_the_records_after_it(tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 300, seed=7, fsync=False)

    def start() -> tuple[ChangeSource, Counter]:
        conn = open_state(tmp_path / "state")
        decode = Counter(decode_entity)
        builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn), decode=decode)
        source = ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0)
        source.resume(IngestCheckpoint(conn))
        return source, decode

    first, first_decode = start()
    assert first.ingest() > 0
    full_end = first.end_pos
    first.save_checkpoint()
    assert first_decode.calls > 0

    again, again_decode = start()
    assert again.end_pos == full_end
    assert again.ingest() == 0
    assert again_decode.calls == 0
    assert again.covers(full_end) and not again.covers(0)
    history = [tx.end_pos for tx in again.history(0)]
    assert history == [tx.end_pos for tx in first.read(0, 10**9)]

    write_workload(str(spool), 20, seed=8, fsync=False, start_lsn=100_000)
    third, third_decode = start()
    assert third.ingest() == 20
    assert third_decode.calls == sum(
        1 for tx in third.read(0, 10**9) for r in tx.records if r.entity_bytes is not None
    )


def test_a_checkpoint_past_the_end_of_a_replaced_spool_is_ignored(tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 50, seed=9, fsync=False)
    conn = open_state(tmp_path / "state")
    store = IngestCheckpoint(conn)
    store.save(Checkpoint(10**9, None, 0))
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    source = ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0)
    source.resume(store)
    assert source.ingest() == 50
    assert store.load() is not None and store.load().lsn < 10**9  # type: ignore[union-attr]


def test_background_ingestion_yields_in_bounded_steps(tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 1200, seed=11, fsync=False)
    conn = open_state(tmp_path / "state")
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    source = ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0)
    steps = []
    while released := source.ingest(budget=100):
        steps.append(released)
        assert source.read(source.end_pos, 1) == []
    assert max(steps) == 100 and len(steps) >= 12
    assert source.transactions == sum(steps)


def test_the_server_listens_after_a_bounded_part_of_a_large_spool(tmp_path: Path) -> None:
    # a large spool goes on in the background: the first consumers arrive (and their formats
    # are rendered ahead) sooner; a small one is fully known before the server listens
    import asyncio

    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 1500, seed=12, fsync=False)
    conn = open_state(tmp_path / "state")
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    source = ChangeSource(SpoolFollower(spool), builder)
    asyncio.run(source.catch_up(seconds=600, records=600))
    assert 600 <= source.transactions < 600 + source_module.CATCH_UP_BUDGET
    asyncio.run(source.catch_up(seconds=600))
    assert source.transactions > 1400 and not len(source._reorder)  # the rest, holes waited out

def test_reading_a_long_spool_keeps_what_it_learned_bounded_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 600, seed=13, fsync=False)
    monkeypatch.setattr(source_module, "FLUSH_EVERY", 50)
    monkeypatch.setattr(source_module, "INGEST_CHUNK_BYTES", 4096)
    conn = open_state(tmp_path / "state")
    identity = IdentityMap(conn)
    most_pending = 0
    real_learn = identity.learn

    def learn(collection: str, physical_id: int, logical_id: int) -> None:
        nonlocal most_pending
        real_learn(collection, physical_id, logical_id)
        most_pending = max(most_pending, identity.pending)

    identity.learn = learn  # type: ignore[method-assign]
    builder = TransactionBuilder(identity, RelationRegistry(conn))
    source = ChangeSource(SpoolFollower(spool), builder, ring_size=16, reorder_grace=0.0)
    assert source.ingest() > 500
    # flushed every 50 released records (a record may teach several mappings)
    assert 0 < most_pending <= 50 * 4
    assert identity.pending == 0
    # catch-up reads decode the records again, and learn them again: flushed the same way
    most_pending = 0
    assert len(list(source.history(0))) == source.transactions
    assert 0 < most_pending <= 50 * 4


def test_ingestion_renders_no_text_nobody_asked_for(tmp_path: Path) -> None:
    # the decoded store keeps the values; their text output is computed by the first session or
    # format rendered ahead that needs it, never for nobody
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 400, seed=4, fsync=False)
    conn = open_state(tmp_path / "state")
    relations = RelationRegistry(conn)
    store = DecodedStore(tmp_path / "state" / STORE_FILE_NAME, relations)
    source = ChangeSource(
        SpoolFollower(spool), TransactionBuilder(IdentityMap(conn), relations), store=store
    )
    assert source.ingest(now=0.0) + source.ingest(now=86400.0) > 300
    changes = [change for tx in source.ring for change in tx.changes]
    assert any(change.new for change in changes)
    assert all(change.texts is None for change in changes)
    assert all(not tx.encoded for tx in source.ring)


def test_a_slot_at_the_oldest_change_is_created_without_decoding(tmp_path: Path) -> None:
    from pgshim.app import Application
    from pgshim.config import Config

    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 300, seed=5, fsync=False)
    config = Config(spool=str(spool), state_dir=str(tmp_path / "state"))
    app = Application(config)
    try:
        slot = app.create_slot("old", "test_decoding", temporary=False, two_phase=False, pid=1,
                               from_oldest=True)  # fmt: skip
        assert (slot.confirmed_flush, app.follower.status.records) == (0, 0)  # nothing read
        # a slot at the end needs the whole spool known first, as PostgreSQL's at the WAL's end
        # (the workload leaves holes in its LSNs: what is above one waits out its grace first)
        app.source.ingest()
        held = app.source.transactions
        time.sleep(0.2)
        slot = app.create_slot("new", "test_decoding", temporary=False, two_phase=False, pid=1)
        assert app.source.transactions > max(250, held)
        assert slot.confirmed_flush == app.source.end_pos > 0
    finally:
        app.conn.close()


@pytest.mark.parametrize("key", ["test_decoding:100", "pgoutput:text"])
def test_live_changes_are_rendered_once_for_sessions_and_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # the server sends new changes first (the sessions render them), then stores them with
    # their output rendered ahead: that output is the sessions', not rendered again
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 300, seed=6, fsync=False)
    conn = open_state(tmp_path / "state")
    relations = RelationRegistry(conn)
    store = DecodedStore(tmp_path / "state" / STORE_FILE_NAME, relations)
    store.keep_ahead({key: ChunkFramer(ahead_messages(key))})
    source = ChangeSource(
        SpoolFollower(spool), TransactionBuilder(IdentityMap(conn), relations), store=store
    )
    # what renders a transaction's changes (test_decoding), or one change (pgoutput)
    per_transaction = key.startswith("test")
    counted = Counter(test_decoding.TestDecodingPlugin.render if per_transaction else
                      pgoutput.change_message)  # fmt: skip
    if per_transaction:
        monkeypatch.setattr(test_decoding.TestDecodingPlugin, "render", lambda *a: counted(*a))
        plugin = test_decoding.TestDecodingPlugin({}, PluginContext())
    else:
        monkeypatch.setattr(pgoutput, "change_message", counted)
        plugin = pgoutput.PgOutputPlugin(
            {"proto_version": "1", "publication_names": "p"}, PluginContext()
        )
        plugin.encode = lambda tx: pgoutput.cached(  # every change published: the shared part
            tx, plugin.cache_key, lambda: pgoutput.shared_transaction(tx, binary=False)
        )
    released = source.ingest(now=0.0, store=False) + source.ingest(now=86400.0, store=False)
    assert released > 250
    changes = 0
    for tx in source.read(0, 10**9):
        plugin.encode(tx)
        changes += 1 if per_transaction else len(tx.changes)
    assert counted.calls == changes > 0
    source.store_released()
    store.flush()
    assert store.ahead_rendered == 0 and counted.calls == changes


needs_core = pytest.mark.skipif(core is None, reason="the compiled core is not built")


@needs_core
@pytest.mark.parametrize("key", ["test_decoding:100", "pgoutput:text", "pgoutput:binary"])
def test_what_streaming_keeps_is_not_walked_by_the_collector(tmp_path: Path, key: str) -> None:
    # each young-generation collection walks every tracked object that arrived since the last
    # one: at 10k records/s what the ring keeps made those pauses tens of milliseconds
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 300, seed=7, fsync=False)
    conn = open_state(tmp_path / "state")
    source = ChangeSource(
        SpoolFollower(spool), TransactionBuilder(IdentityMap(conn), RelationRegistry(conn))
    )
    assert source.ingest(now=0.0) + source.ingest(now=86400.0) > 250
    render = ahead_messages(key)
    if key.startswith("test"):
        plugin = test_decoding.TestDecodingPlugin({}, PluginContext())
        encode = plugin.encode
    else:
        binary = key.endswith("binary")
        encode = lambda tx: pgoutput.cached(  # noqa: E731 - what a session publishing it all shares
            tx, pgoutput.shared_key(binary), lambda: pgoutput.shared_transaction(tx, binary=binary)
        )
    kept = []
    for tx in source.ring:
        output = encode(tx)
        assert render(tx)  # rendered ahead from what the session keeps
        kept += [tx, tx.changes, tx.records, tx.errors, tx.encoded, output]
        for change in tx.changes:
            kept += [change, change.key, change.new, change.new_texts()]
        kept += tx.records
        kept += output if isinstance(output, list) else [output.changes, *output.changes]
    kept = [obj for obj in kept if obj is not None]
    assert len(kept) > 2000
    assert not [obj for obj in kept if gc.is_tracked(obj)]
    versions = source._versions._versions.values()  # packed in integers: nothing to walk
    assert len(versions) > 250 and not any(gc.is_tracked(v) for v in versions)


@needs_core
def test_an_untracked_transaction_is_still_freed() -> None:
    import weakref

    from pgshim.logical.transactions import Relation, RowChange, Transaction, commit_time_of

    class Value:
        pass

    value = Value()
    freed = weakref.ref(value)
    relation = Relation(16384, "public", "t", [])
    change = RowChange("I", relation, [value], None, 1, 1)
    tx = Transaction(1, 1, 1, 0, 0, 0, commit_time_of(0), [change], [])
    untrack_transaction(tx)
    assert not gc.is_tracked(tx) and not gc.is_tracked(change)
    del value, change, tx
    assert freed() is None  # reference counting frees the whole tree
