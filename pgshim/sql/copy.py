"""``COPY table [(columns)] TO STDOUT``: the statement and the COPY text format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from pgshim import pgtypes
from pgshim.errors import PgError

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True, slots=True)
class CopyTarget:
    schema: str | None
    table: str
    columns: list[str] | None  # None: every column, in table order


def parse_copy_to_stdout(stmt: str) -> CopyTarget:
    try:
        tree = sqlglot.parse_one(stmt, read="postgres")
    except sqlglot.errors.ParseError as exc:
        raise PgError("42601", f"syntax error in COPY: {exc}") from None
    if not isinstance(tree, exp.Copy):
        raise PgError("42601", "not a COPY statement")
    if tree.args.get("kind"):
        raise PgError("25006", "cannot execute COPY FROM in a read-only transaction")
    files = tree.args.get("files") or []
    if len(files) != 1 or files[0].name.upper() != "STDOUT":
        raise PgError("0A000", "pgshim only supports COPY ... TO STDOUT")
    for param in tree.args.get("params") or []:
        name = param.this.name.upper()
        value = param.expression.name.lower() if param.expression is not None else ""
        if name == "FORMAT" and value != "text":
            raise PgError("0A000", f"COPY format {value} is not supported by pgshim")
    target = tree.this
    columns = None
    if isinstance(target, exp.Schema):
        columns = [column.name for column in target.expressions]
        target = target.this
    if not isinstance(target, exp.Table):
        raise PgError("0A000", "pgshim only supports COPY of a table")
    return CopyTarget(target.db or None, target.name, columns)


def text_row(values: Sequence[object], type_oids: Sequence[int]) -> bytes:
    """One line of COPY text format: tab-separated, ``\\N`` for NULL, backslash escapes."""
    fields = [
        "\\N" if value is None else pgtypes.text_out(oid, value).translate(_ESCAPES)
        for value, oid in zip(values, type_oids, strict=True)
    ]
    return ("\t".join(fields) + "\n").encode()
