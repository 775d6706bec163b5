"""Logical replication slots: persistent ones in the state database, temporary ones in memory.

Positions are PostgreSQL positions (see ``logical/positions.py``). Confirmations are applied in
memory at once and written in batches by :meth:`SlotStore.flush_dirty` with a durable commit, so a
crash loses at most the confirmations since the last flush: the client then gets those transactions
again, never fewer.

A temporary slot belongs to the session that created it: it counts as active for that session's pid
from creation on (another session gets 55006 "is active for PID n"), stays through the session's
streams and SQL-level decoding, and is dropped when that session ends, however it ends (and never
survives a restart).

A slot is *invalidated* (lost) when changes it still needed are gone or were wrong: RedDB pruned
records it had not confirmed, or another part of pgshim found that what it confirmed or was sent
cannot be trusted (:meth:`SlotStore.invalidate`, :meth:`SlotStore.invalidate_confirmed_past`). As in
PostgreSQL, a lost slot stays until dropped, pg_replication_slots shows ``wal_status = 'lost'`` and
``restart_lsn`` NULL, and decoding from it fails with 55000 "can no longer get changes from
replication slot"; the reason is in the ``pgshim_slots`` view, the log says it once and
``pgshim_slot_invalidations`` counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import sqlite3
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.positions import end_pos
from pgshim.spool.frames import scan_frames
from pgshim.state import add_missing_columns, durable_commit, is_shared, transaction, write_error
from pgshim.walsender.stream import ActiveStreams

log = logging.getLogger(__name__)

DEFAULT_MAX_SLOTS = 64
DEFAULT_DATOID = 5  # the oid PostgreSQL gives its "postgres" database
DEFAULT_LEASE_SECONDS = 10.0
# a lease not confirmed for this share of its length is given up here before it can run out
# there (the state database's clock decides when it runs out; ours only measures how long ago)
LEASE_SAFETY = 0.7
SHARED_WAIT = 1.0  # seconds between looks at another instance's slot (DROP ... WAIT)
NAME_MAX_BYTES = 63
_VALID_NAME = re.compile(r"[a-z0-9_]*")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    name TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    database TEXT NOT NULL,
    two_phase INTEGER NOT NULL,
    confirmed_flush INTEGER NOT NULL,
    restart_pos INTEGER NOT NULL,
    created_at TEXT NOT NULL
)
"""
# columns added after the first release (older state databases get them on open)
_ADDED_COLUMNS = {
    "lost_after": "INTEGER",  # an invalidated slot: changes after this position are lost
    "invalidation_reason": "TEXT",
    "invalidated_time": "TEXT",
    "failover": "INTEGER",  # PostgreSQL 17's FAILOVER (shown, kept; pgshim has no standbys)
    "two_phase_at": "INTEGER",  # where two-phase decoding was enabled
}

# pg_replication_slots (PG15): column name and type oid
SLOT_COLUMNS: list[tuple[str, int]] = [
    ("slot_name", 19),
    ("plugin", 19),
    ("slot_type", 25),
    ("datoid", 26),
    ("database", 19),
    ("temporary", 16),
    ("active", 16),
    ("active_pid", 23),
    ("xmin", 28),
    ("catalog_xmin", 28),
    ("restart_lsn", 3220),
    ("confirmed_flush_lsn", 3220),
    ("wal_status", 25),
    ("safe_wal_size", 20),
    ("two_phase", 16),
]
# what later PostgreSQL versions show after (or instead of) PostgreSQL 15's last column
_LATER_SLOT_COLUMNS: dict[int, list[tuple[str, int]]] = {
    16: [("two_phase", 16), ("conflicting", 16)],
    17: [
        ("two_phase", 16), ("inactive_since", 1184), ("conflicting", 16),
        ("invalidation_reason", 25), ("failover", 16), ("synced", 16),
    ],
    18: [
        ("two_phase", 16), ("two_phase_at", 3220), ("inactive_since", 1184),
        ("conflicting", 16), ("invalidation_reason", 25), ("failover", 16), ("synced", 16),
    ],
}  # fmt: skip


def slot_columns(major: int) -> list[tuple[str, int]]:
    """pg_replication_slots' columns in PostgreSQL ``major``: name and type oid."""
    return SLOT_COLUMNS[:-1] + _LATER_SLOT_COLUMNS.get(major, SLOT_COLUMNS[-1:])


@dataclass(slots=True)
class SlotStats:
    """pg_stat_replication_slots' counters since the server started (in memory): transactions
    and bytes of output sent to the slot's consumers, streams and SQL decoding alike."""

    total_txns: int = 0
    total_bytes: int = 0

    def add(self, txns: int, size: int) -> None:
        self.total_txns += txns
        self.total_bytes += size


