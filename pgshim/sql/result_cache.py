"""Results of catalog queries, kept for the next query that would compute the same rows.

Tools send the same catalog queries again and again (psql's ``\\d`` runs up to nine per
command) while the catalog seldom changes. A result is reused only when nothing it derives from
can differ: the engine's SQL text (into which the rewrite put every value of the session: its
user, its settings, the server functions' results) and parameters, and the content of every
table it reads: the versions of the shared tables (shared_tables.py), and of the rows of its
own (the views of the session, set-returning functions' rows), compared by value. It reads no
collection, has no side effect, and calls only functions known to give the same result for the
same arguments (pgshim's macros, whose tables count among those it reads, and the engine's
functions listed here: no clock, no randomness, no sampling). Results of statements up to
MAX_TEXT characters, of up to MAX_ROWS rows and about MAX_BYTES, read to their end without an
error, are kept, the most recently used up to MAX_ENTRIES and about TOTAL_BYTES.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence

from sqlglot import exp

Key = tuple[str, tuple, tuple]  # (SQL, parameters, versions of the tables read)

MAX_TEXT = 16_384
MAX_ROWS = 2_000
MAX_BYTES = 1 << 20
MAX_ENTRIES = 256
TOTAL_BYTES = 16 << 20

# functions of the engine whose result depends on their arguments alone (DuckDB's TimeZone is
# fixed: casts and date arithmetic included)
DETERMINISTIC: frozenset[type[exp.Expression]] = frozenset({
    exp.And, exp.Or, exp.Array, exp.Case, exp.If, exp.Cast, exp.TryCast, exp.Exists,
    exp.Explode, exp.Unnest, exp.ExplodingGenerateSeries, exp.GenerateSeries, exp.Coalesce,
    exp.Nullif, exp.Greatest, exp.Least, exp.Count, exp.Sum, exp.Max, exp.Min, exp.Avg,
    exp.GroupConcat, exp.ArrayAgg, exp.Lower, exp.Upper, exp.Length, exp.Substring,
    exp.Concat, exp.Trim, exp.Replace, exp.SplitPart, exp.StrPosition, exp.RegexpLike,
    exp.RegexpReplace, exp.ArrayToString, exp.ArrayContains, exp.ArraySize, exp.Abs, exp.Round,
})  # fmt: skip
DETERMINISTIC_NAMES = frozenset({"array_to_string", "array_upper", "array_length"})


def deterministic(tree: exp.Expression, macros: Collection[str]) -> bool:
    """Whether the engine's statement gives the same rows whenever its tables hold the same:
    every function it calls is on the allow-lists (or one of pgshim's ``macros``)."""
    for node in tree.find_all(exp.Func, exp.TableSample):
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name not in macros and name not in DETERMINISTIC_NAMES:
                return False
        elif type(node) not in DETERMINISTIC:
            return False
    return True


def macro_names(statements: Collection[str]) -> frozenset[str]:
    """The names the ``CREATE MACRO name(...)`` statements define."""
    return frozenset(text.split()[2].split("(")[0].lower() for text in statements)


class ResultCache:
    """Kept results by Key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: OrderedDict[Key, tuple[list, list[tuple], int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    @staticmethod
    def key(sql: str, params: Sequence, versions: Sequence[tuple[str, int]]) -> Key | None:
        """The key of a statement's result, None when it is too long to keep."""
        if len(sql) > MAX_TEXT:
            return None
        return sql, tuple((type(p).__name__, repr(p)) for p in params), tuple(sorted(versions))

    def get(self, key: Key) -> tuple[list, list[tuple]] | None:
        with self._lock:
            found = self._results.get(key)
            if found is None:
                return None
            self._results.move_to_end(key)
            self.hits += 1
            return found[0], found[1]

    def put(self, key: Key, description: list, rows: list[tuple]) -> None:
        size = len(key[0]) + _size(rows)
        if size > MAX_BYTES:
            return
        with self._lock:
            previous = self._results.pop(key, None)
            if previous is not None:
                self._bytes -= previous[2]
            self._results[key] = (description, rows, size)
            self._bytes += size
            while len(self._results) > MAX_ENTRIES or self._bytes > TOTAL_BYTES:
                self._bytes -= self._results.popitem(last=False)[1][2]


def _size(rows: list[tuple]) -> int:
    """About the bytes the rows hold: their texts' lengths, 16 for other values."""
    total = 0
    for row in rows:
        for value in row:
            if isinstance(value, str | bytes):
                total += len(value) + 16
            elif isinstance(value, list | tuple | dict):
                total += len(repr(value))
            else:
                total += 16
    return total


class KeptRows:
    """A kept result as a query's rows (a RowSource)."""

    def __init__(self, description: list, rows: list[tuple]) -> None:
        self.description = description
        self._rows = rows
        self._at = 0

    async def fetch(self, count: int) -> list[tuple]:
        batch = self._rows[self._at : self._at + count]
        self._at += len(batch)
        return batch

    def restart_clock(self) -> None:
        pass

    def close(self) -> None:
        self._at = len(self._rows)
