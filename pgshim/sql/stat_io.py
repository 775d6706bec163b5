"""pg_stat_io (PostgreSQL 16+): a row per kind of process, object and context that PostgreSQL
counts I/O of, each counter zero (pgshim reads and writes no buffers), NULL where PostgreSQL does
not count that operation for the row.

The rows are PostgreSQL 18.6's; 16 and 17 have those without the WAL, the init context and the
processes they did not have yet.
"""

from __future__ import annotations

from datetime import datetime

# 16 and 17's columns; 18 counts bytes per operation instead of op_bytes
COLUMNS_16 = [
    ("backend_type", "text"), ("object", "text"), ("context", "text"), ("reads", "int8"),
    ("read_time", "float8"), ("writes", "int8"), ("write_time", "float8"),
    ("writebacks", "int8"), ("writeback_time", "float8"), ("extends", "int8"),
    ("extend_time", "float8"), ("op_bytes", "int8"), ("hits", "int8"), ("evictions", "int8"),
    ("reuses", "int8"), ("fsyncs", "int8"), ("fsync_time", "float8"),
    ("stats_reset", "timestamptz"),
]  # fmt: skip
COLUMNS_18 = [
    ("backend_type", "text"), ("object", "text"), ("context", "text"), ("reads", "int8"),
    ("read_bytes", "numeric"), ("read_time", "float8"), ("writes", "int8"),
    ("write_bytes", "numeric"), ("write_time", "float8"), ("writebacks", "int8"),
    ("writeback_time", "float8"), ("extends", "int8"), ("extend_bytes", "numeric"),
    ("extend_time", "float8"), ("hits", "int8"), ("evictions", "int8"), ("reuses", "int8"),
    ("fsyncs", "int8"), ("fsync_time", "float8"), ("stats_reset", "timestamptz"),
]  # fmt: skip

# the columns of each operation, NULL in a row that does not count it
_OPERATIONS = {
    "read": ("reads", "read_bytes", "read_time"),
    "write": ("writes", "write_bytes", "write_time"),
    "writeback": ("writebacks", "writeback_time"),
    "extend": ("extends", "extend_bytes", "extend_time"),
    "hit": ("hits",),
    "eviction": ("evictions",),
    "reuse": ("reuses",),
    "fsync": ("fsyncs", "fsync_time"),
}
_SINCE = {"io worker": 18, "slotsync worker": 17, "walsummarizer": 17}  # later kinds of process
_BLOCK_SIZE = 8192  # op_bytes