@dataclass(slots=True)
class Slot:
    name: str
    plugin: str
    database: str
    temporary: bool
    two_phase: bool
    confirmed_flush: int
    restart_pos: int
    created_at: datetime
    active_pid: int | None = None  # in memory only
    options: list[tuple[str, str | None]] = field(default_factory=list)  # of the current START
    invalidation_reason: str | None = None  # set once the slot is lost
    lost_after: int | None = None  # changes after this position may be missing
    invalidated_time: datetime | None = None
    stats: SlotStats = field(default_factory=SlotStats)  # in memory only
    failover: bool = False
    two_phase_at: int | None = None  # where two-phase decoding was enabled
    inactive_since: datetime | None = None  # when it was last released (in memory only)
    holder: str | None = None  # the instance whose session uses it (see SlotStore.instance)
    held_elsewhere: bool = False  # by another instance's session (a shared state database)

    @property
    def active(self) -> bool:
        return self.active_pid is not None

    @property
    def lost(self) -> bool:
        return self.invalidation_reason is not None


def lost_slot_error(slot: Slot) -> PgError:
    """PostgreSQL 15's error for decoding from an invalidated slot (logical.c)."""
    return PgError(
        "55000",
        f'can no longer get changes from replication slot "{slot.name}"',
        detail=f"This slot has been invalidated because {slot.invalidation_reason}.",
    )


# pgshim_slots: every slot with what PostgreSQL 15's view lacks (why a slot was lost)
PGSHIM_SLOT_COLUMNS = [
    ("slot_name", "name"), ("plugin", "name"), ("temporary", "bool"), ("active", "bool"),
    ("active_pid", "int4"), ("confirmed_flush_lsn", "pg_lsn"), ("wal_status", "text"),
    ("invalidation_reason", "text"), ("lost_after_lsn", "pg_lsn"),
    ("invalidated_at", "timestamptz"), ("active_instance", "text"),
]  # fmt: skip


def validate_slot_name(name: str) -> None:
    """PostgreSQL's rules: 1..63 bytes of lower case letters, digits and underscores."""
    if not name:
        raise PgError("42602", f'replication slot name "{name}" is too short')
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise PgError("42622", f'replication slot name "{name}" is too long')
    if not _VALID_NAME.fullmatch(name):
        raise PgError(
            "42602",
            f'replication slot name "{name}" contains invalid character',
            hint="Replication slot names may only contain lower case letters, numbers, "
            "and the underscore character.",
        )


_STORED = (
    "name, plugin, database, two_phase, confirmed_flush, restart_pos, created_at, lost_after, "
    "invalidation_reason, invalidated_time, failover, two_phase_at"
)


_STORED_FIELDS = ("plugin", "database", "two_phase", "confirmed_flush", "restart_pos", "created_at",
                  "lost_after", "invalidation_reason", "invalidated_time", "failover",
                  "two_phase_at")  # fmt: skip


def _slot_from_row(row: Sequence[Any]) -> Slot:
    """A persistent slot from the columns ``_STORED`` names."""
    name, plugin, db, two_phase, confirmed, restart, created, lost_after, reason, at = row[:10]
    failover, two_phase_at = row[10:12]
    return Slot(
        name=name,
        plugin=plugin,
        database=db,
        temporary=False,
        two_phase=bool(two_phase),
        confirmed_flush=_from_sql(confirmed),
        restart_pos=_from_sql(restart),
        created_at=datetime.fromisoformat(created),
        invalidation_reason=reason,
        lost_after=None if lost_after is None else _from_sql(lost_after),
        invalidated_time=None if at is None else datetime.fromisoformat(at),
        failover=bool(failover),
        two_phase_at=None if two_phase_at is None else _from_sql(two_phase_at),
        inactive_since=datetime.now(UTC),
    )


