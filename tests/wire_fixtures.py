"""A small statement handler and a threaded server for the wire/server tests."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pgshim.config import Config
from pgshim.errors import PgError
from pgshim.server import PgServer
from pgshim.sql.results import (
    ColumnDesc,
    CommandResult,
    CopyBothStream,
    CopyOutResult,
    Prepared,
    RowsResult,
)
from pgshim.wire import events as ev
from pgshim.wire import messages as msg
from pgshim.wire.handler import ConnectionInfo, StreamIO


class EchoStream(CopyBothStream):
    """Sends `count` XLogData messages in one batch, then echoes standby status flushes."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.flushes: list[int] = []

    async def run(self, io: StreamIO) -> None:
        io.write(msg.copy_both_response())
        for n in range(self.count):
            io.write(msg.xlog_data(n, n, 0, f"change {n}".encode()))
        await io.drain()
        while (event := await io.read_message()) is not None:
            if isinstance(event, ev.CopyData) and event.data[:1] == b"r":
                _, flush, _, _, _ = msg.parse_standby_status(event.data)
                io.write(msg.keepalive(flush, 0))
                await io.drain()
            elif isinstance(event, ev.CopyDone | ev.Terminate):
                return


TYPE_OIDS = {"int4": 23, "int": 23, "int8": 20, "text": 25, "bool": 16, "float8": 701}
_PARAM = re.compile(r"\$(\d+)::(\w+)")
_SERIES = re.compile(r"SELECT generate_series\(1, *(\d+)\)", re.I)
_SLEEP = re.compile(r"SELECT pg_sleep\(([\d.]+)\)", re.I)
_LITERAL = re.compile(r"SELECT (-?\d+)$", re.I)
_COMMAND = re.compile(r"(BEGIN|START|COMMIT|ROLLBACK|SET|DEALLOCATE)\b", re.I)
_SET = re.compile(r"SET application_name *(?:=|TO) *'?([^']*)'?", re.I)


class EchoHandler:
    """Answers a handful of statements; enough to drive every protocol path."""

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self.tx_status = "I"
        self.closed = False
        self._changes: list[tuple[str, str]] = []
        self._cancelled = asyncio.Event()

    def split(self, sql: str) -> list[str]:
        return [part.strip() for part in sql.split(";") if part.strip()]

    def _columns(self, stmt: str) -> list[ColumnDesc] | None:
        params = _PARAM.findall(stmt)
        if params:
            return [ColumnDesc(f"p{n}", TYPE_OIDS[t]) for n, t in params]
        if _SERIES.match(stmt):
            return [ColumnDesc("generate_series", 23, 4)]
        if _SLEEP.match(stmt):
            return [ColumnDesc("pg_sleep", 2278, 4)]
        if _LITERAL.match(stmt):
            return [ColumnDesc("?column?", 23, 4)]
        if stmt.upper() == "SELECT CURRENT_USER":
            return [ColumnDesc("current_user", 19, 64)]
        return None

    async def _run(self, stmt: str, params: list[Any]) -> RowsResult | CommandResult:
        upper = stmt.upper()
        if upper in ("BEGIN", "START TRANSACTION"):
            self.tx_status = "T"
            return CommandResult("BEGIN")
        if upper.startswith("DEALLOCATE"):
            return CommandResult("DEALLOCATE ALL")
        if upper in ("COMMIT", "ROLLBACK"):
            self.tx_status = "I"
            return CommandResult(upper)
        if m := _SET.match(stmt):
            self._changes.append(("application_name", m.group(1)))
            return CommandResult("SET")
        if m := _SLEEP.match(stmt):
            self._cancelled.clear()
            await asyncio.sleep(float(m.group(1)))
            return RowsResult(self._columns(stmt) or [], [(None,)], "SELECT 1")
        columns = self._columns(stmt)
        if columns is None:
            if self.tx_status == "T":
                self.tx_status = "E"
            raise PgError("42601", f'syntax error at or near "{stmt.split()[0]}"')
        if m := _SERIES.match(stmt):
            rows = [(i,) for i in range(1, int(m.group(1)) + 1)]
        elif m := _LITERAL.match(stmt):
            rows = [(int(m.group(1)),)]
        elif upper == "SELECT CURRENT_USER":
            rows = [(self.info.user,)]
        else:
            rows = [tuple(params)]
        return RowsResult(columns, rows, f"SELECT {len(rows)}")

    async def simple(self, stmt: str) -> Any:
        if stmt.startswith("START_REPLICATION"):
            return EchoStream(int(stmt.split()[-1]))
        if stmt.upper().startswith("COPY"):
            lines = [f"{i}\tname {i}\n".encode() for i in range(3)]
            return CopyOutResult([ColumnDesc("id", 23), ColumnDesc("name", 25)], lines, "COPY 3")
        return await self._run(stmt, [])

    async def prepare(self, stmt: str, param_oids: list[int]) -> Prepared:
        if self._columns(stmt) is None and not _COMMAND.match(stmt):
            raise PgError("42601", f'syntax error at or near "{stmt.split()[0]}"')
        declared = [TYPE_OIDS[t] for _, t in _PARAM.findall(stmt)]
        oids = [
            param_oids[i] if i < len(param_oids) and param_oids[i] else oid
            for i, oid in enumerate(declared)
        ]
        return Prepared(stmt, oids, self._columns(stmt))

    async def execute(self, prepared: Prepared, params: list[Any]) -> RowsResult | CommandResult:
        return await self._run(prepared.statement, params)

    def reported_changes(self) -> list[tuple[str, str]]:
        changes, self._changes = self._changes, []
        return changes

    def cursor_columns(self, name: str) -> list[Any] | None:
        return None  # no SQL cursors here

    def close_cursor(self, name: str) -> None:
        pass

    def failed(self) -> None:
        pass

    def cancel(self) -> None:
        self._cancelled.set()

    async def close(self) -> None:
        self.closed = True


class ThreadedServer:
    """A PgServer on its own event loop in a thread, so blocking clients can talk to it."""

    def __init__(self, config: Config, factory=EchoHandler, on_shutdown=None) -> None:
        self.config = config
        self.factory = factory
        self.on_shutdown = on_shutdown
        self.loop = asyncio.new_event_loop()
        self.server: PgServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ThreadedServer:
        self._thread.start()

        async def start() -> PgServer:
            server = PgServer(self.config, self.factory, self.on_shutdown)
            await server.start()
            return server

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def call(self, fn, *args):  # noqa: ANN001, ANN201
        async def run():  # noqa: ANN202
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@contextmanager
def running_server(config: Config | None = None, **kwargs: Any) -> Iterator[ThreadedServer]:
    config = config or Config(port=0)
    server = ThreadedServer(config, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
