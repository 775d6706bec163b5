"""The compiled ingestion core against the pure-Python reference: same values, same errors."""

import contextlib
import dataclasses
import datetime as dt
import gc
import json
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgshim import pgtypes, plugins, speedups
from pgshim.logical import transactions as transactions_module
from pgshim.logical.relations import DeclaredColumn, RelationRegistry
from pgshim.logical.transactions import (
    Column,
    TransactionBuilder,
    reference_value_texts,
    value_texts,
)
from pgshim.plugins import pgoutput, test_decoding
from pgshim.reddb import change as change_module
from pgshim.reddb import entity as entity_module
from pgshim.reddb.binary import varu
from pgshim.reddb.change import parse_change_record
from pgshim.reddb.entity import Entity, Field, decode_entity, encode_entity
from pgshim.reddb.errors import ChangeDecodeError
from pgshim.reddb.identity import IdentityMap
from pgshim.reddb.values import VALUE_TYPES, TypedValue
from pgshim.spool import frames as spool_frames
from pgshim.spool.generate import Workload, sample_value
from pgshim.state import open_state
from pgshim.walsender import ahead

GOLDEN = json.loads((Path(__file__).parent / "data" / "reddb-golden-vectors.json").read_text())
CODES = [t.code for t in VALUE_TYPES if t.code < 0x80]  # compressed ones: long values, below

pytestmark = pytest.mark.skipif(
    speedups.core is None,
    reason="the compiled ingestion core is not built (needs Cython and a C compiler)",
)


def outcome(decode, raw: bytes) -> tuple:
    try:
        return ("ok", decode(raw, lsn=77))
    except ChangeDecodeError as exc:
        return ("error", str(exc), exc.reason, exc.lsn, exc.position)


def reference(raw: bytes, lsn: int) -> Entity:
    """decode_entity with no fast path at all: the general decoder alone."""
    saved = entity_module._row_decoder
    entity_module._row_decoder = lambda _: None
    try:
        return decode_entity(raw, lsn=lsn)
    finally:
        entity_module._row_decoder = saved


def assert_same(raw: bytes) -> None:
    compiled = speedups.core.decode_row(raw)
    if compiled is not None:
        assert compiled == reference(raw, 77)
    assert outcome(decode_entity, raw) == outcome(reference, raw)


def test_decode_entity_uses_the_compiled_core() -> None:
    assert entity_module._row_decoder is speedups.core.decode_row


def test_golden_entities() -> None:
    for vector in GOLDEN["entities"]:
        raw = bytes.fromhex(vector["hex"])
        assert_same(raw)
        if vector["decoded"]["kind"]["tag"] == 0:
            assert speedups.core.decode_row(raw) is not None, vector["name"]


def test_workload_rows_are_all_read_by_the_core() -> None:
    records = Workload(seed=3).records(600)
    rows = [bytes.fromhex(r["entity_bytes_hex"]) for r in records if "entity_bytes_hex" in r]
    assert rows
    for raw in rows:
        decoded = speedups.core.decode_row(raw)
        assert decoded is not None
        assert decoded == reference(raw, 1)


def make_row(named: bool, values: list, ids: tuple[int, ...], tail: int) -> Entity:
    entity_id, row_id, logical_id, xmin, xmax, created = ids
    fields = [Field(f"c{i:03d}" if named else None, v) for i, v in enumerate(values)]
    return Entity(
        id=entity_id,
        kind="table_row",
        kind_fields={"table": "tåble", "row_id": row_id},
        data_kind="named_row" if named else "row",
        fields=fields,
        created_at=created,
        updated_at=created + 1,
        sequence_id=row_id,
        logical_id=None if tail == 0 else logical_id,
        xmin=xmin,
        xmax=xmax,
    )


U64 = st.integers(0, 2**64 - 1)
ROWS = st.builds(
    make_row,
    st.booleans(),
    st.lists(st.tuples(st.sampled_from(CODES), st.integers(0, 2**32)), max_size=140).map(
        lambda specs: [sample_value(code, random.Random(seed)) for code, seed in specs]
    ),
    st.tuples(U64, U64, U64, U64, U64, st.integers(0, 2**64 - 2)),
    st.integers(0, 1),
)


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_rows_of_every_value_type(row: Entity) -> None:
    raw = encode_entity(row)
    assert speedups.core.decode_row(raw) is not None
    assert_same(raw)
    assert_same(raw[: raw.rfind(b"\x00", 0, len(raw) - 2) + 1])  # without logical id / xmin


