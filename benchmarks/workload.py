"""The benchmark workload: single-row inserts into a 7-column table, for RedDB and PostgreSQL.

Columns: k bigint (key), a text, b text, n int, x double precision, flag boolean, ts timestamptz.
PostgreSQL gets them from a pgbench script; pgshim gets a spool of RedDB named rows with the same
values (RedDB types Integer, Text, Text, Port (int4), Float, Boolean, TimestampMs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mmap
import os
import time
from array import array
from collections.abc import Iterator
from pathlib import Path

import orjson

from pgshim.reddb.entity import Entity, Field, encode_entity
from pgshim.reddb.values import TypedValue
from pgshim.spool.frames import build_frame

TABLE = "bench"
START_MS = 1_700_000_000_000

CREATE_TABLE_SQL = (
    f"CREATE SEQUENCE {TABLE}_k; CREATE TABLE {TABLE} (k bigint PRIMARY KEY, a text, b text,"
    " n int, x double precision, flag boolean, ts timestamptz)"
)

# One single-row INSERT transaction per run of the script; the key comes from a sequence so that
# several pgbench clients never collide, and the values match bench_row() below.
PGBENCH_SCRIPT = f"""INSERT INTO {TABLE} SELECT k, 'name-' || k, md5(k::text), k % 65536, k * 0.5, \
k % 2 = 0, now() FROM nextval('{TABLE}_k') AS k;
"""


def bench_row(k: int, ts_ms: int) -> list[tuple[str, TypedValue]]:
    """The row PostgreSQL's script inserts for key ``k``, as RedDB typed fields (sorted by name)."""
    return [
        ("a", TypedValue(5, 25, f"name-{k}")),
        ("b", TypedValue(5, 25, hashlib.md5(str(k).encode()).hexdigest())),
        ("flag", TypedValue(1, 16, k % 2 == 0)),
        ("k", TypedValue(2, 20, k)),
        ("n", TypedValue(33, 23, k % 65536)),
        ("ts", TypedValue(29, 1184, dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC))),
        ("x", TypedValue(4, 701, k * 0.5)),
    ]


def _entity_bytes(lsn: int, k: int, ts_ms: int) -> bytes:
    fields = [Field(name, value) for name, value in bench_row(k, ts_ms)]
    entity = Entity(
        id=lsn,
        kind="table_row",
        kind_fields={"table": TABLE, "row_id": lsn},
        data_kind="named_row",
        fields=fields,
        created_at=ts_ms // 1000,
        updated_at=ts_ms // 1000,
        logical_id=lsn,
        xmin=lsn,
        xmax=0,
    )
    return encode_entity(entity)


def record_frame(lsn: int, ts_ms: int, k: int | None = None) -> bytes:
    """One v3-41 spool frame: an insert of the benchmark row with key ``k`` (default: the LSN)."""
    key = lsn if k is None else k
    record = {
        "collection": TABLE,
        "entity_bytes_hex": _entity_bytes(lsn, key, ts_ms).hex(),
        "kind": "row",
        "lsn": lsn,
        "operation": "insert",
        "rid": lsn,
        "term": 1,
        "timestamp": ts_ms,
    }
    payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return build_frame("v3-41", lsn, payload, timestamp_ms=ts_ms, term=1)


def frames(count: int, start_lsn: int = 1) -> Iterator[bytes]:
    for i in range(count):
        lsn = start_lsn + i
        yield record_frame(lsn, START_MS + i)


def write_bench_spool(
    path: str | os.PathLike[str], count: int, start_lsn: int = 1, ends: array | None = None
) -> int:
    """Append ``count`` benchmark inserts (LSNs start_lsn..) to the spool; returns bytes written.
    ``ends`` gets the offset where each frame ends (the file assumed empty before)."""
    written = 0
    with open(path, "ab") as out:
        chunk: list[bytes] = []
        for frame in frames(count, start_lsn):
            chunk.append(frame)
            if ends is not None:
                ends.append((ends[-1] if ends else 0) + len(frame))
            if len(chunk) >= 4096:
                written += out.write(b"".join(chunk))
                chunk.clear()
        written += out.write(b"".join(chunk))
    return written


def append_live(path: str | os.PathLike[str], start_lsn: int, count: int, rate: float) -> None:
    """Append ``count`` records at ``rate`` per second, one write per frame like RedDB, each
    stamped with the wall clock (ms in the frame, µs in the key ``k``) for latency measurement."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        started = time.monotonic()
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now_us = time.time_ns() // 1000
            os.write(fd, record_frame(start_lsn + i, now_us // 1000, k=now_us))
    finally:
        os.close(fd)


def append_paced(
    source: Path, ends: array, spool: Path, rate: float, count: int
) -> tuple[float, array, array]:
    """Append frames 1..count of ``source`` (a spool from write_bench_spool, frame i holding LSN
    i + 1; ``ends`` its frame ends) to ``spool`` at ``rate`` per second: every millisecond one
    write of whatever is due, as a busy RedDB appends. Returns the seconds it took and, per
    write, the last LSN written and when (µs since the epoch, taken just before the write)."""
    last_lsns, times = array("q"), array("q")
    fd = os.open(spool, os.O_WRONLY | os.O_APPEND)
    try:
        with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            started = time.monotonic()
            done, end = 1, count + 1
            while done < end:
                due = min(end, 1 + int((time.monotonic() - started) * rate))
                if due == done:
                    time.sleep(0.001)
                    continue
                times.append(time.time_ns() // 1000)
                os.write(fd, data[ends[done - 1] : ends[due - 1]])
                last_lsns.append(due)
                done = due
            elapsed = time.monotonic() - started
    finally:
        os.close(fd)
    return elapsed, last_lsns, times
