"""``COPY table [(columns)] TO STDOUT [options]`` and the query a PostgreSQL 15+ tablesync sends
for a table published with a row filter, ``COPY (SELECT columns FROM [ONLY] table [WHERE
filter]) TO STDOUT``: the statement and the COPY text, CSV and binary formats."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pglast import ast

from pgshim import pgtypes
from pgshim.errors import PgError

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + _INT32.pack(0) + _INT32.pack(0)
BINARY_TRAILER = _INT16.pack(-1)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True, slots=True)
class CopyFormat:
    csv: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool = False
    quote: str = '"'
    escape: str = '"'
    binary: bool = False


@dataclass(frozen=True, slots=True)
class CopyTarget:
    schema: str | None
    table: str
    columns: list[str] | None  # None: every column, in table order
    format: CopyFormat = CopyFormat()
    where: ast.Node | None = None  # a row filter's expression (see pgshim.logical.rowfilter)


def copy_target(node: ast.CopyStmt, superuser: bool) -> CopyTarget:
    """What a COPY statement asks for; PostgreSQL's error for what pgshim does not do."""
    if node.is_from:
        raise PgError("25006", "cannot execute COPY FROM in a read-only transaction")
    if node.filename is not None or node.is_program:
        what = "to or from an external program" if node.is_program else "to a file"
        if not superuser:
            raise PgError(
                "42501",
                f"must be superuser or have privileges of the pg_write_server_files role to COPY {what}",
                hint="Anyone can COPY to stdout or from stdin. "
                "psql's \\copy command also works for anyone.",
            )
        raise PgError("0A000", f"pgshim does not COPY {what}: only COPY ... TO STDOUT")
    if node.relation is None:
        return _query_target(node)
    columns = [part.sval for part in node.attlist] if node.attlist else None
    relation = node.relation
    return CopyTarget(relation.schemaname, relation.relname, columns, _format(node.options))


def _query_target(node: ast.CopyStmt) -> CopyTarget:
    """``COPY (SELECT a, b FROM [ONLY] t [WHERE expr]) TO STDOUT``: named columns of one table,
    the rows an expression allows; any other query is refused."""
    query = node.query
    simple = (
        isinstance(query, ast.SelectStmt)
        and query.fromClause is not None
        and len(query.fromClause) == 1
        and isinstance(query.fromClause[0], ast.RangeVar)
        and query.fromClause[0].alias is None
        and all(
            getattr(query, clause) is None
            for clause in (
                "distinctClause", "intoClause", "groupClause", "havingClause", "windowClause",
                "valuesLists", "sortClause", "limitOffset", "limitCount", "lockingClause",
                "withClause", "larg", "rarg",
            )
        )
        and all(
            isinstance(target, ast.ResTarget)
            and target.name is None
            and isinstance(target.val, ast.ColumnRef)
            and len(target.val.fields) == 1
            and isinstance(target.val.fields[0], ast.String)
            for target in query.targetList or ()
        )
    )  # fmt: skip
    if not simple:
        raise PgError(
            "0A000",
            "pgshim only supports COPY of a table, or of SELECT columns FROM a table WHERE a "
            "row filter",
        )
    relation = query.fromClause[0]
    columns = [target.val.fields[0].sval for target in query.targetList or ()]
    return CopyTarget(
        relation.schemaname, relation.relname, columns, _format(node.options), query.whereClause
    )


