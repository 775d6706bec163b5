"""SQL text to statements, by PostgreSQL's own grammar (pglast wraps libpg_query).

One parser decides how many statements a Query message holds and what each one is; what later
stages see of a statement is its syntax tree and the text pglast prints back from that tree
(canonical: no comments, standard quoting), never the client's text.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, TypeVar

from pglast import ast, enums, parse_sql, parser
from pglast.parser import ParseError
from pglast.stream import RawStream

from pgshim.errors import PgError
from pgshim.sql.resolve import name_nested_outputs


class StatementKind(enum.Enum):
    QUERY = "query"  # SELECT / VALUES / TABLE, read-only (see check.py)
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
    DECLARE = "declare"  # DECLARE CURSOR (see cursors.py)
    FETCH = "fetch"  # FETCH, MOVE
    CLOSE = "close"  # CLOSE cursor, CLOSE ALL
    NOOP = "noop"  # LISTEN, UNLISTEN, DISCARD, DEALLOCATE, CHECKPOINT: nothing to do
    PUBLICATION = "publication"  # CREATE / ALTER / DROP PUBLICATION


@dataclass(frozen=True, slots=True)
class Statement:
    kind: StatementKind
    tag: str  # CommandComplete tag for commands ("SET", "BEGIN", "DISCARD ALL", ...)
    node: ast.Node
    text: str  # the statement printed back from its tree
    source: str = ""  # the statement as the client wrote it (error positions point into it)


T = TypeVar("T")
MAX_PARAMETER = 65535  # a Bind message counts parameters in an int16

_TRANSACTION = {
    enums.TransactionStmtKind.TRANS_STMT_BEGIN: (StatementKind.BEGIN, "BEGIN"),
    enums.TransactionStmtKind.TRANS_STMT_START: (StatementKind.BEGIN, "START TRANSACTION"),
    enums.TransactionStmtKind.TRANS_STMT_COMMIT: (StatementKind.COMMIT, "COMMIT"),
    enums.TransactionStmtKind.TRANS_STMT_ROLLBACK: (StatementKind.ROLLBACK, "ROLLBACK"),
    enums.TransactionStmtKind.TRANS_STMT_SAVEPOINT: (StatementKind.SAVEPOINT, "SAVEPOINT"),
    enums.TransactionStmtKind.TRANS_STMT_RELEASE: (StatementKind.RELEASE, "RELEASE"),
    enums.TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: (StatementKind.ROLLBACK_TO, "ROLLBACK"),
}

# PostgreSQL's command tags of statements pgshim refuses as writes (CreateCommandName)
_WRITE_TAGS: dict[type, str] = {
    ast.InsertStmt: "INSERT",
    ast.UpdateStmt: "UPDATE",
    ast.DeleteStmt: "DELETE",
    ast.MergeStmt: "MERGE",
    ast.TruncateStmt: "TRUNCATE TABLE",
    ast.CreateStmt: "CREATE TABLE",
    ast.CreateTableAsStmt: "CREATE TABLE AS",
    ast.ViewStmt: "CREATE VIEW",
    ast.IndexStmt: "CREATE INDEX",
    ast.CreateSchemaStmt: "CREATE SCHEMA",
    ast.CreateFunctionStmt: "CREATE FUNCTION",
    ast.CreateExtensionStmt: "CREATE EXTENSION",
    ast.CreateRoleStmt: "CREATE ROLE",
    ast.CreateSeqStmt: "CREATE SEQUENCE",
    ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
    ast.AlterTableStmt: "ALTER TABLE",
    ast.AlterRoleStmt: "ALTER ROLE",
    ast.AlterSystemStmt: "ALTER SYSTEM",
    ast.RenameStmt: "ALTER TABLE",
    ast.GrantStmt: "GRANT",
    ast.GrantRoleStmt: "GRANT ROLE",
    ast.CommentStmt: "COMMENT",
    ast.VacuumStmt: "VACUUM",
    ast.ClusterStmt: "CLUSTER",
    ast.ReindexStmt: "REINDEX",
    ast.RefreshMatViewStmt: "REFRESH MATERIALIZED VIEW",
    ast.LockStmt: "LOCK TABLE",
    ast.CallStmt: "CALL",
    ast.DoStmt: "DO",
    ast.ReassignOwnedStmt: "REASSIGN OWNED",
    ast.DropOwnedStmt: "DROP OWNED",
    ast.ImportForeignSchemaStmt: "IMPORT FOREIGN SCHEMA",
    ast.SecLabelStmt: "SECURITY LABEL",
    ast.LoadStmt: "LOAD",
    ast.CreatedbStmt: "CREATE DATABASE",
    ast.DropdbStmt: "DROP DATABASE",
}
_DROP_TAGS = {
    enums.ObjectType.OBJECT_TABLE: "DROP TABLE",
    enums.ObjectType.OBJECT_VIEW: "DROP VIEW",
    enums.ObjectType.OBJECT_INDEX: "DROP INDEX",
    enums.ObjectType.OBJECT_SCHEMA: "DROP SCHEMA",
    enums.ObjectType.OBJECT_FUNCTION: "DROP FUNCTION",
    enums.ObjectType.OBJECT_EXTENSION: "DROP EXTENSION",
    enums.ObjectType.OBJECT_SEQUENCE: "DROP SEQUENCE",
    enums.ObjectType.OBJECT_TYPE: "DROP TYPE",
}


class Piece(str):
    """One statement's text in a Query message, and where it starts there (in characters):
    PostgreSQL's error positions count from the message's start."""

    offset: int

    def __new__(cls, text: str, offset: int) -> Piece:
        piece = super().__new__(cls, text)
        piece.offset = offset
        return piece


def split_statements(sql: str) -> list[str]:
    """The statements of a Query message, delimited by PostgreSQL's parser, which also checks
    the syntax of all of them before any runs; [] for an empty query string."""
    sql = str(sql)  # pglast takes exactly str, not a Piece
    slices = _guarded(partial(parser.split, only_slices=True), sql)
    return [Piece(sql[part], part.start) for part in slices]


def in_message(error: PgError, statement: str) -> PgError:
    """The error with its position counted from the start of the statement's message."""
    if error.position is not None and isinstance(statement, Piece):
        error.position += statement.offset
    return error


