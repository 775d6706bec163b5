"""Consumers served by two pgshim instances sharing their state (``state_url``) against one.

A PostgreSQL 15 cluster is the state database. The same spool of N single-row transactions (the
bench workload) is served by

- one instance: N consumers (pg_recvlogical, test_decoding) of N slots at the oldest change;
- two instances sharing one state database, each reading the spool: the same slots, half the
  consumers connected to each.

Both rows are warm: every instance has ingested the whole spool before the clock starts (as
PostgreSQL's WAL is written before its consumers are timed). Then takeover: a consumer
connected with a libpq multi-host string to both instances, the instance holding its slot
killed with SIGKILL; seconds until the consumer receives its next change from the other one.

    .venv/bin/python benchmarks/instances.py [--records N] [--consumers C] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(HERE)]

import consumers  # noqa: E402
import workload  # noqa: E402
from pgcluster import PgCluster  # noqa: E402
from server_proc import PgshimServer  # noqa: E402

from pgshim.logical.positions import end_pos  # noqa: E402
from pgshim.pgtypes import format_lsn  # noqa: E402


def psql(dsn: str, sql: str) -> str:
    done = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return done.stdout.strip()


class Instances:
    """``count`` pgshim instances on one spool and one fresh state database."""

    def __init__(self, work: Path, state: PgCluster, spool: Path, count: int, lease: float) -> None:
        self.work = work
        work.mkdir()
        database = work.name
        state.psql(f"CREATE DATABASE {database}")
        url = f"postgresql://postgres@127.0.0.1:{state.port}/{database}"
        self.servers: list[PgshimServer] = []
        for index in range(count):
            directory = work / f"i{index}"
            directory.mkdir()
            config = directory / "pgshim.toml"
            config.write_text(f'state_url = "{url}"\ninstance_name = "i{index}"\n'
                              f'new_slot_position = "oldest"\nslot_lease_seconds = {lease}\n')  # fmt: skip
            server = PgshimServer(spool, directory / "state", args=("--config", str(config)))
            self.servers.append(server.start(timeout=600))

    def wait_ingested(self, endpos: str) -> None:
        for server in self.servers:
            while psql(server.dsn(), "SELECT pg_current_wal_lsn()") != endpos:
                time.sleep(0.1)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def time_split(instances: Instances, slots: list[str], records: int, out: Path) -> float:
    """All consumers at once, slot i on instance i mod count; seconds until the last is done."""
    count = len(instances.servers)
    endpos = format_lsn(end_pos(records))
    started = time.perf_counter()
    procs = [consumers.recvlogical(instances.servers[i % count].dsn(), slot, endpos,
                                   out / f"{slot}.out")
             for i, slot in enumerate(slots)]  # fmt: skip
    for proc in procs:
        consumers.wait_ok(proc, timeout=1800)
    elapsed = time.perf_counter() - started
    for slot in slots:
        if (found := consumers.commits_in(out / f"{slot}.out")) != records:
            raise RuntimeError(f"{slot}: {found} COMMITs, expected {records}")
        (out / f"{slot}.out").unlink()
    return elapsed


def served(work: Path, state: PgCluster, spool: Path, count: int, records: int, slots: int,
           repeat: int) -> list[float]:  # fmt: skip
    instances = Instances(work, state, spool, count, lease=10)
    try:
        instances.wait_ingested(format_lsn(end_pos(records)))
        times = []
        for round_ in range(repeat):
            names = [f"r{round_}_{i}" for i in range(slots)]
            for name in names:
                psql(instances.servers[0].dsn(),
                     f"SELECT pg_create_logical_replication_slot('{name}', 'test_decoding')")  # fmt: skip
            times.append(time_split(instances, names, records, work))
        return times
    finally:
        instances.stop()


def takeover(work: Path, state: PgCluster, spool: Path, records: int, lease: float) -> float:
    """Seconds from SIGKILL of the instance a multi-host consumer streams from until that
    consumer receives a change again (from the other instance)."""
    instances = Instances(work, state, spool, 2, lease)
    first, second = instances.servers
    try:
        instances.wait_ingested(format_lsn(end_pos(records)))
        psql(first.dsn(), "SELECT pg_create_logical_replication_slot('ha', 'test_decoding')")
        dsn = (f"host=127.0.0.1,127.0.0.1 port={first.port},{second.port} dbname=reddb"
               " user=postgres")  # fmt: skip
        out = work / "ha.out"
        # loop mode: pg_recvlogical reconnects (every 5 s) after the connection is lost
        proc = subprocess.Popen(["pg_recvlogical", "-d", dsn, "-S", "ha", "--start", "-f",
                                 str(out), "-F", "0", "-s", "1"],
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            while not out.exists() or consumers.commits_in(out) < records:
                time.sleep(0.05)
            holder = psql(first.dsn(), "SELECT active_instance FROM pgshim_slots")
            victim, survivor = (first, second) if holder == "i0" else (second, first)
            os.kill(victim.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            killed = time.perf_counter()
            victim.proc.wait()  # type: ignore[union-attr]
            victim.proc = None
            seen = consumers.commits_in(out)
            with open(spool, "ab") as handle:  # a new change to receive, once it is back
                handle.write(workload.record_frame(records + 1, workload.START_MS))
            while consumers.commits_in(out) <= seen:
                time.sleep(0.02)
            elapsed = time.perf_counter() - killed
            survivor.stop()
            return elapsed
        finally:
            proc.terminate()
            proc.wait()
    finally:
        instances.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lease", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pgshim-instances-"))
    state = PgCluster(work / "pg").start()
    try:
        spool = work / "bench.rdb.logical.wal"
        workload.write_bench_spool(spool, args.records)
        one = served(work / "one", state, spool, 1, args.records, args.consumers, args.repeat)
        two = served(work / "two", state, spool, 2, args.records, args.consumers, args.repeat)
        moved = takeover(work / "ha", state, spool, args.records, args.lease)
    finally:
        state.stop()
        shutil.rmtree(work, ignore_errors=True)
    one_s, two_s = statistics.median(one), statistics.median(two)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"records={args.records}, consumers={args.consumers}, median of {args.repeat}")  # fmt: skip
    print("| case | two instances | one instance | | ratio | notes |")
    print("|---|---|---|---|---|---|")
    print(f"| 12 warm {args.consumers} x pg_recvlogical, state in PostgreSQL | {two_s:.3f} | "
          f"{one_s:.3f} | s | {two_s / one_s:.2f} | two: {', '.join(f'{t:.2f}' for t in two)};"
          f" one: {', '.join(f'{t:.2f}' for t in one)}; consumers split evenly |")  # fmt: skip
    print(f"| 13 takeover after SIGKILL, multi-host pg_recvlogical | {moved:.2f} | - | s | - | "
          f"slot_lease_seconds={args.lease:g}; pg_recvlogical retries every 5 s |")  # fmt: skip


if __name__ == "__main__":
    main()
