"""RedDB change records -> PostgreSQL transactions.

One record is one transaction by default. With ``group_by_xmin`` the change source may hand
several consecutive records whose entities share an ``xmin`` (the writer's transaction id) to
``build`` at once; ``should_group`` is that decision.

* insert -> ``I`` with the new tuple; update -> ``U`` with the new tuple only (the key, the
  logical id, never changes); both teach the identity map (collection, physical id) -> logical id.
* delete -> ``D`` whose key tuple holds the logical id resolved through the identity map.
* refresh -> ``T`` (truncate the relation) followed by one ``I`` per refresh record.

Decode problems are appended to ``Transaction.errors`` with the LSN and the reason; the change
is still emitted with what could be decoded, or skipped-but-reported when nothing could.

Commit times are total: a RedDB timestamp outside the years 1..9999 (microseconds or nanoseconds
written where milliseconds belong, a damaged u64) is clamped to that range and reported as an error
of its transaction, never raised.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pgshim import pgtypes
from pgshim.logical.positions import change_pos, commit_pos, end_pos, xid_of
from pgshim.reddb.change import parse_change_record
from pgshim.speedups import core as _core
from pgshim.speedups import untrack, untrack_transaction

if TYPE_CHECKING:
    from pgshim.logical.relations import RelationRegistry
    from pgshim.reddb.change import ChangeRecord
    from pgshim.reddb.identity import IdentityMap

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# the commit times a Python datetime (and so every plugin) can carry, at RedDB's millisecond
# precision; both lie well inside PostgreSQL's timestamptz range (4713 BC .. 294276 AD)
MIN_COMMIT_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_COMMIT_TIME = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_MIN_MS = (MIN_COMMIT_TIME - _EPOCH) // _MS
_MAX_MS = (MAX_COMMIT_TIME - _EPOCH) // _MS
_ENTITY_RECORD_MAGIC = b"RER1"


@dataclass(slots=True)
class Column:
    name: str
    type_oid: int
    typmod: int = -1
    is_key: bool = False


@dataclass(slots=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: list[Column]
    replident: str = "d"
    version: int = 1


@dataclass(slots=True)
class RowChange:
    action: str
    relation: Relation
    new: list | None
    key: list | None
    pos: int
    lsn: int
    texts: list[str | None] | None = None  # value_texts of ``new``, once computed

    def new_texts(self) -> list[str | None]:
        """PostgreSQL's text output of the new tuple, computed once for every session and every
        text-based plugin."""
        texts = self.texts
        if texts is None:
            texts = self.texts = value_texts(self.relation.columns, self.new or [])
            untrack(texts)  # kept with the change (see speedups.untrack)
        return texts


# id(columns) -> (columns, text renderer per column, the compiled core's kinds of them);
# identity and length catch replaced lists
_TEXT_PLANS: dict[int, tuple[list[Column], list[Callable[[Any], str]], tuple[int, ...] | None]] = {}


def value_texts(columns: list[Column], values: list[Any]) -> list[str | None]:
    """Each value's text output as its column's type (typoutput), None for NULL."""
    plan = _TEXT_PLANS.get(id(columns))
    if plan is None or plan[0] is not columns or len(plan[1]) != len(columns):
        oids = [column.type_oid for column in columns]
        kinds = None if _core is None else _core.text_kinds(oids)
        plan = (columns, [pgtypes.text_renderer(oid) for oid in oids], kinds)
        if len(_TEXT_PLANS) > 4096:
            _TEXT_PLANS.clear()
        _TEXT_PLANS[id(columns)] = plan
    if plan[2] is not None:
        return _core.value_texts(plan[2], plan[1], values)  # type: ignore[union-attr]
    return reference_value_texts(plan[1], values)


def reference_value_texts(
    renderers: list[Callable[[Any], str]], values: list[Any]
) -> list[str | None]:
    """value_texts in Python, one renderer per column (the compiled core's reference)."""
    return [
        None if value is None else render(value)
        for render, value in zip(renderers, values, strict=False)
    ]


@dataclass(slots=True)
class Transaction:
    xid: int
    first_lsn: int
    last_lsn: int
    begin_pos: int
    commit_pos: int
    end_pos: int
    commit_time: datetime
    changes: list[RowChange]
    records: list
    errors: list[str] = field(default_factory=list)
    encoded: dict = field(default_factory=dict)


def commit_time_of(timestamp_ms: int) -> datetime:
    """The commit time of a RedDB timestamp in milliseconds since the epoch, for any integer:
    outside the years 1..9999 it is clamped to MIN_COMMIT_TIME or MAX_COMMIT_TIME."""
    if timestamp_ms < _MIN_MS:
        return MIN_COMMIT_TIME
    if timestamp_ms > _MAX_MS:
        return MAX_COMMIT_TIME
    return _EPOCH + timedelta(milliseconds=timestamp_ms)


def commit_time_problem(timestamp_ms: int) -> str | None:
    """Why ``commit_time_of(timestamp_ms)`` is not the time RedDB wrote, or None when it is."""
    if _MIN_MS <= timestamp_ms <= _MAX_MS:
        return None
    clamped = pgtypes.text_out(1184, commit_time_of(timestamp_ms))  # timestamptz
    return (
        f"commit timestamp {timestamp_ms} ms is outside the years 1..9999; "
        f"commit time clamped to {clamped}"
    )


def empty_transaction(lsn: int, commit_time: datetime, error: str) -> Transaction:
    """The stand-in for a record that could not be parsed at all: no changes, one error."""
    return Transaction(
        xid=xid_of(lsn),
        first_lsn=lsn,
        last_lsn=lsn,
        begin_pos=change_pos(lsn),
        commit_pos=commit_pos(lsn),
        end_pos=end_pos(lsn),
        commit_time=commit_time,
        changes=[],
        records=[],
        errors=[error],
    )


def unwrap_entity_record(record: bytes) -> bytes:
    """Entity bytes of one refresh record ("RER1", u32 LE length, entity, metadata)."""
    if not record.startswith(_ENTITY_RECORD_MAGIC):
        return record
    if len(record) < 8:
        raise ValueError("truncated entity record header")
    (length,) = struct.unpack_from("<I", record, 4)
    if len(record) < 8 + length:
        raise ValueError(f"entity record says {length} bytes, has {len(record) - 8}")
    return record[8 : 8 + length]


def record_xmin(record: ChangeRecord, decode: Callable[..., Any] | None = None) -> int | None:
    """The writer's transaction id carried by a record's entity, if it has one."""
    if record.entity_bytes is None:
        return None
    if decode is None:
        from pgshim.reddb.entity import decode_entity as decode
    try:
        return decode(record.entity_bytes, lsn=record.lsn).xmin or None
    except Exception:  # undecodable bytes cannot be grouped; build() reports them
        return None


def should_group(
    prev: ChangeRecord, next_record: ChangeRecord, decode: Callable[..., Any] | None = None
) -> bool:
    """Whether ``next_record`` belongs to the same RedDB transaction as ``prev``."""
    if next_record.lsn != prev.lsn + 1:
        return False
    prev_xmin = record_xmin(prev, decode)
    return prev_xmin is not None and prev_xmin == record_xmin(next_record, decode)


class TransactionBuilder:
    def __init__(
        self,
        identity: IdentityMap,
        relations: RelationRegistry,
        *,
        group_by_xmin: bool = False,
        decode: Callable[..., Any] | None = None,
    ) -> None:
        # the compiled core places a plain row's values straight into its columns, unless a
        # decoder of the caller's is to decide every entity
        self._row_values = None if _core is None or decode is not None else _core.row_values
        self._plain = None if self._row_values is None else _core.plain_transaction
        if decode is None:
            from pgshim.reddb.entity import decode_entity as decode
        self._decode = decode
        self.identity = identity
        self.relations = relations
        self.group_by_xmin = group_by_xmin

    def flush(self) -> None:
        """Persist what the identity map learned since the last flush."""
        self.identity.flush()

    def split(self, records: list[ChangeRecord]) -> list[list[ChangeRecord]]:
        """Records in LSN order, cut into the groups that become one transaction each."""
        groups: list[list[ChangeRecord]] = []
        for record in records:
            if groups and self.group_by_xmin and should_group(groups[-1][-1], record, self._decode):
                groups[-1].append(record)
            else:
                groups.append([record])
        return groups

    def build_payload(self, payload: bytes, lsn: int, timestamp_ms: int = 0) -> Transaction:
        """The transaction of one spool payload: ``build`` of its parsed record, a plain
        insert or update of a known table made by the compiled core in one call."""
        if self._plain is not None:
            tx = self._plain(payload, lsn, self.relations.fast_plan, self.identity.learn)
            if tx is not None:
                return tx
        return self.build([parse_change_record(payload, lsn, timestamp_ms)])

    def build(self, records: list[ChangeRecord]) -> Transaction:
        if not records:
            raise ValueError("a transaction needs at least one record")
        first, last = records[0], records[-1]
        tx = Transaction(
            xid=xid_of(first.lsn),
            first_lsn=first.lsn,
            last_lsn=last.lsn,
            begin_pos=change_pos(first.lsn),
            commit_pos=commit_pos(last.lsn),
            end_pos=end_pos(last.lsn),
            commit_time=commit_time_of(last.timestamp_ms),
            changes=[],
            records=list(records),
        )
        for record in records:
            tx.errors.extend(f"lsn {record.lsn}: {problem}" for problem in record.problems)
        problem = commit_time_problem(last.timestamp_ms)
        if problem is not None:
            tx.errors.append(f"lsn {last.lsn}: {problem}")
        for record in records:
            self._add_record(tx, record)
        untrack_transaction(tx)
        return tx

    def _add_record(self, tx: Transaction, record: ChangeRecord) -> None:
        operation = record.operation
        if operation in ("insert", "update"):
            action = "I" if operation == "insert" else "U"
            if record.entity_bytes is None:
                tx.errors.append(
                    f"lsn {record.lsn}: {operation} on {record.collection!r} rid {record.rid} "
                    "carries no entity bytes; change skipped"
                )
                return
            change = self._row_change(tx, record, record.entity_bytes, action)
            if change is not None:
                tx.changes.append(change)
        elif operation == "delete":
            relation = self.relations.get(record.collection)
            logical_id = self.identity.resolve(record.collection, record.rid)
            key = [logical_id] + [None] * (len(relation.columns) - 1)
            tx.changes.append(
                RowChange("D", relation, None, key, change_pos(record.lsn), record.lsn)
            )
        elif operation == "refresh":
            relation = self.relations.get(record.collection)
            tx.changes.append(
                RowChange("T", relation, None, None, change_pos(record.lsn), record.lsn)
            )
            for index, raw in enumerate(record.refresh_records):
                try:
                    entity_bytes = unwrap_entity_record(raw)
                except ValueError as exc:
                    tx.errors.append(f"lsn {record.lsn}: refresh record {index}: {exc}")
                    continue
                change = self._row_change(tx, record, entity_bytes, "I")
                if change is not None:
                    tx.changes.append(change)
        else:
            tx.errors.append(f"lsn {record.lsn}: unknown operation {operation!r}; skipped")

    def _row_change(
        self, tx: Transaction, record: ChangeRecord, entity_bytes: bytes, action: str
    ) -> RowChange | None:
        if self._row_values is not None:
            plan = self.relations.fast_plan(record.collection)
            if plan is not None:
                fast = self._row_values(
                    entity_bytes, plan.named, plan.positional, plan.width, plan.learns
                )
                if fast is not None:
                    physical_id, logical_id, values = fast
                    values[0] = logical_id
                    self.identity.learn(record.collection, physical_id, logical_id)
                    pos = change_pos(record.lsn)
                    return RowChange(action, plan.relation, values, None, pos, record.lsn)
        try:
            entity: Any = self._decode(entity_bytes, lsn=record.lsn)
        except Exception as exc:  # any failure to decode foreign bytes is reported, not raised
            tx.errors.append(
                f"lsn {record.lsn}: cannot decode entity of {record.collection!r}: {exc}"
            )
            return None
        logical_id = entity.stable_id
        self.identity.learn(record.collection, entity.id, logical_id)
        row = self.relations.row(record.collection, entity, logical_id)
        tx.errors.extend(f"lsn {record.lsn}: {problem}" for problem in row.problems)
        return RowChange(action, row.relation, row.values, None, change_pos(record.lsn), record.lsn)


if _core is not None:
    _core.setup_transactions(Transaction, RowChange, _EPOCH, _MIN_MS, _MAX_MS)
    _core.setup_texts(_TEXT_PLANS)
