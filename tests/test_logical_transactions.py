import sqlite3
from datetime import UTC, datetime

from pgshim.logical.relations import DeclaredColumn, RelationRegistry
from pgshim.logical.transactions import TransactionBuilder, empty_transaction, should_group
from pgshim.reddb.change import ChangeRecord
from pgshim.reddb.entity import Entity, Field
from pgshim.reddb.identity import IdentityMap
from pgshim.reddb.values import TypedValue


def text(value: str) -> TypedValue:
    return TypedValue(5, 25, value)


def integer(value: int) -> TypedValue:
    return TypedValue(2, 20, value)


def entity(eid: int, fields: list[Field], logical_id: int | None = None, xmin=None) -> Entity:
    return Entity(
        id=eid,
        kind="table_row",
        kind_fields={},
        data_kind="named_row",
        fields=fields,
        logical_id=logical_id,
        xmin=xmin,
    )


class FakeDecoder:
    """Entity bytes in tests are keys into this table."""

    def __init__(self) -> None:
        self.entities: dict[bytes, Entity] = {}

    def add(self, item: Entity) -> bytes:
        key = f"entity-{len(self.entities)}".encode()
        self.entities[key] = item
        return key

    def __call__(self, data: bytes, *, lsn: int | None = None) -> Entity:
        if data not in self.entities:
            raise ValueError("bad entity bytes")
        return self.entities[data]


def record(lsn: int, operation: str, rid: int, data: bytes | None, refresh=()) -> ChangeRecord:
    return ChangeRecord(
        lsn=lsn,
        timestamp_ms=1_700_000_000_123,
        operation=operation,
        collection="users",
        rid=rid,
        kind="row",
        entity_bytes=data,
        metadata=None,
        term=1,
        refresh_records=tuple(refresh),
        range_id=None,
        ownership_epoch=None,
        raw=b"{}",
    )


def make_builder(declared=None):
    conn = sqlite3.connect(":memory:")
    decoder = FakeDecoder()
    registry = RelationRegistry(conn, declared=declared)
    builder = TransactionBuilder(IdentityMap(conn), registry, decode=decoder)
    return builder, decoder, registry, conn


def test_insert_update_delete_resolve_logical_id() -> None:
    builder, decoder, registry, _ = make_builder()
    row = entity(10, [Field("name", text("ann")), Field("age", integer(30))], logical_id=10)
    tx = builder.build([record(5, "insert", 10, decoder.add(row))])
    assert (tx.xid, tx.begin_pos, tx.commit_pos, tx.end_pos) == (5, 0x500, 0x5FE, 0x5FF)
    assert tx.commit_time == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    [insert] = tx.changes
    assert insert.action == "I"
    assert [c.name for c in insert.relation.columns] == ["rid", "name", "age"]
    assert [c.type_oid for c in insert.relation.columns] == [20, 25, 20]
    assert insert.new == [10, "ann", 30]
    assert insert.relation.oid == 16384

    updated = entity(11, [Field("name", text("bob")), Field("age", integer(31))], logical_id=10)
    [update] = builder.build([record(6, "update", 11, decoder.add(updated))]).changes
    assert (update.action, update.new, update.key) == ("U", [10, "bob", 31], None)

    [delete] = builder.build([record(7, "delete", 11, None)]).changes
    assert delete.action == "D"
    assert delete.key == [10, None, None]
    assert delete.pos == 0x700


def test_refresh_is_truncate_then_inserts_in_one_transaction() -> None:
    builder, decoder, _, _ = make_builder()
    rows = [decoder.add(entity(i, [Field("v", integer(i))])) for i in (1, 2)]
    tx = builder.build([record(9, "refresh", 0, None, refresh=rows)])
    assert [c.action for c in tx.changes] == ["T", "I", "I"]
    assert [c.new for c in tx.changes[1:]] == [[1, 1], [2, 2]]


def test_decode_problems_are_reported_not_dropped() -> None:
    builder, decoder, registry, _ = make_builder()
    good = decoder.add(entity(1, [Field("n", integer(1))]))
    builder.build([record(1, "insert", 1, good)])
    bad_type = decoder.add(entity(2, [Field("n", text("not a number"))]))
    tx = builder.build([record(2, "insert", 2, bad_type), record(3, "insert", 3, b"garbage")])
    assert [c.new for c in tx.changes] == [[2, None]]
    assert len(tx.errors) == 2
    assert tx.errors[0].startswith("lsn 2: users.n: type mismatch")
    assert tx.errors[1].startswith("lsn 3: cannot decode entity")
    assert registry.mismatch_count == 1


