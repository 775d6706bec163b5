"""SQL cursors (DECLARE / FETCH / MOVE / CLOSE): a session's open queries, read forward a batch
at a time.

A cursor's rows come from the same engine path as any SELECT's (an open cursor holds its engine
process, as a suspended portal does), fetched only as far as each FETCH or MOVE asks, so memory
stays bounded whatever the result's size. Cursors scan forward only: one declared without
SCROLL behaves as PostgreSQL's does over a plan that cannot scan backward (55000 on any backward
movement), and SCROLL is refused at DECLARE.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, enums

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound
from pgshim.sql.result_cache import KeptRows
from pgshim.sql.results import ColumnDesc, CommandResult, RowSource, RowsResult

MAX_CURSORS = 8  # open cursors per session: each holds an engine process while open
BATCH = 1000  # rows a MOVE reads (and drops) at a time
FETCH_ALL = 9223372036854775807  # FETCH ALL's count in the parse tree (LONG_MAX)
_Direction = enums.FetchDirection
_OPPOSITE = {
    _Direction.FETCH_FORWARD: _Direction.FETCH_BACKWARD,
    _Direction.FETCH_BACKWARD: _Direction.FETCH_FORWARD,
}


def only_forward() -> PgError:
    return PgError(
        "55000",
        "cursor can only scan forward",
        hint="Declare it with SCROLL option to enable backward scan.",
    )


def missing(name: str) -> PgError:
    return PgError("34000", f'cursor "{name}" does not exist')


@dataclass
class Cursor:
    name: str
    columns: list[ColumnDesc]
    source: RowSource
    hold: bool
    binary: bool
    position: int = 0  # rows read so far (PostgreSQL's portalPos)
    at_start: bool = True
    at_end: bool = False

    async def read(self, count: int) -> list[tuple]:
        """Up to ``count`` more rows, moving forward past them."""
        if count <= 0 or self.at_end:
            if count > 0:
                self.at_end = True
            return []
        rows = await self.source.fetch(count)
        self.position += len(rows)
        if rows:
            self.at_start = False
        if len(rows) < count:
            self.at_end = True
        return rows


class _Fetched:
    """One FETCH's rows (a RowSource): at most ``count`` of the cursor's next ones, read in the
    batches the wire layer asks for. Closing it leaves the cursor open; an error while reading
    closes the cursor."""

    def __init__(self, cursor: Cursor, count: int, cursors: Cursors) -> None:
        self._cursor = cursor
        self._left = count
        self._cursors = cursors

    async def fetch(self, count: int) -> list[tuple]:
        want = min(count, self._left)
        if want <= 0:
            return []
        rows = await self._cursors.read(self._cursor, want)
        self._left -= len(rows)
        if len(rows) < want:
            self._left = 0
        return rows

    def restart_clock(self, bound: Bound | None = None) -> None:
        self._cursor.source.restart_clock(bound)

    def close(self) -> None:
        self._left = 0


class Cursors:
    """A session's open cursors, by name."""

    def __init__(self) -> None:
        self._open: dict[str, Cursor] = {}
        self._this_transaction: set[str] = set()
        self._savepoints: list[tuple[str, set[str]]] = []  # (name, cursors open at it)

    def get(self, name: str) -> Cursor:
        cursor = self._open.get(name)
        if cursor is None:
            raise missing(name)
        return cursor

    def columns(self, name: str) -> list[ColumnDesc] | None:
        cursor = self._open.get(name)
        return None if cursor is None else cursor.columns

    def check_declare(self, node: ast.DeclareCursorStmt, in_block: bool) -> None:
        """PostgreSQL's refusals of a DECLARE, before its query runs."""
        options = node.options or 0
        if not options & enums.CURSOR_OPT_HOLD and not in_block:
            raise PgError("25P01", "DECLARE CURSOR can only be used in transaction blocks")
        if options & enums.CURSOR_OPT_SCROLL:
            raise PgError(
                "0A000",
                "DECLARE SCROLL CURSOR is not supported by pgshim",
                hint="Declare it without SCROLL: pgshim's cursors scan forward only.",
            )
        if not node.portalname:
            raise PgError("34000", "invalid cursor name: must not be empty")
        if node.portalname in self._open:
            raise PgError("42P03", f'cursor "{node.portalname}" already exists')
        if len(self._open) >= MAX_CURSORS:
            raise PgError(
                "54000",
                "too many open cursors",
                detail=f"pgshim allows at most {MAX_CURSORS} open cursors in a session.",
                hint="Close the cursors no longer needed (CLOSE).",
            )

    def add(self, node: ast.DeclareCursorStmt, result: RowsResult, in_block: bool) -> None:
        options = node.options or 0
        rows = result.rows
        if isinstance(rows, list):
            rows = KeptRows([], rows)
        self._open[node.portalname] = Cursor(
            node.portalname,
            result.columns,
            rows,
            hold=bool(options & enums.CURSOR_OPT_HOLD),
            binary=bool(options & enums.CURSOR_OPT_BINARY),
        )
        if in_block:
            self._this_transaction.add(node.portalname)

    async def fetch(self, node: ast.FetchStmt, bound: Bound) -> RowsResult | CommandResult:
        """FETCH or MOVE: moves (and skips) up front, then the rows the command returns, as a
        RowSource read while they are sent (MOVE: read and dropped here, a batch at a time)."""
        cursor = self.get(node.portalname)
        cursor.source.restart_clock(bound)  # statement_timeout counts each FETCH's work
        direction, how_many = _Direction(node.direction), node.howMany
        if how_many < 0 and direction in _OPPOSITE:  # FETCH -1: backward
            direction, how_many = _OPPOSITE[direction], -how_many
        if node.ismove and how_many == 0 and direction is not _Direction.FETCH_ABSOLUTE:
            return CommandResult(f"MOVE {int(not cursor.at_start and not cursor.at_end)}")
        count = await self._position(cursor, direction, how_many)
        if node.ismove:
            return CommandResult(f"MOVE {await self.skip(cursor, count)}")
        return RowsResult(cursor.columns, _Fetched(cursor, count, self), "FETCH", cursor.binary)

    async def skip(self, cursor: Cursor, count: int) -> int:
        """Move forward past up to ``count`` rows, a batch at a time; how many there were."""
        moved = 0
        while count > moved and not cursor.at_end:
            moved += len(await self.read(cursor, min(count - moved, BATCH)))
        return moved

    async def read(self, cursor: Cursor, count: int) -> list[tuple]:
        """The cursor's next rows; an error while reading them closes it."""
        try:
            return await cursor.read(count)
        except BaseException:
            self.drop(cursor.name)
            raise

    async def _position(self, cursor: Cursor, direction: _Direction, how_many: int) -> int:
        """Move to where the command reads from (PostgreSQL's DoPortalRunFetch, forward only);
        the count of rows it then reads forward."""
        if direction is _Direction.FETCH_ABSOLUTE:
            if how_many < 0:
                raise only_forward()
            if how_many == 0 or how_many - 1 <= cursor.position // 2:
                self._rewind(cursor)  # PostgreSQL rewinds to reach an early row
                if how_many > 1:
                    await self.skip(cursor, how_many - 1)
                return 1 if how_many else 0
            position = cursor.position + (1 if cursor.at_end else 0)
            if how_many <= position:
                raise only_forward()
            await self.skip(cursor, how_many - position - 1)
            return 1
        if direction is _Direction.FETCH_RELATIVE:
            if how_many < 0:
                raise only_forward()
            if how_many > 0:
                await self.skip(cursor, how_many - 1)
                return 1
        elif how_many and direction is _Direction.FETCH_BACKWARD:
            raise only_forward()
        elif how_many:
            return how_many
        # a count of 0 reads the current row again: backward, unless not on a row
        if not cursor.at_start and not cursor.at_end:
            raise only_forward()
        return 0

    @staticmethod
    def _rewind(cursor: Cursor) -> None:
        if not (cursor.at_start and not cursor.at_end):
            raise only_forward()

    def close(self, name: str | None) -> str:
        """CLOSE name, or CLOSE ALL (None); the command's tag."""
        if name is None:
            for each in list(self._open):
                self.drop(each)
            return "CLOSE CURSOR ALL"
        self.get(name)
        self.drop(name)
        return "CLOSE CURSOR"

    def drop(self, name: str) -> None:
        cursor = self._open.pop(name, None)
        self._this_transaction.discard(name)
        if cursor is not None:
            cursor.source.close()

    def savepoint(self, action: str, name: str) -> None:
        """SAVEPOINT ("savepoint"), RELEASE ("release") or ROLLBACK TO ("rollback_to"): a
        rollback to a savepoint closes the cursors declared since."""
        at = next((i for i in reversed(range(len(self._savepoints))) if
                   self._savepoints[i][0] == name), None)  # fmt: skip
        if action == "savepoint":
            self._savepoints.append((name, set(self._open)))
        elif at is not None and action == "release":
            del self._savepoints[at:]
        elif at is not None:
            del self._savepoints[at + 1 :]
            for each in set(self._open) - self._savepoints[at][1]:
                self.drop(each)

    def end_transaction(self, committed: bool) -> None:
        """COMMIT keeps the cursors WITH HOLD; ROLLBACK (or a failed transaction's end) closes
        those declared in the transaction too."""
        for name, cursor in list(self._open.items()):
            if not cursor.hold or (not committed and name in self._this_transaction):
                self.drop(name)
        self._this_transaction.clear()
        self._savepoints.clear()