class SlotStore:
    """All slots of this server; persistent slots live in the ``slots`` table of the state database."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        database: str,
        datoid: int = DEFAULT_DATOID,
        max_slots: int = DEFAULT_MAX_SLOTS,
        instance: str = "pgshim",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._conn = conn
        self.instance = instance
        # a database shared by several instances: a slot's session holds a lease on it there
        self._shared = is_shared(conn)
        self.lease_seconds = lease_seconds
        # the slots this process holds a lease on -> when it was last confirmed
        self._leased_at: dict[str, float] = {}
        # who holds a lease: this process, not the instance name (a restarted instance, or two
        # started with one name by mistake, never take each other's leases for their own)
        self._token = secrets.token_hex(8)
        self._lost: dict[str, PgError] = {}  # why a lease was lost, for check_lease
        self._renew_at = 0.0
        self.lease_error: str | None = None  # why the last renewal failed
        self.database = database
        self.datoid = datoid
        self.max_slots = max_slots
        self._slots: dict[str, Slot] = {}
        self._dirty: set[str] = set()
        self.flush_error: str | None = None  # why the last flush_dirty could not write
        self._released = asyncio.Event()
        self.streams = ActiveStreams()  # the running START_REPLICATION streams, by slot
        self.invalidations = 0  # slots invalidated since this process started (a metric)
        conn.execute(_SCHEMA)
        add_missing_columns(conn, "slots", _ADDED_COLUMNS)
        if self._shared:
            self.refresh()
        else:
            for row in conn.execute(f"SELECT {_STORED} FROM slots ORDER BY name"):
                self._slots[row[0]] = _slot_from_row(row)

    # --- lookup -----------------------------------------------------------------------------------

    def get(self, name: str) -> Slot | None:
        slot = self._slots.get(name)
        if slot is None and self._shared:  # another instance may have created it since
            self._refresh_or_fail()
            slot = self._slots.get(name)
        return slot

    def list(self) -> list[Slot]:
        return [self._slots[name] for name in sorted(self._slots)]

    def slot_rows(self, major: int = 15) -> list[tuple]:
        """pg_replication_slots rows for every slot (see :func:`slot_rows`)."""
        self._refresh_quietly()
        return slot_rows(self.list(), {self.database: self.datoid}, major)

    def pgshim_slot_rows(self) -> list[tuple]:
        """pgshim_slots rows (:data:`PGSHIM_SLOT_COLUMNS`): with the reason a slot was lost."""
        self._refresh_quietly()
        return [
            (
                slot.name, slot.plugin, slot.temporary, slot.active, slot.active_pid,
                slot.confirmed_flush, _wal_status(slot), slot.invalidation_reason,
                slot.lost_after, slot.invalidated_time, slot.holder if slot.active else None,
            )
            for slot in self.list()
        ]  # fmt: skip

    def _require(self, name: str) -> Slot:
        slot = self.get(name)
        if slot is None:
            raise PgError("42704", f'replication slot "{name}" does not exist')
        return slot

    # --- lifecycle --------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        plugin: str,
        *,
        temporary: bool,
        two_phase: bool,
        confirmed_flush: int,
        restart_pos: int,
        pid: int | None = None,
        failover: bool = False,
    ) -> Slot:
        """Create a slot; a temporary one needs the creating session's ``pid``, which then owns it."""
        if temporary and pid is None:
            raise ValueError("a temporary slot needs the pid of the session that owns it")
        validate_slot_name(name)
        if self._shared:
            self._refresh_or_fail()
        if name in self._slots:
            raise PgError("42710", f'replication slot "{name}" already exists')
        if failover and temporary:
            raise _temporary_failover_error()
        if len(self._slots) >= self.max_slots:
            raise PgError(
                "53400",
                "all replication slots are in use",
                hint='Free one or increase "max_replication_slots".',
            )
        slot = Slot(
            name=name,
            plugin=plugin,
            database=self.database,
            temporary=temporary,
            two_phase=two_phase,
            confirmed_flush=confirmed_flush,
            restart_pos=restart_pos,
            created_at=datetime.now(UTC),
            active_pid=pid if temporary else None,
            failover=failover,
            two_phase_at=confirmed_flush if two_phase else None,
            inactive_since=None if temporary else datetime.now(UTC),
        )
        if not temporary:
            try:
                with transaction(self._conn):
                    self._conn.execute(
                        "INSERT INTO slots (name, plugin, database, two_phase, confirmed_flush, "
                        "restart_pos, created_at, failover, two_phase_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            name,
                            plugin,
                            slot.database,
                            int(two_phase),
                            _to_sql(confirmed_flush),
                            _to_sql(restart_pos),
                            slot.created_at.isoformat(),
                            int(failover),
                            None if slot.two_phase_at is None else _to_sql(slot.two_phase_at),
                        ),
                    )
            except sqlite3.IntegrityError:  # another instance created it meanwhile
                raise PgError("42710", f'replication slot "{name}" already exists') from None
            except sqlite3.Error as exc:  # a full disk: no slot, PostgreSQL's error
                raise write_error(exc) from None
            self._sync()
        self._slots[name] = slot
        return slot

    def drop(self, name: str, *, pid: int) -> None:
        if self._shared:
            self._refresh_or_fail()
        slot = self._require(name)
        if self._used_by_another(slot, pid):
            raise _active_error(slot)
        self._forget(slot)

    async def drop_wait(self, name: str, *, pid: int) -> None:
        """DROP_REPLICATION_SLOT ... WAIT: wait until no other session holds the slot, then drop it."""
        while True:
            if self._shared:
                self._refresh_or_fail()
            slot = self._require(name)
            if not self._used_by_another(slot, pid):
                self._forget(slot)
                return
            released = self._released
            # another instance's session ends unseen: look again now and then
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), SHARED_WAIT if self._shared else None)

    def _used_by_another(self, slot: Slot, pid: int) -> bool:
        if slot.active_pid is None:
            return False
        return slot.held_elsewhere or slot.active_pid != pid

    def _forget(self, slot: Slot) -> None:
        if not slot.temporary:  # gone from the database first: a failure leaves the slot as it was
            try:
                with transaction(self._conn):
                    deleted = self._conn.execute(
                        "DELETE FROM slots WHERE name = ?" + self._unleased(), self._lease_args(slot)
                    ).rowcount
            except sqlite3.Error as exc:
                raise write_error(exc) from None
            if not deleted and self._shared:  # another instance took it meanwhile
                self._refresh_or_fail()
                if slot.name in self._slots:
                    raise _active_error(self._slots[slot.name])
            self._sync()
        del self._slots[slot.name]
        self._dirty.discard(slot.name)
        self._notify_released()

    def _sync(self) -> None:
        """The durability barrier after a commit. The commit is done when it fails (the WAL
        is synced before the checkpoint copies it, which is what fails on a full disk)."""
        try:
            durable_commit(self._conn)
        except sqlite3.Error as exc:
            log.warning("state database: checkpoint after a slot change failed: %s", exc)

    def acquire(self, name: str, pid: int, options: Iterable[tuple[str, str | None]] = ()) -> Slot:
        """Make ``pid`` the one consumer of the slot (START_REPLICATION)."""
        if self._shared:
            self._refresh_or_fail()
        slot = self._require(name)
        if self._used_by_another(slot, pid):
            raise _active_error(slot)
        if slot.database != self.database:
            raise PgError("55000", f'replication slot "{name}" was not created in this database')
        if self._shared and not slot.temporary:
            self._take_lease(slot, pid)
        slot.active_pid = pid
        slot.holder = self.instance
        slot.options = list(options)
        return slot

    def release(self, name: str, pid: int) -> None:
        """End ``pid``'s use of the slot (a stream's end, CopyDone, a SQL decoding call): persist
        its confirmations. A temporary slot stays, active for its session, as in PostgreSQL:
        it is dropped by :meth:`release_all` when that session ends."""
        slot = self._slots.get(name)
        if slot is None or slot.active_pid != pid:
            return
        slot.options = []
        if slot.temporary:
            return
        slot.active_pid = None
        slot.inactive_since = datetime.now(UTC)
        self.flush_dirty()
        slot.holder = None
        if self._shared:
            self._give_up_lease(name)
        self._notify_released()

    def alter(
        self, name: str, *, pid: int, failover: bool | None = None, two_phase: bool | None = None
    ) -> Slot:
        """ALTER_REPLICATION_SLOT: change FAILOVER and TWO_PHASE of a slot no other session
        uses; stored before it answers."""
        if self._shared:
            self._refresh_or_fail()
        slot = self._require(name)
        if self._used_by_another(slot, pid):
            raise _active_error(slot)
        if failover and slot.temporary:
            raise _temporary_failover_error()
        new_failover = slot.failover if failover is None else failover
        new_two_phase = slot.two_phase if two_phase is None else two_phase
        two_phase_at = slot.two_phase_at
        if new_two_phase and not slot.two_phase:
            two_phase_at = slot.confirmed_flush
        self._store_flags(slot, new_failover, new_two_phase, two_phase_at)
        return slot

    def enable_two_phase(self, name: str, position: int) -> None:
        """A stream asked for two-phase decoding (pgoutput's two_phase): from now on the slot
        has it, as PostgreSQL's CreateDecodingContext sets it at ``position``."""
        slot = self._require(name)
        if not slot.two_phase:
            self._store_flags(slot, slot.failover, True, position)

    def _store_flags(
        self, slot: Slot, failover: bool, two_phase: bool, two_phase_at: int | None
    ) -> None:
        if not slot.temporary:
            try:
                with transaction(self._conn):
                    self._conn.execute(
                        "UPDATE slots SET failover = ?, two_phase = ?, two_phase_at = ? "
                        "WHERE name = ?",
                        (
                            int(failover),
                            int(two_phase),
                            None if two_phase_at is None else _to_sql(two_phase_at),
                            slot.name,
                        ),
                    )
            except sqlite3.Error as exc:
                raise write_error(exc) from None
            self._sync()
        slot.failover, slot.two_phase, slot.two_phase_at = failover, two_phase, two_phase_at

    def release_all(self, pid: int) -> None:
        """Session end (however it ends): release every slot ``pid`` holds and drop the
        temporary slots it owns."""
        for slot in [s for s in self._slots.values() if s.active_pid == pid]:
            if slot.temporary:
                self._forget(slot)
            else:
                self.release(slot.name, pid)

    def _notify_released(self) -> None:
        released, self._released = self._released, asyncio.Event()
        released.set()

    # --- a state database shared with other instances ------------------------------------------

    def refresh(self) -> None:
        """Read the slots again from a shared database: the ones other instances created,
        changed, dropped or hold. A slot this instance holds keeps its own positions (they are
        ahead of what was written)."""
        if not self._shared:
            return
        rows = self._conn.execute(
            f"SELECT {_STORED}, holder, holder_pid, lease_until > now() AND holder_token <> ?"
            " FROM slots",
            (self._token,),
        ).fetchall()
        stored = set()
        for row in rows:
            name, (holder, holder_pid, elsewhere) = row[0], row[12:]
            stored.add(name)
            slot = self._slots.get(name)
            if slot is not None and (slot.temporary or self._holds(slot)):
                if not slot.temporary and not slot.lost and row[8] is not None:
                    self._lost_elsewhere(slot, _slot_from_row(row))
                continue
            fresh = _slot_from_row(row)
            if slot is None:
                slot = self._slots[name] = fresh
            else:  # changed in place: whoever looked it up before sees it as it is now
                for stored_field in _STORED_FIELDS:
                    setattr(slot, stored_field, getattr(fresh, stored_field))
            slot.held_elsewhere = bool(elsewhere)
            slot.holder, slot.active_pid = (holder, holder_pid) if elsewhere else (None, None)
        for name in [name for name, slot in self._slots.items()
                     if name not in stored and not slot.temporary and not self._holds(slot)]:  # fmt: skip
            del self._slots[name]
            self._dirty.discard(name)

    def _lost_elsewhere(self, slot: Slot, stored: Slot) -> None:
        """Another instance invalidated the slot this one holds: it is lost here too, and the
        session streaming from it ends as :meth:`invalidate` ends it."""
        slot.invalidation_reason = stored.invalidation_reason
        slot.lost_after = stored.lost_after
        slot.invalidated_time = stored.invalidated_time
        self._dirty.discard(slot.name)
        log.warning('replication slot "%s" was invalidated by another instance: %s',
                    slot.name, slot.invalidation_reason)  # fmt: skip
        self.streams.end(slot.name, lost_slot_error(slot))

    def _holds(self, slot: Slot) -> bool:
        return slot.name in self._leased_at

    def _refresh_or_fail(self) -> None:
        try:
            self.refresh()
        except sqlite3.Error as exc:
            raise state_unreachable(exc) from None

    def _refresh_quietly(self) -> None:
        """Views show what is known when the shared database cannot be read."""
        try:
            self.refresh()
        except sqlite3.Error as exc:
            log.debug("slots not read again: %s", exc)

    def _unleased(self) -> str:
        """The condition of a statement on a slot no other instance holds (on a shared
        database): its parameters are ``_lease_args``."""
        if not self._shared:
            return ""
        return (" AND (holder_token IS NULL OR holder_token = ? OR lease_until IS NULL"
                " OR lease_until < now())")  # fmt: skip

    def _lease_args(self, slot: Slot) -> tuple:
        return (slot.name, self._token) if self._shared else (slot.name,)

    def _take_lease(self, slot: Slot, pid: int) -> None:
        """Hold the slot for this instance's session ``pid`` (55006 when another instance's
        session holds it); its positions are then the ones stored, which another instance may
        have moved since this one read them."""
        asked = time.monotonic()
        try:
            row = self._conn.execute(
                "UPDATE slots SET holder = ?, holder_token = ?, holder_pid = ?,"
                " lease_until = now() + ? * interval '1 second'"
                " WHERE name = ?" + self._unleased() + " RETURNING confirmed_flush, restart_pos",
                (self.instance, self._token, pid, self.lease_seconds, *self._lease_args(slot)),
            ).fetchone()
        except sqlite3.Error as exc:
            raise state_unreachable(exc) from None
        if row is None:
            self._refresh_or_fail()
            current = self._slots.get(slot.name)
            if current is None:
                raise PgError("42704", f'replication slot "{slot.name}" does not exist')
            raise _active_error(current)
        self._lost.pop(slot.name, None)
        slot.confirmed_flush = max(slot.confirmed_flush, _from_sql(row[0]))
        slot.restart_pos = max(slot.restart_pos, _from_sql(row[1]))
        self._leased_at[slot.name] = asked

    def _give_up_lease(self, name: str) -> None:
        self._leased_at.pop(name, None)
        try:
            self._conn.execute(
                "UPDATE slots SET holder = NULL, holder_token = NULL, holder_pid = NULL,"
                " lease_until = NULL WHERE name = ? AND holder_token = ?",
                (name, self._token),
            )
        except sqlite3.Error as exc:  # it runs out by itself
            log.warning('the lease on replication slot "%s" could not be given up (%s); another '
                        "instance can take the slot in %.0f s", name, exc, self.lease_seconds)  # fmt: skip

    def renew_leases(self, now: float | None = None) -> None:
        """Every third of a lease: renew the leases this instance holds and read the slots
        again. A session whose lease could not be renewed in time, or went to another
        instance, is ended: at most one session streams from a slot across the instances."""
        if not self._shared:
            return
        now = time.monotonic() if now is None else now
        if now < self._renew_at:
            return
        self._renew_at = now + self.lease_seconds / 3
        held = [slot for slot in self._slots.values() if not slot.temporary and self._holds(slot)]
        try:
            kept = set()
            if held:
                marks = ", ".join("?" for _ in held)
                kept = {name for (name,) in self._conn.execute(
                    "UPDATE slots SET lease_until = now() + ? * interval '1 second'"
                    f" WHERE holder_token = ? AND name IN ({marks}) RETURNING name",
                    (self.lease_seconds, self._token, *(slot.name for slot in held)),
                )}  # fmt: skip
        except sqlite3.Error as exc:
            if self.lease_error is None:
                log.warning("the slot leases cannot be renewed: %s", exc)
            self.lease_error = str(exc)
            for slot in held:
                if now - self._leased_at.get(slot.name, now) > self.lease_seconds * LEASE_SAFETY:
                    self._lose_lease(slot, f"its lease could not be renewed: {exc}")
            return
        if self.lease_error is not None:
            log.info("the slot leases are renewed again")
            self.lease_error = None
        for slot in held:
            if slot.name in kept:
                self._leased_at[slot.name] = now
            else:
                self._lose_lease(slot, "another instance holds it now")
        self._refresh_quietly()

    def check_lease(self, name: str) -> None:
        """Before a session of this instance sends from the slot: its lease is still good (an
        event loop that was busy longer than the lease allows renews it first); PgError when the
        session must end."""
        leased = self._leased_at.get(name)
        if leased is None or time.monotonic() - leased <= self.lease_seconds * LEASE_SAFETY:
            return
        self._renew_at = 0.0
        self.renew_leases()
        lost = self._lost.pop(name, None)
        if lost is not None:
            raise lost

    def _lose_lease(self, slot: Slot, why: str) -> None:
        log.warning('replication slot "%s": the session of PID %s is ended: %s',
                    slot.name, slot.active_pid, why)  # fmt: skip
        self._leased_at.pop(slot.name, None)
        error = PgError("55006", f'replication slot "{slot.name}" is no longer held by this '
                        f"instance: {why}")  # fmt: skip
        self._lost[slot.name] = error  # for a session about to send (check_lease)
        self.streams.end(slot.name, error)
        slot.active_pid = slot.holder = None
        slot.inactive_since = datetime.now(UTC)
        self._dirty.discard(slot.name)
        self._notify_released()

    def release_leases(self) -> None:
        """At shutdown: give up every lease, so that other instances take the slots at once."""
        for slot in list(self._slots.values()):
            if self._shared and not slot.temporary and self._holds(slot):
                self._give_up_lease(slot.name)

    # --- confirmations ----------------------------------------------------------------------------

    def confirm(self, name: str, flush: int, *, restart_pos: int | None = None) -> bool:
        """Apply a client's flush position; returns whether confirmed_flush moved.

        0 and positions below confirmed_flush are ignored (PostgreSQL 15 ignores them too, as the
        transcripts show). restart_pos follows the confirmation, or ``restart_pos`` when the caller
        knows an older start is still needed (an open transaction), never beyond ``flush``.
        """
        slot = self._require(name)
        if flush <= 0 or flush < slot.confirmed_flush or slot.lost:
            return False
        moved = flush != slot.confirmed_flush
        slot.confirmed_flush = flush
        wanted = flush if restart_pos is None else min(restart_pos, flush)
        slot.restart_pos = max(slot.restart_pos, wanted)
        if moved and not slot.temporary:
            self._dirty.add(name)
        return moved

    def flush_dirty(self) -> int:
        """Write pending confirmations with one durable commit; returns how many slots were written.

        When they cannot be written (a full disk) nothing is: the slots stay dirty, the next call
        tries again, the failure is logged once and kept in ``flush_error``. A restart meanwhile
        resumes them from what was written: their clients get those changes again."""
        if not self._dirty:
            return 0
        dirty = [self._slots[name] for name in sorted(self._dirty) if name in self._slots]
        try:
            with transaction(self._conn):
                # on a shared database, only while this instance holds the slot: one that lost
                # it to another instance does not move its positions any more
                self._conn.executemany(
                    "UPDATE slots SET confirmed_flush = ?, restart_pos = ? WHERE name = ?"
                    + (" AND holder_token = ?" if self._shared else ""),
                    [
                        (_to_sql(s.confirmed_flush), _to_sql(s.restart_pos), s.name)
                        + ((self._token,) if self._shared else ())
                        for s in dirty
                    ],
                )
            durable_commit(self._conn)
        except sqlite3.Error as exc:
            if self.flush_error is None:
                log.warning("slot positions cannot be written to the state database (%s); they "
                            "are kept in memory and written when they can be", exc)  # fmt: skip
            self.flush_error = str(exc)
            return 0
        if self.flush_error is not None:
            log.info("slot positions are written to the state database again")
            self.flush_error = None
        self._dirty.clear()
        return len(dirty)

    # --- invalidation -----------------------------------------------------------------------------

    def invalidate(
        self,
        name: str,
        reason: str,
        *,
        lost_after: int | None = None,
        log_detail: str | None = None,
    ) -> bool:
        """Mark the slot lost, for good (until it is dropped); returns False when it already was
        (the first reason is kept).

        ``reason`` completes PostgreSQL's sentence "This slot has been invalidated because ...":
        a lower-case clause without a final period that names the LSNs, e.g. "RedDB pruned the
        spool past it: LSN 780 to 900 are gone". ``lost_after``: the position after which changes
        are missing (default: the slot's confirmed_flush). ``log_detail`` adds what only the log
        needs (file offsets, paths).

        Persisted durably before anything else sees it; then pg_replication_slots shows
        ``wal_status = 'lost'`` and ``restart_lsn`` NULL, pgshim_slots the reason,
        START_REPLICATION and SQL decoding fail with :func:`lost_slot_error`, a stream running on
        the slot is ended with that error, the log says it once (WARNING) and
        ``pgshim_slot_invalidations`` counts it. Raises 42704 for an unknown slot.
        """
        slot = self._require(name)
        if slot.lost:
            return False
        slot.invalidation_reason = reason
        slot.lost_after = slot.confirmed_flush if lost_after is None else lost_after
        slot.invalidated_time = datetime.now(UTC)
        if not slot.temporary:
            with transaction(self._conn):
                self._conn.execute(
                    "UPDATE slots SET confirmed_flush = ?, restart_pos = ?, lost_after = ?, "
                    "invalidation_reason = ?, invalidated_time = ? WHERE name = ?",
                    (
                        _to_sql(slot.confirmed_flush),
                        _to_sql(slot.restart_pos),
                        _to_sql(slot.lost_after),
                        reason,
                        slot.invalidated_time.isoformat(),
                        name,
                    ),
                )
            durable_commit(self._conn)
            self._dirty.discard(name)
        self.invalidations += 1
        log.warning(
            'replication slot "%s" invalidated: %s (changes after %s are lost; confirmed_flush '
            "%s)%s",
            name,
            reason,
            pgtypes.format_lsn(slot.lost_after),
            pgtypes.format_lsn(slot.confirmed_flush),
            f"; {log_detail}" if log_detail else "",
        )
        self.streams.end(name, lost_slot_error(slot))
        return True

    def prune_floor(self) -> int | None:
        """The lowest confirmed position of a slot not lost yet (None: no such slot): records
        of a pruned spool ending at or before it were confirmed by every slot."""
        return min((s.confirmed_flush for s in self._slots.values() if not s.lost), default=None)

    def invalidate_pruned(self, prune: SpoolPrune) -> list[str]:
        """RedDB pruned the spool: invalidate every slot that had not confirmed a record that
        is gone (holes in the LSNs count for nothing: only records that existed are named);
        returns the names of the slots invalidated. Slots at or past the pruned records stay."""
        invalidated = []
        if self._shared:  # what other instances confirmed since this one last looked
            self._refresh_quietly()
        for slot in self.list():
            # a slot another instance holds is that instance's to judge: it reads the same
            # spool, and its position is ahead of the one stored
            if slot.lost or slot.held_elsewhere:
                continue
            gone = prune.gone_after(slot.confirmed_flush)
            if gone is None:
                continue
            count, first, last, first_offset, last_offset = gone
            now = (
                "the spool now holds no records"
                if prune.first_lsn is None
                else f"the spool now starts at LSN {prune.first_lsn}"
            )
            records = "change record" if count == 1 else "change records"
            reason = (
                f"RedDB pruned {count} {records} it had not confirmed from the spool "
                f"(RedDB LSN {first} to {last}; {now})"
            )
            detail = (
                f"the pruned records were at byte offsets {first_offset} to {last_offset} of the "
                f"spool file replaced at {prune.path}"
            )
            if self.invalidate(
                slot.name, reason, lost_after=slot.confirmed_flush, log_detail=detail
            ):
                invalidated.append(slot.name)
        return invalidated

    def invalidate_confirmed_past(
        self, position: int, reason: str, *, log_detail: str | None = None
    ) -> list[str]:
        """Invalidate every slot whose confirmed_flush is beyond ``position`` (what it confirmed
        after ``position`` cannot be trusted), with ``reason`` as for :meth:`invalidate` and
        ``lost_after=position``; returns the names of the slots it invalidated now.

        Streams that *sent* past ``position`` but whose slot did not confirm that far are not
        touched here: end them with ``self.streams.end_sent_past(position, error)``
        (:class:`~pgshim.walsender.stream.ActiveStreams`)."""
        names = [
            slot.name for slot in self.list() if not slot.lost and slot.confirmed_flush > position
        ]
        return [
            name
            for name in names
            if self.invalidate(name, reason, lost_after=position, log_detail=log_detail)
        ]


