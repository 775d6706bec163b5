"""Logical replication slots: persistent ones in the state database, temporary ones in memory.

Positions are PostgreSQL positions (see ``logical/positions.py``). Confirmations are applied in
memory at once and written in batches by :meth:`SlotStore.flush_dirty` with a durable commit, so a
crash loses at most the confirmations since the last flush: the client then gets those transactions
again, never fewer.

A temporary slot belongs to the session that created it: it counts as active for that session's pid
from creation on, and it is dropped when that session releases it or ends (and never survives a
restart).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pgshim.errors import PgError
from pgshim.state import durable_commit, transaction

DEFAULT_MAX_SLOTS = 64
DEFAULT_DATOID = 5  # the oid PostgreSQL gives its "postgres" database
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

    @property
    def active(self) -> bool:
        return self.active_pid is not None


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


class SlotStore:
    """All slots of this server; persistent slots live in the ``slots`` table of the state database."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        database: str,
        datoid: int = DEFAULT_DATOID,
        max_slots: int = DEFAULT_MAX_SLOTS,
    ) -> None:
        self._conn = conn
        self.database = database
        self.datoid = datoid
        self.max_slots = max_slots
        self._slots: dict[str, Slot] = {}
        self._dirty: set[str] = set()
        self._released = asyncio.Event()
        conn.execute(_SCHEMA)
        for row in conn.execute(
            "SELECT name, plugin, database, two_phase, confirmed_flush, restart_pos, created_at "
            "FROM slots ORDER BY name"
        ):
            name, plugin, db, two_phase, confirmed, restart, created = row
            self._slots[name] = Slot(
                name=name,
                plugin=plugin,
                database=db,
                temporary=False,
                two_phase=bool(two_phase),
                confirmed_flush=_from_sql(confirmed),
                restart_pos=_from_sql(restart),
                created_at=datetime.fromisoformat(created),
            )

    # --- lookup -----------------------------------------------------------------------------------

    def get(self, name: str) -> Slot | None:
        return self._slots.get(name)

    def list(self) -> list[Slot]:
        return [self._slots[name] for name in sorted(self._slots)]

    def slot_rows(self) -> list[tuple]:
        """pg_replication_slots rows for every slot (see :func:`slot_rows`)."""
        return slot_rows(self.list(), {self.database: self.datoid})

    def _require(self, name: str) -> Slot:
        slot = self._slots.get(name)
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
    ) -> Slot:
        """Create a slot; a temporary one needs the creating session's ``pid``, which then owns it."""
        if temporary and pid is None:
            raise ValueError("a temporary slot needs the pid of the session that owns it")
        validate_slot_name(name)
        if name in self._slots:
            raise PgError("42710", f'replication slot "{name}" already exists')
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
        )
        if not temporary:
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO slots (name, plugin, database, two_phase, confirmed_flush, "
                    "restart_pos, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        plugin,
                        slot.database,
                        int(two_phase),
                        _to_sql(confirmed_flush),
                        _to_sql(restart_pos),
                        slot.created_at.isoformat(),
                    ),
                )
            durable_commit(self._conn)
        self._slots[name] = slot
        return slot

    def drop(self, name: str, *, pid: int) -> None:
        slot = self._require(name)
        if slot.active_pid is not None and slot.active_pid != pid:
            raise _active_error(slot)
        self._forget(slot)

    async def drop_wait(self, name: str, *, pid: int) -> None:
        """DROP_REPLICATION_SLOT ... WAIT: wait until no other session holds the slot, then drop it."""
        while True:
            slot = self._require(name)
            if slot.active_pid is None or slot.active_pid == pid:
                self._forget(slot)
                return
            released = self._released
            await released.wait()

    def _forget(self, slot: Slot) -> None:
        del self._slots[slot.name]
        self._dirty.discard(slot.name)
        if not slot.temporary:
            with transaction(self._conn):
                self._conn.execute("DELETE FROM slots WHERE name = ?", (slot.name,))
            durable_commit(self._conn)
        self._notify_released()

    def acquire(self, name: str, pid: int, options: Iterable[tuple[str, str | None]] = ()) -> Slot:
        """Make ``pid`` the one consumer of the slot (START_REPLICATION)."""
        slot = self._require(name)
        if slot.active_pid is not None and slot.active_pid != pid:
            raise _active_error(slot)
        if slot.database != self.database:
            raise PgError("55000", f'replication slot "{name}" was not created in this database')
        slot.active_pid = pid
        slot.options = list(options)
        return slot

    def release(self, name: str, pid: int) -> None:
        """End ``pid``'s use of the slot: persist its confirmations; a temporary slot is dropped."""
        slot = self._slots.get(name)
        if slot is None or slot.active_pid != pid:
            return
        if slot.temporary:
            self._forget(slot)
            return
        slot.active_pid = None
        slot.options = []
        self.flush_dirty()
        self._notify_released()

    def release_all(self, pid: int) -> None:
        """Session end: release every slot ``pid`` holds (dropping its temporary slots)."""
        for slot in [s for s in self._slots.values() if s.active_pid == pid]:
            self.release(slot.name, pid)

    def _notify_released(self) -> None:
        released, self._released = self._released, asyncio.Event()
        released.set()

    # --- confirmations ----------------------------------------------------------------------------

    def confirm(self, name: str, flush: int, *, restart_pos: int | None = None) -> bool:
        """Apply a client's flush position; returns whether confirmed_flush moved.

        0 and positions below confirmed_flush are ignored (PostgreSQL 15 ignores them too, as the
        transcripts show). restart_pos follows the confirmation, or ``restart_pos`` when the caller
        knows an older start is still needed (an open transaction), never beyond ``flush``.
        """
        slot = self._require(name)
        if flush <= 0 or flush < slot.confirmed_flush:
            return False
        moved = flush != slot.confirmed_flush
        slot.confirmed_flush = flush
        wanted = flush if restart_pos is None else min(restart_pos, flush)
        slot.restart_pos = max(slot.restart_pos, wanted)
        if moved and not slot.temporary:
            self._dirty.add(name)
        return moved

    def flush_dirty(self) -> int:
        """Write pending confirmations with one durable commit; returns how many slots were written."""
        if not self._dirty:
            return 0
        dirty = [self._slots[name] for name in sorted(self._dirty) if name in self._slots]
        with transaction(self._conn):
            self._conn.executemany(
                "UPDATE slots SET confirmed_flush = ?, restart_pos = ? WHERE name = ?",
                [(_to_sql(s.confirmed_flush), _to_sql(s.restart_pos), s.name) for s in dirty],
            )
        durable_commit(self._conn)
        self._dirty.clear()
        return len(dirty)


def slot_rows(slots: Iterable[Slot], database_oids: Mapping[str, int]) -> list[tuple]:
    """pg_replication_slots rows in :data:`SLOT_COLUMNS` order (Python values; pg_lsn as int)."""
    return [
        (
            slot.name,
            slot.plugin,
            "logical",
            database_oids.get(slot.database),
            slot.database,
            slot.temporary,
            slot.active,
            slot.active_pid,
            None,
            None,
            slot.restart_pos,
            slot.confirmed_flush,
            "reserved",
            None,
            slot.two_phase,
        )
        for slot in slots
    ]


def _active_error(slot: Slot) -> PgError:
    return PgError("55006", f'replication slot "{slot.name}" is active for PID {slot.active_pid}')


# Positions are unsigned 64-bit; sqlite integers are signed 64-bit.
def _to_sql(position: int) -> int:
    return position - 2**64 if position >= 2**63 else position


def _from_sql(value: int) -> int:
    return value + 2**64 if value < 0 else value
