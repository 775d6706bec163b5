"""Per-connection SQL state: settings (SET/SHOW), transaction status, statement dispatch."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Protocol

from pglast import ast, enums
from pglast.stream import RawStream

from pgshim.errors import PgError
from pgshim.sql import gucs
from pgshim.sql.bounds import Bound, duration_ms
from pgshim.sql.catalog import Catalog
from pgshim.sql.check import check_no_writes, check_query
from pgshim.sql.cursors import Cursors
from pgshim.sql.engine_errors import EngineQueryError, place
from pgshim.sql.parse import Statement, StatementKind, parse_statements, stack_depth_exceeded
from pgshim.sql.resolve import check_references, column_owner
from pgshim.sql.results import ColumnDesc, CommandResult, Prepared, RowsResult
from pgshim.versions import DEFAULT as DEFAULT_VERSION

if TYPE_CHECKING:
    from pgshim.sql.publications import TableSpec


@dataclass
class SessionInfo:
    user: str = "postgres"
    database: str = "postgres"
    application_name: str = ""
    pid: int = 0
    client_addr: str | None = None
    client_port: int | None = None
    backend_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    replication: str | None = None  # None, "database" or "true"
    options: dict[str, str] = field(default_factory=dict)  # startup GUCs (-c name=value, ...)
    server_settings: dict[str, str] = field(default_factory=dict)  # what the server runs with
    is_superuser: bool = True  # the role's attributes, as pg_roles shows them
    rolreplication: bool = True
    read_only: bool = False  # a status-only database (postgres, template1): nothing changes


class PublicationHandler(Protocol):
    """``schemas``: the command's TABLES IN SCHEMA, None standing for CURRENT_SCHEMA."""

    def create(
        self, name: str, all_tables: bool, tables: list[TableSpec],
        schemas: list[str | None], actions: set[str] | None,
    ) -> None: ...  # fmt: skip
    def alter(
        self, name: str, action: str, tables: list[TableSpec],
        schemas: list[str | None], actions: set[str] | None,
    ) -> None: ...  # action: "add" | "set" | "drop" | "options"  # fmt: skip
    def drop(self, name: str, if_exists: bool) -> None: ...


# name -> default, in PG's spelling. The first 13 are what PG15 reports in ParameterStatus.
DEFAULT_SETTINGS: dict[str, str] = {
    "application_name": "",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "default_transaction_read_only": "off",
    "in_hot_standby": "off",
    "integer_datetimes": "on",
    "IntervalStyle": "postgres",
    "is_superuser": "on",
    "server_encoding": "UTF8",
    "server_version": DEFAULT_VERSION.setting,
    "session_authorization": "postgres",
    "standard_conforming_strings": "on",
    "TimeZone": "Etc/UTC",
    "search_path": '"$user", public',
    "extra_float_digits": "1",
    "statement_timeout": "0",
    "lock_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "jit": "off",
    "data_directory_mode": "0700",
    "wal_segment_size": "16MB",
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_sender_timeout": "60s",
    "server_version_num": str(DEFAULT_VERSION.num),
    "transaction_isolation": "read committed",
    "transaction_read_only": "on",
    "default_transaction_isolation": "read committed",
    "bytea_output": "hex",
    "lc_messages": "C",
    "lc_monetary": "C",
    "lc_numeric": "C",
    "lc_time": "C",
    "max_identifier_length": "63",
    "block_size": "8192",
    "synchronous_commit": "on",
    "row_security": "on",
    "work_mem": "4MB",
    "client_min_messages": "notice",
    "log_min_messages": "warning",
}
REPORTED = {
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
}
READ_ONLY = {
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "in_hot_standby",
    "data_directory_mode",
    "wal_segment_size",
    "wal_level",
    "max_wal_senders",
    "max_replication_slots",
    "max_identifier_length",
    "block_size",
    "is_superuser",
    "lc_collate",
    "lc_ctype",
}
_CANONICAL = {name.lower(): name for name in DEFAULT_SETTINGS}
# what SET cannot change, by the parameter's context (PostgreSQL's messages)
_CONTEXT_ERRORS = {
    "internal": 'parameter "{}" cannot be changed',
    "postmaster": 'parameter "{}" cannot be changed without restarting the server',
    "sighup": 'parameter "{}" cannot be changed now',
    "backend": 'parameter "{}" cannot be set after connection start',
    "superuser-backend": 'parameter "{}" cannot be set after connection start',
}