@settings(max_examples=300, deadline=None)
@given(ROWS, st.data())
def test_damaged_rows_fail_like_the_reference(row: Entity, data: st.DataObject) -> None:
    raw = bytearray(encode_entity(row))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw) + 2))
    damaged = bytes(raw[:cut]) + data.draw(st.binary(max_size=3))
    assert_same(damaged)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_same(raw)
    assert_same(b"\x05\x00\x01t\x01\x06" + raw)


def test_compressed_values() -> None:
    long_text = TypedValue(5, 25, "héllo " * 1000)
    long_blob = TypedValue(6, 17, bytes(range(256)) * 20)
    raw = encode_entity(make_row(True, [long_text, long_blob], (1, 2, 3, 4, 0, 5), 1))
    assert speedups.core.decode_row(raw) is not None
    assert_same(raw)


def test_multi_byte_varints_and_limits() -> None:
    big = make_row(False, [sample_value(2, random.Random(1))], (2**64 - 1,) * 5 + (2**63,), 1)
    raw = encode_entity(big)
    assert speedups.core.decode_row(raw) == reference(raw, 1)
    too_long = b"\xff" * 10 + b"\x01" + raw[10:]  # an entity id beyond 64 bits
    assert speedups.core.decode_row(too_long) is None
    assert outcome(decode_entity, too_long) == outcome(reference, too_long)


def test_what_the_core_leaves_to_the_reference() -> None:
    text = sample_value(5, random.Random(0))
    embedded = make_row(True, [text], (1, 2, 3, 4, 0, 5), 1)
    embedded.embeddings = [{"name": "e", "vector": [1.0, 2.0], "model": "m"}]
    node = Entity(
        1,
        "graph_node",
        {"label": text.value, "node_type": "n"},
        "node",
        [Field("label", text), Field("node_type", sample_value(5, random.Random(1)))],
    )
    for other in (embedded, node):
        raw = encode_entity(other)
        assert speedups.core.decode_row(raw) is None
        assert decode_entity(raw) == reference(raw, 1)


# -- rows placed into their relation's columns by the core (TransactionBuilder's fast path) -----


def builders(tmp_path: Path, declared: dict | None = None) -> tuple:
    """Two builders on separate state: the core's row placement on, and off (the reference)."""
    made = []
    for name in ("fast", "reference"):
        conn = open_state(tmp_path / name)
        relations = RelationRegistry(conn, declared=declared)
        builder = TransactionBuilder(IdentityMap(conn), relations)
        if name == "reference":
            builder._row_values = None
        made.append(builder)
    assert made[0]._row_values is speedups.core.row_values
    return tuple(made)


def built(builder: TransactionBuilder, records: list) -> list:
    """What each transaction carries, relations by value, and the identities learned."""
    out = []
    for record in records:
        tx = builder.build([record])
        out.append(
            (
                tx.errors,
                [
                    (
                        c.action,
                        c.relation.oid,
                        list(c.relation.columns),
                        c.relation.version,
                        c.new,
                        c.key,
                        c.pos,
                    )  # fmt: skip
                    for c in tx.changes
                ],
            )
        )
    builder.flush()
    identities = builder.identity._conn.execute("SELECT * FROM identity_map ORDER BY 1, 2")
    return [out, identities.fetchall(), builder.relations.mismatch_count]


def change_records(entities: list[tuple[str, Entity]], start: int = 1) -> list:
    return [
        parse_change_record(
            orjson.dumps(
                {
                    "lsn": lsn,
                    "operation": "insert",
                    "collection": collection,
                    "rid": entity.id,
                    "timestamp": 1_700_000_000_000,
                    "entity_bytes_hex": encode_entity(entity).hex(),
                }
            )  # fmt: skip
        )
        for lsn, (collection, entity) in enumerate(entities, start)
    ]


def test_builder_places_workload_rows_like_the_reference(tmp_path: Path) -> None:
    payloads = [orjson.dumps(r) for r in Workload(seed=5).records(3000)]
    records = [parse_change_record(p) for p in payloads]
    fast, ref = builders(tmp_path)
    assert built(fast, records) == built(ref, records)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["t1", "t2"]), ROWS), min_size=1, max_size=12))
