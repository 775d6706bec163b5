"""pg_settings: the session's PostgreSQL settings, with PostgreSQL's units, types and contexts."""

from __future__ import annotations

from typing import Protocol

from pgshim.sql import gucs

COLUMNS = [
    ("name", "text"), ("setting", "text"), ("unit", "text"), ("category", "text"),
    ("short_desc", "text"), ("extra_desc", "text"), ("context", "text"), ("vartype", "text"),
    ("source", "text"), ("min_val", "text"), ("max_val", "text"), ("enumvals", "_text"),
    ("boot_val", "text"), ("reset_val", "text"), ("sourcefile", "text"), ("sourceline", "int4"),
    ("pending_restart", "bool"),
]  # fmt: skip


class Settings(Protocol):
    major: int  # the PostgreSQL version presented

    def settings(self) -> dict[str, str]: ...
    def reset_values(self) -> dict[str, str]: ...


def rows(session: Settings | None) -> list[tuple]:
    if session is None:
        return []
    current, reset = session.settings(), session.reset_values()
    return [
        _row(name, value, reset.get(name, value), session.major)
        for name, value in sorted(current.items(), key=lambda item: item[0].lower())
        if (guc := gucs.lookup(name, session.major)) is None or not guc.hidden
    ]


_SERVED_VERSION = frozenset({"server_version", "server_version_num"})
# string parameters PostgreSQL is built without a value for: NULL boot_val in pg_settings
_NO_BOOT_VALUE = frozenset({"config_file", "data_directory", "external_pid_file", "hba_file",
                            "ident_file", "timezone_abbreviations"})  # fmt: skip


def _row(name: str, value: str, reset: str, major: int) -> tuple:
    guc = gucs.lookup(name, major)
    if guc is None:  # a custom (dotted) placeholder
        return (
            name, value, None, "Customized Options", "", None, "user", "string",
            "default" if value == reset else "session", None, None, None, "", reset, None, None,
            False,
        )  # fmt: skip
    setting, reset_setting = _in_unit(guc, value), _in_unit(guc, reset)
    boot = _in_unit(guc, guc.boot_val)
    min_val, max_val = guc.min_val, guc.max_val
    if guc.name in _SERVED_VERSION:  # what the server was built as: the version pgshim presents
        boot = reset_setting
        if guc.vartype == "integer":
            min_val = max_val = reset_setting
    shown_boot = None if guc.name in _NO_BOOT_VALUE else boot
    return (
        guc.name, setting, guc.unit, guc.category, guc.short_desc, None, guc.context,
        guc.vartype, _source(guc, value, reset, boot), min_val, max_val,
        list(guc.enumvals) if guc.enumvals is not None else None, shown_boot, reset_setting, None,
        None, False,
    )  # fmt: skip


def _source(guc: gucs.Guc, value: str, reset: str, boot: str) -> str:
    if value != reset:
        return "session"
    if guc.context == "internal":
        return "default" if _in_unit(guc, reset) == boot else "override"
    return "default" if _in_unit(guc, reset) == boot else "configuration file"


def _in_unit(guc: gucs.Guc, value: str) -> str:
    """A value as pg_settings shows it: a number in the setting's unit."""
    if guc.vartype in ("integer", "real"):
        return gucs.setting_in_base(guc, value)
    if guc.vartype == "bool":
        return "on" if value.lower() in ("on", "true", "1", "yes") else "off"
    return value
