"""Debian's prometheus-postgres-exporter (0.11) scraping pgshim: every default collector
succeeds, the replication-slot lag series are right for known positions, pg_settings_* exist."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request

import psycopg2
import pytest
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)
EXPORTER = shutil.which("prometheus-postgres-exporter")


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


@pytest.mark.skipif(
    EXPORTER is None,
    reason="prometheus-postgres-exporter is not installed (scripts/setup-env installs it as root)",
)
def test_exporter_scrapes_pgshim(spool, pgshim) -> None:
    server = pgshim(spool.path)
    first, _ = spool.insert("items", label="a")
    conn = psycopg2.connect(server.dsn())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM pg_create_logical_replication_slot('lagging', 'test_decoding')")
    last = [spool.insert("items", label=f"b{i}")[0] for i in range(3)][-1]
    port = free_port()
    env = dict(
        os.environ,
        DATA_SOURCE_NAME=f"postgresql://postgres@127.0.0.1:{server.port}/reddb?sslmode=disable",
    )
    exporter = subprocess.Popen(
        [EXPORTER, f"--web.listen-address=127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        body = scrape(port, time.monotonic() + 20)
    finally:
        exporter.terminate()
        log = exporter.communicate(timeout=10)[0].decode()
        conn.close()
    metrics = series(body)
    assert metrics["pg_up"] == 1, log
    assert metrics["pg_exporter_last_scrape_error"] == 0, log
    assert "level=error" not in log, log
    labels = f'database="reddb",server="127.0.0.1:{server.port}",slot_name="lagging"'
    lag = lsn_int(end_pos(last)) - lsn_int(end_pos(first))
    assert metrics[f"pg_replication_slots_pg_wal_lsn_diff{{{labels}}}"] == lag
    assert metrics[f"pg_replication_slots_active{{{labels}}}"] == 0
    assert any(name.startswith("pg_settings_max_replication_slots") for name in metrics)
    assert sum(name.startswith("pg_settings_") for name in metrics) > 50
    for family in ("pg_stat_database_", "pg_stat_bgwriter_", "pg_locks_count", "pg_stat_activity_",
                   "pg_stat_archiver_", "pg_database_size_bytes"):  # fmt: skip
        assert any(name.startswith(family) for name in metrics), family
