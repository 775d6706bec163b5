"""The running pgshim: wires the spool, decoding, slots, the status catalog and the wire server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgshim.config import Config
from pgshim.errors import PgError
from pgshim.logical.checkpoint import IngestCheckpoint
from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore
from pgshim.logical.positions import end_pos
from pgshim.logical.publications import PublicationStore
from pgshim.logical.relations import DeclaredColumn, RelationRegistry
from pgshim.logical.rowfilter import compile_filter
from pgshim.logical.snapshot import Snapshot
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.plugins import PluginContext, default_ahead_key
from pgshim.reddb.identity import IdentityMap
from pgshim.reddb.link.terms import TermHistory
from pgshim.reddb.link.wiring import RedDbLink, TermObservingFollower
from pgshim.server import PgServer
from pgshim.shared_state import SharedConnection, StateStoreError
from pgshim.spool import spool_path
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.index_store import SpoolIndexStore
from pgshim.spool.watch import SpoolWatcher
from pgshim.sql.bounds import Bound, paced
from pgshim.sql.catalog import Catalog, ServerFacts
from pgshim.sql.collections import CollectionTables, exported_position
from pgshim.sql.copy import (
    BINARY_HEADER,
    BINARY_TRAILER,
    CopyTarget,
    binary_row,
    copy_target,
    header_line,
    text_row,
)
from pgshim.sql.engine import Engine
from pgshim.sql.parse import StatementKind, in_message, parse_statement, split_statements
from pgshim.sql.privileges import role_of
from pgshim.sql.providers import CatalogRows, PublicationDDL, bootstrap_role
from pgshim.sql.results import ColumnDesc, CopyOutResult, Prepared
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.state import (
    STATE_FILE_NAME,
    StateError,
    ensure_meta,
    open_state,
    state_error,
    system_identifier,
)
from pgshim.versions import ServerVersion
from pgshim.views import register_status_views
from pgshim.walsender import commands
from pgshim.walsender.ahead import AheadKeys
from pgshim.walsender.executor import ReplicationExecutor
from pgshim.walsender.replicas import ReplicaRegistry
from pgshim.walsender.slots import PruneWatch, Slot, SlotStore
from pgshim.walsender.stream import ReplicationStream
from pgshim.wire.handler import ConnectionInfo

log = logging.getLogger(__name__)

SLOT_FLUSH_INTERVAL = 0.2


def _refusing_unusable_state(method: Any) -> Any:
    """Start-up steps that read the state database: a damaged or unreadable one stops the server
    with one line naming the file and what to do (``StateError``), not a traceback."""

    @functools.wraps(method)
    def reading_state(self: Application, *args: Any) -> Any:
        try:
            return method(self, *args)
        except StateStoreError as exc:
            raise StateError(f"pgshim: {exc}") from None
        except sqlite3.Error as exc:
            log.debug("the state database cannot be used", exc_info=True)
            raise state_error(Path(self.config.state_dir) / STATE_FILE_NAME, exc) from None

    return reading_state


class Application:
    @_refusing_unusable_state
    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_at = datetime.now(UTC)
        self.version = ServerVersion(config.server_version)
        self.conn = open_state(config.state_dir)
        # what the instances serving one RedDB source share: in state_url's database if set
        self.shared = self.conn
        if config.state_url is not None:
            self.shared = SharedConnection(config.state_url, application_name=config.instance())
            ensure_meta(self.shared)
        self.system_identifier = system_identifier(self.shared)
        self.identity = IdentityMap(self.shared)
        self.link = RedDbLink.from_config(config)
        self.relations = RelationRegistry(
            self.shared,
            schema=config.schema,
            declared=declared_columns(config),
            schema_source=self.link.schema_source(self.conn),
        )
        self.publications = PublicationStore(self.shared, default=config.default_publication)
        self.builder = TransactionBuilder(self.identity, self.relations)
        self.terms = TermHistory(self.conn)
        remote = self.link.follower()
        # a spool file's seek index is kept across restarts (a remote source has none)
        self._spool_index = None if remote else SpoolIndexStore(self.conn)
        # tells the slots what a prune removed (wired to them below)
        self._prunes = None if remote else PruneWatch(SpoolFollower(spool_path(config.spool)))
        self.follower = TermObservingFollower(remote or self._prunes, self.terms)
        self.source = ChangeSource(
            self.follower,
            self.builder,
            corruption_grace=config.corruption_grace,
            reorder_grace=config.reorder_grace,
            reorder_window=config.reorder_window,
            ring_size=config.ring_transactions,
            store=DecodedStore(Path(config.state_dir) / STORE_FILE_NAME, self.relations),
            watcher=None if remote else SpoolWatcher(spool_path(config.spool)),
        )
        self.ahead = AheadKeys(self.conn, self.source.store, config.render_ahead_formats)
        self.slots = SlotStore(
            self.shared,
            database=config.database,
            max_slots=config.max_replication_slots,
            instance=config.instance(),
            lease_seconds=config.slot_lease_seconds,
        )
        if self._prunes is not None:
            self._prunes.watch(self.slots)
        self.source.term_at = self.terms.term_at
        self.source.on_rewind(self._rewound)
        self.replicas = ReplicaRegistry(self.conn)
        if self.link.forwarder is not None:
            self.replicas.on_ack = self.link.forwarder.note
        self.plugin_context = PluginContext(
            publications=self.publications,
            server_version_num=self.version.num,
            history=self._history_from_start,
            old_rows_budget=config.query_memory * 1024 * 1024,
        )
        self.catalog = Catalog(
            ServerFacts(
                config.host,
                config.port,
                self.started_at,
                lambda: self.source.end_pos,
                version=self.version,
            ),
            Engine(
                memory_limit=f"{config.query_memory}MB",
                workers=config.query_workers,
                max_processes=config.max_connections,
            ),
        )
        self.publications_ddl = PublicationDDL(self.publications, self.relations.relations)
        self.catalog_rows = CatalogRows(
            self.relations.relations, self.publications, config.database,
            owner=bootstrap_role(config.users), major=self.version.major,
        )  # fmt: skip
        self.sessions: dict[int, Session] = {}
        # SELECT over collections: their rows as of a snapshot, replayed from the spool
        self.collections = CollectionTables(
            self.relations.relations,
            self.relations.find,
            self.source.history,
            self._end_now,
            lambda: self.follower.status.first_lsn,
            schema=config.schema,
            session_snapshot=lambda pid: getattr(self.sessions.get(pid), "snapshot_pos", None),
            exported=lambda name: exported_position(name, self.sessions, self.source.last_lsn),
        )
        self.catalog.register_collections(self.collections)
        self.server_settings = {
            "max_replication_slots": str(config.max_replication_slots),
            "max_wal_senders": str(config.max_connections),
            "wal_sender_timeout": _duration_setting(config.wal_sender_timeout),
            "statement_timeout": _duration_setting(config.statement_timeout),
            "port": str(config.port),
            "server_version": self.version.setting,
            "server_version_num": str(self.version.num),
        }
        self.server = PgServer(config, self.new_session, self.shutdown)
        self._flusher: asyncio.Task[None] | None = None
        register_status_views(self)

    # -- lifecycle -------------------------------------------------------------------------------

    async def run(self) -> None:
        # restart after the ingestion checkpoint; what a second does not ingest continues in the
        # background while the server listens
        self._resume()
        self.catalog.warm()  # the SQL engine's first processes start while the source catches up
        await self.source.catch_up()
        self.source.start()
        self.link.start()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())
        await self.server.start()
        self.server.install_signal_handlers()
        await self.server.serve_forever()

    @_refusing_unusable_state
    def _resume(self) -> None:
        self.source.resume(IngestCheckpoint(self.conn), self._spool_index)

    async def _flush_periodically(self) -> None:
        failed = None  # logged last: a full disk is logged once, not five times a second
        while True:
            await asyncio.sleep(SLOT_FLUSH_INTERVAL)
            try:
                self.slots.flush_dirty()
                self.slots.renew_leases()
                self.replicas.flush()
            except Exception as exc:
                if str(exc) != failed:
                    log.warning("persisting slot positions failed: %s", exc)
                failed = str(exc)
            else:
                failed = None

    async def shutdown(self) -> None:
        """Stop ingesting, persist what can be, close the files. Never fails, nor waits on a
        full disk: what cannot be written is logged (slots resume from what was written)."""
        if self._flusher is not None:
            self._flusher.cancel()
        steps: list[tuple[str, Any]] = [
            ("stopping ingestion", self.source.stop),
            ("stopping the RedDB link", self.link.stop),
            ("writing slot positions", self.slots.flush_dirty),
            ("giving up slot leases", self.slots.release_leases),
            ("writing replica status", self.replicas.flush),
            ("writing identities", self.builder.flush),
        ]
        if self.source.store is not None:
            steps.append(("closing the decoded store", self.source.store.close))
        steps.append(("stopping the SQL engine", self.catalog.engine.close))
        steps.append(("closing the state database", self.conn.close))
        if self.shared is not self.conn:
            steps.append(("closing the shared state database", self.shared.close))
        for doing, step in steps:
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                log.warning("shutdown: %s failed: %s", doing, exc)

    def new_session(self, info: ConnectionInfo) -> Session:
        session = Session(self, info)
        self.sessions[info.pid] = session
        return session

    # -- slots -----------------------------------------------------------------------------------

    def create_slot(
        self, name: str, plugin: str, *, temporary: bool, two_phase: bool, pid: int,
        from_oldest: bool = False, failover: bool = False,
    ) -> Slot:  # fmt: skip
        """A new slot starts at the current end of the spool, as in PostgreSQL; ``from_oldest``
        starts it before the oldest retained change so the consumer reads RedDB's history."""
        position = self.new_slot_position(from_oldest)
        slot = self.slots.create(
            name, plugin, temporary=temporary, two_phase=two_phase,
            confirmed_flush=position, restart_pos=position, pid=pid if temporary else None,
            failover=failover,
        )  # fmt: skip
        self.ahead.use(default_ahead_key(plugin))
        return slot

    def new_slot_position(self, from_oldest: bool) -> int:
        """Where a new slot starts: before the oldest retained change (``from_oldest`` or
        ``new_slot_position = "oldest"``), which needs nothing decoded, or at the end of what
        the spool holds now, once it is all ingested."""
        if from_oldest or self.config.new_slot_position == "oldest":
            return 0
        self.source.ingest()
        return self.source.end_pos

    def _history_from_start(self) -> Iterable[object]:
        return self.source.history(0)

    def _end_now(self) -> int:
        self.source.ingest()
        return self.source.end_pos

    async def copy_out(
        self, target: CopyTarget, snapshot_pos: int | None, bound: Bound
    ) -> CopyOutResult:
        """``COPY table TO STDOUT``: the collection as of the session's slot snapshot (a
        tablesync worker's), else as of now, rebuilt by replaying the spool in paced steps."""
        schema = target.schema or self.config.schema
        relation = self.relations.find(target.table)
        if relation is None or relation.schema != schema:
            raise PgError("42P01", f'relation "{schema}.{target.table}" does not exist')
        types = {column.name: column.type_oid for column in relation.columns}
        names = target.columns or list(types)
        for name in names:
            if name not in types:
                raise PgError(
                    "42703", f'column "{name}" of relation "{relation.name}" does not exist'
                )
        first = self.follower.status.first_lsn
        if first is not None and first > 1:
            raise PgError(
                "55000",
                f'cannot copy the initial data of "{relation.name}": RedDB pruned the spool '
                f"before LSN {first}, so its history is incomplete",
                hint="Subscribe with copy_data = false, or copy the data from RedDB first.",
            )
        self.source.ingest()
        upto = self.source.end_pos if snapshot_pos is None else snapshot_pos
        snapshot = Snapshot(relation.name, upto)
        async for tx in paced(self.source.history(0), bound):
            if not snapshot.apply(tx):
                break
        oids = [types[name] for name in names]
        keys = sorted(snapshot.rows)
        if target.where is not None:
            row_filter = compile_filter(target.where, relation.columns, relation.name)
            keys = [
                key
                for key in keys
                if row_filter.matches([snapshot.rows[key].get(c.name) for c in relation.columns])
            ]
        fmt = target.format
        rows = [[snapshot.rows[key].get(n) for n in names] for key in keys]
        if fmt.binary:
            lines = [BINARY_HEADER, *(binary_row(row, oids) for row in rows), BINARY_TRAILER]
        else:
            lines = [header_line(names, fmt)] if fmt.header else []
            lines += [text_row(row, oids, fmt) for row in rows]
        columns = [ColumnDesc(name, oid) for name, oid in zip(names, oids, strict=True)]
        return CopyOutResult(columns, lines, f"COPY {len(keys)}", binary=fmt.binary)

    def _rewound(self, position: int, why: str) -> None:
        """The source goes back to ``position`` (a record came late, or was written again):
        slots that confirmed past that record never get it, so they are lost; streams that sent
        past it end with an error, and their consumers, reconnecting from what they confirmed,
        receive it in order."""
        commit_end = end_pos(position >> 8)
        self.slots.invalidate_confirmed_past(commit_end - 1, f"{why}, after it confirmed past it")
        self.slots.streams.end_sent_past(
            position - 1,
            PgError(
                "55000",
                "logical decoding must start again from the slot's confirmed position",
                detail=why + ".",
                hint="Reconnect: the change is sent in order then.",
            ),
        )

    def replica_id(self, slot_name: str) -> str:
        return self.config.replica_id_format.format(slot=slot_name)

    @property
    def timeline(self) -> int:
        """RedDB's current term is the PostgreSQL timeline."""
        return self.terms.timeline


