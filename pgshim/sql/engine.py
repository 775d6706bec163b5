"""The embedded engine behind the catalog, walled off and run off the event loop.

DuckDB answers only statements pgshim wrote (see catalog.py), but it is configured as if anything
could reach it: no file system or network access, no extensions installed or loaded, its
configuration locked, a memory limit and one thread per query. Queries run in worker threads
of lower priority than the event loop; a statement timeout or a CancelRequest interrupts them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound, timed_out

WALLED_OFF = {
    # no spill files: beyond memory_limit a query fails (53200) instead of writing a temporary
    # directory under the server's working directory (DuckDB's default, up to 90% of the disk)
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "threads": 1,
}


@dataclass(frozen=True, slots=True)
class TempTable:
    """Rows a query reads as a table of its own: a view's current rows or a set-returning
    function's result."""

    name: str
    columns: list[tuple[str, str]]  # (name, engine type)
    rows: list[tuple]


def create_table(connection: Any, table: TempTable, temporary: bool = True) -> None:
    """Create the table and load its rows column by column (one list per column, unnested:
    an order of magnitude faster than inserting row by row)."""
    definition = ", ".join(f'"{name}" {kind}' for name, kind in table.columns)
    scope = "TEMP TABLE" if temporary else "OR REPLACE TABLE"
    connection.execute(f'CREATE {scope} "{table.name}" ({definition})')
    if table.rows:
        unnested = ", ".join(f"unnest(?::{kind}[])" for _, kind in table.columns)
        columns = [list(column) for column in zip(*table.rows, strict=True)]
        connection.execute(f'INSERT INTO "{table.name}" SELECT {unnested}', columns)


def _lower_priority() -> None:
    # a worker's CPU goes to the event loop first (streaming sessions, other queries' I/O)
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Engine:
    def __init__(self, memory_limit: str = "256MB", workers: int = 4) -> None:
        self.memory_limit = memory_limit
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="pgshim-sql", initializer=_lower_priority
        )
        self.db: Any = None

    def connect(self, tables: Sequence[TempTable], macros: Iterable[str]) -> Any:
        """The database, created on first use with pgshim's own tables and macros; nothing can
        change its configuration afterwards."""
        if self.db is None:
            import duckdb  # imported on first use: the server stays small until a catalog query

            db = duckdb.connect(":memory:", config=WALLED_OFF | {"memory_limit": self.memory_limit})
            # set after the connection: DuckDB refuses temp_directory once external access is off
            db.execute("SET enable_external_access = false")
            db.execute("SET TimeZone = 'UTC'")
            for table in tables:
                create_table(db, table, temporary=False)
            for macro in macros:
                db.execute(macro)
            db.execute("SET lock_configuration = true")
            self.db = db
        return self.db

    async def open(
        self,
        sql: str,
        params: list,
        temp_tables: Sequence[TempTable],
        bound: Bound,
        to_pg_error: Callable[[Exception], PgError],
    ) -> EngineCursor:
        """Run `sql` on a cursor of its own, after creating its temporary tables; the rows are
        fetched with EngineCursor.fetch."""
        cursor = EngineCursor(self, self.db.cursor(), bound, to_pg_error)

        def start() -> None:
            for table in temp_tables:
                create_table(cursor.raw, table)
            cursor.raw.execute(sql, params)

        try:
            await cursor.run(start)
        except BaseException:
            cursor.close()
            raise
        return cursor

    async def run(self, fn: Callable[[], Any], interrupt: Callable[[], None], bound: Bound) -> Any:
        """fn() in a worker thread; interrupted at the deadline or when the awaiting task is
        cancelled (CancelRequest, closed connection)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, fn)
        future.add_done_callback(_consume)
        try:
            return await asyncio.wait_for(asyncio.shield(future), bound.remaining())
        except TimeoutError:
            interrupt()
            with contextlib.suppress(Exception):
                await future
            raise timed_out() from None
        except asyncio.CancelledError:
            interrupt()
            raise

    def submit(self, fn: Callable[[], Any]) -> None:
        self._pool.submit(fn)


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # an interrupted query's error is reported otherwise


class EngineCursor:
    """A running query's rows, fetched in batches off the event loop (a RowSource)."""

    def __init__(
        self, engine: Engine, raw: Any, bound: Bound, to_pg_error: Callable[[Exception], PgError]
    ) -> None:
        self.engine = engine
        self.raw = raw
        self.bound = bound
        self._to_pg_error = to_pg_error
        self._lock = threading.Lock()  # one call at a time on the raw cursor, close included
        self.closed = False

    @property
    def description(self) -> list:
        return self.raw.description or []

    async def run(self, fn: Callable[[], Any]) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn()

        try:
            return await self.engine.run(locked, self.raw.interrupt, self.bound)
        except (PgError, asyncio.CancelledError):
            raise
        except Exception as error:
            if type(error).__name__ == "InterruptException":
                raise PgError("57014", "canceling statement due to user request") from None
            raise self._to_pg_error(error) from None

    def restart_clock(self) -> None:
        self.bound.start()

    async def fetch(self, count: int) -> list[tuple]:
        if self.closed:
            return []
        rows = await self.run(lambda: self.raw.fetchmany(count))
        if len(rows) < count:
            self.close()
        return rows

    def close(self) -> None:
        """Release the cursor, after the call an interrupt may have left running."""
        if not self.closed:
            self.closed = True
            self.engine.submit(self._close_raw)

    def _close_raw(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.raw.close()
