"""The catalogs and statistics views of PostgreSQL 16 to 18, as changes to PostgreSQL 15's.

pgshim builds catalog and view rows in PostgreSQL 15's layout (``pg_functions.PG15_COLUMNS``,
``catalog.CATALOG_VIEWS``). When it
presents a later version, a changed catalog gets that version's columns, in its order, and each
row is rearranged by column name: renamed columns keep their values, new ones get what a fresh
PostgreSQL of that version shows for a plain table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pgshim.sql.pg_functions import PG15_COLUMNS


@dataclass(frozen=True, slots=True)
class Change:
    catalog: str
    add: list[tuple[str, str, str | None]] = field(default_factory=list)  # name, type, after
    drop: list[str] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)  # old -> new
    move: list[tuple[str, str]] = field(default_factory=list)  # name, after
    retype: dict[str, str] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)  # new or reset columns' values


# major -> the changes that version made (None after: the first column)
CHANGES: dict[int, list[Change]] = {
    16: [
        Change(
            "pg_auth_members",
            add=[("oid", "oid", None), ("inherit_option", "bool", "admin_option"),
                 ("set_option", "bool", "inherit_option")],
            values={"inherit_option": True, "set_option": True},
        ),
        Change(
            "pg_attribute",
            move=[("attndims", "atttypmod"), ("attstattarget", "attinhcount")],
            retype={"attstattarget": "int2", "attndims": "int2", "attinhcount": "int2"},
        ),
        Change("pg_collation", add=[("collicurules", "text", "colliculocale")]),
        Change("pg_constraint", retype={"coninhcount": "int2"}),
        Change("pg_database", add=[("daticurules", "text", "daticulocale")]),
        Change("pg_stat_database_conflicts",
               add=[("confl_active_logicalslot", "int8", "confl_deadlock")]),
        Change(  # substream: off, on or parallel
            "pg_subscription",
            add=[("subpasswordrequired", "bool", "subdisableonerr"),
                 ("subrunasowner", "bool", "subpasswordrequired"),
                 ("suborigin", "text", "subpublications")],
            retype={"substream": '"char"'},
            values={"subpasswordrequired": True, "suborigin": "any"},
        ),
    ],
    17: [
        Change("pg_collation", rename={"colliculocale": "colllocale"}),
        Change(
            "pg_database",
            rename={"daticulocale": "datlocale"},
            add=[("dathasloginevt", "bool", "datallowconn")],
        ),
        Change(  # attstattarget: nullable, NULL unless set
            "pg_attribute",
            move=[("attstattarget", "attcollation")],
            values={"attstattarget": None},
        ),
        Change("pg_subscription", add=[("subfailover", "bool", "subrunasowner")]),
        Change(  # the checkpointer's counters went to pg_stat_checkpointer
            "pg_stat_bgwriter",
            drop=["checkpoints_timed", "checkpoints_req", "checkpoint_write_time",
                  "checkpoint_sync_time", "buffers_checkpoint", "buffers_backend",
                  "buffers_backend_fsync"],
        ),
        Change(
            "pg_statistic_ext",
            move=[("stxstattarget", "stxkeys")],
            retype={"stxstattarget": "int2"},
            values={"stxstattarget": None},
        ),
    ],
    18: [
        Change("pg_attribute", drop=["attcacheoff"]),
        Change("pg_class", add=[("relallfrozen", "int4", "relallvisible")]),
        Change(
            "pg_constraint",
            add=[("conenforced", "bool", "condeferred"), ("conperiod", "bool", "connoinherit")],
            values={"conenforced": True},
        ),
        Change("pg_publication", add=[("pubgencols", '"char"', "pubviaroot")],
               values={"pubgencols": "n"}),
        Change(  # the WAL's writes and syncs went to pg_stat_io
            "pg_stat_wal",
            drop=["wal_write", "wal_sync", "wal_write_time", "wal_sync_time"],
        ),
        Change(
            "pg_stat_checkpointer",
            add=[("num_done", "int8", "num_requested"),
                 ("slru_written", "int8", "buffers_written")],
        ),
        Change(
            "pg_stat_subscription_stats",
            add=[(name, "int8", after) for after, name in zip(
                ["sync_error_count", "confl_insert_exists", "confl_update_origin_differs",
                 "confl_update_exists", "confl_update_missing", "confl_delete_origin_differs",
                 "confl_delete_missing"],
                ["confl_insert_exists", "confl_update_origin_differs", "confl_update_exists",
                 "confl_update_missing", "confl_delete_origin_differs", "confl_delete_missing",
                 "confl_multiple_unique_conflicts"], strict=True,
            )],
        ),
        Change(
            "pg_stat_database",
            add=[("parallel_workers_to_launch", "int8", "sessions_killed"),
                 ("parallel_workers_launched", "int8", "parallel_workers_to_launch")],
        ),
    ],
}  # fmt: skip

_ZERO = {"bool": False, "int2": 0, "int4": 0, "int8": 0, "oid": 0}


@dataclass(slots=True)
class _Layout:
    columns: list[tuple[str, str]]
    source: dict[str, str]  # column -> the PostgreSQL 15 column holding its value
    values: dict[str, object]


def _layout(catalog: str, major: int, base: list[tuple[str, str]]) -> _Layout:
    columns = list(base)
    source = {name: name for name, _ in columns}
    values: dict[str, object] = {}
    for version in sorted(CHANGES):
        if version > major:
            break
        for change in CHANGES[version]:
            if change.catalog != catalog:
                continue
            for old, new in change.rename.items():
                columns = [(new if name == old else name, kind) for name, kind in columns]
                source[new] = source.pop(old)
            columns = [(n, k) for n, k in columns if n not in change.drop]
            for name, kind, after in change.add:
                columns.insert(_after(columns, after), (name, kind))
            for name, after in change.move:
                moved = next(column for column in columns if column[0] == name)
                columns.remove(moved)
                columns.insert(_after(columns, after), moved)
            columns = [(n, change.retype.get(n, k)) for n, k in columns]
            values.update(change.values)
    for name, kind in columns:
        if name not in source and name not in values:
            values[name] = _ZERO.get(kind)
    return _Layout(columns, source, values)


def _after(columns: list[tuple[str, str]], after: str | None) -> int:
    if after is None:
        return 0
    return next(i for i, (name, _) in enumerate(columns) if name == after) + 1


def changed_catalogs(major: int) -> set[str]:
    return {c.catalog for version, changes in CHANGES.items() if version <= major for c in changes}


def catalog_columns(
    catalog: str, major: int, base: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """The catalog's columns in PostgreSQL ``major``: name and type (``base``: its columns in
    PostgreSQL 15, by default ``PG15_COLUMNS``')."""
    base = PG15_COLUMNS[catalog] if base is None else base
    return _layout(catalog, major, base).columns if catalog in changed_catalogs(major) else base


def adapt_rows(
    catalog: str,
    major: int,
    base: list[tuple[str, str]],
    rows: Callable[..., Iterable[tuple]],
) -> Callable[..., list[tuple]]:
    """``rows`` (in ``base``, PostgreSQL 15's layout) rearranged for PostgreSQL ``major``."""
    layout = _layout(catalog, major, base)
    index = {name: i for i, (name, _) in enumerate(base)}
    picks = [
        (True, layout.values[name])
        if name in layout.values
        else (False, index[layout.source[name]])
        for name, _ in layout.columns
    ]

    def adapted(*args: object) -> list[tuple]:
        return [
            tuple(pick if constant else row[pick] for constant, pick in picks)  # type: ignore[index]
            for row in rows(*args)
        ]

    return adapted
