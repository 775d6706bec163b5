import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.reddb.binary import read_varu64, varu
from pgshim.reddb.entity import Entity, Field, decode_entity, encode_entity
from pgshim.reddb.errors import ChangeDecodeError
from pgshim.reddb.values import VALUE_TYPES, TypedValue
from pgshim.spool.generate import sample_value

GOLDEN = json.loads((Path(__file__).parent / "data" / "reddb-golden-vectors.json").read_text())
CODES = [t.code for t in VALUE_TYPES if t.code < 0x80]


def test_golden_named_row() -> None:
    vector = GOLDEN["entities"][0]
    raw = bytes.fromhex(vector["hex"])
    entity = decode_entity(raw)
    assert (entity.id, entity.kind, entity.data_kind) == (5, "table_row", "named_row")
    assert entity.kind_fields == {"table": "users", "row_id": 1}
    assert [(f.name, f.value.type_code, f.value.value) for f in entity.fields] == [
        ("id", 2, 1),
        ("name", 5, "alice"),
    ]
    assert (entity.created_at, entity.updated_at, entity.sequence_id) == (1700000000,) * 2 + (0,)
    assert (entity.logical_id, entity.xmin, entity.xmax, entity.stable_id) == (5, 3, 0, 5)
    assert encode_entity(entity) == raw


def test_golden_positional_row() -> None:
    vector = GOLDEN["entities"][1]
    raw = bytes.fromhex(vector["hex"])
    entity = decode_entity(raw)
    assert entity.data_kind == "row"
    assert all(f.name is None for f in entity.fields)
    expected = vector["decoded"]["data"]["columns"]
    assert [f.value.type_code for f in entity.fields] == [c["type"] for c in expected]
    assert [str(f.value.value) for f in entity.fields] == [
        "2",
        "bob",
        "True",
        "None",
        "1.5",
        "123.45",
    ]
    assert entity.fields[5].value.native == ("USD", 2, 12345)
    assert (entity.logical_id, entity.xmin) == (6, 4)
    assert encode_entity(entity) == raw


