"""Primitive encodings of RedDB's entity format: LEB128 varints and length-prefixed strings."""

from __future__ import annotations

from pgshim.reddb.errors import ChangeDecodeError

Buffer = bytes | bytearray | memoryview


def read_varu(buf: Buffer, pos: int, *, max_shift: int = 70) -> tuple[int, int]:
    """Read an unsigned LEB128 integer; max_shift is 35 for varu32 and 70 for varu64."""
    result = 0
    shift = 0
    start = pos
    end = len(buf)
    while True:
        if pos >= end:
            raise ChangeDecodeError("truncated varint", position=start)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= max_shift:
            raise ChangeDecodeError("varint too long", position=start)


def read_varu32(buf: Buffer, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # one-byte varints are most of them
        return buf[pos], pos + 1
    value, pos2 = read_varu(buf, pos, max_shift=35)
    if value > 0xFFFFFFFF:
        raise ChangeDecodeError("varu32 out of range", position=pos)
    return value, pos2


def read_varu64(buf: Buffer, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:
        return buf[pos], pos + 1
    value, pos2 = read_varu(buf, pos, max_shift=70)
    if value > 0xFFFFFFFFFFFFFFFF:
        raise ChangeDecodeError("varu64 out of range", position=pos)
    return value, pos2


def read_bytes(buf: Buffer, pos: int, size: int) -> tuple[bytes, int]:
    end = pos + size
    if end > len(buf):
        raise ChangeDecodeError(f"truncated: need {size} bytes", position=pos)
    return bytes(buf[pos:end]), end


def read_str(buf: Buffer, pos: int) -> tuple[str, int]:
    start = pos
    size, pos = read_varu32(buf, pos)
    end = pos + size
    if end > len(buf):
        raise ChangeDecodeError(f"truncated: need {size} bytes", position=pos)
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError:
        raise ChangeDecodeError("invalid UTF-8 in string", position=start) from None


def varu(value: int) -> bytes:
    """Encode an unsigned LEB128 integer."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return varu(len(raw)) + raw
