"""The state database: one sqlite file shared by the identity map, relations, slots and publications.

Every module keeps its own tables (``CREATE TABLE IF NOT EXISTS``) on the one connection returned by
:func:`open_state`. The connection is in autocommit mode (``isolation_level=None``); group writes with
:func:`transaction`.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``, so an ordinary commit survives a
process crash (the WAL is in the page cache) but not necessarily a power loss. :func:`durable_commit`
is the explicit barrier used for slot creation/drop and confirm batches: it commits and then runs a
WAL checkpoint, which under ``synchronous=NORMAL`` fsyncs the WAL (and then the database file) before
returning. ``PRAGMA synchronous=FULL`` around the commit is not an option because sqlite refuses to
change the safety level inside a transaction.

A full disk: sqlite cannot create the shared-memory index of a WAL database (``-shm``, 32 KiB) on a
full disk, and then cannot even read it; :func:`connect` opens such a database with the index in the
process's memory instead (exclusive locking: no other process can open it meanwhile). Writes fail
until space returns; :func:`write_error` is the PostgreSQL error for a failed write. A file that is
not a database, or a damaged one, raises :class:`StateError` at start: it holds the slots, whose
loss would lose changes, so the server does not start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgshim.errors import PgError

log = logging.getLogger(__name__)

STATE_FILE_NAME = "state.db"

_META_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    system_identifier INTEGER NOT NULL,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class StateMeta:
    system_identifier: int  # IDENTIFY_SYSTEM's systemid: random, positive, fixed at creation
    created_at: datetime


class StateError(SystemExit):
    """The state directory cannot be used: the server does not start, and says why in one line
    (a SystemExit: no traceback, exit status 1)."""


def open_state(state_dir: str | os.PathLike[str]) -> sqlite3.Connection:
    """Create ``state_dir`` if needed and open ``state_dir/state.db`` (creating the meta row once)."""
    directory = Path(state_dir)
    path = directory / STATE_FILE_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        ensure_meta(conn)
    except (sqlite3.Error, OSError) as exc:
        raise state_error(path, exc) from None
    return conn


def ensure_meta(conn: Any) -> None:
    """The meta row, created once (by whichever instance comes first, on a shared database)."""
    conn.execute(_META_SCHEMA)
    conn.execute(
        "INSERT INTO meta (id, system_identifier, created_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (_new_system_identifier(), datetime.now(UTC).isoformat()),
    )


def is_shared(conn: Any) -> bool:
    """Whether ``conn`` is the state shared by several instances (``shared_state``)."""
    return getattr(conn, "backend", None) == "postgresql"


def columns_of(conn: Any, table: str) -> set[str]:
    """The columns ``table`` has, on either backend."""
    if is_shared(conn):
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {name for (name,) in rows}
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def state_error(path: Path, exc: Exception) -> StateError:
    """Why the server does not start on the state database ``path``, in one line."""
    if isinstance(exc, sqlite3.Error) and is_corrupt(exc):
        return StateError(
            f'pgshim: the state database "{path}" is damaged ({exc}): it holds the replication '
            "slots, so the server does not start; restore it from a backup, or move it aside to "
            "start without slots (every consumer then has to be set up again)"
        )
    return StateError(f'pgshim: cannot use the state database "{path}": {exc}')


class StateConnection(sqlite3.Connection):
    """A connection that is never left inside a transaction by a write that failed for lack of
    space or an I/O error (sqlite may or may not have rolled it back): the transaction is rolled
    back and the caller gets the error, so that the next write starts clean once space returns."""

    def execute(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().execute(*args)
        except sqlite3.OperationalError as exc:
            self._failed(exc)
            raise

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        try:
            return super().executemany(*args)
        except sqlite3.OperationalError as exc:
            self._failed(exc)
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.OperationalError as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: sqlite3.OperationalError) -> None:
        if self.in_transaction and _error_name(exc).startswith(_WRITE_FAILURES):
            with contextlib.suppress(sqlite3.Error):
                super().execute("ROLLBACK")


_WRITE_FAILURES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CORRUPT")


def connect(path: str | os.PathLike[str], *, timeout: float = 5.0) -> sqlite3.Connection:
    """A sqlite connection in WAL mode (autocommit); on a disk too full for its shared-memory
    index, with the index in memory instead (see the module's docstring)."""
    conn = _connect(path, timeout)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL index
        return conn
    except sqlite3.Error as exc:
        conn.close()
        if not _error_name(exc).startswith("SQLITE_IOERR_SHM"):
            raise
        log.warning("%s: no room for its shared-memory index (%s); it stays open in this "
                    "process only", path, exc)  # fmt: skip
    conn = _connect(path, timeout)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(path: str | os.PathLike[str], timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=timeout, isolation_level=None,
                           check_same_thread=False, factory=StateConnection)  # fmt: skip


def _error_name(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", None) or ""


def is_corrupt(exc: sqlite3.Error) -> bool:
    """A damaged file, or one that is not a database at all (not a full disk or a lock)."""
    name = _error_name(exc)
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc)
    return "malformed" in text or "not a database" in text


def is_disk_full(exc: sqlite3.Error) -> bool:
    return _error_name(exc).startswith("SQLITE_FULL") or "disk is full" in str(exc)


def write_error(exc: sqlite3.Error, name: str = STATE_FILE_NAME) -> PgError:
    """PostgreSQL's error for a write to the state database that failed: 53100 disk_full for a
    full disk, 58030 io_error otherwise (the file is named as in the state directory)."""
    if is_disk_full(exc):
        return PgError("53100", f'could not write to file "{name}": No space left on device')
    return PgError("58030", f'could not write to file "{name}": {exc}')


def read_meta(conn: sqlite3.Connection) -> StateMeta:
    system_identifier, created_at = conn.execute(
        "SELECT system_identifier, created_at FROM meta WHERE id = 1"
    ).fetchone()
    return StateMeta(system_identifier, datetime.fromisoformat(created_at))


def system_identifier(conn: sqlite3.Connection) -> int:
    return read_meta(conn).system_identifier


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back if the block raises. Not re-entrant."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # sqlite may have rolled back already (a full disk, an I/O error): nothing is left open
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_U64_BIAS = 1 << 63


def u64_to_sql(value: int) -> int:
    """A u64 as a signed sqlite integer, order kept (for range queries over LSNs and keys)."""
    return value - _U64_BIAS


def u64_from_sql(value: int) -> int:
    return value + _U64_BIAS


def add_missing_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> list[str]:
    """Schema migration: add the ``columns`` (name -> column definition) that ``table``, as an
    older pgshim created it, lacks; returns the names added (in one transaction)."""
    have = columns_of(conn, table)
    missing = [name for name in columns if name not in have]
    if missing:
        with transaction(conn):
            for name in missing:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {columns[name]}")
    return missing


def durable_commit(conn: sqlite3.Connection) -> None:
    """Commit the open transaction (if any) and fsync, so everything committed so far survives power loss."""
    if conn.in_transaction:
        conn.execute("COMMIT")
    if not is_shared(conn):  # a shared database's commit is durable when it returns
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _new_system_identifier() -> int:
    # PostgreSQL prints the identifier as an unsigned 64-bit decimal; sqlite stores signed 64-bit,
    # so stay within 1 .. 2**63 - 1.
    return secrets.randbelow(2**63 - 1) + 1
