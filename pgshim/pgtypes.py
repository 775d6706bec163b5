"""PostgreSQL types: OIDs, names as format_type prints them, text output/input, binary send/recv.

Output follows a PostgreSQL 15 server with DateStyle ISO, IntervalStyle postgres, TimeZone UTC and
extra_float_digits >= 1 (shortest round-trip floats).
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial


@dataclass(frozen=True, slots=True)
class PgType:
    oid: int
    name: str  # pg_type.typname
    sql_name: str  # format_type(oid, NULL)
    typlen: int  # -1 varlena, -2 cstring
    category: str  # pg_type.typcategory
    elem_oid: int = 0  # element type of arrays (and of int2vector/oidvector)


# oid, typname, format_type, typlen, typcategory, array oid (0 = none registered)
_SCALARS: list[tuple[int, str, str, int, str, int]] = [
    (16, "bool", "boolean", 1, "B", 1000),
    (17, "bytea", "bytea", -1, "U", 1001),
    (18, "char", '"char"', 1, "Z", 1002),
    (19, "name", "name", 64, "S", 1003),  # typelem 18: a fixed array of "char"
    (20, "int8", "bigint", 8, "N", 1016),
    (21, "int2", "smallint", 2, "N", 1005),
    (23, "int4", "integer", 4, "N", 1007),
    (25, "text", "text", -1, "S", 1009),
    (26, "oid", "oid", 4, "N", 1028),
    (28, "xid", "xid", 4, "U", 1011),
    (114, "json", "json", -1, "U", 199),
    (600, "point", "point", 16, "G", 1017),  # typelem 701
    (650, "cidr", "cidr", -1, "I", 651),
    (700, "float4", "real", 4, "N", 1021),
    (701, "float8", "double precision", 8, "N", 1022),
    (705, "unknown", "unknown", -2, "X", 0),
    (829, "macaddr", "macaddr", 6, "U", 1040),
    (869, "inet", "inet", -1, "I", 1041),
    (1042, "bpchar", "character", -1, "S", 1014),
    (1043, "varchar", "character varying", -1, "S", 1015),
    (1082, "date", "date", 4, "D", 1182),
    (1083, "time", "time without time zone", 8, "D", 1183),
    (1114, "timestamp", "timestamp without time zone", 8, "D", 1115),
    (1184, "timestamptz", "timestamp with time zone", 8, "D", 1185),
    (1186, "interval", "interval", 16, "T", 1187),
    (1700, "numeric", "numeric", -1, "N", 1231),
    (2205, "regclass", "regclass", 4, "N", 2210),
    (2206, "regtype", "regtype", 4, "N", 2211),
    (2249, "record", "record", -1, "P", 2287),
    (2277, "anyarray", "anyarray", -1, "P", 0),
    (2278, "void", "void", 4, "P", 0),
    (2279, "trigger", "trigger", 4, "P", 0),
    (2950, "uuid", "uuid", 16, "U", 2951),
    (3220, "pg_lsn", "pg_lsn", 8, "U", 3221),
    (3802, "jsonb", "jsonb", -1, "U", 3807),
]

BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT2VECTOR, INT4, TEXT, OID, XID = (
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    25,
    26,
    28,
)
OIDVECTOR = 30
JSON, POINT, CIDR, FLOAT4, FLOAT8, UNKNOWN, MACADDR, INET = 114, 600, 650, 700, 701, 705, 829, 869
BPCHAR, VARCHAR, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL = (
    1042,
    1043,
    1082,
    1083,
    1114,
    1184,
    1186,
)
NUMERIC, REGCLASS, REGTYPE, VOID, UUID, PG_LSN, JSONB = 1700, 2205, 2206, 2278, 2950, 3220, 3802
OID_ARRAY, TEXT_ARRAY, NAME_ARRAY, INT4_ARRAY, INT8_ARRAY = 1028, 1009, 1003, 1007, 1016


_SCALAR_ELEMS = {NAME: CHAR, POINT: FLOAT8}  # fixed-length types PostgreSQL subscripts


def _build_registry() -> dict[int, PgType]:
    types: dict[int, PgType] = {}
    for oid, name, sql_name, typlen, category, array_oid in _SCALARS:
        types[oid] = PgType(oid, name, sql_name, typlen, category, _SCALAR_ELEMS.get(oid, 0))
        if array_oid:  # an array of a pseudo-type (record[]) is a pseudo-type too
            array_category = "P" if category == "P" else "A"
            types[array_oid] = PgType(
                array_oid, "_" + name, sql_name + "[]", -1, array_category, oid
            )
    types[INT2VECTOR] = PgType(INT2VECTOR, "int2vector", "int2vector", -1, "A", INT2)
    types[OIDVECTOR] = PgType(OIDVECTOR, "oidvector", "oidvector", -1, "A", OID)
    return types


BY_OID: dict[int, PgType] = _build_registry()

_ALIASES = {
    "integer": INT4,
    "int": INT4,
    "smallint": INT2,
    "bigint": INT8,
    "boolean": BOOL,
    "real": FLOAT4,
    "float": FLOAT8,
    "double precision": FLOAT8,
    "double": FLOAT8,
    "decimal": NUMERIC,
    "character varying": VARCHAR,
    "character": BPCHAR,
    "char": BPCHAR,  # SQL's char(n); the internal one-byte type is '"char"'
    '"char"': CHAR,
    "timestamptz": TIMESTAMPTZ,
    "timestamp": TIMESTAMP,
    "time": TIME,
}


def _build_names() -> dict[str, PgType]:
    names: dict[str, PgType] = {}
    for pg_type in BY_OID.values():
        names.setdefault(pg_type.sql_name, pg_type)
    for pg_type in BY_OID.values():
        names[pg_type.name] = pg_type
        if pg_type.category == "A" and pg_type.name.startswith("_"):
            names[pg_type.name[1:] + "[]"] = pg_type
    names["char"] = BY_OID[BPCHAR]
    names['"char"'] = BY_OID[CHAR]
    for alias, oid in _ALIASES.items():
        names[alias] = BY_OID[oid]
        array = next((t for t in BY_OID.values() if t.category == "A" and t.elem_oid == oid), None)
        if array is not None and alias + "[]" not in names:
            names[alias + "[]"] = array
    return names


BY_NAME: dict[str, PgType] = _build_names()


def format_type(oid: int, typmod: int = -1) -> str:
    """PostgreSQL's format_type(oid, typmod) for the types pgshim serves: ``character(2)``,
    ``character varying(5)``, ``numeric(10,2)``."""
    name = BY_OID[oid].sql_name
    if typmod >= 4 and oid in (1042, 1043):
        return f"{name}({typmod - 4})"
    if typmod >= 4 and oid == 1700:
        return f"numeric({(typmod - 4) >> 16},{(typmod - 4) & 0xFFFF})"
    return name


def lookup(name_or_oid: str | int) -> PgType:
    """The type for an OID or a (case-insensitive) type name; KeyError if unknown."""
    if isinstance(name_or_oid, int):
        return BY_OID[name_or_oid]
    key = name_or_oid.strip()
    return BY_NAME[key] if key in BY_NAME else BY_NAME[key.lower()]


# --- positions -------------------------------------------------------------------------------

_LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def format_lsn(pos: int) -> str:
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    match = _LSN_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'invalid input syntax for type pg_lsn: "{text}"')
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


# --- floats ----------------------------------------------------------------------------------


def _shortest_digits(repr_text: str) -> tuple[str, int]:
    """Significant digits (no leading/trailing zeros) and the decimal exponent of the first."""
    _sign, digit_tuple, exponent = Decimal(repr_text).as_tuple()
    digits = "".join(map(str, digit_tuple))
    significant = digits.lstrip("0")
    if not significant:
        return "0", 0
    return significant.rstrip("0"), int(exponent) + len(digits) - 1 - (
        len(digits) - len(significant)
    )


def _format_shortest(value: float, repr_text: str, fixed_limit: int) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits, exponent = _shortest_digits(repr_text.lstrip("-"))
    if digits == "0":
        return sign + "0"
    if -4 <= exponent < fixed_limit:
        if exponent < 0:
            return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
        if len(digits) <= exponent + 1:
            return sign + digits + "0" * (exponent + 1 - len(digits))
        return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _to_float4(value: float) -> float:
    try:
        return struct.unpack(">f", struct.pack(">f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def _float4_repr(value: float) -> str:
    for precision in range(1, 10):
        text = f"{value:.{precision - 1}e}"
        if _to_float4(float(text)) == value:
            return text
    return repr(value)


def float8_out(value: float) -> str:
    number = float(value)
    text = repr(number)
    # Python's shortest repr already is PostgreSQL's text in fixed notation below 1e15
    if "e" not in text and "n" not in text and -1e15 < number < 1e15:
        return text[:-2] if text.endswith(".0") else text
    return _format_shortest(number, text, 15)


def float4_out(value: float) -> str:
    value = _to_float4(float(value))
    if math.isnan(value) or math.isinf(value):
        return _format_shortest(value, "0", 6)
    return _format_shortest(value, _float4_repr(value), 6)


# --- dates and times -------------------------------------------------------------------------

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_DATE = date(2000, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _fraction(microseconds: int) -> str:
    return ("." + f"{microseconds:06d}".rstrip("0")) if microseconds else ""


def _time_out(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{_fraction(value.microsecond)}"


def _date_out(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _timestamptz_out(value: datetime) -> str:
    if value.tzinfo is UTC:
        # "YYYY-MM-DD HH:MM:SS[.ffffff]+00:00"; PostgreSQL drops the fraction's trailing zeros
        text = value.isoformat(" ")[:-6]
        return (text.rstrip("0") if value.microsecond else text) + "+00"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{_date_out(value.date())} {_time_out(value.time())}+00"


def _timestamp_out(value: datetime) -> str:
    return f"{_date_out(value.date())} {_time_out(value.time())}"


def interval_fields(value: timedelta) -> tuple[int, int, int]:
    """(microseconds, days, months) of an interval; the sign of a negative timedelta applies to
    both its days and its time part, as in PostgreSQL's '-1 days -00:00:05'."""
    negative = value < timedelta(0)
    magnitude = -value if negative else value
    micros = magnitude.seconds * 1_000_000 + magnitude.microseconds
    days = magnitude.days
    return (-micros, -days, 0) if negative else (micros, days, 0)