def test_builder_places_rows_like_the_reference(rows: list, tmp_path_factory) -> None:
    # the same collection gets named and positional rows, of other types and fields each time:
    # columns are learned, values converted or refused, exactly as the reference does
    records = change_records(rows)
    fast, ref = builders(tmp_path_factory.mktemp("rows"))
    assert built(fast, records) == built(ref, records)


def test_builder_with_declared_columns_like_the_reference(tmp_path: Path) -> None:
    declared = {
        "t1": [
            DeclaredColumn("a", "text", "c000"),
            DeclaredColumn("b", "bigint", 1),
            DeclaredColumn("c001", "numeric"),  # a named field or the second position
            DeclaredColumn("again", "text", "c000"),  # one field feeding two columns
        ],
        "t2": [DeclaredColumn("x", "double precision", "c002")],
    }
    rng = random.Random(7)
    rows = []
    for index in range(300):
        codes = [5, 2, rng.choice([2, 4, 5, 26, 0]), rng.choice(CODES)]
        values = [sample_value(code, rng) for code in codes]
        entity = make_row(index % 3 != 0, values, (index + 1, index, index + 9, 1, 0, 5), index % 2)
        rows.append((rng.choice(["t1", "t2"]), entity))
    records = change_records(rows)
    fast, ref = builders(tmp_path, declared)
    assert built(fast, records) == built(ref, records)


# -- text output of values (value_texts) --------------------------------------------------------

TEXT_OIDS = [20, 21, 23, 26, 25, 1043, 19, 16, 701, 700, 1184, 1114, 1700, 17, 1042, 3802]


class _Str(str):
    pass


class _Int(int):
    pass


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.builds(_Int, st.integers(-5, 5)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e15, -1e15, 999999999999999.9, 1e-5, -0.0, 0.1, 1e16, 123456789012345.6]),
    st.text(max_size=8),
    st.builds(_Str, st.text(max_size=3)),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2))])),
    st.datetimes(),
    st.decimals(allow_nan=False, places=3),
    st.binary(max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TEXT_OIDS), VALUES), max_size=12), st.integers(0, 3))
def test_value_texts_like_the_reference(columns: list, extra: int) -> None:
    oids = [oid for oid, _ in columns]
    values = [value for _, value in columns]
    renderers = [pgtypes.text_renderer(oid) for oid in oids]

    def outcome(render, *args) -> tuple:
        try:
            return ("ok", render(*args))
        except Exception as exc:  # a value its column's renderer refuses: refused alike
            return ("error", type(exc))

    kinds = speedups.core.text_kinds(oids)
    for shown in (values, values[: max(0, len(values) - extra)]):  # fewer values than columns
        compiled = outcome(speedups.core.value_texts, kinds, renderers, shown)
        assert compiled == outcome(reference_value_texts, renderers, shown)


def test_value_texts_uses_the_core() -> None:
    columns = [Column("k", 20), Column("t", 1184)]
    when = dt.datetime(2024, 2, 29, 23, 59, 58, 120300, tzinfo=dt.UTC)
    assert value_texts(columns, [7, when]) == ["7", "2024-02-29 23:59:58.1203+00"]
    assert transactions_module._TEXT_PLANS[id(columns)][2] == speedups.core.text_kinds([20, 1184])


# -- ChangeRecord JSON --------------------------------------------------------------------------

JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(), st.text(max_size=6),
    st.sampled_from(["insert", "update", "delete", "refresh", "row", "00ff", "0g"]),
    st.lists(st.sampled_from(["", "52455231"]), max_size=2), st.dictionaries(st.text(max_size=2),
    st.integers(), max_size=2),
)  # fmt: skip
RECORD_KEYS = ["operation", "collection", "rid", "entity_id", "kind", "entity_kind", "lsn",
               "entity_bytes_hex", "metadata", "refresh_records_hex", "term", "timestamp",
               "range_id", "ownership_epoch"]  # fmt: skip


