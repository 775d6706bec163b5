"""Output rendered ahead: XLogData for whole store chunks, framed once, copied by sessions.

A consumer catching up renders nothing: the change source hands it an ``AheadChunk`` whose output
holds the chunk's XLogData messages exactly as the plugin would produce them, but for sendTime,
stamped when the bytes are sent. Which formats are rendered ahead is decided by ``AheadKeys``: the
ones consumers asked for recently and the default of every slot's plugin.

A chunk's output is kept as a pickle (a local cache) of: per transaction its end position (u64)
and the number of messages up to its end (u32), each array in machine byte order; then the framed
messages split around their sendTimes. Sending is joining those pieces with the sendTime: message
m's goes between pieces m and m + 1.
"""

from __future__ import annotations

import io
import logging
import pickle
import sqlite3
import struct
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from sqlite3 import Connection

from pgshim import speedups
from pgshim.logical.decoded_store import DecodedStore, PlainUnpickler
from pgshim.logical.source import AheadChunk
from pgshim.logical.transactions import Transaction
from pgshim.plugins import AheadFraming, Message, ahead_framing, ahead_messages
from pgshim.wire import messages as wire

log = logging.getLogger(__name__)

_SEND_TIME = struct.Struct("!q")
_HEAD_SIZE = len(wire.xlog_data_head(0, 0, 0))  # an XLogData message's bytes before its sendTime
KEY_LIFETIME = 7 * 86400.0  # seconds a format stays rendered ahead after its last use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ahead_keys (
    key TEXT PRIMARY KEY,
    last_used REAL NOT NULL
);
"""

FramedChunk = tuple[array, array, list[bytes]]  # end positions, message ends, pieces


def frame_messages(pieces: list[bytes], tail: bytes, messages: list[Message]) -> bytes:
    """Appends to ``pieces`` each message's framing up to its sendTime after the previous
    message's payload (``tail`` first); returns the last payload, the next piece's start. The
    compiled core's reference."""
    for data_start, payload in messages:
        pieces.append(tail + wire.xlog_data_head(data_start, data_start, len(payload)))
        tail = payload
    return tail


_frame_messages = frame_messages if speedups.core is None else speedups.core.frame_messages


class ChunkFramer:
    """Frames one format's messages for a store chunk as its transactions are ingested (the work
    spreads over ingestion instead of landing on the event loop at once) and gives the chunk's
    output in the layout above when it is written."""

    def __init__(
        self, render: Callable[[Transaction], list[Message]], frame: AheadFraming | None = None
    ) -> None:
        self._render = render
        self._frame = frame  # the same framing in one call (None: for none of the transactions)
        self.reset()

    def reset(self) -> None:
        self._ends, self._message_ends = array("Q"), array("I")
        self._pieces: list[bytes] = []
        self._tail = b""  # the last message's payload: the start of the next piece

    def add(self, tx: Transaction) -> None:
        tail = None if self._frame is None else self._frame(self._pieces, self._tail, tx)
        if tail is None:
            tail = _frame_messages(self._pieces, self._tail, self._render(tx))
        self._tail = tail
        self._ends.append(tx.end_pos)
        self._message_ends.append(len(self._pieces))

    def render(self, transactions: list[Transaction]) -> bytes:
        """A whole chunk's output at once, leaving what ``add`` gathered alone."""
        framer = ChunkFramer(self._render, self._frame)
        for tx in transactions:
            framer.add(tx)
        return framer.finish()

    def finish(self) -> bytes:
        """The chunk's output (then starts the next chunk)."""
        chunk = (self._ends.tobytes(), self._message_ends.tobytes(), [*self._pieces, self._tail])
        self.reset()
        return pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def parse(output: bytes) -> FramedChunk:
        ends, message_ends, pieces = PlainUnpickler(io.BytesIO(output)).load()
        return array("Q", ends), array("I", message_ends), pieces


def chunk_messages(chunk: AheadChunk, now: int) -> tuple[bytes, int]:
    """The chunk's messages due after ``chunk.after_pos``, with sendTime ``now``, and how many
    they are."""
    ends, message_ends, pieces = chunk.ahead.output
    first = bisect_right(ends, chunk.after_pos)
    if first == len(ends):
        return b"", 0
    sent = message_ends[first - 1] if first else 0
    if sent:
        # the first piece due starts with the payload of a message sent: keep its own framing
        pieces = [pieces[sent][-_HEAD_SIZE:], *pieces[sent + 1 :]]
    return _SEND_TIME.pack(now).join(pieces), message_ends[-1] - sent


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
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO ahead_keys (key, last_used) VALUES (?, ?)", (key, now)
            )
        except sqlite3.Error as exc:  # a full state disk: remembered until the next use
            log.warning("output format %s cannot be remembered (%s)", key, exc)
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
                    framers[key] = ChunkFramer(messages, ahead_framing(key))
            self._store.keep_ahead(framers)
