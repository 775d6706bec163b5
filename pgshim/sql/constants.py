"""Where a constant stands in a statement's text (pure): pglast's tree keeps no position of
constants, the JSON form of the same parse does. Errors about a constant point at it, as
PostgreSQL's do."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pglast import parser


def constant_location(
    source: str, kind: str, value: object, index: int = 0, count: int = 1
) -> int | None:
    """The 0-based character offset of a constant of that kind ("ival", "fval", "sval")
    holding ``value`` in ``source``: the ``index``-th (in the tree's order) of the ``count``
    there are; None when their number is not ``count``."""
    try:
        tree = json.loads(parser.parse_sql_json(source))
    except (parser.ParseError, ValueError):
        return None
    found = [
        item["location"]
        for item in _json_nodes(tree)
        if isinstance(item.get(kind), dict) and item[kind].get(kind) == value
        and "location" in item
    ]  # fmt: skip
    if len(found) != count or not 0 <= index < count:
        return None
    return len(source.encode()[: found[index]].decode(errors="ignore"))  # bytes -> characters


def _json_nodes(value: object) -> Iterator[dict]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _json_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_nodes(item)
