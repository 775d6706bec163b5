# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled ingestion core: RedDB table-row entities decoded into the reference's objects.

``decode_row`` gives exactly what ``pgshim.reddb.entity.decode_entity`` gives for a table row
(positional or named) without embeddings or cross references, which is nearly every record of
a spool. The common value types are read here; the others go to the reference ``decode_value``.
Anything else, and anything that does not read cleanly, returns None: the reference decoder
then runs from the start and reports the error exactly as it always does.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.datetime cimport (
    datetime_day,
    datetime_hour,
    datetime_microsecond,
    datetime_minute,
    datetime_month,
    datetime_second,
    datetime_tzinfo,
    datetime_year,
    import_datetime,
    timedelta_new,
)
from cpython.ref cimport Py_INCREF, PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8
from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef enum:
    MAX_FIELDS = 16
    MEMBER_OBJECT_EX = 16  # T_OBJECT_EX: what __slots__ fields are
    MEMBER_READONLY = 1


cdef class _Layout:
    """Where a slotted class keeps each of its fields in its objects: an object is made with
    its fields written in place, as the fields' own descriptors would write them (calling each
    descriptor costs more than making the object)."""
    cdef type cls
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef Py_ssize_t count

    cdef object make(self, tuple values):
        cdef object obj = _new(self.cls)
        cdef Py_ssize_t i
        cdef object value
        for i in range(self.count):
            value = values[i]
            Py_INCREF(value)
            (<PyObject**>((<char*><PyObject*>obj) + self.offsets[i]))[0] = <PyObject*>value
        return obj


cdef _Layout _layout(type cls, tuple names):
    """The layout of ``cls``, whose __slots__ must be ``names`` (in that order)."""
    import types
    if tuple(cls.__slots__) != names or len(names) > MAX_FIELDS:
        raise ValueError(f"{cls.__name__}'s fields are not {names}")
    cdef _Layout layout = _Layout.__new__(_Layout)
    cdef PyMemberDef* member
    for i, name in enumerate(names):
        descriptor = cls.__dict__[name]
        if type(descriptor) is not types.MemberDescriptorType:
            raise ValueError(f"{cls.__name__}.{name} is not a slot")
        member = (<PyMemberDescrObject*><PyObject*>descriptor).d_member
        if member.type != MEMBER_OBJECT_EX or member.flags & MEMBER_READONLY:
            raise ValueError(f"{cls.__name__}.{name} is not a writable object slot")
        layout.offsets[i] = member.offset
    layout.cls, layout.count = cls, len(names)
    return layout


import_datetime()


