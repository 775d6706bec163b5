"""Splitting a simple-Query string into statements and classifying each one (pure)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pgshim.errors import PgError

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(sql: str) -> list[str]:
    """Split on top-level semicolons; quotes, dollar quotes and comments are respected.

    Empty statements are dropped, so a wholly empty query gives [] (EmptyQueryResponse).
    """
    statements: list[str] = []
    start = 0
    position = 0
    length = len(sql)
    while position < length:
        char = sql[position]
        if char in "'\"":
            position = _skip_quoted(sql, position, char)
        elif sql.startswith("--", position):
            newline = sql.find("\n", position)
            position = length if newline < 0 else newline + 1
        elif sql.startswith("/*", position):
            position = _skip_block_comment(sql, position)
        elif (
            char == "$"
            and (match := _DOLLAR_TAG.match(sql, position))
            and not _in_word(sql, position)
        ):
            end = sql.find(match.group(0), match.end())
            position = length if end < 0 else end + len(match.group(0))
        elif char == ";":
            statements.append(sql[start:position])
            position += 1
            start = position
        else:
            position += 1
    statements.append(sql[start:])
    return [stmt.strip() for stmt in statements if not _is_blank(stmt)]


def _in_word(sql: str, position: int) -> bool:
    return position > 0 and (sql[position - 1].isalnum() or sql[position - 1] == "_")


def _skip_quoted(sql: str, position: int, quote: str) -> int:
    backslash_escapes = (
        quote == "'"
        and position > 0
        and sql[position - 1] in "eE"
        and not _in_word(sql, position - 1)
    )
    position += 1
    while position < len(sql):
        char = sql[position]
        if backslash_escapes and char == "\\":
            position += 2
            continue
        if char == quote:
            if sql.startswith(quote, position + 1):
                position += 2
                continue
            return position + 1
        position += 1
    return position


def _skip_block_comment(sql: str, position: int) -> int:
    depth = 0
    while position < len(sql):
        if sql.startswith("/*", position):
            depth += 1
            position += 2
        elif sql.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return position


def _is_blank(stmt: str) -> bool:
    return strip_comments(stmt).strip() == ""


def strip_comments(stmt: str) -> str:
    """The statement with its comments replaced by spaces (quoted text is kept as is)."""
    out: list[str] = []
    position = 0
    while position < len(stmt):
        char = stmt[position]
        if char in "'\"":
            end = _skip_quoted(stmt, position, char)
            out.append(stmt[position:end])
            position = end
        elif stmt.startswith("--", position):
            newline = stmt.find("\n", position)
            position = len(stmt) if newline < 0 else newline
            out.append(" ")
        elif stmt.startswith("/*", position):
            position = _skip_block_comment(stmt, position)
            out.append(" ")
        else:
            out.append(char)
            position += 1
    return "".join(out)


class StatementKind(enum.Enum):
    QUERY = "query"  # SELECT / WITH / VALUES / TABLE
    SHOW = "show"
    SET = "set"
    RESET = "reset"
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    ROLLBACK_TO = "rollback_to"
    COPY = "copy"
    NOOP = (
        "noop"  # LISTEN, UNLISTEN, DISCARD, DEALLOCATE, CLOSE, CHECKPOINT: accepted, nothing to do
    )
    PUBLICATION = "publication"  # CREATE / ALTER / DROP PUBLICATION


@dataclass(frozen=True, slots=True)
class Classified:
    kind: StatementKind
    tag: str  # CommandComplete tag for commands (e.g. "SET", "BEGIN", "DISCARD ALL")
    words: tuple[str, ...]  # leading keywords, upper case


_WRITE_COMMANDS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "COMMENT",
    "REINDEX",
    "VACUUM",
    "ANALYZE",
    "CLUSTER",
    "REFRESH",
    "SECURITY",
    "IMPORT",
    "LOCK",
    "CALL",
    "DO",
    "REASSIGN",
}
_NOOP_TAGS = {"LISTEN": "LISTEN", "UNLISTEN": "UNLISTEN", "CHECKPOINT": "CHECKPOINT"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\S")


def leading_words(stmt: str, count: int = 4) -> tuple[str, ...]:
    words = _WORD.findall(strip_comments(stmt).lstrip("( \t\r\n"))
    return tuple(word.upper() for word in words[:count])


def classify(stmt: str) -> Classified:
    """Classify one statement; raises PgError for what pgshim will not execute."""
    words = leading_words(stmt)
    first = words[0] if words else ""
    second = words[1] if len(words) > 1 else ""
    kind_and_tag: dict[str, tuple[StatementKind, str]] = {
        "SELECT": (StatementKind.QUERY, "SELECT"),
        "WITH": (StatementKind.QUERY, "SELECT"),
        "VALUES": (StatementKind.QUERY, "SELECT"),
        "TABLE": (StatementKind.QUERY, "SELECT"),
        "SHOW": (StatementKind.SHOW, "SHOW"),
        "SET": (StatementKind.SET, "SET"),
        "RESET": (StatementKind.RESET, "RESET"),
        "BEGIN": (StatementKind.BEGIN, "BEGIN"),
        "START": (StatementKind.BEGIN, "START TRANSACTION"),
        "COMMIT": (StatementKind.COMMIT, "COMMIT"),
        "END": (StatementKind.COMMIT, "COMMIT"),
        "ABORT": (StatementKind.ROLLBACK, "ROLLBACK"),
        "SAVEPOINT": (StatementKind.SAVEPOINT, "SAVEPOINT"),
        "RELEASE": (StatementKind.RELEASE, "RELEASE"),
        "COPY": (StatementKind.COPY, "COPY"),
    }
    if first == "ROLLBACK":
        if "TO" in words[1:3]:
            return Classified(StatementKind.ROLLBACK_TO, "ROLLBACK", words)
        return Classified(StatementKind.ROLLBACK, "ROLLBACK", words)
    if first in ("CREATE", "ALTER", "DROP") and second == "PUBLICATION":
        return Classified(StatementKind.PUBLICATION, f"{first} PUBLICATION", words)
    if first in kind_and_tag:
        kind, tag = kind_and_tag[first]
        return Classified(kind, tag, words)
    if first in _NOOP_TAGS:
        return Classified(StatementKind.NOOP, _NOOP_TAGS[first], words)
    if first == "DISCARD":
        return Classified(StatementKind.NOOP, f"DISCARD {second}".strip(), words)
    if first in ("DEALLOCATE", "CLOSE"):
        return Classified(
            StatementKind.NOOP, first + (" ALL" if "ALL" in words[1:3] else ""), words
        )
    if first in _WRITE_COMMANDS:
        command = (
            first if first not in ("CREATE", "DROP", "ALTER") or not second else f"{first} {second}"
        )
        raise PgError("25006", f"cannot execute {command} in a read-only transaction")
    feature = " ".join(words[:2]) if words else "statement"
    raise PgError("0A000", f"{feature} is not supported by pgshim")
