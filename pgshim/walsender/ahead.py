"""Output rendered ahead: XLogData for whole store chunks, framed once, copied by sessions.

A consumer catching up renders nothing: the change source hands it an ``AheadChunk`` whose output
holds the chunk's XLogData messages exactly as the plugin would produce them, with a placeholder
sendTime replaced when the bytes are sent. Which formats are rendered ahead is decided by
``AheadKeys``: the ones consumers asked for recently and the default of every slot's plugin.

Layout of a chunk's output, in machine byte order (a local cache): u32 transactions, u32
messages, an 8-byte marker; per transaction its end position (u64), the end of its bytes (u32)
and the number of messages up to its end (u32); then the framed messages, each with the marker as
its sendTime. Sending is one ``bytes.replace`` of the marker by the sendTime: the marker is
chosen when the chunk is rendered so that it occurs nowhere else in the output.
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from sqlite3 import Connection

from pgshim.logical.decoded_store import AheadRenderer, DecodedStore
from pgshim.logical.source import AheadChunk
from pgshim.logical.transactions import Transaction
from pgshim.plugins import Message, ahead_messages
from pgshim.wire import messages as wire

_HEADER = struct.Struct("<II8s")
_SEND_TIME = struct.Struct("!q")
_SEND_TIME_AT = 22  # 'd', length, 'w', dataStart, walEnd
_MARKER_TRIES = 8  # random 8-byte markers: one clashing with the output is already a rarity
KEY_LIFETIME = 7 * 86400.0  # seconds a format stays rendered ahead after its last use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ahead_keys (
    key TEXT PRIMARY KEY,
    last_used REAL NOT NULL
);
"""


def framed_renderer(render: Callable[[Transaction], list[Message]]) -> AheadRenderer:
    """Renders a chunk's transactions into the layout above, with ``render``'s messages."""

    def render_chunk(transactions: list[Transaction]) -> bytes:
        messages = sum(len(render(tx)) for tx in transactions)
        for _ in range(_MARKER_TRIES):
            marker = os.urandom(_SEND_TIME.size)
            output = _layout(transactions, render, marker)
            if _only_at_send_times(output, marker, messages):
                return output
        raise ValueError("no placeholder sendTime is absent from this output")

    return render_chunk


def _layout(
    transactions: list[Transaction], render: Callable[[Transaction], list[Message]], marker: bytes
) -> bytes:
    (send_time,) = _SEND_TIME.unpack(marker)
    ends, byte_ends, message_ends = array("Q"), array("I"), array("I")
    data = bytearray()
    count = 0
    for tx in transactions:
        for data_start, payload in render(tx):
            data += wire.xlog_data(data_start, data_start, send_time, payload)
            count += 1
        ends.append(tx.end_pos)
        byte_ends.append(len(data))
        message_ends.append(count)
    header = _HEADER.pack(len(ends), count, marker)
    return b"".join((header, ends.tobytes(), byte_ends.tobytes(), message_ends.tobytes(), data))


def _only_at_send_times(output: bytes, marker: bytes, messages: int) -> bool:
    """Whether replacing ``marker`` (leftmost first, as ``bytes.replace`` does) replaces the
    sendTime of each message and nothing else."""
    transactions = _HEADER.unpack_from(output)[0]
    at = _HEADER.size + 16 * transactions
    if output.find(marker) != _HEADER.size - len(marker):  # the header's own copy comes first
        return False
    found = output.find(marker, _HEADER.size)
    for _ in range(messages):
        length = int.from_bytes(output[at + 1 : at + 5], "big")
        if found != at + _SEND_TIME_AT:
            return False
        found = output.find(marker, found + len(marker))
        at += 1 + length
    return found == -1


def chunk_messages(chunk: AheadChunk, now: int) -> tuple[memoryview, int]:
    """The chunk's messages due after ``chunk.after_pos``, with sendTime ``now``, and how many
    they are."""
    ahead = chunk.ahead
    if ahead.parsed is None:
        ahead.parsed = _parse(ahead.output)
    ends, byte_ends, message_ends, marker, data_at = ahead.parsed
    first = bisect_right(ends, chunk.after_pos)
    start = data_at + byte_ends[first - 1] if first else data_at
    sent_before = message_ends[first - 1] if first else 0
    output = ahead.output.replace(marker, _SEND_TIME.pack(now)) if first < len(ends) else b""
    return memoryview(output)[start:], message_ends[-1] - sent_before


def _parse(output: bytes) -> tuple[array, array, array, bytes, int]:
    """(end position, byte end, message end) per transaction, the marker, where data starts."""
    transactions, _, marker = _HEADER.unpack_from(output)
    view = memoryview(output)
    at = _HEADER.size
    ends, at = _array("Q", view, at, transactions)
    byte_ends, at = _array("I", view, at, transactions)
    message_ends, at = _array("I", view, at, transactions)
    return ends, byte_ends, message_ends, marker, at


def _array(typecode: str, view: memoryview, at: int, count: int) -> tuple[array, int]:
    values = array(typecode)
    end = at + values.itemsize * count
    values.frombytes(view[at:end])
    return values, end


class AheadKeys:
    """The output formats rendered ahead, remembered across restarts in the state database."""

    def __init__(self, conn: Connection, store: DecodedStore | None, max_keys: int = 4) -> None:
        self._conn = conn
        self._store = store
        self._max_keys = max_keys  # each format rendered ahead costs ingestion time and disk
        conn.executescript(_SCHEMA)
        self._keys = dict(conn.execute("SELECT key, last_used FROM ahead_keys"))
        self._apply(time.time())

    def use(self, key: str | None, now: float | None = None) -> None:
        """A consumer asked for this format (or a slot was created for it): keep it rendered."""
        if key is None or ahead_messages(key) is None:
            return
        now = time.time() if now is None else now
        known = key in self._keys
        self._keys[key] = now
        self._conn.execute(
            "INSERT OR REPLACE INTO ahead_keys (key, last_used) VALUES (?, ?)", (key, now)
        )
        if not known:
            self._apply(now)

    def active(self) -> list[str]:
        return sorted(self._keys)

    def _apply(self, now: float) -> None:
        recent = sorted(
            (k for k, used in self._keys.items() if now - used < KEY_LIFETIME),
            key=lambda k: self._keys[k],
            reverse=True,
        )[: self._max_keys]
        for key in set(self._keys) - set(recent):
            del self._keys[key]
            self._conn.execute("DELETE FROM ahead_keys WHERE key = ?", (key,))
        if self._store is not None:
            renderers = {}
            for key in recent:
                messages = ahead_messages(key)
                if messages is not None:
                    renderers[key] = framed_renderer(messages)
            self._store.keep_ahead(renderers)