def slot_rows(
    slots: Iterable[Slot], database_oids: Mapping[str, int], major: int = 15
) -> list[tuple]:
    """pg_replication_slots rows in :func:`slot_columns` order for PostgreSQL ``major`` (Python
    values; pg_lsn as int)."""
    names = [name for name, _ in slot_columns(major)]
    rows = []
    for slot in slots:
        values = {
            "slot_name": slot.name,
            "plugin": slot.plugin,
            "slot_type": "logical",
            "datoid": database_oids.get(slot.database),
            "database": slot.database,
            "temporary": slot.temporary,
            "active": slot.active,
            "active_pid": slot.active_pid,
            "xmin": None,
            "catalog_xmin": None,
            "restart_lsn": None if slot.lost else slot.restart_pos,  # NULL once it is lost
            "confirmed_flush_lsn": slot.confirmed_flush,
            "wal_status": _wal_status(slot),
            "safe_wal_size": None,
            "two_phase": slot.two_phase,
            "two_phase_at": slot.two_phase_at if slot.two_phase else None,
            "inactive_since": None if slot.active else slot.inactive_since,
            "conflicting": False,  # lost for want of changes, as PostgreSQL's wal_removed
            "invalidation_reason": "wal_removed" if slot.lost else None,
            "failover": slot.failover,
            "synced": False,
        }
        rows.append(tuple(values[name] for name in names))
    return rows