def parse_outcome(parse, payload: bytes, lsn: int | None) -> tuple:
    try:
        return ("ok", parse(payload, lsn, 5))
    except ChangeDecodeError as exc:
        return ("error", str(exc), exc.lsn)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "operation": st.sampled_from(["insert", "update", "delete"]),
            "collection": st.text(),
            "rid": st.integers(0, 2**64 - 1),
            "kind": st.sampled_from(["row", "kv"]),
            "entity_bytes_hex": st.binary(max_size=8).map(bytes.hex),
        },  # fmt: skip
    ),
    st.dictionaries(st.sampled_from(RECORD_KEYS), JSON_VALUES, max_size=4),
    st.lists(st.sampled_from(RECORD_KEYS), max_size=2),
    st.sampled_from([None, 7]),
)
def test_change_records_like_the_reference(
    plain: dict, changed: dict, dropped: list, lsn: int | None
) -> None:
    obj = {key: value for key, value in {**plain, **changed}.items() if key not in dropped}
    payload = json.dumps(obj).encode()  # integers beyond 64 bits too
    fast = speedups.core.change_record(payload, lsn, 5)
    reference = parse_outcome(change_module.reference_parse, payload, lsn)
    if fast is not None:
        assert ("ok", fast) == reference
    assert parse_outcome(parse_change_record, payload, lsn) == reference


def test_workload_records_are_all_parsed_by_the_core() -> None:
    assert change_module._compiled is speedups.core.change_record
    for record in Workload(seed=6).records(500):
        payload = orjson.dumps(record)
        if record["operation"] != "refresh":
            fast = speedups.core.change_record(payload, record["lsn"], 1)
            assert fast is not None
            assert fast == change_module.reference_parse(payload, record["lsn"], 1)


TEXTS = st.one_of(st.none(), st.sampled_from(["t", "f", "", "'", "a'b''c", "\\'", "0101"]),
                  st.text(max_size=12))  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(sorted(pgtypes.BY_OID)), TEXTS), max_size=10),
    st.integers(0, 3),
    st.booleans(),
)
def test_test_decoding_tuples_like_the_reference(
    columns: list, missing: int, skip_nulls: bool
) -> None:
    # every type's way of printing (as is, boolean, bit string, quoted), NULLs, missing values
    from pgshim.plugins import test_decoding

    cols = [Column(f"c{i}", oid) for i, (oid, _) in enumerate(columns)]
    texts = [text for _, text in columns][: max(len(columns) - missing, 0)]
    headers, kinds = test_decoding._column_plan(cols)
    expected = test_decoding.reference_render_tuple(headers, kinds, texts, skip_nulls=skip_nulls)
    assert speedups.core.test_decoding_tuple(headers, kinds, texts, skip_nulls) == expected
    assert test_decoding.render_tuple(cols, texts, skip_nulls=skip_nulls) == expected


def test_test_decoding_tuple_refuses_missing_literal_kinds() -> None:
    with pytest.raises(ValueError):
        speedups.core.test_decoding_tuple([" a[text]:", " b[text]:"], b"\x03", ["x", "y"], False)


# -- spool frames read by the core ----------------------------------------------------------------

FRAME_SPECS = st.lists(
    st.tuples(
        st.sampled_from(spool_frames.LAYOUTS),
        st.integers(0, 2**64 - 1),
        st.binary(max_size=80),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
    ),
    min_size=1,
    max_size=8,
)


def reference_scan(data: bytes, base_offset: int, monkeypatch: pytest.MonkeyPatch):
    with monkeypatch.context() as patch:
        patch.setattr(speedups, "core", None)
        return spool_frames.scan_frames(data, base_offset)


@settings(max_examples=300, deadline=None)
@given(FRAME_SPECS, st.data())
def test_frames_like_the_reference(specs: list, data: st.DataObject) -> None:
    raw = bytearray(
        b"".join(
            spool_frames.build_frame(
                layout, lsn, payload, timestamp_ms=ts, term=term, ownership_epoch=term // 3
            )  # fmt: skip
            for layout, lsn, payload, ts, term in specs
        )
    )
    # damage: a flipped byte, a cut tail, or nothing
    damage = data.draw(st.sampled_from(["none", "flip", "cut"]))
    if damage == "flip":
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif damage == "cut":
        del raw[data.draw(st.integers(1, len(raw))) :]
    base = data.draw(st.integers(0, 2**40))
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = reference_scan(bytes(raw), base, monkeypatch)
    assert spool_frames.scan_frames(bytes(raw), base) == expected


