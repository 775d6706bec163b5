"""PostgreSQL's quote_identifier and the literal/JSON escaping the text plugins need."""

from __future__ import annotations

# Keywords that are not UNRESERVED in PostgreSQL 15 (reserved, column-name and
# type/function-name keywords): quote_identifier quotes these.
_KEYWORD_WORDS = """
    all analyse analyze and any array as asc asymmetric authorization between bigint binary bit
    boolean both case cast char character check coalesce collate collation column concurrently
    constraint create cross current_catalog current_date current_role current_schema
    current_time current_timestamp current_user dec decimal default deferrable desc distinct do
    else end except exists extract false fetch float for foreign freeze from full grant greatest
    group grouping having ilike in initially inner inout int integer intersect interval into is
    isnull join lateral leading least left like limit localtime localtimestamp national natural
    nchar none normalize not notnull null nullif numeric offset on only or order out outer
    overlaps overlay placing position precision primary real references returning right row
    select session_user setof similar smallint some substring symmetric table tablesample then
    time timestamp to trailing treat trim true union unique user using values varchar variadic
    verbose when where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest
    xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable
"""
_QUOTED_KEYWORDS = frozenset(_KEYWORD_WORDS.split())


def quote_identifier(name: str) -> str:
    safe = bool(name) and (name[0].islower() or name[0] == "_") and name[0].isascii()
    safe = safe and all(
        (ch.isascii() and (ch.islower() or ch.isdigit())) or ch == "_" for ch in name
    )
    if safe and name not in _QUOTED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_qualified_identifier(schema: str, name: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def quote_literal(text: str) -> str:
    """test_decoding's literal quoting: single quotes doubled, backslashes untouched."""
    return "'" + text.replace("'", "''") + "'"


def escape_json(text: str) -> str:
    """PostgreSQL's escape_json: a JSON string literal; non-ASCII passes through."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
