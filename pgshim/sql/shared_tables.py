"""Catalog tables kept loaded in the engine processes, sent again only when their rows changed.

A catalog view every session sees alike (no rows that depend on the session: pg_class,
pg_attribute, pg_publication, pg_replication_slots, ...) is a table of each engine process's
database. Each query still brings the rows of every such view it reads as of the query's start,
but as a version: the rows get a number when first seen, and keep it while a later query finds
the same rows (compared by value). A process holds one version of each table and gets the rows
again only when a query's version is not the one it holds, before the query runs: the query
reads exactly the rows taken at its start, as a copy of its own would hold them, and the tables
that seldom change (the schema, the publications) are not rebuilt for every query.

Views whose rows depend on the session (pg_roles, pg_settings, pg_stat_replication, ...) are
never shared: each query brings them as temporary tables of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RECENT = 4  # versions of each table remembered


@dataclass(frozen=True, slots=True)
class Stamped:
    """A shared table's rows as a query took them, and their version."""

    name: str
    version: int
    columns: list[tuple[str, str]]  # (name, engine type)
    rows: list[tuple]

    def as_sent(self) -> tuple:
        return (self.name, self.columns, self.rows)


class SharedTables:
    """The newest version of each shared table (what processes started from now on load), and
    how many rows queries sent to their processes, by table (``rows_sent``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, list[Stamped]] = {}  # by table, the newest first
        self._counter = 0
        self.rows_sent: Counter[str] = Counter()

    def stamp(self, name: str, columns: list[tuple[str, str]], rows: list[tuple]) -> Stamped:
        """These rows as a version: the number of one of the last RECENT versions when they
        equal its rows (sessions taking turns), else a new one (a number stands for one
        content only). It becomes the newest."""
        with self._lock:
            recent = self._recent.setdefault(name, [])
            for index, known in enumerate(recent):
                if known.columns == columns and known.rows == rows:
                    recent.insert(0, recent.pop(index))
                    return known
            self._counter += 1
            stamped = Stamped(name, self._counter, columns, rows)
            recent.insert(0, stamped)
            del recent[RECENT:]
            return stamped

    def newest(self) -> list[Stamped]:
        with self._lock:
            return [recent[0] for recent in self._recent.values()]

    def to_send(self, held: dict[str, int], wanted: Iterable[Stamped]) -> list[Stamped]:
        """The tables of ``wanted`` whose version a process holding ``held`` lacks."""
        missing = [table for table in wanted if held.get(table.name) != table.version]
        with self._lock:
            self.rows_sent.update({table.name: len(table.rows) for table in missing})
        return missing

    def counted(self, tables: Sequence[tuple]) -> None:
        """Count the rows of a query's own (temporary) tables."""
        with self._lock:
            self.rows_sent.update({name: len(rows) for name, _, rows in tables})


class Derived:
    """A view's rows computed again only when what they derive from changed: ``state()`` returns
    a value that compares unequal after any change (e.g. the relations' columns, a store's
    generation). The rows are returned as computed: callers do not change them."""

    def __init__(self, rows: Callable[[], Any], state: Callable[[], object]) -> None:
        self._rows = rows
        self._state = state
        self._lock = threading.Lock()
        self._computed: tuple[object, Any] | None = None

    def __call__(self) -> Any:
        state = self._state()
        with self._lock:
            computed = self._computed
            if computed is not None and computed[0] == state:
                return computed[1]
        rows = self._rows()
        with self._lock:
            self._computed = (state, rows)
        return rows
