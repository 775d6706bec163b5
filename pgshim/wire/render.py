"""Python values to and from wire bytes, in text or binary as the client asked (via pgtypes)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Protocol

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.wire import messages as msg

TEXT = 0
BINARY = 1


class ColumnLike(Protocol):
    name: str
    type_oid: int
    typlen: int
    typmod: int


def expand_formats(formats: Sequence[int], count: int, what: str) -> list[int]:
    """Format codes per item from the 0 / 1 / n form used by Bind."""
    if not formats:
        codes = [TEXT] * count
    elif len(formats) == 1:
        codes = [formats[0]] * count
    elif len(formats) == count:
        codes = list(formats)
    else:
        raise PgError(
            "08P01", f"bind message has {len(formats)} {what} formats but {count} {what}s"
        )
    for code in codes:
        if code not in (TEXT, BINARY):
            raise PgError("22023", f"unsupported format code: {code}")
    return codes


def row_description(columns: Sequence[ColumnLike], formats: Sequence[int] | None = None) -> bytes:
    formats = formats or [TEXT] * len(columns)
    return msg.row_description(
        msg.field(c.name, c.type_oid, c.typlen, c.typmod, f)
        for c, f in zip(columns, formats, strict=True)
    )


def encode_value(oid: int, value: Any, fmt: int) -> bytes | None:
    if value is None:
        return None
    if fmt == BINARY:
        return pgtypes.binary_send(oid, value)
    return pgtypes.text_out(oid, value).encode()


def encode_row(row: Sequence[Any], oids: Sequence[int], formats: Sequence[int]) -> bytes:
    return msg.data_row(
        [encode_value(oid, value, fmt) for oid, value, fmt in zip(oids, row, formats, strict=True)]
    )


def decode_params(
    raw: Sequence[bytes | None], oids: Sequence[int], formats: Sequence[int]
) -> list[Any]:
    """Bind parameter bytes to Python values; oid 0 (unknown) keeps text as str."""
    codes = expand_formats(formats, len(raw), "parameter")
    values: list[Any] = []
    for index, (data, oid, code) in enumerate(zip(raw, oids, codes, strict=True), start=1):
        if data is None:
            values.append(None)
            continue
        try:
            if code == BINARY:
                values.append(pgtypes.binary_recv(oid, data) if oid else data)
            else:
                text = data.decode("utf-8")
                values.append(pgtypes.text_in(oid, text) if oid else text)
        except PgError:
            raise
        except (ValueError, UnicodeDecodeError, KeyError, ArithmeticError, struct.error) as exc:
            kind = "binary" if code == BINARY else "text"
            raise PgError(
                "22P02" if code == TEXT else "22P03",
                f"invalid {kind} data for parameter ${index} (type oid {oid})",
            ) from exc
    return values
