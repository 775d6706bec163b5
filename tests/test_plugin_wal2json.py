from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pgshim.errors import PgError
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction
from pgshim.plugins import PluginContext, load_plugin

T_PK = Relation(
    16385,
    "public",
    "t_pk",
    [Column("id", 23, is_key=True), Column("name", 25), Column("val", 1700, typmod=655366)],
)
TS = datetime(2026, 11, 26, 1, 19, 20, 490071, UTC)


def transaction(xid, begin, commit, end, changes):
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


TX_804 = transaction(
    804,
    0x197A208,
    0x197A318,
    0x197A348,
    [
        RowChange("I", T_PK, [1001, "alpha", Decimal("1.50")], None, 0x197A208, 1),
        RowChange("I", T_PK, [1002, "beta", Decimal("2.25")], None, 0x197A290, 2),
    ],
)
TX_807 = transaction(
    807,
    0x197A4A0,
    0x197A4E0,
    0x197A510,
    [RowChange("D", T_PK, None, [1002, None, None], 0x197A4A0, 3)],
)
TX_805 = transaction(
    805,
    0x197A348,
    0x197A3A0,
    0x197A3D0,
    [RowChange("U", T_PK, [1002, "beta2", Decimal("2.25")], None, 0x197A348, 4)],
)


def encode(tx, **options):
    return load_plugin("wal2json", options, PluginContext()).encode(tx)


def test_v1_defaults_match_wal2json_25() -> None:
    assert encode(TX_804, **{"format-version": "1"}) == [
        (
            0x197A208,
            (
                b'{"change":[{"kind":"insert","schema":"public","table":"t_pk","columnnames":["id","name",'
                b'"val"],"columntypes":["integer","text","numeric(10,2)"],"columnvalues":[1001,"alpha",'
                b'1.50]},{"kind":"insert","schema":"public","table":"t_pk","columnnames":["id","name","val"]'
                b',"columntypes":["integer","text","numeric(10,2)"],"columnvalues":[1002,"beta",2.25]}]}'
            ),
        )
    ]
    assert encode(TX_807)[0][1] == (
        b'{"change":[{"kind":"delete","schema":"public","table":"t_pk","oldkeys":{"keynames":'
        b'["id"],"keytypes":["integer"],"keyvalues":[1002]}}]}'
    )


def test_v1_with_xids_lsn_timestamp() -> None:
    options = {
        "include-xids": "1",
        "include-timestamp": "1",
        "include-lsn": "1",
        "include-types": "1",
        "include-typmod": "1",
        "pretty-print": "0",
    }
    [(start, payload)] = encode(TX_805, **options)
    assert start == 0x197A348
    assert payload == (
        b'{"xid":805,"nextlsn":"0/197A3D0","timestamp":"2026-11-26 01:19:20.490071+00",'
        b'"change":[{"kind":"update","schema":"public","table":"t_pk","columnnames":["id","name",'
        b'"val"],"columntypes":["integer","text","numeric(10,2)"],"columnvalues":[1002,"beta2",'
        b'2.25],"oldkeys":{"keynames":["id"],"keytypes":["integer"],"keyvalues":[1002]}}]}'
    )


def test_v1_pretty_print_and_chunks() -> None:
    [(_, payload)] = encode(TX_807, **{"pretty-print": "1", "include-types": "0"})
    assert payload.decode() == (
        '{\n\t"change": [\n\t\t{\n\t\t\t"kind": "delete",\n\t\t\t"schema": "public",\n'
        '\t\t\t"table": "t_pk",\n\t\t\t"oldkeys": {\n\t\t\t\t"keynames": ["id"],\n'
        '\t\t\t\t"keyvalues": [1002]\n\t\t\t}\n\t\t}\n\t]\n}'
    )
    chunks = encode(TX_804, **{"write-in-chunks": "1", "include-types": "0"})
    assert [start for start, _ in chunks] == [0x197A208, 0x197A208, 0x197A290, 0x197A348]
    assert chunks[0][1] == b'{"change":['
    assert chunks[2][1].startswith(b',{"kind":"insert"')
    assert chunks[3][1] == b"]}"


