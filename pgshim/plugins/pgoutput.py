"""pgoutput: PostgreSQL's binary logical replication protocol (versions 1 to 4; 3 when pgshim
presents PostgreSQL 15, whose pgoutput also knows neither ``origin`` nor ``streaming 'parallel'``).

Transactions are sent once committed, never streamed: ``streaming`` (and ``parallel``) is
accepted, and no Stream Start/Stop/Commit/Abort message is ever needed.

Per transaction with at least one published change: Begin (sent lazily, dataStart = the first
published change), Relation before a relation's first change in this session and again when
its version changes or after a TRUNCATE (dataStart 0/0), the changes, Commit (dataStart =
end_lsn). Transactions without a published change produce nothing; the walsender sends a
keepalive instead. The Begin/change/Commit bytes are shared between sessions through
``tx.encoded``; Relation messages and publication filtering are per session, and so are the
changes of relations published with a column list or a row filter (see published_rows).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.publications import PublicationFilter
from pgshim.logical.source import AheadChunk
from pgshim.logical.transactions import Column, Relation, RowChange, Transaction, value_texts
from pgshim.plugins.base import (
    AheadFraming,
    Message,
    PluginContext,
    cached,
    reused,
    unless_rendered,
)
from pgshim.plugins.published_rows import (
    OldRows,
    TableShape,
    published_action,
    table_shape,
)
from pgshim.speedups import core as _core
from pgshim.speedups import untrack
from pgshim.sql.bounds import Bound
from pgshim.wire import messages as wire

MIN_PROTO_VERSION = 1
MAX_PROTO_VERSION = 4
PG15_MAX_PROTO_VERSION = 3
PG16_NUM = 160000
PG18_NUM = 180000
STREAM_PROTO_VERSION = 2
TWO_PHASE_PROTO_VERSION = 3
PARALLEL_PROTO_VERSION = 4
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_MICROSECOND = timedelta(microseconds=1)


def pg_timestamp(tx: Transaction) -> int:
    """Commit time in PostgreSQL's representation: microseconds since 2000-01-01 UTC."""
    return (tx.commit_time - pgtypes.PG_EPOCH) // _MICROSECOND


def _cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


_BEGIN = struct.Struct(">cQqI")  # 'B', final LSN, commit time, xid
_COMMIT = struct.Struct(">ccQQq")  # 'C', flags, commit LSN, end LSN, commit time


def begin_message(tx: Transaction, timestamp: int) -> bytes:
    """Begin; ``timestamp`` is ``pg_timestamp(tx)``, computed once for Begin and Commit."""
    return _BEGIN.pack(b"B", tx.commit_pos, timestamp, tx.xid)


def commit_message(tx: Transaction, timestamp: int) -> bytes:
    return _COMMIT.pack(b"C", b"\x00", tx.commit_pos, tx.end_pos, timestamp)


def relation_message(relation: Relation, columns: list[Column] | None = None) -> bytes:
    """The Relation message, with every column or those of a column list."""
    columns = relation.columns if columns is None else columns
    parts = [
        b"R",
        _UINT32.pack(relation.oid),
        _cstring(relation.schema),
        _cstring(relation.name),
        relation.replident.encode(),
        _INT16.pack(len(columns)),
    ]
    for column in columns:
        flags = 1 if column.is_key or relation.replident == "f" else 0
        parts.append(bytes([flags]) + _cstring(column.name))
        parts.append(_UINT32.pack(column.type_oid) + _INT32.pack(column.typmod))
    return b"".join(parts)


def tuple_data(columns: list[Column], values: list[Any], *, binary: bool) -> bytes:
    """TupleData of ``values`` (missing trailing ones are NULL), text or binary."""
    if not binary:
        return text_tuple_data(len(columns), value_texts(columns, values))
    parts = [_INT16.pack(len(columns))]
    for index, column in enumerate(columns):
        value = values[index] if index < len(values) else None
        if value is None:
            parts.append(b"n")
        else:
            data = pgtypes.binary_send(column.type_oid, value)
            parts.append(b"b" + _INT32.pack(len(data)) + data)
    return b"".join(parts)


