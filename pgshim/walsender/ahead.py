"""Output rendered ahead: XLogData for whole store chunks, framed once, copied by sessions.

A consumer catching up renders nothing: the change source hands it an ``AheadChunk`` whose output
holds the chunk's XLogData messages exactly as the plugin would produce them, with a zero
sendTime that is set when the bytes are sent. Which formats are rendered ahead is decided by
``AheadKeys``: the ones consumers asked for recently and the default of every slot's plugin.

Layout of a chunk's output (machine byte order: a local cache): u32 transactions, u32 messages; per transaction its
end position (u64), the end of its bytes (u32) and of its messages (u32); per message the offset
of its sendTime (u32); then the framed messages.
"""

from __future__ import annotations

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

_COUNTS = struct.Struct("<II")
_SEND_TIME = struct.Struct("!q")
_SEND_TIME_AT = 22  # 'd', length, 'w', dataStart, walEnd
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
        ends, byte_ends, message_ends, send_times = array("Q"), array("I"), array("I"), array("I")
        data = bytearray()
        for tx in transactions:
            for data_start, payload in render(tx):
                send_times.append(len(data) + _SEND_TIME_AT)
                data += wire.xlog_data(data_start, data_start, 0, payload)
            ends.append(tx.end_pos)
            byte_ends.append(len(data))
            message_ends.append(len(send_times))
        return b"".join(
            (_COUNTS.pack(len(ends), len(send_times)), ends.tobytes(), byte_ends.tobytes(),
             message_ends.tobytes(), send_times.tobytes(), data)
        )  # fmt: skip

    return render_chunk


def send_chunk(chunk: AheadChunk, out: bytearray, now: int) -> int:
    """Append the chunk's messages due after ``chunk.after_pos`` to ``out`` with sendTime
    ``now``; returns how many messages."""
    view = memoryview(chunk.ahead.output)
    transactions, messages = _COUNTS.unpack_from(view)
    at = _COUNTS.size
    ends, at = _array("Q", view, at, transactions)
    byte_ends, at = _array("I", view, at, transactions)
    message_ends, at = _array("I", view, at, transactions)
    send_times, at = _array("I", view, at, messages)
    data = view[at:]
    first = bisect_right(ends, chunk.after_pos)
    if first == transactions:
        return 0
    byte_start = byte_ends[first - 1] if first else 0
    message_start = message_ends[first - 1] if first else 0
    base = len(out) - byte_start
    out += data[byte_start:]
    pack = _SEND_TIME.pack_into
    for offset in send_times[message_start:]:
        pack(out, base + offset, now)
    return messages - message_start


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
