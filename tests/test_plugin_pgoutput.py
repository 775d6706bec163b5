import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pgoutput_parser import parse

from pgshim.errors import PgError
from pgshim.logical.publications import PublicationStore
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction
from pgshim.plugins import PluginContext, load_plugin
from pgshim.plugins import pgoutput as po

# 2026-11-26 01:20:13.544Z as PostgreSQL microseconds since 2000-01-01.
TS = datetime(2026, 11, 26, 1, 20, 13, 544000, UTC)
TS_US = int((TS - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000 + 544000


def s_pk() -> Relation:
    return Relation(
        16414,
        "public",
        "s_pk",
        [
            Column("id", 23, is_key=True),
            Column("name", 25),
            Column("val", 1700, typmod=655366),
            Column("big", 25),
        ],
    )


def tx_with(changes, begin=0x1DB9BE0, commit=0x1DB9C68, end=0x1DB9C98, xid=826):
    return Transaction(
        xid=xid,
        first_lsn=0,
        last_lsn=0,
        begin_pos=begin,
        commit_pos=commit,
        end_pos=end,
        commit_time=TS,
        changes=changes,
        records=[],
    )


def context(*tables: str, version_num: int = 150018) -> PluginContext:
    store = PublicationStore(sqlite3.connect(":memory:"))
    if tables:
        store.create("pub1", tables=tables)
    else:
        store.create("pub1", all_tables=True)
    return PluginContext(publications=store, server_version_num=version_num)


def start(ctx=None, **options):
    options = {"proto_version": "3", "publication_names": '"pub1"', **options}
    return load_plugin("pgoutput", options, ctx or context())


def test_insert_transaction_bytes_match_pg15_transcript() -> None:
    relation = s_pk()
    tx = tx_with([RowChange("I", relation, [10, "a", Decimal("1.50"), None], None, 0x1DB9BE0, 1)])
    out = start().encode(tx)
    assert [pos for pos, _ in out] == [0x1DB9BE0, 0, 0x1DB9BE0, 0x1DB9C98]
    assert [len(payload) for _, payload in out] == [21, 72, 31, 26]
    ts = TS_US.to_bytes(8, "big")
    assert out[0][1] == b"B" + (0x1DB9C68).to_bytes(8, "big") + ts + (826).to_bytes(4, "big")
    assert out[1][1] == (
        b"R\x00\x00\x40\x1e"
        b"public\x00"
        b"s_pk\x00"
        b"d"
        b"\x00\x04"
        b"\x01id\x00\x00\x00\x00\x17\xff\xff\xff\xff"
        b"\x00name\x00\x00\x00\x00\x19\xff\xff\xff\xff"
        b"\x00val\x00\x00\x00\x06\xa4\x00\x0a\x00\x06"
        b"\x00big\x00\x00\x00\x00\x19\xff\xff\xff\xff"
    )
    assert out[2][1] == (
        b"I\x00\x00\x40\x1eN\x00\x04t\x00\x00\x00\x0210t\x00\x00\x00\x01at\x00\x00\x00\x041.50n"
    )
    assert out[3][1] == (
        b"C\x00" + (0x1DB9C68).to_bytes(8, "big") + (0x1DB9C98).to_bytes(8, "big") + ts
    )


def test_update_delete_truncate_and_relation_resend() -> None:
    relation = s_pk()
    session = start()
    first = session.encode(tx_with([RowChange("U", relation, [10, "a2", None, None], None, 5, 1)]))
    assert [parse(p)["type"] for _, p in first] == ["B", "R", "U", "C"]
    update = parse(first[2][1])
    assert "K" not in update and update["N"][1] == ("t", b"a2")

    second = session.encode(
        tx_with(
            [
                RowChange("D", relation, None, [11, None, None, None], 6, 1),
                RowChange("T", relation, None, None, 7, 1),
                RowChange("I", relation, [12, None, None, None], None, 8, 1),
            ]
        )
    )
    assert [parse(p)["type"] for _, p in second] == ["B", "D", "T", "R", "I", "C"]
    delete = parse(second[1][1])
    assert delete["K"] == [("t", b"11"), ("n", None), ("n", None), ("n", None)]
    assert parse(second[2][1]) == {"type": "T", "options": 0, "relids": [16414]}

    relation.columns.append(Column("extra", 20))
    relation.version += 1
    third = session.encode(
        tx_with([RowChange("I", relation, [13, None, None, None, 7], None, 9, 1)])
    )
    assert [parse(p)["type"] for _, p in third] == ["B", "R", "I", "C"]
    assert parse(third[1][1])["columns"][-1] == (0, "extra", 20, -1)


def test_binary_tuples() -> None:
    relation = s_pk()
    out = start(binary="true").encode(
        tx_with([RowChange("I", relation, [1, "pre1", None, None], None, 1, 1)])
    )
    assert parse(out[2][1])["N"][:2] == [("b", b"\x00\x00\x00\x01"), ("b", b"pre1")]


def test_publication_filtering_and_lazy_begin() -> None:
    other = Relation(16500, "public", "other", [Column("rid", 20, is_key=True)])
    session = start(context("public.s_pk"))
    assert session.encode(tx_with([RowChange("I", other, [1], None, 3, 1)])) == []
    out = session.encode(
        tx_with([RowChange("I", other, [1], None, 3, 1), RowChange("I", s_pk(), [2], None, 4, 1)])
    )
    assert out[0][0] == 4 and [parse(p)["type"] for _, p in out] == ["B", "R", "I", "C"]

    store = PublicationStore(sqlite3.connect(":memory:"))
    store.create("ins", all_tables=True, publish="insert")
    only_inserts = start(PluginContext(publications=store), publication_names="ins")
    assert only_inserts.encode(tx_with([RowChange("D", other, None, [1], 3, 1)])) == []


def test_missing_publication_raises_when_decoding() -> None:
    session = start(publication_names="nope")
    with pytest.raises(PgError) as error:
        session.encode(tx_with([]))
    assert (error.value.sqlstate, error.value.message) == (
        "42704",
        'publication "nope" does not exist',
    )


def test_sessions_with_same_options_share_encoding(monkeypatch) -> None:
    calls = []
    real = po.change_message
    monkeypatch.setattr(po, "change_message", lambda c, **kw: calls.append(1) or real(c, **kw))
    tx = tx_with([RowChange("I", s_pk(), [1], None, 1, 1)])
    assert start().encode(tx) == start().encode(tx)
    assert len(calls) == 1


PG15_OPTION_ERRORS = [
    (
        {"proto_version": "4"},
        "0A000",
        "client sent proto_version=4 but we only support protocol 3 or lower",
    ),
    (
        {"proto_version": "0"},
        "0A000",
        "client sent proto_version=0 but we only support protocol 1 or higher",
    ),
    ({"streaming": "parallel"}, "42601", "streaming requires a Boolean value"),
    ({"origin": "none"}, "XX000", "unrecognized pgoutput option: origin"),
]


@pytest.mark.parametrize(("options", "state", "message"), PG15_OPTION_ERRORS)
def test_option_errors_of_postgresql_15(options, state, message) -> None:
    base = {"proto_version": "3", "publication_names": "pub1", **options}
    with pytest.raises(PgError) as error:
        load_plugin("pgoutput", base, context())
    assert (error.value.sqlstate, error.value.message) == (state, message)


@pytest.mark.parametrize("version_num", [160015, 170011, 180006])
def test_postgresql_16_options(version_num: int) -> None:
    """What PostgreSQL 16+ subscribers send: protocol 4, parallel streaming, origin."""
    options = {"streaming": "parallel", "origin": "none", "two_phase": "on", "binary": "true"}
    plugin = load_plugin(
        "pgoutput",
        {"proto_version": "4", "publication_names": '"pub1"', **options},
        context(version_num=version_num),
    )
    assert (plugin.streaming, plugin.origin, plugin.two_phase, plugin.binary) == (
        "parallel", "none", True, True
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "state", "message"),
    [
        (
            {"proto_version": "5"},
            "0A000",
            "client sent proto_version=5 but server only supports protocol 4 or lower",
        ),
        (
            {"proto_version": "0"},
            "0A000",
            "client sent proto_version=0 but server only supports protocol 1 or higher",
        ),
        ({"proto_version": "x"}, "22023", "invalid proto_version"),
        ({"publication_names": None}, "22023", "publication_names parameter missing"),
        (
            {"proto_version": "1", "streaming": "on"},
            "22023",
            "requested proto_version=1 does not support streaming, need 2 or higher",
        ),
        (
            {"proto_version": "3", "streaming": "parallel"},
            "22023",
            "requested proto_version=3 does not support parallel streaming, need 4 or higher",
        ),
        (
            {"proto_version": "2", "two_phase": "true"},
            "22023",
            "requested proto_version=2 does not support two-phase commit, need 3 or higher",
        ),
        ({"binary": "1"}, "42601", "binary requires a Boolean value"),
        ({"origin": "some"}, "22023", 'unrecognized origin value: "some"'),
        ({"bogus": "1"}, "XX000", "unrecognized pgoutput option: bogus"),
    ],
)
def test_option_errors(options, state, message) -> None:
    base = {"proto_version": "3", "publication_names": "pub1", **options}
    base = {k: v for k, v in base.items() if not (k == "publication_names" and v is None)}
    with pytest.raises(PgError) as error:
        load_plugin("pgoutput", base, context(version_num=180006))
    assert (error.value.sqlstate, error.value.message) == (state, message)


def test_publication_names_list_syntax() -> None:
    assert po.split_identifier_list('"pub1", Pub2 ,"a""b"') == ["pub1", "pub2", 'a"b']
    assert po.split_identifier_list("a,,b") is None
    assert po.split_identifier_list('"open') is None


def test_missing_publication_is_skipped_with_a_warning_from_postgresql_18() -> None:
    tx = tx_with([RowChange("I", s_pk(), [1, "a", None, None], None, 0x100, 1)])
    options = {"proto_version": "4", "publication_names": '"pub1","gone"'}
    plugin = load_plugin("pgoutput", options, context(version_num=180006))
    assert [payload[:1] for _, payload in plugin.encode(tx)] == [b"B", b"R", b"I", b"C"]
    assert len(plugin.warnings) == 1
    assert b'skipped loading publication "gone"' in plugin.warnings[0]
    assert b"The publication does not exist at this point in the WAL." in plugin.warnings[0]
    plugin.warnings.clear()
    plugin.encode(tx)
    assert plugin.warnings == []  # once per loading of the publications
    with pytest.raises(PgError) as error:  # PostgreSQL 15 to 17: an error
        load_plugin("pgoutput", {**options, "proto_version": "3"}, context()).encode(tx)
    assert (error.value.sqlstate, error.value.message) == (
        "42704", 'publication "gone" does not exist'
    )  # fmt: skip