def test_plain_frames_are_read_by_the_core() -> None:
    frames: list = []
    raw = b"".join(
        spool_frames.build_frame(layout, lsn, b"{}", timestamp_ms=lsn, term=2)
        for lsn, layout in enumerate(["v3-41", "v2", "v3-41"], 1)
    )
    assert speedups.core.scan_fast(raw, 0, 100, frames) == len(raw)
    assert [(f.layout, f.lsn, f.offset) for f in frames] == [
        ("v3-41", 1, 100), ("v2", 2, 100 + 47), ("v3-41", 3, 100 + 47 + 31),
    ]  # fmt: skip
    # the other layouts are the reference's to read
    assert speedups.core.scan_fast(spool_frames.build_frame("v1", 4, b"{}") * 3, 0, 0, []) == 0


# -- a plain record's whole transaction -----------------------------------------------------------


def payload_builders(tmp_path: Path) -> tuple:
    """The core's one-call transactions on, and every compiled shortcut of the builder off."""
    fast, ref = builders(tmp_path)
    ref._plain = None
    assert fast._plain is speedups.core.plain_transaction
    return fast, ref


def built_payloads(builder: TransactionBuilder, payloads: list) -> list:
    out = [builder.build_payload(payload, lsn, 9) for lsn, payload in enumerate(payloads, 1)]
    builder.flush()
    identities = builder.identity._conn.execute("SELECT * FROM identity_map ORDER BY 1, 2")
    return [out, identities.fetchall()]


def test_workload_transactions_like_the_reference(tmp_path: Path) -> None:
    payloads = [orjson.dumps(r) for r in Workload(seed=8).records(3000)]
    fast, ref = payload_builders(tmp_path)
    assert built_payloads(fast, payloads) == built_payloads(ref, payloads)
    # and the core made them: every insert or update of a collection seen before
    seen: set = set()
    made = 0
    for lsn, payload in enumerate(payloads, 1):
        record = parse_change_record(payload, lsn)
        if record.operation in ("insert", "update") and record.collection in seen:
            made += speedups.core.plain_transaction(
                payload, lsn, fast.relations.fast_plan, lambda *_: None
            ) is not None  # fmt: skip
        seen.add(record.collection)
    assert made > 1000


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["t1", "t2"]), ROWS), min_size=1, max_size=8),
    timestamps=st.lists(
        st.one_of(
            st.integers(-(2**63), 2**64),
            st.sampled_from([-62135596800000, 253402300799999, 253402300800000, 0, -1]),
        ),
        min_size=1,
        max_size=8,
    ),  # fmt: skip
    operations=st.lists(st.sampled_from(["insert", "update", "delete"]), min_size=1, max_size=8),
)
def test_transactions_like_the_reference(
    rows: list, timestamps: list, operations: list, tmp_path_factory
) -> None:
    payloads = [
        json.dumps(  # integers beyond 64 bits too
            {
                "operation": operations[i % len(operations)], "collection": collection,
                "rid": entity.id, "kind": "row", "timestamp": timestamps[i % len(timestamps)],
                "entity_bytes_hex": encode_entity(entity).hex(),
            }
        ).encode()
        for i, (collection, entity) in enumerate(rows)
    ]  # fmt: skip
    fast, ref = payload_builders(tmp_path_factory.mktemp("tx"))
    assert built_payloads(fast, payloads) == built_payloads(ref, payloads)


def test_made_objects_hold_exactly_their_references(tmp_path: Path) -> None:
    # the core writes fields in place: each must own one reference, no more (a leak) and no
    # less (a crash once the object is freed)
    insert = next(r for r in Workload(seed=3).records(100) if r["operation"] == "insert")
    payload = orjson.dumps(insert)
    fast, _ = payload_builders(tmp_path)
    fast.build_payload(payload, 1)  # the relation is learned
    assert fast.build_payload(payload, 2) is not None  # its placement plan made
    relation = fast.relations.get(parse_change_record(payload, 2).collection)
    before = sys.getrefcount(relation), sys.getrefcount(payload)
    made = [fast.build_payload(payload, lsn) for lsn in range(3, 1003)]
    assert all(tx.records[0].raw is payload for tx in made)
    assert sys.getrefcount(relation) == before[0] + 1000
    del made
    gc.collect()
    assert (sys.getrefcount(relation), sys.getrefcount(payload)) == before
    raw = spool_frames.build_frame("v3-41", 1, b"{}") * 100
    frames: list = []
    assert speedups.core.scan_fast(raw, 0, 0, frames) == len(raw)
    layout = frames[0].layout
    del frames[1:]
    layout_refs = sys.getrefcount(layout)
    speedups.core.scan_fast(raw, 0, 0, frames)
    assert sys.getrefcount(layout) == layout_refs + 100
    del frames
    assert sys.getrefcount(layout) == layout_refs - 1