def parse_statement(text: str) -> Statement:
    """One statement (a piece split_statements gave): its tree, kind and printed text."""
    if len(text) > _CACHED_TEXT:
        return _parse(text)
    return _parse_cached(text)


def parse_statements(sql: str) -> list[Statement]:
    return [parse_statement(text) for text in split_statements(sql)]


_CACHED_TEXT = 4096  # monitoring tools repeat the same short statements


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> Statement:
    return _parse(text)


def _parse(text: str) -> Statement:
    raws = _guarded(parse_sql, str(text))  # pglast takes exactly str, not a Piece
    if len(raws) != 1:
        raise PgError("42601", "cannot insert multiple commands into a prepared statement")
    return dataclasses.replace(_guarded(_classify, raws[0].stmt), source=str(text))


def _guarded(function: Callable[[Any], T], argument: Any) -> T:
    """PostgreSQL's errors for what its parser, or the tree's size, refuses."""
    try:
        return function(argument)
    except ParseError as error:
        message, index = error.args if len(error.args) == 2 else (str(error), None)
        if index is None and str(message).endswith("at end of input"):
            index = len(argument)
        raise PgError("42601", message, position=None if index is None else index + 1) from None
    except RecursionError:
        raise stack_depth_exceeded() from None


def stack_depth_exceeded() -> PgError:
    return PgError(
        "54001",
        "stack depth limit exceeded",
        hint='Increase the configuration parameter "max_stack_depth" (currently 2048kB), after '
        "ensuring the platform's stack depth limit is adequate.",
    )


