"""Debian's prometheus-postgres-exporter (0.11) scraping pgshim: every default collector
succeeds (but bgwriter against 17 and 18, as against those PostgreSQL versions), the
replication-slot lag series are right for known positions, pg_settings_* exist."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import psycopg2
import pytest
from pgcluster import PgCluster, pg18_bindir
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)
EXPORTER = shutil.which("prometheus-postgres-exporter")
needs_exporter = pytest.mark.skipif(
    EXPORTER is None,
    reason="prometheus-postgres-exporter is not installed (scripts/setup-env installs it as root)",
)


def lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def series(body: str) -> dict[str, float]:
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def run_exporter(port: int, *flags: str) -> tuple[dict[str, float], str]:
    """One scrape of an exporter pointed at the server on ``port``: its series and its log."""
    web = free_port()
    env = dict(
        os.environ,
        DATA_SOURCE_NAME=f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable",
    )
    exporter = subprocess.Popen(
        [EXPORTER, f"--web.listen-address=127.0.0.1:{web}", *flags],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        body = scrape(web, time.monotonic() + 20)
    finally:
        exporter.terminate()
        log = exporter.communicate(timeout=10)[0].decode()
    return series(body), log


def failed_collectors(log: str) -> set[str]:
    """name: error of each collector that failed."""
    return set(re.findall(r'msg="collector failed" name=(\S+) \S+ err="(.*)"', log))


# exporter 0.11's bgwriter collector reads the checkpoint counters of pg_stat_bgwriter, which
# PostgreSQL 17 moved to pg_stat_checkpointer: against 17 and 18 it fails (see the test below)
BGWRITER_BEFORE_17 = {"16": (), None: ("--no-collector.bgwriter",)}


@needs_exporter
@pytest.mark.parametrize("version", BGWRITER_BEFORE_17)
def test_exporter_scrapes_pgshim(spool, pgshim, version: str | None) -> None:
    """Every collector succeeds against the default (18; without the bgwriter collector) and
    against 16 (with it)."""
    server = pgshim(spool.path, *(("--server-version", version) if version else ()))
    first, _ = spool.insert("items", label="a")
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM pg_create_logical_replication_slot('lagging', 'test_decoding')")
        cur.execute("SHOW server_version_num")
        assert cur.fetchone()[0].startswith(version or "18")
    last = [spool.insert("items", label=f"b{i}")[0] for i in range(3)][-1]
    try:
        metrics, log = run_exporter(server.port, *BGWRITER_BEFORE_17[version])
    finally:
        conn.close()
    assert metrics["pg_up"] == 1, log
    assert metrics["pg_exporter_last_scrape_error"] == 0, log
    assert "level=error" not in log, log
    labels = f'database="reddb",server="127.0.0.1:{server.port}",slot_name="lagging"'
    lag = lsn_int(end_pos(last)) - lsn_int(end_pos(first))
    assert metrics[f"pg_replication_slots_pg_wal_lsn_diff{{{labels}}}"] == lag
    assert metrics[f"pg_replication_slots_active{{{labels}}}"] == 0
    assert any(name.startswith("pg_settings_max_replication_slots") for name in metrics)
    assert sum(name.startswith("pg_settings_") for name in metrics) > 50
    families = ["pg_stat_database_", "pg_locks_count", "pg_stat_activity_", "pg_stat_archiver_",
                "pg_database_size_bytes"] + (["pg_stat_bgwriter_"] if version else [])  # fmt: skip
    for family in families:
        assert any(name.startswith(family) for name in metrics), family


@needs_exporter
def test_exporter_collectors_fail_as_against_postgresql_18(spool, pgshim, tmp_path) -> None:
    """With every default collector, the exporter's failures against pgshim (18) are those
    against a real PostgreSQL 18."""
    bindir = pg18_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL 18: not installed, nor fetched (no network, no cache)")
    spool.insert("items", label="a")
    server = pgshim(spool.path)
    ours = failed_collectors(run_exporter(server.port)[1])
    with PgCluster(tmp_path / "pg18", bindir=bindir) as pg18:
        theirs = failed_collectors(run_exporter(pg18.port)[1])
    assert ours == theirs
    assert {name for name, _ in theirs} == {"bgwriter"}