# -- test_decoding lines and their XLogData framing -----------------------------------------------


def test_test_decoding_lines_like_the_reference(tmp_path: Path) -> None:
    payloads = [orjson.dumps(r) for r in Workload(seed=9).records(2000)]
    fast, _ = payload_builders(tmp_path)
    transactions = [fast.build_payload(p, lsn) for lsn, p in enumerate(payloads, 1)]
    changes = [change for tx in transactions for change in tx.changes]
    assert {change.action for change in changes} >= {"I", "U", "D", "T"}
    updated = next(c for c in changes if c.action == "U")
    changes.append(dataclasses.replace(updated, key=list(updated.new), texts=None))  # old key
    changes.append(dataclasses.replace(updated, new=None, texts=None))
    expected = [(c.pos, test_decoding.render_change(c).encode()) for c in changes]
    for change in changes:
        change.texts = None  # the core computes them as the reference does
    body = speedups.core.test_decoding_body(
        changes, test_decoding._column_plan, test_decoding._table_prefix,
        test_decoding.render_change,
    )  # fmt: skip
    assert body == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=40)), max_size=6),
    st.binary(max_size=30),
)
def test_framing_like_the_reference(messages: list, tail: bytes) -> None:
    pieces: list = [b"before"]
    fast_pieces: list = [b"before"]
    expected = ahead.frame_messages(pieces, tail, messages)
    assert speedups.core.frame_messages(fast_pieces, tail, messages) == expected
    assert fast_pieces == pieces
    with pytest.raises(OverflowError):
        speedups.core.frame_messages([], b"", [(-1, b"")])
    with pytest.raises(TypeError):
        speedups.core.frame_messages([], b"", [(1, "text")])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=8), st.integers(0, 10))
def test_pgoutput_text_tuples_like_the_reference(texts: list, count: int) -> None:
    assert speedups.core.pgoutput_text_tuple(count, texts) == pgoutput.reference_text_tuple_data(
        count, texts
    )
    assert pgoutput.text_tuple_data(count, texts) == pgoutput.reference_text_tuple_data(
        count, texts
    )


def test_pgoutput_text_tuples_left_to_the_reference() -> None:
    assert speedups.core.pgoutput_text_tuple(40000, []) is None  # beyond int16: it raises
    assert speedups.core.pgoutput_text_tuple(1, [b"bytes"]) is None
    with pytest.raises(UnicodeEncodeError):  # as str.encode
        speedups.core.pgoutput_text_tuple(1, ["\ud800"])


# -- a whole transaction framed for output rendered ahead -----------------------------------------

AHEAD_KEYS = [f"test_decoding:{x}{t}{s}" for x in "01" for t in "01" for s in "01"]
AHEAD_KEYS += ["pgoutput:text", "pgoutput:binary"]


@contextlib.contextmanager
def pure_plugins() -> Iterator[None]:
    """The plugins and text output without the compiled core: the reference."""
    modules = (test_decoding, pgoutput, transactions_module)
    saved = [module._core for module in modules]
    transactions_module._TEXT_PLANS.clear()  # their kinds say what the core renders
    for module in modules:
        module._core = None
    try:
        yield
    finally:
        for module, core in zip(modules, saved, strict=True):
            module._core = core
        transactions_module._TEXT_PLANS.clear()


def frame_all(framer: ahead.ChunkFramer, transactions: list) -> tuple:
    try:
        for tx in transactions:
            framer.add(tx)
        return ("ok", framer.finish())
    except Exception as exc:  # refused alike
        return ("error", type(exc))


def framed_outcome(key: str, transactions: list, *, compiled: bool) -> tuple:
    """A chunk's output for ``key`` (or the error it stops at), framed with the compiled
    framing, or by the pure-Python plugin alone, and how many transactions the former took."""
    if not compiled:
        with pure_plugins():
            return frame_all(ahead.ChunkFramer(plugins.ahead_messages(key)), transactions), 0
    taken = 0
    framing = plugins.ahead_framing(key)

    def counted(pieces: list, tail: bytes, tx) -> bytes | None:
        nonlocal taken
        done = framing(pieces, tail, tx)
        taken += done is not None
        return done

    framer = ahead.ChunkFramer(plugins.ahead_messages(key), None if framing is None else counted)
    return frame_all(framer, transactions), taken


