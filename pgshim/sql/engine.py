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
from collections.abc import Callable, Sequence
from typing import Any

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound, timed_out

WALLED_OFF = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "threads": 1,
}
INSERT_CHUNK = 500  # rows of a set-returning function's result per INSERT


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

    def connect(self, setup: Sequence[str]) -> Any:
        """The database, created on first use with pgshim's own tables and macros (`setup`);
        nothing can change its configuration afterwards."""
        if self.db is None:
            import duckdb  # imported on first use: the server stays small until a catalog query

            db = duckdb.connect(":memory:", config=WALLED_OFF | {"memory_limit": self.memory_limit})
            db.execute("SET TimeZone = 'UTC'")
            for statement in setup:
                db.execute(statement)
            db.execute("SET lock_configuration = true")
            self.db = db
        return self.db

    async def open(
        self,
        sql: str,
        params: list,
        temp_tables: Sequence[tuple[str, str, list[tuple]]],
        bound: Bound,
        to_pg_error: Callable[[Exception], PgError],
    ) -> EngineCursor:
        """Run `sql` on a cursor of its own, after creating its temporary tables (name, column
        definitions, rows); the rows are fetched with EngineCursor.fetch."""
        cursor = EngineCursor(self, self.db.cursor(), bound, to_pg_error)

        def start() -> None:
            for name, definition, rows in temp_tables:
                cursor.raw.execute(f'CREATE TEMP TABLE "{name}" ({definition})')
                width = definition.count(",") + 1
                for first in range(0, len(rows), INSERT_CHUNK):
                    chunk = rows[first : first + INSERT_CHUNK]
                    marks = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
                    flat = [value for row in chunk for value in row]
                    cursor.raw.execute(f'INSERT INTO "{name}" VALUES {marks}', flat)
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