def text_tuple_data(count: int, texts: list[str | None]) -> bytes:
    """TupleData of ``count`` columns in text format from the values' text output (rendered for
    the relation as it was; a column it has since gained is NULL, one it lost is left out)."""
    if _core is not None:
        data = _core.pgoutput_text_tuple(count, texts)
        if data is not None:
            return data
    return reference_text_tuple_data(count, texts)


def reference_text_tuple_data(count: int, texts: list[str | None]) -> bytes:
    """``text_tuple_data`` in Python (the compiled core's reference)."""
    parts = [_INT16.pack(count)]
    pack = _INT32.pack
    if len(texts) > count:
        texts = texts[:count]
    for text in texts:
        if text is None:
            parts.append(b"n")
        else:
            data = text.encode()
            parts.append(b"t" + pack(len(data)) + data)
    parts.extend([b"n"] * (count - len(texts)))
    return b"".join(parts)


def change_message(change: RowChange, *, binary: bool) -> bytes:
    relation = change.relation
    relid = _UINT32.pack(relation.oid)
    columns = relation.columns
    if change.action in ("I", "U"):
        if binary:
            new = tuple_data(columns, change.new or [], binary=True)
        else:
            new = text_tuple_data(len(columns), change.new_texts())
        if change.action == "I":
            return b"I" + relid + b"N" + new
        old = b""
        if change.key is not None:
            old = b"K" + tuple_data(columns, _key_only(columns, change.key), binary=binary)
        return b"U" + relid + old + b"N" + new
    if change.action == "D":
        key = _key_only(columns, change.key or [])
        return b"D" + relid + b"K" + tuple_data(columns, key, binary=binary)
    if change.action == "T":
        return b"T" + _UINT32.pack(1) + b"\x00" + relid
    raise ValueError(f"unknown change action {change.action!r}")


def shaped_change_message(
    change: RowChange, action: str, shape: TableShape, old: list | None, *, binary: bool
) -> bytes:
    """A change as ``action`` (an UPDATE can become an INSERT or a DELETE) with the shape's
    columns only."""
    relation = change.relation
    relid = _UINT32.pack(relation.oid)
    columns = shape.columns
    if action == "T":
        return b"T" + _UINT32.pack(1) + b"\x00" + relid
    if action == "D":
        row = change.key if change.action == "D" else (old or change.key or change.new or [])
        key = shape.project(_key_only(relation.columns, row or []))
        return b"D" + relid + b"K" + tuple_data(columns, key, binary=binary)
    new = shape.project(change.new or [])
    if binary:
        data = tuple_data(columns, new, binary=True)
    else:
        texts = change.new_texts()
        data = text_tuple_data(len(columns), shape.project(texts) if texts else [])
    return (b"I" if action == "I" else b"U") + relid + b"N" + data


def _key_only(columns: list[Column], values: list[Any]) -> list[Any]:
    return [
        values[i] if column.is_key and i < len(values) else None for i, column in enumerate(columns)
    ]


def split_identifier_list(text: str) -> list[str] | None:
    """PostgreSQL's SplitIdentifierString with ',' (None when the syntax is invalid)."""
    names: list[str] = []
    index, length = 0, len(text)
    while True:
        while index < length and text[index].isspace():
            index += 1
        if index < length and text[index] == '"':
            name, index = [], index + 1
            while True:
                end = text.find('"', index)
                if end < 0:
                    return None
                name.append(text[index:end])
                if text[end + 1 : end + 2] == '"':
                    name.append('"')
                    index = end + 2
                    continue
                index = end + 1
                break
            identifier = "".join(name)
        else:
            start = index
            while index < length and text[index] != "," and not text[index].isspace():
                index += 1
            identifier = text[start:index].lower()
            if not identifier:
                return None
        while index < length and text[index].isspace():
            index += 1
        names.append(identifier)
        if index >= length:
            return names
        if text[index] != ",":
            return None
        index += 1


