"""Replication consumers the harness times: pg_recvlogical runs and psycopg2 clients.

Every function takes a libpq connection string and returns seconds (or latencies in ms); the same
code drives PostgreSQL and pgshim, so the two columns of the table measure the same work.
"""

from __future__ import annotations

import re
import select
import subprocess
import time
from pathlib import Path

import psycopg2
import psycopg2.extras

COMMIT = re.compile(rb"^COMMIT", re.MULTILINE)
KEY_VALUE = re.compile(rb"k\[bigint\]:(\d+)")


def recvlogical(
    dsn: str, slot: str, endpos: str, out: Path, options: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    cmd = ["pg_recvlogical", "-d", dsn, "-S", slot, "--start", "-f", str(out), "--endpos", endpos,
           "--no-loop", "-F", "0"]  # fmt: skip
    for option in options:
        cmd += ["-o", option]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE)


def wait_ok(proc: subprocess.Popen[bytes], timeout: float) -> None:
    _, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed ({proc.returncode}): {err.decode()}")


def time_recvlogical(
    dsn: str, slots: list[str], endpos: str, out_dir: Path, options: tuple[str, ...] = ()
) -> tuple[float, list[Path]]:
    """Run one pg_recvlogical per slot at once; seconds until the last one reached endpos."""
    outs = [out_dir / f"{slot}.out" for slot in slots]
    started = time.perf_counter()
    procs = [recvlogical(dsn, s, endpos, o, options) for s, o in zip(slots, outs, strict=True)]
    for proc in procs:
        wait_ok(proc, timeout=1800)
    return time.perf_counter() - started, outs


def commits_in(path: Path) -> int:
    return len(COMMIT.findall(path.read_bytes()))


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


def receipt_latencies(dsn: str, slot: str, count: int, timeout: float) -> list[float]:
    """Milliseconds between each row's append time (µs since the epoch in column k) and receipt."""
    conn, cur = _replication_cursor(dsn)
    latencies: list[float] = []
    try:
        cur.start_replication(slot_name=slot, decode=False)
        deadline = time.monotonic() + timeout
        while len(latencies) < count and time.monotonic() < deadline:
            msg = cur.read_message()
            if msg is None:
                _wait_readable(conn, 0.05)
                continue
            received_us = time.time_ns() // 1000
            found = KEY_VALUE.search(msg.payload)
            if found:
                latencies.append((received_us - int(found.group(1))) / 1000)
                cur.send_feedback(flush_lsn=msg.data_start)
    finally:
        conn.close()
    return latencies
