"""The logical streaming session: START_REPLICATION's CopyBoth phase.

``StreamState`` is the pure part: it turns transactions into XLogData bytes, keeps the session's
positions, and interprets the client's standby status updates. ``ReplicationStream`` is the thin
asyncio driver that moves bytes between the change source, the state and the client.

Positions follow PostgreSQL's walsender:
* ``sent`` is the end position of the last transaction handed to the plugin (sent or filtered out);
  keepalives advertise exactly that, never more, because clients confirm keepalive positions.
* The stream starts at ``max(requested, confirmed_flush)`` with the requested part clamped to the
  end of what exists (:func:`start_position`): a start in the future neither skips changes
  written later nor is advertised.
* The client's flush position becomes the slot's confirmed_flush (0/0 and backwards moves
  ignored); write, flush and apply positions beyond ``sent`` are clamped to ``sent``.
* A transaction is streamed iff its end position is after the start position.

:class:`ActiveStreams` tracks the running streams by slot, so a slot's stream can be ended with an
error (an invalidated slot's, see ``slots.SlotStore.invalidate``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pgshim.errors import PgError
from pgshim.logical.source import AheadChunk, ChangeSource
from pgshim.logical.transactions import Transaction
from pgshim.plugins import OutputPlugin
from pgshim.plugins.base import SharedOutputPlugin
from pgshim.speedups import untrack
from pgshim.sql.bounds import Bound
from pgshim.sql.results import CopyBothStream
from pgshim.walsender.ahead import chunk_messages
from pgshim.wire import events as ev
from pgshim.wire import messages as wire
from pgshim.wire.handler import StreamIO

log = logging.getLogger(__name__)

PG_EPOCH_US = 946_684_800_000_000
BATCH_TRANSACTIONS = 256
FIRST_BATCH_TRANSACTIONS = 8  # batches start small so the first change leaves early, then double
FLUSH_BYTES = 256 * 1024


def pg_now_us() -> int:
    return time.time_ns() // 1000 - PG_EPOCH_US


def start_position(requested: int, confirmed_flush: int, end: int) -> int:
    """Where START_REPLICATION streams from: ``max(requested, confirmed_flush)``, the requested
    position clamped to ``end`` (the end of what exists). The slot's own confirmed position is
    taken as it is (it was sent once, even if ingestion has not reached it again yet)."""
    return max(min(requested, end), confirmed_flush)


@dataclass
class Feedback:
    """The last standby status update, as pg_stat_replication shows it."""

    write: int = 0
    flush: int = 0
    apply: int = 0
    reply_time_us: int | None = None


@dataclass
class StreamState:
    plugin: OutputPlugin
    start: int
    sent: int = 0
    feedback: Feedback = field(default_factory=Feedback)
    last_client_message: float = field(default_factory=time.monotonic)
    ping_sent: bool = False
    changes_sent: int = 0
    stats: Any = None  # the slot's SlotStats: transactions and bytes sent (see slots.py)

    def __post_init__(self) -> None:
        self.sent = self.start
        # Output that depends only on the transaction is framed once and the XLogData bytes are
        # shared by every session with the same plugin and options (fan-out); their sendTime is
        # that of the first session that sent them, which clients only use for lag figures.
        plugin = self.plugin
        self._framed_key = (
            ("xlogdata", *plugin.cache_key) if isinstance(plugin, SharedOutputPlugin) else None
        )

    def encode(
        self,
        transactions: list[Transaction | AheadChunk],
        out: list[bytes | memoryview],
        max_bytes: int | None = None,
    ) -> int:
        """Append XLogData for the transactions after ``sent`` to ``out`` (pieces written as they
        are, never joined here) and advance ``sent``; stops once it added ``max_bytes``. Returns
        how many items it went through."""
        now = pg_now_us()
        done = 0
        size = 0
        for item in transactions:
            if max_bytes is not None and size >= max_bytes:
                break
            done += 1
            if item.end_pos <= self.sent:
                continue
            start = len(out)
            if type(item) is AheadChunk:
                if self.plugin.takes_ahead(item.ahead.actions):
                    data, messages = chunk_messages(item, now)
                    out.append(data)
                    self.changes_sent += messages
                    size += len(data)
                    if self.stats is not None:
                        ends = item.ahead.output[0]
                        self.stats.add(len(ends) - bisect_right(ends, item.after_pos), len(data))
                else:
                    for tx in item.transactions():
                        size += self._encode_transaction(tx, out, now)
            else:
                size += self._encode_transaction(item, out, now)  # type: ignore[arg-type]
            warnings = getattr(self.plugin, "warnings", None)
            if warnings:  # what decoding this item warned about goes before its data
                out[start:start] = warnings
                size += sum(len(warning) for warning in warnings)
                warnings.clear()
            self.sent = item.end_pos
        return done

    def _encode_transaction(self, tx: Transaction, out: list[bytes | memoryview], now: int) -> int:
        """Append the transaction's XLogData unless it was sent; returns the bytes appended."""
        if tx.end_pos <= self.sent:
            return 0
        size = self._encode_new(tx, out, now)
        if self.stats is not None:
            self.stats.add(1, size)
        return size

    def _encode_new(self, tx: Transaction, out: list[bytes | memoryview], now: int) -> int:
        xlog = wire.xlog_data
        framed_key = self._framed_key
        if framed_key is None:
            size = 0
            for data_start, payload in self.plugin.encode(tx):
                message = xlog(data_start, data_start, now, payload)
                out.append(message)
                size += len(message)
                self.changes_sent += 1
            return size
        framed = tx.encoded.get(framed_key)
        if framed is None:
            messages = self.plugin.encode(tx)
            framed = (
                b"".join([xlog(ds, ds, now, data) for ds, data in messages]),
                len(messages),
            )
            tx.encoded[framed_key] = framed
            untrack(tx.encoded, framed)
        out.append(framed[0])
        self.changes_sent += framed[1]
        return len(framed[0])

    def keepalive(self, reply_requested: bool = False) -> bytes:
        return wire.keepalive(self.sent, pg_now_us(), reply_requested)

    def on_status_update(self, write: int, flush: int, apply: int, send_time: int) -> int:
        """Take a standby status update; positions beyond ``sent`` are clamped to it (a client
        cannot have received more). Returns the flush position to confirm (0: none)."""
        sent = self.sent
        fb = self.feedback
        fb.write, fb.flush, fb.apply = min(write, sent), min(flush, sent), min(apply, sent)
        fb.reply_time_us = send_time
        self.last_client_message = time.monotonic()
        self.ping_sent = False
        return fb.flush


