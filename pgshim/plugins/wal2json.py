"""wal2json 2.5 output, format versions 1 and 2, byte for byte.

Format 1 is one JSON document per transaction stamped with the begin position (or, with
write-in-chunks, one chunk at BEGIN, one per change and one at COMMIT). Format 2 is one object
per BEGIN, change and COMMIT, each stamped with its own position.
"""

from __future__ import annotations

from typing import Any

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.transactions import Column, RowChange, Transaction
from pgshim.plugins.base import Message, PluginContext, SharedOutputPlugin, option_bool
from pgshim.plugins.quoting import escape_json

_BOOLEAN_OPTIONS = {
    "include-xids": False,
    "include-timestamp": False,
    "include-lsn": False,
    "include-origin": False,
    "include-schemas": True,
    "include-types": True,
    "include-typmod": True,
    "include-type-oids": False,
    "include-domain-data-type": False,
    "include-column-positions": False,
    "include-not-null": False,
    "include-default": False,
    "include-pk": False,
    "numeric-data-types-as-string": False,
    "pretty-print": False,
    "write-in-chunks": False,
    "include-transaction": True,
    "include-unchanged-toast": False,
}
_LIST_OPTIONS = (
    "filter-tables",
    "add-tables",
    "filter-origins",
    "filter-msg-prefixes",
    "add-msg-prefixes",
    "actions",
)
_NUMBER_OIDS = frozenset({20, 21, 23, 26, 700, 701, 1700})
_NUMBER_CHARS = frozenset("0123456789+-eE.")
_SPECIAL_NUMBERS = ("nan", "infinity", "-infinity")
_BOOL_OID = 16
_BYTEA_OID = 17
_NUMERIC_OID = 1700
_CHARACTER_OIDS = frozenset({1042, 1043})
_ACTION_NAMES = {"I": "insert", "U": "update", "D": "delete", "T": "truncate"}


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_table_patterns(option: str, value: str) -> list[tuple[str | None, str | None]]:
    """``schema.table`` items, ``*`` for any schema or table; None stands for the wildcard."""
    patterns: list[tuple[str | None, str | None]] = []
    for item in _split_unescaped(value, ","):
        item = item.strip()
        if not item:
            continue
        pieces = _split_unescaped(item, ".")
        if len(pieces) != 2:
            raise PgError("22023", f'could not parse value "{value}" for parameter "{option}"')
        schema, table = (piece.strip() for piece in pieces)
        patterns.append((None if schema == "*" else schema, None if table == "*" else table))
    return patterns


def _matches(patterns: list[tuple[str | None, str | None]], schema: str, table: str) -> bool:
    return any(
        (p_schema is None or p_schema == schema) and (p_table is None or p_table == table)
        for p_schema, p_table in patterns
    )


