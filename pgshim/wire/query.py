"""Simple-query results and the extended query protocol (statements, portals, Sync)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pgshim.errors import PgError
from pgshim.sql.results import CommandResult, CopyOutResult, Prepared, RowSource, RowsResult
from pgshim.wire import events as ev
from pgshim.wire import messages as msg
from pgshim.wire.handler import SessionHandler
from pgshim.wire.render import (
    BINARY,
    TEXT,
    decode_params,
    encode_row,
    expand_formats,
    row_description,
)


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def write_large(self, data: bytes) -> None: ...


BATCH_ROWS = 1000  # rows fetched from a running query at a time


async def write_rows(
    out: Writer, rows: list[tuple] | Any, oids: list[int], formats: list[int]
) -> int:
    count = 0
    for row in rows:
        await out.write_large(encode_row(row, oids, formats))
        count += 1
    return count


async def write_streamed(
    out: Writer, source: RowSource, oids: list[int], formats: list[int], limit: int = 0
) -> tuple[int, bool]:
    """Rows of a running query, batch by batch, each sent before the next is fetched; at most
    `limit` (0: all). The count sent, and whether the source may have more."""
    sent = 0
    try:
        while not limit or sent < limit:
            want = BATCH_ROWS if not limit else min(BATCH_ROWS, limit - sent)
            batch = await source.fetch(want)
            sent += await write_rows(out, batch, oids, formats)
            if len(batch) < want:
                source.close()
                return sent, False
        return sent, True
    except BaseException:
        source.close()
        raise


async def write_result(out: Writer, result: RowsResult | CommandResult | CopyOutResult) -> None:
    """A simple-query statement's result, all columns in text (a BINARY cursor's: binary)."""
    if isinstance(result, RowsResult):
        oids = [c.type_oid for c in result.columns]
        formats = [BINARY if result.binary else TEXT] * len(oids)
        out.write(row_description(result.columns, formats))
        if isinstance(result.rows, list):
            await write_rows(out, result.rows, oids, formats)
            out.write(msg.command_complete(result.tag))
        else:
            sent, _ = await write_streamed(out, result.rows, oids, formats)
            out.write(msg.command_complete(f"{result.tag} {sent}"))
    elif isinstance(result, CopyOutResult):
        kind = BINARY if result.binary else TEXT
        out.write(msg.copy_out_response([kind] * len(result.columns), int(result.binary)))
        for line in result.rows:
            await out.write_large(msg.copy_data(line))
        out.write(msg.copy_done())
        out.write(msg.command_complete(result.tag))
    else:
        out.write(msg.command_complete(result.tag))


def _tag_for(result: RowsResult, sent: int, whole: bool) -> str:
    if whole:
        return result.tag
    verb = result.tag.split(" ", 1)[0]
    return f"{verb} {sent}" if verb in ("SELECT", "FETCH", "SHOW") else result.tag


@dataclass
class Statement:
    name: str
    prepared: Prepared | None  # None: the empty query
    param_oids: list[int]


@dataclass
class Portal:
    name: str
    statement: Statement
    params: list[Any]
    result_formats: list[int]
    result: RowsResult | CommandResult | None = None
    position: int = 0
    finished: bool = False
    columns: list[Any] | None = field(default=None)


class ExtendedQuery:
    """Parse/Bind/Describe/Execute/Close for one session; errors skip to the next Sync."""

    def __init__(self, handler: SessionHandler, out: Writer, replication: str = "false") -> None:
        self.handler = handler
        self.out = out
        self.replication = replication
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.skipping = False

    def fail(self) -> None:
        self.skipping = True

    def sync(self) -> None:
        self.skipping = False
        if self.handler.tx_status == "I":
            for name in list(self.portals):
                self._drop_portal(name)

    def forget_unnamed_portal(self) -> None:
        self._drop_portal("")
        self.statements.pop("", None)

    def _drop_portal(self, name: str) -> None:
        portal = self.portals.pop(name, None)
        if portal is not None and isinstance(portal.result, RowsResult):
            rows = portal.result.rows
            if not isinstance(rows, list):
                rows.close()

    async def handle(self, event: ev.FrontendEvent) -> None:
        if self.skipping:
            return
        if self.replication != "false":
            raise PgError(
                "08P01", "extended query protocol not supported in a replication connection"
            )
        match event:
            case ev.Parse():
                await self._parse(event)
            case ev.Bind():
                self._bind(event)
            case ev.Describe(kind="S"):
                self._describe_statement(self._statement(event.name))
            case ev.Describe() if event.name not in self.portals:
                self._describe_cursor(event.name)
            case ev.Describe():
                await self._describe_portal(self._portal(event.name))
            case ev.Execute():
                await self._execute(self._portal(event.portal), event.max_rows)
            case ev.Close(kind="S"):
                self.statements.pop(event.name, None)
                self.out.write(msg.close_complete())
            case ev.Close() if event.name and event.name not in self.portals:
                self.handler.close_cursor(event.name)
                self.out.write(msg.close_complete())
            case ev.Close():
                self._drop_portal(event.name)
                self.out.write(msg.close_complete())

    def _statement(self, name: str) -> Statement:
        statement = self.statements.get(name)
        if statement is None:
            what = f'prepared statement "{name}"' if name else "unnamed prepared statement"
            raise PgError("26000", f"{what} does not exist")
        return statement

    def _portal(self, name: str) -> Portal:
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        return portal

    async def _parse(self, event: ev.Parse) -> None:
        if event.name and event.name in self.statements:
            raise PgError("42P05", f'prepared statement "{event.name}" already exists')
        parts = self.handler.split(event.sql)
        if len(parts) > 1:
            raise PgError("42601", "cannot insert multiple commands into a prepared statement")
        if parts:
            prepared = await self.handler.prepare(parts[0], list(event.param_oids))
            oids = list(prepared.param_oids)
        else:
            prepared, oids = None, list(event.param_oids)
        self.statements[event.name] = Statement(event.name, prepared, oids)
        self.out.write(msg.parse_complete())

    def _bind(self, event: ev.Bind) -> None:
        statement = self._statement(event.statement)
        if len(event.params) != len(statement.param_oids):
            raise PgError(
                "08P01",
                f"bind message supplies {len(event.params)} parameters, but prepared statement "
                f'"{statement.name}" requires {len(statement.param_oids)}',
            )
        if event.portal and (
            event.portal in self.portals or self.handler.cursor_columns(event.portal) is not None
        ):
            raise PgError("42P03", f'cursor "{event.portal}" already exists')
        params = decode_params(event.params, statement.param_oids, event.param_formats)
        self._drop_portal(event.portal)
        portal = Portal(event.portal, statement, params, list(event.result_formats))
        if statement.prepared is not None and statement.prepared.columns is not None:
            portal.columns = list(statement.prepared.columns)
            expand_formats(portal.result_formats, len(portal.columns), "result")
        self.portals[event.portal] = portal
        self.out.write(msg.bind_complete())

    def _describe_statement(self, statement: Statement) -> None:
        self.out.write(msg.parameter_description(statement.param_oids))
        columns = statement.prepared.columns if statement.prepared is not None else None
        self.out.write(row_description(columns) if columns else msg.no_data())

    def _describe_cursor(self, name: str) -> None:
        """A Describe of a cursor DECLARE opened (psycopg 3 asks for its columns so)."""
        columns = self.handler.cursor_columns(name)
        if columns is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        self.out.write(row_description(columns) if columns else msg.no_data())

    async def _describe_portal(self, portal: Portal) -> None:
        if portal.columns is None and portal.statement.prepared is not None:
            # The statement did not say what it returns: run it now and describe the result.
            await self._ensure_result(portal)
            if isinstance(portal.result, RowsResult):
                portal.columns = list(portal.result.columns)
        if portal.columns:
            formats = expand_formats(portal.result_formats, len(portal.columns), "result")
            self.out.write(row_description(portal.columns, formats))
        else:
            self.out.write(msg.no_data())

    async def _ensure_result(self, portal: Portal) -> RowsResult | CommandResult:
        if portal.result is None:
            assert portal.statement.prepared is not None
            portal.result = await self.handler.execute(portal.statement.prepared, portal.params)
        return portal.result

    async def _execute(self, portal: Portal, max_rows: int) -> None:
        if portal.statement.prepared is None:
            self.out.write(msg.empty_query_response())
            return
        result = await self._ensure_result(portal)
        if not isinstance(result, RowsResult):
            self.out.write(msg.command_complete(result.tag))
            portal.finished = True
            return
        columns = result.columns
        formats = expand_formats(portal.result_formats, len(columns), "result")
        oids = [c.type_oid for c in columns]
        if not isinstance(result.rows, list):
            if portal.position:
                result.rows.restart_clock()  # each Execute has its own statement_timeout
            sent, more = await write_streamed(
                self.out, result.rows, oids, formats, max(max_rows, 0)
            )
            portal.position += sent
            if more:
                self.out.write(msg.portal_suspended())
                return
            portal.finished = True
            self.out.write(msg.command_complete(f"{result.tag} {sent}"))
            return
        start = portal.position
        end = len(result.rows) if max_rows <= 0 else min(len(result.rows), start + max_rows)
        sent = await write_rows(self.out, result.rows[start:end], oids, formats)
        portal.position = end
        if end < len(result.rows):
            self.out.write(msg.portal_suspended())
            return
        portal.finished = True
        self.out.write(msg.command_complete(_tag_for(result, sent, whole=start == 0)))
