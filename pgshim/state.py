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
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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


def open_state(state_dir: str | os.PathLike[str]) -> sqlite3.Connection:
    """Create ``state_dir`` if needed and open ``state_dir/state.db`` (creating the meta row once)."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        directory / STATE_FILE_NAME, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(_META_SCHEMA)
    with transaction(conn):
        if conn.execute("SELECT 1 FROM meta WHERE id = 1").fetchone() is None:
            conn.execute(
                "INSERT INTO meta (id, system_identifier, created_at) VALUES (1, ?, ?)",
                (_new_system_identifier(), datetime.now(UTC).isoformat()),
            )
    return conn


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
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_U64_BIAS = 1 << 63


def u64_to_sql(value: int) -> int:
    """A u64 as a signed sqlite integer, order kept (for range queries over LSNs and keys)."""
    return value - _U64_BIAS


def u64_from_sql(value: int) -> int:
    return value + _U64_BIAS


def add_missing_columns(conn: sqlite3.Connection, table: str, columns: dict[str, str]) -> list[str]:
    """Schema migration: add the ``columns`` (name -> column definition) that ``table``, as an
    older pgshim created it, lacks; returns the names added (in one transaction)."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
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
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _new_system_identifier() -> int:
    # PostgreSQL prints the identifier as an unsigned 64-bit decimal; sqlite stores signed 64-bit,
    # so stay within 1 .. 2**63 - 1.
    return secrets.randbelow(2**63 - 1) + 1
