"""The change source: tails the spool once for the whole server and turns records into transactions.

One source serves every session. It reads new frames (O(new bytes)), puts them back into RedDB LSN
order, decodes each record once (learning identities and relation columns as it goes), and keeps the
most recent transactions in a ring that live sessions read from; encoded plugin output is cached on
each transaction, so sessions asking for the same plugin and options share the bytes.

A session that starts further back than the ring reads the retained spool through its own
iterator, in the same order and with the same positions, and joins the ring when it catches up.

Ordering: RedDB allocates LSNs before appending, so concurrent writers can append n+1 before n, and
KV watch events leave permanent holes. A record is released once every lower LSN has been released,
or once the hole below it is older than ``reorder_grace`` seconds, or once ``reorder_window`` later
records have been seen (all the bytes of a catch-up read are already there). Positions come from the
LSN alone, so the same spool always gives the same positions.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime

from pgshim.errors import PgError
from pgshim.logical.positions import end_pos
from pgshim.logical.transactions import Transaction, TransactionBuilder, empty_transaction
from pgshim.reddb.change import ChangeDecodeError, parse_change_record
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import Frame

log = logging.getLogger(__name__)


class _Reorder:
    """Releases frames in LSN order, waiting a bounded time or count for the holes below them."""

    def __init__(self, after_lsn: int, *, grace: float, window: int) -> None:
        self.released = after_lsn
        self.grace = grace
        self.window = window
        self._heap: list[tuple[int, float, Frame]] = []

    def push(self, frame: Frame, now: float) -> None:
        heapq.heappush(self._heap, (frame.lsn, now, frame))

    def pop_ready(self, now: float, *, final: bool = False) -> Iterator[Frame]:
        heap = self._heap
        while heap:
            lsn, seen_at, frame = heap[0]
            if not (
                lsn <= self.released + 1
                or final
                or len(heap) > self.window
                or now - seen_at >= self.grace
            ):
                return
            heapq.heappop(heap)
            if lsn <= self.released:
                # a record below what was already released: it arrived after its hole was closed
                log.warning("RedDB LSN %d arrived after LSN %d was released", lsn, self.released)
            else:
                self.released = lsn
            yield frame

    def __len__(self) -> int:
        return len(self._heap)


class ChangeSource:
    def __init__(
        self,
        follower: SpoolFollower,
        builder: TransactionBuilder,
        *,
        start_after_lsn: int = 0,
        ring_size: int = 4096,
        reorder_grace: float = 0.05,
        reorder_window: int = 1024,
        poll_min: float = 0.0005,
        poll_max: float = 0.02,
        corruption_grace: float = 30.0,
    ) -> None:
        self.follower = follower
        self.builder = builder
        self.ring: deque[Transaction] = deque(maxlen=ring_size)
        self._ring_ends: deque[int] = deque(maxlen=ring_size)
        self._reorder = _Reorder(start_after_lsn, grace=reorder_grace, window=reorder_window)
        self._base_lsn = start_after_lsn
        self._reorder_grace = reorder_grace
        self._reorder_window = reorder_window
        self.last_lsn = start_after_lsn
        self.end_pos = end_pos(start_after_lsn)
        self.decode_errors = 0
        self.transactions = 0
        self._new_data = asyncio.Event()
        self._poll_min = poll_min
        self._poll_max = poll_max
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.corruption_grace = corruption_grace
        self._corrupt_since: float | None = None
        if start_after_lsn:
            follower.seek(start_after_lsn)

    # -- ingestion -------------------------------------------------------------------------------

    def ingest(self, now: float | None = None) -> int:
        """Read what the spool has appended and release what is in order; returns how many."""
        now = time.monotonic() if now is None else now
        for frame in self.follower.poll():
            if frame.lsn > self._reorder.released:
                self._reorder.push(frame, now)
        self._note_corruption(now)
        released = 0
        for frame in self._reorder.pop_ready(now):
            self._append(self.decode(frame))
            released += 1
        if released:
            self.builder.flush()
            event, self._new_data = self._new_data, asyncio.Event()
            event.set()
        return released

    def _note_corruption(self, now: float) -> None:
        if self.follower.status.corrupt_offset is None:
            self._corrupt_since = None
        elif self._corrupt_since is None:
            self._corrupt_since = now

    def blocked_by_corruption(self, now: float | None = None) -> PgError | None:
        """The error for sessions that need data past a bad frame RedDB has not repaired in time.

        RedDB repairs a damaged spool on its next open, so a bad frame is first waited out for
        ``corruption_grace`` seconds; sessions still behind it keep streaming meanwhile.
        """
        since = self._corrupt_since
        if since is None:
            return None
        now = time.monotonic() if now is None else now
        if now - since < self.corruption_grace:
            return None
        status = self.follower.status
        return PgError(
            "XX001",
            f'invalid page in RedDB spool "{status.path}" at byte offset '
            f"{status.corrupt_offset}: {status.corrupt_reason}",
            detail=f"The last record read before it is RedDB LSN {self.last_lsn}.",
            hint="RedDB repairs its spool when it next opens it.",
        )

    def decode(self, frame: Frame) -> Transaction:
        try:
            record = parse_change_record(frame.payload, frame.lsn)
        except ChangeDecodeError as exc:
            self.decode_errors += 1
            log.error("spool offset %d, RedDB LSN %d: %s", frame.offset, frame.lsn, exc)
            commit_time = datetime.fromtimestamp(frame.timestamp_ms / 1000, UTC)
            return empty_transaction(frame.lsn, commit_time, f"LSN {frame.lsn}: {exc}")
        tx = self.builder.build([record])
        if tx.errors:
            self.decode_errors += len(tx.errors)
            for error in tx.errors:
                log.warning("spool offset %d: %s", frame.offset, error)
        return tx

    def _append(self, tx: Transaction) -> None:
        self.ring.append(tx)
        self._ring_ends.append(tx.end_pos)
        if tx.last_lsn > self.last_lsn:
            self.last_lsn = tx.last_lsn
            self.end_pos = tx.end_pos
        self.transactions += 1

    async def run(self) -> None:
        """Tail the spool until stopped: a short poll that backs off while the spool is idle."""
        delay = self._poll_min
        while not self._stopped:
            try:
                released = self.ingest()
            except Exception:  # the source must outlive any single bad read
                log.exception("reading the spool failed")
                released = 0
            if released or len(self._reorder):
                delay = self._poll_min
            else:
                delay = min(delay * 2, self._poll_max)
            await asyncio.sleep(delay)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="change-source")

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            await self._task

    # -- reading ---------------------------------------------------------------------------------

    async def wait(self, after_end_pos: int, timeout: float) -> bool:
        """Wait until a transaction ending after ``after_end_pos`` exists (or the timeout passes)."""
        if self.end_pos > after_end_pos:
            return True
        try:
            await asyncio.wait_for(self._new_data.wait(), timeout)
        except TimeoutError:
            return False
        return self.end_pos > after_end_pos

    def read(self, start: int, limit: int) -> list[Transaction]:
        """Transactions whose end position is after ``start``, in stream order, from the ring."""
        ends = self._ring_ends
        if not ends or ends[-1] <= start:
            return []
        index = bisect_right(ends, start)
        out: list[Transaction] = []
        ring = self.ring
        for i in range(index, min(index + limit, len(ring))):
            out.append(ring[i])
        return out

    def covers(self, start: int) -> bool:
        """Whether the ring holds every transaction after ``start`` that the spool holds.

        Transactions that left the ring ended before the first one in it began, so the ring covers
        ``start`` when ``start`` is at or past that point; before any eviction it covers everything
        read since this source started, that is everything after ``end_pos(base)``.
        """
        if self.transactions > len(self.ring):
            return start >= self.ring[0].begin_pos - 1
        return self._base_lsn == 0 or start >= end_pos(self._base_lsn)

    def history(self, start: int) -> Iterator[Transaction]:
        """Retained transactions after ``start``, decoded from the spool file (catch-up reads)."""
        after_lsn = max(((start + 1) >> 8) - 1, 0)
        reorder = _Reorder(after_lsn, grace=float("inf"), window=self._reorder_window)
        for frame in self.follower.iter_from(after_lsn):
            if frame.lsn > self.last_lsn:
                break  # the ring takes over from here
            reorder.push(frame, 0.0)
            for ready in reorder.pop_ready(0.0):
                tx = self.decode(ready)
                if tx.end_pos > start:
                    yield tx
        for ready in reorder.pop_ready(0.0, final=True):
            tx = self.decode(ready)
            if tx.end_pos > start:
                yield tx
