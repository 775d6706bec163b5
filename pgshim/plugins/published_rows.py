"""Column lists and row filters of pgoutput's publications, as PostgreSQL 15 applies them.

A relation's shape for a session: the columns its publications list (the Relation message and
every tuple carry only those) and, per action, the OR of the row filters of the publications
that publish it (None: every row). A change is then published as PostgreSQL's pgoutput does:
an INSERT when the new row matches, a DELETE when the old row matched, and an UPDATE by the
old and the new row: both match -> UPDATE, only the new -> INSERT, only the old -> DELETE,
neither -> nothing.

RedDB's updates and deletes carry no old row, so the session keeps the last row of each
logical id of a relation with an UPDATE or DELETE filter: replayed from the retained history
up to the first change it streams, then kept up to date by every change it is handed (such
relations are never sent from output rendered ahead). That is PostgreSQL's behaviour with
REPLICA IDENTITY FULL, whose old row is the whole previous version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pgshim.errors import PgError
from pgshim.logical.publications import PublicationFilter
from pgshim.logical.rowfilter import RowFilter, any_of, parse_filter
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction
from pgshim.sql.bounds import Bound, paced


@dataclass(frozen=True, slots=True)
class TableShape:
    columns: list[Column]  # the columns sent, in the table's order
    indexes: list[int] | None  # their positions in the relation's rows; None: every column
    filters: dict[str, RowFilter | None]  # by action: "I", "U", "D"

    @property
    def plain(self) -> bool:
        return self.indexes is None and not any(self.filters.values())

    @property
    def needs_old_rows(self) -> bool:
        return self.filters["U"] is not None or self.filters["D"] is not None

    def project(self, values: list) -> list:
        if self.indexes is None:
            return values
        return [values[i] if i < len(values) else None for i in self.indexes]


def table_shape(publications: PublicationFilter, relation: Relation) -> TableShape:
    listed = publications.column_list(relation)
    if listed is None:
        columns, indexes = relation.columns, None
    else:
        indexes = [i for i, column in enumerate(relation.columns) if column.name in listed]
        columns = [relation.columns[i] for i in indexes]
    filters: dict[str, RowFilter | None] = {}
    for action in ("I", "U", "D"):
        texts = publications.row_filters(relation, action)
        filters[action] = (
            None
            if texts is None
            else any_of([parse_filter(text, relation.columns, relation.name) for text in texts])
        )
    return TableShape(columns, indexes, filters)


def _key(relation: Relation, values: list) -> object:
    for column, value in zip(relation.columns, values, strict=False):
        if column.is_key:
            return value
    return None


def _value_bytes(value: object) -> int:
    if isinstance(value, str | bytes):
        return 49 + len(value)
    if isinstance(value, dict):
        return 64 + sum(_value_bytes(k) + _value_bytes(v) for k, v in value.items())
    if isinstance(value, list):
        return 64 + sum(map(_value_bytes, value))
    return 32


def row_bytes(values: list | None) -> int:
    """What keeping a row costs, about: the list, its entry in the dict and its values."""
    return 0 if values is None else 120 + 8 * len(values) + sum(map(_value_bytes, values))


class OldRows:
    """The last row of each logical id of the relations whose filters need the old row, within
    ``budget`` bytes (as ``row_bytes`` counts them) for the session: beyond it the session ends
    with 53200 rather than grow without bound.

    A relation's rows are replayed from the history the first time a change of it is streamed:
    by ``rebuild`` in paced steps (the streaming and SQL-level decoding sessions call it for
    what they are about to encode), else at once by ``rows_of``.
    """

    def __init__(
        self, history: Callable[[], Iterable[object]] | None, budget: int | None = None
    ) -> None:
        self._history = history
        self._rows: dict[int, dict[object, list]] = {}
        self._bytes: dict[int, int] = {}
        self.budget = budget
        self.used = 0

    def kept(self, relation: Relation) -> bool:
        return relation.oid in self._rows

    def forget(self, relation: Relation) -> None:
        self._rows.pop(relation.oid, None)
        self.used -= self._bytes.pop(relation.oid, 0)

    def rows_of(self, relation: Relation, tx: Transaction) -> dict[object, list]:
        """The relation's rows before ``tx``, replayed from the history at once the first time."""
        if relation.oid not in self._rows:
            for _ in self._replay({relation.oid: relation}, tx.commit_pos):
                pass
        return self._rows[relation.oid]

    async def rebuild(self, relations: dict[int, Relation], upto: int, bound: Bound) -> None:
        """The rows of ``relations`` (by oid) after every transaction ending at or before
        ``upto``, replayed yielding to the event loop every few transactions."""
        async for _ in paced(self._replay(relations, upto), bound):
            pass

    def _replay(self, relations: dict[int, Relation], upto: int) -> Iterator[None]:
        for relation in relations.values():
            self.forget(relation)
            self._rows[relation.oid] = {}
        done = False
        try:
            for earlier in self._history() if self._history is not None else ():
                if not isinstance(earlier, Transaction):
                    continue
                if earlier.end_pos > upto:
                    break
                for change in earlier.changes:
                    if change.relation.oid in relations:
                        self.take(change)
                yield
            done = True
        finally:
            if not done:  # stopped (an error, the session ended): half a replay is no use
                for relation in relations.values():
                    self.forget(relation)

    def take(self, change: RowChange, tx: Transaction | None = None) -> list | None:
        """Take one change in (replaying the history first when ``tx`` is given and the
        relation has no rows kept yet); returns the row it replaced or removed."""
        relation = change.relation
        rows = self._rows.get(relation.oid) if tx is None else self.rows_of(relation, tx)
        if rows is None:
            return None
        old = apply(rows, change)
        if change.action == "T":
            delta = -self._bytes.get(relation.oid, 0)
        elif change.action in ("I", "U") and change.new is not None:
            delta = row_bytes(change.new) - row_bytes(old)
        else:
            delta = -row_bytes(old)
        self._bytes[relation.oid] = self._bytes.get(relation.oid, 0) + delta
        self.used += delta
        if self.budget is not None and self.used > self.budget:
            raise PgError(
                "53200",
                "out of memory",
                detail=f'The last version of each row of "{relation.schema}.{relation.name}" '
                "(kept for its UPDATE or DELETE row filter) and of the session's other such "
                f"tables takes more than {self.budget // (1024 * 1024)} MiB.",
                hint="Publish only inserts of the table (WITH (publish = 'insert')), or raise "
                "query_memory.",
            )
        return old


def apply(rows: dict[object, list], change: RowChange) -> list | None:
    """Take one change in; returns the row it replaced or removed."""
    relation = change.relation
    if change.action == "T":
        rows.clear()
        return None
    if change.action in ("I", "U") and change.new is not None:
        key = _key(relation, change.new)
        old = rows.get(key)
        rows[key] = change.new
        return old
    if change.action == "D" and change.key is not None:
        return rows.pop(_key(relation, change.key), None)
    return None


def published_action(shape: TableShape, change: RowChange, old: list | None) -> str | None:
    """What the change becomes for the subscriber: "I", "U", "D", "T", or None (nothing)."""
    action = change.action
    if action == "T":
        return action
    row_filter = shape.filters.get(action)
    if row_filter is None:
        return action
    if action == "I":
        return action if row_filter.matches(change.new or []) else None
    if action == "D":
        return action if old is not None and row_filter.matches(old) else None
    old_matches = old is not None and row_filter.matches(old)
    new_matches = row_filter.matches(change.new or [])
    if old_matches and new_matches:
        return "U"
    if new_matches:
        return "I"
    return "D" if old_matches else None
