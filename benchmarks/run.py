#!/usr/bin/env python
"""pgshim against PostgreSQL 15 on the same machine, in the same run: prints a table of ratios.

    .venv/bin/python benchmarks/run.py [--records N] [--deep-records D] [--only NAMES] [--quick]

PostgreSQL: an initdb'd cluster (fsync off, wal_level logical), slots created before N single-row
INSERT transactions run by pgbench. Every row is cold or warm:

- warm (cases 1-7, 9): pgshim's slots created, then a spool of the same N rows written and
  ingested before the clock starts; each consumer is timed from connect to the last change
  received, as PostgreSQL's once the WAL is written. Live cases (6, 9) start the server and let
  it take in what is there first; each new record's ingestion is on the clock.
- cold (cases 8, 10, 11): the spool is complete before pgshim first starts, with an empty state
  directory; the clock starts with pgshim's process, ingestion included (11: ingestion alone).

Writes results.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

import consumers  # noqa: E402
import ingest  # noqa: E402
import sustained  # noqa: E402
import workload  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from server_proc import PgshimServer  # noqa: E402
from spool_read import write_spool  # noqa: E402

from pgshim import speedups  # noqa: E402
from pgshim.logical.positions import end_pos  # noqa: E402

CASES = ("td", "newformat", "pgoutput", "fanout", "psycopg2", "deep", "latency", "rss", "catchup",
         "sustained", "firststart", "ingest")  # fmt: skip
WARM_CASES = ("td", "newformat", "pgoutput", "fanout", "psycopg2", "deep", "rss")  # on one server
FANOUT = 8
PUBLICATION = "bench_pub"
PGOUTPUT_OPTIONS = ("proto_version=1", f"publication_names={PUBLICATION}")
# pgshim's configuration for cold starts: every new slot starts at the oldest retained change
COLD_CONFIG = f'new_slot_position = "oldest"\ndefault_publication = "{PUBLICATION}"\n'
SUSTAINED_CLIENTS = 8  # pgbench clients sharing PostgreSQL's rate, each waiting for its commits
# slots of one round, by role: (plugin, how many)
ROLES = {"td": ("test_decoding", 1), "fan": ("test_decoding", FANOUT),
         "newformat": ("test_decoding", 1), "py": ("test_decoding", 1), "po": ("pgoutput", 1),
         "catchup_td": ("test_decoding", 1), "catchup_po": ("pgoutput", 1)}  # fmt: skip
HEADER_NOTE = ("cold = pgshim's start and ingestion on the clock; warm = ingestion done first"
               " (live cases: the server started and took in what was there first, each new"
               " record's ingestion is on the clock).")  # fmt: skip


@dataclass
class Result:
    case: str
    pgshim: float | None
    postgres: float | None
    unit: str
    target: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.pgshim is None or not self.postgres:
            return None
        return self.pgshim / self.postgres


def lsn_text(pos: int) -> str:
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


def psql(dsn: str, sql: str) -> str:
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {out.stderr}")
    return out.stdout.strip()


def status_mb(pid: int, field: str) -> float:
    """A size from /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def vm_hwm_mb(pid: int) -> float:
    return status_mb(pid, "VmHWM")


class RssSampler(threading.Thread):
    """A process's resident set size (MB) every ``interval`` seconds, within a with block."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            with contextlib.suppress(OSError, RuntimeError):  # the process ended
                self.samples.append(status_mb(self.pid, "VmRSS"))

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()

    def trend(self) -> str:
        """RSS at a quarter, half, three quarters and the end of the samples; flat when the end
        is within 10 % of the middle."""
        if len(self.samples) < 4:
            return f"{len(self.samples)} RSS samples"
        points = [self.samples[len(self.samples) * q // 4 - 1] for q in (1, 2, 3, 4)]
        flat = "flat" if points[3] <= 1.1 * points[1] else "growing"
        return f"RSS at 25/50/75/100 %: {'/'.join(f'{p:.0f}' for p in points)} MB ({flat})"


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ..., utime at 11, stime at 12."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, its threads and the children it reaped."""
    return sum(int(v) for v in stat_fields(pid)[11:15]) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> dict[int, bytes]:
    """The live children of a process, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(stat_fields(entry.name)[1]) == pid:
                    found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue  # gone meanwhile
    return found


def consumers_cpu_seconds() -> float:
    """CPU time of this process's reaped children (the consumers a case ran and waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def round_slots(round_: int) -> dict[str, list[str]]:
    """The slots one round of cases 1-4 and 8 consumes, by role (each round needs fresh ones)."""
    return {role: [f"{role}{i}_{round_}" for i in range(n)] for role, (_, n) in ROLES.items()}


