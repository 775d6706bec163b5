"""The embedded engine behind the catalog, in processes of its own, walled off.

DuckDB answers only statements pgshim wrote (see catalog.py), but it runs as if anything could
reach it: in separate processes (engine_worker.py, forked from a fork server that loaded DuckDB
once) whose address space is capped, with no file system or network access, no extensions, its
configuration locked and a memory limit. Each query (an open portal too) has a process to itself,
like a PostgreSQL backend, and at most ``workers`` of them compute at a time; the event loop only
waits on their sockets. A statement timeout or a CancelRequest kills the query's process (its
replacement starts when next needed); a query that builds more than the cap allows fails in its
process, and the server, its sessions and its streams go on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import itertools
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound, timed_out
from pgshim.sql.result_cache import MAX_ROWS, KeptRows, ResultCache
from pgshim.sql.shared_tables import SharedTables, Stamped

IDLE_AHEAD = 2  # processes kept started for the next queries
MAX_TEMPLATES = 4  # engines' databases the fork server keeps to fork from (tests start several)
# what an engine process may hold beyond query_memory: the interpreter, DuckDB, its buffers
PROCESS_OVERHEAD = 768 << 20
_SIZE = re.compile(r"(\d+)\s*(KB|MB|GB)", re.IGNORECASE)
_UNITS = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


@dataclass(frozen=True, slots=True)
class TempTable:
    """Rows a query reads as a table of its own: a view's current rows or a set-returning
    function's result; or, ``shared``, the current rows of a view every session sees alike,
    which the engine processes keep between queries (see shared_tables.py)."""

    name: str
    columns: list[tuple[str, str]]  # (name, engine type)
    rows: list[tuple]
    shared: bool = False


class EngineError(Exception):
    """An error the engine reported: DuckDB's exception class name (``kind``) and its message."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


class _Values(pickle.Unpickler):
    """What a DuckDB result holds: plain values, dates and times, decimals, UUIDs."""

    ALLOWED = {
        "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
        "decimal": {"Decimal"},
        "uuid": {"UUID", "SafeUUID"},
    }

    def find_class(self, module: str, name: str) -> Any:
        if name in self.ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not expected from the engine")


@dataclass(frozen=True, slots=True)
class _Template:
    """An engine's setup, with the versions of the shared tables it holds, under its key."""

    key: int
    setup: dict
    versions: dict[str, int]


class _ForkServer:
    """The process that forks engine processes (engine_worker.fork_server), started once.

    Each engine's setup (its tables and macros) is opened once there as a template database,
    which every process it forks for that engine starts from: opening it takes 0.2-0.4 s of
    CPU, a fork about 4 ms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        # the templates of this fork server in the order it keeps them: the versions of the
        # shared tables each holds (None: refused there)
        self._templates: dict[int, dict[str, int] | None] = {}

    def fork(
        self, conn: socket.socket, limit: int, template: _Template
    ) -> tuple[int, dict[str, int] | None]:
        """A new engine process serving ``conn``'s other end, from ``template`` if the fork
        server keeps it: its process id, and the versions of the shared tables the template
        holds (None: not started from a template, its setup must come whole)."""
        with self._lock:
            self._ensure_started()
            held = self._template(template)
            key = 0 if held is None else template.key
            return self._call(f"fork {limit} {key}", conn), held

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._start()

    def _template(self, template: _Template) -> dict[str, int] | None:
        if template.key not in self._templates:
            ours, theirs = socket.socketpair()
            with Connection(ours.detach()) as sender:
                try:
                    self._send(f"template {template.key} {MAX_TEMPLATES}", theirs)
                finally:
                    theirs.close()
                sender.send_bytes(pickle.dumps(template.setup, protocol=pickle.HIGHEST_PROTOCOL))
                kept = self._reply() == 1
            # a copy: the process's own account of what it holds changes with its queries
            self._templates[template.key] = dict(template.versions) if kept else None
            # the same account as the fork server's: the oldest kept goes first
            held = [key for key, versions in self._templates.items() if versions is not None]
            for old in held[: max(0, len(held) - MAX_TEMPLATES)]:
                del self._templates[old]
        return self._templates[template.key]

    def _call(self, request: str, conn: socket.socket) -> int:
        self._send(request, conn)
        return self._reply()

    def _send(self, request: str, conn: socket.socket) -> None:
        assert self._control is not None
        socket.send_fds(self._control, [request.encode()], [conn.fileno()])

    def _reply(self) -> int:
        assert self._control is not None
        reply = self._control.recv(8)
        if len(reply) < 8:
            self._proc = None
            raise EngineError("ProtocolError", "the engine's fork server ended")
        return int.from_bytes(reply, "big")

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        # the code the server runs, wherever it was imported from (not the working directory)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        path = os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        started: list[subprocess.Popen] = []
        ready = threading.Event()

        def keeper() -> None:
            """Start the fork server and live as long as it does: it dies with the thread that
            started it (PR_SET_PDEATHSIG), which must not be a pool's thread that may end."""
            try:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pgshim.sql.engine_worker", str(theirs.fileno())],
                        pass_fds=(theirs.fileno(),),
                        cwd="/",
                        env={**os.environ, "PYTHONPATH": path},
                    )
                )
            finally:
                ready.set()
            started[0].wait()

        threading.Thread(target=keeper, name="pgshim-sql-fork-server", daemon=True).start()
        ready.wait()
        theirs.close()
        if not started:
            ours.close()
            raise EngineError("ProtocolError", "the engine's fork server did not start")
        self._proc = started[0]
        self._control = ours
        self._templates.clear()


