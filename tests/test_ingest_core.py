"""The compiled ingestion core against the pure-Python reference: same values, same errors."""

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgshim.reddb import entity as entity_module
from pgshim.reddb import speedups
from pgshim.reddb.entity import Entity, Field, decode_entity, encode_entity
from pgshim.reddb.errors import ChangeDecodeError
from pgshim.reddb.values import VALUE_TYPES, TypedValue
from pgshim.spool.generate import Workload, sample_value

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
