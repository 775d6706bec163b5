"""Collections as tables a query reads: ``SELECT ... FROM users`` (or ``public.users``).

A query over collections gets, in its own engine process, one table per collection it names,
holding the collection's rows as of a position: the transaction snapshot the session imported
(``SET TRANSACTION SNAPSHOT`` with the name CREATE_REPLICATION_SLOT ... SNAPSHOT 'export'
returned), the slot snapshot of a replication session (SNAPSHOT 'use'), the position the first
such read of a REPEATABLE READ transaction saw, or else the end of the spool now. The rows are
those COPY sends: the spool replayed from its first change up to that position (every
transaction whose COMMIT is at or before it), so a consumer that reads them and then streams
from the slot gets every change once.

The replay runs on the event loop in paced steps (a yield every few transactions, the
statement's deadline checked) and sends the changes of the collections read to the query's
engine process a chunk at a time; the engine folds each chunk into the table (the last change of
each ``rid`` wins, a delete removes it, a TRUNCATE empties the table). The server holds one chunk,
never the table, and what the table takes counts against the query's ``query_memory``.

Values keep the types the replication stream gives them (same columns, type OIDs and text
output): types the engine has (integers, boolean, text, floats, date and time types, uuid,
bytea, interval, real[]) are stored as themselves; numeric as a DECIMAL with the largest scale
the column's values have (so arithmetic and comparisons work; a value of a smaller scale prints
with the column's scale); the others (inet, cidr, macaddr, json, jsonb, character, varchar)
as their PostgreSQL text, which their output prints unchanged; point as text (the engine has no
twin whose output PostgreSQL's point output would give).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.positions import end_pos
from pgshim.logical.transactions import Relation, Transaction
from pgshim.sql.bounds import Bound, paced
from pgshim.sql.privileges import may_use_replication_slots

if TYPE_CHECKING:
    from pgshim.sql.engine import EngineCursor, TempTable

CHUNK_CHANGES = 4096  # changes sent to the engine at a time
TABLE_PREFIX = "pgshim_coll_"
_CHUNK_TABLE = "pgshim_chunk"
_MAX_DECIMAL_WIDTH = 38

# PostgreSQL type -> engine type, for the types stored as themselves
_NATIVE: dict[int, str] = {
    16: "BOOLEAN",
    17: "BLOB",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "VARCHAR",
    700: "FLOAT",
    701: "DOUBLE",
    1021: "FLOAT[]",
    1022: "DOUBLE[]",
    1005: "SMALLINT[]",
    1007: "INTEGER[]",
    1016: "BIGINT[]",
    1009: "VARCHAR[]",
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    1186: "INTERVAL",
    2950: "UUID",
}
# stored as their PostgreSQL text, which their text output prints unchanged
_AS_TEXT = frozenset({114, 3802, 650, 869, 829, 774, 1042, 1043, 19, 18})
NUMERIC = 1700
TEXT = 25


def engine_table(relation: Relation) -> str:
    """The name a collection's table has in the query's engine process."""
    return f"{TABLE_PREFIX}{relation.oid}"


def reported_oid(type_oid: int) -> int:
    """The type a column of this type has in query results."""
    if type_oid in _NATIVE or type_oid in _AS_TEXT or type_oid == NUMERIC:
        return type_oid
    return TEXT


def _storage(type_oid: int) -> str:
    if type_oid in _NATIVE:
        return _NATIVE[type_oid]
    return "VARCHAR"  # numeric too while loading; see _Loader.finish


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SnapshotSession(Protocol):
    """What a read needs from the SQL session running it (pgshim.sql.session.SqlSession)."""

    pid: int
    tx_status: str

    def transaction_snapshot(self) -> int | None: ...
    def pin_transaction_snapshot(self, position: int) -> None: ...


@dataclass
class _Numeric:
    """What a numeric column's values need: the largest scale and integer digits seen."""

    scale: int = 0
    digits: int = 1
    special: bool = False  # NaN, infinities: the column stays text

    def note(self, value: Decimal) -> None:
        if not value.is_finite():
            self.special = True
            return
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        self.scale = max(self.scale, -exponent)
        self.digits = max(self.digits, len(digits) + exponent)

    def engine_type(self) -> str | None:
        if self.special or self.scale + self.digits > _MAX_DECIMAL_WIDTH:
            return None
        return f"DECIMAL({_MAX_DECIMAL_WIDTH},{self.scale})"


