"""test_decoding: PostgreSQL's contrib text output, one line per XLogData.

``BEGIN 730`` / ``table public.t: INSERT: rid[bigint]:1 name[text]:'x'`` / ``COMMIT 730``.
dataStart: BEGIN = the transaction's begin position (0/0 when emitted lazily because of
skip-empty-xacts), each change = its position, COMMIT = the end position.
"""

from __future__ import annotations

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.transactions import Column, RowChange, Transaction, value_texts
from pgshim.plugins.base import (
    AheadFraming,
    Message,
    PluginContext,
    SharedOutputPlugin,
    option_bool,
    unless_rendered,
)
from pgshim.plugins.quoting import quote_identifier, quote_literal, quote_qualified_identifier
from pgshim.speedups import core as _core

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
_ACTION_WORDS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


_AS_IS, _BOOL, _BIT, _QUOTED = range(4)  # how a column's text output is printed


def _literal_kind(type_oid: int) -> int:
    """How test_decoding's print_literal prints a type's text output (the compiled core's L_*
    numbers)."""
    if type_oid == _BOOL_OID:
        return _BOOL
    if type_oid in _UNQUOTED_OIDS:
        return _AS_IS
    if type_oid in _BIT_OIDS:
        return _BIT
    return _QUOTED


# id(columns) -> (columns, " name[type]:" per column, literal kind per column); the identity
# and length check catch a relation whose column list was replaced or extended
_HEADERS: dict[int, tuple[list[Column], list[str], bytes]] = {}


def _column_plan(columns: list[Column]) -> tuple[list[str], bytes]:
    hit = _HEADERS.get(id(columns))
    if hit is not None and hit[0] is columns and len(hit[1]) == len(columns):
        return hit[1], hit[2]
    headers = [
        f" {quote_identifier(c.name)}[{pgtypes.BY_OID[c.type_oid].sql_name}]:" for c in columns
    ]
    kinds = bytes(_literal_kind(c.type_oid) for c in columns)
    if len(_HEADERS) > 4096:
        _HEADERS.clear()
    _HEADERS[id(columns)] = (columns, headers, kinds)
    return headers, kinds


def column_headers(columns: list[Column]) -> list[str]:
    return _column_plan(columns)[0]


def render_tuple(columns: list[Column], texts: list[str | None], *, skip_nulls: bool) -> str:
    """One tuple from its values' text output (``value_texts``); missing trailing values are
    NULL."""
    headers, kinds = _column_plan(columns)
    if _core is not None:
        return _core.test_decoding_tuple(headers, kinds, texts, skip_nulls)
    return reference_render_tuple(headers, kinds, texts, skip_nulls=skip_nulls)


def reference_render_tuple(
    headers: list[str], kinds: bytes, texts: list[str | None], *, skip_nulls: bool
) -> str:
    """``render_tuple`` in Python (the compiled core's reference)."""
    parts = []
    for index, header in enumerate(headers):
        text = texts[index] if index < len(texts) else None
        if text is None:
            if not skip_nulls:
                parts.append(header + "null")
            continue
        kind = kinds[index]
        if kind == _BOOL:
            text = "true" if text == "t" else "false"
        elif kind == _BIT:
            text = f"B'{text}'"
        elif kind == _QUOTED:
            text = quote_literal(text)
        parts.append(header + text)
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


if _core is not None:
    _core.setup_test_decoding(_HEADERS, _PREFIXES)  # the core looks here first, then calls them


def render_change(change: RowChange) -> str:
    relation = change.relation
    prefix = _table_prefix(relation.schema, relation.name)
    if change.action == "T":
        return f"{prefix} TRUNCATE: (no-flags)"
    line = f"{prefix} {_ACTION_WORDS[change.action]}:"
    columns = relation.columns
    if change.action == "D":
        if change.key is None:
            return line + " (no-tuple-data)"
        return line + render_tuple(columns, value_texts(columns, change.key), skip_nulls=True)
    if change.new is None:
        return line + " (no-tuple-data)"
    new = render_tuple(columns, change.new_texts(), skip_nulls=False)
    if change.action == "U" and change.key is not None:
        old = render_tuple(columns, value_texts(columns, change.key), skip_nulls=True)
        return f"{line} old-key:{old} new-tuple:{new}"
    return line + new


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
        flags = (self.include_xids, self.include_timestamp, self.skip_empty_xacts)
        self.ahead_key = f"{self.name}:" + "".join(str(int(flag)) for flag in flags)

    @classmethod
    def from_ahead_key(cls, key: str) -> TestDecodingPlugin | None:
        name, _, flags = key.partition(":")
        if name != cls.name or len(flags) != 3 or set(flags) - {"0", "1"}:
            return None
        names = ("include-xids", "include-timestamp", "skip-empty-xacts")
        return cls(dict(zip(names, flags, strict=True)), PluginContext())

    def ahead_framing(self) -> AheadFraming | None:
        """``render`` framed by the compiled core in one call (include-timestamp off), for a
        transaction the sessions have not rendered already."""
        if _core is None or self.include_timestamp:
            return None
        frame = _core.test_decoding_frame
        xids, skip_empty = self.include_xids, self.skip_empty_xacts
        return unless_rendered(
            self.cache_key,
            lambda pieces, tail, tx: frame(
                pieces, tail, tx, xids, skip_empty, _column_plan, _table_prefix, render_change
            ),
        )

    def render(self, tx: Transaction) -> list[Message]:
        if _core is not None:
            body = _core.test_decoding_body(tx.changes, _column_plan, _table_prefix, render_change)
        else:
            body = [(change.pos, render_change(change).encode()) for change in tx.changes]
        if self.skip_empty_xacts and not body:
            return []
        begin = f"BEGIN {tx.xid}" if self.include_xids else "BEGIN"
        commit = f"COMMIT {tx.xid}" if self.include_xids else "COMMIT"
        if self.include_timestamp:
            commit += f" (at {pgtypes.text_out(1184, tx.commit_time)})"
        begin_pos = 0 if self.skip_empty_xacts else tx.begin_pos
        return [(begin_pos, begin.encode()), *body, (tx.end_pos, commit.encode())]
