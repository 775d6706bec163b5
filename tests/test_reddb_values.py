import datetime as dt
import ipaddress
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.reddb.errors import ChangeDecodeError
from pgshim.reddb.values import (
    COMPRESSED_BLOB,
    COMPRESSED_TEXT,
    VALUE_TYPES,
    TypedValue,
    _interface,
    decode_value,
    encode_typed,
    encode_value,
)
from pgshim.spool.generate import sample_value

SAMPLED_CODES = [t.code for t in VALUE_TYPES if t.code not in (COMPRESSED_TEXT, COMPRESSED_BLOB)]


@given(st.sampled_from(SAMPLED_CODES), st.integers(0, 2**32))
def test_every_value_type_round_trips(code: int, seed: int) -> None:
    original = sample_value(code, random.Random(seed))
    raw = encode_typed(original)
    decoded, end = decode_value(raw, 0)
    assert end == len(raw)
    assert decoded.type_oid == original.type_oid
    assert decoded.value == original.value
    assert encode_typed(decoded) == raw
    if code != 5:  # long text becomes 0x85
        assert decoded.type_code == code


@pytest.mark.parametrize(
    ("raw", "code", "oid", "value"),
    [
        ("00", 0, 0, None),
        ("0101", 1, 16, True),
        ("02ffffffffffffffff", 2, 20, -1),
        ("03ffffffffffffffff", 3, 1700, Decimal(2**64 - 1)),
        ("04000000000000f83f", 4, 701, 1.5),
        ("0505616c696365", 5, 25, "alice"),
        ("0602beef", 6, 17, b"\xbe\xef"),
        ("0700f1536500000000", 7, 1184, dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)),
        ("08e803000000000000", 8, 1186, dt.timedelta(seconds=1)),
        ("09040a000001", 9, 869, None),
        ("0a08002b010203", 10, 829, "08:00:2b:01:02:03"),
        ("0b020000803f00000040", 11, 1021, [1.0, 2.0]),
        ("150f00000000000000", 21, 25, "+15"),
        ("161f4a0f00", 22, 25, "1.2.15"),
        ("170000000a08", 23, 650, None),
        ("1801000000", 24, 1082, dt.date(1970, 1, 2)),
        ("19e9030000", 25, 1083, dt.time(0, 0, 1, 1000)),
        ("1a3930000000000000", 26, 1700, Decimal("1.2345")),
        ("1b03", 27, 21, 3),
        ("1d0100000000000000", 29, 1184, dt.datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=dt.UTC)),
        ("1e0100000a", 30, 869, None),
        ("215000", 33, 23, 80),
        ("2240420f00", 34, 701, 1.0),
        ("2440420f0080841e00", 36, 600, (2.0, 1.0)),
        ("254252", 37, 1042, "BR"),
        ("28656e2d5553", 40, 1043, "en-US"),
        ("2b0700000000000000", 43, 20, 7),
        ("2f07000000", 47, 20, 7),
        ("3303555344023930000000000000", 51, 1700, Decimal("123.45")),
        ("3404312e3530", 52, 1700, Decimal("1.50")),
    ],
)
def test_value_bytes_decode_to_postgres_types(raw: str, code: int, oid: int, value: object) -> None:
    decoded, end = decode_value(bytes.fromhex(raw), 0)
    assert end == len(bytes.fromhex(raw))
    assert (decoded.type_code, decoded.type_oid) == (code, oid)
    if value is not None:
        assert decoded.value == value


def test_ip_values_render_as_inet_and_cidr() -> None:
    assert str(decode_value(bytes.fromhex("09040a000001"), 0)[0].value) == "10.0.0.1/32"
    assert str(decode_value(bytes.fromhex("1e0100000a"), 0)[0].value) == "10.0.0.1/32"
    assert str(decode_value(bytes.fromhex("170000000a08"), 0)[0].value) == "10.0.0.0/8"
    subnet = (
        bytes.fromhex("20")
        + (0x0A000000).to_bytes(4, "little")
        + (0xFFFF0000).to_bytes(4, "little")
    )
    assert str(decode_value(subnet, 0)[0].value) == "10.0.0.0/16"


def test_array_is_jsonb_text_and_keeps_element_types() -> None:
    raw = encode_value(28, [TypedValue(2, 20, 1), TypedValue(5, 25, "a"), TypedValue(0, 0, None)])
    decoded, _ = decode_value(raw, 0)
    assert decoded.value == '[1, "a", null]'
    assert encode_typed(decoded) == raw


@pytest.mark.parametrize(("plain", "compressed"), [(5, COMPRESSED_TEXT), (6, COMPRESSED_BLOB)])
def test_long_text_and_blob_are_zstd_compressed_like_reddb(plain: int, compressed: int) -> None:
    long_value = "repeat " * 400 if plain == 5 else b"\x01\x02" * 1500
    raw = encode_value(plain, long_value)
    assert raw[0] == compressed
    decoded, end = decode_value(raw, 0)
    assert end == len(raw)
    assert decoded.value == long_value
    assert decoded.type_oid == (25 if plain == 5 else 17)
    short = encode_value(plain, long_value[:10])
    assert short[0] == plain


def test_truncated_values_report_their_position() -> None:
    prefix = b"\x01\x01"  # a Boolean before the bad value
    for raw in ["02010000", "0505616c", "0b0300000000", "33035553", "0d00"]:
        with pytest.raises(ChangeDecodeError) as err:
            decode_value(prefix + bytes.fromhex(raw), 2)
        assert err.value.position is not None and err.value.position >= 2
        assert "truncated" in err.value.reason


def test_unknown_type_byte_is_an_error_with_position() -> None:
    with pytest.raises(ChangeDecodeError) as err:
        decode_value(b"\x00\x00\x99", 2)
    assert err.value.position == 2
    assert "unknown value type byte 153" in err.value.reason


def test_out_of_range_date_is_an_error_not_a_crash() -> None:
    with pytest.raises(ChangeDecodeError) as err:
        decode_value(bytes.fromhex("18ffffff7f"), 0)
    assert "out of range" in err.value.reason


@given(st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)))
def test_ip_interfaces_from_the_integer_equal_those_from_the_address(raw: bytes) -> None:
    expected = ipaddress.ip_interface(ipaddress.ip_address(raw))
    built = _interface(raw)
    assert (type(built), built, built.network, str(built)) == (
        type(expected),
        expected,
        expected.network,
        str(expected),
    )