def test_golden_leb128() -> None:
    for item in GOLDEN["leb128_varu"]:
        assert varu(item["value"]).hex() == item["hex"]
        assert read_varu64(bytes.fromhex(item["hex"]), 0) == (item["value"], len(item["hex"]) // 2)


def row(data_kind: str, fields: list[Field], **extra: object) -> Entity:
    return Entity(
        id=9,
        kind="table_row",
        kind_fields={"table": "t", "row_id": 2},
        data_kind=data_kind,
        fields=fields,
        created_at=1,
        updated_at=2,
        logical_id=3,
        xmin=4,
        xmax=0,
        **extra,  # type: ignore[arg-type]
    )


@given(st.lists(st.tuples(st.sampled_from(CODES), st.integers(0, 2**32)), max_size=12))
def test_rows_of_every_value_type_round_trip(specs: list) -> None:
    values = [sample_value(code, random.Random(seed)) for code, seed in specs]
    positional = row("row", [Field(None, v) for v in values])
    named = row("named_row", [Field(f"c{i:02d}", v) for i, v in enumerate(values)])
    for entity in (positional, named):
        raw = encode_entity(entity)
        decoded = decode_entity(raw)
        assert [f.name for f in decoded.fields] == [f.name for f in entity.fields]
        assert [f.value.value for f in decoded.fields] == [f.value.value for f in entity.fields]
        assert encode_entity(decoded) == raw


def text(value: str) -> TypedValue:
    return TypedValue(5, 25, value)


def synthesized(entity: Entity) -> dict[str, object]:
    return {f.name: f.value.value for f in entity.fields}


def test_graph_node_and_edge() -> None:
    node = Entity(
        1,
        "graph_node",
        {"label": "alice", "node_type": "person"},
        "node",
        [
            Field("label", text("alice")),
            Field("node_type", text("person")),
            Field("age", TypedValue(2, 20, 30)),
        ],
        embeddings=[{"name": "e", "vector": [1.0, 2.0], "model": "m"}],
        cross_refs=[
            {
                "source": 1,
                "target": 2,
                "ref_type": 9,
                "target_collection": "docs",
                "weight": 0.5,
                "created_at": 7,
            }
        ],
    )
    decoded = decode_entity(encode_entity(node))
    assert synthesized(decoded) == {"label": "alice", "node_type": "person", "age": 30}
    assert decoded.embeddings == node.embeddings and decoded.cross_refs == node.cross_refs
    assert decoded.logical_id is None and decoded.stable_id == 1
    edge = Entity(
        2,
        "graph_edge",
        {"label": "knows", "from_node": "a", "to_node": "b", "weight": 3},
        "edge",
        [
            Field("label", text("knows")),
            Field("from_node", text("a")),
            Field("to_node", text("b")),
            Field("weight", TypedValue(4, 701, 0.25)),
            Field("since", TypedValue(2, 20, 2020)),
        ],
    )
    decoded = decode_entity(encode_entity(edge))
    assert synthesized(decoded) == {
        "label": "knows",
        "from_node": "a",
        "to_node": "b",
        "weight": 0.25,
        "since": 2020,
    }
    assert decoded.kind_fields["weight"] == 3


def test_vector_and_queue_message() -> None:
    vector = Entity(
        3,
        "vector",
        {"collection": "docs"},
        "vector",
        [Field("vector", TypedValue(11, 1021, [0.5, -1.0])), Field("content", text("hello"))],
    )
    assert synthesized(decode_entity(encode_entity(vector))) == {
        "vector": [0.5, -1.0],
        "content": "hello",
    }
    queue = Entity(
        4,
        "queue_message",
        {"queue": "jobs", "position": 12},
        "queue",
        [
            Field("payload", text("job")),
            Field("enqueued_at", TypedValue(7, 1184, None, 1_700_000_000_123_456_789)),
            Field("attempts", TypedValue(2, 20, 1)),
            Field("priority", TypedValue(2, 20, -5)),
            Field("max_attempts", TypedValue(2, 20, 3)),
            Field("acked", TypedValue(1, 16, False)),
        ],
    )
    raw = encode_entity(queue)
    decoded = decode_entity(raw)
    values = synthesized(decoded)
    assert values["payload"] == "job" and values["priority"] == -5 and values["acked"] is False
    assert decoded.fields[1].value.native == 1_700_000_000_123_456_789
    assert encode_entity(decoded) == raw


@pytest.mark.parametrize("version", [9, 11, 12])
def test_timeseries_layout_variants_are_detected(version: int) -> None:
    extra = [Field("unit", text("C"))] if version == 12 else []
    point = Entity(
        5,
        "timeseries",
        {"series": "cpu", "metric": "temp"},
        "timeseries",
        [
            Field("metric", text("temp")),
            Field("timestamp", TypedValue(7, 1184, None, 1_700_000_000_000_000_000)),
            Field("value", TypedValue(4, 701, 21.5)),
            Field("tags", TypedValue(12, 3802, '{"host": "a", "rack": "r1"}')),
        ]
        + extra,
        created_at=1_700_000_000,
        updated_at=1_700_000_000,
        logical_id=5,
        xmin=1,
        xmax=0,
        format_version=version,
    )
    raw = encode_entity(point)
    decoded = decode_entity(raw)
    assert decoded.format_version == version
    assert synthesized(decoded)["tags"] == '{"host": "a", "rack": "r1"}'
    assert synthesized(decoded)["value"] == 21.5
    if version == 12:
        assert synthesized(decoded)["unit"] == "C"
    assert encode_entity(decoded) == raw


def test_timeseries_series_id_discriminator() -> None:
    point = Entity(
        6,
        "timeseries",
        {"series": "cpu", "metric": "m", "series_id": 77},
        "timeseries",
        [
            Field("metric", text("m")),
            Field("timestamp", TypedValue(7, 1184, None, 5)),
            Field("value", TypedValue(4, 701, 1.0)),
            Field("tags", TypedValue(0, 0, None)),
        ],
        format_version=11,
    )
    decoded = decode_entity(encode_entity(point))
    assert decoded.kind_fields["series_id"] == 77
    assert decoded.fields[3].value.value is None


def test_truncated_entity_raises_decode_error_with_lsn_and_position() -> None:
    raw = bytes.fromhex(GOLDEN["entities"][1]["hex"])
    errors = 0
    for cut in range(len(raw)):
        try:
            decode_entity(raw[:cut], lsn=42)
        except ChangeDecodeError as exc:
            errors += 1
            assert exc.lsn == 42
            assert exc.position is not None and 0 <= exc.position <= cut
    assert errors >= len(raw) - 6  # only the optional tail (logical id, xmin/xmax) may be cut


def test_trailing_and_unknown_bytes_are_errors() -> None:
    raw = bytes.fromhex(GOLDEN["entities"][0]["hex"])
    with pytest.raises(ChangeDecodeError, match="trailing"):
        decode_entity(raw + b"\x00\x00\x00")
    with pytest.raises(ChangeDecodeError) as err:
        decode_entity(bytes.fromhex("0909"), lsn=12)
    assert (err.value.lsn, err.value.position) == (12, 1)
