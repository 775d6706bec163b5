"""Forwards the acks PostgreSQL consumers send to a RedDB primary (``AckReplicaLsn``).

RedDB's commit policies (``ack_n``, ``quorum``) and its spool retention count only replicas that
ack to it. ``note()`` is called on the event loop for every standby status update; it only
records the highest (applied, durable) per replica id. ``run()`` sends, at most once per interval,
one ack for each replica whose values advanced since the last successful send. Calls run in a
worker thread so a slow or unreachable primary never blocks a session; a failed replica waits an
exponentially growing delay before its next attempt, while the others go on.

Before a replica's first ack the forwarder can identify it with a ``PullWalRecords`` carrying its
``replica_id`` (RedDB v1.8+ registers the replica and creates its slot that way; v1.2 only
updates acks of registered replicas). A failed registration is recorded but does not hold back
the ack: RedDB's commit waiter counts durable acks from unregistered ids too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pgshim.reddb.link.client import RedDbError

log = logging.getLogger(__name__)


class AckClient(Protocol):
    def ack_replica_lsn(self, replica_id: str, applied_lsn: int, durable_lsn: int) -> object: ...

    def pull_wal_records(self, *, since_lsn: int, max_count: int, replica_id: str) -> object: ...


class ForwardStatus(NamedTuple):
    last_forwarded_applied: int | None
    last_forwarded_durable: int | None
    last_error: str | None
    last_forwarded_at: float | None  # unix seconds of the last successful AckReplicaLsn


@dataclass(slots=True)
class _Replica:
    applied: int = 0  # highest noted
    durable: int = 0
    sent_applied: int | None = None  # last successfully forwarded
    sent_durable: int | None = None
    sent_at: float | None = None
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0  # monotonic; no attempt before
    registered: bool = False

    def advanced(self) -> bool:
        return self.sent_applied is None or (
            self.applied > self.sent_applied or self.durable > (self.sent_durable or 0)
        )


class AckForwarder:
    def __init__(
        self,
        client: AckClient,
        *,
        interval_ms: int = 200,
        replica_id_format: str = "pgshim:{slot}",
        register: bool = True,
        max_backoff_ms: int = 30_000,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.interval = interval_ms / 1000
        self.replica_id_format = replica_id_format
        self.register = register
        self.max_backoff = max_backoff_ms / 1000
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._replicas: dict[str, _Replica] = {}
        self._stopping = asyncio.Event()
        self._flushing = asyncio.Lock()  # one flush at a time: a replica's acks go out in order

    def replica_id(self, slot: str) -> str:
        return self.replica_id_format.format(slot=slot)

    def note(self, replica_id: str, applied_lsn: int, durable_lsn: int) -> None:
        """Record a replica's positions (RedDB LSNs); never blocks, never fails."""
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is None:
                replica = self._replicas[replica_id] = _Replica()
            replica.applied = max(replica.applied, applied_lsn)
            replica.durable = max(replica.durable, durable_lsn)

    def status(self, replica_id: str) -> ForwardStatus:
        with self._lock:
            replica = self._replicas.get(replica_id)
            if replica is None:
                return ForwardStatus(None, None, None, None)
            return ForwardStatus(
                replica.sent_applied, replica.sent_durable, replica.last_error, replica.sent_at
            )

    def replica_ids(self) -> list[str]:
        with self._lock:
            return list(self._replicas)

    async def run(self) -> None:
        """Forward advanced acks every interval until ``stop()``."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                break
            await self.flush()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop ``run()`` and make one last attempt for every replica that advanced."""
        self._stopping.set()
        try:
            await asyncio.wait_for(self.flush(ignore_backoff=True), timeout)
        except TimeoutError:
            log.warning("RedDB ack forwarding: final flush timed out after %.1fs", timeout)

    async def flush(self, *, ignore_backoff: bool = False) -> int:
        """Send one ack per replica that advanced (and is not backing off); returns how many
        succeeded."""
        async with self._flushing:
            return await self._flush(ignore_backoff)

    async def _flush(self, ignore_backoff: bool) -> int:
        now = self._monotonic()
        with self._lock:
            due = [
                (rid, r.applied, r.durable, not r.registered)
                for rid, r in self._replicas.items()
                if r.advanced() and (ignore_backoff or r.retry_at <= now)
            ]
        sent = 0
        for replica_id, applied, durable, needs_registration in due:
            ok = await asyncio.to_thread(
                self._send, replica_id, applied, durable, needs_registration and self.register
            )
            sent += ok
        return sent

    def _send(self, replica_id: str, applied: int, durable: int, register: bool) -> bool:
        if register:
            self._register(replica_id, durable)
        try:
            self.client.ack_replica_lsn(replica_id, applied, durable)
        except RedDbError as exc:
            self._failed(replica_id, exc.message)
            return False
        except Exception as exc:  # a broken channel must not end the forwarding loop
            self._failed(replica_id, f"{type(exc).__name__}: {exc}")
            return False
        with self._lock:
            replica = self._replicas[replica_id]
            replica.sent_applied = max(replica.sent_applied or 0, applied)
            replica.sent_durable = max(replica.sent_durable or 0, durable)
            replica.sent_at = self._clock()
            replica.last_error = None
            replica.failures = 0
            replica.retry_at = 0.0
        return True

    def _register(self, replica_id: str, durable: int) -> None:
        try:
            self.client.pull_wal_records(since_lsn=durable, max_count=1, replica_id=replica_id)
        except Exception as exc:
            log.warning("RedDB: could not register replica %s: %s", replica_id, exc)
        # tried once per forwarder: a primary that refuses it still counts the acks
        with self._lock:
            self._replicas[replica_id].registered = True

    def _failed(self, replica_id: str, error: str) -> None:
        with self._lock:
            replica = self._replicas[replica_id]
            replica.failures += 1
            delay = min(self.interval * 2**replica.failures, self.max_backoff)
            replica.retry_at = self._monotonic() + delay
            replica.last_error = error
        log.warning("RedDB: ack for %s failed (retry in %.1fs): %s", replica_id, delay, error)
