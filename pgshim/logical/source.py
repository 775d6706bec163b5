"""The change source: tails the spool once for the whole server and turns records into transactions.

One source serves every session. It reads new frames (O(new bytes)), puts them back into RedDB LSN
order, decodes each record once (learning identities and relation columns as it goes), and keeps the
most recent transactions in a ring that live sessions read from; encoded plugin output is cached on
each transaction, so sessions asking for the same plugin and options share the bytes.

A session that starts further back than the ring reads the retained spool through its own
iterator, in the same order and with the same positions, and joins the ring when it catches up.
Those catch-up reads share one bounded cache of decoded transactions, so sessions reading the
same range decode each record once and share its encoded plugin output too.

Ingestion reads the spool in bounded chunks. In the background (``run``) it releases at most
``CATCH_UP_BUDGET`` records between yields to the event loop, so the server serves while it catches
up; sessions that need later positions wait for them like for any new data. What ingestion
learned is persisted with a checkpoint (``logical/checkpoint.py``): a restart seeks past it.

Ordering: RedDB allocates LSNs before appending, so concurrent writers can append n+1 before n, and
KV watch events leave permanent holes. A record is released once every lower LSN has been released,
or once the hole below it is older than ``reorder_grace`` seconds, or once ``reorder_window`` later
records have been seen (all the bytes of a catch-up read are already there). Positions come from the
LSN alone, so the same spool always gives the same positions.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import sqlite3
import time
import zlib
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pgshim.errors import PgError
from pgshim.logical.checkpoint import Checkpoint, IngestCheckpoint
from pgshim.logical.decoded_store import CHUNK_TRANSACTIONS, AheadOutput, DecodedStore
from pgshim.logical.positions import change_pos, end_pos
from pgshim.logical.transactions import (
    Transaction,
    TransactionBuilder,
    commit_time_of,
    commit_time_problem,
    empty_transaction,
)
from pgshim.reddb.change import ChangeDecodeError
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import Frame
from pgshim.spool.index_store import SpoolIndexStore
from pgshim.spool.watch import SpoolWatcher

log = logging.getLogger(__name__)

INGEST_CHUNK_BYTES = 4 << 20  # bytes read per follower poll while ingesting
# records released per background step before yielding to the event loop: a store chunk, which
# is written after the step, once the sessions had their turn
CATCH_UP_BUDGET = CHUNK_TRANSACTIONS
CHECKPOINT_INTERVAL = 1.0  # seconds between ingestion checkpoints
# ingested before the server listens, at most: a small spool is fully known, a large one goes on
# in the background (the first consumers arrive sooner: their formats are rendered ahead sooner)
STARTUP_CATCH_UP_SECONDS = 1.0
STARTUP_CATCH_UP_RECORDS = 8192
FLUSH_EVERY = 4096  # records released between identity map flushes within one ingest call
HISTORY_CACHE_SIZE = 16384  # decoded transactions shared by catch-up reads, at most
HISTORY_CACHE_BYTES = 12 << 20  # and at most about this much memory
LOADED_AHEAD_BYTES = 4 << 20  # and chunks rendered ahead, up to this many bytes of output
# a decoded transaction's memory, roughly: its objects, and its records' payloads several times
# over (the ChangeRecord keeps its JSON and entity bytes, the row its values and their text)
_TX_OVERHEAD = 1024
_PAYLOAD_FACTOR = 4
MAX_UNSTORED = 4 * CHUNK_TRANSACTIONS  # released transactions waiting for the store, at most
REPORTED_LSNS = 65536  # LSNs whose decode errors were reported, remembered not to report twice
# released LSNs whose record is remembered (term, file, offset, CRC): a record written again
# at one of them is told apart from a duplicate; past them, only a newer term is
RELEASED_VERSIONS = 65536


class StateUnwritable(Exception):
    """Decoding a record needs the state database written (a new relation, a new identity) and
    it cannot be (a full disk): the record waits, it is not decoded without it."""


class _Reorder:
    """Releases frames in LSN order, waiting a bounded time or count for the holes below them.

    Of several frames with one LSN, the latest version (see ``_Version``) is released first; the
    others, and frames at or below what was released, are kept in ``behind`` for the owner."""

    def __init__(self, after_lsn: int, *, grace: float, window: int) -> None:
        self.released = after_lsn
        self.grace = grace
        self.window = window
        self.behind: list[Frame] = []
        self._before = after_lsn  # what was released before the last frame released
        self._heap: list[tuple[int, tuple[int, int, int], int, float, Frame]] = []
        self._pushed = itertools.count()
        # frames in strictly increasing LSN order pushed while the heap was empty, each poll's
        # [frames, next index, when pushed, spool generation]: released from the lists in
        # order instead of through the heap (``push_all``); never both at once
        self._runs: deque[list] = deque()
        self._run_waiting = 0

    def push(self, frame: Frame, now: float, generation: int = 0) -> None:
        if self._runs:
            self._runs_to_heap()
        latest_first = (-frame.term, -generation, -frame.offset)
        heapq.heappush(self._heap, (frame.lsn, latest_first, next(self._pushed), now, frame))

    def push_all(self, frames: list[Frame], now: float, generation: int = 0) -> None:
        """``push`` of each frame, in order; frames in increasing LSN order above those waiting
        in runs, while the heap is empty, wait as a run."""
        runs = self._runs
        if (
            self._heap
            or not _increasing(frames)
            or (runs and frames and frames[0].lsn <= runs[-1][0][-1].lsn)
        ):
            for frame in frames:
                self.push(frame, now, generation)
        elif frames:
            runs.append([frames, 0, now, generation])
            self._run_waiting += len(frames)

    def _runs_to_heap(self) -> None:
        runs, self._runs, self._run_waiting = self._runs, deque(), 0
        for frames, at, now, generation in runs:
            for frame in frames[at:]:
                self.push(frame, now, generation)

    def pop_ready(self, now: float, *, final: bool = False) -> Iterator[Frame]:
        heap, runs = self._heap, self._runs
        while True:
            if runs:  # the heap is empty (see push)
                run = runs[0]
                frame = run[0][run[1]]
                lsn, seen_at, waiting = frame.lsn, run[2], self._run_waiting
            elif heap:
                lsn, _, _, seen_at, frame = heap[0]
                waiting = len(heap)
            else:
                return
            if not (
                lsn <= self.released + 1
                or final
                or waiting > self.window
                or now - seen_at >= self.grace
            ):
                return
            if runs:
                run[1] += 1
                self._run_waiting -= 1
                if run[1] == len(run[0]):
                    runs.popleft()
            else:
                heapq.heappop(heap)
            if lsn <= self.released:
                self.behind.append(frame)
                continue
            self._before, self.released = self.released, lsn
            yield frame

    def put_back(self, frame: Frame, now: float, generation: int) -> None:
        """The frame just released could not be taken: it is the next one again."""
        self.released = self._before
        self.push(frame, now, generation)

    def take_behind(self) -> list[Frame]:
        behind, self.behind = self.behind, []
        return behind

    def __len__(self) -> int:
        return len(self._heap) + self._run_waiting


def _increasing(frames: list[Frame]) -> bool:
    return all(a.lsn < b.lsn for a, b in itertools.pairwise(frames))


@dataclass(frozen=True, slots=True)
class _Version:
    """Which record a released LSN held. Of two versions of an LSN the later one wins: a higher
    term, then a later spool file (prunes replace it), then a later offset in it."""

    term: int
    rank: tuple[int, int, int]  # (term, spool file generation, byte offset)
    crc: int

    @classmethod
    def of(cls, frame: Frame, generation: int) -> _Version:
        return cls(frame.term, (frame.term, generation, frame.offset), zlib.crc32(frame.payload))

    @staticmethod
    def packed(frame: Frame, generation: int) -> int:
        """The version in one integer: crc, offset, generation and term, from the low bits up."""
        head = (frame.term << 32 | generation) << 96
        return head | frame.offset << 32 | zlib.crc32(frame.payload)

    @classmethod
    def unpacked(cls, packed: int) -> _Version:
        term = packed >> 128
        generation = (packed >> 96) & 0xFFFF_FFFF
        offset = (packed >> 32) & 0xFFFF_FFFF_FFFF_FFFF
        return cls(term, (term, generation, offset), packed & 0xFFFF_FFFF)

    def same_record(self, other: _Version) -> bool:
        return self.term == other.term and self.crc == other.crc


class _ReleasedVersions:
    """The versions of the last ``window`` released LSNs, each kept packed in one integer (as
    objects, tens of thousands of them were the largest thing ingestion kept)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._versions: dict[int, int] = {}
        self._order: deque[int] = deque()

    def add(self, frame: Frame, generation: int) -> None:
        versions, lsn = self._versions, frame.lsn
        if lsn not in versions:
            self._order.append(lsn)
        versions[lsn] = _Version.packed(frame, generation)
        while len(self._order) > self.window:
            versions.pop(self._order.popleft(), None)

    def get(self, lsn: int) -> _Version | None:
        packed = self._versions.get(lsn)
        return None if packed is None else _Version.unpacked(packed)

    def forget_from(self, lsn: int) -> None:
        self._versions = {k: v for k, v in self._versions.items() if k < lsn}
        self._order = deque(k for k in self._order if k < lsn)