def test_new_field_bumps_relation_version_and_rid_is_renamed() -> None:
    builder, decoder, registry, conn = make_builder()
    builder.build([record(1, "insert", 1, decoder.add(entity(1, [Field("a", integer(1))])))])
    relation = registry.get("users")
    version = relation.version
    second = entity(2, [Field("a", integer(2)), Field("rid", integer(9))])
    [change] = builder.build([record(2, "insert", 2, decoder.add(second))]).changes
    assert [c.name for c in relation.columns] == ["rid", "a", "rid_"]
    assert relation.version == version + 1
    assert change.new == [2, 2, 9]
    reloaded = RelationRegistry(conn).get("users")
    assert (reloaded.oid, reloaded.version) == (relation.oid, relation.version)
    assert [c.name for c in reloaded.columns] == ["rid", "a", "rid_"]


def test_positional_rows_use_declaration_or_c_columns() -> None:
    declared = {"users": [DeclaredColumn("name", "text"), DeclaredColumn("score", "numeric", 1)]}
    builder, decoder, _, _ = make_builder(declared)
    positional = Entity(
        id=3,
        kind="table_row",
        kind_fields={},
        data_kind="row",
        fields=[Field(None, text("x")), Field(None, integer(7))],
    )
    [change] = builder.build([record(1, "insert", 3, decoder.add(positional))]).changes
    assert [c.name for c in change.relation.columns] == ["rid", "name", "score"]
    assert [c.type_oid for c in change.relation.columns] == [20, 25, 1700]
    assert change.new[:2] == [3, "x"] and str(change.new[2]) == "7"

    other_builder, other_decoder, _, _ = make_builder()
    [plain] = other_builder.build([record(1, "insert", 3, other_decoder.add(positional))]).changes
    assert [c.name for c in plain.relation.columns] == ["rid", "c1", "c2"]


def test_group_by_xmin_splits_consecutive_records() -> None:
    conn = sqlite3.connect(":memory:")
    decoder = FakeDecoder()
    rows = [
        decoder.add(entity(i, [Field("v", integer(i))], xmin=x))
        for i, x in ((1, 50), (2, 50), (3, 51))
    ]
    records = [record(i + 1, "insert", i + 1, data) for i, data in enumerate(rows)]
    builder = TransactionBuilder(
        IdentityMap(conn), RelationRegistry(conn), group_by_xmin=True, decode=decoder
    )
    groups = builder.split(records)
    assert [[r.lsn for r in group] for group in groups] == [[1, 2], [3]]
    tx = builder.build(groups[0])
    assert (tx.xid, tx.begin_pos, tx.end_pos) == (1, 0x100, 0x2FF)
    assert should_group(records[2], records[0]) is False


def test_empty_transaction_carries_its_error() -> None:
    tx = empty_transaction(4, datetime(2026, 1, 1, tzinfo=UTC), "LSN 4: bad json")
    assert (tx.begin_pos, tx.end_pos, tx.changes, tx.errors) == (
        0x400,
        0x4FF,
        [],
        ["LSN 4: bad json"],
    )


def test_fixed_length_text_columns_keep_their_length() -> None:
    """Country2 is character(2), Currency character(3), Lang5 character varying(5): a
    subscriber creating its table from these types takes their values (not character(1))."""
    from pgshim import pgtypes

    builder, decoder, registry, conn = make_builder()
    fields = [
        Field("country", TypedValue(37, 1042, "DE")),
        Field("currency", TypedValue(41, 1042, "EUR")),
        Field("lang", TypedValue(40, 1043, "pt-BR")),
        Field("note", text("x")),
    ]
    builder.build([record(1, "insert", 1, decoder.add(entity(1, fields)))])
    for relation in (registry.get("users"), RelationRegistry(conn).get("users")):
        types = [pgtypes.format_type(c.type_oid, c.typmod) for c in relation.columns]
        assert types == ["bigint", "character(2)", "character(3)", "character varying(5)", "text"]
