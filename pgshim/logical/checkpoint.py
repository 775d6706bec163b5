"""The ingestion checkpoint: how far the change source has ingested the spool, kept in the state DB.

Everything the source learns from a record (identity mappings, relation columns) is persisted
before the checkpoint moves past it, so a restart can seek to the checkpoint instead of decoding
the whole spool again. Re-ingesting records after a stale checkpoint is harmless: learning is
idempotent.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    lsn INTEGER NOT NULL,
    inode INTEGER,
    file_offset INTEGER NOT NULL
)
"""
_U64_SIGN = 1 << 63
_U64_WRAP = 1 << 64


@dataclass(frozen=True, slots=True)
class Checkpoint:
    lsn: int  # every record with a lower or equal RedDB LSN has been ingested
    inode: int | None  # the spool file it was read from (diagnostics: a prune replaces it)
    file_offset: int  # the follower's read offset in that file


class IngestCheckpoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(_SCHEMA)
        self.saved_lsn: int | None = None  # as loaded or last saved

    def abort(self) -> None:
        """After a failed save (or a failed write before it, on the same connection): roll back
        what the failure left open, so that the next save starts clean."""
        if self._conn.in_transaction:
            self._conn.rollback()

    def load(self) -> Checkpoint | None:
        row = self._conn.execute(
            "SELECT lsn, inode, file_offset FROM ingest_checkpoint WHERE id = 1"
        ).fetchone()
        if row is None:
            return None
        lsn = row[0] + _U64_WRAP if row[0] < 0 else row[0]
        self.saved_lsn = lsn
        return Checkpoint(lsn, row[1], row[2])

    def save(self, checkpoint: Checkpoint) -> None:
        lsn = checkpoint.lsn - _U64_WRAP if checkpoint.lsn >= _U64_SIGN else checkpoint.lsn
        self._conn.execute(
            "INSERT INTO ingest_checkpoint (id, lsn, inode, file_offset) VALUES (1, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET lsn = excluded.lsn, inode = excluded.inode,"
            " file_offset = excluded.file_offset",
            (lsn, checkpoint.inode, checkpoint.file_offset),
        )
        if self._conn.in_transaction:
            self._conn.commit()
        self.saved_lsn = checkpoint.lsn

    def clear(self) -> None:
        self._conn.execute("DELETE FROM ingest_checkpoint")
