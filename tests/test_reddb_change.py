import json
from pathlib import Path

import pytest

from pgshim.reddb.change import ChangeDecodeError, parse_change_record, public_kind
from pgshim.reddb.entity import decode_entity

GOLDEN = json.loads((Path(__file__).parent / "data" / "reddb-golden-vectors.json").read_text())


def golden_payloads() -> list[dict]:
    return [f for f in GOLDEN["frames"] if "payload_json" in f]


def test_golden_payloads_parse() -> None:
    for vector in golden_payloads():
        payload = vector["payload_json"].encode()
        record = parse_change_record(payload, vector["lsn"])
        obj = json.loads(payload)
        assert record.lsn == obj["lsn"] == vector["lsn"]
        assert record.operation == obj["operation"]
        assert record.collection == obj["collection"]
        assert record.rid == obj["rid"]
        assert record.kind == obj["kind"]
        assert record.timestamp_ms == obj["timestamp"]
        assert record.term == obj.get("term", 1)
        assert record.metadata == obj.get("metadata")
        assert record.range_id == obj.get("range_id")
        assert record.ownership_epoch == obj.get("ownership_epoch")
        assert record.raw == payload
        if "entity_bytes_hex" in obj:
            assert record.entity_bytes == bytes.fromhex(obj["entity_bytes_hex"])
        else:
            assert record.entity_bytes is None


def test_refresh_records_are_unwrapped() -> None:
    (vector,) = [v for v in golden_payloads() if v["name"] == "v3_head_refresh"]
    record = parse_change_record(vector["payload_json"].encode())
    assert record.operation == "refresh" and record.rid == 0
    (entity_bytes,) = record.refresh_records
    assert decode_entity(entity_bytes).field_map()["name"].value == "alice"


def test_fallback_keys_and_unknown_keys() -> None:
    record = parse_change_record(
        b'{"collection":"c","entity_id":4,"entity_kind":"graph_node","lsn":3,'
        b'"operation":"delete","timestamp":1,"future_key":[1,2]}'
    )
    assert (record.rid, record.kind, record.lsn) == (4, "node", 3)


def test_v120_numbers_written_as_floats_are_accepted() -> None:
    record = parse_change_record(
        b'{"collection":"c","lsn":5.0,"operation":"insert","rid":2.0,"timestamp":7}'
    )
    assert (record.lsn, record.rid) == (5, 2)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"collection":"c","lsn":9,"rid":1}', "missing operation"),
        (b'{"collection":"c","lsn":9,"rid":1,"operation":"upsert"}', "unknown operation 'upsert'"),
        (
            b'{"collection":"c","lsn":9,"rid":1,"operation":"insert","entity_bytes_hex":"zz"}',
            "not valid hex",
        ),
        (
            b'{"collection":"c","lsn":9,"rid":0,"operation":"refresh","refresh_records_hex":["00"]}',
            "RER1",
        ),
    ],
)
def test_bad_payloads_are_decode_errors_with_the_lsn(payload: bytes, reason: str) -> None:
    with pytest.raises(ChangeDecodeError) as err:
        parse_change_record(payload, frame_lsn=9)
    assert err.value.lsn == 9
    assert reason in err.value.reason


def test_lsn_comes_from_the_payload_without_a_frame() -> None:
    with pytest.raises(ChangeDecodeError) as err:
        parse_change_record(b'{"collection":"c","lsn":11,"operation":"merge","rid":1}')
    assert err.value.lsn == 11


def test_public_kind_mapping() -> None:
    cases = {
        "table": "row",
        "entity": "row",
        "graph_edge": "edge",
        "kv": "kv",
        "my_document": "document",
        "timeseries": "item",
        "refresh": "item",
    }
    for internal, public in cases.items():
        assert public_kind(internal) == public