@dataclass
class _Loader:
    """One collection's table being loaded into the query's engine process."""

    relation: Relation
    table: str
    columns: list[tuple[str, int]]  # (name, PostgreSQL type)
    pending: list[tuple] = field(default_factory=list)  # (seq, op, values...)
    numeric: dict[int, _Numeric] = field(default_factory=dict)
    converters: list[Callable[[Any], Any] | None] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        for index, (_, oid) in enumerate(self.columns):
            if oid == NUMERIC:
                self.numeric[index] = _Numeric()
                self.converters.append(self._numeric_converter(self.numeric[index]))
            elif oid in _NATIVE:
                self.converters.append(None)
            else:
                self.converters.append(pgtypes.text_renderer(oid))

    @staticmethod
    def _numeric_converter(state: _Numeric) -> Callable[[Any], Any]:
        def convert(value: Any) -> str:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            state.note(number)
            return pgtypes.text_out(NUMERIC, number)

        return convert

    def create(self) -> tuple:
        definition = [(name, _storage(oid)) for name, oid in self.columns]
        return ("table", self.table, definition, [])

    def add(self, op: str, values: list | None) -> None:
        width = len(self.columns)
        row: list[Any] = [None] * width
        if values:
            for index, value in enumerate(values[:width]):
                if value is not None:
                    convert = self.converters[index]
                    row[index] = value if convert is None else convert(value)
        self.count += 1
        self.pending.append((self.count, op, *row))

    def flush(self) -> list[tuple]:
        """The steps folding the pending changes into the table."""
        if not self.pending:
            return []
        pending, self.pending = self.pending, []
        names = ["seq", "op", *(name for name, _ in self.columns)]
        kinds = ["BIGINT", "VARCHAR", *(_storage(oid) for _, oid in self.columns)]
        values = [list(column) for column in zip(*pending, strict=True)]
        unnested = ", ".join(
            f"unnest(?::{kind}[]) AS {_quote(name)}"
            for name, kind in zip(names, kinds, strict=True)
        )
        table, key = _quote(self.table), _quote(self.columns[0][0])
        chunk = _quote(_CHUNK_TABLE)
        columns = ", ".join(_quote(name) for name, _ in self.columns)
        return [
            ("sql", f"CREATE OR REPLACE TEMP TABLE {chunk} AS SELECT {unnested}", values),
            ("sql", f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {chunk})", []),
            (
                "sql",
                f"INSERT INTO {table} SELECT {columns} FROM (SELECT *, row_number() OVER "
                f"(PARTITION BY {key} ORDER BY seq DESC) AS pgshim_last FROM {chunk}) "
                "WHERE pgshim_last = 1 AND op <> 'D'",
                [],
            ),
            ("sql", f"DROP TABLE {chunk}", []),
        ]

    def truncate(self) -> list[tuple]:
        self.pending.clear()
        return [("sql", f"DELETE FROM {_quote(self.table)}", [])]

    def finish(self) -> list[tuple]:
        """Numeric columns become DECIMALs wide enough for every value they had."""
        steps = []
        for index, state in self.numeric.items():
            kind = state.engine_type()
            if kind is not None:
                steps.append((
                    "sql",
                    f"ALTER TABLE {_quote(self.table)} ALTER COLUMN "
                    f"{_quote(self.columns[index][0])} SET DATA TYPE {kind}",
                    [],
                ))  # fmt: skip
        return steps


