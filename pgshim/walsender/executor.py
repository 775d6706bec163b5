"""Runs replication commands (IDENTIFY_SYSTEM, CREATE/DROP/READ_REPLICATION_SLOT, START_REPLICATION...)
on a walsender connection, against the server's slots, change source and replica registry."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.positions import covered_lsn
from pgshim.plugins import check_plugin, load_plugin
from pgshim.sql.results import ColumnDesc, CommandResult, RowsResult
from pgshim.walsender import commands as cmd
from pgshim.walsender.slots import lost_slot_error
from pgshim.walsender.stream import ReplicationStream, StreamState, start_position

if TYPE_CHECKING:
    from pgshim.app import Application, Session

TEXT, INT4, INT8 = pgtypes.TEXT, pgtypes.INT4, pgtypes.INT8


def _text_columns(*names: str) -> list[ColumnDesc]:
    return [ColumnDesc(name, TEXT) for name in names]


def plugin_options(options: list[tuple[str, str | None]]) -> dict[str, str | None]:
    """START_REPLICATION's option list as the plugin gets it; a repeated name is an error."""
    out: dict[str, str | None] = {}
    for name, value in options:
        if name in out:
            raise PgError("42601", "conflicting or redundant options")
        out[name] = value
    return out


class ReplicationExecutor:
    def __init__(self, app: Application, session: Session) -> None:
        self.app = app
        self.session = session

    async def execute(self, command: cmd.Command):  # noqa: ANN201 - one of the result types
        handler = getattr(self, "_" + type(command).__name__, None)
        if handler is None:
            raise PgError("0A000", f"{type(command).__name__} is not supported by pgshim")
        return await handler(command)

    # -- commands --------------------------------------------------------------------------------

    async def _IdentifySystem(self, _: cmd.IdentifySystem) -> RowsResult:
        app, info = self.app, self.session.info
        dbname = info.database if info.replication == "database" else None
        row = (
            str(app.system_identifier),
            app.timeline,
            pgtypes.format_lsn(app.source.end_pos),
            dbname,
        )
        columns = [
            ColumnDesc("systemid", TEXT),
            ColumnDesc("timeline", INT4, 4),
            ColumnDesc("xlogpos", TEXT),
            ColumnDesc("dbname", TEXT),
        ]
        return RowsResult(columns, [row], "IDENTIFY_SYSTEM")

    async def _Show(self, command: cmd.Show) -> RowsResult:
        result = await self.session.sql.execute(f'SHOW "{command.name}"')
        assert isinstance(result, RowsResult)
        result.tag = "SHOW"
        return result

    async def _TimelineHistory(self, command: cmd.TimelineHistory) -> RowsResult:
        name, content = self.app.terms.history_file(command.tli)
        columns = [ColumnDesc("filename", TEXT, typmod=0), ColumnDesc("content", TEXT, typmod=0)]
        return RowsResult(columns, [(name, content)], "TIMELINE_HISTORY")

    async def _CreateSlot(self, command: cmd.CreateSlot) -> RowsResult:
        session = self.session
        if command.kind != "logical":
            raise PgError("0A000", "pgshim serves logical replication only")
        if session.info.replication != "database":
            raise PgError("55000", "logical decoding requires a database connection")
        in_tx = session.sql.tx_status != "I"
        if command.snapshot == "use" and not in_tx:
            raise PgError(
                "25001",
                "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'use') must be called inside a transaction",
            )
        if command.snapshot == "export" and in_tx:
            raise PgError(
                "25001",
                "CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export') must not be called inside a transaction",
            )
        assert command.plugin is not None
        if command.failover and self.app.version.major < 17:
            raise PgError("XX000", "unrecognized option: failover")
        check_plugin(command.plugin)
        slot = self.app.create_slot(
            command.name,
            command.plugin,
            temporary=command.temporary,
            two_phase=command.two_phase,
            pid=session.info.pid,
            failover=command.failover,
        )
        if command.snapshot == "use":
            session.snapshot_pos = slot.confirmed_flush
        snapshot_name = None
        if command.snapshot == "export":
            snapshot_name = f"{session.info.pid:08X}-{slot.confirmed_flush >> 8 & 0xFFFFFFFF:08X}-1"
        row = (slot.name, pgtypes.format_lsn(slot.confirmed_flush), snapshot_name, command.plugin)
        columns = _text_columns("slot_name", "consistent_point", "snapshot_name", "output_plugin")
        return RowsResult(columns, [row], "CREATE_REPLICATION_SLOT")

    async def _DropSlot(self, command: cmd.DropSlot) -> CommandResult:
        slots = self.app.slots
        if command.wait:
            await slots.drop_wait(command.name, pid=self.session.info.pid)
        else:
            slots.drop(command.name, pid=self.session.info.pid)
        self.app.replicas.forget_slot(command.name)
        return CommandResult("DROP_REPLICATION_SLOT")

    async def _ReadSlot(self, command: cmd.ReadSlot) -> RowsResult:
        columns = [
            ColumnDesc("slot_type", TEXT),
            ColumnDesc("restart_lsn", TEXT),
            ColumnDesc("restart_tli", INT8, 8),
        ]
        if self.app.slots.get(command.name) is not None:
            raise PgError(
                "0A000", "cannot use READ_REPLICATION_SLOT with a logical replication slot"
            )
        return RowsResult(columns, [(None, None, None)], "READ_REPLICATION_SLOT")

    async def _AlterSlot(self, command: cmd.AlterSlot) -> CommandResult:
        major = self.app.version.major
        if major < 17:  # a command PostgreSQL 17 brought: before it, SQL that does not parse
            raise PgError("42601", 'syntax error at or near "ALTER_REPLICATION_SLOT"')
        known = ("failover", "two_phase") if major >= 18 else ("failover",)
        flags: dict[str, bool] = {}
        for name, value in command.options:
            if name not in known:
                raise PgError("XX000", f"unrecognized option: {name}")
            if name in flags:
                raise PgError("42601", "conflicting or redundant options")
            flags[name] = cmd.option_boolean(name, value)
        self.app.slots.alter(command.name, pid=self.session.info.pid, **flags)
        return CommandResult("ALTER_REPLICATION_SLOT")

    async def _BaseBackup(self, _: cmd.BaseBackup) -> CommandResult:
        raise PgError(
            "0A000", "BASE_BACKUP is not supported: pgshim serves logical replication only"
        )

    async def _UploadManifest(self, _: cmd.UploadManifest) -> CommandResult:
        raise PgError("0A000", "UPLOAD_MANIFEST is not supported by pgshim")

    async def _StartReplication(self, command: cmd.StartReplication) -> ReplicationStream:
        app, session = self.app, self.session
        if command.kind != "logical":
            raise PgError(
                "0A000",
                "physical replication is not supported: pgshim serves logical replication only",
            )
        if session.info.replication != "database":
            raise PgError("55000", "logical decoding requires a database connection")
        if session.sql.tx_status != "I":
            raise PgError("25001", "START_REPLICATION cannot run inside a transaction block")
        assert command.slot is not None
        slot = app.slots.get(command.slot)
        if slot is None:
            raise PgError("42704", f'replication slot "{command.slot}" does not exist')
        plugin = load_plugin(slot.plugin, plugin_options(command.options), app.plugin_context)
        # the slot as acquire() leaves it: on a shared state database it reads the slot again
        # (another instance may have moved its positions) and the object looked up above is old
        slot = app.slots.acquire(slot.name, session.info.pid)
        try:
            if slot.lost:
                raise lost_slot_error(slot)
            if getattr(plugin, "two_phase", False):
                app.slots.enable_two_phase(slot.name, slot.confirmed_flush)
            app.ahead.use(plugin.ahead_key)
            # a requested start in the future streams from the end of what exists: never
            # advertised, never confirmed, so later changes are not skipped
            start = start_position(command.lsn, slot.confirmed_flush, app.source.end_pos)
            state = StreamState(plugin, start, stats=slot.stats)
            replica_id = app.replica_id(slot.name)
            app.replicas.register(replica_id, slot.name, session.info.application_name)
            stream = ReplicationStream(
                state,
                app.source,
                on_confirm=lambda flush: app.slots.confirm(slot.name, flush),
                on_feedback=lambda fb: app.replicas.feedback(
                    replica_id, fb.write, fb.flush, fb.apply, covered_lsn
                ),
                on_sent=lambda tx: app.replicas.note_sent(replica_id, tx.last_lsn),
                wal_sender_timeout=app.config.wal_sender_timeout,
            )
        except BaseException:
            app.slots.release(slot.name, session.info.pid)
            raise
        session.attach_stream(slot.name, replica_id, stream, started=time.time())
        return stream
