"""Prometheus metrics: the snapshot-to-families rendering, and /metrics of a real server."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from server_proc import free_port
from spoolkit import end_pos

from pgshim.metrics import (
    ApplicationCollector,
    ReplicaSnapshot,
    SlotSnapshot,
    StateSnapshot,
    StreamSnapshot,
    metric_families,
)

pytestmark = pytest.mark.timeout(120)


def snapshot(**changes: object) -> StateSnapshot:
    state = StateSnapshot(
        started_at=1_700_000_000.0, spool_exists=True, spool_bytes=4096, spool_records=12,
        spool_first_lsn=1, spool_last_lsn=14, spool_gaps=2, spool_out_of_order=1, spool_prunes=0,
        spool_corrupt=False, end_position=0xEFF, transactions=12, decode_errors=3,
        sessions={"sql": 1, "replication": 0, "streaming": 1},
        slots=[SlotSnapshot("sub", "pgoutput", True, 0x9FF, 5, 2.5, held_here=True),
               SlotSnapshot("far", "pgoutput", True, 0x9FF, 5, 2.5)],
        instance="a:5433", state_backend="postgresql", state_writable=False,
        streams=[StreamSnapshot(4242, "sub", "pg15", 0xEFF, 0x9FF)],
        replicas=[ReplicaSnapshot("pgshim:sub", "sub", 5, 1.25, True)],
    )  # fmt: skip
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def samples(families) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry(auto_describe=False)

    class Fixed:
        def collect(self):
            return families

    registry.register(Fixed())
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_families_carry_every_number_of_the_snapshot() -> None:
    got = samples(metric_families(snapshot()))
    slot = (("plugin", "pgoutput"), ("slot", "sub"))
    stream = (("application_name", "pg15"), ("pid", "4242"), ("slot", "sub"))
    replica = (("replica_id", "pgshim:sub"), ("slot", "sub"))
    assert got[("pgshim_slot_lag_records", slot)] == 5
    assert got[("pgshim_slot_lag_seconds", slot)] == 2.5
    assert got[("pgshim_slot_confirmed_flush_position", slot)] == 0x9FF
    assert got[("pgshim_slot_active", slot)] == 1
    assert got[("pgshim_slot_held", slot)] == 1
    far = (("plugin", "pgoutput"), ("slot", "far"))
    assert (got[("pgshim_slot_active", far)], got[("pgshim_slot_held", far)]) == (1, 0)
    info = (("instance", "a:5433"), ("state_backend", "postgresql"))
    assert got[("pgshim_instance_info", info)] == 1
    assert got[("pgshim_state_writable", ())] == 0
    assert got[("pgshim_stream_sent_position", stream)] == 0xEFF
    assert got[("pgshim_stream_flush_position", stream)] == 0x9FF
    assert got[("pgshim_replica_lag_records", replica)] == 5
    assert got[("pgshim_replica_lag_seconds", replica)] == 1.25
    assert got[("pgshim_replica_connected", replica)] == 1
    assert got[("pgshim_sessions", (("kind", "streaming"),))] == 1
    assert got[("pgshim_sessions", (("kind", "sql"),))] == 1
    assert got[("pgshim_spool_bytes", ())] == 4096
    assert got[("pgshim_spool_last_lsn", ())] == 14
    assert got[("pgshim_decode_errors_total", ())] == 3
    assert got[("pgshim_transactions_total", ())] == 12
    assert got[("pgshim_end_position", ())] == 0xEFF
    assert got[("pgshim_spool_corrupt", ())] == 0


def test_an_empty_spool_has_no_lsn_series_and_no_slots() -> None:
    got = samples(
        metric_families(
            snapshot(spool_first_lsn=None, spool_last_lsn=None, slots=[], streams=[], replicas=[])
        )
    )
    names = {name for name, _ in got}
    assert "pgshim_spool_last_lsn" not in names
    assert "pgshim_slot_lag_records" not in names
    assert got[("pgshim_spool_records", ())] == 12


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metrics_port_of(server) -> int:
    found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", server.log())
    assert found, server.log()
    return int(found.group(1))


def test_metrics_port_serves_slot_lag_of_a_live_server(spool, pgshim, tmp_path: Path) -> None:
    spool.insert("users", name="a", n=1)
    server = pgshim(spool.path, "--metrics-port", str(free_port()))
    port = metrics_port_of(server)
    env = server.env_for_clients()
    subprocess.run(
        ["psql", "-X", "-c", "SELECT pg_create_logical_replication_slot('m', 'test_decoding')"],
        env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    for n in range(3):
        spool.insert("users", name=f"later{n}", n=n)
    slot = (("plugin", "test_decoding"), ("slot", "m"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = scrape(port)
        if got.get(("pgshim_spool_last_lsn", ())) == 4:
            break
        time.sleep(0.1)
    assert got[("pgshim_slot_lag_records", slot)] == 3
    assert got[("pgshim_slot_lag_seconds", slot)] > 0
    assert got[("pgshim_slot_confirmed_flush_position", slot)] == int(end_pos(1).split("/")[1], 16)
    assert got[("pgshim_slot_active", slot)] == 0
    assert got[("pgshim_spool_records", ())] == 4

    done = subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-S", "m", "--start", "-f", str(tmp_path / "out"),
         "--endpos", end_pos(4)],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = scrape(port)
    assert got[("pgshim_slot_lag_records", slot)] == 0
    assert got[("pgshim_slot_lag_seconds", slot)] == 0


def test_collector_reads_an_application_lazily(tmp_path: Path) -> None:
    from pgshim.app import Application
    from pgshim.config import Config

    config = Config(spool=str(tmp_path / "none.rdb"), state_dir=str(tmp_path / "state"))
    app = Application(config)
    try:
        collector = ApplicationCollector(app)
        assert collector.describe() == []
        first = samples(list(collector.collect()))
        assert first[("pgshim_spool_exists", ())] == 0
        app.slots.create(
            "late", "wal2json", temporary=False, two_phase=False, confirmed_flush=0xFF,
            restart_pos=0xFF, pid=None,
        )  # fmt: skip
        second = samples(list(collector.collect()))
        assert second[("pgshim_slot_lag_records", (("plugin", "wal2json"), ("slot", "late")))] == 0
        instance = (("instance", config.instance()), ("state_backend", "sqlite"))
        assert second[("pgshim_instance_info", instance)] == 1
        assert second[("pgshim_state_writable", ())] == 1
    finally:
        app.conn.close()