_FORK_SERVER = _ForkServer()
_TEMPLATE_KEYS = itertools.count(1)


def start_fork_server() -> None:
    """Start the fork server now rather than for the first query: it loads DuckDB (a few tenths
    of a second, on another core) while the server starts."""
    _FORK_SERVER.start()


class _Process:
    """One engine process and its socket; used by one query at a time."""

    def __init__(
        self, memory_limit: str, key: int, setup: dict, shared: list[Stamped],
        to_send: Callable[[dict[str, int], list[Stamped]], list[Stamped]],
    ) -> None:  # fmt: skip
        """An engine's process: its ``setup`` and the ``shared`` tables' newest versions;
        forked from template ``key`` of them where the fork server keeps it, then sent those
        the template holds another version of (``to_send``)."""
        ours, theirs = socket.socketpair()
        versions = {table.name: table.version for table in shared}
        full = {**setup, "tables": setup["tables"] + _as_sent(shared)}
        try:
            self.pid, held = _FORK_SERVER.fork(
                theirs, _bytes(memory_limit) + PROCESS_OVERHEAD, _Template(key, full, versions)
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.dead = False
        self.tables = versions  # the version of each shared table this process holds
        if held is not None:
            full = {"tables": _as_sent(to_send(held, shared))}
        if self.request(full) != ("ready",):
            self.kill()
            raise EngineError("ProtocolError", "the engine process did not start")

    def request(self, message: tuple | dict) -> tuple:
        """Send one request and wait for its reply (blocking: run in a thread)."""
        try:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError):
            return self._ended()
        return self._read()

    def _read(self) -> tuple:
        try:
            return _Values(io.BytesIO(self.conn.recv_bytes())).load()
        except (OSError, EOFError, ValueError):
            return self._ended()

    def _ended(self) -> tuple:
        self.dead = True
        with contextlib.suppress(OSError):
            self.conn.close()
        return ("ended", None)

    def kill(self) -> None:
        """End the process at once (its fork server reaps it); a request waiting on it gets
        the end of its socket (the socket is closed there, or when it is collected)."""
        self.dead = True
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)


def _as_sent(tables: Iterable[TempTable | Stamped]) -> list[tuple]:
    """Tables as an engine process takes them: plain tuples (it unpickles no class of ours)."""
    return [(t.name, t.columns, t.rows) for t in tables]


def _bytes(size: str) -> int:
    match = _SIZE.fullmatch(size.strip())
    if match is None:
        raise ValueError(f"not a memory size: {size!r}")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


