"""The replication command grammar: what clients send as simple Query on replication connections.

Pure: text in, a command dataclass out, or ``PgError``. Lexical rules follow PostgreSQL's replication
scanner: keywords are case-sensitive upper case, other identifiers are down-cased (ASCII only) and cut
to 63 bytes, ``"quoted"`` identifiers keep their case, ``'strings'`` know only the ``''`` escape,
unsigned integers, LSNs ``hex/hex``, any other character stands for itself. An optional ``;`` may end
a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pgshim.errors import PgError

OptionValue = str | int | None
SnapshotAction = Literal["export", "nothing", "use"]
SlotKind = Literal["logical", "physical"]

FIRST_TOKEN_KEYWORDS = frozenset(
    {
        "IDENTIFY_SYSTEM",
        "BASE_BACKUP",
        "START_REPLICATION",
        "CREATE_REPLICATION_SLOT",
        "DROP_REPLICATION_SLOT",
        "READ_REPLICATION_SLOT",
        "TIMELINE_HISTORY",
        "SHOW",
        "ALTER_REPLICATION_SLOT",
        "UPLOAD_MANIFEST",
    }
)
KEYWORDS = FIRST_TOKEN_KEYWORDS | {
    "TIMELINE",
    "PHYSICAL",
    "RESERVE_WAL",
    "LOGICAL",
    "SLOT",
    "TEMPORARY",
    "TWO_PHASE",
    "EXPORT_SNAPSHOT",
    "NOEXPORT_SNAPSHOT",
    "USE_SNAPSHOT",
    "WAIT",
}

NAME_MAX_BYTES = 63  # NAMEDATALEN - 1


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentifySystem:
    pass


@dataclass(frozen=True, slots=True)
class Show:
    name: str  # dotted names joined with "."


@dataclass(frozen=True, slots=True)
class TimelineHistory:
    tli: int


@dataclass(frozen=True, slots=True)
class CreateSlot:
    name: str
    temporary: bool = False
    kind: SlotKind = "logical"
    plugin: str | None = None  # None for physical slots
    snapshot: SnapshotAction = "export"
    two_phase: bool = False
    reserve_wal: bool = False
    failover: bool = False


@dataclass(frozen=True, slots=True)
class DropSlot:
    name: str
    wait: bool = False


@dataclass(frozen=True, slots=True)
class ReadSlot:
    name: str


@dataclass(frozen=True, slots=True)
class AlterSlot:
    name: str
    options: list[tuple[str, OptionValue]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StartReplication:
    slot: str | None
    kind: SlotKind
    lsn: int
    timeline: int | None = None  # physical only
    # in order, duplicates kept: output plugins reject duplicates themselves
    options: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BaseBackup:
    options: list[tuple[str, OptionValue]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UploadManifest:
    pass


Command = (
    IdentifySystem
    | Show
    | TimelineHistory
    | CreateSlot
    | DropSlot
    | ReadSlot
    | AlterSlot
    | StartReplication
    | BaseBackup
    | UploadManifest
)


# --- lexer ----------------------------------------------------------------------------------------

_WHITESPACE = " \t\n\r\f\v"
_IDENT_RE = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z_0-9$\u0080-\U0010ffff]*")
_DIGITS_RE = re.compile(r"[0-9]+")
_LSN_RE = re.compile(r"([0-9A-Fa-f]+)/([0-9A-Fa-f]+)")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["KEYWORD", "IDENT", "SCONST", "UCONST", "RECPTR", "CHAR", "EOF"]
    value: str | int


_EOF = Token("EOF", "")


def syntax_error(message: str = "syntax error") -> PgError:
    return PgError("42601", message)


def _truncate_identifier(name: str) -> str:
    encoded = name.encode("utf-8", "surrogatepass")
    if len(encoded) <= NAME_MAX_BYTES:
        return name
    return encoded[:NAME_MAX_BYTES].decode("utf-8", "ignore")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; the list always ends with an EOF token."""
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while pos < end:
        char = text[pos]
        if char in _WHITESPACE:
            pos += 1
        elif char == "'":
            value, pos = _scan_string(text, pos + 1)
            tokens.append(Token("SCONST", value))
        elif char == '"':
            close = text.find('"', pos + 1)
            if close < 0:
                raise syntax_error("unterminated quoted string")
            tokens.append(Token("IDENT", _truncate_identifier(text[pos + 1 : close])))
            pos = close + 1
        else:
            token, pos = _scan_word(text, pos)
            tokens.append(token)
    tokens.append(_EOF)
    return tokens


def _scan_string(text: str, pos: int) -> tuple[str, int]:
    parts: list[str] = []
    while True:
        close = text.find("'", pos)
        if close < 0:
            raise syntax_error("unterminated quoted string")
        parts.append(text[pos:close])
        if text.startswith("''", close):
            parts.append("'")
            pos = close + 2
        else:
            return "".join(parts), close + 1