@cache
def boot_settings(major: int = DEFAULT_VERSION.major) -> dict[str, str]:
    """Every parameter of PostgreSQL ``major`` at its built-in value (as SHOW prints it), then
    pgshim's."""
    values = {}
    for guc in gucs.all_gucs(major):
        try:
            values[guc.name] = gucs.parse(guc, guc.boot_val, major)
        except PgError:
            values[guc.name] = guc.boot_val
    return values | DEFAULT_SETTINGS


class SqlSession:
    def __init__(
        self,
        catalog: Catalog,
        info: SessionInfo,
        publications: PublicationHandler | None = None,
    ) -> None:
        self.catalog = catalog
        self.info = info
        self.publications = publications
        self.tx_status = "I"
        self.user = info.user
        self.database = info.database
        self.pid = info.pid
        self.major = (
            int(info.server_settings.get("server_version_num", DEFAULT_VERSION.num)) // 10000
        )
        self._settings = dict(boot_settings(self.major)) | info.server_settings
        self._settings["application_name"] = info.application_name
        self._settings["session_authorization"] = info.user
        self._settings["is_superuser"] = "on" if info.is_superuser else "off"
        self._reset_values = dict(self._settings)
        for name, value in info.options.items():
            canonical = self._canonical(name, must_exist=False)
            self._settings[canonical] = _normalize(canonical, value, self.major)
            self._reset_values[canonical] = self._settings[canonical]
        self._local: dict[str, str] = {}  # values to restore when the transaction ends
        self._reported = {name: self._settings[name] for name in REPORTED}
        # the transaction's snapshot (SET TRANSACTION SNAPSHOT, or what a REPEATABLE READ
        # transaction's first read of a collection saw): a position in the change stream
        self.import_snapshot: Callable[[str], int] | None = None  # exported name -> position
        self._snapshot_pos: int | None = None
        self._isolation: str | None = None  # the isolation level BEGIN named
        self._queried = False  # a query ran in this transaction
        self.cursors = Cursors()

    # --- settings ----------------------------------------------------------------------------

    def _canonical(self, name: str, must_exist: bool = True) -> str:
        lowered = name.strip().strip('"').lower()
        if lowered in _CANONICAL:
            return _CANONICAL[lowered]
        guc = gucs.lookup(lowered, self.major)
        if guc is not None:
            return guc.name
        if lowered in (key.lower() for key in self._settings):
            return next(key for key in self._settings if key.lower() == lowered)
        if must_exist and "." not in lowered:
            raise PgError("42704", f'unrecognized configuration parameter "{name.strip()}"')
        return lowered

    def get_setting(self, name: str) -> str:
        canonical = self._canonical(name)
        if canonical not in self._settings:
            raise PgError("42704", f'unrecognized configuration parameter "{name}"')
        return self._settings[canonical]

    def set_setting(self, name: str, value: str | None, is_local: bool) -> str:
        canonical, new = self.check_setting(name, value)
        if is_local:
            if self.tx_status == "I":
                return self._settings.get(canonical, new)  # PG warns and ignores outside a block
            self._local.setdefault(canonical, self._settings.get(canonical, ""))
        self._settings[canonical] = new
        return new

    def check_setting(self, name: str, value: str | None) -> tuple[str, str]:
        """The setting's name and the value SET would give it (None: its reset value), or
        PostgreSQL's error for setting it; nothing changes."""
        canonical = self._canonical(name, must_exist=True)
        guc = gucs.lookup(canonical, self.major)
        context = guc.context if guc is not None else "user"
        if canonical in READ_ONLY and context not in _CONTEXT_ERRORS:
            context = "sighup"
        if context in _CONTEXT_ERRORS:
            raise PgError("55P02", _CONTEXT_ERRORS[context].format(canonical))
        if context == "superuser" and not self.info.is_superuser:
            raise PgError("42501", f'permission denied to set parameter "{canonical}"')
        new = self._reset_values.get(canonical, "") if value is None else value
        return canonical, _normalize(canonical, new, self.major)

    def settings(self) -> dict[str, str]:
        return dict(self._settings)

    def reset_values(self) -> dict[str, str]:
        return dict(self._reset_values)

    def reported_changes(self) -> list[tuple[str, str]]:
        """GUC_REPORT parameters whose value changed since the last call (ParameterStatus)."""
        changes = []
        for name in sorted(REPORTED):
            if self._settings[name] != self._reported[name]:
                changes.append((name, self._settings[name]))
                self._reported[name] = self._settings[name]
        return changes

    # --- execution ---------------------------------------------------------------------------

    def bound(self) -> Bound:
        """The limits of the statement about to run (statement_timeout, as set now)."""
        timeout = duration_ms("statement_timeout", self._settings["statement_timeout"])
        return Bound(timeout).start()

    async def execute(
        self, stmt: Statement | str, params: list | None = None
    ) -> RowsResult | CommandResult:
        """Run one statement (text is parsed first and must hold exactly one)."""
        try:
            if isinstance(stmt, str):
                stmt = _single(stmt)
            self.check_not_aborted(stmt.kind)
            try:
                return await self._dispatch(stmt, params)
            except RecursionError:  # a tree too deep for the checker or the rewrite
                raise stack_depth_exceeded() from None
        except PgError:
            self.fail()
            raise

    def check_not_aborted(self, kind: StatementKind) -> None:
        if self.tx_status == "E" and kind not in _ENDS_FAILED_TRANSACTION:
            raise PgError(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )

    def fail(self) -> None:
        """An error inside a transaction block aborts it."""
        if self.tx_status == "T":
            self.tx_status = "E"

    async def prepare(self, stmt: Statement | str, param_oids: list[int]) -> Prepared:
        if isinstance(stmt, str):
            stmt = _single(stmt)
        if stmt.kind is StatementKind.QUERY:
            try:
                used = check_query(stmt.node, self.catalog.names())
                check_references(stmt.node, self.catalog.relation_columns, stmt.source)
            except RecursionError:
                raise stack_depth_exceeded() from None
            try:
                oids, columns = await self.catalog.describe(
                    stmt.text, param_oids + [0] * (used - len(param_oids)), self.bound()
                )
            except EngineQueryError as error:
                raise self._placed(error, stmt) from None
            return Prepared(stmt, oids, columns)
        if stmt.kind is StatementKind.SHOW:
            return Prepared(stmt, list(param_oids), self._show_columns(stmt.node.name))
        if stmt.kind is StatementKind.FETCH and not stmt.node.ismove:
            # the cursor's columns, if it is open now (PostgreSQL's FetchStatementTargetList)
            return Prepared(stmt, list(param_oids), self.cursors.columns(stmt.node.portalname))
        return Prepared(stmt, list(param_oids), None)

    def _check_query(self, stmt: Statement, params: list | None) -> None:
        """A query's checks before it runs: the allow-list, its references, its parameters."""
        used = check_query(stmt.node, self.catalog.names())
        if self.info.read_only:
            check_no_writes(stmt.node)
        check_references(stmt.node, self.catalog.relation_columns, stmt.source)
        if used > len(params or []):
            raise PgError("42P02", f"there is no parameter ${len(params or []) + 1}")

    async def _query(self, stmt: Statement, params: list | None) -> RowsResult:
        self._queried = self._queried or self.tx_status == "T"
        try:
            return await self.catalog.query(stmt.text, params, self, self.bound())
        except EngineQueryError as error:
            raise self._placed(error, stmt) from None

    def close(self) -> None:
        """The connection ended: its cursors give their engine processes back."""
        self.cursors.close(None)

    def _placed(self, error: EngineQueryError, stmt: Statement) -> PgError:
        """An engine error with PostgreSQL's position and names (see engine_errors.py)."""
        owner = partial(column_owner, stmt.node, self.catalog.relation_columns)
        return place(error, stmt.node, stmt.source, owner)

    async def execute_prepared(
        self, prepared: Prepared, params: list
    ) -> RowsResult | CommandResult:
        return await self.execute(prepared.statement, params)

    async def _dispatch(self, stmt: Statement, params: list | None) -> RowsResult | CommandResult:
        kind, node, tag = stmt.kind, stmt.node, stmt.tag
        if kind is StatementKind.QUERY:
            self._check_query(stmt, params)
            return await self._query(stmt, params)
        if kind is StatementKind.DECLARE:
            query = Statement(StatementKind.QUERY, "SELECT", node.query, RawStream()(node.query),
                              stmt.source)  # fmt: skip
            self._check_query(query, params)
            self.cursors.check_declare(node, in_block=self.tx_status != "I")
            result = await self._query(query, params)
            self.cursors.add(node, result, in_block=self.tx_status != "I")
            return CommandResult(tag)
        if kind is StatementKind.FETCH:
            return await self.cursors.fetch(node, self.bound())
        if kind is StatementKind.CLOSE:
            return CommandResult(self.cursors.close(node.portalname))
        if kind is StatementKind.SHOW:
            return self._show(node.name)
        if kind is StatementKind.SET:
            return self._set(node)
        if kind is StatementKind.RESET:
            if node.kind == enums.VariableSetKind.VAR_RESET_ALL:
                for name, value in self._reset_values.items():
                    if name not in READ_ONLY and _settable(name, self.major):
                        self._settings[name] = value
            else:
                self.set_setting(node.name, None, False)
            return CommandResult("RESET")
        if kind is StatementKind.BEGIN:
            if self.tx_status == "I":
                self.tx_status = "T"
                self._isolation = _isolation_of(node.options)
            return CommandResult(tag)
        if kind in (StatementKind.COMMIT, StatementKind.ROLLBACK):
            failed = self.tx_status == "E"
            self.cursors.end_transaction(committed=not failed and kind is StatementKind.COMMIT)
            self._end_transaction()
            return CommandResult("ROLLBACK" if failed or kind is StatementKind.ROLLBACK else tag)
        if kind in (StatementKind.SAVEPOINT, StatementKind.RELEASE, StatementKind.ROLLBACK_TO):
            if self.tx_status == "I":
                command = {
                    StatementKind.SAVEPOINT: "SAVEPOINT",
                    StatementKind.RELEASE: "RELEASE SAVEPOINT",
                    StatementKind.ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
                }[kind]
                raise PgError("25P01", f"{command} can only be used in transaction blocks")
            if kind is StatementKind.ROLLBACK_TO:
                self.tx_status = "T"
            self.cursors.savepoint(kind.value, node.savepoint_name)
            return CommandResult(tag)
        if kind is StatementKind.NOOP:
            if tag == "LOCK TABLE":
                self._lock_table(node)
            return CommandResult(tag)
        if kind is StatementKind.PUBLICATION:
            if self.info.read_only:
                raise PgError("25006", f"cannot execute {tag} in a read-only transaction")
            return self._publication(node)
        raise PgError("0A000", f"{tag} is not supported here")

    def _end_transaction(self) -> None:
        self._settings.update(self._local)
        self._local.clear()
        self.tx_status = "I"
        self._snapshot_pos, self._isolation, self._queried = None, None, False

    # --- transaction snapshots -----------------------------------------------------------------

    def transaction_snapshot(self) -> int | None:
        """The position the transaction reads collections as of, once it has one."""
        return self._snapshot_pos if self.tx_status != "I" else None

    def pin_transaction_snapshot(self, position: int) -> None:
        """A read of collections saw ``position``: a REPEATABLE READ transaction keeps it."""
        if self.tx_status != "I" and self._snapshot_pos is None and self._repeatable():
            self._snapshot_pos = position

    def _repeatable(self) -> bool:
        levels = (
            self._isolation,
            self._settings.get("transaction_isolation") if self.tx_status != "I" else None,
            self._settings.get("default_transaction_isolation"),
        )
        return any(str(level).lower() in ("repeatable read", "serializable") for level in levels)

    def _import_snapshot(self, node: ast.VariableSetStmt) -> CommandResult:
        """SET TRANSACTION SNAPSHOT 'name', with PostgreSQL's checks (ImportSnapshot)."""
        if self._queried or self._snapshot_pos is not None:
            raise PgError("25001", "SET TRANSACTION SNAPSHOT must be called before any query")
        if not self._repeatable():
            raise PgError(
                "0A000",
                "a snapshot-importing transaction must have isolation level SERIALIZABLE or "
                "REPEATABLE READ",
            )
        if self.import_snapshot is None:
            raise PgError("0A000", "pgshim cannot import snapshots in this session")
        position = self.import_snapshot(_setting_value(node.args))
        if self.tx_status != "I":
            self._snapshot_pos = position
        return CommandResult("SET")

    def _set(self, node: ast.VariableSetStmt) -> CommandResult:
        kinds = enums.VariableSetKind
        if node.kind == kinds.VAR_SET_MULTI and node.name == "TRANSACTION SNAPSHOT":
            return self._import_snapshot(node)
        if node.kind == kinds.VAR_SET_MULTI:
            self._set_transaction(node)
            return CommandResult("SET")
        if node.kind == kinds.VAR_SET_CURRENT:
            return CommandResult("SET")  # SET ... FROM CURRENT
        if node.name in _ROLE_SETTINGS:
            value = _setting_value(node.args) if node.kind == kinds.VAR_SET_VALUE else None
            if value not in (None, self.user):
                raise PgError("42501", f"permission denied to set {_ROLE_SETTINGS[node.name]}")
            return CommandResult("SET")
        value = _setting_value(node.args) if node.kind == kinds.VAR_SET_VALUE else None
        self.set_setting(node.name, value, bool(node.is_local))
        return CommandResult("SET")

    def _lock_table(self, node: ast.LockStmt) -> None:
        """LOCK TABLE ... IN ACCESS SHARE MODE (pg_dump): only in a transaction block; nothing
        in pgshim's catalog changes under a reader, so there is nothing to lock."""
        if self.tx_status == "I":
            raise PgError("25P01", "LOCK TABLE can only be used in transaction blocks")

    def _set_transaction(self, node: ast.VariableSetStmt) -> None:
        """SET TRANSACTION ... (this transaction only) and SET SESSION CHARACTERISTICS AS
        TRANSACTION ... (the defaults of later ones)."""
        session = node.name.upper() == "SESSION CHARACTERISTICS"
        if not session and self.tx_status == "I":
            return  # PostgreSQL warns that SET TRANSACTION needs a transaction block
        for item in node.args or ():
            if not isinstance(item, ast.DefElem):
                continue
            name = f"default_{item.defname}" if session else item.defname
            value = _setting_value((item.arg,))
            if item.defname != "transaction_isolation":
                value = "on" if value.lower() in ("1", "true", "on") else "off"
            self.set_setting(name, value, is_local=not session)

    def _show_columns(self, name: str) -> list[ColumnDesc]:
        if name.lower() == "all":
            return [ColumnDesc(column, 25) for column in ("name", "setting", "description")]
        return [ColumnDesc(self._canonical(name).lower(), 25)]

    def _show(self, name: str) -> RowsResult:
        if name.lower() == "all":
            rows = [
                (key, value, _description(key, self.major))
                for key, value in sorted(self._settings.items(), key=_lower)
                if not _hidden(key, self.major)
            ]
            return RowsResult(self._show_columns(name), rows, "SHOW")
        value = self.get_setting(name)
        return RowsResult(self._show_columns(name), [(value,)], "SHOW")

    # --- publications ------------------------------------------------------------------------

    def _publication(self, node: ast.Node) -> CommandResult:
        from pgshim.sql.publications import publication_command

        command = publication_command(node)
        if self.publications is None:
            raise PgError("0A000", "publications are not supported by this server")
        if not self.info.is_superuser:
            # publications shape what every subscriber receives; pgshim's belong to the
            # bootstrap superuser, and no other role may create objects in the database
            if command.verb == "create":
                raise PgError("42501", f"permission denied for database {self.database}")
            raise PgError("42501", f"must be owner of publication {command.name}")
        command.apply(self.publications)
        return CommandResult(command.tag)


