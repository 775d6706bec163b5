from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pgshim.errors import PgError
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction
from pgshim.plugins import PluginContext, load_plugin
from pgshim.plugins import test_decoding as td

T_PK = Relation(
    16385,
    "public",
    "t_pk",
    [Column("id", 23, is_key=True), Column("name", 25), Column("val", 1700)],
)


def transaction(xid, begin, end, changes, ts=datetime(2026, 11, 26, 1, 16, 18, 900180, UTC)):
    return Transaction(
        xid=xid,
        first_lsn=0,
        last_lsn=0,
        begin_pos=begin,
        commit_pos=end - 1,
        end_pos=end,
        commit_time=ts,
        changes=changes,
        records=[],
    )


def plugin(**options):
    return load_plugin("test_decoding", options, PluginContext())


def test_insert_transaction_matches_pg15_transcript() -> None:
    tx = transaction(
        730,
        0x192C390,
        0x192C530,
        [
            RowChange("I", T_PK, [1, "alpha", Decimal("1.50")], None, 0x192C390, 1),
            RowChange("I", T_PK, [2, "beta", Decimal("2.25")], None, 0x192C478, 2),
        ],
    )
    assert plugin().encode(tx) == [
        (0x192C390, b"BEGIN 730"),
        (
            0x192C390,
            b"table public.t_pk: INSERT: id[integer]:1 name[text]:'alpha' val[numeric]:1.50",
        ),
        (
            0x192C478,
            b"table public.t_pk: INSERT: id[integer]:2 name[text]:'beta' val[numeric]:2.25",
        ),
        (0x192C530, b"COMMIT 730"),
    ]


def test_update_delete_null_and_quoting() -> None:
    tx = transaction(
        740,
        0x100,
        0x1FF,
        [
            RowChange("U", T_PK, [10, "it's", None], None, 0x100, 1),
            RowChange("D", T_PK, None, [2, None, None], 0x180, 1),
            RowChange("T", T_PK, None, None, 0x190, 1),
        ],
    )
    lines = [payload for _, payload in plugin().encode(tx)]
    assert lines[1:4] == [
        b"table public.t_pk: UPDATE: id[integer]:10 name[text]:'it''s' val[numeric]:null",
        b"table public.t_pk: DELETE: id[integer]:2",
        b"table public.t_pk: TRUNCATE: (no-flags)",
    ]


def test_identifiers_are_quoted_like_postgres() -> None:
    relation = Relation(
        1, "public", "Mixed", [Column("select", 20, is_key=True), Column("ok_1", 16)]
    )
    line = td.render_change(RowChange("I", relation, [5, True], None, 0, 0))
    assert line == 'table public."Mixed": INSERT: "select"[bigint]:5 ok_1[boolean]:true'


def test_skip_empty_xacts_lazy_begin_and_timestamp() -> None:
    options = {"include-xids": "0", "skip-empty-xacts": "1", "include-timestamp": None}
    tx = transaction(
        5, 0x1977CE8 - 0x80, 0x1977CE8, [RowChange("I", T_PK, [1, "a", None], None, 0x1977C30, 1)]
    )
    out = plugin(**options).encode(tx)
    assert out[0] == (0, b"BEGIN")
    assert out[-1] == (0x1977CE8, b"COMMIT (at 2026-11-26 01:16:18.90018+00)")
    assert plugin(**options).encode(transaction(6, 0x100, 0x1FF, [])) == []
    assert [p for _, p in plugin().encode(transaction(6, 0x100, 0x1FF, []))] == [
        b"BEGIN 6",
        b"COMMIT 6",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nope": "1"}, 'option "nope" = "1" is unknown'),
        ({"nope": None}, 'option "nope" = "(null)" is unknown'),
        ({"include-xids": "maybe"}, 'could not parse value "maybe" for parameter "include-xids"'),
        ({"include-xids": "o"}, 'could not parse value "o" for parameter "include-xids"'),
    ],
)
def test_option_errors(options, message) -> None:
    with pytest.raises(PgError) as error:
        plugin(**options)
    assert (error.value.sqlstate, error.value.message) == ("22023", message)


def test_bool_spellings_and_prefixes() -> None:
    for value, expected in [
        ("t", True),
        ("FALSE", False),
        ("y", True),
        ("of", False),
        ("on", True),
        ("0", False),
        ("ye", True),
    ]:
        assert plugin(**{"include-xids": value}).include_xids is expected


def test_second_instance_with_same_options_reuses_encoding(monkeypatch) -> None:
    calls = []
    real = td.TestDecodingPlugin.render
    monkeypatch.setattr(
        td.TestDecodingPlugin, "render", lambda self, tx: calls.append(1) or real(self, tx)
    )
    tx = transaction(1, 0x100, 0x1FF, [RowChange("I", T_PK, [1, "a", None], None, 0x100, 1)])
    first = plugin(**{"include-xids": "1"}).encode(tx)
    second = plugin(**{"include-xids": "on"}).encode(tx)
    assert first == second and len(calls) == 1
    plugin(**{"include-xids": "0"}).encode(tx)
    assert len(calls) == 2


def test_unknown_plugin() -> None:
    with pytest.raises(PgError) as error:
        load_plugin("decoderbufs", {}, PluginContext())
    assert error.value.sqlstate == "58P01"
    assert error.value.message == 'could not access file "decoderbufs": No such file or directory'
