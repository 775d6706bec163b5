"""Per-connection SQL state: settings (SET/SHOW), transaction status, statement dispatch."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pgshim.errors import PgError
from pgshim.sql.catalog import Catalog
from pgshim.sql.results import ColumnDesc, CommandResult, Prepared, RowsResult
from pgshim.sql.statements import StatementKind, classify, strip_comments


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


class PublicationHandler(Protocol):
    def create(
        self, name: str, all_tables: bool, tables: list[str], actions: set[str] | None
    ) -> None: ...
    def alter(
        self, name: str, action: str, tables: list[str], actions: set[str] | None
    ) -> None: ...  # action: "add" | "set" | "drop" | "options"
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
    "server_version": "15.18 (pgshim 0.1.0)",
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
    "server_version_num": "150018",
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
_SET_RE = re.compile(
    r"SET\s+(?:(SESSION|LOCAL)\s+)?(?:([A-Za-z_][\w.]*)\s*(?:=|\bTO\b)\s*(.*)|TIME\s+ZONE\s+(.*))",
    re.IGNORECASE | re.DOTALL,
)


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
        self._settings = dict(DEFAULT_SETTINGS) | info.server_settings
        self._settings["application_name"] = info.application_name
        self._settings["session_authorization"] = info.user
        self._reset_values = dict(self._settings)
        for name, value in info.options.items():
            canonical = self._canonical(name, must_exist=False)
            self._settings[canonical] = _normalize(canonical, value)
            self._reset_values[canonical] = self._settings[canonical]
        self._local: dict[str, str] = {}  # values to restore when the transaction ends
        self._reported = {name: self._settings[name] for name in REPORTED}

    # --- settings ----------------------------------------------------------------------------

    def _canonical(self, name: str, must_exist: bool = True) -> str:
        lowered = name.strip().strip('"').lower()
        if lowered in _CANONICAL:
            return _CANONICAL[lowered]
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
        canonical = self._canonical(name, must_exist=True)
        if canonical in READ_ONLY:
            raise PgError("55P02", f'parameter "{canonical}" cannot be changed now')
        new = self._reset_values.get(canonical, "") if value is None else value
        new = _normalize(canonical, new)
        if is_local:
            if self.tx_status == "I":
                return self._settings.get(canonical, new)  # PG warns and ignores outside a block
            self._local.setdefault(canonical, self._settings.get(canonical, ""))
        self._settings[canonical] = new
        return new

    def reported_changes(self) -> list[tuple[str, str]]:
        """GUC_REPORT parameters whose value changed since the last call (ParameterStatus)."""
        changes = []
        for name in sorted(REPORTED):
            if self._settings[name] != self._reported[name]:
                changes.append((name, self._settings[name]))
                self._reported[name] = self._settings[name]
        return changes

    # --- execution ---------------------------------------------------------------------------

    def execute(self, stmt: str, params: list | None = None) -> RowsResult | CommandResult:
        try:
            classified = classify(stmt)
            if self.tx_status == "E" and classified.kind not in (
                StatementKind.ROLLBACK,
                StatementKind.COMMIT,
                StatementKind.ROLLBACK_TO,
            ):
                raise PgError(
                    "25P02",
                    "current transaction is aborted, commands ignored until end of transaction block",
                )
            return self._dispatch(stmt, classified.kind, classified.tag, params)
        except PgError:
            if self.tx_status == "T":
                self.tx_status = "E"
            raise

    def prepare(self, stmt: str, param_oids: list[int]) -> Prepared:
        classified = classify(stmt)
        if classified.kind is StatementKind.QUERY:
            oids, columns = self.catalog.describe(stmt, param_oids)
            return Prepared(stmt, oids, columns)
        if classified.kind is StatementKind.SHOW:
            name = _show_target(stmt)
            return Prepared(stmt, list(param_oids), self._show_columns(name))
        return Prepared(stmt, list(param_oids), None)

    def execute_prepared(self, prepared: Prepared, params: list) -> RowsResult | CommandResult:
        return self.execute(prepared.sql, params)

    def _dispatch(
        self, stmt: str, kind: StatementKind, tag: str, params: list | None
    ) -> RowsResult | CommandResult:
        if kind is StatementKind.QUERY:
            return self.catalog.query(stmt, params, self)
        if kind is StatementKind.SHOW:
            return self._show(_show_target(stmt))
        if kind is StatementKind.SET:
            return self._set(stmt)
        if kind is StatementKind.RESET:
            target = strip_comments(stmt).split(None, 1)[1].strip().rstrip(";").strip()
            if target.upper() == "ALL":
                for name, value in self._reset_values.items():
                    if name not in READ_ONLY:
                        self._settings[name] = value
            else:
                self.set_setting(target, None, False)
            return CommandResult("RESET")
        if kind is StatementKind.BEGIN:
            if self.tx_status == "I":
                self.tx_status = "T"
            return CommandResult(tag)
        if kind in (StatementKind.COMMIT, StatementKind.ROLLBACK):
            failed = self.tx_status == "E"
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
            return CommandResult(tag)
        if kind is StatementKind.NOOP:
            return CommandResult(tag)
        if kind is StatementKind.PUBLICATION:
            return self._publication(stmt)
        raise PgError("0A000", f"{tag} is not supported here")

    def _end_transaction(self) -> None:
        self._settings.update(self._local)
        self._local.clear()
        self.tx_status = "I"

    def _set(self, stmt: str) -> CommandResult:
        text = strip_comments(stmt).strip().rstrip(";").strip()
        upper = text.upper()
        if upper.startswith("SET TRANSACTION") or upper.startswith("SET SESSION CHARACTERISTICS"):
            return CommandResult("SET")
        match = _SET_RE.fullmatch(text)
        if match is None:
            raise PgError("42601", f'syntax error at or near "{text.split()[-1]}"')
        scope, name, value, time_zone = match.groups()
        if time_zone is not None:
            name, value = "TimeZone", time_zone
        is_local = (scope or "").upper() == "LOCAL"
        value = value.strip()
        self.set_setting(name, None if value.upper() == "DEFAULT" else _set_value(value), is_local)
        return CommandResult("SET")

    def _show_columns(self, name: str) -> list[ColumnDesc]:
        if name.upper() == "ALL":
            return [ColumnDesc(column, 25) for column in ("name", "setting", "description")]
        return [ColumnDesc(self._canonical(name).lower(), 25)]

    def _show(self, name: str) -> RowsResult:
        if name.upper() == "ALL":
            rows = [(key, value, "") for key, value in sorted(self._settings.items(), key=_lower)]
            return RowsResult(self._show_columns(name), rows, "SHOW")
        value = self.get_setting(name)
        return RowsResult(self._show_columns(name), [(value,)], "SHOW")

    # --- publications ------------------------------------------------------------------------

    def _publication(self, stmt: str) -> CommandResult:
        from pgshim.sql.publications import parse_publication_ddl

        command = parse_publication_ddl(stmt)
        if self.publications is None:
            raise PgError("0A000", "publications are not supported by this server")
        command.apply(self.publications)
        return CommandResult(command.tag)


def _lower(item: tuple[str, str]) -> str:
    return item[0].lower()


def _show_target(stmt: str) -> str:
    parts = strip_comments(stmt).strip().rstrip(";").split(None, 1)
    if len(parts) < 2:
        raise PgError("42601", "syntax error at end of input")
    target = parts[1].strip()
    if target.upper().replace(" ", "") in ("TIMEZONE",):
        return "TimeZone"
    if target.upper().startswith("TRANSACTION ISOLATION"):
        return "transaction_isolation"
    return target.strip('"')


def _set_value(text: str) -> str:
    """The value of SET x = a, 'b', c as PostgreSQL stores it (list items joined by ', ')."""
    items = []
    for item in re.findall(r"'(?:[^']|'')*'|[^,\s][^,]*", text):
        item = item.strip()
        items.append(item[1:-1].replace("''", "'") if item.startswith("'") else item)
    return ", ".join(items)


_TIMEZONE_ALIASES = {"utc": "UTC", "etc/utc": "Etc/UTC", "gmt": "GMT", "z": "UTC"}


def _normalize(name: str, value: str) -> str:
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
        order = next((p for p in parts if p in ("MDY", "DMY", "YMD")), "MDY")
        style = {"POSTGRES": "Postgres", "GERMAN": "German"}.get(style, style)
        return f"{style}, {order}"
    if name == "TimeZone":
        return _TIMEZONE_ALIASES.get(value.lower(), value)
    if name == "IntervalStyle":
        return value.lower()
    return value