def skipped_publication(name: str) -> bytes:
    """PostgreSQL 18's WARNING for a publication that does not exist (as a NoticeResponse)."""
    return wire.notice_response(
        "WARNING",
        "01000",
        f'skipped loading publication "{name}"',
        detail="The publication does not exist at this point in the WAL.",
        hint="Create the publication if it does not exist.",
    )


def def_get_boolean(name: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("true", "on"):
        return True
    if lowered in ("false", "off"):
        return False
    raise PgError("42601", f"{name} requires a Boolean value")


@dataclass(slots=True)
class _SharedChange:
    relation: Relation
    action: str
    pos: int
    payload: bytes


@dataclass(slots=True)
class _SharedTransaction:
    begin: bytes
    changes: list[_SharedChange]
    commit: bytes


def shared_key(binary: bool) -> tuple[str, bool]:
    """The key of the messages every session publishing a whole transaction shares."""
    return ("pgoutput", binary)


def ahead_key(binary: bool) -> str:
    return "pgoutput:binary" if binary else "pgoutput:text"


def shared_transaction(tx: Transaction, *, binary: bool) -> _SharedTransaction:
    """A transaction's messages as every session publishing all of it sends them."""
    changes = [
        _SharedChange(c.relation, c.action, c.pos, change_message(c, binary=binary))
        for c in tx.changes
    ]
    timestamp = pg_timestamp(tx)
    shared = _SharedTransaction(
        begin_message(tx, timestamp), changes, commit_message(tx, timestamp)
    )
    untrack(shared, changes, *changes)  # kept with the transaction (see speedups.untrack)
    return shared


def ahead_messages(binary: bool) -> Callable[[Transaction], list[Message]]:
    """A transaction's messages for a session that has sent its relations and publishes every
    change: what ``encode`` sends then."""

    key = shared_key(binary)  # what the sessions rendered is used

    def messages(tx: Transaction) -> list[Message]:
        if not tx.changes:
            return []
        shared = reused(tx, key, lambda: shared_transaction(tx, binary=binary))
        return [
            (tx.changes[0].pos, shared.begin),
            *[(change.pos, change.payload) for change in shared.changes],
            (tx.end_pos, shared.commit),
        ]

    return messages


def ahead_framing(binary: bool) -> AheadFraming | None:
    """``ahead_messages`` framed by the compiled core in one call (text format), for a
    transaction the sessions have not rendered already."""
    if _core is None or binary:
        return None
    return unless_rendered(shared_key(binary), _core.pgoutput_text_frame)


class PgOutputPlugin:
    name = "pgoutput"

    def __init__(self, options: dict[str, str | None], ctx: PluginContext) -> None:
        self.ctx = ctx
        self.proto_version = 0
        self.publication_names: list[str] | None = None
        self.binary = False
        self.messages = False
        self.streaming: bool | str = False
        self.two_phase = False
        self.origin = "any"
        self.pg15 = ctx.server_version_num < PG16_NUM
        # PostgreSQL 18 skips a publication that does not exist, with a WARNING, instead of
        # failing; the walsender sends them to the client before the next data
        self.skips_missing = ctx.server_version_num >= PG18_NUM
        self.warnings: list[bytes] = []
        for option, value in options.items():
            self._set_option(option, value)
        self._validate()
        self.cache_key: tuple | None = shared_key(self.binary)
        self.ahead_key: str | None = ahead_key(self.binary)
        self._sent_versions: dict[int, int] = {}
        self._filter: PublicationFilter | None = None
        self._generation: int | None = -1  # nothing resolved yet
        self._included_cache: dict[tuple[int, int, str], bool] = {}
        self._shapes: dict[tuple[int, int], TableShape] = {}
        self._shaped = False
        self._old_rows = OldRows(ctx.history, ctx.old_rows_budget)

    def _set_option(self, option: str, value: str | None) -> None:
        if option == "proto_version":
            text = value or ""
            if not text.isdigit():
                raise PgError("22023", "invalid proto_version")
            if int(text) > 0xFFFFFFFF:
                raise PgError("22023", f'proto_version "{text}" out of range')
            self.proto_version = int(text)
        elif option == "publication_names":
            names = split_identifier_list(value or "")
            if names is None:
                raise PgError("42602", "invalid publication_names syntax")
            self.publication_names = names
        elif option == "binary":
            self.binary = def_get_boolean(option, value)
        elif option == "messages":
            self.messages = def_get_boolean(option, value)
        elif option == "streaming" and self.pg15:
            self.streaming = def_get_boolean(option, value)
        elif option == "streaming":
            if value is not None and value.lower() == "parallel":
                self.streaming = "parallel"
            else:
                try:
                    self.streaming = def_get_boolean(option, value)
                except PgError:
                    raise PgError(
                        "42601", f'{option} requires a Boolean value or "parallel"'
                    ) from None
        elif option == "two_phase":
            self.two_phase = def_get_boolean(option, value)
        elif option == "origin" and not self.pg15:
            origin = (value or "").lower()
            if origin not in ("none", "any"):
                raise PgError("22023", f'unrecognized origin value: "{value}"')
            self.origin = origin
        else:
            raise PgError("XX000", f"unrecognized pgoutput option: {option}")

    def _validate(self) -> None:
        version = self.proto_version
        highest = PG15_MAX_PROTO_VERSION if self.pg15 else MAX_PROTO_VERSION
        supports = "we only support" if self.pg15 else "server only supports"
        if version > highest:
            raise PgError(
                "0A000",
                f"client sent proto_version={version} but {supports} protocol {highest} or lower",
            )
        if version < MIN_PROTO_VERSION:
            raise PgError(
                "0A000",
                f"client sent proto_version={version} but {supports} protocol "
                f"{MIN_PROTO_VERSION} or higher",
            )
        if self.publication_names is None:
            raise PgError("22023", "publication_names parameter missing")
        if self.streaming and version < STREAM_PROTO_VERSION:
            raise PgError(
                "22023",
                f"requested proto_version={version} does not support streaming, need "
                f"{STREAM_PROTO_VERSION} or higher",
            )
        if self.streaming == "parallel" and version < PARALLEL_PROTO_VERSION:
            raise PgError(
                "22023",
                f"requested proto_version={version} does not support parallel streaming, need "
                f"{PARALLEL_PROTO_VERSION} or higher",
            )
        if self.two_phase and version < TWO_PHASE_PROTO_VERSION:
            raise PgError(
                "22023",
                f"requested proto_version={version} does not support two-phase commit, need "
                f"{TWO_PHASE_PROTO_VERSION} or higher",
            )

    def startup(self) -> list[Message]:
        return []

    def _included(self) -> dict[tuple[int, int, str], bool]:
        """Whether (relation, version, action) is published, remembered until a publication
        changes: resolving the publications for every transaction would dominate the stream."""
        store = self.ctx.publications
        names = self.publication_names or []
        if store is None:
            raise PgError("42704", f'publication "{names[0]}" does not exist')
        generation = getattr(store, "generation", None)
        if generation is None or generation != self._generation:
            read_again = getattr(store, "read_again_for", None)
            if read_again is not None:
                read_again(names)
                generation = store.generation
            if self.skips_missing:
                known = {publication.name for publication in store.list()}
                for name in names:
                    if name not in known:
                        self.warnings.append(skipped_publication(name))
                names = [name for name in names if name in known]
            self._filter = store.resolve(names)
            self._generation = generation
            self._included_cache = {}
            self._shapes = {}
            # column lists and row filters: without any, every change takes the shared path
            self._shaped = any(p.options for p in self._filter.publications)
            if not self._shaped:
                self._old_rows = OldRows(self.ctx.history, self.ctx.old_rows_budget)
        return self._included_cache

    def _shape(self, relation: Relation) -> TableShape:
        key = (relation.oid, relation.version)
        shape = self._shapes.get(key)
        if shape is None:
            assert self._filter is not None
            shape = self._shapes[key] = table_shape(self._filter, relation)
        return shape

    def takes_ahead(self, actions: list[tuple[Relation, str]]) -> bool:
        """Output rendered ahead has every change and no Relation message: it is this session's
        when each relation was sent in its current version and each change is published."""
        included = self._included()
        publications = self._filter
        for relation, action in actions:
            if action == "T" or self._sent_versions.get(relation.oid) != relation.version:
                return False
            if self._shaped and not self._shape(relation).plain:
                return False
            key = (relation.oid, relation.version, action)
            wanted = included.get(key)
            if wanted is None:
                wanted = included[key] = publications.includes(relation, action)
            if not wanted:
                return False
        return True

    async def prepare(
        self, items: Sequence[Transaction | AheadChunk], sent: int, bound: Bound
    ) -> None:
        """Before ``items`` (the ones ending after ``sent``) are encoded: replay, in paced steps,
        the old rows of the relations among them whose row filters need them and that have none
        kept yet, up to the first item with a change of one of them (none of those before it has
        one, so the rows are what ``encode`` would replay there at once)."""
        self._included()
        if not self._shaped:
            return
        missing: dict[int, Relation] = {}
        upto = 0
        for item in items:
            if item.end_pos <= sent:
                continue
            if type(item) is AheadChunk:
                relations = [relation for relation, _ in item.ahead.actions]
                position = max(item.after_pos, sent)
            else:
                relations = [change.relation for change in item.changes]  # type: ignore[union-attr]
                position = item.commit_pos  # type: ignore[union-attr]
            for relation in relations:
                if (
                    relation.oid not in missing
                    and self._shape(relation).needs_old_rows
                    and not self._old_rows.kept(relation)
                ):
                    upto = upto if missing else position
                    missing[relation.oid] = relation
        if missing:
            await self._old_rows.rebuild(missing, upto, bound)

    def encode(self, tx: Transaction) -> list[Message]:
        included = self._included()
        publications = self._filter
        assert self.cache_key is not None
        shared = cached(tx, self.cache_key, lambda: shared_transaction(tx, binary=self.binary))
        out: list[Message] = []
        for index, change in enumerate(shared.changes):
            relation = change.relation
            payload: bytes | None = change.payload
            sent_key: object = relation.version
            columns = None
            if self._shaped:
                shape = self._shape(relation)
                if not shape.plain:
                    payload = self._shaped_change(tx.changes[index], shape, tx)
                    sent_key = (relation.version, tuple(shape.indexes or ()))
                    columns = shape.columns
                else:
                    self._old_rows.forget(relation)
            key = (relation.oid, relation.version, change.action)
            wanted = included.get(key)
            if wanted is None:
                wanted = included[key] = publications.includes(relation, change.action)
            if not wanted or payload is None:
                continue
            if not out:
                out.append((change.pos, shared.begin))
            if self._sent_versions.get(relation.oid) != sent_key:
                out.append((0, relation_message(relation, columns)))
                self._sent_versions[relation.oid] = sent_key  # type: ignore[assignment]
            out.append((change.pos, payload))
            if change.action == "T":
                self._sent_versions.pop(relation.oid, None)
        if out:
            out.append((tx.end_pos, shared.commit))
        return out

    def _shaped_change(self, change: RowChange, shape: TableShape, tx: Transaction) -> bytes | None:
        """The change as published with a column list or row filter (None: not published);
        the old rows are kept up to date whether it is published or not."""
        old = None
        if shape.needs_old_rows:
            old = self._old_rows.take(change, tx)
        action = published_action(shape, change, old)
        if action is None:
            return None
        return shaped_change_message(change, action, shape, old, binary=self.binary)
