"""The state that several pgshim instances share, kept in PostgreSQL (``state_url``).

Slots, publications, the identity map, relations and the server's identity live in the schema
``pgshim`` of that database; every instance serving the same RedDB source points at it, so any of
them can serve any slot and positions are the same on each. What belongs to one instance (its
ingestion checkpoint, spool index, decoded store, output formats, RedDB terms and replicas) stays
in its own state directory.

The stores keep the SQL they run on sqlite: :class:`SharedConnection` gives them sqlite's
interface on a PostgreSQL connection (``?`` parameters, autocommit with explicit ``BEGIN``), and
the schema is PostgreSQL's own, created and upgraded by :data:`MIGRATIONS` under an advisory lock
(two instances starting together migrate once). The stores' ``CREATE TABLE IF NOT EXISTS`` are
not run there: the migrations own that schema.

Failures: a statement that fails because the database cannot be reached (a restart, a network
failure) raises :class:`StateStoreError`, a ``sqlite3.OperationalError``, so that it takes the
paths a full disk takes with sqlite (confirmations kept in memory and written later, the
ingestion checkpoint held, PostgreSQL's error for a client's write); the next statement connects
again. A commit is durable when it returns (``synchronous_commit = on`` for these sessions),
the rule sqlite's ``durable_commit`` follows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

log = logging.getLogger(__name__)

SCHEMA = "pgshim"
_MIGRATION_LOCK = 0x70677368696D  # pg_advisory_xact_lock key: the bytes of "pgshim"
CONNECT_TIMEOUT = 2  # seconds a connection attempt or a statement may take
RETRY_FIRST = 0.5  # seconds before a failed connection is tried again; doubled after each failure
RETRY_MAX = 5.0

# version -> statements; never edit a released one, add the next
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    system_identifier BIGINT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE slots (
    name TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    database TEXT NOT NULL,
    two_phase INTEGER NOT NULL,
    confirmed_flush BIGINT NOT NULL,
    restart_pos BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    lost_after BIGINT,
    invalidation_reason TEXT,
    invalidated_time TEXT,
    failover INTEGER,
    two_phase_at BIGINT,
    holder TEXT,
    holder_token TEXT,
    holder_pid INTEGER,
    lease_until TIMESTAMPTZ
);
CREATE TABLE publications (
    rowid BIGSERIAL,
    name TEXT PRIMARY KEY,
    all_tables INTEGER NOT NULL,
    publish TEXT NOT NULL
);
CREATE TABLE publication_tables (
    rowid BIGSERIAL,
    pubname TEXT NOT NULL,
    schemaname TEXT NOT NULL,
    tablename TEXT NOT NULL,
    attnames TEXT,
    rowfilter TEXT,
    PRIMARY KEY (pubname, schemaname, tablename)
);
CREATE TABLE publication_schemas (
    rowid BIGSERIAL,
    pubname TEXT NOT NULL,
    schemaname TEXT NOT NULL,
    PRIMARY KEY (pubname, schemaname)
);
CREATE TABLE identity_map (
    collection TEXT NOT NULL,
    physical_id BIGINT NOT NULL,
    logical_id BIGINT NOT NULL,
    PRIMARY KEY (collection, physical_id)
);
CREATE TABLE relations (
    collection TEXT PRIMARY KEY,
    oid BIGINT NOT NULL UNIQUE,
    columns TEXT NOT NULL,
    version INTEGER NOT NULL
);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)


class StateStoreError(sqlite3.OperationalError):
    """The shared state database could not be reached or failed a statement."""


def describe(url: str) -> str:
    """``host:port/dbname`` of a state URL, for messages: never its password."""
    try:
        params = pg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the state database"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


class _Cursor:
    """What the stores use of a sqlite cursor: rows fetched at once."""

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return self._rows

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._rows)


class SharedConnection:
    """sqlite's connection interface over PostgreSQL, for the shared stores (see the module)."""

    backend = "postgresql"

    def __init__(self, url: str, *, application_name: str = "pgshim") -> None:
        self.url = url
        self.where = describe(url)
        self._application_name = application_name
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()  # the event loop and the SQL workers share it
        self._translated: dict[str, str] = {}
        self._open_transaction = False  # a BEGIN ran and no COMMIT or ROLLBACK yet
        self._retry_at = self._backoff = 0.0
        self._unreachable = ""
        self._connect()
        self._migrate()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        conn = self._conn
        if _alive(conn):
            return conn  # type: ignore[return-value]
        now = time.monotonic()
        if now < self._retry_at:  # the server loop does not wait on it again and again
            raise StateStoreError(self._unreachable)
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                tcp_user_timeout=int(CONNECT_TIMEOUT * 1000),
                application_name=self._application_name,
                options=f"-c search_path={SCHEMA} -c synchronous_commit=on"
                f" -c statement_timeout={int(CONNECT_TIMEOUT * 1000)}",
            )
        except psycopg.Error as exc:
            self._backoff = min(max(self._backoff * 2, RETRY_FIRST), RETRY_MAX)
            self._retry_at = now + self._backoff
            self._unreachable = (
                f"cannot connect to the state database {self.where}: "
                f"{_without_password(_first_line(exc), self.url)}"
            )
            raise StateStoreError(self._unreachable) from None
        if self._conn is not None:
            log.info("connected to the state database %s again", self.where)
        self._conn, self._backoff, self._retry_at = conn, 0.0, 0.0
        return conn

    def _migrate(self) -> None:
        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
                    )
                    done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
                    newer = [v for v in done if v > SCHEMA_VERSION]
                    if newer:
                        raise StateStoreError(
                            f"the state database {self.where} has schema version {max(newer)}, "
                            f"newer than this pgshim knows ({SCHEMA_VERSION})"
                        )
                    for version in sorted(set(MIGRATIONS) - done):
                        conn.execute(MIGRATIONS[version])
                        conn.execute(
                            "INSERT INTO schema_migrations (version, applied_at) "
                            "VALUES (%s, now())",
                            (version,),
                        )
                        log.info("state database %s: schema version %d", self.where, version)
            except psycopg.Error as exc:
                raise self._failed(exc) from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    @property
    def in_transaction(self) -> bool:
        return self._open_transaction

    # -- sqlite's interface ------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        return self._run(sql, lambda cursor, statement: cursor.execute(statement, params))

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> _Cursor:
        return self._run(sql, lambda cursor, statement: cursor.executemany(statement, list(seq)))

    def _run(self, sql: str, run: Callable[[psycopg.Cursor, str], object]) -> _Cursor:
        statement = self._translate(sql)
        if statement is None:
            return _Cursor([], 0)
        with self._lock:
            conn = self._usable(statement)
            if conn is None:
                return _Cursor([], 0)
            # a server that stopped answering (a hung host, a stopped process) is not bounded by
            # its own statement_timeout, nor by TCP while the bytes are acknowledged: the socket
            # is shut once the statement has taken CONNECT_TIMEOUT, which breaks the connection
            watchdog = threading.Timer(CONNECT_TIMEOUT, _shut, (conn,))
            watchdog.daemon = True
            watchdog.start()
            try:
                with conn.cursor() as cursor:
                    run(cursor, statement)
                    rows = cursor.fetchall() if cursor.description is not None else []
                    return _Cursor(rows, cursor.rowcount)
            except psycopg.Error as exc:
                raise self._failed(exc) from None
            finally:
                watchdog.cancel()
                self._note_transaction(conn)

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def _usable(self, statement: str) -> psycopg.Connection | None:
        """The connection to run ``statement`` on; None when there is nothing to run (a
        ROLLBACK of a transaction its lost connection took along)."""
        if not self._open_transaction:
            return self._connect()
        conn = self._conn
        if _alive(conn):
            return conn
        # the transaction went with the connection: nothing of it may run on another one
        if statement.upper().startswith("ROLLBACK"):
            self._open_transaction = False
            return None
        raise StateStoreError(
            f"state database {self.where}: the connection was lost inside a transaction"
        )

    def _note_transaction(self, conn: psycopg.Connection) -> None:
        if _alive(conn):
            self._open_transaction = conn.info.transaction_status != TransactionStatus.IDLE

    def _translate(self, sql: str) -> str | None:
        """The stores' sqlite SQL as PostgreSQL runs it; None for what the migrations own."""
        translated = self._translated.get(sql)
        if translated is None:
            head = sql.lstrip()[:40].upper()
            if head.startswith(("CREATE TABLE IF NOT EXISTS", "CREATE INDEX IF NOT EXISTS")):
                translated = ""
            elif head.startswith("BEGIN"):
                translated = "BEGIN"
            else:
                translated = sql.replace("%", "%%").replace("?", "%s")
            self._translated[sql] = translated
        return translated or None

    def _failed(self, exc: psycopg.Error) -> sqlite3.Error:
        """The sqlite error the stores expect for ``exc``."""
        if isinstance(exc, pg_errors.UniqueViolation):
            return sqlite3.IntegrityError(_first_line(exc))
        conn = self._conn
        if _alive(conn) and conn.info.transaction_status == TransactionStatus.INERROR:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        log.debug("state database %s: %s", self.where, exc)
        return StateStoreError(f"state database {self.where}: {_first_line(exc)}")


def _shut(conn: psycopg.Connection) -> None:
    """End the connection's socket under the statement waiting on it (see ``_run``)."""
    with (
        contextlib.suppress(OSError, psycopg.Error),
        socket.socket(fileno=os.dup(conn.fileno())) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)


def _alive(conn: psycopg.Connection | None) -> bool:
    return conn is not None and not conn.closed and not conn.broken


def _without_password(text: str, url: str) -> str:
    """``text`` with the password of ``url`` masked, as written or decoded (libpq quotes the
    parts of a URL it cannot parse, a password that is not percent-encoded among them)."""
    found = re.match(r"[a-z]+://[^@/?#]*?:([^@/?#]*)@", url)
    if found is None or not found.group(1):
        return text
    written = found.group(1)
    for secret in {written, urllib.parse.unquote(written)}:
        text = text.replace(secret, "********")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