class ReplicationStream(CopyBothStream):
    """Drives one START_REPLICATION session until CopyDone, Terminate, EOF or timeout."""

    def __init__(
        self,
        state: StreamState,
        source: ChangeSource,
        *,
        on_confirm: Callable[[int], None],
        on_feedback: Callable[[Feedback], None],
        on_sent: Callable[[Transaction | AheadChunk], None] | None = None,
        wal_sender_timeout: float = 60.0,
        idle_keepalive: float = 10.0,
    ) -> None:
        self.state = state
        self.source = source
        self.on_confirm = on_confirm
        self.on_feedback = on_feedback
        self.on_sent = on_sent
        self.wal_sender_timeout = wal_sender_timeout
        self.idle_keepalive = idle_keepalive
        self.copy_done = False
        self.cancelled = False
        self.failure: PgError | None = None  # set by fail(): the error the stream ends with
        self.on_end: Callable[[], None] | None = None
        # raises when the stream may no longer send (a slot lease lost: see SlotStore.check_lease)
        self.guard: Callable[[], None] | None = None
        self.replica_id = ""
        self._history = None
        self._bound = _StreamBound(ended=self._check_ended)
        self._batch_limit = FIRST_BATCH_TRANSACTIONS
        # the one future an idle session awaits: new data, a client message or a cancel sets it
        self._waiter: asyncio.Future[None] | None = None
        self._reader: asyncio.Future[ev.FrontendEvent | None] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        self._wake()

    def fail(self, error: PgError) -> None:
        """End the stream with ``error`` (an ErrorResponse to the client) before it sends
        anything more: at once when idle, after the current write when sending."""
        if self.failure is None:
            self.failure = error
        self._wake()

    def _check_ended(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.cancelled:
            raise PgError("57014", "canceling statement due to user request")
        if self.guard is not None:
            self.guard()

    def _wake(self, *_: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _start_reader(self, io: StreamIO) -> None:
        if self._reader is None:
            self._reader = asyncio.ensure_future(io.read_message())
            self._reader.add_done_callback(self._wake)

    def _next_batch(self) -> list[Transaction | AheadChunk]:
        state, source = self.state, self.source
        limit = self._batch_limit
        self._batch_limit = min(limit * 2, BATCH_TRANSACTIONS)
        if self._history is None and not source.covers(state.sent):
            self._history = source.history(state.sent, ahead=state.plugin.ahead_key)
        if self._history is not None:
            batch: list[Transaction | AheadChunk] = []
            for item in self._history:
                batch.append(item)
                # a chunk rendered ahead is a whole batch: a blocked session pins one, no more
                if len(batch) >= limit or type(item) is AheadChunk:
                    break
            else:
                self._history = None
            if batch and source.covers(batch[-1].end_pos):
                self._history = None
            if batch:
                return batch
        return source.read(state.sent, limit)

    def handle_client(self, msg: ev.FrontendEvent, io: StreamIO) -> bool:
        """Apply one client message; returns False when the stream must end."""
        state = self.state
        state.last_client_message = time.monotonic()
        if isinstance(msg, ev.CopyData):
            kind = msg.data[:1]
            if kind == b"r":
                write, flush, apply, send_time, reply = wire.parse_standby_status(msg.data)
                flush = state.on_status_update(write, flush, apply, send_time)
                if flush:
                    self.on_confirm(flush)
                self.on_feedback(state.feedback)
                if reply:
                    io.write(state.keepalive())
            elif kind != b"h":  # hot standby feedback only matters to physical standbys
                raise PgError(
                    "08P01", f'unexpected message type "{kind.decode("latin-1")}"', severity="FATAL"
                )
            return True
        if isinstance(msg, ev.CopyDone):
            self.copy_done = True
            return False
        if isinstance(msg, ev.CopyFail):
            raise PgError("57014", f"COPY from stdin failed: {msg.message}")
        if isinstance(msg, ev.Terminate):
            return False
        raise PgError("08P01", "invalid standby message type", severity="FATAL")

    async def run(self, io: StreamIO) -> None:
        try:
            await self._stream(io)
        finally:
            if self.on_end is not None:
                self.on_end()

    async def _stream(self, io: StreamIO) -> None:
        state = self.state
        io.write(wire.copy_both_response())
        io.write(state.keepalive())
        try:
            await self._drain(io)
            await self._loop(io)
        except _StreamEnd:
            return
        finally:
            if self._reader is not None and not self._reader.done():
                self._reader.cancel()

    def _timed_out(self, now: float) -> bool:
        timeout = self.wal_sender_timeout
        return timeout > 0 and now - self.state.last_client_message >= timeout

    def _take_reader_message(self, io: StreamIO) -> None:
        """Apply the message the background reader got, if it got one; end the stream on EOF."""
        reader = self._reader
        if reader is None or not reader.done():
            return
        self._reader = None
        msg = reader.result()
        if msg is None or not self.handle_client(msg, io):
            raise _StreamEnd

    def _take_pending(self, io: StreamIO) -> None:
        self._take_reader_message(io)
        for msg in io.pending_messages():
            if not self.handle_client(msg, io):
                raise _StreamEnd

    async def _drain(self, io: StreamIO) -> None:
        """Wait until the client has taken what was written, applying its messages meanwhile.

        A client that stops reading holds this session here (and only this one) with at most one
        flush of output buffered; if it also stops talking it is ended by wal_sender_timeout.
        """
        if io.flush():
            await asyncio.sleep(0)  # taken at once: only let the other sessions run
            return
        drain = asyncio.ensure_future(io.drain())
        try:
            while True:
                self._start_reader(io)
                assert self._reader is not None
                done, _ = await asyncio.wait(
                    {drain, self._reader}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
                )
                self._take_reader_message(io)
                if drain in done:
                    drain.result()
                    return
                self._check_ended()
                if self._timed_out(time.monotonic()):
                    log.info("terminating walsender process due to replication timeout")
                    raise _StreamEnd
        finally:
            if not drain.done():
                drain.cancel()

    async def _send_batch(self, batch: list[Transaction | AheadChunk], io: StreamIO) -> None:
        state = self.state
        await state.plugin.prepare(batch, state.sent, self._bound)
        self._check_ended()
        out: list[bytes | memoryview] = []
        done = state.encode(batch, out, FLUSH_BYTES)
        while done < len(batch):
            for piece in out:
                io.write(piece)
            out = []
            await self._drain(io)
            self._check_ended()
            done += state.encode(batch[done:], out, FLUSH_BYTES)
        if self.on_sent is not None:
            self.on_sent(batch[-1])
        if self._history is None and self.source.end_pos <= state.sent:
            out.append(state.keepalive())  # caught up: let the client confirm this far
        for piece in out:
            io.write(piece)
        await self._drain(io)

    async def _loop(self, io: StreamIO) -> None:
        state = self.state
        last_send = time.monotonic()
        while True:
            self._check_ended()
            self._take_pending(io)
            self._check_ended()
            released = self.source.transactions
            batch = self._next_batch()
            if batch:
                await self._send_batch(batch, io)
                last_send = time.monotonic()
                continue
            # caught up: say where we are, then wait for data, a client message or a deadline
            blocked = self.source.blocked_by_corruption()
            if blocked is not None and self.source.end_pos <= state.sent:
                raise blocked
            now = time.monotonic()
            if self._timed_out(now):
                log.info("terminating walsender process due to replication timeout")
                return
            timeout = self.wal_sender_timeout
            silent = now - state.last_client_message
            if timeout > 0 and silent >= timeout / 2 and not state.ping_sent:
                io.write(state.keepalive(reply_requested=True))
                state.ping_sent = True
                await self._drain(io)
                last_send = now
            elif now - last_send >= self.idle_keepalive:
                io.write(state.keepalive())
                await self._drain(io)
                last_send = now
            self._start_reader(io)
            await self._idle(released)
            self._take_reader_message(io)

    async def _idle(self, released: int) -> None:
        """Wait up to a second for data released after the source's ``released``-th transaction,
        a client message or a cancel."""
        assert self._reader is not None
        if (
            self._reader.done()
            or self.cancelled
            or self.failure is not None
            or self.source.transactions != released
        ):
            return
        loop = asyncio.get_running_loop()
        # woken directly (wait_for would take another turn of the loop, and the source stores
        # what it released in the turn after it woke the sessions)
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(1.0, self._wake)
        self.source.listen(self._wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self.source.unlisten(self._wake)
            self._waiter = None


@dataclass
class _StreamBound(Bound):
    """A stream's long steps have no statement timeout; they stop when the stream is ended."""

    ended: Callable[[], None] = lambda: None

    def check(self) -> None:
        self.ended()


class _StreamEnd(Exception):
    """The client ended the stream (CopyDone, Terminate, EOF) or timed out."""


class ActiveStreams:
    """The START_REPLICATION streams running now, by slot name (a slot has one consumer at a time).

    ``Session.attach_stream`` adds a stream and its end removes it. Ending a stream with an error
    (``end``, ``end_sent_past``) makes it send that ErrorResponse instead of anything more; the
    session then goes on as PostgreSQL's walsender does after an error (ReadyForQuery).
    """

    def __init__(self) -> None:
        self._streams: dict[str, ReplicationStream] = {}

    def add(self, slot: str, stream: ReplicationStream) -> None:
        self._streams[slot] = stream

    def remove(self, slot: str, stream: ReplicationStream) -> None:
        if self._streams.get(slot) is stream:
            del self._streams[slot]

    def get(self, slot: str) -> ReplicationStream | None:
        return self._streams.get(slot)

    def items(self) -> list[tuple[str, ReplicationStream]]:
        return sorted(self._streams.items(), key=lambda item: item[0])

    def end(self, slot: str, error: PgError) -> bool:
        """End the slot's running stream with ``error``; False when none runs."""
        stream = self._streams.get(slot)
        if stream is None:
            return False
        stream.fail(error)
        return True

    def end_sent_past(self, position: int, error: PgError | Callable[[str], PgError]) -> list[str]:
        """End every running stream that has sent past ``position`` (its ``sent`` is beyond it)
        with ``error``, or ``error(slot_name)``; returns the names of their slots."""
        ended = []
        for slot, stream in self.items():
            if stream.state.sent > position:
                stream.fail(error(slot) if callable(error) else error)
                ended.append(slot)
        return ended
