"""reddb: lossless JSON, one message per RedDB change record.

Each message is the record's original ChangeRecord JSON object plus a ``"pg"`` object with the
position, schema, table, action and the row as {column: PostgreSQL text value or null}.
A refresh record carries ``"action": "truncate"`` and the new rows under ``"rows"``. Decode
problems of the transaction are listed under ``"pg"."errors"``. Every message is stamped with
its record's change position except the last, which carries the transaction's end position so
that confirming it means the transaction is done.
"""

from __future__ import annotations

from typing import Any

import orjson

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.positions import change_pos
from pgshim.logical.transactions import RowChange, Transaction
from pgshim.plugins.base import Message, PluginContext, SharedOutputPlugin

_ACTION_NAMES = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}


def row_as_text(change: RowChange) -> dict[str, str | None]:
    values = change.new if change.new is not None else change.key or []
    row: dict[str, str | None] = {}
    for index, column in enumerate(change.relation.columns):
        value = values[index] if index < len(values) else None
        row[column.name] = None if value is None else pgtypes.text_out(column.type_oid, value)
    return row


class RedDBPlugin(SharedOutputPlugin):
    name = "reddb"

    def __init__(self, options: dict[str, str | None], ctx: PluginContext) -> None:
        for option, value in options.items():
            shown = "(null)" if value is None else value
            raise PgError("22023", f'option "{option}" = "{shown}" is unknown')
        self.cache_key = (self.name,)

    def render(self, tx: Transaction) -> list[Message]:
        messages: list[Message] = []
        for number, record in enumerate(tx.records, start=1):
            changes = [change for change in tx.changes if change.lsn == record.lsn]
            document: dict[str, Any] = orjson.loads(record.raw)
            pg: dict[str, Any] = {
                "position": pgtypes.format_lsn(change_pos(record.lsn)),
                "schema": changes[0].relation.schema if changes else None,
                "table": changes[0].relation.name if changes else record.collection,
            }
            if changes and changes[0].action == "T":
                pg["action"] = "truncate"
                pg["rows"] = [row_as_text(change) for change in changes[1:]]
            elif changes:
                pg["action"] = _ACTION_NAMES[changes[0].action]
                pg["columns"] = row_as_text(changes[0])
            else:
                pg["action"] = None
                pg["columns"] = None
            problems = [error for error in tx.errors if error.startswith(f"lsn {record.lsn}:")]
            if problems:
                pg["errors"] = problems
            document["pg"] = pg
            data_start = tx.end_pos if number == len(tx.records) else record.lsn << 8
            messages.append((data_start, orjson.dumps(document)))
        return messages