def _scan_word(text: str, pos: int) -> tuple[Token, int]:
    # The longest match wins, as in a flex scanner; a keyword beats an identifier of equal length.
    ident = _IDENT_RE.match(text, pos)
    digits = _DIGITS_RE.match(text, pos)
    lsn = _LSN_RE.match(text, pos)
    ident_end = ident.end() if ident else pos
    digits_end = digits.end() if digits else pos
    lsn_end = lsn.end() if lsn else pos
    longest = max(ident_end, digits_end, lsn_end)
    if longest == pos:
        return Token("CHAR", text[pos]), pos + 1
    if lsn and lsn_end == longest:
        high, low = int(lsn.group(1), 16), int(lsn.group(2), 16)
        if high > 0xFFFFFFFF or low > 0xFFFFFFFF:
            raise syntax_error("invalid streaming start location")
        return Token("RECPTR", (high << 32) | low), longest
    if digits and digits_end == longest:
        return Token("UCONST", int(digits.group())), longest
    word = text[pos:ident_end]
    if word in KEYWORDS:
        return Token("KEYWORD", word), ident_end
    return Token("IDENT", _truncate_identifier(word.translate(_ASCII_LOWER))), ident_end


def is_replication_command(sql: str) -> bool:
    """True when the first token is a replication keyword (``SHOW`` included); otherwise it is SQL."""
    stripped = sql.lstrip(_WHITESPACE)
    match = _IDENT_RE.match(stripped)
    return match is not None and match.group() in FIRST_TOKEN_KEYWORDS


# --- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0

    @property
    def current(self) -> Token:
        return self._tokens[self._index]

    def advance(self) -> Token:
        token = self._tokens[self._index]
        if token.kind != "EOF":
            self._index += 1
        return token

    def accept_keyword(self, word: str) -> bool:
        if self.current == Token("KEYWORD", word):
            self._index += 1
            return True
        return False

    def accept_char(self, char: str) -> bool:
        if self.current == Token("CHAR", char):
            self._index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise syntax_error()

    def expect_char(self, char: str) -> None:
        if not self.accept_char(char):
            raise syntax_error()

    def expect(self, kind: str) -> str | int:
        if self.current.kind != kind:
            raise syntax_error()
        return self.advance().value

    def ident(self) -> str:
        return str(self.expect("IDENT"))

    def finish(self) -> None:
        self.accept_char(";")
        if self.current.kind != "EOF":
            raise syntax_error()


def parse_command(sql: str) -> Command:
    """Parse one replication command; grammar errors raise ``PgError('42601', ...)``."""
    parser = _Parser(tokenize(sql))
    token = parser.advance()
    if token.kind != "KEYWORD" or token.value not in _COMMANDS:
        raise syntax_error()
    command = _COMMANDS[str(token.value)](parser)
    parser.finish()
    return command


def _identify_system(_: _Parser) -> Command:
    return IdentifySystem()


def _upload_manifest(_: _Parser) -> Command:
    return UploadManifest()


def _show(parser: _Parser) -> Command:
    parts = [parser.ident()]
    while parser.accept_char("."):
        parts.append(parser.ident())
    return Show(".".join(parts))


def _timeline(parser: _Parser) -> int:
    tli = int(parser.expect("UCONST"))
    if tli <= 0 or tli > 0xFFFFFFFF:
        raise syntax_error(f"invalid timeline {tli}")
    return tli


def _timeline_history(parser: _Parser) -> Command:
    return TimelineHistory(_timeline(parser))


def _read_slot(parser: _Parser) -> Command:
    return ReadSlot(parser.ident())


def _drop_slot(parser: _Parser) -> Command:
    name = parser.ident()
    return DropSlot(name, wait=parser.accept_keyword("WAIT"))


def _alter_slot(parser: _Parser) -> Command:
    name = parser.ident()
    parser.expect_char("(")
    return AlterSlot(name, _generic_options(parser))


def _base_backup(parser: _Parser) -> Command:
    if parser.accept_char("("):
        return BaseBackup(_generic_options(parser))
    return BaseBackup()


def _generic_options(parser: _Parser) -> list[tuple[str, OptionValue]]:
    """``name [value] [, ...] )`` after the opening parenthesis; names may be keywords."""
    options: list[tuple[str, OptionValue]] = []
    while True:
        token = parser.advance()
        if token.kind == "IDENT":
            name = str(token.value)
        elif token.kind == "KEYWORD":
            name = str(token.value).lower()
        else:
            raise syntax_error()
        value: OptionValue = None
        if parser.current.kind in ("IDENT", "SCONST", "UCONST"):
            value = parser.advance().value
        options.append((name, value))
        if parser.accept_char(")"):
            return options
        parser.expect_char(",")