def _lower(item: tuple[str, str]) -> str:
    return item[0].lower()


def _description(name: str, major: int) -> str:
    guc = gucs.lookup(name, major)
    return guc.short_desc if guc is not None else ""


def _hidden(name: str, major: int) -> bool:
    guc = gucs.lookup(name, major)
    return guc is not None and guc.hidden


def _settable(name: str, major: int) -> bool:
    guc = gucs.lookup(name, major)
    return guc is None or guc.context not in _CONTEXT_ERRORS


def _single(sql: str) -> Statement:
    statements = parse_statements(sql)
    if len(statements) != 1:
        raise PgError("42601", "cannot insert multiple commands into a prepared statement")
    return statements[0]


_ENDS_FAILED_TRANSACTION = (StatementKind.ROLLBACK, StatementKind.COMMIT, StatementKind.ROLLBACK_TO)
_ROLE_SETTINGS = {"role": "role", "session_authorization": "session authorization"}


def _isolation_of(options: tuple | None) -> str | None:
    """The isolation level BEGIN names, if any."""
    for option in options or ():
        if isinstance(option, ast.DefElem) and option.defname == "transaction_isolation":
            return str(getattr(getattr(option.arg, "val", None), "sval", "")) or None
    return None


def _setting_value(args: tuple | None) -> str:
    """SET's value as PostgreSQL keeps it: list items joined by ', '."""
    items = []
    for arg in args or ():
        if isinstance(arg, ast.A_Const) and not arg.isnull:
            value = arg.val
            for attribute in ("sval", "ival", "fval", "boolval"):
                if getattr(value, attribute, None) is not None:
                    items.append(str(getattr(value, attribute)))
                    break
            else:
                items.append("")
        else:
            items.append(RawStream()(arg))
    return ", ".join(items)