class _HistoryCache:
    """Transactions decoded for catch-up reads, by RedDB LSN, least recently used first out;
    bounded by count and by the memory they hold (estimated from their records' payloads)."""

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[int, tuple[Transaction, int]] = OrderedDict()

    def get(self, lsn: int) -> Transaction | None:
        entry = self._entries.get(lsn)
        if entry is None:
            return None
        self._entries.move_to_end(lsn)
        return entry[0]

    def put(self, lsn: int, tx: Transaction) -> None:
        size = _TX_OVERHEAD + _PAYLOAD_FACTOR * sum(len(record.raw) for record in tx.records)
        entries = self._entries
        previous = entries.pop(lsn, None)
        if previous is not None:
            self.bytes -= previous[1]
        entries[lsn] = (tx, size)
        self.bytes += size
        while entries and (len(entries) > self.capacity or self.bytes > self.max_bytes):
            _, (_, evicted) = entries.popitem(last=False)
            self.bytes -= evicted

    def forget_from(self, lsn: int) -> None:
        for key in [key for key in self._entries if key >= lsn]:
            self.bytes -= self._entries.pop(key)[1]

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class AheadChunk:
    """Consecutive retained transactions whose output was rendered ahead in the session's format;
    the ones ending after ``after_pos`` are due. ``transactions`` gives those decoded instead, for
    a session that cannot take the rendered output as it is."""

    ahead: AheadOutput
    after_pos: int
    last_lsn: int
    end_pos: int
    transactions: Callable[[], list[Transaction]]


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
        history_cache_size: int = HISTORY_CACHE_SIZE,
        history_cache_bytes: int = HISTORY_CACHE_BYTES,
        store: DecodedStore | None = None,
        watcher: SpoolWatcher | None = None,
    ) -> None:
        self.follower = follower
        self.builder = builder
        # lists, not deques: sessions bisect and slice them on every read (a deque indexes in
        # O(n)); they hold ring_size transactions plus at most an eighth more, trimmed in steps
        self.ring: list[Transaction] = []
        self._ring_ends: list[int] = []
        self._ring_size = ring_size
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
        self._history_cache = _HistoryCache(history_cache_size, history_cache_bytes)
        self.store = store
        # released transactions the store has yet to take, with the LSN released before each
        self._unstored: list[tuple[Transaction, int]] = []
        self.checkpoint_error: str | None = None  # why the last checkpoint was not saved
        self._held_until = float("-inf")  # releasing waits for the state database until then
        self._state_retry_at = 0.0  # when the state database is tried again after that
        self._state_backoff = 0.0
        self.watcher = watcher
        self._wakeup: asyncio.Future[None] | None = None  # the run loop's sleep, cut short
        # output rendered ahead, by (key, chunk), kept for sessions reading alike
        self._loaded_ahead: OrderedDict[tuple, AheadOutput] = OrderedDict()
        self._loaded_ahead_bytes = 0
        self._loaded_generation = 0
        self._checkpoint: IngestCheckpoint | None = None
        self._index_store: SpoolIndexStore | None = None
        self._checkpoint_saved_at = float("-inf")
        self._chunked_polls = True
        self._history_decodes = 0  # since the last identity flush
        self._listeners: set[Callable[[], None]] = set()
        self._versions = _ReleasedVersions(RELEASED_VERSIONS)
        self._rewind_to: tuple[int, str] | None = None  # (RedDB LSN, why): see ``rewind``
        self._rewind_listeners: set[Callable[[int, str], None]] = set()
        # (inode, offset): frames of that file from that offset on are new, even at LSNs a seek
        # made the follower skip (a record appended late while pgshim was stopped)
        self._fresh_from: tuple[int | None, int] | None = None
        self.duplicates = 0  # records read again with the content that was sent
        self.superseded = 0  # older versions of records whose later version was sent
        self.rewinds = 0
        self.last_rewind: tuple[int, str, datetime] | None = None
        # the RedDB term a released LSN was read in (the term history's), beyond what
        # ``_versions`` remembers; 0: unknown
        self.term_at: Callable[[int], int] = lambda lsn: 0
        follower.on_skipped = self._skipped
        if start_after_lsn:
            follower.seek(start_after_lsn)

    def resume(self, store: IngestCheckpoint, index: SpoolIndexStore | None = None) -> None:
        """Continue after the persisted checkpoint when the spool still reaches it (call once,
        before ingesting); checkpoints are saved to ``store`` from now on, and the spool's seek
        index to ``index`` (taken back from it first, when it still matches the file)."""
        self._checkpoint = store
        self._index_store = index
        snapshot = None if index is None else index.load()
        if snapshot is not None:
            self.follower.restore_index(snapshot)
        saved = store.load()
        if saved is None or saved.lsn <= self._reorder.released:
            if saved is None and self.store is not None:
                self.store.clear()  # nothing says which spool its chunks came from
            return
        self.follower.seek(saved.lsn, new_from=(saved.inode, saved.file_offset))
        last = self.follower.status.last_lsn
        if last is None or last < saved.lsn:
            log.warning(
                "the spool ends before the ingestion checkpoint (RedDB LSN %d); reading it all",
                saved.lsn,
            )
            self.follower.seek(self._reorder.released)
            store.clear()
            if self.store is not None:
                self.store.clear()
            return
        log.info("resuming ingestion after RedDB LSN %d", saved.lsn)
        self._fresh_from = (saved.inode, saved.file_offset)
        self._reorder = _Reorder(saved.lsn, grace=self._reorder_grace, window=self._reorder_window)
        self._base_lsn = self.last_lsn = saved.lsn
        self.end_pos = end_pos(saved.lsn)
        if self.store is not None:
            self.store.discard_after(saved.lsn)

    def save_checkpoint(self) -> None:
        """Persist what was learned, then how far ingestion got (in that order).

        The store never fails its caller (see ``decoded_store``). When the state database
        cannot be written (a full disk), the checkpoint stays where it was, which is safe (a
        restart reads the spool again from there): logged once, the next checkpoint tries again.
        """
        if self._checkpoint is None:
            return
        status = self.follower.status
        if self.store is not None:
            self._store_pending()
            self.store.flush()
            if status.first_lsn is not None:
                self.store.trim(status.first_lsn)
        if not self._flush_learned():
            return
        try:
            self._checkpoint.save(Checkpoint(self._reorder.released, status.inode, status.offset))
            if self._index_store is not None:
                self._index_store.save(self.follower)
        except sqlite3.Error as exc:
            self._checkpoint_failed(exc)
            return
        if self.checkpoint_error is not None:
            log.info("the ingestion checkpoint is saved again")
            self.checkpoint_error = None
            self._state_backoff = 0.0

    def _flush_learned(self) -> bool:
        """Persist what decoding learned; when the state database cannot be written, it stays in
        memory for the next try, after a pause that doubles up to 30 s (each try writes all of
        it), and the checkpoint does not move past it meanwhile."""
        if self.checkpoint_error is not None and time.monotonic() < self._state_retry_at:
            return False
        try:
            self.builder.flush()
        except sqlite3.Error as exc:
            self._checkpoint_failed(exc)
            return False
        return True

    def _checkpoint_failed(self, exc: sqlite3.Error) -> None:
        if self._checkpoint is not None:
            self._checkpoint.abort()
        if self.checkpoint_error is None:
            saved = None if self._checkpoint is None else self._checkpoint.saved_lsn
            log.warning("the state database cannot be written (%s): the ingestion checkpoint "
                        "stays at RedDB LSN %s until it can", exc, saved)  # fmt: skip
        self.checkpoint_error = str(exc)
        self._state_backoff = min(max(self._state_backoff * 2, CHECKPOINT_INTERVAL), 30.0)
        self._state_retry_at = time.monotonic() + self._state_backoff

    # -- ingestion -------------------------------------------------------------------------------

    def ingest(
        self, now: float | None = None, *, budget: int | None = None, store: bool = True
    ) -> int:
        """Read what the spool has appended and release what is in order; returns how many.

        The spool is read in chunks of ``INGEST_CHUNK_BYTES``; ``budget`` bounds the records
        released by this call (None: everything that is ready). ``store=False`` leaves storing
        the transactions and the checkpoint to ``store_released`` (``run`` calls it once the
        sessions woken by the new records had their turn).
        """
        gc_was_enabled = gc.isenabled()
        # decoded records hold no reference cycles; collecting while building thousands of
        # them only walks the server's heap again and again (a sixth of ingestion's time)
        gc.disable()
        try:
            return self._ingest(time.monotonic() if now is None else now, budget, store)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _ingest(self, now: float, budget: int | None, store: bool) -> int:
        reorder = self._reorder
        released = flushed = 0
        while budget is None or released < budget:
            polled = 0
            if len(reorder) <= self._reorder_window:
                frames = self._poll_chunk()
                polled = len(frames)
                generation = self.follower.status.prunes
                released_before = reorder.released
                fresh = [frame for frame in frames if frame.lsn > released_before]
                if len(fresh) < polled:
                    for frame in frames:
                        if frame.lsn <= released_before:
                            self._behind(frame)
                reorder.push_all(fresh, now, generation)
            before = released
            if now < self._held_until:
                break  # a record waits for the state database (see StateUnwritable)
            generation = self.follower.status.prunes  # changes only when polling
            for frame in reorder.pop_ready(now):
                try:
                    tx = self.decode(frame)
                except StateUnwritable as exc:
                    # what the record taught cannot be kept: release it once it can be
                    reorder.put_back(frame, now, generation)
                    self._checkpoint_failed(exc.__cause__)  # type: ignore[arg-type]
                    self._held_until = self._state_retry_at
                    budget = released  # this round ends here
                    break
                self._versions.add(frame, generation)
                self._append(tx)
                released += 1
                if store:
                    self._store_pending()
                if released - flushed >= FLUSH_EVERY:  # what was learned stays bounded in memory
                    self._flush_learned()
                    flushed = released
                if budget is not None and released >= budget:
                    break
            for frame in reorder.take_behind():
                self._behind(frame)
            if self._rewind_to is not None:
                self._rewind(*self._rewind_to)
                reorder = self._reorder
                continue
            if not polled and released == before:
                break
        self._note_corruption(now)
        if released:
            self._flush_learned()
            event, self._new_data = self._new_data, asyncio.Event()
            event.set()
            for listener in list(self._listeners):
                listener()
            if store:
                self.store_released(now)
        return released

    # -- records that come late, again, or rewritten -------------------------------------------

    def _behind(self, frame: Frame) -> None:
        """A record read as new at or below the last released LSN: the same record again, an
        older version of it, a newer version (a rewrite: RedDB's history diverged), or a record
        that comes after its LSN was passed over as a hole."""
        known = self._versions.get(frame.lsn)
        mine = _Version.of(frame, self.follower.status.prunes)
        if known is not None:
            if known.same_record(mine):
                self.duplicates += 1
                log.warning(
                    "RedDB LSN %d is in the spool again (offset %d) with the content sent; "
                    "skipped", frame.lsn, frame.offset,
                )  # fmt: skip
            elif mine.rank < known.rank:
                self.superseded += 1
                log.warning(
                    "RedDB LSN %d at spool offset %d (term %d) is older than the version sent "
                    "(term %d); skipped", frame.lsn, frame.offset, frame.term, known.term,
                )  # fmt: skip
            else:
                self._request_rewind(
                    frame.lsn,
                    f"RedDB LSN {frame.lsn} was written again (term {frame.term}, spool offset "
                    f"{frame.offset}) with content other than what was sent (term {known.term})",
                )
            return
        self._request_rewind(
            frame.lsn,
            f"RedDB LSN {frame.lsn} (spool offset {frame.offset}) arrived after RedDB LSN "
            f"{self._reorder.released} was released",
        )

    def _skipped(self, frames: list[Frame]) -> None:
        """Frames the follower skipped as delivered (a prune's rescan, a restart's seek): a
        re-read, unless they differ from what was sent or came after the last read."""
        fresh = self._fresh_from
        inode = self.follower.status.inode
        for frame in frames:
            known = self._versions.get(frame.lsn)
            if known is not None:
                if not known.same_record(_Version.of(frame, self.follower.status.prunes)):
                    self._behind(frame)
            elif fresh is not None and fresh[0] == inode and frame.offset >= fresh[1]:
                self._behind(frame)  # appended after the last run read the file
            elif 0 < self.term_at(frame.lsn) < frame.term and frame.lsn <= self._reorder.released:
                self._request_rewind(
                    frame.lsn,
                    f"RedDB LSN {frame.lsn} (spool offset {frame.offset}) is of term "
                    f"{frame.term}, newer than what was sent there",
                )

    def _request_rewind(self, lsn: int, why: str) -> None:
        if self._rewind_to is None or lsn < self._rewind_to[0]:
            self._rewind_to = (lsn, why)

    def on_rewind(self, callback: Callable[[int, str], None]) -> None:
        """Call ``callback(position, why)`` before the source goes back to a RedDB LSN: what
        was sent from ``position`` on is no longer what the spool says (see ``_rewind``)."""
        self._rewind_listeners.add(callback)

    def _rewind(self, lsn: int, why: str) -> None:
        """Go back to just before RedDB LSN ``lsn`` and read on from there, so that the record
        that came late, or the newer version, is released in LSN order.

        Positions come from the LSN alone, so a stream that already sent a position at or past
        ``change_pos(lsn)`` cannot receive it in order: the listeners end those streams (their
        consumers reconnect from what they confirmed and receive it) and mark lost the slots
        that confirmed past it (they never would)."""
        self._rewind_to = None
        position = change_pos(lsn)
        self.rewinds += 1
        self.last_rewind = (lsn, why, datetime.now(UTC))
        log.error("%s; reading the spool again from RedDB LSN %d", why, lsn)
        for listener in list(self._rewind_listeners):
            listener(position, why)
        keep = bisect_left(self._ring_ends, position)
        del self.ring[keep:]
        del self._ring_ends[keep:]
        self._unstored = [(tx, before) for tx, before in self._unstored if tx.last_lsn < lsn]
        if self.store is not None:
            self.store.discard_after(lsn - 1)
        self._history_cache.forget_from(lsn)
        self._versions.forget_from(lsn)
        self._reorder = _Reorder(lsn - 1, grace=self._reorder_grace, window=self._reorder_window)
        self.last_lsn = lsn - 1
        self.end_pos = end_pos(lsn - 1)
        self.transactions = len(self.ring)
        self._base_lsn = self.ring[0].first_lsn - 1 if self.ring else lsn - 1
        self._fresh_from = None
        self.follower.seek(lsn - 1)

    def store_released(self, now: float | None = None) -> None:
        """Store the released transactions (writing the chunks they complete), and save the
        checkpoint when due."""
        now = time.monotonic() if now is None else now
        self._store_pending()
        if now - self._checkpoint_saved_at >= CHECKPOINT_INTERVAL:
            self.save_checkpoint()
            self._checkpoint_saved_at = now

    def _poll_chunk(self) -> list[Frame]:
        if self._chunked_polls:
            try:
                return self.follower.poll(max_bytes=INGEST_CHUNK_BYTES)
            except TypeError:  # a follower that hands over what it has (the RedDB link's)
                self._chunked_polls = False
        return self.follower.poll()

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
        """The transaction of one frame; never raises. What cannot be decoded is counted in
        ``decode_errors`` and logged with the spool offset and the LSN, once per record (a record
        decoded again for a catch-up read is not reported again); a record that cannot be parsed
        at all becomes an empty transaction at its position."""
        try:
            tx = self.builder.build_payload(frame.payload, frame.lsn, frame.timestamp_ms)
        except sqlite3.Error as exc:  # the state directory failing, not the record
            raise StateUnwritable(exc) from exc
        except Exception as exc:  # foreign bytes: whatever goes wrong is reported, not raised
            if isinstance(exc, ChangeDecodeError):
                error = f"LSN {frame.lsn}: {exc}"
            else:
                error = f"LSN {frame.lsn}: cannot decode the record: {type(exc).__name__}: {exc}"
            tx = empty_transaction(frame.lsn, commit_time_of(frame.timestamp_ms), error)
            problem = commit_time_problem(frame.timestamp_ms)
            if problem is not None:
                tx.errors.append(f"lsn {frame.lsn}: frame {problem}")
            if self._first_report(frame.lsn):
                self.decode_errors += len(tx.errors)
                log.error("spool offset %d, RedDB LSN %d: %s", frame.offset, frame.lsn, exc)
                for extra in tx.errors[1:]:
                    log.error("spool offset %d: %s", frame.offset, extra)
            return tx
        if tx.errors and self._first_report(frame.lsn):
            self.decode_errors += len(tx.errors)
            for error in tx.errors:
                log.warning("spool offset %d: %s", frame.offset, error)
        return tx

    def _first_report(self, lsn: int) -> bool:
        """Whether the decode errors of RedDB LSN ``lsn`` are reported for the first time (the
        last REPORTED_LSNS reported LSNs are remembered)."""
        reported: OrderedDict[int, None] | None = getattr(self, "_reported_lsns", None)
        if reported is None:
            reported = self._reported_lsns = OrderedDict()
        if lsn in reported:
            return False
        reported[lsn] = None
        if len(reported) > REPORTED_LSNS:
            reported.popitem(last=False)
        return True

    def _store_pending(self) -> None:
        # taken first: whatever happens, they are not kept (the store drops what it cannot keep)
        pending, self._unstored = self._unstored, []
        store = self.store
        if store is None:
            return
        for tx, released_before in pending:
            store.add(tx, released_before)
            store.flush_full()

    def _append(self, tx: Transaction) -> None:
        if self.store is not None:
            self._unstored.append((tx, self.last_lsn))  # see ``ingest``: stored now or later
            if len(self._unstored) >= MAX_UNSTORED:  # ingestion failed before storing them
                self._store_pending()
        self.ring.append(tx)
        self._ring_ends.append(tx.end_pos)
        if len(self.ring) >= self._ring_size + max(16, self._ring_size // 8):
            del self.ring[: -self._ring_size]
            del self._ring_ends[: -self._ring_size]
        if tx.last_lsn > self.last_lsn:
            self.last_lsn = tx.last_lsn
            self.end_pos = tx.end_pos
        self.transactions += 1

    async def catch_up(
        self, seconds: float = STARTUP_CATCH_UP_SECONDS, records: int = STARTUP_CATCH_UP_RECORDS
    ) -> None:
        """Ingest what the spool holds, up to ``seconds`` or ``records``, waiting out the reorder
        grace of records above a hole once: a small spool is then fully known (its tables too)
        before the server listens, and a large one goes on in ``run()``."""
        deadline = time.monotonic() + seconds
        waited = False
        released = 0
        while time.monotonic() < deadline and released < records:
            step = self.ingest(budget=CATCH_UP_BUDGET)
            released += step
            if step >= CATCH_UP_BUDGET:
                continue
            if not len(self._reorder) or waited:
                return
            await asyncio.sleep(self._reorder_grace)
            waited = True

    async def run(self) -> None:
        """Tail the spool until stopped: a short poll that backs off while the spool is idle."""
        delay = self._poll_min
        while not self._stopped:
            try:
                released = self.ingest(budget=CATCH_UP_BUDGET, store=False)
                if released:
                    await asyncio.sleep(0)  # the sessions send the new changes first
                    self.store_released()
            except Exception:  # the source must outlive any single bad read
                log.exception("reading the spool failed")
                released = 0
            if released >= CATCH_UP_BUDGET:
                continue  # catching up: go on at once
            if released or len(self._reorder):
                delay = self._poll_min
            else:
                delay = min(delay * 2, self._poll_max)
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less when the watcher reports a change to the spool."""
        loop = asyncio.get_running_loop()
        self._wakeup = wakeup = loop.create_future()
        timer = loop.call_later(delay, self.wake)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    def wake(self) -> None:
        """Read the spool now (the watcher calls this when the file changed)."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="change-source")
        if self.watcher is not None and self.watcher.start(self.wake):
            log.debug("watching %s for changes", self.watcher.path)

    async def stop(self) -> None:
        self._stopped = True
        self.wake()
        if self.watcher is not None:
            self.watcher.stop()
        if self._task is not None:
            await self._task
        self.save_checkpoint()

    # -- reading ---------------------------------------------------------------------------------

    def listen(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop, without arguments) whenever data is released."""
        self._listeners.add(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        self._listeners.discard(callback)

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
        return self.ring[index : index + limit]

    def covers(self, start: int) -> bool:
        """Whether the ring holds every transaction after ``start`` that the spool holds.

        Transactions that left the ring ended before the first one in it began, so the ring covers
        ``start`` when ``start`` is at or past that point; before any eviction it covers everything
        read since this source started, that is everything after ``end_pos(base)``.
        """
        if self.transactions > len(self.ring):
            return start >= self.ring[0].begin_pos - 1
        return self._base_lsn == 0 or start >= end_pos(self._base_lsn)

    def history(
        self, start: int, *, ahead: str | None = None
    ) -> Iterator[Transaction | AheadChunk]:
        """Retained transactions after ``start`` (catch-up reads), decoded from the spool file
        (with their ChangeRecords); ``ahead``: the session's output key, chunks whose
        output the store keeps for it come as ``AheadChunk``, and a whole chunk read without it
        is rendered and kept for the next readers when the format is rendered ahead."""
        lsn = max(((start + 1) >> 8) - 1, 0)  # every transaction up to this LSN was sent
        store = None if ahead is None else self.store
        while lsn < self.last_lsn:
            keep: tuple[int, int] | None = None  # the chunk whose output this read renders
            if ahead is not None and store is not None and (found := store.find(lsn)) is not None:
                after_pos = max(start, end_pos(lsn))
                rendered = self._load_ahead(ahead, found)
                if rendered is not None:
                    yield AheadChunk(
                        rendered,
                        after_pos,
                        found[1],
                        end_pos(found[1]),
                        lambda f=found, lsn=lsn, a=after_pos: self._due(f, lsn, a),
                    )
                    lsn = found[1]
                    continue
                stop: int | None = found[1]  # no output for it: decode its range
                # a chunk read from its start is worth rendering for the next readers; one a
                # session starts in is rendered, in part, by the session
                if after_pos <= end_pos(found[0]) and ahead in store.renderers:
                    keep = found
            else:
                after_pos = max(start, end_pos(lsn))
                if self.covers(after_pos):  # what ingestion decoded is still in the ring
                    ring = self.read(after_pos, CHUNK_TRANSACTIONS)
                    if not ring:
                        return
                    for tx in ring:
                        yield tx
                        lsn = tx.last_lsn
                    continue
                stop = store.next_start(lsn) if store is not None else None
            chunk: list[Transaction] = []
            for read, tx in enumerate(self._decode_history(lsn, start), start=1):
                if stop is not None and tx.last_lsn > stop:
                    break
                yield tx
                if keep is not None:
                    chunk.append(tx)
                lsn = tx.last_lsn
                if stop is None and store is not None and read % CHUNK_TRANSACTIONS == 0:
                    stop = store.next_start(lsn)  # ingestion may have stored what comes next
                if stop is not None and lsn >= stop:
                    break
            else:
                if stop is None:
                    return
            if keep is not None and ahead is not None and lsn >= keep[1]:
                self._keep_ahead(ahead, keep, chunk)
            if stop is not None:
                lsn = max(lsn, stop)

    def _due(self, found: tuple[int, int], lsn: int, after_pos: int) -> list[Transaction]:
        """The chunk's transactions ending after ``after_pos``, decoded from the spool; ``lsn``:
        every transaction up to it was sent."""
        due = []
        for tx in self._decode_history(lsn, after_pos):
            if tx.last_lsn > found[1]:
                break
            due.append(tx)
        return due

    def _load_ahead(self, key: str, found: tuple[int, int]) -> AheadOutput | None:
        """Output rendered ahead, shared by the sessions reading it at about the same time (they
        drift apart: the bytes kept are what bounds it)."""
        assert self.store is not None
        self._check_generation()
        cached = self._loaded_ahead.get((key, *found))
        if cached is not None:
            self._loaded_ahead.move_to_end((key, *found))
            return cached
        rendered = self.store.load_ahead(key, *found)
        if rendered is not None:
            self._share_ahead(key, found, rendered)
        return rendered

    def _keep_ahead(self, key: str, found: tuple[int, int], chunk: list[Transaction]) -> None:
        """Render a whole chunk a session read (and rendered: the format's output reuses it) for
        the next readers in its format."""
        assert self.store is not None
        rendered = self.store.render_ahead(key, *found, chunk)
        if rendered is not None:
            self._share_ahead(key, found, rendered)

    def _share_ahead(self, key: str, found: tuple[int, int], rendered: AheadOutput) -> None:
        loaded = self._loaded_ahead
        loaded[(key, *found)] = rendered
        self._loaded_ahead_bytes += rendered.size
        while self._loaded_ahead_bytes > LOADED_AHEAD_BYTES and len(loaded) > 1:
            self._loaded_ahead_bytes -= loaded.popitem(last=False)[1].size

    def _check_generation(self) -> None:
        """Forget loaded chunks once the store dropped some: they may be stale."""
        assert self.store is not None
        if self._loaded_generation != self.store.generation:
            self._loaded_ahead.clear()
            self._loaded_ahead_bytes = 0
            self._loaded_generation = self.store.generation

    def _decode_history(self, after_lsn: int, start: int) -> Iterator[Transaction]:
        """Retained transactions after ``after_lsn`` decoded from the spool file, in LSN order."""
        reorder = _Reorder(after_lsn, grace=float("inf"), window=self._reorder_window)
        for frame in self.follower.iter_from(after_lsn):
            if frame.lsn > self.last_lsn:
                break  # the ring takes over from here
            reorder.push(frame, 0.0)
            for ready in reorder.pop_ready(0.0):
                tx = self._decode_shared(ready)
                if tx.end_pos > start:
                    yield tx
        for ready in reorder.pop_ready(0.0, final=True):
            tx = self._decode_shared(ready)
            if tx.end_pos > start:
                yield tx

    def _decode_shared(self, frame: Frame) -> Transaction:
        tx = self._history_cache.get(frame.lsn)
        if tx is None:
            try:
                tx = self.decode(frame)
            except StateUnwritable as exc:
                raise PgError(
                    "58030",
                    f"could not write the state database: {exc.__cause__}",
                    detail=f"Decoding RedDB LSN {frame.lsn} needs to record what it learned.",
                ) from None
            self._history_cache.put(frame.lsn, tx)
            # decoding teaches the identity map again; keep what it holds unflushed bounded
            self._history_decodes += 1
            if self._history_decodes >= FLUSH_EVERY:
                self._flush_learned()
                self._history_decodes = 0
        return tx
