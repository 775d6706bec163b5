"""test_decoding: PostgreSQL's contrib text output, one line per XLogData.

``BEGIN 730`` / ``table public.t: INSERT: rid[bigint]:1 name[text]:'x'`` / ``COMMIT 730``.
dataStart: BEGIN = the transaction's begin position (0/0 when emitted lazily because of
skip-empty-xacts), each change = its position, COMMIT = the end position.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.transactions import Column, RowChange, Transaction
from pgshim.plugins.base import Message, PluginContext, SharedOutputPlugin, option_bool
from pgshim.plugins.quoting import quote_identifier, quote_literal, quote_qualified_identifier

_BOOLEAN_OPTIONS = {
    "include-xids": True,
    "include-timestamp": False,
    "skip-empty-xacts": False,
    "only-local": False,
    "include-rewrites": False,
    "force-binary": False,
    "stream-changes": False,
}
_UNQUOTED_OIDS = frozenset({20, 21, 23, 26, 700, 701, 1700})
_BOOL_OID = 16
_BIT_OIDS = frozenset({1560, 1562})
# types whose text output is str() of an int, or a quoted str
_PLAIN_INTEGER_OIDS = frozenset({20, 21, 23, 26})
_PLAIN_TEXT_OIDS = frozenset({25, 1043, 19})
_ACTION_WORDS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


def render_value(type_oid: int, value: Any) -> str:
    if value is None:
        return "null"
    if type_oid == _BOOL_OID:
        return "true" if value else "false"
    text = pgtypes.text_out(type_oid, value)
    if type_oid in _UNQUOTED_OIDS:
        return text
    if type_oid in _BIT_OIDS:
        return f"B'{text}'"
    return quote_literal(text)


def _value_renderer(type_oid: int) -> Callable[[Any], str]:
    """render_value for one column type, with the common types' text output inlined."""
    if type_oid in _PLAIN_INTEGER_OIDS:
        return lambda value: str(value) if type(value) is int else render_value(type_oid, value)
    if type_oid in _PLAIN_TEXT_OIDS:
        return lambda value: (
            "'" + value.replace("'", "''") + "'"
            if type(value) is str
            else render_value(type_oid, value)
        )
    if type_oid == _BOOL_OID:
        return lambda value: "true" if value else "false"
    if type_oid in _BIT_OIDS:
        return partial(render_value, type_oid)
    render = pgtypes.text_renderer(type_oid)
    if type_oid in _UNQUOTED_OIDS:
        return render
    return lambda value: quote_literal(render(value))


# id(columns) -> (columns, " name[type]:" per column, value renderer per column); the identity
# and length check catch a relation whose column list was replaced or extended
_HEADERS: dict[int, tuple[list[Column], list[str], list[Callable[[Any], str]]]] = {}


def _column_plan(columns: list[Column]) -> tuple[list[str], list[Callable[[Any], str]]]:
    hit = _HEADERS.get(id(columns))
    if hit is not None and hit[0] is columns and len(hit[1]) == len(columns):
        return hit[1], hit[2]
    headers = [
        f" {quote_identifier(c.name)}[{pgtypes.BY_OID[c.type_oid].sql_name}]:" for c in columns
    ]
    renderers = [_value_renderer(c.type_oid) for c in columns]
    if len(_HEADERS) > 4096:
        _HEADERS.clear()
    _HEADERS[id(columns)] = (columns, headers, renderers)
    return headers, renderers


def column_headers(columns: list[Column]) -> list[str]:
    return _column_plan(columns)[0]


def render_tuple(columns: list[Column], values: list[Any], *, skip_nulls: bool) -> str:
    headers, renderers = _column_plan(columns)
    if len(values) < len(columns):
        values = values + [None] * (len(columns) - len(values))
    parts = []
    for header, render, value in zip(headers, renderers, values, strict=False):
        if value is None:
            if not skip_nulls:
                parts.append(header + "null")
            continue
        parts.append(header + render(value))
    return "".join(parts)


_PREFIXES: dict[tuple[str, str], str] = {}


def _table_prefix(schema: str, name: str) -> str:
    prefix = _PREFIXES.get((schema, name))
    if prefix is None:
        if len(_PREFIXES) > 4096:
            _PREFIXES.clear()
        prefix = f"table {quote_qualified_identifier(schema, name)}:"
        _PREFIXES[(schema, name)] = prefix
    return prefix


def render_change(change: RowChange) -> str:
    relation = change.relation
    prefix = _table_prefix(relation.schema, relation.name)
    if change.action == "T":
        return f"{prefix} TRUNCATE: (no-flags)"
    line = f"{prefix} {_ACTION_WORDS[change.action]}:"
    if change.action == "D":
        if change.key is None:
            return line + " (no-tuple-data)"
        return line + render_tuple(relation.columns, change.key, skip_nulls=True)
    if change.new is None:
        return line + " (no-tuple-data)"
    if change.action == "U" and change.key is not None:
        old = render_tuple(relation.columns, change.key, skip_nulls=True)
        new = render_tuple(relation.columns, change.new, skip_nulls=False)
        return f"{line} old-key:{old} new-tuple:{new}"
    return line + render_tuple(relation.columns, change.new, skip_nulls=False)


class TestDecodingPlugin(SharedOutputPlugin):
    name = "test_decoding"
    __test__ = False  # not a pytest class despite its name

    def __init__(self, options: dict[str, str | None], ctx: PluginContext) -> None:
        settings = dict(_BOOLEAN_OPTIONS)
        for option, value in options.items():
            if option not in settings:
                shown = "(null)" if value is None else value
                raise PgError("22023", f'option "{option}" = "{shown}" is unknown')
            settings[option] = option_bool(option, value)
        self.include_xids = settings["include-xids"]
        self.include_timestamp = settings["include-timestamp"]
        self.skip_empty_xacts = settings["skip-empty-xacts"]
        self.cache_key = (
            self.name,
            self.include_xids,
            self.include_timestamp,
            self.skip_empty_xacts,
        )

    def _render(self, tx: Transaction) -> list[Message]:
        body = [(change.pos, render_change(change).encode()) for change in tx.changes]
        if self.skip_empty_xacts and not body:
            return []
        begin = f"BEGIN {tx.xid}" if self.include_xids else "BEGIN"
        commit = f"COMMIT {tx.xid}" if self.include_xids else "COMMIT"
        if self.include_timestamp:
            commit += f" (at {pgtypes.text_out(1184, tx.commit_time)})"
        begin_pos = 0 if self.skip_empty_xacts else tx.begin_pos
        return [(begin_pos, begin.encode()), *body, (tx.end_pos, commit.encode())]