def _classify(node: ast.Node) -> Statement:
    query = node.query if isinstance(node, ast.DeclareCursorStmt) else node
    if isinstance(query, ast.SelectStmt):
        name_nested_outputs(query)
    text = RawStream()(node)
    if isinstance(node, ast.SelectStmt):
        return Statement(StatementKind.QUERY, "SELECT", node, text)
    if isinstance(node, ast.VariableShowStmt):
        return Statement(StatementKind.SHOW, "SHOW", node, text)
    if isinstance(node, ast.VariableSetStmt):
        kinds = enums.VariableSetKind
        if node.kind in (kinds.VAR_RESET, kinds.VAR_RESET_ALL):
            return Statement(StatementKind.RESET, "RESET", node, text)
        return Statement(StatementKind.SET, "SET", node, text)
    if isinstance(node, ast.TransactionStmt):
        if node.kind not in _TRANSACTION:
            raise PgError("0A000", "prepared transactions are not supported by pgshim")
        kind, tag = _TRANSACTION[node.kind]
        return Statement(kind, tag, node, text)
    if isinstance(node, ast.CopyStmt):
        return Statement(StatementKind.COPY, "COPY", node, text)
    if isinstance(node, ast.CreatePublicationStmt):
        return Statement(StatementKind.PUBLICATION, "CREATE PUBLICATION", node, text)
    if isinstance(node, ast.AlterPublicationStmt):
        return Statement(StatementKind.PUBLICATION, "ALTER PUBLICATION", node, text)
    if isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_PUBLICATION:
        return Statement(StatementKind.PUBLICATION, "DROP PUBLICATION", node, text)
    if isinstance(node, ast.DeclareCursorStmt):
        return Statement(StatementKind.DECLARE, "DECLARE CURSOR", node, text)
    if isinstance(node, ast.FetchStmt):
        return Statement(StatementKind.FETCH, "MOVE" if node.ismove else "FETCH", node, text)
    if isinstance(node, ast.ClosePortalStmt):
        tag = "CLOSE CURSOR" if node.portalname else "CLOSE CURSOR ALL"
        return Statement(StatementKind.CLOSE, tag, node, text)
    noop = _noop_tag(node)
    if noop is not None:
        return Statement(StatementKind.NOOP, noop, node, text)
    write = _write_tag(node)
    if write is not None:
        raise PgError("25006", f"cannot execute {write} in a read-only transaction")
    words = text.split()[:2]
    feature = " ".join(words).upper() if words else type(node).__name__
    raise PgError("0A000", f"{feature} is not supported by pgshim")


def _noop_tag(node: ast.Node) -> str | None:
    if isinstance(node, ast.ListenStmt):
        return "LISTEN"
    if isinstance(node, ast.UnlistenStmt):
        return "UNLISTEN"
    if isinstance(node, ast.CheckPointStmt):
        return "CHECKPOINT"
    if isinstance(node, ast.DiscardStmt):
        target = enums.DiscardMode(node.target).name.removeprefix("DISCARD_")
        return f"DISCARD {target}"
    if isinstance(node, ast.DeallocateStmt):
        return "DEALLOCATE" if node.name else "DEALLOCATE ALL"
    if isinstance(node, ast.LockStmt) and node.mode <= _ROW_EXCLUSIVE_LOCK:
        return "LOCK TABLE"  # pg_dump's ACCESS SHARE: allowed read-only, nothing to lock here
    return None


_ROW_EXCLUSIVE_LOCK = 3  # the strongest lock a read-only transaction may take


def _write_tag(node: ast.Node) -> str | None:
    if isinstance(node, ast.DropStmt):
        return _DROP_TAGS.get(node.removeType, "DROP")
    if isinstance(node, ast.CreateTableAsStmt) and node.is_select_into:
        return "SELECT INTO"
    return _WRITE_TAGS.get(type(node))