def _wal_status(slot: Slot) -> str:
    return "lost" if slot.lost else "reserved"


def _temporary_failover_error() -> PgError:
    return PgError("22023", "cannot enable failover for a temporary replication slot")


def state_unreachable(exc: sqlite3.Error) -> PgError:
    """PostgreSQL's error for a slot operation the shared state database did not take."""
    return PgError("58030", f"could not access the state database: {exc}")


def _active_error(slot: Slot) -> PgError:
    return PgError("55006", f'replication slot "{slot.name}" is active for PID {slot.active_pid}')


# Positions are unsigned 64-bit; sqlite integers are signed 64-bit.
def _to_sql(position: int) -> int:
    return position - 2**64 if position >= 2**63 else position


def _from_sql(value: int) -> int:
    return value + 2**64 if value < 0 else value


# --- prunes ---------------------------------------------------------------------------------------

PRUNE_SCAN_CHUNK = 1 << 20
# frames at or above the new first LSN read in the old file before its scan stops: RedDB appends
# LSNs slightly out of order, so a few lower ones may still follow
PRUNE_SCAN_PAST = 1024


@dataclass(frozen=True, slots=True)
class SpoolPrune:
    """What a prune removed: the records of the replaced file below the new file's first LSN
    (only those ending after the lowest slot position of interest), sorted by LSN."""

    path: str
    first_lsn: int | None  # the spool's first LSN after the prune (None: it holds no records)
    lsns: list[int]
    offsets: list[int]  # each record's byte offset in the replaced file

    def gone_after(self, position: int) -> tuple[int, int, int, int, int] | None:
        """(count, first LSN, last LSN, first offset, last offset) of the removed records that
        end after ``position`` (a consumer there had not confirmed them); None if none."""
        start = bisect_right(self.lsns, position, key=end_pos)
        if start == len(self.lsns):
            return None
        return (
            len(self.lsns) - start,
            self.lsns[start],
            self.lsns[-1],
            self.offsets[start],
            self.offsets[-1],
        )


