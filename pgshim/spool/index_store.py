"""The spool's seek index, kept in the state database so that a restart does not read the file.

Without it a restart indexes the spool again before the first session can seek (a 10M-record
spool: ~25 s). The index is append-only while the file is the same, so each save adds the new
checkpoints; a new file (a prune) or an index that started over rewrites it. What is loaded is
only a proposal: ``SpoolFollower.restore_index`` takes it when it still matches the file.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import orjson

from pgshim.spool.follower import IndexSnapshot, SpoolFollower
from pgshim.state import transaction, u64_from_sql, u64_to_sql

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_index_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spool_index (
    n INTEGER PRIMARY KEY,
    key INTEGER NOT NULL,
    offset INTEGER NOT NULL
);
"""


class SpoolIndexStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT snapshot FROM spool_index_meta WHERE id = 1").fetchone()
        self._meta: dict | None = None if row is None else orjson.loads(row[0])
        self._saved = conn.execute("SELECT count(*) FROM spool_index").fetchone()[0]

    def load(self) -> IndexSnapshot | None:
        if self._meta is None:
            return None
        entries = [
            (u64_from_sql(key), offset)
            for key, offset in self._conn.execute("SELECT key, offset FROM spool_index ORDER BY n")
        ]
        meta = dict(self._meta, head=bytes.fromhex(self._meta["head"]))
        return IndexSnapshot(**meta, entries=entries)

    def save(self, follower: SpoolFollower) -> None:
        """Persist the follower's index: its new checkpoints, or all of them for a new file."""
        snapshot = follower.index_snapshot(self._saved)
        if snapshot is None or snapshot.count == 0:
            return
        meta = {
            field.name: getattr(snapshot, field.name)
            for field in dataclasses.fields(IndexSnapshot)
            if field.name != "entries"
        }
        meta["head"] = snapshot.head.hex()
        same_file = self._meta is not None and all(
            self._meta[name] == meta[name] for name in ("device", "inode", "head")
        )
        with transaction(self._conn):
            if not same_file or snapshot.checkpoints < self._saved:
                self._conn.execute("DELETE FROM spool_index")
                self._saved = 0
                snapshot = follower.index_snapshot(0)
                assert snapshot is not None
            self._conn.executemany(
                "INSERT INTO spool_index (n, key, offset) VALUES (?, ?, ?)",
                [(self._saved + i, u64_to_sql(key), offset)
                 for i, (key, offset) in enumerate(snapshot.entries)],
            )  # fmt: skip
            self._conn.execute(
                "INSERT OR REPLACE INTO spool_index_meta (id, snapshot) VALUES (1, ?)",
                (orjson.dumps(meta).decode(),),
            )
        self._saved += len(snapshot.entries)
        self._meta = meta

    def clear(self) -> None:
        with transaction(self._conn):
            self._conn.execute("DELETE FROM spool_index")
            self._conn.execute("DELETE FROM spool_index_meta")
        self._saved = 0
        self._meta = None
