"""Offset-based receive buffer: bytes are appended, frames are cut without re-scanning."""

from __future__ import annotations

import struct

from pgshim.errors import PgError

_LENGTH = struct.Struct("!I")
_COMPACT_THRESHOLD = 64 * 1024


class ReceiveBuffer:
    """Accumulates socket reads and hands out whole PostgreSQL messages.

    Consumed bytes are only tracked by an offset and dropped in one slice once they make up
    a large part of the buffer, so neither a split message nor many coalesced messages cost
    more than one pass over the data.
    """

    __slots__ = ("_data", "_offset")

    def __init__(self) -> None:
        self._data = bytearray()
        self._offset = 0

    def __len__(self) -> int:
        return len(self._data) - self._offset

    def feed(self, data: bytes) -> None:
        if (
            self._offset
            and self._offset >= _COMPACT_THRESHOLD
            and self._offset * 2 >= len(self._data)
        ):
            del self._data[: self._offset]
            self._offset = 0
        self._data += data

    def first_byte(self) -> int | None:
        """The next unread byte (a message's type), or None when nothing is buffered."""
        return self._data[self._offset] if len(self) else None

    def take_rest(self) -> bytes:
        rest = bytes(self._data[self._offset :])
        self._data.clear()
        self._offset = 0
        return rest

    def next_startup_packet(self, max_length: int) -> bytes | None:
        """The body (after the length word) of an untyped startup packet, or None if incomplete."""
        if len(self) < 4:
            return None
        (length,) = _LENGTH.unpack_from(self._data, self._offset)
        if length < 8 or length > max_length:
            raise PgError("08P01", "invalid length of startup packet", severity="FATAL")
        if len(self) < length:
            return None
        start = self._offset + 4
        self._offset += length
        return bytes(self._data[start : self._offset])

    def next_message(
        self, max_length: int, length_error: str | None = None
    ) -> tuple[bytes, bytes] | None:
        """(tag, body) of the next typed message, or None if it is not complete yet.

        The length word is checked as soon as it is in, before any of the body: a bad one raises
        FATAL 08P01 with `length_error` when given.
        """
        if len(self) < 5:
            return None
        tag = bytes(self._data[self._offset : self._offset + 1])
        (length,) = _LENGTH.unpack_from(self._data, self._offset + 1)
        if length_error is not None and not 4 <= length <= max_length:
            raise PgError("08P01", length_error, severity="FATAL")
        if length < 4:
            raise PgError("08P01", f"invalid message length {length}", severity="FATAL")
        if length > max_length:
            raise PgError("08P01", f"message of length {length} is too long", severity="FATAL")
        end = self._offset + 1 + length
        if len(self._data) < end:
            return None
        body = bytes(self._data[self._offset + 5 : end])
        self._offset = end
        return tag, body