def all_slots(rounds: int) -> list[tuple[str, str]]:
    """(slot, plugin) of every round, and case 5a's."""
    slots = [("first", "test_decoding")]
    for round_ in range(rounds):
        slots += [(slot, ROLES[role][0]) for role, names in round_slots(round_).items()
                  for slot in names]  # fmt: skip
    return slots


def create_slots(dsn: str, slots: list[tuple[str, str]]) -> None:
    for slot, plugin in slots:
        psql(dsn, f"SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')")


def check_commits(paths: list[Path], expected: int) -> None:
    for path in paths:
        if (found := consumers.commits_in(path)) != expected:
            raise RuntimeError(f"{path}: {found} COMMITs, expected {expected}")


@dataclass
class ColdRun:
    seconds: float
    peak_mb: float
    rss: RssSampler


def cold_catchup(
    spool: Path, records: int, work: Path, plugin: str, options: tuple[str, ...] = ()
) -> ColdRun:
    """pgshim started on a complete spool with an empty state directory, and one pg_recvlogical
    creating a slot (at the oldest change: COLD_CONFIG) and receiving every change: seconds from
    pgshim's process start until that pg_recvlogical reached the end."""
    work.mkdir()
    config = work / "pgshim.toml"
    config.write_text(COLD_CONFIG)
    server = PgshimServer(spool, work / "state", args=("--config", str(config)))
    started = time.perf_counter()
    server.start(timeout=3600)
    try:
        with RssSampler(server.proc.pid) as rss:  # type: ignore[union-attr]
            _, outs = consumers.time_recvlogical(server.dsn(), ["catchup"],
                                                 lsn_text(end_pos(records)), work, options,
                                                 create=plugin)  # fmt: skip
            elapsed = time.perf_counter() - started
        peak = vm_hwm_mb(server.proc.pid)  # type: ignore[union-attr]
    finally:
        server.stop()
    if plugin == "test_decoding":
        check_commits(outs, records)
    shutil.rmtree(work)
    return ColdRun(elapsed, peak, rss)