def fresh(transactions: list) -> list:
    """The transactions as decoding left them: no text output computed, nothing rendered."""
    out = []
    for tx in transactions:
        changes = [dataclasses.replace(change, texts=None) for change in tx.changes]
        out.append(dataclasses.replace(tx, changes=changes, encoded={}))
    return out


def test_ahead_framing_like_the_reference(tmp_path: Path) -> None:
    payloads = [orjson.dumps(r) for r in Workload(seed=11).records(1500)]
    fast, _ = payload_builders(tmp_path)
    made = [fast.build_payload(p, lsn) for lsn, p in enumerate(payloads, 1)]
    updated = next(tx for tx in made if tx.changes and tx.changes[0].action == "U")
    change = updated.changes[0]
    made += [
        dataclasses.replace(updated, changes=[dataclasses.replace(change, key=list(change.new))]),
        dataclasses.replace(updated, changes=[dataclasses.replace(change, new=None)]),
        dataclasses.replace(updated, changes=[change, change]),
        dataclasses.replace(updated, changes=[]),
    ]
    assert {c.action for tx in made for c in tx.changes} >= {"I", "U", "D", "T"}
    for key in AHEAD_KEYS:
        expected, _ = framed_outcome(key, fresh(made), compiled=False)
        got, taken = framed_outcome(key, fresh(made), compiled=True)
        assert got == expected, key
        assert expected[0] == "ok"
        if key == "pgoutput:binary" or key[-2] == "1":  # binary, include-timestamp: the plugin's
            assert plugins.ahead_framing(key) is None
        else:
            assert taken > 1000, key
        # what the sessions rendered already is what output rendered ahead copies
        rendered = fresh(made)
        for tx in rendered[::3]:
            if not tx.changes:
                continue
            if key.startswith("pgoutput"):
                shared = pgoutput.shared_transaction(tx, binary=key.endswith("binary"))
                shared.begin = b"B(the sessions')"
                tx.encoded[pgoutput.shared_key(key.endswith("binary"))] = shared
            else:
                plugin = test_decoding.TestDecodingPlugin.from_ahead_key(key)
                tx.encoded[plugin.cache_key] = [(tx.end_pos, b"(the sessions')")]
        reused = framed_outcome(key, rendered, compiled=False)[0]
        assert reused != expected
        assert framed_outcome(key, rendered, compiled=True)[0] == reused, key


FRAMED_TEXTS = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.sampled_from(["it's", "''", "é'ü", "\ud800", "a\x00b", "t", "f"]),
)
ROW_TEXTS = st.lists(FRAMED_TEXTS, max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["I", "U", "D", "T"]),
            st.lists(st.sampled_from([20, 25, 16, 1560, 701]), max_size=5),
            ROW_TEXTS,
            st.booleans(),
            st.integers(0, 2**64 + 1),
        ),
        max_size=4,
    ),
    when=st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-3))])),
    xid=st.one_of(st.integers(0, 2**32 + 1), st.sampled_from([0, 2**32 - 1])),
    oid=st.one_of(st.integers(0, 2**32 + 1), st.just(2**32 - 1)),
    positions=st.tuples(st.integers(0, 2**64), st.integers(0, 2**64)),
)
def test_framed_transactions_like_the_reference(
    rows: list, when: dt.datetime, xid: int, oid: int, positions: tuple
) -> None:
    changes = []
    for action, oids, texts, keyed, pos in rows:
        columns = [Column(f"c{i}", type_oid) for i, type_oid in enumerate(oids)]
        relation = transactions_module.Relation(oid, "public", "t'x", columns)
        new = [None] * len(columns)
        key = [None] * len(columns) if keyed and action in ("U", "D") else None
        change = transactions_module.RowChange(action, relation, new, key, pos, 5, texts=texts)
        changes.append(change)
    tx = transactions_module.Transaction(xid, 5, 5, positions[0], positions[1], positions[1], when,
                                         changes, [])  # fmt: skip
    for key in AHEAD_KEYS:
        rendered = fresh([tx])
        for change, (_, _, texts, _, _) in zip(rendered[0].changes, rows, strict=True):
            change.texts = texts  # the values' text output, as given
        expected, _ = framed_outcome(key, rendered, compiled=False)
        for change, (_, _, texts, _, _) in zip(rendered[0].changes, rows, strict=True):
            change.texts = texts
        assert framed_outcome(key, rendered, compiled=True)[0] == expected, key


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_pgoutput_commit_times_like_the_reference(when: dt.datetime) -> None:
    tx = transactions_module.Transaction(7, 1, 1, 256, 512, 768, when, [], [])
    relation = transactions_module.Relation(16385, "public", "t", [Column("k", 20)])
    tx.changes.append(transactions_module.RowChange("I", relation, [1], None, 300, 1))
    pieces: list = []
    speedups.core.pgoutput_text_frame(pieces, b"", tx)
    begin = pieces[1][:-22]  # the Begin payload ends where the Insert's framing starts
    assert begin == pgoutput.begin_message(tx, pgoutput.pg_timestamp(tx))