cdef inline object _milliseconds(int64_t ms):
    """timedelta(milliseconds=ms), without parsing keywords."""
    cdef int64_t days = ms // 86400000  # truncated (cdivision): the constructor normalizes
    cdef int64_t rest = ms - days * 86400000
    if not -999999999 <= days <= 999999999:
        raise OverflowError("days out of timedelta's range")  # as timedelta itself says
    return timedelta_new(<int>days, <int>(rest // 1000), <int>(rest % 1000 * 1000))


cdef object _Entity = None
cdef object _Field = None
cdef object _decode_value = None
cdef object _new = object.__new__
cdef object _TypedValue = None
cdef _Layout _typed_layout = None
cdef object _NULL, _TRUE, _FALSE
cdef object _EPOCH, _MS
cdef int _oid[256]
cdef bint _ready = False

# value type bytes read here: their layouts are the reference's (pgshim/reddb/values.py)
cdef enum:
    T_NULL = 0
    T_BOOL = 1
    T_INT = 2
    T_UNSIGNED = 3
    T_FLOAT = 4
    T_TEXT = 5
    T_BLOB = 6
    T_TIMESTAMP = 7
    T_DURATION = 8
    T_MAC = 10
    T_UUID = 13
    T_COLOR = 18
    T_PHONE = 21
    T_SEMVER = 22
    T_DATE = 24
    T_DECIMAL = 26
    T_ENUM = 27
    T_TIMESTAMP_MS = 29
    T_IPV4 = 30
    T_PORT = 33
    T_LATITUDE = 34
    T_LONGITUDE = 35
    T_GEOPOINT = 36
    T_COLOR_ALPHA = 42
    T_BIGINT = 43
    T_PAGE_REF = 47
    T_SECRET = 48
    T_VECTOR = 11
    T_VECTOR_REF = 16
    T_ROW_REF = 17
    T_TIME = 25
    T_KEY_REF = 44
    T_DOC_REF = 45
    T_MONEY = 51
    T_IPADDR = 9
    T_JSON = 12
    T_CIDR = 23
    T_ARRAY = 28
    T_IPV6 = 31
    T_SUBNET = 32
    T_DECIMAL_TEXT = 52
    MAX_ARRAY_DEPTH = 32  # deeper arrays are left to the reference

cdef object _Decimal, _UUID, _IPv4Interface, _EPOCH_DATE, _SECOND, _DAY, _time
cdef object _IPv6Interface, _IPv4Network, _IPv4Address, _json_loads, _array_json
cdef const char* _HEX_LOWER = b"0123456789abcdef"
cdef const char* _HEX_UPPER = b"0123456789ABCDEF"

cdef bint _plain_str[256]
cdef int _ascii_size[256]


def setup(entity, field, typed_value, decode_value, types, plain_str, fixed_ascii, epoch, ms):
    """Wire the reference's classes and tables in (``pgshim.reddb.entity`` calls this)."""
    global _Entity, _Field, _TypedValue, _decode_value, _ready
    global _typed_layout, _NULL, _TRUE, _FALSE, _EPOCH, _MS
    _Entity, _Field, _TypedValue, _decode_value = entity, field, typed_value, decode_value
    _typed_layout = _layout(typed_value, ("type_code", "type_oid", "value", "native"))
    cdef int code
    for code in range(256):
        _oid[code] = -1
        _plain_str[code] = code in plain_str
        _ascii_size[code] = fixed_ascii.get(code, 0)
    for code, value_type in types.items():
        _oid[code] = value_type.oid
    _NULL = typed_value(0, _oid[T_NULL], None)
    _TRUE = typed_value(1, _oid[T_BOOL], True)
    _FALSE = typed_value(1, _oid[T_BOOL], False)
    _EPOCH, _MS = epoch, ms
    global _Decimal, _UUID, _IPv4Interface, _EPOCH_DATE, _SECOND, _DAY, _time
    global _IPv6Interface, _IPv4Network, _IPv4Address, _json_loads, _array_json
    import datetime, decimal, ipaddress, json, uuid
    from pgshim.reddb.values import array_json
    _Decimal, _UUID, _IPv4Interface = decimal.Decimal, uuid.UUID, ipaddress.IPv4Interface
    _IPv6Interface, _IPv4Network = ipaddress.IPv6Interface, ipaddress.IPv4Network
    _IPv4Address, _json_loads, _array_json = ipaddress.IPv4Address, json.loads, array_json
    _EPOCH_DATE = datetime.date(1970, 1, 1)
    _time = datetime.time
    _SECOND, _DAY = datetime.timedelta(seconds=1), datetime.timedelta(days=1)
    _ready = True


cdef inline object _typed(int code, object value, object native=None):
    # the frozen dataclass's __init__ sets each field through object.__setattr__: slower
    return _typed_layout.make((code, _oid[code], value, native))


cdef class _Reader:
    cdef const unsigned char* p
    cdef Py_ssize_t n
    cdef Py_ssize_t pos
    cdef bint bad
    cdef int depth  # of the arrays being read

    cdef inline uint64_t varint(self, int max_shift):
        """An unsigned LEB128 integer as the reference reads it (varu32: 35, varu64: 70)."""
        cdef uint64_t result = 0
        cdef int shift = 0
        cdef unsigned char byte
        while True:
            if self.pos >= self.n:
                self.bad = True
                return 0
            byte = self.p[self.pos]
            self.pos += 1
            if shift == 63 and (byte & 0x7F) > 1:
                self.bad = True  # beyond 64 bits
                return 0
            result |= (<uint64_t>(byte & 0x7F)) << shift
            if byte < 0x80:
                if max_shift == 35 and result > 0xFFFFFFFF:
                    self.bad = True
                    return 0
                return result
            shift += 7
            if shift >= max_shift:
                self.bad = True
                return 0

    cdef inline bint need(self, Py_ssize_t size):
        if self.pos + size > self.n:
            self.bad = True
            return False
        return True

    cdef inline object text(self):
        cdef uint64_t size = self.varint(35)
        if self.bad or not self.need(<Py_ssize_t>size):
            return None
        cdef object value = PyUnicode_DecodeUTF8(<const char*>self.p + self.pos, size, NULL)
        self.pos += size
        return value

    cdef inline int64_t i64(self):
        cdef int64_t value
        memcpy(&value, self.p + self.pos, 8)  # little-endian hosts only: see _little_endian
        self.pos += 8
        return value

    cdef inline uint64_t u64(self):
        cdef uint64_t value
        memcpy(&value, self.p + self.pos, 8)
        self.pos += 8
        return value

    cdef inline int32_t i32(self):
        cdef int32_t value
        memcpy(&value, self.p + self.pos, 4)
        self.pos += 4
        return value

    cdef inline uint32_t u32(self):
        cdef uint32_t value
        memcpy(&value, self.p + self.pos, 4)
        self.pos += 4
        return value

    cdef inline object hex_text(self, int size, const char* digits, char lead, char sep):
        """``size`` bytes in hex: "#RRGGBB" (lead, no separator) or "aa:bb:.." (separator)."""
        cdef char out[32]
        cdef int length = 0, i
        cdef unsigned char byte
        if lead:
            out[0] = lead
            length = 1
        for i in range(size):
            if sep and i:
                out[length] = sep
                length += 1
            byte = self.p[self.pos + i]
            out[length] = digits[byte >> 4]
            out[length + 1] = digits[byte & 15]
            length += 2
        self.pos += size
        return PyUnicode_DecodeASCII(out, length, NULL)


cdef object _interface(_Reader r, int size):
    """The IPv4 or IPv6 interface of the next ``size`` bytes (network order)."""
    cdef uint64_t high = 0, low = 0
    cdef int i
    for i in range(size):
        if i < size - 8:
            high = high << 8 | r.p[r.pos + i]
        else:
            low = low << 8 | r.p[r.pos + i]
    r.pos += size
    if size == 4:
        return _IPv4Interface(low)
    return _IPv6Interface((<object>high) << 64 | low)


cdef bint _little_endian():
    cdef uint16_t probe = 1
    return (<unsigned char*>&probe)[0] == 1


cdef inline object _out(bint typed, int* oid, int code, object value, object native=None):
    if typed:
        return _typed(code, value, native)
    oid[0] = _oid[code]
    return value


cdef object _read(_Reader r, object buf, bint typed, int* oid):
    """The value at r.pos (its type byte) as a TypedValue, or (``typed`` false) its plain value
    with its type OID in ``oid``; None with r.bad set when it does not read."""
    if not r.need(1):
        return None
    cdef int code = r.p[r.pos]
    cdef int32_t i32
    cdef uint32_t u32
    cdef uint16_t u16
    cdef uint64_t size64, _
    cdef int size
    cdef float f32
    cdef uint32_t seconds
    cdef int scale, prefix
    cdef int64_t minor
    cdef uint64_t ident
    cdef double f64
    cdef uint32_t mask
    cdef object value, text
    cdef list items
    r.pos += 1
    if code == T_TEXT or _plain_str[code]:
        value = r.text()
        return None if r.bad else _out(typed, oid, code, value)
    if code == T_INT or code == T_BIGINT:
        if not r.need(8):
            return None
        return _out(typed, oid, code, r.i64())
    if code == T_FLOAT:
        if not r.need(8):
            return None
        memcpy(&f64, r.p + r.pos, 8)
        r.pos += 8
        return _out(typed, oid, code, f64)
    if code == T_NULL:
        return _out(typed, oid, code, None) if not typed else _NULL
    if code == T_BOOL:
        if not r.need(1):
            return None
        r.pos += 1
        if not typed:
            oid[0] = _oid[T_BOOL]
            return r.p[r.pos - 1] != 0
        return _TRUE if r.p[r.pos - 1] else _FALSE
    if code == T_TIMESTAMP_MS:
        if not r.need(8):
            return None
        return _out(typed, oid, code, _EPOCH + _milliseconds(r.i64()))
    if code == T_PORT:
        if not r.need(2):
            return None
        memcpy(&u16, r.p + r.pos, 2)
        r.pos += 2
        return _out(typed, oid, code, u16)
    if code == T_ENUM:
        if not r.need(1):
            return None
        r.pos += 1
        return _out(typed, oid, code, r.p[r.pos - 1])
    if code == T_LATITUDE or code == T_LONGITUDE:
        if not r.need(4):
            return None
        memcpy(&i32, r.p + r.pos, 4)
        r.pos += 4
        return _out(typed, oid, code, i32 / 1e6)
    if code == T_BLOB or code == T_SECRET:
        size64 = r.varint(35)
        if r.bad or not r.need(<Py_ssize_t>size64):
            return None
        value = PyBytes_FromStringAndSize(<const char*>r.p + r.pos, <Py_ssize_t>size64)
        r.pos += size64
        return _out(typed, oid, code, value)
    if code == T_TIMESTAMP or code == T_DURATION or code == T_DECIMAL:
        if not r.need(8):
            return None
        if code == T_TIMESTAMP:
            return _out(typed, oid, code, _EPOCH + r.i64() * _SECOND)
        if code == T_DURATION:
            return _out(typed, oid, code, r.i64() * _MS)
        return _out(typed, oid, code, _Decimal(r.i64()).scaleb(-4))
    if code == T_UNSIGNED or code == T_PHONE:
        if not r.need(8):
            return None
        if code == T_UNSIGNED:
            return _out(typed, oid, code, _Decimal(r.u64()))
        return _out(typed, oid, code, "+" + str(r.u64()))
    if code == T_MAC:
        if not r.need(6):
            return None
        return _out(typed, oid, code, r.hex_text(6, _HEX_LOWER, 0, b":"[0]))
    if code == T_COLOR or code == T_COLOR_ALPHA:
        size = 3 if code == T_COLOR else 4
        if not r.need(size):
            return None
        return _out(typed, oid, code, r.hex_text(size, _HEX_UPPER, b"#"[0], 0))
    if code == T_UUID:
        if not r.need(16):
            return None
        r.pos += 16
        return _out(typed, oid, code, _UUID(bytes=PyBytes_FromStringAndSize(<const char*>r.p + r.pos - 16, 16)))
    if code == T_SEMVER or code == T_IPV4 or code == T_PAGE_REF or code == T_DATE:
        if not r.need(4):
            return None
        if code == T_DATE:
            return _out(typed, oid, code, _EPOCH_DATE + r.i32() * _DAY)
        u32 = r.u32()
        if code == T_SEMVER:
            return _out(typed, oid, code, f"{u32 // 1000000}.{u32 // 1000 % 1000}.{u32 % 1000}")
        if code == T_IPV4:
            return _out(typed, oid, code, _IPv4Interface(u32))
        return _out(typed, oid, code, u32)
    if code == T_GEOPOINT:
        if not r.need(8):
            return None
        i32 = r.i32()
        return _out(typed, oid, code, (r.i32() / 1e6, i32 / 1e6))
    if code == T_VECTOR_REF or code == T_ROW_REF or code == T_DOC_REF:
        name = r.text()
        if r.bad or not r.need(8):
            return None
        ident = r.u64()
        return _out(typed, oid, code, f"{name}:{ident}", (name, ident))
    if code == T_KEY_REF:
        name = r.text()
        key = r.text()
        if r.bad:
            return None
        return _out(typed, oid, code, f"{name}:{key}", (name, key))
    if code == T_MONEY:
        name = r.text()
        if r.bad or not r.need(9):
            return None
        scale = r.p[r.pos]
        r.pos += 1
        minor = r.i64()
        return _out(typed, oid, code, _Decimal(minor).scaleb(-scale), (name, scale, minor))
    if code == T_VECTOR:
        size64 = r.varint(35)
        if r.bad or not r.need(<Py_ssize_t>(4 * size64)):
            return None
        floats = []
        for _ in range(size64):
            memcpy(&f32, r.p + r.pos, 4)
            r.pos += 4
            floats.append(<double>f32)
        return _out(typed, oid, code, floats)
    if code == T_TIME:
        if not r.need(4):
            return None
        u32 = r.u32()
        if u32 >= 86400000:
            raise ValueError("time of day out of range")  # the reference says so
        seconds = u32 // 1000
        return _out(typed, oid, code, _time(seconds // 3600, seconds // 60 % 60, seconds % 60, u32 % 1000 * 1000)
        )
    size = _ascii_size[code]
    if size:
        if not r.need(size):
            return None
        value = PyUnicode_DecodeASCII(<const char*>r.p + r.pos, size, NULL)
        r.pos += size
        return _out(typed, oid, code, value)
    # what follows builds the reference's objects; what they refuse raises, and the caller
    # leaves the whole row to the reference, which reports it
    if code == T_IPADDR or code == T_IPV6:
        size = 16
        if code == T_IPADDR:
            if not r.need(1):
                return None
            size = 4 if r.p[r.pos] == 4 else 16
            r.pos += 1
        if not r.need(size):
            return None
        return _out(typed, oid, code, _interface(r, size))
    if code == T_CIDR or code == T_SUBNET:
        if not r.need(5 if code == T_CIDR else 8):
            return None
        u32 = r.u32()
        if code == T_SUBNET:
            mask = r.u32()
            value = _IPv4Network((u32, str(_IPv4Address(mask))), strict=False)
            return _out(typed, oid, code, value, (u32, mask))
        prefix = r.p[r.pos]  # beyond 32 the network refuses it
        r.pos += 1
        return _out(typed, oid, code, _IPv4Network((u32, prefix), strict=False), (u32, prefix))
    if code == T_JSON or code == T_DECIMAL_TEXT:
        text = r.text()
        if r.bad:
            return None
        if code == T_JSON:
            _json_loads(text)  # only a valid document is taken
            return _out(typed, oid, code, text)
        value = _Decimal(text)
        if not value.is_finite():
            r.bad = True
            return None
        return _out(typed, oid, code, value, text)
    if code == T_ARRAY:
        size64 = r.varint(35)
        if r.bad or r.depth >= MAX_ARRAY_DEPTH:
            r.bad = True
            return None
        items = []
        r.depth += 1
        for _ in range(size64):
            value = _read(r, buf, True, NULL)
            if r.bad:
                return None
            items.append(value)
        r.depth -= 1
        return _out(typed, oid, code, _array_json(items), tuple(items))
    # the other types: the reference decoder, from the type byte
    value, end = _decode_value(buf, r.pos - 1)
    r.pos = end
    if typed:
        return value
    oid[0] = value.type_oid
    return value.value


cdef struct _Row:
    uint64_t entity_id
    uint64_t row_id
    bint named
    uint64_t count


cdef object _row_head(_Reader r, bytes buf, _Row* row):
    """Reads a table row's header up to its fields: the table name, or None (r.bad, or not a
    plain table row)."""
    r.p = <const unsigned char*>PyBytes_AS_STRING(buf)
    r.n = PyBytes_GET_SIZE(buf)
    r.pos = 0
    r.bad = False
    row.entity_id = r.varint(70)
    if r.bad or not r.need(1) or r.p[r.pos] != 0:  # kind tag: table rows only
        return None
    r.pos += 1
    table = r.text()
    row.row_id = r.varint(70)
    if r.bad or not r.need(1):
        return None
    cdef int data_tag = r.p[r.pos]
    if data_tag != 0 and data_tag != 6:  # positional, named
        return None
    r.pos += 1
    row.named = data_tag == 6
    row.count = r.varint(35)
    return None if r.bad else table


cdef struct _Tail:
    uint64_t created_at
    uint64_t updated_at
    uint64_t sequence_id


cdef tuple _row_tail(_Reader r, _Tail* tail):
    """Reads what follows the fields: (logical_id, xmin, xmax), or None when it does not read
    as a plain row's tail (embeddings, cross references: the reference reads those)."""
    tail.created_at = r.varint(70)
    tail.updated_at = r.varint(70)
    if r.bad or not r.need(2) or r.p[r.pos] != 0 or r.p[r.pos + 1] != 0:
        return None
    r.pos += 2
    tail.sequence_id = r.varint(70)
    if r.bad:
        return None
    logical_id = xmin = xmax = None
    if r.pos < r.n:
        r.pos += 1
        if r.p[r.pos - 1]:
            logical_id = r.varint(70)
    if r.pos < r.n:
        xmin = r.varint(70)
        xmax = r.varint(70)
    if r.bad or r.pos != r.n:
        return None
    return (logical_id, xmin, xmax)


def decode_row(bytes buf):
    """The Entity of a plain table row, or None for anything else (see the module)."""
    if not _ready:
        return None
    try:
        return _decode_row(buf)
    except Exception:  # the reference knows what went wrong, and where
        return None


cdef object _decode_row(bytes buf):
    cdef _Reader r = _Reader.__new__(_Reader)
    cdef _Row row
    cdef _Tail tail
    table = _row_head(r, buf, &row)
    if table is None:
        return None
    cdef list fields = []
    cdef uint64_t i
    cdef object name = None
    cdef object value
    for i in range(row.count):
        if row.named:
            name = r.text()
            if r.bad:
                return None
        value = _read(r, buf, True, NULL)
        if r.bad:
            return None
        fields.append(_Field(name, value))
    ids = _row_tail(r, &tail)
    if ids is None:
        return None
    return _Entity(
        row.entity_id,
        "table_row",
        {"table": table, "row_id": row.row_id},
        "named_row" if row.named else "row",
        fields,
        tail.created_at,
        tail.updated_at,
        tail.sequence_id,
        ids[0],
        ids[1],
        ids[2],
        [],
        [],
        11,
    )


def row_values(bytes buf, dict named, dict positional, Py_ssize_t width, bint learns):
    """A plain table row's values in its relation's column order, without the objects of a
    decoded Entity: ``(physical id, logical id, values)`` with ``values[0]`` left None for the
    key, or None whenever the reference must decide (see ``RelationRegistry.fast_plan``).

    ``named`` maps a field name (named rows), ``positional`` a position (positional rows) to
    ``(column index, column type OID)``. Unknown fields make it None when the relation
    ``learns`` new columns; a value of another type than its column's (a conversion) too.
    """
    if not _ready:
        return None
    try:
        return _row_values(buf, named, positional, width, learns)
    except Exception:
        return None


cdef object _row_values(bytes buf, dict named, dict positional, Py_ssize_t width, bint learns):
    cdef _Reader r = _Reader.__new__(_Reader)
    cdef _Row row
    cdef _Tail tail
    if _row_head(r, buf, &row) is None:
        return None
    # a row without fields is a named one to the reference
    cdef dict plan = named if row.named or row.count == 0 else positional
    cdef list values = [None] * width
    cdef uint64_t i
    cdef object key, target, value
    cdef int oid = 0
    for i in range(row.count):
        if row.named:
            key = r.text()
            if r.bad:
                return None
        else:
            key = i
        value = _read(r, buf, False, &oid)
        if r.bad:
            return None
        target = plan.get(key)
        if target is None:
            if learns:
                return None
            continue
        if value is not None and oid != <int>(<tuple>target)[1]:
            return None
        values[<Py_ssize_t>(<tuple>target)[0]] = value
    ids = _row_tail(r, &tail)
    if ids is None:
        return None
    logical_id = ids[0]
    return (row.entity_id, row.entity_id if logical_id is None else logical_id, values)


# -- spool frames --------------------------------------------------------------------------------

cdef extern from "zlib.h":
    unsigned long crc32(unsigned long crc, const unsigned char* buf, unsigned int len) nogil

cdef enum:
    MAGIC_LE = 0x574C4452  # b"RDLW" read as a little-endian u32
    CRC_RESIDUE = 0x2144DF1C  # CRC-32 of any data followed by its own little-endian CRC
    V2_HEADER = 25
    V3_41_HEADER = 41

cdef _Layout _frame_layout = None
cdef uint32_t _max_payload = 0
cdef str _V2_NAME = "v2"
cdef str _V3_41_NAME = "v3-41"


def setup_frames(frame, max_payload):
    """Wire the reference's Frame class and payload bound in (``pgshim.spool.frames``)."""
    global _frame_layout, _max_payload
    _frame_layout = _layout(
        frame, ("layout", "lsn", "timestamp_ms", "term", "ownership_epoch", "payload", "offset",
                "size"),
    )
    _max_payload = max_payload


def scan_fast(bytes data, Py_ssize_t pos, object base_offset, list frames):
    """Appends to ``frames`` the frames from ``pos`` on that the reference's fast paths read
    (v3 with the 41-byte header and v2, CRC right, at least a v3 header and CRC left in
    ``data``), the same Frame objects; returns where it stopped, for the reference to go on."""
    if _frame_layout is None:
        return pos
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(data), remaining, total
    cdef uint32_t magic, size
    cdef uint64_t term, epoch, lsn, ts
    cdef int version, header, size_at
    cdef str name
    while pos >= 0:
        remaining = end - pos
        if remaining < V3_41_HEADER + 4:
            break
        memcpy(&magic, p + pos, 4)
        if magic != MAGIC_LE:
            break
        version = p[pos + 4]
        if version == 3:
            header, size_at, name = V3_41_HEADER, 37, _V3_41_NAME
        elif version == 2:
            header, size_at, name = V2_HEADER, 21, _V2_NAME
        else:
            break
        memcpy(&size, p + pos + size_at, 4)
        if size > _max_payload:
            break
        total = header + <Py_ssize_t>size + 4
        if total > remaining or crc32(0, p + pos + 4, <unsigned int>(total - 4)) != CRC_RESIDUE:
            break
        if version == 3:
            memcpy(&term, p + pos + 5, 8)
            memcpy(&epoch, p + pos + 13, 8)
            memcpy(&lsn, p + pos + 21, 8)
            memcpy(&ts, p + pos + 29, 8)
        else:
            term = epoch = 0
            memcpy(&lsn, p + pos + 5, 8)
            memcpy(&ts, p + pos + 13, 8)
        frames.append(_frame_layout.make((
            name, lsn, ts, term, epoch,
            PyBytes_FromStringAndSize(<const char*>p + pos + header, size),
            base_offset + pos, total,
        )))
        pos += total
    return pos


# -- ChangeRecord JSON ---------------------------------------------------------------------------

cdef object _ChangeRecord = None
cdef object _loads = None
cdef _Layout _record_layout = None
cdef frozenset _ROW_OPERATIONS = frozenset(("insert", "update", "delete"))
cdef tuple _NO_PROBLEMS = ()
cdef tuple _RECORD_FIELDS = (
    "lsn", "timestamp_ms", "operation", "collection", "rid", "kind", "entity_bytes", "metadata",
    "term", "refresh_records", "range_id", "ownership_epoch", "raw", "problems",
)


def setup_records(change_record, loads):
    """Wire the reference's ChangeRecord class and JSON parser in (``pgshim.reddb.change``)."""
    global _ChangeRecord, _loads, _record_layout
    _record_layout = _layout(change_record, _RECORD_FIELDS)
    _ChangeRecord, _loads = change_record, loads


cdef inline bint _plain_int(object value):
    return type(value) is int


def change_record(object payload, object frame_lsn, object frame_timestamp_ms):
    """The ChangeRecord of a plain insert, update or delete payload (every field of the type
    the reference expects), or None: the reference then parses it and says what is wrong."""
    try:
        return _change_record(payload, frame_lsn)
    except Exception:
        return None


cdef object _change_record(object payload, object frame_lsn):
    if _ChangeRecord is None or type(payload) is not bytes or frame_lsn is None:
        return None
    obj = _loads(payload)
    if type(obj) is not dict:
        return None
    cdef dict o = <dict>obj
    operation = o.get("operation")
    if type(operation) is not str or operation not in _ROW_OPERATIONS:
        return None
    collection = o.get("collection")
    rid = o.get("rid")
    kind = o.get("kind")
    if type(collection) is not str or not _plain_int(rid) or type(kind) is not str:
        return None
    metadata = o.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        return None
    if o.get("refresh_records_hex"):
        return None
    term = o.get("term")
    timestamp = o.get("timestamp", 0)
    range_id = o.get("range_id")
    epoch = o.get("ownership_epoch")
    if not _plain_int(timestamp) or (term is not None and not _plain_int(term)):
        return None
    if (range_id is not None and not _plain_int(range_id)) or (
        epoch is not None and not _plain_int(epoch)
    ):
        return None
    entity_hex = o.get("entity_bytes_hex")
    if entity_hex is None:
        entity_bytes = None
    elif type(entity_hex) is str:
        try:
            entity_bytes = bytes.fromhex(entity_hex)
        except ValueError:
            return None
    else:
        return None
    return _record_layout.make((
        frame_lsn, timestamp, operation, collection, rid, kind, entity_bytes, metadata,
        1 if term is None else term, (), range_id, epoch, payload, _NO_PROBLEMS,
    ))


# -- a plain record's whole transaction -----------------------------------------------------------

cdef object _Transaction = None
cdef _Layout _tx_layout = None
cdef _Layout _change_layout = None
cdef object _commit_epoch = None
cdef object _min_ms = None
cdef object _max_ms = None
cdef object _last_ms = None
cdef object _last_commit_time = None
cdef dict _ACTIONS = {"insert": "I", "update": "U"}
cdef tuple _TX_FIELDS = (
    "xid", "first_lsn", "last_lsn", "begin_pos", "commit_pos", "end_pos", "commit_time",
    "changes", "records", "errors", "encoded",
)
cdef tuple _CHANGE_FIELDS = ("action", "relation", "new", "key", "pos", "lsn", "texts")


def setup_transactions(transaction, row_change, epoch, min_ms, max_ms):
    """Wire the reference's Transaction and RowChange classes and its commit-time range in
    (``pgshim.logical.transactions``)."""
    global _Transaction, _tx_layout, _change_layout, _commit_epoch
    global _min_ms, _max_ms
    _tx_layout = _layout(transaction, _TX_FIELDS)
    _change_layout = _layout(row_change, _CHANGE_FIELDS)
    _Transaction, _commit_epoch = transaction, epoch
    _min_ms, _max_ms = min_ms, max_ms


def plain_transaction(object payload, object lsn, object fast_plan, object learn):
    """The transaction of one plain insert or update of a known table row: what the reference
    (``TransactionBuilder.build`` of ``parse_change_record``'s record) gives, with
    ``learn(collection, physical id, logical id)`` called as it does. None, with nothing
    learned, whenever the reference must decide (``fast_plan(collection)`` is the relation's
    ``RelationRegistry.fast_plan``)."""
    if _Transaction is None or not _ready:
        return None
    try:
        return _plain_transaction(payload, lsn, fast_plan, learn)
    except Exception:
        return None


cdef object _commit_time(object timestamp_ms):
    global _last_ms, _last_commit_time
    if timestamp_ms == _last_ms:  # a writer commits many records within one millisecond
        return _last_commit_time
    commit_time = _commit_epoch + _milliseconds(timestamp_ms)
    _last_ms, _last_commit_time = timestamp_ms, commit_time
    return commit_time


cdef object _plain_transaction(object payload, object lsn, object fast_plan, object learn):
    record = _change_record(payload, lsn)
    if record is None:
        return None
    action = _ACTIONS.get(record.operation)
    entity_bytes = record.entity_bytes
    timestamp_ms = record.timestamp_ms
    if action is None or entity_bytes is None or not (_min_ms <= timestamp_ms <= _max_ms):
        return None
    collection = record.collection
    plan = fast_plan(collection)
    if plan is None:
        return None
    fast = _row_values(entity_bytes, plan.named, plan.positional, plan.width, plan.learns)
    if fast is None:
        return None
    physical_id, logical_id, values = <tuple>fast
    (<list>values)[0] = logical_id
    commit_time = _commit_time(timestamp_ms)
    learn(collection, physical_id, logical_id)
    pos = lsn << 8
    change = _change_layout.make((action, plan.relation, values, None, pos, lsn, None))
    changes, records, errors = [change], [record], []
    tx = _tx_layout.make((lsn % 4294967296, lsn, lsn, pos, pos | 0xFE, pos | 0xFF, commit_time,
                          changes, records, errors, {}))
    for obj in (tx, change, values, changes, records, errors, record):
        _untrack(obj)
    return tx


# -- text output (typoutput) of the common column types -----------------------------------------

# what value_texts does itself for a column, by its type; the others call the column's renderer
cdef enum:
    K_OTHER = 0
    K_INT = 1
    K_TEXT = 2
    K_BOOL = 3
    K_FLOAT8 = 4
    K_TIMESTAMPTZ = 5

cdef object _UTC = None
cdef type _datetime_type = None


cdef void _know_datetime():
    global _UTC, _datetime_type
    if _UTC is None:
        import datetime
        _UTC, _datetime_type = datetime.UTC, datetime.datetime


def text_kinds(oids):
    """The kind of each column type for ``value_texts`` (K_OTHER: its renderer decides)."""
    _know_datetime()
    kinds = []
    for oid in oids:
        if oid in (20, 21, 23, 26):
            kinds.append(K_INT)
        elif oid in (25, 1043, 19):
            kinds.append(K_TEXT)
        elif oid == 16:
            kinds.append(K_BOOL)
        elif oid == 701:
            kinds.append(K_FLOAT8)
        elif oid == 1184:
            kinds.append(K_TIMESTAMPTZ)
        else:
            kinds.append(K_OTHER)
    return tuple(kinds)


cdef object _float8_text(double value):
    """PostgreSQL's float8 text where Python's shortest repr is it already, else None."""
    if not (-1e15 < value < 1e15):
        return None
    text = repr(value)
    if "e" in text or "n" in text:
        return None
    return text[:-2] if text.endswith(".0") else text


cdef inline void _put_digits(char* out, int value, int width):
    """``value`` (0 <= value < 10**width) in ``width`` decimal digits, zero-padded."""
    cdef int i
    for i in range(width - 1, -1, -1):
        out[i] = <char>(48 + value % 10)
        value //= 10


cdef object _timestamptz_text(object value):
    """'YYYY-MM-DD HH:MM:SS[.ffffff]+00' of an aware UTC datetime, fraction without trailing
    zeros, as PostgreSQL prints it with TimeZone UTC."""
    cdef char out[32]
    cdef int micro = datetime_microsecond(value)
    cdef int length = 19, digits = 6
    _put_digits(out, datetime_year(value), 4)  # datetime's years are 1 to 9999
    out[4] = b"-"
    _put_digits(out + 5, datetime_month(value), 2)
    out[7] = b"-"
    _put_digits(out + 8, datetime_day(value), 2)
    out[10] = b" "
    _put_digits(out + 11, datetime_hour(value), 2)
    out[13] = b":"
    _put_digits(out + 14, datetime_minute(value), 2)
    out[16] = b":"
    _put_digits(out + 17, datetime_second(value), 2)
    if micro:
        while micro % 10 == 0:
            micro //= 10
            digits -= 1
        out[19] = b"."
        _put_digits(out + 20, micro, digits)
        length = 20 + digits
    out[length] = b"+"
    out[length + 1] = b"0"
    out[length + 2] = b"0"
    return PyUnicode_DecodeASCII(out, length + 3, NULL)


def value_texts(tuple kinds, list renderers, list values):
    """Each value's text output as its column's type, None for NULL: what the reference
    (``pgshim.logical.transactions.value_texts``) gives, the common types rendered here."""
    return _value_texts(kinds, renderers, values)


cdef dict _text_plans = None


def setup_texts(dict plans):
    """The text plans ``transactions.value_texts`` keeps (id(columns) -> (columns, renderers,
    kinds)), read here for ``_change_texts``."""
    global _text_plans
    _text_plans = plans


cdef object _change_texts(object change):
    """``RowChange.new_texts`` (the reference, which this calls where it has no plan yet): the
    new tuple's text output, computed once and kept with the change."""
    cdef object texts = change.texts, columns, plan, new
    if texts is not None:
        return texts
    columns = change.relation.columns
    plan = None if _text_plans is None else _text_plans.get(id(columns))
    if (plan is None or plan[0] is not columns or plan[2] is None
            or len(<list>plan[1]) != len(columns)):
        return change.new_texts()
    new = change.new
    texts = _value_texts(<tuple>plan[2], <list>plan[1], new if new else [])
    _untrack(texts)
    change.texts = texts
    return texts


cdef list _value_texts(tuple kinds, list renderers, list values):
    cdef Py_ssize_t count = min(len(kinds), len(values)), i
    cdef list texts = [None] * count
    cdef int kind
    cdef object value, text
    for i in range(count):
        value = values[i]
        if value is None:
            continue
        kind = kinds[i]
        text = None
        if kind == K_INT:
            if type(value) is int:
                text = str(value)
        elif kind == K_TEXT:
            if type(value) is str:
                text = value
        elif kind == K_BOOL:
            if type(value) is bool:
                text = "t" if value else "f"
        elif kind == K_FLOAT8:
            if type(value) is float:
                text = _float8_text(value)
        elif kind == K_TIMESTAMPTZ:
            if type(value) is _datetime_type and datetime_tzinfo(value) is _UTC:
                text = _timestamptz_text(value)
        texts[i] = renderers[i](value) if text is None else text
    return texts


if not _little_endian():
    raise ImportError("the compiled ingestion core reads little-endian hosts only")



# how test_decoding prints a column's text output (see ``plugins.test_decoding._literal_kind``)
cdef enum:
    L_AS_IS = 0
    L_BOOL = 1
    L_BIT = 2
    L_QUOTED = 3


def test_decoding_tuple(list headers, bytes literals, list texts, bint skip_nulls):
    """One test_decoding tuple: what the reference (``plugins.test_decoding.render_tuple``)
    gives, ``headers`` being its " name[type]:" per column and ``literals`` an L_* per column;
    missing trailing texts are NULL."""
    cdef Py_ssize_t width = len(headers), count = len(texts), i
    cdef const unsigned char* kinds = literals
    cdef list parts = []
    cdef object text
    if len(literals) < width:
        raise ValueError("a literal kind is needed for every column")
    for i in range(width):
        text = texts[i] if i < count else None
        if text is None:
            if not skip_nulls:
                parts.append(headers[i])
                parts.append("null")
            continue
        parts.append(headers[i])
        if kinds[i] == L_AS_IS:
            parts.append(text)
        elif kinds[i] == L_BOOL:
            parts.append("true" if text == "t" else "false")
        elif kinds[i] == L_BIT:
            parts.append("B'")
            parts.append(text)
            parts.append("'")
        else:
            parts.append("'")
            parts.append(text.replace("'", "''") if "'" in text else text)
            parts.append("'")
    return "".join(parts)


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL


cdef dict _TD_ACTIONS = {"I": " INSERT:", "U": " UPDATE:"}


cdef inline Py_ssize_t _utf8_size(object text) except -1:
    cdef Py_ssize_t size
    PyUnicode_AsUTF8AndSize(text, &size)
    return size


cdef inline char* _put_utf8(char* out, object text):
    cdef Py_ssize_t size
    cdef const char* data = PyUnicode_AsUTF8AndSize(text, &size)
    memcpy(out, data, size)
    return out + size


cdef object _td_line(object prefix, object action, list headers, bytes literals, list texts):
    """``(prefix + action + test_decoding_tuple(headers, literals, texts, False)).encode()``
    written at once; None where that is not plain (a text that is not a str, or has no UTF-8:
    the reference raises what it raises)."""
    cdef Py_ssize_t width = len(headers), count = len(texts), i, j, size, total
    cdef const unsigned char* kinds = literals
    cdef const char* data
    cdef object text
    cdef char* out
    if len(literals) < width or type(prefix) is not str or type(action) is not str:
        return None
    try:
        total = _utf8_size(prefix) + _utf8_size(action)
        for i in range(width):
            if type(headers[i]) is not str:
                return None
            total += _utf8_size(headers[i])
            text = texts[i] if i < count else None
            if text is None:
                total += 4
                continue
            if type(text) is not str:
                return None
            if kinds[i] == L_BOOL:
                total += 4 if text == "t" else 5
                continue
            data = PyUnicode_AsUTF8AndSize(text, &size)
            total += size
            if kinds[i] == L_BIT:
                total += 3
            elif kinds[i] != L_AS_IS:
                total += 2
                for j in range(size):
                    if data[j] == 39:  # a quote, doubled (never part of a multi-byte character)
                        total += 1
    except UnicodeEncodeError:
        return None
    cdef bytes line = PyBytes_FromStringAndSize(NULL, total)
    out = PyBytes_AS_STRING(line)
    out = _put_utf8(_put_utf8(out, prefix), action)
    for i in range(width):
        out = _put_utf8(out, headers[i])
        text = texts[i] if i < count else None
        if text is None:
            memcpy(out, b"null", 4)
            out += 4
        elif kinds[i] == L_BOOL:
            if text == "t":
                memcpy(out, b"true", 4)
                out += 4
            else:
                memcpy(out, b"false", 5)
                out += 5
        elif kinds[i] == L_AS_IS:
            out = _put_utf8(out, text)
        elif kinds[i] == L_BIT:
            memcpy(out, b"B'", 2)
            out = _put_utf8(out + 2, text)
            out[0] = 39
            out += 1
        else:
            out[0] = 39
            out += 1
            data = PyUnicode_AsUTF8AndSize(text, &size)
            for j in range(size):
                out[0] = data[j]
                out += 1
                if data[j] == 39:
                    out[0] = 39
                    out += 1
            out[0] = 39
            out += 1
    return line


cdef dict _td_headers = None
cdef dict _td_prefixes = None


def setup_test_decoding(dict headers, dict prefixes):
    """The column plans and table prefixes ``plugins.test_decoding`` keeps (id(columns) ->
    (columns, headers, literal kinds); (schema, name) -> prefix), read here before calling it."""
    global _td_headers, _td_prefixes
    _td_headers, _td_prefixes = headers, prefixes


def test_decoding_body(list changes, object column_plan, object table_prefix, object render_change):
    """A transaction's test_decoding change lines, ``(position, line)`` each: what the reference
    gives (``render_change(change)`` encoded, which renders those this does not: deletes,
    truncates, updates with an old key), the column plans and table prefixes its own."""
    cdef list body = []
    cdef object action, relation, columns, plan, prefix, texts, line
    for change in changes:
        action = _TD_ACTIONS.get(change.action)
        if action is None or change.key is not None or change.new is None:
            line = render_change(change)
        else:
            relation = change.relation
            columns = relation.columns
            plan = None if _td_headers is None else _td_headers.get(id(columns))
            if plan is None or plan[0] is not columns or len(<list>plan[1]) != len(columns):
                plan = column_plan(columns)
            else:
                plan = plan[1:]
            prefix = None if _td_prefixes is None else _td_prefixes.get(
                (relation.schema, relation.name))
            if prefix is None:
                prefix = table_prefix(relation.schema, relation.name)
            texts = _change_texts(change)
            line = _td_line(prefix, action, <list>plan[0], <bytes>plan[1], texts)
            if line is not None:
                body.append((change.pos, line))
                continue
            line = prefix + action + test_decoding_tuple(<list>plan[0], <bytes>plan[1], texts,
                                                         False)
        body.append((change.pos, (<str>line).encode()))
    return body


def pgoutput_text_tuple(Py_ssize_t count, list texts):
    """pgoutput's TupleData of ``count`` columns in text format: what the reference
    (``plugins.pgoutput.text_tuple_data``) gives, or None for it to decide (a count out of the
    int16 range, a text that is not a str)."""
    cdef Py_ssize_t n = min(len(texts), count), i, size, total = 2
    cdef const char* data
    cdef object text
    if count < 0 or count > 32767:
        return None
    for i in range(n):
        text = texts[i]
        if text is None:
            total += 1
        elif type(text) is str:
            PyUnicode_AsUTF8AndSize(text, &size)
            if size > 0x7FFFFFFF:
                return None
            total += 5 + size
        else:
            return None
    total += count - n
    cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* p = PyBytes_AS_STRING(out)
    _put_be(p, count, 2)
    p += 2
    for i in range(n):
        text = texts[i]
        if text is None:
            p[0] = b"n"
            p += 1
            continue
        data = PyUnicode_AsUTF8AndSize(text, &size)
        p[0] = b"t"
        _put_be(p + 1, size, 4)
        memcpy(p + 5, data, size)
        p += 5 + size
    for i in range(count - n):
        p[i] = b"n"
    return out


cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d):
    """Days from 1970-01-01 to the proleptic Gregorian date (y >= 1)."""
    y -= m <= 2
    cdef int64_t era = y // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


cdef bint _pg_micros(object when, int64_t* micros):
    """``plugins.pgoutput.pg_timestamp`` of an aware UTC datetime (False for another kind)."""
    _know_datetime()
    if type(when) is not _datetime_type or datetime_tzinfo(when) is not _UTC:
        return False
    cdef int64_t days = _days_from_civil(datetime_year(when), datetime_month(when),
                                         datetime_day(when)) - 10957  # 2000-01-01
    micros[0] = ((days * 86400 + datetime_hour(when) * 3600 + datetime_minute(when) * 60
                  + datetime_second(when)) * 1000000 + datetime_microsecond(when))
    return True


cdef inline bint _in_range(object value, uint64_t highest):
    return type(value) is int and 0 <= value <= highest


def pgoutput_text_frame(list pieces, bytes tail, object tx):
    """``frame_messages`` of what ``plugins.pgoutput.ahead_messages(binary=False)`` gives for
    ``tx`` (Begin, each change's Insert or Update in text format, Commit) in one call; None,
    with nothing appended, for the reference to render: a delete, a truncate, an update with
    an old key, a value out of its message field's range."""
    if tail is None:
        raise TypeError("tail must be bytes")
    cdef list changes = tx.changes
    if not changes:
        return tail
    cdef list payloads = []
    cdef object relation, data, commit_pos = tx.commit_pos, end_pos = tx.end_pos, xid = tx.xid
    cdef bytes payload, begin, commit
    cdef char* out
    cdef Py_ssize_t size
    cdef int64_t micros
    for change in changes:
        action = change.action
        if (action != "I" and action != "U") or change.key is not None:
            return None
        relation = change.relation
        if not _in_range(relation.oid, 0xFFFFFFFF):
            return None
        data = pgoutput_text_tuple(len(relation.columns), _change_texts(change))
        if data is None:
            return None
        size = PyBytes_GET_SIZE(data)
        payload = PyBytes_FromStringAndSize(NULL, 6 + size)
        out = PyBytes_AS_STRING(payload)
        out[0] = b"I" if action == "I" else b"U"
        _put_be(out + 1, relation.oid, 4)
        out[5] = b"N"
        memcpy(out + 6, PyBytes_AS_STRING(data), size)
        payloads.append(payload)
    if (not _pg_micros(tx.commit_time, &micros) or not _in_range(xid, 0xFFFFFFFF)
            or not _in_range(commit_pos, 0xFFFFFFFFFFFFFFFF)
            or not _in_range(end_pos, 0xFFFFFFFFFFFFFFFF)):
        return None
    begin = PyBytes_FromStringAndSize(NULL, 21)  # 'B', final LSN, commit time, xid
    out = PyBytes_AS_STRING(begin)
    out[0] = b"B"
    _put_be(out + 1, commit_pos, 8)
    _put_be(out + 9, <uint64_t>micros, 8)
    _put_be(out + 17, xid, 4)
    commit = PyBytes_FromStringAndSize(NULL, 26)  # 'C', flags, commit LSN, end LSN, commit time
    out = PyBytes_AS_STRING(commit)
    out[0] = b"C"
    out[1] = 0
    _put_be(out + 2, commit_pos, 8)
    _put_be(out + 10, end_pos, 8)
    _put_be(out + 18, <uint64_t>micros, 8)
    tail = _frame_one(pieces, tail, changes[0].pos, begin)
    for change, payload in zip(changes, payloads):
        tail = _frame_one(pieces, tail, change.pos, payload)
    return _frame_one(pieces, tail, end_pos, commit)


cdef inline void _put_be(char* out, uint64_t value, int size):
    cdef int i
    for i in range(size):
        out[i] = <char>((value >> (8 * (size - 1 - i))) & 0xFF)


def frame_messages(list pieces, bytes tail, list messages):
    """Appends to ``pieces`` each message's XLogData framing up to its sendTime, after the
    previous message's payload (``tail`` first): what ``walsender.ahead.ChunkFramer.add`` does
    with ``wire.xlog_data_head`` (dataStart and walEnd both the message's position). Returns
    the last payload, the next piece's start."""
    if tail is None:
        raise TypeError("tail must be bytes")
    for data_start, payload in messages:
        tail = _frame_one(pieces, tail, data_start, payload)
    return tail


cdef bytes _frame_one(list pieces, bytes tail, uint64_t data_start, object payload):
    """``frame_messages`` of one message."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(tail)
    cdef bytes piece
    cdef char* out
    if type(payload) is not bytes:
        raise TypeError("a message's payload must be bytes")
    piece = PyBytes_FromStringAndSize(NULL, size + 22)
    out = PyBytes_AS_STRING(piece)
    memcpy(out, PyBytes_AS_STRING(tail), size)
    out += size
    out[0] = b"d"
    _put_be(out + 1, 29 + PyBytes_GET_SIZE(payload), 4)
    out[5] = b"w"
    _put_be(out + 6, data_start, 8)
    _put_be(out + 14, data_start, 8)
    pieces.append(piece)
    return <bytes>payload


def test_decoding_frame(list pieces, bytes tail, object tx, bint xids, bint skip_empty,
                        object column_plan, object table_prefix, object render_change):
    """``frame_messages`` of what ``TestDecodingPlugin.render`` gives for ``tx`` with
    include-timestamp off (``xids``: include-xids, ``skip_empty``: skip-empty-xacts), in one
    call instead of a message list rendered, then framed. Returns the new tail."""
    if tail is None:
        raise TypeError("tail must be bytes")
    cdef list body = test_decoding_body(tx.changes, column_plan, table_prefix, render_change)
    if skip_empty and not body:
        return tail
    cdef bytes begin = b"BEGIN", commit = b"COMMIT"
    if xids:
        begin = b"BEGIN %d" % tx.xid
        commit = b"COMMIT %d" % tx.xid
    tail = _frame_one(pieces, tail, 0 if skip_empty else tx.begin_pos, begin)
    for position, line in body:
        tail = _frame_one(pieces, tail, position, line)
    return _frame_one(pieces, tail, tx.end_pos, commit)


cdef extern from "Python.h":
    bint PyObject_IS_GC(object obj)
    void PyObject_GC_UnTrack(void* obj)


cdef inline void _untrack(object obj):
    if obj is not None and PyObject_IS_GC(obj):
        PyObject_GC_UnTrack(<void*>obj)


def untrack(*objects):
    """Take objects that are in no reference cycle out of the cyclic collector's sight
    (reference counting frees them): see ``pgshim.speedups.untrack``."""
    for obj in objects:
        _untrack(obj)


def untrack_transaction(tx):
    """``untrack`` for a decoded transaction and the containers it owns (the values stay
    tracked)."""
    _untrack(tx)
    _untrack(tx.changes)
    for change in tx.changes:
        _untrack(change)
        _untrack(change.new)
        _untrack(change.key)
    _untrack(tx.records)
    for record in tx.records:
        _untrack(record)
    _untrack(tx.errors)
