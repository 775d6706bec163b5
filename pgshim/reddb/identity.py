"""The (collection, physical id) → logical id map that lets deletes find the row they remove.

RedDB gives every UPDATE a new physical id and keeps the logical id; a delete carries only the
physical id of the version it deletes. The map is learned from inserts and updates and kept in
the state database (table ``identity_map``) so it survives restarts and spool prunes.
"""

from __future__ import annotations

import sqlite3

_U64_SIGN = 1 << 63
_U64_WRAP = 1 << 64


def _to_sql(value: int) -> int:
    """SQLite integers are signed 64-bit; RedDB ids are u64."""
    return value - _U64_WRAP if value >= _U64_SIGN else value


def _from_sql(value: int) -> int:
    return value + _U64_WRAP if value < 0 else value


class IdentityMap:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: dict[tuple[str, int], int] = {}
        # per collection, at least the highest physical id of a mapping held (see ``learn``)
        self._highest: dict[str, int] = {}
        conn.execute(
            "CREATE TABLE IF NOT EXISTS identity_map ("
            " collection TEXT NOT NULL,"
            " physical_id INTEGER NOT NULL,"
            " logical_id INTEGER NOT NULL,"
            " PRIMARY KEY (collection, physical_id)"
            ") WITHOUT ROWID"
        )
        conn.commit()

    def learn(self, collection: str, physical_id: int, logical_id: int) -> None:
        """Remember a mapping; it is written on the next flush(). An insert's physical id is
        its logical id, and RedDB hands out ids in increasing order: a mapping of an id to
        itself above every physical id the map holds for the collection is what ``resolve``
        says already, and is not written (nearly every insert)."""
        highest = self._highest.get(collection)
        if highest is None:
            highest = self._highest[collection] = self._highest_stored(collection)
        if physical_id == logical_id and physical_id > highest:
            return
        self._pending[(collection, physical_id)] = logical_id
        if physical_id > highest:
            self._highest[collection] = physical_id

    def _highest_stored(self, collection: str) -> int:
        """The highest physical id of the collection's stored mappings (-1 when none); ids
        of 2**63 and above are stored negative."""
        query = "SELECT max(physical_id) FROM identity_map WHERE collection = ? AND physical_id "
        (wrapped,) = self._conn.execute(query + "< 0", (collection,)).fetchone()
        if wrapped is not None:
            return _from_sql(wrapped)
        (plain,) = self._conn.execute(query + ">= 0", (collection,)).fetchone()
        return -1 if plain is None else plain

    def resolve(self, collection: str, physical_id: int) -> int:
        """The logical id of a physical id, or the physical id itself when unknown."""
        pending = self._pending.get((collection, physical_id))
        if pending is not None:
            return pending
        row = self._conn.execute(
            "SELECT logical_id FROM identity_map WHERE collection = ? AND physical_id = ?",
            (collection, _to_sql(physical_id)),
        ).fetchone()
        return physical_id if row is None else _from_sql(row[0])

    def forget(self, collection: str, physical_id: int) -> None:
        """Drop one mapping (e.g. once a delete has been confirmed by every consumer)."""
        self._pending.pop((collection, physical_id), None)
        self._conn.execute(
            "DELETE FROM identity_map WHERE collection = ? AND physical_id = ?",
            (collection, _to_sql(physical_id)),
        )

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write the learned mappings in one batch and commit."""
        if self._pending:
            conn = self._conn
            began = not conn.in_transaction
            if began:  # one transaction for the batch, not one per row in autocommit mode
                conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO identity_map (collection, physical_id, logical_id) VALUES (?, ?, ?)"
                " ON CONFLICT (collection, physical_id) DO UPDATE"
                " SET logical_id = excluded.logical_id",
                [
                    (collection, _to_sql(physical), _to_sql(logical))
                    for (collection, physical), logical in self._pending.items()
                ],
            )
            if began:
                conn.execute("COMMIT")
            self._pending.clear()
        self._conn.commit()
