"""pg_settings: the session's PostgreSQL settings, with PostgreSQL's units, types and contexts."""

from __future__ import annotations

import re
from typing import Protocol

from pgshim.errors import PgError
from pgshim.sql.bounds import duration_ms

COLUMNS = [
    ("name", "text"), ("setting", "text"), ("unit", "text"), ("category", "text"),
    ("short_desc", "text"), ("extra_desc", "text"), ("context", "text"), ("vartype", "text"),
    ("source", "text"), ("min_val", "text"), ("max_val", "text"), ("enumvals", "_text"),
    ("boot_val", "text"), ("reset_val", "text"), ("sourcefile", "text"), ("sourceline", "int4"),
    ("pending_restart", "bool"),
]  # fmt: skip


class Settings(Protocol):
    def settings(self) -> dict[str, str]: ...
    def reset_values(self) -> dict[str, str]: ...


# name -> (vartype, unit, context, short description); time units are PostgreSQL's base units
_KNOWN: dict[str, tuple[str, str | None, str, str]] = {
    "statement_timeout": ("integer", "ms", "user", "Sets the maximum allowed duration of any statement."),
    "lock_timeout": ("integer", "ms", "user", "Sets the maximum allowed duration of any wait for a lock."),
    "idle_in_transaction_session_timeout": ("integer", "ms", "user", "Sets the maximum allowed idle time between queries, when in a transaction."),
    "wal_sender_timeout": ("integer", "ms", "user", "Sets the maximum time to wait for WAL replication."),
    "work_mem": ("integer", "kB", "user", "Sets the maximum memory to be used for query workspaces."),
    "wal_segment_size": ("integer", "B", "internal", "Shows the size of write ahead log segments."),
    "block_size": ("integer", None, "internal", "Shows the size of a disk block."),
    "max_identifier_length": ("integer", None, "internal", "Shows the maximum identifier length."),
    "max_replication_slots": ("integer", None, "postmaster", "Sets the maximum number of simultaneously defined replication slots."),
    "max_wal_senders": ("integer", None, "postmaster", "Sets the maximum number of simultaneously running WAL sender processes."),
    "server_version_num": ("integer", None, "internal", "Shows the server version as an integer."),
    "extra_float_digits": ("integer", None, "user", "Sets the number of digits displayed for floating-point values."),
    "port": ("integer", None, "postmaster", "Sets the TCP port the server listens on."),
    "data_directory_mode": ("integer", None, "internal", "Shows the mode of the data directory."),
    "integer_datetimes": ("bool", None, "internal", "Shows whether datetimes are integer based."),
    "in_hot_standby": ("bool", None, "internal", "Shows whether hot standby is currently active."),
    "is_superuser": ("bool", None, "internal", "Shows whether the current user is a superuser."),
    "standard_conforming_strings": ("bool", None, "user", "Causes '...' strings to treat backslashes literally."),
    "default_transaction_read_only": ("bool", None, "user", "Sets the default read-only status of new transactions."),
    "transaction_read_only": ("bool", None, "user", "Sets the current transaction's read-only status."),
    "row_security": ("bool", None, "user", "Enable row security."),
    "jit": ("bool", None, "user", "Allow JIT compilation."),
    "wal_level": ("enum", None, "postmaster", "Sets the level of information written to the WAL."),
    "synchronous_commit": ("enum", None, "user", "Sets the current transaction's synchronization level."),
    "client_min_messages": ("enum", None, "user", "Sets the message levels that are sent to the client."),
    "log_min_messages": ("enum", None, "superuser", "Sets the message levels that are logged."),
    "bytea_output": ("enum", None, "user", "Sets the output format for bytea."),
    "IntervalStyle": ("enum", None, "user", "Sets the display format for interval values."),
    "transaction_isolation": ("enum", None, "user", "Sets the current transaction's isolation level."),
    "default_transaction_isolation": ("enum", None, "user", "Sets the transaction isolation level of each new transaction."),
}  # fmt: skip
_MEMORY_KB = {"kB": 1, "MB": 1024, "GB": 1024 * 1024, "TB": 1024**3}
_MEMORY = re.compile(r"(\d+)\s*(kB|MB|GB|TB)?")


def rows(session: Settings | None) -> list[tuple]:
    if session is None:
        return []
    current, reset = session.settings(), session.reset_values()
    return [
        _row(name, value, reset.get(name, value))
        for name, value in sorted(current.items(), key=lambda item: item[0].lower())
    ]


def _row(name: str, value: str, reset: str) -> tuple:
    vartype, unit, context, description = _KNOWN.get(name, ("string", None, "user", ""))
    setting, reset_setting = _in_unit(name, value, unit), _in_unit(name, reset, unit)
    return (
        name, setting, unit, "", description, None, context, vartype,
        "default" if value == reset else "session", None, None, None, reset_setting,
        reset_setting, None, None, False,
    )  # fmt: skip


def _in_unit(name: str, value: str, unit: str | None) -> str:
    """A value as pg_settings shows it: a number in the setting's unit."""
    try:
        if unit == "ms":
            return str(round(duration_ms(name, value)))
        if unit == "kB" or unit == "B":
            match = _MEMORY.fullmatch(value.strip())
            if match is None:
                return value
            kb = int(match.group(1)) * _MEMORY_KB[match.group(2) or "kB"]
            return str(kb if unit == "kB" else kb * 1024)
    except PgError:
        return value
    if name in _KNOWN and _KNOWN[name][0] == "bool":
        return "on" if value.lower() in ("on", "true", "1", "yes") else "off"
    return value