# backend_type|object|context|the operations not counted
_ROWS = """
client backend|relation|bulkread|extend,fsync
client backend|relation|bulkwrite|fsync
client backend|relation|init|reuse
client backend|relation|normal|reuse
client backend|relation|vacuum|fsync
client backend|temp relation|normal|writeback,reuse,fsync
client backend|wal|init|read,writeback,extend,hit,eviction,reuse
client backend|wal|normal|writeback,extend,hit,eviction,reuse
autovacuum launcher|relation|bulkread|extend,fsync
autovacuum launcher|relation|init|extend,reuse
autovacuum launcher|relation|normal|extend,reuse
autovacuum launcher|wal|init|read,writeback,extend,hit,eviction,reuse
autovacuum launcher|wal|normal|read,writeback,extend,hit,eviction,reuse
autovacuum worker|relation|bulkread|extend,fsync
autovacuum worker|relation|init|reuse
autovacuum worker|relation|normal|reuse
autovacuum worker|relation|vacuum|fsync
autovacuum worker|wal|init|read,writeback,extend,hit,eviction,reuse
autovacuum worker|wal|normal|read,writeback,extend,hit,eviction,reuse
background worker|relation|bulkread|extend,fsync
background worker|relation|bulkwrite|fsync
background worker|relation|init|reuse
background worker|relation|normal|reuse
background worker|relation|vacuum|fsync
background worker|temp relation|normal|writeback,reuse,fsync
background worker|wal|init|read,writeback,extend,hit,eviction,reuse
background worker|wal|normal|writeback,extend,hit,eviction,reuse
walsender|relation|bulkread|extend,fsync
walsender|relation|bulkwrite|fsync
walsender|relation|init|reuse
walsender|relation|normal|reuse
walsender|relation|vacuum|fsync
walsender|temp relation|normal|writeback,reuse,fsync
walsender|wal|init|read,writeback,extend,hit,eviction,reuse
walsender|wal|normal|writeback,extend,hit,eviction,reuse
slotsync worker|relation|bulkread|extend,fsync
slotsync worker|relation|bulkwrite|fsync
slotsync worker|relation|init|reuse
slotsync worker|relation|normal|reuse
slotsync worker|relation|vacuum|fsync
slotsync worker|temp relation|normal|writeback,reuse,fsync
slotsync worker|wal|init|read,writeback,extend,hit,eviction,reuse
slotsync worker|wal|normal|writeback,extend,hit,eviction,reuse
standalone backend|relation|bulkread|extend,fsync
standalone backend|relation|bulkwrite|fsync
standalone backend|relation|init|reuse
standalone backend|relation|normal|reuse
standalone backend|relation|vacuum|fsync
standalone backend|wal|init|read,writeback,extend,hit,eviction,reuse
standalone backend|wal|normal|writeback,extend,hit,eviction,reuse
background writer|relation|init|read,extend,hit,eviction,reuse
background writer|relation|normal|read,extend,hit,eviction,reuse
background writer|wal|init|read,writeback,extend,hit,eviction,reuse
background writer|wal|normal|read,writeback,extend,hit,eviction,reuse
checkpointer|relation|init|read,extend,hit,eviction,reuse
checkpointer|relation|normal|read,extend,hit,eviction,reuse
checkpointer|wal|init|read,writeback,extend,hit,eviction,reuse
checkpointer|wal|normal|writeback,extend,hit,eviction,reuse
io worker|relation|bulkread|extend,fsync
io worker|relation|bulkwrite|fsync
io worker|relation|init|reuse
io worker|relation|normal|reuse
io worker|relation|vacuum|fsync
io worker|temp relation|normal|writeback,reuse,fsync
io worker|wal|init|read,writeback,extend,hit,eviction,reuse
io worker|wal|normal|writeback,extend,hit,eviction,reuse
startup|relation|bulkread|extend,fsync
startup|relation|bulkwrite|fsync
startup|relation|init|reuse
startup|relation|normal|reuse
startup|relation|vacuum|fsync
startup|wal|init|read,writeback,extend,hit,eviction,reuse
startup|wal|normal|writeback,extend,hit,eviction,reuse
walreceiver|wal|init|read,writeback,extend,hit,eviction,reuse
walreceiver|wal|normal|read,writeback,extend,hit,eviction,reuse
walsummarizer|wal|init|read,writeback,extend,hit,eviction,reuse
walsummarizer|wal|normal|writeback,extend,hit,eviction,reuse
walwriter|wal|init|read,writeback,extend,hit,eviction,reuse
walwriter|wal|normal|read,writeback,extend,hit,eviction,reuse
"""


def columns(major: int) -> list[tuple[str, str]]:
    return COLUMNS_18 if major >= 18 else COLUMNS_16


def rows(major: int, stats_reset: datetime) -> list[tuple]:
    """PostgreSQL ``major``'s rows, every counter zero since ``stats_reset``."""
    result = []
    for line in _ROWS.strip("\n").split("\n"):
        backend_type, object_, context, absent = line.split("|")
        if major < 18 and (object_ == "wal" or context == "init"):
            continue
        if _SINCE.get(backend_type, 16) > major:
            continue
        nulls = {column for op in absent.split(",") if op for column in _OPERATIONS[op]}
        values = {"backend_type": backend_type, "object": object_, "context": context,
                  "op_bytes": _BLOCK_SIZE, "stats_reset": stats_reset}  # fmt: skip
        result.append(tuple(
            None if name in nulls else values.get(name, 0.0 if kind == "float8" else 0)
            for name, kind in columns(major)
        ))  # fmt: skip
    return result