def _start_replication(parser: _Parser) -> Command:
    slot: str | None = None
    if parser.accept_keyword("SLOT"):
        slot = parser.ident()
        if parser.accept_keyword("LOGICAL"):
            lsn = int(parser.expect("RECPTR"))
            return StartReplication(slot, "logical", lsn, options=_plugin_options(parser))
    parser.accept_keyword("PHYSICAL")
    lsn = int(parser.expect("RECPTR"))
    timeline = _timeline(parser) if parser.accept_keyword("TIMELINE") else None
    return StartReplication(slot, "physical", lsn, timeline)


def _plugin_options(parser: _Parser) -> list[tuple[str, str | None]]:
    options: list[tuple[str, str | None]] = []
    if not parser.accept_char("("):
        return options
    while True:
        name = parser.ident()
        value = str(parser.advance().value) if parser.current.kind == "SCONST" else None
        options.append((name, value))
        if parser.accept_char(")"):
            return options
        parser.expect_char(",")


_LEGACY_CREATE_OPTIONS: dict[str, tuple[str, OptionValue]] = {
    "EXPORT_SNAPSHOT": ("snapshot", "export"),
    "NOEXPORT_SNAPSHOT": ("snapshot", "nothing"),
    "USE_SNAPSHOT": ("snapshot", "use"),
    "RESERVE_WAL": ("reserve_wal", "true"),
    "TWO_PHASE": ("two_phase", "true"),
}


def _create_slot(parser: _Parser) -> Command:
    name = parser.ident()
    temporary = parser.accept_keyword("TEMPORARY")
    plugin: str | None = None
    if parser.accept_keyword("LOGICAL"):
        kind: SlotKind = "logical"
        plugin = parser.ident()
    else:
        parser.expect_keyword("PHYSICAL")
        kind = "physical"
    options: list[tuple[str, OptionValue]] = []
    if parser.accept_char("("):
        options = _generic_options(parser)
    else:
        while parser.current.kind == "KEYWORD" and parser.current.value in _LEGACY_CREATE_OPTIONS:
            options.append(_LEGACY_CREATE_OPTIONS[str(parser.advance().value)])
    return _apply_create_options(CreateSlot(name, temporary, kind, plugin), options)


def _apply_create_options(base: CreateSlot, options: list[tuple[str, OptionValue]]) -> CreateSlot:
    """Validate options the way the walsender does before it creates anything."""
    allowed = {"snapshot", "two_phase", "failover"} if base.kind == "logical" else {"reserve_wal"}
    seen: set[str] = set()
    snapshot: SnapshotAction = "export"
    flags = {"two_phase": False, "reserve_wal": False, "failover": False}
    for name, value in options:
        if name not in allowed:
            raise PgError("XX000", f"unrecognized option: {name}")
        if name in seen:
            raise syntax_error("conflicting or redundant options")
        seen.add(name)
        if name == "snapshot":
            snapshot = _snapshot_action(name, value)
        else:
            flags[name] = option_boolean(name, value)
    return CreateSlot(
        name=base.name,
        temporary=base.temporary,
        kind=base.kind,
        plugin=base.plugin,
        snapshot=snapshot,
        two_phase=flags["two_phase"],
        reserve_wal=flags["reserve_wal"],
        failover=flags["failover"],
    )


def _snapshot_action(name: str, value: OptionValue) -> SnapshotAction:
    action = _option_string(name, value)
    if action == "export":
        return "export"
    if action == "nothing":
        return "nothing"
    if action == "use":
        return "use"
    raise PgError(
        "22023", f'unrecognized value for CREATE_REPLICATION_SLOT option "{name}": "{action}"'
    )


def _option_string(name: str, value: OptionValue) -> str:
    if value is None:
        raise syntax_error(f"{name} requires a parameter")
    return str(value)


def option_boolean(name: str, value: OptionValue) -> bool:
    """A generic option's boolean: absent = true, 0/1, true/false/on/off (any case)."""
    if value is None:
        return True
    if isinstance(value, int):
        if value in (0, 1):
            return bool(value)
    else:
        lowered = value.translate(_ASCII_LOWER)
        if lowered in ("true", "on"):
            return True
        if lowered in ("false", "off"):
            return False
    raise syntax_error(f"{name} requires a Boolean value")


_COMMANDS = {
    "IDENTIFY_SYSTEM": _identify_system,
    "SHOW": _show,
    "TIMELINE_HISTORY": _timeline_history,
    "CREATE_REPLICATION_SLOT": _create_slot,
    "DROP_REPLICATION_SLOT": _drop_slot,
    "READ_REPLICATION_SLOT": _read_slot,
    "ALTER_REPLICATION_SLOT": _alter_slot,
    "START_REPLICATION": _start_replication,
    "BASE_BACKUP": _base_backup,
    "UPLOAD_MANIFEST": _upload_manifest,
}
