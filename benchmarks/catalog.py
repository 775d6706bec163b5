#!/usr/bin/env python
"""How long psql's catalog commands take: pgshim against PostgreSQL 15, side by side.

    .venv/bin/python benchmarks/catalog.py [--collections 200] [--slots 100] [--runs 30]

Both servers hold the same tables (pgshim: collections in a spool; PostgreSQL: tables with the
columns pgshim shows for them), the same number of logical slots and a publication, while a
writer keeps adding rows and pg_recvlogical streams them from one slot. Each command runs in one
long-lived psql session over a TCP socket, timed from sending it to the end of its output; the
table shows the median (and 90th percentile) of ``--runs`` runs and pgshim's ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psycopg2  # noqa: E402
from pgcluster import PgCluster, pg_bindir  # noqa: E402
from server_proc import PgshimServer  # noqa: E402
from spoolkit import SpoolKit  # noqa: E402

COMMANDS = [
    "\\d",
    "\\d users",
    "\\dt",
    "\\dv",
    "\\l",
    "\\dRp+",
    "SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag"
    " FROM pg_replication_slots",
]
MARK = "--done--"
PUBLICATION = "bench_pub"


class PsqlSession:
    """One psql process fed commands on its standard input; each is timed to its output's end
    (an \\echo of a marker after it)."""

    def __init__(self, bindir: Path, port: int, dbname: str) -> None:
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", str(bindir / "psql"), "-X", "-A", "-q", "-h", "127.0.0.1",
             "-p", str(port), "-U", "postgres", "-d", dbname],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def run(self, command: str) -> tuple[float, list[str]]:
        """Seconds the command took and its output lines."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        started = time.perf_counter()
        end = ";" if not command.startswith("\\") else ""
        self.proc.stdin.write(f"{command}{end}\n\\echo {MARK}\n")
        self.proc.stdin.flush()
        lines = []
        while (line := self.proc.stdout.readline()) != f"{MARK}\n":
            if not line:
                raise RuntimeError(f"psql ended: {''.join(lines)}")
            lines.append(line)
        return time.perf_counter() - started, lines

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


class Writer(threading.Thread):
    """Adds a row every ``interval`` seconds until stopped."""

    def __init__(self, write: Callable[[int], None], interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.write, self.interval = write, interval
        self.stopping = threading.Event()
        self.written = 0

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.written += 1
            self.write(self.written)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def table_names(count: int) -> list[str]:
    return ["users", *(f"c{index:03d}" for index in range(1, count))]


def consumer(dsn: str, slot: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["pg_recvlogical", "-d", dsn, "-S", slot, "--start", "-f", "/dev/null", "-F", "1"],
        stderr=subprocess.DEVNULL,
    )


def execute(dsn: str, statements: list[str]) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def slot_statements(count: int) -> list[str]:
    return [
        f"SELECT pg_create_logical_replication_slot('bench_{index}', 'test_decoding')"
        for index in range(count)
    ]


@contextlib.contextmanager
def pgshim_server(base: Path, collections: int, slots: int) -> Iterator[tuple[int, str]]:
    kit = SpoolKit(base / "data.rdb.logical.wal")
    for index, name in enumerate(table_names(collections)):
        kit.insert(name, name=f"row {index}", n=index, active=True)
    server = PgshimServer(kit.path, base / "state").start()
    writer = Writer(lambda n: kit.insert("users", name=f"streamed {n}", n=n, active=False))
    stream = None
    try:
        execute(server.dsn(), [*slot_statements(slots),
                               f"CREATE PUBLICATION {PUBLICATION} FOR TABLE users, c001"])  # fmt: skip
        writer.start()
        stream = consumer(server.dsn(), "bench_0")
        yield server.port, server.dsn()
    finally:
        writer.stop()
        if stream is not None:
            stream.kill()
            stream.wait()
        server.stop()
        kit.close()


@contextlib.contextmanager
def postgres_server(base: Path, pgshim_dsn: str, slots: int) -> Iterator[tuple[int, str]]:
    """PostgreSQL 15 with tables shaped like pgshim's collections (a primary key on rid)."""
    pg = PgCluster(base / "pg", {"wal_level": "logical", "max_replication_slots": str(slots + 10),
                                 "max_wal_senders": "10"}).start()  # fmt: skip
    writer = None
    stream = None
    try:
        conn = psycopg2.connect(pgshim_dsn)
        with conn.cursor() as cur:
            cur.execute("SELECT tablename, columns, types FROM pgshim_collections")
            shapes = cur.fetchall()
        conn.close()
        pg.psql("CREATE DATABASE reddb")
        dsn = pg.dsn("reddb")
        tables = [
            f'CREATE TABLE "{table}" ('
            + ", ".join(
                f'"{column}" {kind}' + (" PRIMARY KEY" if column == "rid" else "")
                for column, kind in zip(columns, types, strict=True)
            )
            + ")"
            for table, columns, types in shapes
        ]
        execute(dsn, [*tables, *slot_statements(slots),
                      f"CREATE PUBLICATION {PUBLICATION} FOR TABLE users, c001"])  # fmt: skip
        insert = psycopg2.connect(dsn)
        insert.autocommit = True
        cursor = insert.cursor()
        writer = Writer(
            lambda n: cursor.execute(
                "INSERT INTO users (rid, name, n, active) VALUES (%s, %s, %s, false)",
                (1_000_000 + n, f"streamed {n}", n),
            )
        )
        writer.start()
        stream = consumer(dsn, "bench_0")
        yield pg.port, dsn
    finally:
        if writer is not None:
            writer.stop()
        if stream is not None:
            stream.kill()
            stream.wait()
        pg.stop()


def measure(port: int, runs: int) -> dict[str, list[float]]:
    bindir = pg_bindir() or Path("/usr/bin")
    session = PsqlSession(bindir, port, "reddb")
    times: dict[str, list[float]] = {command: [] for command in COMMANDS}
    try:
        for command in COMMANDS:  # once each first: what is cached on first use
            _, lines = session.run(command)
            if any(line.startswith(("ERROR", "psql:")) for line in lines):
                raise RuntimeError(f"{command}: {''.join(lines)}")
        for _ in range(runs):
            for command in COMMANDS:
                times[command].append(session.run(command)[0])
    finally:
        session.close()
    return times


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.9) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", type=int, default=200)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true", help="time pgshim only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pgshim-catalog-bench-") as tmp:
        base = Path(tmp)
        with pgshim_server(base, args.collections, args.slots) as (port, dsn):
            ours = measure(port, args.runs)
            theirs: dict[str, list[float]] = {}
            if not args.no_postgres:
                with postgres_server(base, dsn, args.slots) as (pg_port, _):
                    theirs = measure(pg_port, args.runs)
    print(f"{args.collections} tables, {args.slots} logical slots, one consumer streaming; "
          f"median (p90) of {args.runs} runs, ms")  # fmt: skip
    print(f"{'command':<28} {'pgshim':>16} {'PostgreSQL 15':>16} {'ratio':>7}")
    for command in COMMANDS:
        median, p90 = summary(ours[command])
        label = command if len(command) <= 28 else command[:25] + "..."
        line = f"{label:<28} {median:>7.1f} ({p90:>6.1f})"
        if command in theirs:
            pg_median, pg_p90 = summary(theirs[command])
            line += f" {pg_median:>7.1f} ({pg_p90:>6.1f}) {median / pg_median:>7.1f}"
        print(line)


if __name__ == "__main__":
    main()
