from datetime import UTC, datetime

import orjson
import pytest

from pgshim.errors import PgError
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction
from pgshim.plugins import PluginContext, load_plugin
from pgshim.reddb.change import ChangeRecord

USERS = Relation(16384, "public", "users", [Column("rid", 20, is_key=True), Column("name", 25)])


def record(lsn: int, operation: str, raw: dict) -> ChangeRecord:
    return ChangeRecord(
        lsn=lsn,
        timestamp_ms=0,
        operation=operation,
        collection="users",
        rid=lsn,
        kind="row",
        entity_bytes=None,
        metadata=None,
        term=1,
        refresh_records=(),
        range_id=None,
        ownership_epoch=None,
        raw=orjson.dumps(raw),
    )


def test_one_lossless_message_per_record() -> None:
    raws = [
        {"lsn": 7, "operation": "insert", "rid": 7, "collection": "users", "big": 2**64 - 1},
        {"lsn": 8, "operation": "delete", "rid": 3, "collection": "users"},
    ]
    tx = Transaction(
        xid=7,
        first_lsn=7,
        last_lsn=8,
        begin_pos=0x700,
        commit_pos=0x8FE,
        end_pos=0x8FF,
        commit_time=datetime(2026, 1, 1, tzinfo=UTC),
        changes=[
            RowChange("I", USERS, [7, "it's"], None, 0x700, 7),
            RowChange("D", USERS, None, [3, None], 0x800, 8),
        ],
        records=[record(7, "insert", raws[0]), record(8, "delete", raws[1])],
        errors=["lsn 8: something odd"],
    )
    out = load_plugin("reddb", {}, PluginContext()).encode(tx)
    assert [pos for pos, _ in out] == [0x700, 0x8FF]
    first, second = (orjson.loads(payload) for _, payload in out)
    assert first["big"] == 2**64 - 1
    assert first["pg"] == {
        "position": "0/700",
        "schema": "public",
        "table": "users",
        "action": "insert",
        "columns": {"rid": "7", "name": "it's"},
    }
    assert second["pg"]["columns"] == {"rid": "3", "name": None}
    assert second["pg"]["errors"] == ["lsn 8: something odd"]


def test_rejects_options() -> None:
    with pytest.raises(PgError) as error:
        load_plugin("reddb", {"x": "1"}, PluginContext())
    assert error.value.sqlstate == "22023"
