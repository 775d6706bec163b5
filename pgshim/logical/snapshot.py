"""A collection's rows as of a position, rebuilt by replaying the spool's transactions.

This is what a tablesync worker copies before it streams from its slot's consistent point. It is
exact only when the spool still holds the collection's whole history (RedDB has not pruned it).
"""

from __future__ import annotations

from collections.abc import Iterable

from pgshim.logical.transactions import Relation, Transaction


def materialize(
    transactions: Iterable[Transaction], collection: str, upto: int
) -> dict[int, dict[str, object]]:
    """logical id -> {column name: value} after every transaction ending at or before ``upto``."""
    rows: dict[int, dict[str, object]] = {}
    for tx in transactions:
        if tx.end_pos > upto:
            break
        for change in tx.changes:
            relation = change.relation
            if relation.name != collection:
                continue
            if change.action == "T":
                rows.clear()
            elif change.action in ("I", "U") and change.new is not None:
                rows[_key(relation, change.new)] = _named(relation, change.new)
            elif change.action == "D" and change.key is not None:
                rows.pop(_key(relation, change.key), None)
    return rows


def _key(relation: Relation, values: list) -> int:
    for column, value in zip(relation.columns, values, strict=False):
        if column.is_key:
            return value
    raise ValueError(f"relation {relation.name} has no key column")


def _named(relation: Relation, values: list) -> dict[str, object]:
    return {column.name: value for column, value in zip(relation.columns, values, strict=False)}
