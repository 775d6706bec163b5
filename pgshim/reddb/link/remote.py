"""Change records from a RedDB primary's ``PullWalRecords`` instead of a local spool file.

``RemoteFollower`` offers the local spool follower's interface (``status``, ``poll``, ``seek``,
``iter_from``, ``close``) so the change source can tail either. A background thread long-polls
(``await_data``) from the last LSN it fetched and queues frames; ``poll()`` hands them over
without blocking. ``iter_from()`` reads older history synchronously, page by page, for catch-up.

The primary serves records with ``lsn > since_lsn`` in spool file order and reports
``current_lsn`` and ``oldest_available_lsn``. When ``oldest_available_lsn > since_lsn + 1``
the records in between were pruned: ``iter_from`` raises ``WalPrunedError`` (SQLSTATE 58P01, as
PostgreSQL reports removed WAL); the tailing thread counts the prune in ``status``, logs the
missing range and goes on from the oldest available record, as a spool follower does after a
prune. With a ``replica_id`` (which makes RedDB register the follower and keep a slot for it) an
invalidated slot (``needs_rebootstrap``) stops the tail: ``poll()`` raises ``WalPrunedError``.

Catch-up reads never pass the ``replica_id``: RedDB would serve them from the slot's restart LSN,
silently skipping older records.

The term sent with each pull (RedDB v1.13+ fences any other term) is the primary's
``current_term`` from ``ReplicationStatus``, re-read after a FAILED_PRECONDITION; a primary that
does not report one gets no term (the default, 1).

Known limit of the API: a page boundary that falls between two records appended out of LSN order
(concurrent writers) makes the next page start after the higher one, so the lower is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from pgshim.errors import PgError
from pgshim.reddb.link.client import PullReply, RedDbClient, RedDbError, WalRecord
from pgshim.spool.frames import Frame

log = logging.getLogger(__name__)

LAYOUT = "grpc"


class WalPrunedError(PgError):
    """The LSNs ``missing_from..missing_to`` are gone from the primary (or its slot is invalid)."""

    def __init__(self, source: str, after_lsn: int, oldest_available: int | None, reason: str):
        self.after_lsn = after_lsn
        self.missing_from = after_lsn + 1
        self.missing_to = None if oldest_available is None else oldest_available - 1
        self.oldest_available = oldest_available
        self.reason = reason
        if self.missing_to is None:
            what = f"RedDB history after LSN {after_lsn} is no longer available from {source}"
        else:
            what = (
                f"RedDB LSNs {self.missing_from}..{self.missing_to} are no longer available"
                f" from {source}"
            )
        super().__init__("58P01", f"{what} ({reason})")


@dataclass(slots=True)
class RemoteStatus:
    path: str  # the gRPC address
    exists: bool = False  # a pull has succeeded
    layouts_seen: set[str] = field(default_factory=set)
    first_lsn: int | None = None
    last_lsn: int | None = None  # highest LSN fetched
    records: int = 0
    size: int = 0
    offset: int = 0
    corrupt_offset: int | None = None
    corrupt_reason: str | None = None  # the last prune reported
    gaps: int = 0
    out_of_order: int = 0
    prunes: int = 0
    current_lsn: int = 0  # the primary's, from the last reply
    oldest_available_lsn: int | None = None
    term: int | None = None
    last_error: str | None = None


def record_frame(record: WalRecord) -> Frame:
    """A gRPC record as a Frame: the term (and epoch) come from the ChangeRecord, default 1."""
    term, epoch = 1, 0
    try:
        decoded = orjson.loads(record.data)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        value = decoded.get("term", 1)
        term = value if isinstance(value, int) and value >= 0 else 1
        value = decoded.get("ownership_epoch", 0)
        epoch = value if isinstance(value, int) and value >= 0 else 0
    return Frame(LAYOUT, record.lsn, 0, term, epoch, record.data, 0, len(record.data))


def pruned_range(reply: PullReply, since_lsn: int) -> str | None:
    """Why records after ``since_lsn`` are missing from this reply, or None when nothing is."""
    if reply.needs_rebootstrap:
        return f"replica slot invalidated: {reply.invalidation_reason or 'needs rebootstrap'}"
    oldest = reply.oldest_available_lsn
    if oldest is not None and oldest > since_lsn + 1:
        return f"pruned; the oldest available LSN is {oldest}"
    return None


class RemoteFollower:
    def __init__(
        self,
        client: RedDbClient,
        *,
        replica_id: str | None = None,
        max_count: int = 1000,
        await_timeout_ms: int = 1000,
        retry_max: float = 5.0,
    ) -> None:
        self.client = client
        self.replica_id = replica_id
        self.max_count = max_count
        self.await_timeout_ms = await_timeout_ms
        self.retry_max = retry_max
        self.status = RemoteStatus(path=client.target)
        self._lock = threading.Lock()
        self._queue: deque[Frame] = deque()
        self._since = 0  # the tail has fetched everything up to here
        self._generation = 0  # bumped by seek(): replies to older pulls are dropped
        self._fatal: WalPrunedError | None = None
        self._term: int | None = None
        self._term_known = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the follower interface ------------------------------------------------------------------

    def poll(self) -> list[Frame]:
        """Frames fetched since the last call (never blocks); starts the tail on first use."""
        if self._thread is None:
            self._start()
        with self._lock:
            frames = list(self._queue)
            self._queue.clear()
            fatal = self._fatal
        if fatal is not None and not frames:
            raise fatal
        return frames

    def seek(self, after_lsn: int) -> None:
        """Tail from just after ``after_lsn`` (drops anything fetched but not yet polled)."""
        with self._lock:
            self._generation += 1
            self._queue.clear()
            self._since = after_lsn
            self._fatal = None

    def iter_from(self, after_lsn: int, limit: int | None = None) -> Iterator[Frame]:
        """Records after ``after_lsn`` as the primary holds them now, read page by page."""
        since = after_lsn
        produced = 0
        while limit is None or produced < limit:
            page = self.max_count if limit is None else min(self.max_count, limit - produced)
            reply = self._pull(since_lsn=since, max_count=page)
            reason = pruned_range(reply, since)
            if reason is not None:
                raise WalPrunedError(self.client.target, since, reply.oldest_available_lsn, reason)
            if not reply.records:
                return
            for record in reply.records:
                yield record_frame(record)
                produced += 1
            since = max(since, max(record.lsn for record in reply.records))

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.await_timeout_ms / 1000 + self.client.timeout)

    # -- the tail --------------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._tail, name="reddb-remote-follower", daemon=True
        )
        self._thread.start()

    def _pull(self, **kwargs: Any) -> PullReply:
        if not self._term_known:
            self._refresh_term()
        try:
            return self.client.pull_wal_records(term=self._term, **kwargs)
        except RedDbError as exc:
            if exc.code != "FAILED_PRECONDITION":
                raise
            self._refresh_term()  # a term fence: the primary moved on (or back)
            return self.client.pull_wal_records(term=self._term, **kwargs)

    def _refresh_term(self) -> None:
        try:
            term = self.client.replication_status().get("current_term")
        except RedDbError as exc:
            log.warning("RedDB status unavailable, pulling without a term: %s", exc)
            term = None
        self._term = term if isinstance(term, int) and not isinstance(term, bool) else None
        self._term_known = True
        self.status.term = self._term

    def _tail(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                generation, since = self._generation, self._since
                halted = self._fatal is not None
            if halted:
                self._stop.wait(0.1)
                continue
            try:
                reply = self._pull(
                    since_lsn=since,
                    max_count=self.max_count,
                    replica_id=self.replica_id,
                    await_data=True,
                    await_timeout_ms=self.await_timeout_ms,
                )
            except RedDbError as exc:
                failures += 1
                self.status.last_error = exc.message
                delay = min(0.05 * 2**failures, self.retry_max)
                log.warning("RedDB pull failed (retry in %.2fs): %s", delay, exc.message)
                self._stop.wait(delay)
                continue
            failures = 0
            with self._lock:
                if generation == self._generation:
                    self._accept(reply, since)

    def _accept(self, reply: PullReply, since: int) -> None:
        status = self.status
        status.exists = True
        status.last_error = None
        status.layouts_seen.add(LAYOUT)
        status.current_lsn = reply.current_lsn
        status.oldest_available_lsn = reply.oldest_available_lsn
        reason = pruned_range(reply, since)
        if reason is not None:
            error = WalPrunedError(self.client.target, since, reply.oldest_available_lsn, reason)
            status.prunes += 1
            status.corrupt_reason = error.message
            log.error("%s", error.message)
            if reply.needs_rebootstrap:
                self._fatal = error
                return
        for record in reply.records:
            frame = record_frame(record)
            if status.last_lsn is not None:
                if frame.lsn > status.last_lsn + 1:
                    status.gaps += 1
                elif frame.lsn < status.last_lsn:
                    status.out_of_order += 1
            status.last_lsn = max(status.last_lsn or 0, frame.lsn)
            if status.first_lsn is None or frame.lsn < status.first_lsn:
                status.first_lsn = frame.lsn
            status.records += 1
            self._queue.append(frame)
            self._since = max(self._since, frame.lsn)
        if not reply.records:
            # nothing after ``since`` up to the primary's current LSN (e.g. a slot restart point)
            self._since = max(self._since, reply.current_lsn)