def declared_columns(config: Config) -> dict[str, list[DeclaredColumn]]:
    return {
        collection: [
            DeclaredColumn(c["name"], c.get("type", "text"), c.get("source")) for c in cols
        ]
        for collection, cols in config.declared_columns().items()
    }


def _duration_setting(seconds: float) -> str:
    """A time setting as SHOW prints it: 1min, 30s, 250ms, 0."""
    ms = round(seconds * 1000)
    for unit, size in (("min", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0"


class Session:
    """One client connection: SQL through the status catalog, replication commands through the
    walsender executor."""

    def __init__(self, app: Application, info: ConnectionInfo) -> None:
        self.app = app
        self.info = info
        role = role_of(app.config, info.user)
        self.sql = SqlSession(
            app.catalog,
            SessionInfo(
                user=info.user,
                database=info.database,
                application_name=info.application_name,
                pid=info.pid,
                client_addr=info.client_addr,
                client_port=info.client_port,
                backend_start=info.backend_start,
                replication=None if info.replication == "false" else info.replication,
                options=info.options,
                server_settings=app.server_settings,
                is_superuser=role.superuser,
                rolreplication=role.replication,
                read_only=info.database != app.config.database,
            ),
            app.publications_ddl,
        )
        self.sql.import_snapshot = app.collections.import_snapshot
        self.replication = ReplicationExecutor(app, self)
        self.stream: ReplicationStream | None = None
        self.snapshot_pos: int | None = None
        self._slot: str | None = None

    @property
    def tx_status(self) -> str:
        return self.sql.tx_status

    def split(self, sql: str) -> list[str | commands.Command]:
        """The statements of a Query message; on a walsender connection, a replication
        command is the whole message (as PostgreSQL's walsender reads it)."""
        try:
            if self.info.replication != "false" and commands.is_replication_command(sql):
                return [commands.parse_command(sql)]
            return list(split_statements(sql))
        except PgError:
            self.sql.fail()
            raise

    async def simple(self, stmt: str | commands.Command) -> Any:
        if not isinstance(stmt, str):
            return await self.replication.execute(stmt)
        if self.info.replication == "true":
            raise PgError(
                "0A000", "cannot execute SQL commands in WAL sender for physical replication"
            )
        try:
            statement = parse_statement(stmt)
            if statement.kind is not StatementKind.COPY:
                return await self.sql.execute(statement)
            self.sql.check_not_aborted(statement.kind)
            target = copy_target(statement.node, self.sql.info.is_superuser)
            if not (self.sql.info.is_superuser or self.sql.info.rolreplication):
                # a collection's rows are its owner's; tablesync workers connect as replication
                # roles, as PostgreSQL subscribers do
                raise PgError("42501", f"permission denied for table {target.table}")
            imported = self.sql.transaction_snapshot()  # SET TRANSACTION SNAPSHOT
            snapshot_pos = self.snapshot_pos if imported is None else imported
            return await self.app.copy_out(target, snapshot_pos, self.sql.bound())
        except PgError as error:
            self.sql.fail()
            in_message(error, stmt)
            raise

    async def prepare(self, stmt: str | commands.Command, param_oids: list[int]) -> Prepared:
        if not isinstance(stmt, str):
            raise PgError(
                "08P01", "extended query protocol not supported in a replication connection"
            )
        try:
            return await self.sql.prepare(stmt, param_oids)
        except PgError as error:
            in_message(error, stmt)
            raise

    async def execute(self, prepared: Prepared, params: list[Any]) -> Any:
        return await self.sql.execute_prepared(prepared, params)

    def reported_changes(self) -> list[tuple[str, str]]:
        return self.sql.reported_changes()

    def cursor_columns(self, name: str) -> list[Any] | None:
        return self.sql.cursors.columns(name)

    def close_cursor(self, name: str) -> None:
        self.sql.cursors.drop(name)

    def failed(self) -> None:
        self.sql.fail()

    def cancel(self) -> None:
        if self.stream is not None:
            self.stream.cancel()

    def attach_stream(
        self, slot: str, replica_id: str, stream: ReplicationStream, started: float
    ) -> None:
        """The session streams from ``slot`` now; the stream is registered in
        ``app.slots.streams`` (so invalidating the slot ends it) until it ends."""
        self.stream = stream
        self._slot = slot
        stream.on_end = self._stream_ended
        stream.replica_id = replica_id
        stream.guard = functools.partial(self.app.slots.check_lease, slot)
        self.app.slots.streams.add(slot, stream)

    def _stream_ended(self) -> None:
        """The stream ended (CopyDone, error, disconnect): the slot is released; a temporary
        slot stays with the session until it ends."""
        stream, slot = self.stream, self._slot
        self.stream, self._slot = None, None
        if slot is not None:
            if stream is not None:
                self.app.slots.streams.remove(slot, stream)
            with contextlib.suppress(PgError):
                self.app.slots.release(slot, self.info.pid)
        if stream is not None:
            self.app.replicas.unregister(stream.replica_id)

    async def close(self) -> None:
        """The connection ended, however (Terminate, EOF, a killed client): release its slots
        and drop its temporary slots."""
        if self.stream is not None:
            self._stream_ended()
        self.sql.close()
        self.app.slots.release_all(self.info.pid)
        self.app.sessions.pop(self.info.pid, None)