def _row_holding(value: bytes) -> bytes:
    """A valid row with ``value`` (a value's encoded bytes, type byte first) as its only field."""
    marker = "MARKER-MARKER"
    raw = encode_entity(make_row(True, [TypedValue(5, 25, marker)], (1, 2, 3, 4, 0, 5), 1))
    encoded = b"\x05" + varu(len(marker)) + marker.encode()
    assert raw.count(encoded) == 1
    return raw.replace(encoded, value)


def test_network_json_decimal_and_array_values_read_by_the_core() -> None:
    nested = b"\x00"  # a Null in 20 arrays, one in the other
    for _ in range(20):
        nested = b"\x1c\x01" + nested
    taken = [
        b"\x09\x04" + bytes([10, 0, 0, 1]),
        b"\x09\x06" + bytes(range(16)),
        b"\x09\x07" + bytes(range(16, 32)),  # any version byte but 4 is 16 bytes
        b"\x1f" + bytes(range(255, 239, -1)),
        b"\x17" + struct.pack("<I", 0xC0A80001) + b"\x18",
        b"\x17" + struct.pack("<I", 0xC0A80001) + b"\x20",
        b"\x20" + struct.pack("<II", 0x0A000001, 0xFFFF0000),
        b"\x0c" + varu(9) + b'{"a":[1]}',
        b"\x34" + varu(7) + b"-12.500",
        b"\x1c\x03" + b"\x05\x01a" + b"\x1c\x00" + b"\x02" + struct.pack("<q", -5),
        nested,
        b"\x1c\x02" + b"\x09\x04\x01\x02\x03\x04" + b"\x34\x011",
    ]
    for value in taken:
        raw = _row_holding(value)
        assert speedups.core.decode_row(raw) is not None, value
        assert_same(raw)
    many = encode_entity(make_row(True, [sample_value(28, random.Random(n)) for n in range(40)],
                                  (1, 2, 3, 4, 0, 5), 1))  # fmt: skip
    assert speedups.core.decode_row(many) is not None  # arrays side by side are not deep
    assert_same(many)


def test_network_json_decimal_and_array_values_the_reference_must_judge() -> None:
    deep = b"\x00"
    for _ in range(40):
        deep = b"\x1c\x01" + deep
    left = [
        b"\x0c" + varu(3) + b"{x}",  # not JSON
        b"\x34" + varu(3) + b"NaN",
        b"\x34" + varu(3) + b"abc",
        b"\x17" + struct.pack("<I", 1) + b"\x21",  # prefix 33
        b"\x20" + struct.pack("<II", 1, 0xFF00FF00),  # a mask with a hole
        b"\x09\x04\x01\x02",  # truncated
        b"\x09",
        b"\x1f" + bytes(15),
        b"\x17" + bytes(4),
        b"\x1c\x02\x00",  # one item of two
        b"\x1c\x01\x63",  # an item of no known type
        deep,  # read by the reference, past the core's depth
    ]
    for value in left:
        raw = _row_holding(value)
        assert speedups.core.decode_row(raw) is None, value
        assert_same(raw)


def test_hostile_nesting_is_left_to_the_reference_without_deep_recursion_in_the_core() -> None:
    # 200,000 levels: C recursion that deep would overflow the core's stack
    document = b"[" * 200_000 + b"]" * 200_000
    for value in (b"\x1c\x01" * 200_000 + b"\x00", b"\x0c" + varu(len(document)) + document):
        raw = _row_holding(value)
        assert speedups.core.decode_row(raw) is None
        with pytest.raises(RecursionError):  # ChangeSource.decode reports it for the record
            decode_entity(raw)