_TIME_SETTINGS = {"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"}
_TIMEZONE_ALIASES = {"utc": "UTC", "etc/utc": "Etc/UTC", "gmt": "GMT", "z": "UTC"}


def _normalize(name: str, value: str, major: int) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        value = value[1:-1]
    if name == "client_encoding":
        upper = value.upper().replace("-", "").replace("_", "")
        if upper in ("UTF8", "UNICODE"):
            return "UTF8"
        raise PgError("22023", f'invalid value for parameter "client_encoding": "{value}"')
    if name == "DateStyle":
        parts = [p.strip().upper() for p in value.split(",")]
        style = next((p for p in parts if p in ("ISO", "SQL", "POSTGRES", "GERMAN")), "ISO")
        known = ("ISO", "SQL", "POSTGRES", "GERMAN", "MDY", "DMY", "YMD", "US", "EURO",
                 "EUROPEAN", "NONEURO", "NONEUROPEAN", "DEFAULT")  # fmt: skip
        if any(part not in known for part in parts):
            raise gucs.invalid("DateStyle", value)
        default_order = "DMY" if style == "GERMAN" else "MDY"
        order = next((p for p in parts if p in ("MDY", "DMY", "YMD")), default_order)
        style = {"POSTGRES": "Postgres", "GERMAN": "German"}.get(style, style)
        return f"{style}, {order}"
    if name == "TimeZone":
        return _time_zone(value)
    if name == "search_path":
        return ", ".join(_quote_schema(item) for item in gucs.split_list(value))
    guc = gucs.lookup(name, major)
    if guc is not None:
        value = gucs.parse(guc, value, major)  # PostgreSQL refuses a bad value at SET, not later
    if name in _TIME_SETTINGS:
        duration_ms(name, value)
    return value


