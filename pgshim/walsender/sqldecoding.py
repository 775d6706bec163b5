"""SQL-level decoding: pg_logical_slot_{get,peek}_[binary_]changes and pg_replication_slot_advance.

The same plugins and delivery rule as START_REPLICATION, answered as rows (lsn, xid, data). This is
the path ClickHouse's MaterializedPostgreSQL and many scripts use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.plugins import load_plugin
from pgshim.sql.bounds import Bound, paced
from pgshim.sql.privileges import check_slot_permissions
from pgshim.walsender.slots import lost_slot_error

if TYPE_CHECKING:
    from pgshim.app import Application

CHANGES_COLUMNS = [("lsn", "pg_lsn"), ("xid", "xid"), ("data", "text")]
BINARY_CHANGES_COLUMNS = [("lsn", "pg_lsn"), ("xid", "xid"), ("data", "bytea")]
ADVANCE_COLUMNS = [("slot_name", "name"), ("end_lsn", "pg_lsn")]
ROW_OVERHEAD = 120  # bytes a row costs beyond its data: the tuple, its LSN and xid
TEXT_FUNCTION = "pg_logical_slot_{}_changes(name,pg_lsn,integer,text[])"


def _position(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return pgtypes.parse_lsn(str(value))
    except ValueError:
        raise PgError("22P02", f'invalid input syntax for type pg_lsn: "{value}"') from None


def _options(values: tuple) -> dict[str, str | None]:
    if len(values) % 2:
        raise PgError("2202E", "array must have even number of elements")
    pairs = dict.fromkeys(values[0::2])
    for name, value in zip(values[0::2], values[1::2], strict=True):
        pairs[name] = value
    return pairs


class SqlDecoding:
    def __init__(self, app: Application) -> None:
        self.app = app

    def register(self) -> None:
        catalog = self.app.catalog
        for verb, consume in (("get", True), ("peek", False)):
            catalog.register_table_function(
                f"pg_logical_slot_{verb}_changes",
                self._changes(binary=False, consume=consume, verb=verb),
                CHANGES_COLUMNS,
                needs_session=True,
            )
            catalog.register_table_function(
                f"pg_logical_slot_{verb}_binary_changes",
                self._changes(binary=True, consume=consume, verb=verb),
                BINARY_CHANGES_COLUMNS,
                needs_session=True,
            )
        catalog.register_table_function(
            "pg_replication_slot_advance", self.advance, ADVANCE_COLUMNS, needs_session=True
        )

    def _changes(
        self, *, binary: bool, consume: bool, verb: str
    ) -> Callable[..., Awaitable[list[tuple]]]:
        async def changes(
            session, slot_name: str, upto_lsn=None, upto_nchanges=None, *options: str
        ) -> list[tuple]:  # noqa: ANN001 - the SQL session and constant arguments
            check_slot_permissions(session)
            return await self.decode(
                session.pid, slot_name, _position(upto_lsn), upto_nchanges, _options(options),
                binary=binary, consume=consume, verb=verb, bound=session.bound(),
            )  # fmt: skip

        return changes

    async def decode(
        self,
        pid: int,
        slot_name: str,
        upto_lsn: int | None,
        upto_nchanges: int | None,
        options: dict[str, str | None],
        *,
        binary: bool,
        consume: bool,
        verb: str,
        bound: Bound,
    ) -> list[tuple]:
        """The slot's changes as rows, decoded in paced steps (other sessions go on, the
        statement's timeout applies) and no larger in all than query_memory."""
        app = self.app
        slot = app.slots.get(slot_name)
        if slot is None:
            raise PgError("42704", f'replication slot "{slot_name}" does not exist')
        if slot.plugin == "pgoutput" and not binary:
            raise PgError(
                "0A000",
                f'logical decoding output plugin "pgoutput" produces binary output, but function '
                f'"{TEXT_FUNCTION.format(verb)}" expects textual data',
            )
        plugin = load_plugin(slot.plugin, options, app.plugin_context)
        slot = app.slots.acquire(slot_name, pid)  # read again on a shared state database
        try:
            if slot.lost:
                raise lost_slot_error(slot)
            app.source.ingest()
            rows: list[tuple] = []
            last_end = None
            budget = app.config.query_memory * 1024 * 1024
            history = app.source.history(slot.confirmed_flush)
            sent_txns = sent_bytes = 0
            async for tx in paced(history, bound):
                if upto_lsn is not None and tx.commit_pos >= upto_lsn:
                    break
                sent_txns += 1
                await plugin.prepare([tx], 0, bound)
                for data_start, payload in plugin.encode(tx):
                    rows.append((data_start, tx.xid, payload if binary else payload.decode()))
                    budget -= len(payload) + ROW_OVERHEAD
                    sent_bytes += len(payload)
                if budget < 0:
                    raise PgError(
                        "53200",
                        "out of memory",
                        detail=f"The changes exceed query_memory ({app.config.query_memory} MiB).",
                        hint="Ask for fewer with upto_nchanges or upto_lsn.",
                    )
                last_end = tx.end_pos
                if upto_nchanges and len(rows) >= upto_nchanges:
                    break
            if slot.lost:  # invalidated while decoding: what was read may be incomplete
                raise lost_slot_error(slot)
            slot.stats.add(sent_txns, sent_bytes)  # decoded for the caller, as PostgreSQL counts
            if consume and last_end is not None:
                app.slots.confirm(slot_name, last_end)
                app.slots.flush_dirty()
            return rows
        finally:
            app.slots.release(slot_name, pid)

    def advance(self, session, slot_name: str, upto_lsn: object) -> list[tuple]:  # noqa: ANN001
        check_slot_permissions(session)
        app = self.app
        slot = app.slots.get(slot_name)
        if slot is None:
            raise PgError("42704", f'replication slot "{slot_name}" does not exist')
        target = _position(upto_lsn)
        if target is None:
            raise PgError("22023", "invalid target WAL LSN")
        if slot.lost:  # PostgreSQL 15's slotfuncs.c
            raise PgError(
                "55000",
                f'replication slot "{slot_name}" cannot be advanced',
                detail="This slot has never previously reserved WAL, or it has been invalidated.",
            )
        app.source.ingest()
        # never past what exists (PostgreSQL clamps to the flush position), so nothing written
        # later is skipped
        target = min(target, app.source.end_pos)
        if target < slot.confirmed_flush:
            raise PgError(
                "22023",
                f"cannot advance replication slot to {pgtypes.format_lsn(target)}, minimum is "
                f"{pgtypes.format_lsn(slot.confirmed_flush)}",
            )
        app.slots.acquire(slot_name, session.pid)
        try:
            app.slots.confirm(slot_name, target)
            app.slots.flush_dirty()
        finally:
            app.slots.release(slot_name, session.pid)
        return [(slot_name, app.slots.get(slot_name).confirmed_flush)]
