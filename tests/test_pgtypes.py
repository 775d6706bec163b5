"""pgtypes against a real PostgreSQL 15: text output and binary send byte for byte, and round trips."""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.adapt import Loader
from psycopg.pq import Format

from pgshim import pgtypes
from pgshim.pgtypes import (
    BY_NAME,
    BY_OID,
    binary_recv,
    binary_send,
    format_lsn,
    parse_lsn,
    text_in,
    text_out,
)

# (type as written in SQL, SQL literal, Python value)
CASES: list[tuple[str, str, object]] = [
    ("bool", "true", True),
    ("bool", "false", False),
    ("int2", "-32768", -32768),
    ("int4", "2147483647", 2147483647),
    ("int8", "-9223372036854775808", -9223372036854775808),
    ("oid", "4294967295", 4294967295),
    ("xid", "'12345'", 12345),
    ("float8", "0.1", 0.1),
    ("float8", "100", 100.0),
    ("float8", "1e15", 1e15),
    ("float8", "1e16", 1e16),
    ("float8", "123456789012345", 123456789012345.0),
    ("float8", "0.0001", 0.0001),
    ("float8", "0.00001", 1e-05),
    ("float8", "'-0'", -0.0),
    ("float8", "1.5e300", 1.5e300),
    ("float8", "5e-324", 5e-324),
    ("float8", "0.3333333333333333", 1 / 3),
    ("float8", "-1234.5678", -1234.5678),
    ("float8", "'NaN'", math.nan),
    ("float8", "'-Infinity'", -math.inf),
    ("float4", "0.1", 0.1),
    ("float4", "1234567", 1234567.0),
    ("float4", "123456", 123456.0),
    ("float4", "0.00001", 1e-05),
    ("float4", "3.4028235e38", 3.4028235e38),
    ("float4", "0.33333334", 1 / 3),
    ("float4", "'Infinity'", math.inf),
    ("numeric", "12345.678", Decimal("12345.678")),
    ("numeric", "-0.00012", Decimal("-0.00012")),
    ("numeric", "0", Decimal("0")),
    ("numeric", "0.000", Decimal("0.000")),
    ("numeric", "100000000", Decimal("100000000")),
    (
        "numeric",
        "123456789012345678901234567890.1234567890",
        Decimal("123456789012345678901234567890.1234567890"),
    ),
    ("numeric", "'NaN'", Decimal("NaN")),
    ("numeric", "'-Infinity'", Decimal("-Infinity")),
    ("numeric", "'Infinity'", Decimal("Infinity")),
    ("numeric", "'1e-20'", Decimal("1E-20")),
    ("numeric", "'-99990000.00010'", Decimal("-99990000.00010")),
    ("text", "'héllo wörld'", "héllo wörld"),
    ("varchar", "'abc'", "abc"),
    ("name", "'pg_catalog'", "pg_catalog"),
    ("bpchar", "'ab'", "ab"),
    ('"char"', "'a'", "a"),
    ("bytea", "'\\x00ff10'", b"\x00\xff\x10"),
    ("bytea", "''", b""),
    ("timestamptz", "'2024-01-02 03:04:05.5+00'", datetime(2024, 1, 2, 3, 4, 5, 500000, UTC)),
    (
        "timestamptz",
        "'1999-12-31 23:59:59.999999+00'",
        datetime(1999, 12, 31, 23, 59, 59, 999999, UTC),
    ),
    ("timestamptz", "'2000-01-01 00:00:00+00'", datetime(2000, 1, 1, tzinfo=UTC)),
    ("timestamptz", "'1970-01-01 00:00:00+00'", datetime(1970, 1, 1, tzinfo=UTC)),
    ("date", "'2024-02-29'", date(2024, 2, 29)),
    ("date", "'1999-01-01'", date(1999, 1, 1)),
    ("time", "'13:14:15.25'", time(13, 14, 15, 250000)),
    ("time", "'00:00:00'", time(0, 0)),
    ("interval", "'1 day 02:03:04.5'", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
    ("interval", "'-1 days -00:00:05'", -timedelta(days=1, seconds=5)),
    ("interval", "'0'", timedelta(0)),
    ("interval", "'4 days 04:00:00'", timedelta(hours=100)),
    ("interval", "'3 days'", timedelta(days=3)),
    ("interval", "'0.000001 sec'", timedelta(microseconds=1)),
    ("interval", "'-00:00:01'", timedelta(seconds=-1)),
    (
        "uuid",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ),
    ("inet", "'192.168.1.5/24'", ipaddress.ip_interface("192.168.1.5/24")),
    ("inet", "'10.0.0.1'", ipaddress.ip_interface("10.0.0.1")),
    ("inet", "'::1'", ipaddress.ip_interface("::1")),
    ("inet", "'2001:db8::1/64'", ipaddress.ip_interface("2001:db8::1/64")),
    ("inet", "'::ffff:1.2.3.4'", ipaddress.ip_interface("::ffff:1.2.3.4")),
    ("cidr", "'10.0.0.0/8'", ipaddress.ip_network("10.0.0.0/8")),
    ("cidr", "'2001:db8::/32'", ipaddress.ip_network("2001:db8::/32")),
    ("jsonb", """'{"a": 1, "b": [true, null]}'""", '{"a": 1, "b": [true, null]}'),
    ("json", """'{"a":1}'""", '{"a":1}'),
    ("pg_lsn", "'16/B374D848'", 0x16B374D848),
    ("pg_lsn", "'0/0'", 0),
    ("point", "'(1.5,-2)'", (1.5, -2.0)),
    ("macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03"),
    ("int2vector", "'1 2 3'", [1, 2, 3]),
    ("int2vector", "''", []),
    (
        "text[]",
        """'{a,"b c",NULL,"","NULL","x\\"y","back\\\\slash"}'""",
        ["a", "b c", None, "", "NULL", 'x"y', "back\\slash"],
    ),
    ("int8[]", "'{1,NULL,-3}'", [1, None, -3]),
    ("int4[]", "'{}'", []),
    ("int4[]", "'{{1,2},{3,4}}'", [[1, 2], [3, 4]]),
    ("name[]", "'{x,y}'", ["x", "y"]),
    ("float8[]", "'{1.5,NaN}'", [1.5, math.nan]),
    ("float4[]", "'{0.1,-2}'", [0.1, -2.0]),
    ("bool[]", "'{t,f}'", [True, False]),
    ("oid[]", "'{1,4294967295}'", [1, 4294967295]),
    ("jsonb[]", """'{"{\\"a\\": 1}",null}'""", ['{"a": 1}', None]),
    ("bytea[]", "'{\"\\\\x01ff\"}'", [b"\x01\xff"]),
]


class RawBinary(Loader):
    format = Format.BINARY

    def load(self, data: bytes) -> bytes:
        return bytes(data)


class RawText(Loader):
    format = Format.TEXT

    def load(self, data: bytes) -> str:
        return bytes(data).decode()


@pytest.fixture(scope="module")
def conn(pg_cluster) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as connection:
        connection.execute("SET TimeZone = 'UTC'; SET extra_float_digits = 1")
        for oid in range(1, 5000):
            connection.adapters.register_loader(oid, RawBinary)
            connection.adapters.register_loader(oid, RawText)
        yield connection


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and isinstance(b, Decimal) and a.is_nan():
        return b.is_nan()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return _same(list(a), list(b))
    return a == b


def _float4_value(value: object) -> object:
    """PostgreSQL stores float4: compare with the value rounded to single precision."""
    if isinstance(value, list):
        return [_float4_value(item) for item in value]
    return pgtypes.binary_recv(700, pgtypes.binary_send(700, value)) if value is not None else None


@pytest.mark.parametrize(("type_sql", "literal", "value"), CASES)
def test_text_out_matches_postgres(conn, type_sql: str, literal: str, value: object) -> None:
    oid = BY_NAME[type_sql].oid
    expected = conn.execute(f"SELECT CAST(({literal}) AS {type_sql})").fetchone()[0]
    assert text_out(oid, value) == expected


@pytest.mark.parametrize(("type_sql", "literal", "value"), CASES)
def test_binary_send_matches_postgres(conn, type_sql: str, literal: str, value: object) -> None:
    oid = BY_NAME[type_sql].oid
    cursor = conn.cursor(binary=True)
    expected = cursor.execute(f"SELECT CAST(({literal}) AS {type_sql})").fetchone()[0]
    assert binary_send(oid, value) == expected


@pytest.mark.parametrize(("type_sql", "literal", "value"), CASES)
def test_parses_postgres_output(conn, type_sql: str, literal: str, value: object) -> None:
    oid = BY_NAME[type_sql].oid
    text = conn.execute(f"SELECT CAST(({literal}) AS {type_sql})").fetchone()[0]
    data = conn.cursor(binary=True).execute(f"SELECT CAST(({literal}) AS {type_sql})").fetchone()[0]
    expected = _float4_value(value) if BY_NAME[type_sql].oid in (700, 1021) else value
    assert _same(binary_recv(oid, data), expected)
    assert _same(text_in(oid, text), expected)


def test_registry_matches_pg_type(conn) -> None:
    rows = conn.execute(
        "SELECT oid::int8::text, typname::text, format_type(oid, NULL), typlen::text,"
        " typcategory::text, typelem::int8::text FROM pg_type WHERE oid = ANY(%s::oid[])",
        [list(BY_OID)],
    ).fetchall()
    assert len(rows) == len(BY_OID)
    for oid, typname, sql_name, typlen, category, elem in rows:
        pg_type = BY_OID[int(oid)]
        assert (pg_type.name, pg_type.sql_name, pg_type.typlen, pg_type.category) == (
            typname,
            sql_name,
            int(typlen),
            category,
        )
        assert pg_type.elem_oid == int(elem)


def test_aliases() -> None:
    assert BY_NAME["integer"].oid == 23
    assert BY_NAME["bigint"].oid == 20
    assert BY_NAME["boolean"].oid == 16
    assert BY_NAME["double precision"].oid == 701
    assert BY_NAME["timestamp with time zone"].oid == 1184
    assert BY_NAME["character varying"].oid == 1043
    assert BY_NAME["real[]"].oid == 1021
    assert BY_NAME["_text"].oid == 1009
    assert pgtypes.lookup("INTEGER").oid == 23


@pytest.mark.parametrize(
    ("text", "pos"),
    [
        ("0/0", 0),
        ("0/00000000", 0),
        ("16/b374d848", 0x16B374D848),
        ("FFFFFFFF/FFFFFFFF", 2**64 - 1),
    ],
)
def test_parse_lsn(text: str, pos: int) -> None:
    assert parse_lsn(text) == pos


@pytest.mark.parametrize("text", ["", "0", "0/", "/0", "G/0", "123456789/0", "0/0/0", "x0/0"])
def test_parse_lsn_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_lsn(text)


def test_format_lsn() -> None:
    assert format_lsn(0) == "0/0"
    assert format_lsn(0x16B374D848) == "16/B374D848"
    assert format_lsn(0x7FF) == "0/7FF"


@given(st.integers(0, 2**64 - 1))
def test_lsn_round_trip(pos: int) -> None:
    assert parse_lsn(format_lsn(pos)) == pos


_utc_datetimes = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)
_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))