def test_v2_defaults_and_options_match_wal2json_25() -> None:
    assert encode(TX_805, **{"format-version": "2"}) == [
        (0x197A348, b'{"action":"B"}'),
        (
            0x197A348,
            b'{"action":"U","schema":"public","table":"t_pk","columns":[{"name":"id",'
            b'"type":"integer","value":1002},{"name":"name","type":"text","value":"beta2"}'
            b',{"name":"val","type":"numeric(10,2)","value":2.25}],"identity":[{"name":'
            b'"id","type":"integer","value":1002}]}',
        ),
        (0x197A3D0, b'{"action":"C"}'),
    ]
    options = {
        "format-version": "2",
        "include-xids": "1",
        "include-timestamp": "1",
        "include-lsn": "1",
        "include-transaction": "1",
        "include-pk": "1",
    }
    out = encode(TX_807, **options)
    assert out == [
        (
            0x197A4A0,
            b'{"action":"B","xid":807,"timestamp":"2026-11-26 01:19:20.490071+00",'
            b'"lsn":"0/197A4E0","nextlsn":"0/197A510"}',
        ),
        (
            0x197A4A0,
            b'{"action":"D","xid":807,"timestamp":"2026-11-26 01:19:20.490071+00",'
            b'"lsn":"0/197A4A0","schema":"public","table":"t_pk","identity":[{"name":"id",'
            b'"type":"integer","value":1002}],"pk":[{"name":"id","type":"integer"}]}',
        ),
        (
            0x197A510,
            b'{"action":"C","xid":807,"timestamp":"2026-11-26 01:19:20.490071+00",'
            b'"lsn":"0/197A4E0","nextlsn":"0/197A510"}',
        ),
    ]


def test_v2_truncate_and_table_filters() -> None:
    nopk = Relation(16390, "public", "t_nopk", [Column("a", 23)])
    tx = transaction(
        817, 0x19813B0, 0x19813B0, 0x19814C0, [RowChange("T", nopk, None, None, 0x1981380, 1)]
    )
    assert encode(tx, **{"format-version": "2"})[1] == (
        0x1981380,
        b'{"action":"T","schema":"public","table":"t_nopk"}',
    )
    assert len(encode(tx, **{"format-version": "2", "filter-tables": "*.t_nopk"})) == 2
    assert len(encode(tx, **{"format-version": "2", "add-tables": "public.other"})) == 2
    assert len(encode(tx, **{"format-version": "2", "actions": "insert"})) == 2
    assert encode(tx)[0][1] == b'{"change":[]}'


def test_special_numbers_and_strings() -> None:
    relation = Relation(1, "public", "x", [Column("f", 701), Column("s", 25), Column("b", 17)])
    tx = transaction(
        1, 0, 0, 0, [RowChange("I", relation, [float("nan"), 'a"\n', b"\x00\xff"], None, 0, 1)]
    )
    assert b'"columnvalues":[null,"a\\"\\n","00ff"]' in encode(tx)[0][1]
    assert b'"columnvalues":["NaN"' in encode(tx, **{"numeric-data-types-as-string": "1"})[0][1]


@pytest.mark.parametrize(
    ("options", "state", "message"),
    [
        (
            {"format-version": "3"},
            "0A000",
            "client sent format_version=3 but we only support format 2 or lower",
        ),
        ({"pretty-print": "x"}, "22023", 'could not parse value "x" for parameter "pretty-print"'),
        ({"bogus": "1"}, "22023", 'option "bogus" = "1" is unknown'),
    ],
)
def test_option_errors(options, state, message) -> None:
    with pytest.raises(PgError) as error:
        load_plugin("wal2json", options, PluginContext())
    assert (error.value.sqlstate, error.value.message) == (state, message)
