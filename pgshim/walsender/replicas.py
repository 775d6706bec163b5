"""RedDB's primary-side replica registry and commit waiter, fed by PostgreSQL consumers.

Each streaming consumer is a replica (id ``pgshim:<slot>`` unless it names one) with RedDB's
``ReplicaState`` fields, all in RedDB LSN units. A standby status update (``r``) becomes
``ack_replica_lsn(applied, durable)``: durable is what the client's flush position covers, applied
what max(apply, flush) covers. As in RedDB, every durable ack reaches the commit waiter, registered
or not, and acks only move forward. The topology epoch rises when a replica connects (a new or
disconnected id) or disconnects. Acks are kept in the state database, so after a restart each known
replica is listed again, as disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from pgshim.state import transaction

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replicas (
    replica_id TEXT PRIMARY KEY,
    slot_name TEXT NOT NULL,
    application_name TEXT NOT NULL,
    region TEXT,
    last_sent_lsn INTEGER NOT NULL,
    last_acked_lsn INTEGER NOT NULL,
    last_durable_lsn INTEGER NOT NULL,
    write_lsn INTEGER NOT NULL,
    connected_at REAL NOT NULL,
    last_seen_at REAL NOT NULL
)
"""

# the pgshim_replicas view: column name and type oid
REPLICA_COLUMNS: list[tuple[str, int]] = [
    ("replica_id", 25),
    ("slot_name", 25),
    ("application_name", 25),
    ("last_sent_lsn", 20),
    ("last_acked_lsn", 20),
    ("last_durable_lsn", 20),
    ("write_lsn", 20),
    ("connected_at", 1184),
    ("last_seen_at", 1184),
    ("region", 25),
    ("lag_records", 20),
    ("lag_seconds", 701),
    ("topology_epoch", 20),
    ("connected", 16),
]


def default_replica_id(slot: str) -> str:
    return f"pgshim:{slot}"


@dataclass(slots=True)
class ReplicaState:
    replica_id: str
    slot: str
    application_name: str
    region: str | None
    connected_at: float  # unix seconds
    last_seen_at: float
    durable_advanced_at: float  # when last_durable_lsn last moved (for lag_seconds)
    last_sent_lsn: int = 0
    last_acked_lsn: int = 0  # applied
    last_durable_lsn: int = 0
    write_lsn: int = 0  # last received
    connected: bool = True
    xmin: int | None = None  # hot standby feedback: recorded, no effect
    catalog_xmin: int | None = None