ROUND_TRIP = [
    (16, st.booleans()),
    (21, st.integers(-(2**15), 2**15 - 1)),
    (23, st.integers(-(2**31), 2**31 - 1)),
    (20, st.integers(-(2**63), 2**63 - 1)),
    (26, st.integers(0, 2**32 - 1)),
    (701, st.floats(allow_nan=False)),
    (1700, st.decimals(allow_nan=False, allow_infinity=False, places=6)),
    (25, _texts),
    (17, st.binary()),
    (1184, _utc_datetimes),
    (1082, st.dates()),
    (1083, st.times()),
    (1186, st.timedeltas(min_value=timedelta(days=-(10**6)), max_value=timedelta(days=10**6))),
    (2950, st.uuids()),
    (3220, st.integers(0, 2**64 - 1)),
    (1009, st.lists(st.one_of(st.none(), _texts))),
    (1016, st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))),
    (22, st.lists(st.integers(-(2**15), 2**15 - 1), max_size=5)),
]


@pytest.mark.parametrize(("oid", "strategy"), ROUND_TRIP, ids=[str(oid) for oid, _ in ROUND_TRIP])
def test_round_trips(oid: int, strategy: st.SearchStrategy) -> None:
    @given(strategy)
    def check(value: object) -> None:
        assert _same(binary_recv(oid, binary_send(oid, value)), value)
        assert _same(text_in(oid, text_out(oid, value)), value)

    check()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_numeric_round_trip_keeps_scale(value: Decimal) -> None:
    back = binary_recv(1700, binary_send(1700, value))
    assert back == value
    assert max(0, -back.as_tuple().exponent) == max(0, -value.as_tuple().exponent)


@given(st.floats(width=32, allow_nan=False))
def test_float4_shortest_round_trip(value: float) -> None:
    text = text_out(700, value)
    assert text_in(700, text) == value