def _format(options: Sequence[ast.DefElem] | None) -> CopyFormat:
    values: dict[str, str | None] = {}
    for option in options or ():
        name = option.defname.lower()
        if name in values:
            raise PgError("42601", "conflicting or redundant options")
        values[name] = _option_value(option.arg)
    unknown = set(values) - {"format", "delimiter", "null", "header", "quote", "escape"}
    if unknown:
        raise PgError("0A000", f'COPY option "{sorted(unknown)[0]}" is not supported by pgshim')
    kind = (values.get("format") or "text").lower()
    if kind not in ("text", "csv", "binary"):
        raise PgError("22023", f'COPY format "{kind}" not recognized')
    if kind == "binary":
        for name in ("delimiter", "null", "header"):
            if name in values:
                raise PgError("42601", f"cannot specify {name.upper()} in BINARY mode")
        if "quote" in values or "escape" in values:
            option = "quote" if "quote" in values else "escape"
            raise PgError("0A000", f"COPY {option} available only in CSV mode")
        return CopyFormat(binary=True)
    csv = kind == "csv"
    if not csv and ("quote" in values or "escape" in values):
        option = "quote" if "quote" in values else "escape"
        raise PgError("0A000", f"COPY {option} available only in CSV mode")
    delimiter = values.get("delimiter") or ("," if csv else "\t")
    quote = values.get("quote") or '"'
    escape = values.get("escape") or quote
    for name, value in (("delimiter", delimiter), ("quote", quote), ("escape", escape)):
        if len(value.encode()) != 1:
            raise PgError("0A000", f"COPY {name} must be a single one-byte character")
    if delimiter in "\r\n" or (not csv and delimiter == "\\"):
        raise PgError("22023", "COPY delimiter cannot be newline or carriage return")
    header = values.get("header")
    return CopyFormat(
        csv=csv,
        delimiter=delimiter,
        null=values.get("null") if "null" in values else ("" if csv else "\\N"),  # type: ignore[arg-type]
        header=header is None and "header" in values or _true(header),
        quote=quote,
        escape=escape,
    )


def _option_value(arg: object) -> str | None:
    if arg is None:
        return None
    for attribute in ("sval", "ival", "fval", "boolval"):
        value = getattr(arg, attribute, None)
        if value is not None:
            return str(value).lower() if attribute == "boolval" else str(value)
    return None


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "on", "1", "yes")


def header_line(names: Sequence[str], fmt: CopyFormat) -> bytes:
    fields = [_csv_field(name, fmt) if fmt.csv else name.translate(_ESCAPES) for name in names]
    return (fmt.delimiter.join(fields) + "\n").encode()


def text_row(
    values: Sequence[object], type_oids: Sequence[int], fmt: CopyFormat = CopyFormat()
) -> bytes:
    """One line of COPY output: NULL as the null string, text format's backslash escapes or
    CSV's quoting."""
    fields = []
    for value, oid in zip(values, type_oids, strict=True):
        if value is None:
            fields.append(fmt.null)
            continue
        text = pgtypes.text_out(oid, value)
        if fmt.csv:
            fields.append(_csv_field(text, fmt))
        else:
            escaped = text.translate(_ESCAPES)
            if fmt.delimiter != "\t":
                escaped = escaped.replace(fmt.delimiter, "\\" + fmt.delimiter)
            fields.append(escaped)
    return (fmt.delimiter.join(fields) + "\n").encode()


def binary_row(values: Sequence[object], type_oids: Sequence[int]) -> bytes:
    """One tuple of the binary COPY format: the field count, then each field's length (-1 for
    NULL) and its binary send representation."""
    parts = [_INT16.pack(len(values))]
    for value, oid in zip(values, type_oids, strict=True):
        if value is None:
            parts.append(_INT32.pack(-1))
        else:
            data = pgtypes.binary_send(oid, value)
            parts.append(_INT32.pack(len(data)) + data)
    return b"".join(parts)


def _csv_field(text: str, fmt: CopyFormat) -> str:
    needs_quotes = (
        text == fmt.null
        or text == "\\."
        or any(char in text for char in (fmt.delimiter, fmt.quote, "\n", "\r"))
    )
    if not needs_quotes:
        return text
    escaped = text.replace(fmt.escape, fmt.escape * 2) if fmt.escape != fmt.quote else text
    escaped = escaped.replace(fmt.quote, fmt.escape + fmt.quote)
    return fmt.quote + escaped + fmt.quote
