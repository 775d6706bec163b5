#!/usr/bin/env python
"""pgshim against PostgreSQL 15 on the same machine, in the same run: prints a table of ratios.

    .venv/bin/python benchmarks/run.py [--records N] [--deep-records D] [--only NAMES] [--quick]

PostgreSQL: an initdb'd cluster (fsync off, wal_level logical), slots created before N single-row
INSERT transactions run by pgbench. pgshim: slots created, then a spool of the same N rows written
and ingested. Each consumer is timed from connect to the last change received (pgshim's once the
spool is ingested, as PostgreSQL's once the WAL is written). Writes results.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

import consumers  # noqa: E402
import workload  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from server_proc import PgshimServer  # noqa: E402

from pgshim.logical.positions import end_pos  # noqa: E402

CASES = ("td", "cold", "pgoutput", "fanout", "psycopg2", "deep", "latency", "rss")
FANOUT = 8
PUBLICATION = "bench_pub"


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


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


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
    """The slots one round of cases 1-4 consumes, by plugin (each round needs fresh ones)."""
    td = [f"td_{round_}", *(f"fan{i}_{round_}" for i in range(FANOUT)), f"cold_{round_}",
          f"py_{round_}"]  # fmt: skip
    return {"test_decoding": td, "pgoutput": [f"po_{round_}"]}


def all_slots(rounds: int) -> list[tuple[str, str]]:
    """(slot, plugin) of every round, and case 5a's."""
    slots = [("first", "test_decoding")]
    for round_ in range(rounds):
        slots += [(slot, plugin) for plugin, names in round_slots(round_).items() for slot in names]
    return slots


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

    def prepare(self) -> float:
        psql(self.dsn, workload.CREATE_TABLE_SQL)
        psql(self.dsn, f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {workload.TABLE}")
        for slot, plugin in all_slots(self.rounds):
            psql(self.dsn, f"SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')")
        script = self.cluster.base / "insert.sql"
        script.write_text(workload.PGBENCH_SCRIPT)
        os.chmod(script, 0o644)
        clients = 2
        started = time.perf_counter()
        subprocess.run(
            ["pgbench", "-n", "-f", str(script), "-c", str(clients), "-j", str(clients),
             "-t", str(self.records // clients), self.dsn],
            check=True, timeout=3600, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        self.endpos = psql(self.dsn, "SELECT pg_current_wal_insert_lsn()")
        return elapsed

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
        self, work: Path, name: str, records: int, slots: list[tuple[str, str]] | None = None
    ) -> None:
        """With ``slots``, the server starts first and they are created (with the publication)
        before the spool is written, as PostgreSQL's slots are created before the inserts."""
        self.dir = work / name
        self.dir.mkdir()
        self.spool = self.dir / "bench.rdb.logical.wal"
        self.records = records
        if slots is None:
            self.generated_in = self._write()
        started = time.perf_counter()
        self.server = PgshimServer(self.spool, self.dir / "state").start(timeout=3600)
        self.started_in = time.perf_counter() - started
        self.dsn = self.server.dsn()
        self.endpos = lsn_text(end_pos(records))
        if slots is not None:
            psql(self.dsn, f"CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES")
            for slot, plugin in slots:
                psql(self.dsn, f"SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')")
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


class Harness:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.results: list[Result] = []
        self.notes: list[str] = []
        self.only = set(args.only.split(",")) if args.only else set(CASES)

    def wants(self, *cases: str) -> bool:
        return bool(self.only & set(cases))

    def add(self, result: Result) -> None:
        self.results.append(result)
        print(format_row(result), flush=True)

    def run(self) -> None:
        n = self.args.records
        pg = PostgresSide(self.work, n, self.args.repeat)
        shim: PgshimSide | None = None
        try:
            inserted_in = pg.prepare()
            self.notes.append(f"PostgreSQL: pgbench inserted {n} rows in {inserted_in:.1f} s")
            shim = PgshimSide(self.work, "main", n, all_slots(self.args.repeat))
            self.notes.append(
                f"pgshim: server ready in {shim.started_in:.1f} s; slots created, then a spool"
                f" of {n} records written in {shim.generated_in:.1f} s and ingested"
                f" {shim.ingested_in:.1f} s after the writing began"
            )
            self.streaming_cases(pg, shim)
            if self.wants("latency"):
                self.latency_case(pg)
            if self.wants("rss"):
                self.notes.append(f"pgshim peak RSS after cases 1-4 on {n} records: "
                                  f"{vm_hwm_mb(shim.server.proc.pid):.0f} MB")  # fmt: skip
        finally:
            if shim is not None:
                shim.stop()
            pg.stop()
        if self.wants("deep", "rss"):
            self.deep_cases()

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

        def checked(paths: list[Path]) -> None:
            for path in paths:
                if (found := consumers.commits_in(path)) != n:
                    raise RuntimeError(f"{path}: {found} COMMITs, expected {n}")

        if self.wants("td"):

            def td(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                first = slots["test_decoding"][:1]
                elapsed, paths = consumers.time_recvlogical(dsn, first, endpos, target)
                checked(paths)
                return elapsed

            shim_s, pg_s = both(td)
            self.add(Result("1 pg_recvlogical test_decoding", shim_s, pg_s, "s", "<= 0.5",
                            cpu_note()))  # fmt: skip
        if self.wants("cold"):

            def cold(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                # options no consumer used before the spool was written: nothing rendered ahead
                elapsed, paths = consumers.time_recvlogical(
                    dsn, slots["test_decoding"][-2:-1], endpos, target, ("include-timestamp=1",)
                )
                checked(paths)
                return elapsed

            shim_s, pg_s = both(cold, rounds=1)  # its first reader renders it for the next ones
            self.add(Result("1c same, first reader of a new format", shim_s, pg_s, "s", "-"))
        if self.wants("pgoutput"):
            options = ("proto_version=1", f"publication_names={PUBLICATION}")

            def po(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                return consumers.time_recvlogical(dsn, slots["pgoutput"], endpos, target,
                                                  options)[0]  # fmt: skip

            shim_s, pg_s = both(po)
            sizes = [(out / s / "po_0.out").stat().st_size for s in ("pg", "shim")]
            self.add(Result("2 pg_recvlogical pgoutput v1", shim_s, pg_s, "s", "<= 0.5",
                            f"bytes pg={sizes[0]} pgshim={sizes[1]}; {cpu_note()}"))  # fmt: skip
        if self.wants("fanout"):

            def fan(dsn: str, endpos: str, target: Path, slots: dict[str, list[str]]) -> float:
                fan_slots = slots["test_decoding"][1 : 1 + FANOUT]
                elapsed, paths = consumers.time_recvlogical(dsn, fan_slots, endpos, target)
                checked(paths)
                return elapsed

            shim_s, pg_s = both(fan)
            self.add(Result(f"3 {FANOUT} x pg_recvlogical", shim_s, pg_s, "s", "<= 0.33",
                            cpu_note()))  # fmt: skip
            # on few cores the consumers' own CPU time bounds the wall clock of both sides
            self.add(Result(f"3s same, server CPU for {FANOUT} sessions", cpu["server", "shim"],
                            cpu["server", "pg"], "s", "-",
                            f"{os.cpu_count()} cores: the consumers alone need"
                            f" {cpu['consumers', 'shim'] / (os.cpu_count() or 1):.2f} s"
                            " of wall clock"))  # fmt: skip
        if self.wants("psycopg2"):
            shim_s, pg_s = both(
                lambda dsn, e, t, slots: consumers.time_psycopg2_consumer(
                    dsn, slots["test_decoding"][-1], n
                )
            )
            self.add(Result("4 psycopg2 with feedback", shim_s, pg_s, "s", "-"))
        if self.wants("deep"):
            shim_s, pg_s = both(
                lambda dsn, e, t, slots: consumers.time_to_first_change(dsn, "first", 0), rounds=1
            )
            self.add(Result("5a first XLogData, N pending", shim_s * 1000, pg_s * 1000, "ms", "-"))

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
            self.add(Result(f"6 latency {label} @1k/s", percentile(shim_ms, q),
                            percentile(pg_ms, q), "ms", target,
                            f"{len(shim_ms)}/{len(pg_ms)} of {count} received"))  # fmt: skip

    def deep_cases(self) -> None:
        d = self.args.deep_records
        shim = PgshimSide(self.work, "deep", d)
        self.notes.append(
            f"deep spool: {d} records ({shim.spool.stat().st_size / 1e9:.2f} GB) written in"
            f" {shim.generated_in:.0f} s; server ready in {shim.started_in:.1f} s"
        )
        try:
            shim.history_slot("deep")
            first_start = shim.ingested_in
            if self.wants("deep"):
                for fraction in (0.1, 0.5, 0.9):
                    start = end_pos(int(d * fraction))
                    seconds = consumers.time_to_first_change(shim.dsn, "deep", start)
                    self.add(Result(f"5 first XLogData at {fraction:.0%} of {d}",
                                    seconds * 1000, None, "ms", "< 100 ms"))  # fmt: skip
            if self.wants("rss"):
                started = time.perf_counter()
                consumers.time_recvlogical(shim.dsn, ["deep"], shim.endpos, shim.dir)
                streamed = time.perf_counter() - started
                (shim.dir / "deep.out").unlink()
                self.add(Result(f"7 peak RSS streaming {d}", vm_hwm_mb(shim.server.proc.pid),
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
            self.add(Result(f"5b restart, slot at the end of {d}", restarted, None, "s", "-",
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
             f" cases 1-4: median of {harness.args.repeat} runs on each side)",
             "", HEADER, "|" + "---|" * 7]  # fmt: skip
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
        help="spool size for cases 5 and 7 (the issue asks 10M: slow to generate)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of cases 1-4 on each side; the table shows medians")  # fmt: skip
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--results", default=str(HERE / "results.md"))
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.deep_records, args.latency_seconds = 2000, 20_000, 2.0
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