def _interval_part(value: int, unit: str, state: list[bool]) -> str:
    is_zero, is_before = state
    if value == 0:
        return ""
    text = f"{'' if is_zero else ' '}{'+' if is_before and value > 0 else ''}{value} {unit}"
    text += "" if value == 1 else "s"
    state[0], state[1] = False, value < 0
    return text


def _interval_out_fields(micros: int, days: int, months: int) -> str:
    state = [True, False]  # is_zero, is_before
    years, mons = int(months / 12), months - int(months / 12) * 12
    text = _interval_part(years, "year", state)
    text += _interval_part(mons, "mon", state)
    text += _interval_part(days, "day", state)
    is_zero, is_before = state
    if is_zero or micros != 0:
        minus = micros < 0
        magnitude = abs(micros)
        hours, rest = divmod(magnitude, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, fraction = divmod(rest, 1_000_000)
        text += f"{'' if is_zero else ' '}{'-' if minus else ('+' if is_before else '')}"
        text += f"{hours:02d}:{minutes:02d}:{seconds:02d}{_fraction(fraction)}"
    return text


def _interval_out(value: timedelta) -> str:
    return _interval_out_fields(*interval_fields(value))


# --- network types ---------------------------------------------------------------------------


def _inet_out(value: object) -> str:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return f"{_address_out(value.network_address)}/{value.prefixlen}"
    if isinstance(value, str):
        value = ipaddress.ip_interface(value)
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        if value.network.prefixlen == value.max_prefixlen:
            return _address_out(value.ip)
        return f"{_address_out(value.ip)}/{value.network.prefixlen}"
    assert isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
    return _address_out(value)


def _address_out(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


# --- arrays ----------------------------------------------------------------------------------

_ARRAY_SPACE = " \t\n\r\v\f"  # array_isspace(), narrower than str.isspace()
_ARRAY_SPECIAL = set('{},"\\' + _ARRAY_SPACE)


def _array_element_out(text: str) -> str:
    if text == "" or text.upper() == "NULL" or any(ch in _ARRAY_SPECIAL for ch in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _array_out(elem_oid: int, value: list) -> str:
    parts = []
    for item in value:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list | tuple) and elem_oid != POINT:
            parts.append(_array_out(elem_oid, list(item)))
        else:
            parts.append(_array_element_out(text_out(elem_oid, item)))
    return "{" + ",".join(parts) + "}"


# --- numeric ---------------------------------------------------------------------------------


def _numeric_out(value: object) -> str:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "Infinity" if number > 0 else "-Infinity"
    text = format(number, "f")
    return "0" + text[2:] if text.startswith("-0") and not number else text


# --- text output -----------------------------------------------------------------------------


def _str(value: object) -> str:
    return str(value)


def _bool_out(value: object) -> str:
    return "t" if value else "f"


def _bytea_out(value: object) -> str:
    return "\\x" + bytes(value).hex()  # type: ignore[arg-type]


def _point_out(value: object) -> str:
    x, y = value  # type: ignore[misc]
    return f"({float8_out(x)},{float8_out(y)})"


def _int_vector_out(value: object) -> str:
    return " ".join(str(int(item)) for item in value)  # type: ignore[attr-defined]


def _lsn_out(value: object) -> str:
    return value if isinstance(value, str) else format_lsn(int(value))  # type: ignore[arg-type]


_TEXT_OUT: dict[int, Callable[[object], str]] = {
    BOOL: _bool_out,
    BYTEA: _bytea_out,
    FLOAT4: lambda v: float4_out(float(v)),  # type: ignore[arg-type]
    FLOAT8: float8_out,  # type: ignore[dict-item]
    NUMERIC: _numeric_out,
    TIMESTAMPTZ: _timestamptz_out,  # type: ignore[dict-item]
    TIMESTAMP: lambda v: _timestamp_out(v),  # type: ignore[arg-type]
    DATE: lambda v: _date_out(v),  # type: ignore[arg-type]
    TIME: lambda v: _time_out(v),  # type: ignore[arg-type]
    INTERVAL: lambda v: _interval_out(v),  # type: ignore[arg-type]
    INET: _inet_out,
    CIDR: _inet_out,
    POINT: _point_out,
    PG_LSN: _lsn_out,
    INT2VECTOR: _int_vector_out,
    OIDVECTOR: _int_vector_out,
    VOID: lambda v: "",
    MACADDR: lambda v: str(v).lower(),
}


def text_renderer(oid: int) -> Callable[[object], str]:
    """text_out for one type, looked up once (for encoders that render many values of it)."""
    return _TEXT_OUT.get(oid) or partial(text_out, oid)


def text_out(oid: int, value: object) -> str:
    """PostgreSQL's text output of value as type oid (NULL is the caller's business)."""
    render = _TEXT_OUT.get(oid)
    if render is not None:
        return render(value)
    pg_type = BY_OID.get(oid)
    if pg_type is not None and pg_type.category == "A":
        return _array_out(pg_type.elem_oid, list(value))  # type: ignore[call-overload]
    if isinstance(value, bool):
        return _bool_out(value)
    if isinstance(value, bytes):
        return _bytea_out(value)
    return str(value)


# --- binary send -----------------------------------------------------------------------------

_NUMERIC_POS, _NUMERIC_NEG, _NUMERIC_NAN = 0x0000, 0x4000, 0xC000
_NUMERIC_PINF, _NUMERIC_NINF = 0xD000, 0xF000


def _numeric_send(value: object) -> bytes:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number.is_nan():
        return struct.pack(">hhHh", 0, 0, _NUMERIC_NAN, 0)
    if number.is_infinite():
        # numeric_send reads dscale out of the special value's short header: 32 for infinities
        return struct.pack(">hhHh", 0, 0, _NUMERIC_PINF if number > 0 else _NUMERIC_NINF, 32)
    sign, digit_tuple, exponent = number.as_tuple()
    exponent = int(exponent)
    dscale = max(0, -exponent)
    digits = ("".join(map(str, digit_tuple)) + "0" * max(0, exponent)).rjust(dscale, "0")
    integer_part = digits[: len(digits) - dscale] if dscale else digits
    fraction_part = digits[len(digits) - dscale :] if dscale else ""
    integer_part = integer_part.zfill(-(-len(integer_part) // 4) * 4)
    fraction_part = fraction_part.ljust(-(-len(fraction_part) // 4) * 4, "0")
    groups = [int(integer_part[i : i + 4]) for i in range(0, len(integer_part), 4)]
    weight = len(groups) - 1
    groups += [int(fraction_part[i : i + 4]) for i in range(0, len(fraction_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    header = struct.pack(
        ">hhHh", len(groups), weight, _NUMERIC_NEG if sign and groups else _NUMERIC_POS, dscale
    )
    return header + struct.pack(f">{len(groups)}h", *groups)


def _timestamptz_send(value: object) -> bytes:
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return struct.pack(">q", (value - PG_EPOCH) // _MICROSECOND)


def _timestamp_send(value: object) -> bytes:
    assert isinstance(value, datetime)
    return struct.pack(">q", (value.replace(tzinfo=UTC) - PG_EPOCH) // _MICROSECOND)


def _time_send(value: object) -> bytes:
    assert isinstance(value, time)
    micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
    return struct.pack(">q", micros + value.microsecond)


def _interval_send(value: object) -> bytes:
    assert isinstance(value, timedelta)
    return struct.pack(">qii", *interval_fields(value))


def _inet_send(value: object, is_cidr: bool) -> bytes:
    if isinstance(value, str):
        value = ipaddress.ip_network(value) if is_cidr else ipaddress.ip_interface(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        address, bits = value.network_address, value.prefixlen
    elif isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        address, bits = value.ip, value.network.prefixlen
    else:
        assert isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
        address, bits = value, value.max_prefixlen
    family = 2 if address.version == 4 else 3
    packed = address.packed
    return struct.pack(">BBBB", family, bits, 1 if is_cidr else 0, len(packed)) + packed


def _array_dims(value: list) -> list[int]:
    dims = [len(value)]
    first = value[0] if value else None
    while isinstance(first, list):
        dims.append(len(first))
        first = first[0] if first else None
    return dims


def _flatten(value: list, depth: int) -> list:
    if depth == 1:
        return list(value)
    return [item for sub in value for item in _flatten(sub, depth - 1)]


def _array_send(elem_oid: int, value: list, lower_bound: int = 1, force_1d: bool = False) -> bytes:
    if not value and not force_1d:
        return struct.pack(">iiI", 0, 0, elem_oid)
    dims = [len(value)] if elem_oid == POINT or force_1d else _array_dims(value)
    items = _flatten(value, len(dims))
    has_null = any(item is None for item in items)
    out = bytearray(struct.pack(">iiI", len(dims), 1 if has_null else 0, elem_oid))
    for dim in dims:
        out += struct.pack(">ii", dim, lower_bound)
    for item in items:
        if item is None:
            out += struct.pack(">i", -1)
        else:
            data = binary_send(elem_oid, item)
            out += struct.pack(">i", len(data)) + data
    return bytes(out)


def _text_send(value: object) -> bytes:
    return str(value).encode()


def _char_send(value: object) -> bytes:
    return str(value).encode()[:1]


def _macaddr_send(value: object) -> bytes:
    return bytes(int(part, 16) for part in re.split(r"[:\-.]", str(value)) if part)


def _uuid_send(value: object) -> bytes:
    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes


_BINARY_SEND: dict[int, Callable[[object], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    BYTEA: lambda v: bytes(v),  # type: ignore[call-overload]
    CHAR: _char_send,
    INT2: lambda v: struct.pack(">h", v),
    INT4: lambda v: struct.pack(">i", v),
    INT8: lambda v: struct.pack(">q", v),
    OID: lambda v: struct.pack(">I", v),
    XID: lambda v: struct.pack(">I", v),
    REGCLASS: lambda v: struct.pack(">I", v),
    REGTYPE: lambda v: struct.pack(">I", lookup(v).oid if isinstance(v, str) else v),
    FLOAT4: lambda v: struct.pack(">f", v),
    FLOAT8: lambda v: struct.pack(">d", v),
    NUMERIC: _numeric_send,
    TIMESTAMPTZ: _timestamptz_send,
    TIMESTAMP: _timestamp_send,
    DATE: lambda v: struct.pack(">i", (v - PG_EPOCH_DATE).days),  # type: ignore[operator]
    TIME: _time_send,
    INTERVAL: _interval_send,
    UUID: _uuid_send,
    INET: lambda v: _inet_send(v, False),
    CIDR: lambda v: _inet_send(v, True),
    JSONB: lambda v: b"\x01" + str(v).encode(),
    PG_LSN: lambda v: struct.pack(">Q", parse_lsn(v) if isinstance(v, str) else v),
    POINT: lambda v: struct.pack(">dd", *v),  # type: ignore[misc]
    MACADDR: _macaddr_send,
    VOID: lambda v: b"",
    INT2VECTOR: lambda v: _array_send(INT2, list(v), 0, True),  # type: ignore[call-overload]
    OIDVECTOR: lambda v: _array_send(OID, list(v), 0, True),  # type: ignore[call-overload]
}


def binary_send(oid: int, value: object) -> bytes:
    """The type's send function: the bytes of a binary-format column value."""
    send = _BINARY_SEND.get(oid)
    if send is not None:
        return send(value)
    pg_type = BY_OID.get(oid)
    if pg_type is not None and pg_type.category == "A":
        return _array_send(pg_type.elem_oid, list(value))  # type: ignore[call-overload]
    return _text_send(value)


# --- text input ------------------------------------------------------------------------------


def _bool_in(text: str) -> bool:
    word = text.strip().lower()
    if word in ("t", "true", "y", "yes", "on", "1") or (len(word) > 1 and "true".startswith(word)):
        return True
    if word in ("f", "false", "n", "no", "off", "0") or (
        len(word) > 1 and "false".startswith(word)
    ):
        return False
    raise ValueError(f'invalid input syntax for type boolean: "{text}"')


def _bytea_in(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\":
            if text[i + 1 : i + 2] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(text[i + 1 : i + 4], 8))
                i += 4
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def _float_in(text: str) -> float:
    word = text.strip()
    lowered = word.lower()
    specials = {"infinity": math.inf, "-infinity": -math.inf, "+infinity": math.inf}
    if lowered in specials:
        return specials[lowered]
    if lowered == "nan":
        return math.nan
    return float(word)


def _numeric_in(text: str) -> Decimal:
    word = text.strip()
    lowered = word.lower()
    if lowered in ("infinity", "+infinity", "inf"):
        return Decimal("Infinity")
    if lowered in ("-infinity", "-inf"):
        return Decimal("-Infinity")
    try:
        return Decimal(word)
    except InvalidOperation:
        raise ValueError(f'invalid input syntax for type numeric: "{text}"') from None


def _timestamptz_in(text: str) -> datetime:
    word = text.strip()
    if re.search(r"[+-]\d{2}$", word):
        word += ":00"
    value = datetime.fromisoformat(word)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_INTERVAL_UNITS = {
    "year": ("months", 12),
    "mon": ("months", 1),
    "month": ("months", 1),
    "week": ("days", 7),
    "day": ("days", 1),
    "hour": ("micros", 3_600_000_000),
    "min": ("micros", 60_000_000),
    "minute": ("micros", 60_000_000),
    "sec": ("micros", 1_000_000),
    "second": ("micros", 1_000_000),
}
_INTERVAL_TOKEN = re.compile(
    r"\s*(?:([+-]?\d+(?:\.\d+)?)\s*([a-z]+)|([+-]?)(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)",
    re.IGNORECASE,
)


def interval_in_fields(text: str) -> tuple[int, int, int]:
    """(microseconds, days, months) of a 'postgres'-style interval text."""
    fields = {"micros": 0, "days": 0, "months": 0}
    position, word = 0, text.strip()
    while position < len(word):
        match = _INTERVAL_TOKEN.match(word, position)
        if match is None:
            raise ValueError(f'invalid input syntax for type interval: "{text}"')
        position = match.end()
        if match.group(2):
            unit = match.group(2).lower().rstrip("s")
            if unit not in _INTERVAL_UNITS:
                raise ValueError(f'invalid input syntax for type interval: "{text}"')
            field, scale = _INTERVAL_UNITS[unit]
            fields[field] += int(Decimal(match.group(1)) * scale)
        else:
            seconds = Decimal(match.group(6) or "0")
            micros = (int(match.group(4)) * 3600 + int(match.group(5)) * 60) * 1_000_000
            micros += int(seconds * 1_000_000)
            fields["micros"] += -micros if match.group(3) == "-" else micros
    return fields["micros"], fields["days"], fields["months"]


def _interval_in(text: str) -> timedelta:
    micros, days, months = interval_in_fields(text)
    return timedelta(days=days + months * 30, microseconds=micros)


def _inet_in(text: str) -> object:
    return ipaddress.ip_interface(text.strip())


def _cidr_in(text: str) -> object:
    return ipaddress.ip_network(text.strip())


def _split_array(text: str) -> list:
    """Parse a '{...}' array literal into nested lists of str / None."""
    position = 0

    def parse_list() -> list:
        nonlocal position
        assert text[position] == "{"
        position += 1
        items: list = []
        while True:
            while text[position] in _ARRAY_SPACE:
                position += 1
            char = text[position]
            if char == "}":
                position += 1
                return items
            if char == ",":
                position += 1
                continue
            if char == "{":
                items.append(parse_list())
            elif char == '"':
                position += 1
                chars = []
                while text[position] != '"':
                    if text[position] == "\\":
                        position += 1
                    chars.append(text[position])
                    position += 1
                position += 1
                items.append("".join(chars))
            else:
                start = position
                while text[position] not in ",}":
                    position += 1
                raw = text[start:position].strip(_ARRAY_SPACE)
                items.append(None if raw.upper() == "NULL" else raw)

    text = text.strip()
    if text.startswith("["):  # explicit bounds: "[0:1]={...}"
        text = text[text.index("=") + 1 :]
    if not text.startswith("{"):
        raise ValueError(f'malformed array literal: "{text}"')
    return parse_list()


def _array_in(elem_oid: int, text: str) -> list:
    def convert(items: list) -> list:
        return [
            convert(item)
            if isinstance(item, list)
            else (None if item is None else text_in(elem_oid, item))
            for item in items
        ]

    return convert(_split_array(text))


def _point_in(text: str) -> tuple[float, float]:
    x, y = text.strip().strip("()").split(",")
    return _float_in(x), _float_in(y)


_TEXT_IN: dict[int, Callable[[str], object]] = {
    BOOL: _bool_in,
    BYTEA: _bytea_in,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    XID: int,
    FLOAT4: lambda t: _to_float4(_float_in(t)),
    FLOAT8: _float_in,
    NUMERIC: _numeric_in,
    TIMESTAMPTZ: _timestamptz_in,
    TIMESTAMP: lambda t: datetime.fromisoformat(t.strip()),
    DATE: lambda t: date.fromisoformat(t.strip()),
    TIME: lambda t: time.fromisoformat(t.strip()),
    INTERVAL: _interval_in,
    UUID: lambda t: uuid.UUID(t.strip()),
    INET: _inet_in,
    CIDR: _cidr_in,
    PG_LSN: parse_lsn,
    POINT: _point_in,
    INT2VECTOR: lambda t: [int(part) for part in t.split()],
    OIDVECTOR: lambda t: [int(part) for part in t.split()],
    MACADDR: lambda t: t.strip().lower(),
    VOID: lambda t: None,
}


def text_in(oid: int, text: str) -> object:
    """Parse a text-format value (e.g. a Bind parameter in format 0); ValueError if malformed."""
    parse = _TEXT_IN.get(oid)
    if parse is not None:
        return parse(text)
    pg_type = BY_OID.get(oid)
    if pg_type is not None and pg_type.category == "A":
        return _array_in(pg_type.elem_oid, text)
    return text


# --- binary receive --------------------------------------------------------------------------


def _numeric_recv(data: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack_from(">hhHh", data)
    if sign == _NUMERIC_NAN:
        return Decimal("NaN")
    if sign in (_NUMERIC_PINF, _NUMERIC_NINF):
        return Decimal("Infinity" if sign == _NUMERIC_PINF else "-Infinity")
    groups = struct.unpack_from(f">{ndigits}h", data, 8)
    unscaled = 0
    for group in groups:
        unscaled = unscaled * 10000 + group
    # the value is unscaled * 10^shift; rewrite it with exactly dscale digits after the point
    shift = 4 * (weight - ndigits + 1)
    if shift + dscale >= 0:
        unscaled *= 10 ** (shift + dscale)
    else:
        unscaled //= 10 ** -(shift + dscale)
    digits = tuple(int(ch) for ch in str(unscaled))
    return Decimal((1 if sign == _NUMERIC_NEG else 0, digits, -dscale))


def _array_recv(data: bytes) -> list:
    ndim, _flags, elem_oid = struct.unpack_from(">iiI", data)
    offset = 12
    dims = []
    for _ in range(ndim):
        dim, _lower = struct.unpack_from(">ii", data, offset)
        dims.append(dim)
        offset += 8
    items: list = []
    for _ in range(math.prod(dims) if dims else 0):
        (length,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if length < 0:
            items.append(None)
        else:
            items.append(binary_recv(elem_oid, data[offset : offset + length]))
            offset += length
    for dim in reversed(dims[1:]):
        items = [items[i : i + dim] for i in range(0, len(items), dim)]
    return items


def _inet_recv(data: bytes) -> object:
    family, bits, is_cidr, length = struct.unpack_from(">BBBB", data)
    address = ipaddress.ip_address(data[4 : 4 + length])
    if is_cidr:
        return ipaddress.ip_network(f"{address}/{bits}")
    return ipaddress.ip_interface(f"{address}/{bits}")


def _timestamptz_recv(data: bytes) -> datetime:
    return PG_EPOCH + timedelta(microseconds=struct.unpack(">q", data)[0])


def _time_recv(data: bytes) -> time:
    micros = struct.unpack(">q", data)[0]
    return (datetime.min + timedelta(microseconds=micros)).time()


def _interval_recv(data: bytes) -> timedelta:
    micros, days, months = struct.unpack(">qii", data)
    return timedelta(days=days + months * 30, microseconds=micros)


_BINARY_RECV: dict[int, Callable[[bytes], object]] = {
    BOOL: lambda d: d != b"\x00",
    BYTEA: bytes,
    CHAR: lambda d: d.decode(),
    INT2: lambda d: struct.unpack(">h", d)[0],
    INT4: lambda d: struct.unpack(">i", d)[0],
    INT8: lambda d: struct.unpack(">q", d)[0],
    OID: lambda d: struct.unpack(">I", d)[0],
    XID: lambda d: struct.unpack(">I", d)[0],
    REGCLASS: lambda d: struct.unpack(">I", d)[0],
    REGTYPE: lambda d: struct.unpack(">I", d)[0],
    FLOAT4: lambda d: struct.unpack(">f", d)[0],
    FLOAT8: lambda d: struct.unpack(">d", d)[0],
    NUMERIC: _numeric_recv,
    TIMESTAMPTZ: _timestamptz_recv,
    TIMESTAMP: lambda d: _timestamptz_recv(d).replace(tzinfo=None),
    DATE: lambda d: PG_EPOCH_DATE + timedelta(days=struct.unpack(">i", d)[0]),
    TIME: _time_recv,
    INTERVAL: _interval_recv,
    UUID: lambda d: uuid.UUID(bytes=bytes(d)),
    INET: _inet_recv,
    CIDR: _inet_recv,
    JSONB: lambda d: bytes(d[1:]).decode(),
    PG_LSN: lambda d: struct.unpack(">Q", d)[0],
    POINT: lambda d: struct.unpack(">dd", d),
    MACADDR: lambda d: ":".join(f"{b:02x}" for b in d),
    VOID: lambda d: None,
    INT2VECTOR: _array_recv,
    OIDVECTOR: _array_recv,
}


def binary_recv(oid: int, data: bytes) -> object:
    """Parse a binary-format value (e.g. a Bind parameter in format 1)."""
    receive = _BINARY_RECV.get(oid)
    if receive is not None:
        return receive(bytes(data))
    pg_type = BY_OID.get(oid)
    if pg_type is not None and pg_type.category == "A":
        return _array_recv(bytes(data))
    return bytes(data).decode()


__all__ = [
    "BY_NAME",
    "BY_OID",
    "PgType",
    "binary_recv",
    "binary_send",
    "format_lsn",
    "lookup",
    "parse_lsn",
    "text_in",
    "text_out",
]