def _time_zone(value: str) -> str:
    """A zone name in the zone database's spelling, an offset, or PostgreSQL's 22023."""
    if value.lower() in _TIMEZONE_ALIASES:
        return _TIMEZONE_ALIASES[value.lower()]
    if _OFFSET_ZONE.fullmatch(value):
        return value
    zones = _zone_names()
    if not zones:  # no zone database to check against
        return value
    if value.lower() in zones:
        return zones[value.lower()]
    raise gucs.invalid("TimeZone", value)


@cache
def _zone_names() -> dict[str, str]:
    try:
        return {name.lower(): name for name in zoneinfo.available_timezones()}
    except Exception:
        return {}


_OFFSET_ZONE = re.compile(r"(?i)(utc|gmt)?\s*[-+]?\d{1,2}(:\d{2}(:\d{2})?)?")


def _quote_schema(item: str) -> str:
    """A search_path item as PostgreSQL prints it: quoted unless a plain lower-case name."""
    if item.startswith('"') and item.endswith('"') and len(item) >= 2:
        item = item[1:-1].replace('""', '"')
    if _PLAIN_NAME.fullmatch(item) and item.lower() not in _RESERVED:
        return item
    return '"' + item.replace('"', '""') + '"'


_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_RESERVED = {"user", "all", "select", "from", "where", "table", "order", "group"}
