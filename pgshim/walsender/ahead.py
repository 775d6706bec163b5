"""Output rendered ahead: XLogData for whole store chunks, framed once, copied by sessions.

A consumer catching up renders nothing: the change source hands it an ``AheadChunk`` whose output
holds the chunk's XLogData messages exactly as the plugin would produce them, with a placeholder
sendTime stamped when the bytes are sent. Which formats are rendered ahead is decided by
``AheadKeys``: the ones consumers asked for recently and the default of every slot's plugin.

Layout of a chunk's output, in machine byte order (a local cache): u32 transactions, u32
messages, an 8-byte marker; per transaction its end position (u64) and the number of messages up
to its end (u32); then the framed messages, each with the marker as its sendTime. The marker is
chosen when the chunk is rendered so that it occurs nowhere else in the output: its first reader
splits the messages at it, and sending is joining those pieces with the sendTime.
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from sqlite3 import Connection

from pgshim.logical.decoded_store import DecodedStore
from pgshim.logical.source import AheadChunk
from pgshim.logical.transactions import Transaction
from pgshim.plugins import Message, ahead_messages
from pgshim.wire import messages as wire

_HEADER = struct.Struct("<II8s")
_SEND_TIME = struct.Struct("!q")
_BEFORE_SEND_TIME = 1 + 4 + 1 + 8 + 8  # CopyData type and length, 'w', dataStart, walEnd
_MARKER_TRIES = 8  # random 8-byte markers: one clashing with the output is already a rarity
KEY_LIFETIME = 7 * 86400.0  # seconds a format stays rendered ahead after its last use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ahead_keys (
    key TEXT PRIMARY KEY,
    last_used REAL NOT NULL
);
"""


class ChunkFramer:
    """Frames one format's messages for a store chunk as its transactions are ingested (the work
    spreads over ingestion instead of landing on the event loop at once) and gives the chunk's
    output in the layout above when it is written."""

    def __init__(self, render: Callable[[Transaction], list[Message]]) -> None:
        self._render = render
        self.reset()

    def reset(self) -> None:
        self._transactions: list[Transaction] = []
        self._marker = _marker()
        self._send_time = _SEND_TIME.unpack(self._marker)[0]
        self._ends, self._message_ends = array("Q"), array("I")
        self._data = bytearray()
        self._messages = 0

    def add(self, tx: Transaction) -> None:
        data, send_time = self._data, self._send_time
        for data_start, payload in self._render(tx):
            data += wire.xlog_data(data_start, data_start, send_time, payload)
            self._messages += 1
        self._transactions.append(tx)
        self._ends.append(tx.end_pos)
        self._message_ends.append(self._messages)

    def render(self, transactions: list[Transaction]) -> bytes:
        """A whole chunk's output at once, leaving what ``add`` gathered alone."""
        framer = ChunkFramer(self._render)
        for tx in transactions:
            framer.add(tx)
        return framer.finish()

    def finish(self) -> bytes:
        """The chunk's output (then starts the next chunk); ValueError in the rare case where no
        marker was found that occurs only as the placeholders."""
        transactions = self._transactions
        try:
            for _ in range(_MARKER_TRIES):
                output = b"".join(
                    (_HEADER.pack(len(self._ends), self._messages, self._marker),
                     self._ends.tobytes(), self._message_ends.tobytes(), self._data)
                )  # fmt: skip
                if _only_at_send_times(output, self._marker, self._messages):
                    return output
                self.reset()  # the marker occurs in the output: frame it again with another
                for tx in transactions:
                    self.add(tx)
            raise ValueError("no placeholder sendTime is absent from this output")
        finally:
            self.reset()


def _marker() -> bytes:
    """8 random bytes no proper prefix of which is also a suffix: two occurrences of such a
    marker never overlap, so counting them finds every one."""
    while True:
        marker = os.urandom(_SEND_TIME.size)
        if all(marker[:k] != marker[-k:] for k in range(1, len(marker))):
            return marker


def _only_at_send_times(output: bytes, marker: bytes, messages: int) -> bool:
    """Whether ``marker`` occurs in ``output`` only where it was put: in the header and as each
    message's sendTime (so splitting at it splits the messages and nothing else)."""
    return output.count(marker) == messages + 1


def chunk_messages(chunk: AheadChunk, now: int) -> tuple[memoryview, int]:
    """The chunk's messages due after ``chunk.after_pos``, with sendTime ``now``, and how many
    they are."""
    ahead = chunk.ahead
    if ahead.parsed is None:
        ahead.parsed = _parse(ahead.output)
    ends, message_ends, pieces = ahead.parsed
    first = bisect_right(ends, chunk.after_pos)
    if first == len(ends):
        return memoryview(b""), 0
    sent_before = message_ends[first - 1] if first else 0
    # message m's sendTime goes between pieces m and m + 1: joining them is the whole stamping
    output = _SEND_TIME.pack(now).join(pieces[sent_before:] if sent_before else pieces)
    start = len(pieces[sent_before]) - _BEFORE_SEND_TIME
    return memoryview(output)[start:], message_ends[-1] - sent_before


def _parse(output: bytes) -> tuple[array, array, list[bytes]]:
    """(end position, message end) per transaction and the messages split at their sendTime."""
    transactions, _, marker = _HEADER.unpack_from(output)
    view = memoryview(output)
    at = _HEADER.size
    ends, at = _array("Q", view, at, transactions)
    message_ends, at = _array("I", view, at, transactions)
    return ends, message_ends, output[at:].split(marker)


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

    def rows(self) -> list[tuple[str, datetime, int, int]]:
        """(format, last used, chunks kept, their bytes): the pgshim_output_formats view."""
        sizes = {} if self._store is None else self._store.ahead_sizes()
        return [
            (key, datetime.fromtimestamp(used, UTC), *sizes.get(key, (0, 0)))
            for key, used in sorted(self._keys.items())
        ]

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
            framers = {}
            for key in recent:
                messages = ahead_messages(key)
                if messages is not None:
                    framers[key] = ChunkFramer(messages)
            self._store.keep_ahead(framers)
