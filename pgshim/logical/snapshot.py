"""A collection's rows as of a position, rebuilt by replaying the spool's transactions.

This is what a tablesync worker copies before it streams from its slot's consistent point. It is
exact only when the spool still holds the collection's whole history (RedDB has not pruned it).
"""

from __future__ import annotations

from pgshim.logical.transactions import Relation, Transaction


class Snapshot:
    """A collection's rows (logical id -> {column name: value}) after every transaction ending at
    or before ``upto``, built one transaction at a time."""

    def __init__(self, collection: str, upto: int) -> None:
        self.collection = collection
        self.upto = upto
        self.rows: dict[int, dict[str, object]] = {}

    def apply(self, tx: Transaction) -> bool:
        """Take one transaction in; False once past ``upto`` (the rest is not needed)."""
        if tx.end_pos > self.upto:
            return False
        rows = self.rows
        for change in tx.changes:
            relation = change.relation
            if relation.name != self.collection:
                continue
            if change.action == "T":
                rows.clear()
            elif change.action in ("I", "U") and change.new is not None:
                rows[_key(relation, change.new)] = _named(relation, change.new)
            elif change.action == "D" and change.key is not None:
                rows.pop(_key(relation, change.key), None)
        return True


def _key(relation: Relation, values: list) -> int:
    for column, value in zip(relation.columns, values, strict=False):
        if column.is_key:
            return value
    raise ValueError(f"relation {relation.name} has no key column")


def _named(relation: Relation, values: list) -> dict[str, object]:
    return {column.name: value for column, value in zip(relation.columns, values, strict=False)}
