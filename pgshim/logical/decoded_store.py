"""Released transactions in chunks, and their output rendered ahead, kept on disk for catch-up.

The store keeps, in its own sqlite file next to the state database, the bounds of chunks of
consecutive released transactions and, for the keys in ``renderers`` (the output formats
consumers use, see ``walsender.ahead``), each chunk's output rendered as its transactions are
released (table ``ahead``): a consumer catching up in one of those formats copies that output
instead of decoding and rendering the spool again. A format that came later is rendered by its
first reader of a whole chunk (from what it decoded of the spool) and kept for the next.

It keeps no decoded transactions: writing them cost ingestion as much as decoding them again
costs the rare reader in a format not rendered ahead, which decodes that range from the spool.

A chunk covers every RedDB LSN in ``(after_lsn, last_lsn]``: ``after_lsn`` is the last LSN
released before its first transaction, so holes between chunks are covered too. Output names
its relations by reference, ``(name, oid, version)``: output whose relation has since changed
(a new column, another declaration) is not used, and the reader decodes that range from the
spool, as it would without the store. The file is a cache: anything unreadable is dropped and
rebuilt, it never decides what a session receives.

Failures: the store never fails its caller. A write that fails (a full disk, an I/O error, a
locked or damaged file) drops the chunk being written (the spool still has its records), is
logged once and shown (``error``), and the store is tried again after a pause that doubles up to
``RETRY_MAX`` seconds; meanwhile nothing is buffered. Chunks that had to be dropped but could not
be (a late record, a restart) are remembered, and nothing is read from the store until they are:
a range without a chunk is decoded from the spool, as always. A damaged file is started again.
"""

from __future__ import annotations

import io
import logging
import pickle
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zstandard

from pgshim.logical.relations import RelationRegistry
from pgshim.logical.transactions import Relation, Transaction
from pgshim.state import connect, is_corrupt, transaction, u64_from_sql, u64_to_sql


class AheadRenderer(Protocol):
    """Renders a chunk's output ahead for one format: ``add`` each transaction as it is stored,
    ``finish`` gives the chunk's output (opaque bytes) and starts the next, ``reset`` drops;
    ``render`` renders a stored chunk's transactions at once; ``parse`` turns the bytes into what
    readers are handed."""

    def add(self, tx: Transaction) -> None: ...

    def finish(self) -> bytes: ...

    def reset(self) -> None: ...

    def render(self, transactions: list[Transaction]) -> bytes: ...

    def parse(self, output: bytes) -> Any: ...


log = logging.getLogger(__name__)

STORE_FILE_NAME = "decoded.db"
CHUNK_TRANSACTIONS = 256
FORMAT_VERSION = 7  # of the tables and of the pickled, zstd-compressed output
RETRY_FIRST = 1.0  # seconds before a failed store is tried again; doubled after each failure
RETRY_MAX = 30.0
BUSY_TIMEOUT = 0.05  # seconds a write waits for a lock on the file: it is a cache
MAX_PENDING_DROPS = 64  # chunk drops remembered one by one, beyond that: drop every chunk

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    after_lsn INTEGER NOT NULL,
    last_lsn INTEGER NOT NULL,
    PRIMARY KEY (after_lsn, last_lsn)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_last ON chunks (last_lsn);
CREATE TABLE IF NOT EXISTS ahead (
    key TEXT NOT NULL,
    after_lsn INTEGER NOT NULL,
    last_lsn INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, after_lsn, last_lsn)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ahead_by_last ON ahead (last_lsn);
"""


class PlainUnpickler(pickle.Unpickler):
    """Bytes, numbers, strings, lists and tuples only: output rendered ahead names no class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not expected in output rendered ahead")