class PostgresSide:
    def __init__(self, work: Path, records: int, rounds: int) -> None:
        settings = {"wal_level": "logical", "max_replication_slots": "100",
                    "max_wal_senders": "40", "shared_buffers": "256MB",
                    # fsync stays off; with asynchronous commit PostgreSQL would hold changes back
                    # for up to wal_writer_delay, which is not what case 6 measures
                    "synchronous_commit": "on"}  # fmt: skip
        self.cluster = PgCluster(work, settings).start()
        self.dsn = self.cluster.dsn()
        self.records = records
        self.rounds = rounds

    def prepare(self, insert: bool = True) -> float:
        """Table, publication and slots, then (``insert``) the N rows; seconds pgbench took."""
        psql(self.dsn, workload.CREATE_TABLE_SQL)
        psql(self.dsn, f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {workload.TABLE}")
        create_slots(self.dsn, all_slots(self.rounds))
        self.script = self.cluster.base / "insert.sql"
        self.script.write_text(workload.PGBENCH_SCRIPT)
        os.chmod(self.script, 0o644)
        elapsed = self.pgbench(self.records) if insert else 0.0
        self.endpos = psql(self.dsn, "SELECT pg_current_wal_insert_lsn()")
        return elapsed

    def pgbench(self, transactions: int, clients: int = 2, *options: str) -> float:
        """Seconds pgbench took for ``transactions`` single-row inserts (a multiple of
        ``clients``), with its ``options`` (--rate R)."""
        started = time.perf_counter()
        subprocess.run(
            ["pgbench", "-n", "-f", str(self.script), "-c", str(clients), "-j", str(min(clients, 2)),
             "-t", str(transactions // clients), *options, self.dsn],
            check=True, timeout=3600, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """CPU time of the whole cluster so far, once the walsenders of a finished run exited
        (the postmaster counts its reaped children)."""
        postmaster = int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        deadline = time.monotonic() + 10
        while True:
            live = children(postmaster)
            if not any(b"walsender" in cmd for cmd in live.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL's walsenders did not exit after their run")
            time.sleep(0.05)
        total = cpu_seconds(postmaster)
        for pid in live:
            with contextlib.suppress(OSError):  # exited meanwhile
                total += cpu_seconds(pid)
        return total

    def stop(self) -> None:
        self.cluster.stop()


class PgshimSide:
    def __init__(
        self,
        work: Path,
        name: str,
        records: int,
        slots: list[tuple[str, str]] | None = None,
        spool: Path | None = None,
    ) -> None:
        """With ``slots``, the server starts first and they are created (with the publication)
        before the spool is written, as PostgreSQL's slots are created before the inserts;
        with ``spool``, that one was written already."""
        self.dir = work / name
        self.dir.mkdir()
        self.spool = spool or self.dir / "bench.rdb.logical.wal"
        self.records = records
        self.generated_in = 0.0
        if slots is None and spool is None:
            self.generated_in = self._write()
        started = time.perf_counter()
        self.server = PgshimServer(self.spool, self.dir / "state").start(timeout=3600)
        self.started_in = time.perf_counter() - started
        self.dsn = self.server.dsn()
        self.endpos = lsn_text(end_pos(records))
        if slots is not None:
            psql(self.dsn, f"CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES")
            create_slots(self.dsn, slots)
            started = time.perf_counter()
            self.generated_in = self._write()
        # like PostgreSQL's WAL before its consumers are timed, the spool is fully taken in
        # (decoded once, kept in the decoded store) before pgshim's consumers are timed
        while psql(self.dsn, "SELECT pg_current_wal_lsn()") != self.endpos:
            time.sleep(0.1)
        self.ingested_in = time.perf_counter() - started

    def _write(self) -> float:
        started = time.perf_counter()
        workload.write_bench_spool(self.spool, self.records)
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.server.proc.pid)

    def history_slot(self, name: str, plugin: str = "test_decoding") -> None:
        psql(self.dsn, f"SELECT pgshim_create_history_slot('{name}', '{plugin}')")

    def released(self, slot: str) -> str:
        """``slot`` once its last session let it go (a closed connection's session ends a
        moment later, as a PostgreSQL walsender does)."""
        sql = f"SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"
        deadline = time.monotonic() + 30
        while psql(self.dsn, sql) != "f":
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} still active")
            time.sleep(0.05)
        return slot

    def stop(self) -> None:
        self.server.stop()


def _live_inserts_pg(dsn: str, count: int, rate: float, delay: float) -> None:
    import psycopg2

    time.sleep(delay)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    sql = (f"INSERT INTO {workload.TABLE} VALUES (%(k)s, 'name-' || %(k)s, md5(%(k)s::text),"
           " %(k)s %% 65536, %(k)s * 0.5, %(k)s %% 2 = 0, now())")  # fmt: skip
    started = time.monotonic()
    for i in range(count):
        pause = started + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        cur.execute(sql, {"k": time.time_ns() // 1000})
    conn.close()


def _live_appends(path: str, start_lsn: int, count: int, rate: float, delay: float) -> None:
    time.sleep(delay)
    workload.append_live(path, start_lsn, count, rate)


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        raise RuntimeError("the latency consumer received fewer than two changes")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def highest_rate(
    run: Callable[[float], sustained.Lags], rates: list[float]
) -> tuple[float | None, str]:
    """The highest of ``rates`` (ascending) sustained before the first that is not, and what
    each run gave."""
    best, tried = None, []
    for rate in rates:
        lags = run(rate)
        tried.append(f"{rate:g}/s p99 {lags.percentile(99):.0f} ms (writer {lags.rate:,.0f}/s)")
        if not lags.sustains(rate):
            break
        best = rate
    return best, ", ".join(tried)


class Harness:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.results: list[Result] = []
        self.notes: list[str] = []
        self.only = set(args.only.split(",")) if args.only else set(CASES)
        self.catchup_pg: float | None = None  # case 8's PostgreSQL time (test_decoding)
        self.runs = 0  # sustained runs so far, for fresh names

    def wants(self, *cases: str) -> bool:
        return bool(self.only & set(cases))

    def add(self, result: Result) -> None:
        self.results.append(result)
        print(format_row(result), flush=True)

    def run(self) -> None:
        n = self.args.records
        pg = PostgresSide(self.work, n, self.args.repeat)
        try:
            insert = self.wants(*WARM_CASES, "catchup")
            inserted_in = pg.prepare(insert)
            if insert:
                self.notes.append(f"PostgreSQL: pgbench inserted {n} rows in {inserted_in:.1f} s")
            if self.wants(*WARM_CASES):
                self.warm_cases(pg)
            if self.wants("catchup"):
                self.catchup_cases(pg)
            if self.wants("latency"):
                self.latency_case(pg)
            if self.wants("sustained"):
                self.sustained_cases(pg)
        finally:
            pg.stop()
        if self.wants("deep", "rss", "firststart"):
            self.deep_cases()
        if self.wants("ingest"):
            self.ingest_case()

    def warm_cases(self, pg: PostgresSide) -> None:
        n = self.args.records
        shim = PgshimSide(self.work, "main", n, all_slots(self.args.repeat))
        try:
            self.notes.append(
                f"pgshim: server ready in {shim.started_in:.1f} s; slots created, then a spool"
                f" of {n} records written in {shim.generated_in:.1f} s and ingested"
                f" {shim.ingested_in:.1f} s after the writing began"
            )
            self.streaming_cases(pg, shim)
            if self.wants("rss"):
                self.notes.append(f"pgshim peak RSS after cases 1-4 on {n} records: "
                                  f"{vm_hwm_mb(shim.server.proc.pid):.0f} MB")  # fmt: skip
        finally:
            shim.stop()

    def streaming_cases(self, pg: PostgresSide, shim: PgshimSide) -> None:
        n = self.args.records
        out = self.work / "out"
        out.mkdir()

        def both(
            run: Callable[[str, str, Path, dict[str, list[str]]], float], rounds: int | None = None
        ) -> tuple[float, float]:
            """Medians of ``rounds`` runs on each side (alternating, on fresh slots); the CPU
            time of the servers and of the consumers goes to ``cpu``."""
            times: dict[str, list[float]] = {"pg": [], "shim": []}
            servers: dict[str, list[float]] = {"pg": [], "shim": []}
            clients: dict[str, list[float]] = {"pg": [], "shim": []}
            for round_ in range(self.args.repeat if rounds is None else rounds):
                for side, server in (("pg", pg), ("shim", shim)):
                    target = out / side
                    target.mkdir(exist_ok=True)
                    server_before, clients_before = server.cpu_seconds(), consumers_cpu_seconds()
                    times[side].append(run(server.dsn, server.endpos, target, round_slots(round_)))
                    clients[side].append(consumers_cpu_seconds() - clients_before)
                    servers[side].append(server.cpu_seconds() - server_before)
            cpu.update({(kind, side): statistics.median(values[side])
                        for kind, values in (("server", servers), ("consumers", clients))
                        for side in values})  # fmt: skip
            return statistics.median(times["shim"]), statistics.median(times["pg"])

        cpu: dict[tuple[str, str], float] = {}

        def cpu_note() -> str:
            return (f"CPU s: servers pgshim {cpu['server', 'shim']:.2f}, PostgreSQL"
                    f" {cpu['server', 'pg']:.2f}; consumers {cpu['consumers', 'shim']:.2f} /"
                    f" {cpu['consumers', 'pg']:.2f}")  # fmt: skip

        if self.wants("td"):

            def td(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                elapsed, paths = consumers.time_recvlogical(dsn, slots["td"], endpos, target)
                check_commits(paths, n)
                return elapsed

            shim_s, pg_s = both(td)
            self.add(Result("1 warm pg_recvlogical test_decoding", shim_s, pg_s, "s", "<= 0.5",
                            cpu_note()))  # fmt: skip
        if self.wants("newformat"):

            def newformat(
                dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]
            ) -> float:
                # options no consumer used before the spool was written: nothing rendered ahead
                elapsed, paths = consumers.time_recvlogical(
                    dsn, slots["newformat"], endpos, target, ("include-timestamp=1",)
                )
                check_commits(paths, n)
                return elapsed

            # its first reader renders it for the next ones
            shim_s, pg_s = both(newformat, rounds=1)
            self.add(Result("1c warm, first reader of a new format", shim_s, pg_s, "s", "-"))
        if self.wants("pgoutput"):

            def po(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                return consumers.time_recvlogical(dsn, slots["po"], endpos, target,
                                                  PGOUTPUT_OPTIONS)[0]  # fmt: skip

            shim_s, pg_s = both(po)
            first = round_slots(0)["po"][0]
            sizes = [(out / s / f"{first}.out").stat().st_size for s in ("pg", "shim")]
            self.add(Result("2 warm pg_recvlogical pgoutput v1", shim_s, pg_s, "s", "<= 0.5",
                            f"bytes pg={sizes[0]} pgshim={sizes[1]}; {cpu_note()}"))  # fmt: skip
        if self.wants("fanout"):

            def fan(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                elapsed, paths = consumers.time_recvlogical(dsn, slots["fan"], endpos, target)
                check_commits(paths, n)
                return elapsed

            shim_s, pg_s = both(fan)
            self.add(Result(f"3 warm {FANOUT} x pg_recvlogical", shim_s, pg_s, "s", "<= 0.33",
                            cpu_note()))  # fmt: skip
            # on few cores the consumers' own CPU time bounds the wall clock of both sides
            self.add(Result(f"3s warm, server CPU for {FANOUT} sessions", cpu["server", "shim"],
                            cpu["server", "pg"], "s", "-",
                            f"{os.cpu_count()} cores: the consumers alone need"
                            f" {cpu['consumers', 'shim'] / (os.cpu_count() or 1):.2f} s"
                            " of wall clock"))  # fmt: skip
        if self.wants("psycopg2"):
            shim_s, pg_s = both(
                lambda dsn, e, t, slots: consumers.time_psycopg2_consumer(dsn, slots["py"][0], n)
            )
            self.add(Result("4 warm psycopg2 with feedback", shim_s, pg_s, "s", "-"))
        if self.wants("deep"):
            shim_s, pg_s = both(
                lambda dsn, e, t, slots: consumers.time_to_first_change(dsn, "first", 0), rounds=1
            )
            self.add(Result("5a warm first XLogData, N pending", shim_s * 1000, pg_s * 1000,
                            "ms", "-"))  # fmt: skip

    def latency_case(self, pg: PostgresSide) -> None:
        rate, seconds = 1000.0, self.args.latency_seconds
        count = int(rate * seconds)
        lat_dir = self.work / "latency"
        lat_dir.mkdir()
        spool = lat_dir / "live.rdb.logical.wal"
        workload.write_bench_spool(spool, 1)
        server = PgshimServer(spool, lat_dir / "state").start()
        try:
            psql(server.dsn(), "SELECT pg_create_logical_replication_slot('lat', 'test_decoding')")
            writer = multiprocessing.Process(
                target=_live_appends, args=(str(spool), 2, count, rate, 1.0)
            )
            writer.start()
            shim_ms = consumers.receipt_latencies(server.dsn(), "lat", count, seconds + 30)
            writer.join()
        finally:
            server.stop()
        psql(pg.dsn, "SELECT pg_create_logical_replication_slot('lat', 'test_decoding')")
        writer = multiprocessing.Process(target=_live_inserts_pg, args=(pg.dsn, count, rate, 1.0))
        writer.start()
        pg_ms = consumers.receipt_latencies(pg.dsn, "lat", count, seconds + 30)
        writer.join()
        for label, q in (("p50", 50), ("p99", 99)):
            target = "p99 < 10 ms" if q == 99 else "-"
            self.add(Result(f"6 warm live latency {label} @1k/s", percentile(shim_ms, q),
                            percentile(pg_ms, q), "ms", target,
                            f"{len(shim_ms)}/{len(pg_ms)} of {count} received"))  # fmt: skip

    def catchup_cases(self, pg: PostgresSide) -> None:
        """Case 8: every change of the N rows to a consumer that never read them; PostgreSQL's
        from pg_recvlogical's start, pgshim's from its process start on an empty state."""
        n = self.args.records
        out = self.work / "catchup"
        out.mkdir()
        spool = out / "bench.rdb.logical.wal"
        workload.write_bench_spool(spool, n)
        variants = {"test_decoding": ("catchup_td", ()),
                    "pgoutput": ("catchup_po", PGOUTPUT_OPTIONS)}  # fmt: skip
        for plugin, (role, options) in variants.items():
            times: dict[str, list[float]] = {"pg": [], "shim": []}
            peaks = []
            for round_ in range(self.args.repeat):
                elapsed, paths = consumers.time_recvlogical(
                    pg.dsn, round_slots(round_)[role], pg.endpos, out, options
                )
                if plugin == "test_decoding":
                    check_commits(paths, n)
                for path in paths:
                    path.unlink()
                times["pg"].append(elapsed)
                run = cold_catchup(spool, n, out / f"{role}{round_}", plugin, options)
                times["shim"].append(run.seconds)
                peaks.append(run.peak_mb)
            shim_s, pg_s = (statistics.median(times[side]) for side in ("shim", "pg"))
            if plugin == "test_decoding":
                self.catchup_pg = pg_s
            name = "pgoutput v1" if plugin == "pgoutput" else plugin
            self.add(Result(f"8 cold catch-up pg_recvlogical {name}", shim_s, pg_s, "s", "<= 0.5",
                            f"pgshim from its process start, empty state; peak RSS"
                            f" {max(peaks):.0f} MB"))  # fmt: skip

    def sustained_cases(self, pg: PostgresSide) -> None:
        """Case 9: lags while a writer appends at a fixed rate, 1 and FANOUT consumers; with
        --sustained-search, the highest rate each side keeps with p99 under 100 ms."""
        a = self.args
        rates = (
            sorted(float(r) for r in a.sustained_search.split(",")) if a.sustained_search else []
        )
        largest = max([a.sustained_rate * a.sustained_seconds]
                      + [rate * a.search_seconds for rate in rates])  # fmt: skip
        started = time.perf_counter()
        source = sustained.FrameSource(self.work / "frames.rdb.logical.wal", int(largest))
        self.notes.append(f"case 9: {int(largest)} frames generated before any clock in"
                          f" {time.perf_counter() - started:.0f} s")  # fmt: skip
        for readers in (1, FANOUT):
            shim = self.sustained_pgshim(source, a.sustained_rate, a.sustained_seconds, readers)
            base = self.sustained_postgres(pg, a.sustained_rate, a.sustained_seconds, readers)
            label = (
                f"9 warm sustained {readers} consumer{'s' * (readers > 1)} @{a.sustained_rate:g}/s"
            )
            for stat, q in (("p50", 50), ("p99", 99), ("max", 100)):
                note = f"pgshim: {shim.note()}; PostgreSQL: {base.note()}" if q == 99 else ""
                self.add(Result(f"{label} lag {stat}", shim.percentile(q), base.percentile(q),
                                "ms", "< 100 ms" if q == 99 else "-", note))  # fmt: skip
        if not rates:
            return
        sides = {"pgshim": lambda rate: self.sustained_pgshim(source, rate, a.search_seconds, 1),
                 "PostgreSQL": lambda rate: self.sustained_postgres(pg, rate, a.search_seconds, 1)}  # fmt: skip
        best = {side: highest_rate(run, rates) for side, run in sides.items()}
        self.add(Result(f"9r warm highest rate, 1 consumer, p99 < {sustained.P99_LIMIT_MS:g} ms",
                        best["pgshim"][0], best["PostgreSQL"][0], "rec/s", "-",
                        "; ".join(f"{side}: {tried}" for side, (_, tried) in best.items())))  # fmt: skip

    def sustained_count(self, rate: float, seconds: float) -> int:
        """Records of a sustained run: a multiple of PostgreSQL's pgbench clients."""
        return int(rate * seconds) // SUSTAINED_CLIENTS * SUSTAINED_CLIENTS

    def sustained_pgshim(
        self, source: sustained.FrameSource, rate: float, seconds: float, readers: int
    ) -> sustained.Lags:
        self.runs += 1
        work = self.work / f"sustained{self.runs}"
        work.mkdir()
        spool = work / "live.rdb.logical.wal"
        source.start_spool(spool)
        server = PgshimServer(spool, work / "state").start()
        try:
            slots = [f"s{i}" for i in range(readers)]
            create_slots(server.dsn(), [(slot, "test_decoding") for slot in slots])
            records = self.sustained_count(rate, seconds)
            return sustained.measure(server.dsn(), slots, records, seconds, consumers.stamp_lsn,
                                     source.writer(spool, rate, records))  # fmt: skip
        finally:
            server.stop()
            shutil.rmtree(work)

    def sustained_postgres(
        self, pg: PostgresSide, rate: float, seconds: float, readers: int
    ) -> sustained.Lags:
        self.runs += 1
        slots = [f"sustained{self.runs}_{i}" for i in range(readers)]
        create_slots(pg.dsn, [(slot, "test_decoding") for slot in slots])
        records = self.sustained_count(rate, seconds)

        def write() -> tuple[float, None]:
            return pg.pgbench(records, SUSTAINED_CLIENTS, "--rate", f"{rate:g}"), None

        return sustained.measure(pg.dsn, slots, records, seconds, consumers.stamp_ts, write)

    def first_start_case(self, spool: Path) -> None:
        """Case 10: pgshim's first start on the deep spool, until a consumer from the oldest
        change received everything; PostgreSQL's time is case 8's scaled, not measured."""
        d, n = self.args.deep_records, self.args.records
        run = cold_catchup(spool, d, self.work / "firststart", "test_decoding")
        base = None if self.catchup_pg is None else self.catchup_pg * d / n
        note = ("PostgreSQL not measured (case 8 did not run)" if base is None
                else f"PostgreSQL: case 8's {self.catchup_pg:.2f} s for {n} rows x {d}/{n}"
                " (scaled, not measured)")  # fmt: skip
        self.add(Result(f"10 cold first start on {d}, all received", run.seconds, base, "s",
                        "-", note))  # fmt: skip
        self.add(Result(f"10 cold first start on {d}, peak RSS", run.peak_mb, None, "MB",
                        "< 150 MB", run.rss.trend()))  # fmt: skip

    def ingest_case(self) -> None:
        """Case 11: benchmarks/ingest.py's whole path (ChangeSource.ingest into the decoded
        store), records per CPU second of this process."""
        n, runs = self.args.records, self.args.repeat
        root = self.work / "ingest"
        root.mkdir()
        spool = root / "bench.rdb.logical.wal"
        write_spool(str(spool), n, ingest.UNIQUE, 0)
        count, seconds = ingest.total(str(spool), str(root), runs)
        core = "in use" if speedups.core is not None else "off"
        self.add(Result("11 cold ingestion (ingest.py total)", count / seconds, None, "rec/s",
                        ">= 100k", f"{count} of {n} demo-workload records released (per CPU second"
                        f" in process), median of {runs}; compiled core {core}"))  # fmt: skip

    def deep_cases(self) -> None:
        d = self.args.deep_records
        spool = self.work / "deep.rdb.logical.wal"
        started = time.perf_counter()
        workload.write_bench_spool(spool, d)
        self.notes.append(f"deep spool: {d} records ({spool.stat().st_size / 1e9:.2f} GB)"
                          f" written in {time.perf_counter() - started:.0f} s")  # fmt: skip
        if self.wants("firststart"):
            self.first_start_case(spool)
        if not self.wants("deep", "rss"):
            return
        shim = PgshimSide(self.work, "deep", d, spool=spool)
        self.notes.append(f"deep: server ready in {shim.started_in:.1f} s")
        try:
            shim.history_slot("deep")
            first_start = shim.ingested_in
            if self.wants("deep"):
                for fraction in (0.1, 0.5, 0.9):
                    start = end_pos(int(d * fraction))
                    slot = shim.released("deep")
                    seconds = consumers.time_to_first_change(shim.dsn, slot, start)
                    self.add(Result(f"5 warm first XLogData at {fraction:.0%} of {d}",
                                    seconds * 1000, None, "ms", "< 100 ms"))  # fmt: skip
            if self.wants("rss"):
                started = time.perf_counter()
                consumers.time_recvlogical(shim.dsn, [shim.released("deep")], shim.endpos,
                                           shim.dir)  # fmt: skip
                streamed = time.perf_counter() - started
                (shim.dir / "deep.out").unlink()
                self.add(Result(f"7 warm peak RSS streaming {d}", vm_hwm_mb(shim.server.proc.pid),
                                None, "MB", "< 150 MB", f"streamed in {streamed:.0f} s"))  # fmt: skip
        finally:
            shim.stop()
        if self.wants("deep"):
            # a restart resumes after the ingestion checkpoint instead of decoding the spool again
            started = time.perf_counter()
            server = PgshimServer(shim.spool, shim.dir / "state").start(timeout=3600)
            try:
                psql(server.dsn(), "SELECT pg_create_logical_replication_slot('again', 'pgoutput')")
                restarted = time.perf_counter() - started
            finally:
                server.stop()
            self.add(Result(f"5b warm restart, slot at the end of {d}", restarted, None, "s", "-",
                            f"first start: {first_start:.1f} s"))  # fmt: skip


def format_row(r: Result) -> str:
    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"

    ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
    return (f"| {r.case:<36} | {num(r.pgshim):>9} | {num(r.postgres):>9} | {r.unit:<3} |"
            f" {ratio:>6} | {r.target:<11} | {r.note} |")  # fmt: skip


HEADER = (f"| {'case':<36} | {'pgshim':>9} | {'postgres':>9} | {'':<3} | {'ratio':>6} |"
          f" {'target':<11} | notes |")  # fmt: skip


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    pg = subprocess.run(["postgres", "--version"], capture_output=True, text=True).stdout.strip()
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores (nproc)",
        f"- memory: {mem_kb / 1024 / 1024:.1f} GiB",
        f"- Python {platform.python_version()} ({platform.python_implementation()}),"
        f" {platform.system()} {platform.release()}",
        f"- {pg or 'PostgreSQL (postgres not on PATH)'}",
    ]


def write_results(path: Path, harness: Harness, argv: list[str]) -> None:
    lines = ["# pgshim vs PostgreSQL 15", "", "Machine:", *machine(), "",
             f"Run: `benchmarks/run.py {' '.join(argv)}` on {time.strftime('%Y-%m-%d %H:%M')}"
             f" (records={harness.args.records}, deep records={harness.args.deep_records};"
             f" cases 1-4 and 8: median of {harness.args.repeat} runs on each side)",
             "", HEADER_NOTE, "", HEADER, "|" + "---|" * 7]  # fmt: skip
    lines += [format_row(r) for r in harness.results]
    lines += ["", *[f"- {note}" for note in harness.notes], ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--deep-records",
        type=int,
        default=1_000_000,
        help="spool size for cases 5, 7 and 10 (10M for the first-start target: slow to generate)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--sustained-rate",
        type=float,
        default=50_000.0,
        help="records per second the writer of case 9 appends",
    )
    parser.add_argument("--sustained-seconds", type=float, default=60.0)
    parser.add_argument(
        "--sustained-search",
        metavar="RATES",
        help="comma-separated rates to try, ascending, each side stopping at the"
        " first that fails: the highest with p99 < 100 ms (1 consumer)",
    )
    parser.add_argument("--search-seconds", type=float, default=10.0,
                        help="length of each run of --sustained-search")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of cases 1-4 and 8 (and 11) on each side; the table shows medians")  # fmt: skip
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--results", default=str(HERE / "results.md"))
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.deep_records, args.latency_seconds = 2000, 20_000, 2.0
        args.sustained_rate, args.sustained_seconds, args.search_seconds = 2000.0, 5.0, 3.0
    if "PATH" in os.environ and (bindir := _pg_bindir()):
        os.environ["PATH"] = f"{bindir}:{os.environ['PATH']}"
    with tempfile.TemporaryDirectory(prefix="pgshim-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        harness = Harness(args, work)
        print(HEADER, flush=True)
        harness.run()
    for note in harness.notes:
        print(f"- {note}")
    write_results(Path(args.results), harness, argv)
    return 0


def _pg_bindir() -> str | None:
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