class Wal2JsonPlugin(SharedOutputPlugin):
    name = "wal2json"

    def __init__(self, options: dict[str, str | None], ctx: PluginContext) -> None:
        settings: dict[str, bool] = dict(_BOOLEAN_OPTIONS)
        self.format_version = 1
        self.filter_tables: list[tuple[str | None, str | None]] = []
        self.add_tables: list[tuple[str | None, str | None]] = []
        actions: set[str] | None = None
        for option, value in options.items():
            if option in settings:
                settings[option] = option_bool(option, value)
            elif option == "format-version":
                self.format_version = self._parse_format_version(value)
            elif option in _LIST_OPTIONS:
                if value is None:
                    raise PgError("22023", f'parameter "{option}" cannot be null')
                if option == "filter-tables":
                    self.filter_tables = parse_table_patterns(option, value)
                elif option == "add-tables":
                    self.add_tables = parse_table_patterns(option, value)
                elif option == "actions":
                    actions = self._parse_actions(value)
            else:
                shown = "(null)" if value is None else value
                raise PgError("22023", f'option "{option}" = "{shown}" is unknown')
        self.opts = settings
        if actions is None:
            actions = {"insert", "update", "delete"}
            if self.format_version == 2:
                actions.add("truncate")
        self.actions = frozenset(actions)
        pretty = settings["pretty-print"] and self.format_version == 1
        self.nl, self.ht, self.sp = ("\n", "\t", " ") if pretty else ("", "", "")
        self.cache_key = (
            self.name,
            self.format_version,
            tuple(sorted(settings.items())),
            tuple(self.filter_tables),
            tuple(self.add_tables),
            tuple(sorted(self.actions)),
        )

    @staticmethod
    def _parse_format_version(value: str | None) -> int:
        if value is None:
            return 1
        try:
            version = int(value.strip())
        except ValueError:
            raise PgError(
                "22023", f'could not parse value "{value}" for parameter "format-version"'
            ) from None
        if version > 2:
            raise PgError(
                "0A000",
                f"client sent format_version={version} but we only support format 2 or lower",
            )
        if version < 1:
            raise PgError(
                "0A000",
                f"client sent format_version={version} but we only support format 1 or higher",
            )
        return version

    @staticmethod
    def _parse_actions(value: str) -> set[str]:
        actions = {item.strip().lower() for item in value.split(",") if item.strip()}
        for action in actions:
            if action not in _ACTION_NAMES.values():
                raise PgError("22023", f'could not parse value "{value}" for parameter "actions"')
        return actions

    def render(self, tx: Transaction) -> list[Message]:
        changes = [change for change in tx.changes if self._wanted(change)]
        if self.format_version == 2:
            return self._render_v2(tx, changes)
        return self._render_v1(tx, changes)

    def _wanted(self, change: RowChange) -> bool:
        if _ACTION_NAMES[change.action] not in self.actions:
            return False
        schema, table = change.relation.schema, change.relation.name
        if _matches(self.filter_tables, schema, table):
            return False
        return not self.add_tables or _matches(self.add_tables, schema, table)

    # --- shared value rendering --------------------------------------------------------------

    def _value(self, type_oid: int, value: Any) -> str:
        if value is None:
            return "null"
        if type_oid == _BOOL_OID:
            return "true" if value else "false"
        text = pgtypes.text_out(type_oid, value)
        if type_oid in _NUMBER_OIDS:
            special = text.lower() in _SPECIAL_NUMBERS
            if self.opts["numeric-data-types-as-string"]:
                return escape_json(text)
            if special or not set(text) <= _NUMBER_CHARS:
                return "null"
            return text
        if type_oid == _BYTEA_OID:
            return escape_json(text[2:])
        return escape_json(text)

    def _type_name(self, column: Column, *, with_typmod: bool) -> str:
        pg_type = pgtypes.BY_OID[column.type_oid]
        if not with_typmod:
            return escape_json(pg_type.name)
        return escape_json(format_type_with_typmod(column.type_oid, column.typmod))

    # --- format 1 -----------------------------------------------------------------------------

    def _render_v1(self, tx: Transaction, changes: list[RowChange]) -> list[Message]:
        nl, ht, sp = self.nl, self.ht, self.sp
        head = "{" + nl
        if self.opts["include-xids"]:
            head += f'{ht}"xid":{sp}{tx.xid},{nl}'
        if self.opts["include-lsn"]:
            head += f'{ht}"nextlsn":{sp}"{pgtypes.format_lsn(tx.end_pos)}",{nl}'
        if self.opts["include-timestamp"]:
            head += f'{ht}"timestamp":{sp}"{pgtypes.text_out(1184, tx.commit_time)}",{nl}'
        if self.opts["include-origin"]:
            head += f'{ht}"origin":{sp}0,{nl}'
        head += f'{ht}"change":{sp}['
        chunks = self.opts["write-in-chunks"]
        bodies = []
        for number, change in enumerate((c for c in changes if c.action != "T"), start=1):
            bodies.append((change.pos, self._change_v1(change, number, chunks)))
        tail = ("" if chunks else nl) + f"{ht}]{nl}}}"
        if chunks:
            return [
                (tx.begin_pos, head.encode()),
                *((pos, body.encode()) for pos, body in bodies),
                (tx.end_pos, tail.encode()),
            ]
        document = head + "".join(body for _, body in bodies) + tail
        return [(tx.begin_pos, document.encode())]

    def _change_v1(self, change: RowChange, number: int, chunks: bool) -> str:
        nl, ht, sp = self.nl, self.ht, self.sp
        relation = change.relation
        out = ("" if chunks else nl) + ht * 2 + ("," if number > 1 else "") + "{" + nl
        out += f'{ht * 3}"kind":{sp}"{_ACTION_NAMES[change.action]}",{nl}'
        if self.opts["include-schemas"]:
            out += f'{ht * 3}"schema":{sp}{escape_json(relation.schema)},{nl}'
        out += f'{ht * 3}"table":{sp}{escape_json(relation.name)},{nl}'
        include_pk = self.opts["include-pk"]
        columns = relation.columns
        if change.action == "I":
            out += self._tuple_v1(columns, _aligned(change.new, columns), addcomma=include_pk)
            if include_pk:
                out += self._pk_v1(columns, addcomma=False)
        elif change.action == "U":
            new = _aligned(change.new, columns)
            out += self._tuple_v1(columns, new, addcomma=True)
            if include_pk:
                out += self._pk_v1(columns, addcomma=True)
            old = _aligned(change.key, columns) if change.key is not None else new
            out += self._identity_v1(columns, old)
        else:
            if include_pk:
                out += self._pk_v1(columns, addcomma=True)
            out += self._identity_v1(columns, _aligned(change.key, columns))
        return out + ht * 2 + "}"

    def _tuple_v1(self, columns: list[Column], values: list[Any], *, addcomma: bool) -> str:
        nl, ht, sp = self.nl, self.ht, self.sp
        sep = "," + sp
        typmod = self.opts["include-typmod"]
        out = f'{ht * 3}"columnnames":{sp}[' + sep.join(escape_json(c.name) for c in columns)
        out += "]," + nl
        if self.opts["include-types"]:
            types = sep.join(self._type_name(c, with_typmod=typmod) for c in columns)
            out += f'{ht * 3}"columntypes":{sp}[{types}],{nl}'
        if self.opts["include-type-oids"]:
            oids = sep.join(str(c.type_oid) for c in columns)
            out += f'{ht * 3}"columntypeoids":{sp}[{oids}],{nl}'
        if self.opts["include-column-positions"]:
            positions = sep.join(str(i + 1) for i in range(len(columns)))
            out += f'{ht * 3}"columnpositions":{sp}[{positions}],{nl}'
        if self.opts["include-not-null"]:
            optionals = sep.join("false" if c.is_key else "true" for c in columns)
            out += f'{ht * 3}"columnoptionals":{sp}[{optionals}],{nl}'
        if self.opts["include-default"]:
            out += f'{ht * 3}"columndefaults":{sp}[{sep.join("null" for _ in columns)}],{nl}'
        rendered = sep.join(
            self._value(c.type_oid, v) for c, v in zip(columns, values, strict=True)
        )
        out += f'{ht * 3}"columnvalues":{sp}[{rendered}]' + ("," if addcomma else "") + nl
        return out

    def _identity_v1(self, columns: list[Column], values: list[Any]) -> str:
        nl, ht, sp = self.nl, self.ht, self.sp
        sep = "," + sp
        keys = [(c, v) for c, v in zip(columns, values, strict=True) if c.is_key and v is not None]
        typmod = self.opts["include-typmod"]
        out = f'{ht * 3}"oldkeys":{sp}{{{nl}'
        out += f'{ht * 4}"keynames":{sp}[' + sep.join(escape_json(c.name) for c, _ in keys)
        out += "]," + nl
        if self.opts["include-types"]:
            types = sep.join(self._type_name(c, with_typmod=typmod) for c, _ in keys)
            out += f'{ht * 4}"keytypes":{sp}[{types}],{nl}'
        if self.opts["include-type-oids"]:
            oids = sep.join(str(c.type_oid) for c, _ in keys)
            out += f'{ht * 4}"keytypeoids":{sp}[{oids}],{nl}'
        rendered = sep.join(self._value(c.type_oid, v) for c, v in keys)
        out += f'{ht * 4}"keyvalues":{sp}[{rendered}]{nl}'
        return out + f"{ht * 3}}}{nl}"

    def _pk_v1(self, columns: list[Column], *, addcomma: bool) -> str:
        nl, ht, sp = self.nl, self.ht, self.sp
        sep = "," + sp
        keys = [c for c in columns if c.is_key]
        out = f'{ht * 3}"pk":{sp}{{{nl}'
        out += f'{ht * 4}"pknames":{sp}[' + sep.join(escape_json(c.name) for c in keys) + "],"
        out += nl + f'{ht * 4}"pktypes":{sp}['
        if self.opts["include-types"]:
            typmod = self.opts["include-typmod"]
            out += sep.join(self._type_name(c, with_typmod=typmod) for c in keys)
        out += "]" + nl + ht * 3 + ("}," if addcomma else "}") + nl
        return out

    # --- format 2 -----------------------------------------------------------------------------

    def _render_v2(self, tx: Transaction, changes: list[RowChange]) -> list[Message]:
        messages: list[Message] = []
        if self.opts["include-transaction"]:
            messages.append((tx.begin_pos, self._boundary_v2("B", tx).encode()))
        for change in changes:
            messages.append((change.pos, self._change_v2(tx, change).encode()))
        if self.opts["include-transaction"]:
            messages.append((tx.end_pos, self._boundary_v2("C", tx).encode()))
        return messages

    def _head_v2(self, action: str, tx: Transaction) -> str:
        """What every format-2 object starts with: action, then xid/timestamp/origin if asked."""
        out = f'{{"action":"{action}"'
        if self.opts["include-xids"]:
            out += f',"xid":{tx.xid}'
        if self.opts["include-timestamp"]:
            out += f',"timestamp":"{pgtypes.text_out(1184, tx.commit_time)}"'
        if self.opts["include-origin"]:
            out += ',"origin":0'
        return out

    def _boundary_v2(self, action: str, tx: Transaction) -> str:
        out = self._head_v2(action, tx)
        if self.opts["include-lsn"]:
            out += f',"lsn":"{pgtypes.format_lsn(tx.commit_pos)}"'
            out += f',"nextlsn":"{pgtypes.format_lsn(tx.end_pos)}"'
        return out + "}"

    def _change_v2(self, tx: Transaction, change: RowChange) -> str:
        relation = change.relation
        out = self._head_v2(change.action, tx)
        if self.opts["include-lsn"]:
            out += f',"lsn":"{pgtypes.format_lsn(change.pos)}"'
        if self.opts["include-schemas"]:
            out += f',"schema":{escape_json(relation.schema)}'
        out += f',"table":{escape_json(relation.name)}'
        if change.action == "T":
            return out + "}"
        columns = relation.columns
        if change.action in ("I", "U"):
            new = _aligned(change.new, columns)
            out += ',"columns":[' + self._columns_v2(columns, new, with_details=True) + "]"
        if change.action in ("U", "D"):
            if change.action == "U" and change.key is None:
                old = _aligned(change.new, columns)
            else:
                old = _aligned(change.key, columns)
            keys = [(c, v) for c, v in zip(columns, old, strict=True) if c.is_key]
            out += (
                ',"identity":['
                + self._columns_v2([c for c, _ in keys], [v for _, v in keys], with_details=False)
                + "]"
            )
        if self.opts["include-pk"]:
            keys = [c for c in columns if c.is_key]
            out += ',"pk":[' + ",".join(self._column_head_v2(c) + "}" for c in keys) + "]"
        return out + "}"

    def _column_head_v2(self, column: Column) -> str:
        out = '{"name":' + escape_json(column.name)
        if self.opts["include-types"]:
            out += ',"type":' + self._type_name(column, with_typmod=True)
        if self.opts["include-type-oids"]:
            out += f',"typeoid":{column.type_oid}'
        return out

    def _columns_v2(self, columns: list[Column], values: list[Any], *, with_details: bool) -> str:
        items = []
        for position, (column, value) in enumerate(zip(columns, values, strict=True), start=1):
            item = self._column_head_v2(column) + ',"value":' + self._value(column.type_oid, value)
            if with_details and self.opts["include-not-null"]:
                item += ',"optional":' + ("false" if column.is_key else "true")
            if with_details and self.opts["include-column-positions"]:
                item += f',"position":{position}'
            if with_details and self.opts["include-default"]:
                item += ',"default":null'
            items.append(item + "}")
        return ",".join(items)


def format_type_with_typmod(type_oid: int, typmod: int) -> str:
    """format_type(oid, typmod) for the types whose typmod shows: numeric and character types."""
    name = pgtypes.BY_OID[type_oid].sql_name
    if typmod < 0:
        return name
    if type_oid == _NUMERIC_OID:
        return f"{name}({(typmod - 4) >> 16},{(typmod - 4) & 0xFFFF})"
    if type_oid in _CHARACTER_OIDS:
        return f"{name}({typmod - 4})"
    return name


def _aligned(values: list | None, columns: list[Column]) -> list[Any]:
    """Values padded with NULL for columns the relation gained after the change was built."""
    values = list(values or [])
    return values + [None] * (len(columns) - len(values))