class DecodedStore:
    def __init__(
        self, path: str | Path, relations: RelationRegistry, *, clock: Any = time.monotonic
    ) -> None:
        self.path = Path(path)
        self._relations = relations
        self._clock = clock
        self._compress = zstandard.ZstdCompressor(level=1).compress
        self._decompress = zstandard.ZstdDecompressor().decompress
        self.renderers: dict[str, AheadRenderer] = {}
        self._reset_buffer()
        self.chunks_stale = 0
        self.ahead_loaded = 0
        self.ahead_rendered = 0  # chunks rendered for a reader (not at ingestion)
        self.generation = 0  # moves whenever chunks are dropped: what was loaded may be stale
        self.error: str | None = None  # why the store is out of use, until it works again
        self.failures = 0  # failed operations since start
        self._retry_at = 0.0
        self._backoff = RETRY_FIRST
        self._damaged = False  # the file is started again on the next try
        self._trying = False  # failed, and due again: the next write tells whether it works
        # deletes that failed, applied before the store is read or written again
        self._drops: list[tuple[str, tuple[int, ...]]] = []
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._open()
        except sqlite3.Error as exc:
            self._fail(exc, "opening it")

    @property
    def state(self) -> str:
        """``ok``, or ``failing`` (writes wait for the next try; reads still work when nothing
        had to be dropped), or ``closed``."""
        if self.error is None:
            return "ok" if self._conn is not None else "closed"
        return "failing"

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.Error as exc:
            if not is_corrupt(exc):
                raise
            log.warning("decoded store %s is unreadable (%s); starting it again", self.path, exc)
            self._remove_files()
            return self._connect()

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, timeout=BUSY_TIMEOUT)
        try:
            # a cache: a crash may lose the newest chunks, the spool still has them
            conn.execute("PRAGMA synchronous=OFF")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version != FORMAT_VERSION:  # another layout: start again
                conn.execute("DROP TABLE IF EXISTS chunks")
                conn.execute("DROP TABLE IF EXISTS ahead")
                conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- failures --------------------------------------------------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> None:
        """A failed operation: the store is out of use until the next try (see the module)."""
        self.failures += 1
        if isinstance(exc, sqlite3.DatabaseError) and is_corrupt(exc):
            self._damaged = True
        if self.error is None:
            log.warning("decoded store %s failed %s: %s; catch-up reads decode the spool until "
                        "it works again", self.path, doing, exc)  # fmt: skip
            self._backoff = RETRY_FIRST
        else:
            log.debug("decoded store %s failed again %s: %s", self.path, doing, exc)
            self._backoff = min(self._backoff * 2, RETRY_MAX)
        self.error = f"{doing}: {exc}"
        self._trying = False
        self._retry_at = self._clock() + self._backoff
        self._drop_chunk()

    def _drop_chunk(self) -> None:
        """Forget the chunk being buffered."""
        self._reset_buffer()

    def _writable(self) -> bool:
        """Whether the store takes writes now: in use, or due for its next try."""
        if self.error is None or self._trying:
            return self._conn is not None
        if self._clock() < self._retry_at:
            return False
        try:
            if self._conn is not None:  # a new connection: sqlite may keep the old one's error
                self._conn.close()
                self._conn = None
            if self._damaged:
                log.warning("decoded store %s is damaged; starting it again", self.path)
                self._remove_files()
                self._drops.clear()
                self._damaged = False
                self.generation += 1
            if self._conn is None:
                self._conn = self._open()
            self._apply_drops()
        except sqlite3.Error as exc:
            self._fail(exc, "trying it again")
            return False
        self._trying = True
        return True

    def _worked(self) -> None:
        """A chunk was written: a store that had failed works again (deletes prove nothing: on
        a full disk they may go through where new chunks do not)."""
        if self.error is not None:
            log.info("decoded store %s works again", self.path)
            self.error = None
            self._trying = False
            self._backoff = RETRY_FIRST

    def _readable(self) -> sqlite3.Connection | None:
        """The connection, when what the store holds can be read: none of its chunks is one
        that should have been dropped."""
        if self._drops or self._damaged:
            return None
        return self._conn

    def _apply_drops(self) -> None:
        assert self._conn is not None
        while self._drops:
            where, params = self._drops[0]
            for table in ("chunks", "ahead"):
                self._conn.execute(f"DELETE FROM {table} {where}", params)
            del self._drops[0]

    def _read_failed(self, exc: sqlite3.Error) -> None:
        self._fail(exc, "reading it")

    # -- writing (ingestion) ---------------------------------------------------------------------

    def add(self, tx: Transaction, released_before: int) -> None:
        """Keep ``tx``, released right after RedDB LSN ``released_before``."""
        if tx.first_lsn <= released_before:
            # released after its hole was closed: the chunks around it lack it
            self.discard_covering(tx.first_lsn)
            self._reset_buffer()
            return
        if not self._writable():
            return  # dropped: the spool has it
        tx_versions: dict[str, int] = {}
        for change in tx.changes:
            relation = change.relation
            if tx_versions.setdefault(relation.name, relation.version) != relation.version:
                self.flush()  # no chunk holds two versions of a relation: the spool has this one
                return
        known = self._versions
        if any(known.get(name, version) != version for name, version in tx_versions.items()):
            self.flush()  # a chunk holds one version of each relation
        if self._after is None:
            self._after = released_before
        self._versions.update(tx_versions)
        for key, renderer in self.renderers.items():
            if key not in self._failed:
                try:
                    renderer.add(tx)
                except Exception as exc:  # sessions in that format render this chunk themselves
                    self._failed.add(key)
                    log.info("LSN %d not rendered ahead for %s: %s", tx.last_lsn, key, exc)
        self._actions.update((change.relation.name, change.action) for change in tx.changes)
        self._count += 1
        self._last = tx.last_lsn

    def flush_full(self) -> None:
        """Write the buffered transactions once they make a chunk (the owner chooses when)."""
        if self._count >= CHUNK_TRANSACTIONS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered transactions' chunk and its output rendered ahead."""
        after = self._after
        if not self._count or after is None:
            return
        if not self._writable():
            self._drop_chunk()
            return
        assert self._conn is not None
        bounds = (u64_to_sql(after), u64_to_sql(self._last))
        try:
            with transaction(self._conn):  # the chunk with its output, or neither
                self._conn.execute(
                    "INSERT OR REPLACE INTO chunks (after_lsn, last_lsn) VALUES (?, ?)", bounds
                )
                if self.renderers:
                    self._render_ahead(bounds)
        except sqlite3.Error as exc:  # the chunk is dropped: the spool has its records
            self._fail(exc, "writing a chunk")
            return
        self._worked()
        self._reset_buffer()

    def _render_ahead(self, bounds: tuple[int, int]) -> None:
        refs = []
        for name, version in self._versions.items():
            relation = self._relations.find(name)
            refs.append((name, relation.oid if relation is not None else 0, version))
        actions = sorted(self._actions)
        for key, renderer in self.renderers.items():
            if key in self._failed:
                continue
            self._put_ahead(key, bounds, refs, actions, renderer.finish())

    def _put_ahead(self, key: str, bounds: tuple[int, int], refs: list, actions: list,
                   output: bytes) -> None:  # fmt: skip
        data = pickle.dumps((refs, actions, output), protocol=pickle.HIGHEST_PROTOCOL)
        self._conn.execute(
            "INSERT OR REPLACE INTO ahead (key, after_lsn, last_lsn, data) VALUES (?, ?, ?, ?)",
            (key, *bounds, self._compress(data)),
        )

    def render_ahead(
        self, key: str, after_lsn: int, last_lsn: int, transactions: list[Transaction]
    ) -> AheadOutput | None:
        """Render a stored chunk (all its ``transactions``, decoded) for a format rendered ahead
        that lacks it, and keep it: the next reader in that format copies it. None for a format
        not rendered ahead, or output that cannot be."""
        renderer = self.renderers.get(key)
        if renderer is None:
            return None
        try:
            output = renderer.render(transactions)
        except Exception as exc:  # the session renders the transactions itself, and says why
            log.info("chunk (%d, %d] not rendered for %s: %s", after_lsn, last_lsn, key, exc)
            return None
        relations = {c.relation.name: c.relation for tx in transactions for c in tx.changes}
        pairs = sorted({(c.relation.name, c.action) for tx in transactions for c in tx.changes})
        refs = [(r.name, r.oid, r.version) for r in relations.values()]
        if self._writable():
            try:
                self._put_ahead(
                    key, (u64_to_sql(after_lsn), u64_to_sql(last_lsn)), refs, pairs, output
                )
            except sqlite3.Error as exc:  # kept for this reader only
                self._fail(exc, "writing output rendered ahead")
        self.ahead_rendered += 1
        parsed = renderer.parse(output)
        return AheadOutput(relations, [(relations[n], a) for n, a in pairs], parsed, len(output))

    def _reset_buffer(self) -> None:
        self._count = 0  # transactions buffered
        self._after: int | None = None  # the LSN released before the buffer's first transaction
        self._last = 0  # the last LSN of the buffer's last transaction
        self._versions: dict[str, int] = {}  # relation versions of the buffered changes
        self._actions: set[tuple[str, str]] = set()  # (relation, action) of the buffered changes
        self._failed: set[str] = set()  # formats the buffered chunk cannot be rendered in
        for renderer in self.renderers.values():
            renderer.reset()

    def _delete(self, where: str = "", *params: int) -> None:
        """Drop chunks; one that cannot be dropped now is dropped before the store is used again
        (until then nothing is read from it)."""
        if self._writable():
            assert self._conn is not None
            try:
                for table in ("chunks", "ahead"):
                    self._conn.execute(f"DELETE FROM {table} {where}", params)
                return
            except sqlite3.Error as exc:
                self._fail(exc, "dropping chunks")
        self._remember_drop(where, params)

    def _remember_drop(self, where: str, params: tuple[int, ...]) -> None:
        if ("", ()) in self._drops:
            return
        if len(self._drops) >= MAX_PENDING_DROPS:
            self._drops = [("", ())]  # every chunk: memory stays bounded
        else:
            self._drops.append((where, params))

    def discard_covering(self, lsn: int) -> None:
        self.generation += 1
        self._delete("WHERE after_lsn < ? AND last_lsn >= ?", u64_to_sql(lsn), u64_to_sql(lsn))

    def discard_after(self, lsn: int) -> None:
        """Forget chunks reaching past ``lsn`` (ingestion goes on from there again)."""
        self._reset_buffer()
        self.generation += 1
        self._delete("WHERE last_lsn > ?", u64_to_sql(lsn))

    def trim(self, below_lsn: int) -> None:
        """Forget chunks that end before ``below_lsn`` (the spool no longer holds them); the
        next trim does it when the store cannot now."""
        if not self._writable():
            return
        assert self._conn is not None
        try:
            for table in ("chunks", "ahead"):
                self._conn.execute(f"DELETE FROM {table} WHERE last_lsn < ?",
                                   (u64_to_sql(below_lsn),))  # fmt: skip
        except sqlite3.Error as exc:
            self._fail(exc, "trimming it")

    def clear(self) -> None:
        self._reset_buffer()
        self.generation += 1
        self._delete()

    def keep_ahead(self, renderers: dict[str, AheadRenderer]) -> None:
        """Render chunks for these keys from now on (a new key from the next chunk: the one being
        buffered lacks its first transactions); forget the output of any other key."""
        for key in set(self.renderers) - set(renderers):
            del self.renderers[key]
        for key, renderer in renderers.items():
            if key not in self.renderers:
                self.renderers[key] = renderer
                if self._count:
                    self._failed.add(key)
        marks = ", ".join("?" * len(renderers))
        if self._writable():
            assert self._conn is not None
            try:
                self._conn.execute(f"DELETE FROM ahead WHERE key NOT IN ({marks})",
                                   tuple(renderers))  # fmt: skip
                return
            except sqlite3.Error as exc:  # they are never read: the next call drops them
                self._fail(exc, "dropping output rendered ahead")

    # -- reading (catch-up) ----------------------------------------------------------------------

    def find(self, lsn: int) -> tuple[int, int] | None:
        """``(after_lsn, last_lsn)`` of a chunk holding every transaction just after ``lsn``."""
        conn = self._readable()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT after_lsn, last_lsn FROM chunks WHERE last_lsn > ? AND after_lsn <= ?"
                " ORDER BY last_lsn LIMIT 1",
                (u64_to_sql(lsn), u64_to_sql(lsn)),
            ).fetchone()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return None
        return None if row is None else (u64_from_sql(row[0]), u64_from_sql(row[1]))

    def next_start(self, lsn: int) -> int | None:
        """The lowest ``after_lsn`` above ``lsn``: where the next chunk takes over."""
        conn = self._readable()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT min(after_lsn) FROM chunks WHERE after_lsn > ?", (u64_to_sql(lsn),)
            ).fetchone()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return None
        return None if row[0] is None else u64_from_sql(row[0])

    def ahead_sizes(self) -> dict[str, tuple[int, int]]:
        """Per format rendered ahead: how many chunks are kept, and their compressed bytes."""
        conn = self._readable()
        if conn is None:
            return {}
        try:
            rows = conn.execute(
                "SELECT key, count(*), sum(length(data)) FROM ahead GROUP BY key"
            ).fetchall()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return {}
        return {key: (chunks, size) for key, chunks, size in rows}

    def load_ahead(self, key: str, after_lsn: int, last_lsn: int) -> AheadOutput | None:
        """The chunk's output rendered ahead for ``key``, or None (not rendered, stale, damaged)."""
        renderer = self.renderers.get(key)
        conn = self._readable()
        if conn is None or renderer is None:
            return None
        try:
            row = conn.execute(
                "SELECT data FROM ahead WHERE key = ? AND after_lsn = ? AND last_lsn = ?",
                (key, u64_to_sql(after_lsn), u64_to_sql(last_lsn)),
            ).fetchone()
        except sqlite3.Error as exc:
            self._read_failed(exc)
            return None
        if row is None:
            return None
        try:
            refs, actions, output = self._unpickle(row[0])
            relations = self._current(refs)
            if relations is None:
                return None
            parsed = renderer.parse(output)
        except Exception as exc:
            log.warning("output of chunk (%d, %d] for %s is unreadable: %s",
                        after_lsn, last_lsn, key, exc)  # fmt: skip
            try:
                conn.execute(
                    "DELETE FROM ahead WHERE key = ? AND after_lsn = ? AND last_lsn = ?",
                    (key, u64_to_sql(after_lsn), u64_to_sql(last_lsn)),
                )
            except sqlite3.Error as failed:  # dropped with its chunk, before the next read
                self._fail(failed, "dropping output rendered ahead")
                self._remember_drop("WHERE after_lsn = ? AND last_lsn = ?",
                                    (u64_to_sql(after_lsn), u64_to_sql(last_lsn)))  # fmt: skip
            return None
        self.ahead_loaded += 1
        return AheadOutput(relations, [(relations[n], a) for n, a in actions], parsed, len(output))

    def _current(self, refs: list[tuple[str, int, int]]) -> dict[str, Relation] | None:
        """The relations a chunk names, None when one of them has changed since."""
        relations = {}
        for name, oid, version in refs:
            relation = self._relations.find(name)
            if relation is None or relation.oid != oid or relation.version != version:
                self.chunks_stale += 1
                return None
            relations[name] = relation
        return relations

    def _unpickle(self, data: bytes) -> Any:
        return PlainUnpickler(io.BytesIO(self._decompress(data))).load()

    def close(self) -> None:
        """Close the file (the buffered chunk is not written: the spool has it)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                log.warning("decoded store %s: closing it failed: %s", self.path, exc)
            self._conn = None


@dataclass(slots=True)
class AheadOutput:
    """A chunk's output rendered ahead, with the relations and actions its changes have."""

    relations: dict[str, Relation]
    actions: list[tuple[Relation, str]]
    output: Any  # as the format's renderer parsed it
    size: int  # bytes it was kept as
