"""Results a statement handler returns to the wire layer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pgshim.sql.bounds import Bound
    from pgshim.sql.parse import Statement
    from pgshim.wire.handler import StreamIO


class RowSource(Protocol):
    """Rows produced while they are sent: a running query's cursor."""

    async def fetch(self, count: int) -> list[tuple]:
        """Up to `count` more rows; fewer (possibly none) at the end."""

    def restart_clock(self, bound: Bound | None = None) -> None:
        """A portal's next Execute (or a cursor's next FETCH, with the limits it runs under):
        statement_timeout counts from now."""

    def close(self) -> None: ...


@dataclass
class ColumnDesc:
    name: str
    type_oid: int
    typlen: int = -1
    typmod: int = -1


@dataclass
class RowsResult:
    columns: list[ColumnDesc]
    rows: list[tuple] | RowSource  # Python values (see docs/architecture.md), rendered by pgtypes
    tag: str  # "SELECT n" / "SHOW"; a RowSource's count is added as its rows are sent
    binary: bool = False  # a BINARY cursor's FETCH: the simple protocol sends them in binary


@dataclass
class CommandResult:
    tag: str  # "SET", "BEGIN", "COMMIT", "ROLLBACK", ...


@dataclass
class Prepared:
    statement: Statement
    param_oids: list[int]
    columns: list[ColumnDesc] | None  # None: the statement returns no rows (NoData)


@dataclass
class CopyOutResult:
    """`COPY ... TO STDOUT`: rows are complete COPY text lines (with their newline), or the
    binary format's header, tuples and trailer."""

    columns: list[ColumnDesc]
    rows: Iterable[bytes]
    tag: str
    binary: bool = False


class CopyBothStream:
    """START_REPLICATION: `run(io)` owns the connection (CopyBoth mode) until it returns.

    The stream writes CopyBothResponse itself. When it returns after the client's CopyDone,
    the server answers CopyDone and then CommandComplete for each of `completion_tags`.
    """

    completion_tags: tuple[str, ...] = ("COPY 0", "START_REPLICATION")

    async def run(self, io: StreamIO) -> None:
        raise NotImplementedError