class CommitWaiter:
    """Durable acks per replica id, and waits for the N-th highest to reach a target LSN."""

    def __init__(self, members: Callable[[], Collection[str]] | None = None) -> None:
        self._durable: dict[str, int] = {}
        self._members = members
        self._changed = asyncio.Event()

    def record_replica_ack(self, replica_id: str, durable: int) -> None:
        if durable > self._durable.get(replica_id, 0):
            self._durable[replica_id] = durable
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        else:
            self._durable.setdefault(replica_id, durable)

    def forget(self, replica_id: str) -> None:
        self._durable.pop(replica_id, None)

    def acks(self) -> dict[str, int]:
        return dict(self._durable)

    def commit_watermark(self, n: int = 1) -> int:
        """The N-th highest durable LSN (0 when fewer than N replicas acked)."""
        return _nth_highest(self._durable.values(), n)

    def is_durable(self, lsn: int, n: int) -> bool:
        return n <= 0 or self.commit_watermark(n) >= lsn

    def quorum_size(self) -> int:
        members = self._members() if self._members is not None else self._durable.keys()
        return len(members) // 2 + 1

    def quorum(self, lsn: int) -> bool:
        """A majority of the members (all acking ids when no membership is given) is durable at lsn.

        With no members there is no majority to reach, so this is False.
        """
        members = list(self._members() if self._members is not None else self._durable)
        if not members:
            return False
        acked = [self._durable.get(member, 0) for member in members]
        return _nth_highest(acked, len(members) // 2 + 1) >= lsn

    async def await_acks(self, target_lsn: int, n: int, timeout: float) -> bool:
        """Wait until N replicas are durable at target_lsn; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_durable(target_lsn, n):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return self.is_durable(target_lsn, n)
        return True


def _nth_highest(values: Collection[int], n: int) -> int:
    if n <= 0 or len(values) < n:
        return 0
    return sorted(values, reverse=True)[n - 1]


class ReplicaRegistry:
    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock
        self._replicas: dict[str, ReplicaState] = {}
        self._dirty: set[str] = set()
        self._persist_failing = False
        self.topology_epoch = 0
        self.waiter = CommitWaiter(members=self.connected_ids)
        # told every ack (replica id, applied, durable): forwards them to a RedDB primary
        self.on_ack: Callable[[str, int, int], None] | None = None
        conn.execute(_SCHEMA)
        for row in conn.execute(
            "SELECT replica_id, slot_name, application_name, region, last_sent_lsn, "
            "last_acked_lsn, last_durable_lsn, write_lsn, connected_at, last_seen_at FROM replicas"
        ):
            replica_id, slot, app, region, sent, acked, durable, write, connected_at, seen = row
            self._replicas[replica_id] = ReplicaState(
                replica_id=replica_id,
                slot=slot,
                application_name=app,
                region=region,
                connected_at=connected_at,
                last_seen_at=seen,
                durable_advanced_at=seen,
                last_sent_lsn=sent,
                last_acked_lsn=acked,
                last_durable_lsn=durable,
                write_lsn=write,
                connected=False,
            )
            self.waiter.record_replica_ack(replica_id, durable)

    # --- membership -------------------------------------------------------------------------------

    def get(self, replica_id: str) -> ReplicaState | None:
        return self._replicas.get(replica_id)

    def list(self) -> list[ReplicaState]:
        return [self._replicas[key] for key in sorted(self._replicas)]

    def connected_ids(self) -> list[str]:
        return [key for key, replica in self._replicas.items() if replica.connected]

    def register(
        self, replica_id: str, slot: str, application_name: str, region: str | None = None
    ) -> ReplicaState:
        now = self._clock()
        replica = self._replicas.get(replica_id)
        if replica is None:
            replica = ReplicaState(
                replica_id, slot, application_name, region, now, now, now, connected=False
            )
            self._replicas[replica_id] = replica
        replica.slot, replica.application_name, replica.region = slot, application_name, region
        replica.last_seen_at = now
        if not replica.connected:
            replica.connected = True
            replica.connected_at = now
            replica.durable_advanced_at = now
            self.topology_epoch += 1
        self._persist(replica)
        return replica

    def forget_slot(self, slot: str) -> list[str]:
        """The slot was dropped: remove its replicas from the registry, the waiter and the state."""
        gone = [key for key, replica in self._replicas.items() if replica.slot == slot]
        with transaction(self._conn):
            for replica_id in gone:
                if self._replicas.pop(replica_id).connected:
                    self.topology_epoch += 1
                self._dirty.discard(replica_id)
                self.waiter.forget(replica_id)
                self._conn.execute("DELETE FROM replicas WHERE replica_id = ?", (replica_id,))
        return gone

    def unregister(self, replica_id: str) -> bool:
        replica = self._replicas.get(replica_id)
        if replica is None or not replica.connected:
            return False
        replica.connected = False
        self.topology_epoch += 1
        self._persist(replica)
        return True

    # --- progress ---------------------------------------------------------------------------------

    def touch(self, replica_id: str) -> None:
        replica = self._replicas.get(replica_id)
        if replica is not None:
            replica.last_seen_at = self._clock()
            self._dirty.add(replica_id)

    def note_sent(self, replica_id: str, redb_lsn: int) -> None:
        replica = self._replicas.get(replica_id)
        if replica is not None:
            replica.last_sent_lsn = max(replica.last_sent_lsn, redb_lsn)
            replica.last_seen_at = self._clock()
            self._dirty.add(replica_id)

    def ack_replica_lsn(self, replica_id: str, applied: int, durable: int) -> None:
        replica = self._replicas.get(replica_id)
        if replica is not None:
            now = self._clock()
            replica.last_acked_lsn = max(replica.last_acked_lsn, applied)
            if durable > replica.last_durable_lsn:
                replica.last_durable_lsn = durable
                replica.durable_advanced_at = now
            replica.last_seen_at = now
            self._dirty.add(replica_id)
            applied, durable = replica.last_acked_lsn, replica.last_durable_lsn
        self.waiter.record_replica_ack(replica_id, durable)
        if self.on_ack is not None:
            self.on_ack(replica_id, applied, durable)

    def feedback(
        self,
        replica_id: str,
        write_pos: int,
        flush_pos: int,
        apply_pos: int,
        covered_lsn: Callable[[int], int],
    ) -> None:
        """A standby status update in PostgreSQL positions; ``covered_lsn(pos)`` is the RedDB LSN of
        the last change whose commit end ``pos`` covers (0 if none)."""
        replica = self._replicas.get(replica_id)
        if replica is not None and write_pos:
            replica.write_lsn = max(replica.write_lsn, write_pos >> 8)
        if not flush_pos and not apply_pos:
            self.touch(replica_id)
            return
        durable = covered_lsn(flush_pos) if flush_pos else 0
        applied = covered_lsn(max(apply_pos, flush_pos))
        self.ack_replica_lsn(replica_id, applied, durable)

    def hot_standby_feedback(self, replica_id: str, xmin: int, catalog_xmin: int) -> None:
        replica = self._replicas.get(replica_id)
        if replica is not None:
            replica.xmin = xmin or None
            replica.catalog_xmin = catalog_xmin or None
        self.touch(replica_id)

    # --- commit policies --------------------------------------------------------------------------

    def is_durable(self, lsn: int, n: int) -> bool:
        return self.waiter.is_durable(lsn, n)

    def quorum(self, lsn: int) -> bool:
        return self.waiter.quorum(lsn)

    async def await_acks(self, target_lsn: int, n: int, timeout: float) -> bool:
        return await self.waiter.await_acks(target_lsn, n, timeout)

    # --- persistence and status -------------------------------------------------------------------

    def flush(self) -> int:
        """Write the acks gathered since the last flush (status only: no fsync needed)."""
        dirty = [self._replicas[key] for key in sorted(self._dirty) if key in self._replicas]
        if dirty:
            with transaction(self._conn):
                for replica in dirty:
                    self._upsert(replica)
        self._dirty.clear()
        return len(dirty)

    def _persist(self, replica: ReplicaState) -> None:
        """Write one replica's state now; when the state database cannot be written (a full
        disk), it stays dirty for the next flush: status, not delivery, waits on it."""
        try:
            with transaction(self._conn):
                self._upsert(replica)
        except sqlite3.Error as exc:
            self._dirty.add(replica.replica_id)
            if not self._persist_failing:
                log.warning("replica status cannot be written (%s); kept for later", exc)
                self._persist_failing = True
            return
        self._persist_failing = False
        self._dirty.discard(replica.replica_id)

    def _upsert(self, replica: ReplicaState) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO replicas (replica_id, slot_name, application_name, region, "
            "last_sent_lsn, last_acked_lsn, last_durable_lsn, write_lsn, connected_at, "
            "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                replica.replica_id,
                replica.slot,
                replica.application_name,
                replica.region,
                replica.last_sent_lsn,
                replica.last_acked_lsn,
                replica.last_durable_lsn,
                replica.write_lsn,
                replica.connected_at,
                replica.last_seen_at,
            ),
        )

    def rows(self, current_lsn: int) -> list[tuple]:
        """pgshim_replicas rows in :data:`REPLICA_COLUMNS` order.

        lag_records = current_lsn (the spool's last LSN) - last_durable_lsn; lag_seconds is how long the replica has been
        behind: the time since its durable LSN last moved, 0 when it is caught up.
        """
        now = self._clock()
        rows = []
        for replica in self.list():
            lag_records = max(0, current_lsn - replica.last_durable_lsn)
            lag_seconds = max(0.0, now - replica.durable_advanced_at) if lag_records else 0.0
            rows.append(
                (
                    replica.replica_id,
                    replica.slot,
                    replica.application_name,
                    replica.last_sent_lsn,
                    replica.last_acked_lsn,
                    replica.last_durable_lsn,
                    replica.write_lsn,
                    _timestamp(replica.connected_at),
                    _timestamp(replica.last_seen_at),
                    replica.region,
                    lag_records,
                    lag_seconds,
                    self.topology_epoch,
                    replica.connected,
                )
            )
        return rows


def _timestamp(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)
