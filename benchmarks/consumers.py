"""Replication consumers the harness times: pg_recvlogical runs and psycopg2 clients.

Every function takes a libpq connection string and returns seconds (or latencies in ms); the same
code drives PostgreSQL and pgshim, so the two columns of the table measure the same work.
"""

from __future__ import annotations

import datetime as dt
import re
import select
import subprocess
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import psycopg2
import psycopg2.extras

KEY_VALUE = re.compile(rb"k\[bigint\]:(\d+)")
TS_VALUE = re.compile(rb"ts\[timestamp with time zone\]:'([^']+)'")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def recvlogical(
    dsn: str,
    slot: str,
    endpos: str,
    out: Path,
    options: tuple[str, ...] = (),
    create: str | None = None,
) -> subprocess.Popen[bytes]:
    """pg_recvlogical --start up to ``endpos``; with ``create`` (a plugin) it creates the slot
    first, in the same process."""
    cmd = ["pg_recvlogical", "-d", dsn, "-S", slot, "--start", "-f", str(out), "--endpos", endpos,
           "--no-loop", "-F", "0"]  # fmt: skip
    if create is not None:
        cmd += ["--create-slot", "-P", create]
    for option in options:
        cmd += ["-o", option]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE)


def wait_ok(proc: subprocess.Popen[bytes], timeout: float) -> None:
    _, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed ({proc.returncode}): {err.decode()}")


def time_recvlogical(
    dsn: str,
    slots: list[str],
    endpos: str,
    out_dir: Path,
    options: tuple[str, ...] = (),
    create: str | None = None,
) -> tuple[float, list[Path]]:
    """Run one pg_recvlogical per slot at once; seconds until the last one reached endpos."""
    outs = [out_dir / f"{slot}.out" for slot in slots]
    started = time.perf_counter()
    procs = [recvlogical(dsn, s, endpos, o, options, create)
             for s, o in zip(slots, outs, strict=True)]  # fmt: skip
    for proc in procs:
        wait_ok(proc, timeout=1800)
    return time.perf_counter() - started, outs


def commits_in(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(line.startswith(b"COMMIT") for line in lines)


def _replication_cursor(dsn: str) -> tuple[psycopg2.extensions.connection, object]:
    conn = psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
    return conn, conn.cursor()


def time_psycopg2_consumer(
    dsn: str, slot: str, transactions: int, feedback_every: int = 1000
) -> float:
    """Seconds from connect until ``transactions`` COMMITs arrived (test_decoding), sending
    feedback every ``feedback_every`` messages like a careful consumer does."""
    started = time.perf_counter()
    conn, cur = _replication_cursor(dsn)
    try:
        cur.start_replication(slot_name=slot, decode=False)
        seen = messages = 0
        while seen < transactions:
            msg = cur.read_message()
            if msg is None:
                _wait_readable(conn)
                continue
            messages += 1
            if msg.payload.startswith(b"COMMIT"):
                seen += 1
            if messages % feedback_every == 0:
                cur.send_feedback(flush_lsn=msg.data_start)
        cur.send_feedback(flush_lsn=msg.data_start, force=True)
        return time.perf_counter() - started
    finally:
        conn.close()


def _wait_readable(conn: psycopg2.extensions.connection, timeout: float = 1.0) -> None:
    select.select([conn], [], [], timeout)


def time_to_first_change(dsn: str, slot: str, start_lsn: int) -> float:
    """Seconds from connect to the first XLogData of a stream starting at ``start_lsn``."""
    started = time.perf_counter()
    conn, cur = _replication_cursor(dsn)
    try:
        cur.start_replication(slot_name=slot, decode=False, start_lsn=start_lsn)
        deadline = started + 120
        while time.perf_counter() < deadline:
            msg = cur.read_message()
            if msg is not None:
                return time.perf_counter() - started
            _wait_readable(conn, 0.01)
        raise TimeoutError("no XLogData within 120 s")
    finally:
        conn.close()


Stamp = Callable[[psycopg2.extras.ReplicationMessage], int]


def stamp_key(msg: psycopg2.extras.ReplicationMessage) -> int:
    """The append time a live writer put in column k (µs since the epoch)."""
    return int(KEY_VALUE.search(msg.payload).group(1))  # type: ignore[union-attr]


def stamp_ts(msg: psycopg2.extras.ReplicationMessage) -> int:
    """Column ts (now() of PostgreSQL's inserting transaction), µs since the epoch."""
    text = TS_VALUE.search(msg.payload).group(1).decode()  # type: ignore[union-attr]
    return (dt.datetime.fromisoformat(text) - EPOCH) // dt.timedelta(microseconds=1)


def stamp_lsn(msg: psycopg2.extras.ReplicationMessage) -> int:
    """pgshim's RedDB LSN of the change (its position without the last 8 bits)."""
    return msg.data_start >> 8


def receive_changes(
    dsn: str,
    slot: str,
    count: int,
    timeout: float,
    stamp: Stamp,
    feedback_every: int = 1000,
    ready: Callable[[], object] | None = None,
) -> tuple[array, array]:
    """Stream test_decoding until ``count`` changes arrived or ``timeout`` passed: each change's
    ``stamp`` and its receipt time (µs since the epoch). ``ready`` is called once streaming."""
    conn, cur = _replication_cursor(dsn)
    stamps, received = array("q"), array("q")
    try:
        cur.start_replication(slot_name=slot, decode=False)
        if ready is not None:
            ready()
        deadline = time.monotonic() + timeout
        while len(stamps) < count and time.monotonic() < deadline:
            msg = cur.read_message()
            if msg is None:
                _wait_readable(conn, 0.05)
                continue
            if msg.payload.startswith(b"table "):
                received.append(time.time_ns() // 1000)
                stamps.append(stamp(msg))
                if len(stamps) % feedback_every == 0:
                    cur.send_feedback(flush_lsn=msg.data_start)
    finally:
        conn.close()
    return stamps, received


def receipt_latencies(dsn: str, slot: str, count: int, timeout: float) -> list[float]:
    """Milliseconds between each row's append time (µs since the epoch in column k) and receipt,
    acknowledging every change."""
    stamps, received = receive_changes(dsn, slot, count, timeout, stamp_key, feedback_every=1)
    return [(r - s) / 1000 for s, r in zip(stamps, received, strict=True)]