class CollectionTables:
    """The collections a query may read, and their rows loaded into its engine process."""

    def __init__(
        self,
        relations: Callable[[], Iterable[Relation]],
        find: Callable[[str], Relation | None],
        history: Callable[[int], Iterable[Transaction]],
        end: Callable[[], int],
        first_lsn: Callable[[], int | None],
        schema: str = "public",
        session_snapshot: Callable[[int], int | None] = lambda pid: None,
        exported: Callable[[str], int | None] = lambda name: None,
    ) -> None:
        self._relations = relations
        self._find = find
        self._history = history
        self._end = end
        self._first_lsn = first_lsn
        self.schema = schema
        self._session_snapshot = session_snapshot  # a replication session's SNAPSHOT 'use'
        self._exported = exported

    # --- what queries may name -------------------------------------------------------------

    def names(self) -> frozenset[str]:
        return frozenset(relation.name for relation in self._relations())

    def relation(self, name: str) -> Relation | None:
        relation = self._find(name)
        return relation if relation is not None and relation.schema == self.schema else None

    def columns(self, name: str) -> list[tuple[str, int]]:
        """The table's columns with the types query results report."""
        relation = self.relation(name)
        if relation is None:
            return []
        return [(column.name, reported_oid(column.type_oid)) for column in relation.columns]

    def table_name(self, name: str) -> str:
        relation = self.relation(name)
        if relation is None:
            raise PgError("42P01", f'relation "{name}" does not exist')
        return engine_table(relation)

    def empty_tables(self, names: Iterable[str]) -> list[TempTable]:
        """Tables with the columns and no rows (to describe a query without running it)."""
        from pgshim.sql.engine import TempTable

        tables = []
        for name in sorted(set(names)):
            relation = self.relation(name)
            if relation is not None:
                columns = [
                    (column.name, _storage(column.type_oid) if column.type_oid != NUMERIC
                     else f"DECIMAL({_MAX_DECIMAL_WIDTH},4)")
                    for column in relation.columns
                ]  # fmt: skip
                tables.append(TempTable(engine_table(relation), columns, []))
        return tables

    # --- snapshots -------------------------------------------------------------------------

    def import_snapshot(self, name: str) -> int:
        """SET TRANSACTION SNAPSHOT: the position an exported snapshot name stands for."""
        if not name or any(char not in "0123456789ABCDEF-" for char in name):
            raise PgError("22023", f'invalid snapshot identifier: "{name}"')
        position = self._exported(name)
        if position is None:
            raise PgError("42704", f'snapshot "{name}" does not exist')
        return position

    def position_for(self, session: SnapshotSession | None) -> int:
        """What a read in this session sees: the imported or pinned transaction snapshot, the
        replication session's slot snapshot, else the spool's end now."""
        if session is not None:
            pinned = session.transaction_snapshot()
            if pinned is not None:
                return pinned
            used = self._session_snapshot(session.pid)
            if used is not None:
                return used
        now = self._end()
        if session is not None:
            session.pin_transaction_snapshot(now)  # a REPEATABLE READ transaction keeps it
        return now

    # --- loading ---------------------------------------------------------------------------

    def check(self, names: Iterable[str], session: Any) -> None:
        """Privileges and history, before any work: a collection's rows are read by those who
        may read its changes (COPY's rule), and only when the spool holds its whole history."""
        for name in sorted(set(names)):
            if not may_use_replication_slots(session):
                raise PgError("42501", f"permission denied for table {name}")
        first = self._first_lsn()
        if first is not None and first > 1:
            name = sorted(set(names))[0]
            raise PgError(
                "55000",
                f'cannot read the rows of "{name}": RedDB pruned the spool before LSN {first}, '
                "so its history is incomplete",
                hint="Read the data from RedDB itself, or stream the changes from a slot.",
            )

    async def stage(
        self, cursor: EngineCursor, names: Iterable[str], session: Any, bound: Bound
    ) -> None:
        """Load the collections ``names`` into the query's process, as of the session's
        snapshot, replaying the spool in paced steps and sending a chunk at a time."""
        upto = self.position_for(session)
        loaders: dict[int, _Loader] = {}
        for name in sorted(set(names)):
            relation = self.relation(name)
            if relation is None:
                raise PgError("42P01", f'relation "{name}" does not exist')
            columns = [(column.name, column.type_oid) for column in relation.columns]
            loaders[relation.oid] = _Loader(relation, engine_table(relation), columns)
        await cursor.stage([loader.create() for loader in loaders.values()])
        waiting = 0
        async for tx in paced(self._history(0), bound):
            if tx.end_pos > upto:
                break
            for change in tx.changes:
                loader = loaders.get(change.relation.oid)
                if loader is None:
                    continue
                action = change.action
                if action == "T":
                    await cursor.stage(loader.truncate())
                    continue
                if action in ("I", "U") and change.new is not None:
                    loader.add("U", change.new)
                elif action == "D" and change.key is not None:
                    loader.add("D", change.key)
                else:
                    continue
                waiting += 1
                if waiting >= CHUNK_CHANGES:
                    await cursor.stage([s for each in loaders.values() for s in each.flush()])
                    waiting = 0
        steps = [step for loader in loaders.values() for step in loader.flush()]
        steps += [step for loader in loaders.values() for step in loader.finish()]
        if steps:
            await cursor.stage(steps)


def exported_position(name: str, live_pids: Iterable[int], end_lsn: int) -> int | None:
    """The position of a snapshot CREATE_REPLICATION_SLOT ... SNAPSHOT 'export' named
    ``PID-LSN-1`` (the exporting session's pid and the consistent point's RedDB LSN, its low
    32 bits): valid while that session lives, as an exported snapshot is while its
    transaction is open."""
    parts = name.split("-")
    if len(parts) != 3 or parts[2] != "1":
        return None
    try:
        pid, low = int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None
    if pid not in set(live_pids):
        return None
    lsn = (end_lsn & ~0xFFFFFFFF) | low
    if lsn > end_lsn and lsn >= 1 << 32:
        lsn -= 1 << 32
    return end_pos(lsn)