class Engine:
    def __init__(
        self, memory_limit: str = "256MB", workers: int = 4, max_processes: int | None = None
    ) -> None:
        self.memory_limit = memory_limit
        self.workers = workers
        # processes at once: each query (an open portal too) holds one, as each PostgreSQL
        # session has a backend; only ``workers`` of them compute at a time (the _io pool)
        self.max_processes = max(max_processes or workers, workers)
        self._setup: tuple[int, dict] | None = None  # a template key and the setup
        self.shared = SharedTables()
        self.results = ResultCache()
        self._contents = SharedTables()  # versions of the queries' own tables, for results' keys
        self._idle: list[_Process] = []
        self._live = 0
        self._free = threading.Condition()
        # threads waiting on a process's socket (each process has one request at a time) ...
        self._io = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers + 1, thread_name_prefix="pgshim-sql"
        )
        # ... apart from those waiting for a process, or starting one, which must not hold them
        self._waits = concurrent.futures.ThreadPoolExecutor(
            max_workers=64, thread_name_prefix="pgshim-sql-wait"
        )

    def configure(self, tables: Sequence[TempTable], macros: Iterable[str]) -> None:
        """pgshim's own tables (their rows as of now: enough for the static ones and for
        planning; queries bring fresh versions of what they read) and macros, for every engine
        process started from now on (with the newest version of each shared table)."""
        for table in tables:
            if table.shared:
                self.shared.stamp(table.name, table.columns, table.rows)
        self._setup = (next(_TEMPLATE_KEYS), {
            "memory_limit": self.memory_limit,
            "tables": _as_sent(table for table in tables if not table.shared),
            "macros": list(macros),
        })  # fmt: skip
        self._waits.submit(self._prewarm)

    async def open(
        self,
        sql: str,
        params: list,
        temp_tables: Sequence[TempTable],
        bound: Bound,
        to_pg_error: Callable[[Exception], PgError],
        stage: Callable[[EngineCursor], Awaitable[None]] | None = None,
        *,
        deterministic: bool = False,
    ) -> EngineCursor | KeptRows:
        """Run ``sql`` in a process of its own, after creating its temporary tables (and
        bringing its shared tables to the versions of their rows given); the rows are fetched
        with EngineCursor.fetch, and the process is the query's until it is closed. ``stage``
        may load more tables first, a chunk at a time (EngineCursor.stage). The rows of a
        ``deterministic`` statement (see result_cache.py) may come from a kept result of the
        same statement over the same tables (versions of its shared tables, and of the contents
        of its own)."""
        shared, own = self._split(temp_tables)
        key = None
        # (the contents of its own tables are remembered for their versions: small ones only)
        if deterministic and stage is None and all(len(t.rows) <= MAX_ROWS for t in own):
            versions = [(t.name, t.version) for t in shared] + [
                (f"own {t.name}", self._contents.stamp(t.name, t.columns, t.rows).version)
                for t in own
            ]
            key = ResultCache.key(sql, params, versions)
            kept = None if key is None else self.results.get(key)
            if kept is not None:
                return KeptRows(*kept)
        cursor = EngineCursor(self, await self._acquire(bound), bound, to_pg_error)
        try:
            if stage is not None:
                await stage(cursor)
            cursor.description = await self._request(cursor, "open", sql, params, shared, own)
        except BaseException:
            cursor.close()
            raise
        if key is not None:
            cursor.keep(key)
        return cursor

    async def describe(
        self,
        sql: str,
        params: list,
        temp_tables: Sequence[TempTable],
        bound: Bound,
        to_pg_error: Callable[[Exception], PgError],
    ) -> list[tuple[str, str]]:
        """The result columns of ``sql`` (planned, not run: callers wrap it in LIMIT 0)."""
        shared, own = self._split(temp_tables)
        cursor = EngineCursor(self, await self._acquire(bound), bound, to_pg_error)
        try:
            return await self._request(cursor, "describe", sql, params, shared, own)
        finally:
            cursor.release()

    def _split(self, tables: Sequence[TempTable]) -> tuple[list[Stamped], list[TempTable]]:
        """The shared tables as versions of the rows given (taken now, before the query waits
        for a process), and the query's own tables."""
        shared = [self.shared.stamp(t.name, t.columns, t.rows) for t in tables if t.shared]
        return shared, [table for table in tables if not table.shared]

    async def _request(
        self,
        cursor: EngineCursor,
        op: str,
        sql: str,
        params: list,
        shared: list[Stamped],
        own: list[TempTable],
    ) -> Any:
        """Open or describe ``sql`` in the cursor's process, sending the versions of the shared
        tables it lacks and the query's own tables."""
        held = cursor.process.tables
        replaced = self.shared.to_send(held, shared)
        own_sent = _as_sent(own)
        self.shared.counted(own_sent)
        for table in replaced:  # unknown until the process answers (it may fail half way)
            held.pop(table.name, None)
        description = await cursor.request((op, sql, params, own_sent, _as_sent(replaced)))
        held.update({table.name: table.version for table in replaced})
        return description

    async def _acquire(self, bound: Bound) -> _Process:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._waits, self._take, bound.deadline)
        try:
            process = await future
        except asyncio.CancelledError:
            future.add_done_callback(self._give_back_unused)
            raise
        if process is None:
            raise timed_out()
        return process

    def _give_back_unused(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None and future.result() is not None:
            self.release(future.result())

    def _take(self, deadline: float | None) -> _Process | None:
        """An idle process, or a new one while fewer than ``max_processes`` live; waits otherwise
        (blocking: run in a thread). None when the deadline passed first."""
        with self._free:
            while not self._idle and self._live >= self.max_processes:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._free.wait(remaining)
            if self._idle:
                process = self._idle.pop()
                self._waits.submit(self._prewarm)
                return process
            self._live += 1
        return self._start()

    def _start(self) -> _Process:
        try:
            assert self._setup is not None, "configure() the engine first"
            return _Process(
                self.memory_limit, *self._setup, self.shared.newest(), self.shared.to_send
            )
        except BaseException:
            with self._free:
                self._live -= 1
                self._free.notify()
            raise

    def _prewarm(self) -> None:
        """Keep IDLE_AHEAD processes started ahead (a fork and the tables' setup), as long as
        fewer than ``max_processes`` live."""
        while True:
            with self._free:
                if len(self._idle) >= IDLE_AHEAD or self._live >= self.max_processes:
                    return
                self._live += 1
            try:
                process = self._start()
            except Exception:
                return
            self.release(process)

    def release(self, process: _Process) -> None:
        with self._free:
            if process.dead:
                self._live -= 1
            else:
                self._idle.append(process)
            self._free.notify()

    def submit(self, fn: Callable[[], Any]) -> None:
        self._io.submit(fn)

    def close(self) -> None:
        with self._free:
            idle, self._idle = self._idle, []
        for process in idle:
            process.kill()


class EngineCursor:
    """A running query's rows, fetched in batches from its process (a RowSource)."""

    def __init__(
        self,
        engine: Engine,
        process: _Process,
        bound: Bound,
        to_pg_error: Callable[[Exception], PgError],
    ) -> None:
        self.engine = engine
        self.process = process
        self.bound = bound
        self.description: list[tuple[str, str]] = []
        self._to_pg_error = to_pg_error
        self.closed = False
        self._kept: tuple[Any, list[tuple]] | None = None  # (key, rows so far): see keep()

    def keep(self, key: Any) -> None:
        """Keep the rows for later queries (Engine.results) once all are fetched, if few."""
        self._kept = (key, [])

    async def request(self, message: tuple) -> Any:
        """One request to the query's process; at the deadline, or when the awaiting task is
        cancelled (CancelRequest, closed connection), the process is killed."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.engine._io, self.process.request, message)
        try:
            # not wait_for: on Python 3.11 it can swallow a cancellation that comes as the reply
            # does, and a CancelRequest would be lost
            async with asyncio.timeout(self.bound.remaining()):
                reply = await asyncio.shield(future)
        except TimeoutError:
            self.process.kill()
            raise timed_out() from None
        except asyncio.CancelledError:
            self.process.kill()
            raise
        if reply[0] == "ended":
            raise PgError(
                "XX000",
                "the query's engine process ended",
                detail=f"It exited with status {reply[1]}.",
            )
        if reply[0] == "error":
            raise self._to_pg_error(EngineError(reply[1], reply[2]))
        return reply[1]

    async def stage(self, steps: list[tuple]) -> None:
        """Load tables the query reads into its process before it runs, one request per chunk:
        ``("sql", statement, params)`` runs a statement pgshim wrote (the rows as parameters),
        ``("table", name, columns, rows)`` creates a temporary table with these rows."""
        await self.request(("stage", steps))

    def restart_clock(self, bound: Bound | None = None) -> None:
        self.bound = (bound or self.bound).start()

    async def fetch(self, count: int) -> list[tuple]:
        if self.closed:
            return []
        rows = await self.request(("fetch", count))
        if self._kept is not None:
            self._kept[1].extend(rows)
            if len(self._kept[1]) > MAX_ROWS:
                self._kept = None
        if len(rows) < count:
            if self._kept is not None:
                self.engine.results.put(self._kept[0], self.description, self._kept[1])
                self._kept = None
            self.close()
        return rows

    def release(self) -> None:
        """Give the process back (after a describe: it holds no cursor)."""
        if not self.closed:
            self.closed = True
            self.engine.release(self.process)

    def close(self) -> None:
        """Close the query's cursor in its process and give the process back."""
        if self.closed:
            return
        self.closed = True
        process = self.process
        if process.dead:
            self.engine.release(process)
            return

        def close_and_release() -> None:
            if process.request(("close",))[0] != "ok":
                process.kill()
            self.engine.release(process)

        self.engine.submit(close_and_release)
