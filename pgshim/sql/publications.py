"""CREATE / ALTER / DROP PUBLICATION: parsed here, carried out by the server's PublicationHandler."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgshim.errors import PgError

if TYPE_CHECKING:
    from pgshim.sql.session import PublicationHandler

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_ACTIONS = {"insert", "update", "delete", "truncate"}


@dataclass
class PublicationCommand:
    verb: str  # "create" | "alter" | "drop"
    name: str
    all_tables: bool = False
    tables: list[str] | None = None
    actions: set[str] | None = None  # None: not given (defaults / unchanged)
    alter_action: str = ""  # "add" | "set" | "drop" | "options"
    if_exists: bool = False

    @property
    def tag(self) -> str:
        return f"{self.verb.upper()} PUBLICATION"

    def apply(self, handler: PublicationHandler) -> None:
        if self.verb == "create":
            handler.create(self.name, self.all_tables, self.tables or [], self.actions)
        elif self.verb == "alter":
            handler.alter(self.name, self.alter_action, self.tables or [], self.actions)
        else:
            handler.drop(self.name, self.if_exists)


def _ident(text: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def _qualified(text: str) -> str:
    parts = re.findall(_IDENT, text)
    return ".".join(_ident(part) for part in parts)


def _table_list(text: str) -> list[str]:
    tables = []
    for item in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", text):
        item = re.sub(r"^\s*(TABLE|ONLY)\s+", "", item.strip(), flags=re.IGNORECASE)
        item = re.sub(r"^\s*ONLY\s+", "", item, flags=re.IGNORECASE).rstrip(" *")
        if not re.fullmatch(_QUALIFIED, item.strip()):
            raise PgError("0A000", f"publication table item not supported: {item.strip()}")
        tables.append(_qualified(item))
    return tables


def _with_options(text: str | None) -> set[str] | None:
    if not text:
        return None
    actions: set[str] | None = None
    for option in re.findall(r"(\w+)\s*(?:=\s*('(?:[^']|'')*'|\w+))?", text):
        key, value = option[0].lower(), option[1].strip("'")
        if key == "publish":
            actions = {part.strip().lower() for part in value.split(",") if part.strip()}
            unknown = actions - _ACTIONS
            if unknown:
                raise PgError(
                    "22023",
                    f'unrecognized value for publication option "publish": "{unknown.pop()}"',
                )
        elif key != "publish_via_partition_root":
            raise PgError("42601", f'unrecognized publication parameter: "{key}"')
    return actions


_CREATE = re.compile(
    rf"CREATE\s+PUBLICATION\s+({_IDENT})"
    r"(?:\s+FOR\s+(ALL\s+TABLES|TABLE\s+(.+?)))?"
    r"(?:\s+WITH\s*\((.*)\))?",
    re.IGNORECASE | re.DOTALL,
)
_ALTER = re.compile(
    rf"ALTER\s+PUBLICATION\s+({_IDENT})\s+"
    r"(?:(ADD|SET|DROP)\s+TABLE\s+(.+)|SET\s*\((.*)\))",
    re.IGNORECASE | re.DOTALL,
)
_DROP = re.compile(
    rf"DROP\s+PUBLICATION\s+(IF\s+EXISTS\s+)?({_IDENT}(?:\s*,\s*{_IDENT})*)(?:\s+(CASCADE|RESTRICT))?",
    re.IGNORECASE | re.DOTALL,
)


def parse_publication_ddl(stmt: str) -> PublicationCommand:
    text = stmt.strip().rstrip(";").strip()
    if match := _CREATE.fullmatch(text):
        name, target, tables, options = match.groups()
        all_tables = bool(target) and target.upper().startswith("ALL")
        return PublicationCommand(
            "create",
            _ident(name),
            all_tables=all_tables,
            tables=_table_list(tables) if tables else [],
            actions=_with_options(options),
        )
    if match := _ALTER.fullmatch(text):
        name, action, tables, options = match.groups()
        if action:
            return PublicationCommand(
                "alter", _ident(name), tables=_table_list(tables), alter_action=action.lower()
            )
        return PublicationCommand(
            "alter", _ident(name), actions=_with_options(options), alter_action="options"
        )
    if match := _DROP.fullmatch(text):
        names = [_ident(part) for part in re.findall(_IDENT, match.group(2))]
        if len(names) != 1:
            raise PgError("0A000", "dropping several publications at once is not supported")
        return PublicationCommand("drop", names[0], if_exists=bool(match.group(1)))
    raise PgError("42601", f"syntax error in publication command: {text[:60]}")