_WATCH_FIELDS = frozenset({"_follower", "_fd", "_identity", "floor", "on_prune"})


class PruneWatch:
    """A spool follower (wrapped) that tells which records a prune removed.

    It holds its own read-only handle on the spool file the follower reads. When RedDB renames a
    pruned copy over the spool, the next ``poll`` first notices the new file, lets the follower
    read it (which gives the new first LSN), then reads the replaced file through that handle and
    calls ``on_prune`` with the records that are gone, before the follower's new records reach
    anyone. ``floor()`` bounds what is collected (records ending at or before it are of no
    interest; None: nothing is). Everything else is the wrapped follower's.
    """

    def __init__(
        self,
        follower: Any,
        *,
        floor: Callable[[], int | None] = lambda: None,
        on_prune: Callable[[SpoolPrune], object] | None = None,
    ) -> None:
        object.__setattr__(self, "_follower", follower)
        object.__setattr__(self, "_fd", None)
        object.__setattr__(self, "_identity", None)
        object.__setattr__(self, "floor", floor)
        object.__setattr__(self, "on_prune", on_prune)

    def watch(self, slots: SlotStore) -> None:
        """Invalidate the slots a prune leaves without records they had not confirmed."""
        self.floor = slots.prune_floor
        self.on_prune = slots.invalidate_pruned

    def poll(self, *args: Any, **kwargs: Any) -> Any:
        replaced = self._take_replaced()
        frames = self._follower.poll(*args, **kwargs)
        if replaced is not None:
            try:
                self._report(replaced)
            except Exception:  # the follower's records must still flow
                log.exception("telling what the prune of %s removed failed", self._path)
            finally:
                os.close(replaced)
        self._hold_current()
        return frames

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._follower.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._follower, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WATCH_FIELDS:
            object.__setattr__(self, name, value)
        else:
            setattr(self._follower, name, value)  # e.g. a callback the source sets

    @property
    def _path(self) -> str:
        return self._follower.path

    def _take_replaced(self) -> int | None:
        """The handle on the file the follower read, if another file took its name."""
        if self._fd is None:
            return None
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None  # gone for now: the next file to appear replaces it
        if (st.st_dev, st.st_ino) == self._identity:
            if st.st_size < self._follower.status.offset:
                log.warning(
                    "spool %s was cut short in place: pgshim cannot tell which records that "
                    "removed", self._path,
                )  # fmt: skip
            return None
        fd = self._fd
        self._fd = self._identity = None
        return fd

    def _hold_current(self) -> None:
        status = self._follower.status
        if not status.exists or status.inode is None:
            return
        if self._fd is not None and self._identity is not None:
            if self._identity[1] == status.inode:
                return
            os.close(self._fd)
            self._fd = self._identity = None
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            return
        st = os.fstat(fd)
        if st.st_ino != status.inode:  # replaced again meanwhile: the follower sees it next
            os.close(fd)
            return
        self._fd, self._identity = fd, (st.st_dev, st.st_ino)

    def _report(self, fd: int) -> None:
        floor = self.floor()
        if floor is None or self.on_prune is None:
            return
        first = self._follower.status.first_lsn
        gone = sorted(_records_below(fd, first, floor).items())
        if gone:
            self.on_prune(
                SpoolPrune(self._path, first, [lsn for lsn, _ in gone], [o for _, o in gone])
            )


def _records_below(fd: int, below: int | None, floor: int) -> dict[int, int]:
    """LSN -> offset of the records in the file ``fd`` below LSN ``below`` (None: all) that end
    after position ``floor``; reads the file from its start until it is past ``below``."""
    found: dict[int, int] = {}
    offset, pending, past = 0, b"", 0
    while True:
        chunk = os.pread(fd, PRUNE_SCAN_CHUNK, offset + len(pending))
        if not chunk:
            return found
        data = pending + chunk if pending else chunk
        result = scan_frames(data, offset)
        for frame in result.frames:
            if below is not None and frame.lsn >= below:
                past += 1
                if past > PRUNE_SCAN_PAST:
                    return found
            elif end_pos(frame.lsn) > floor:
                found.setdefault(frame.lsn, frame.offset)
        offset += result.consumed
        pending = data[result.consumed :]
        if result.problem is not None:
            if result.problem.offset is not None:
                log.warning(
                    "the pruned spool file has a bad frame at byte offset %d (%s): records after "
                    "it were not looked at", result.problem.offset, result.problem.reason,
                )  # fmt: skip
            return found
