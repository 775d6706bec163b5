"""The runnable examples/ against a real pgshim process (and a real PostgreSQL subscriber)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from server_proc import wait_for
from spoolkit import end_pos

from pgshim.config import Config
from pgshim.plugins import PLUGIN_NAMES
from pgshim.spool.generate import COLLECTIONS, REFRESHED_VIEW, Workload, write_workload
from pgshim.spool.writer import SpoolWriter

pytestmark = pytest.mark.timeout(180)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def wait_for_slot(server, expected: str, column: str = "confirmed_flush_lsn") -> None:
    seen: list[str] = []

    def reached() -> bool:
        seen.append(server.psql(f"SELECT {column} FROM pg_replication_slots"))
        return seen[-1] == expected

    try:
        wait_for(reached, 30, 0.1)
    except AssertionError:
        raise AssertionError(f"{column} stayed {seen[-1]!r}, expected {expected!r}") from None


def slot_exists(server, name: str) -> bool:
    return (
        server.psql(f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{name}'") == "1"
    )


def test_pg_recvlogical_script_streams_and_resumes_after_confirmed(spool, pgshim) -> None:
    spool.insert("users", name="before", n=0)
    server = pgshim(spool.path)
    script = [str(EXAMPLES / "pg_recvlogical.sh"), "ex"]
    proc = subprocess.Popen(
        script, env=server.env_for_clients(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for_slot(server, "t", "active")
        lsn, alice = spool.insert("users", name="alice", n=1)
        assert proc.stdout is not None
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        # the confirmation (-F 1) reaches the slot before we stop
        wait_for_slot(server, end_pos(lsn))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert lines[0].startswith(f"BEGIN {lsn}")
    assert (
        lines[1]
        == f"table public.users: INSERT: rid[bigint]:{alice} n[bigint]:1 name[text]:'alice'"
    )
    assert lines[2].startswith(f"COMMIT {lsn} (at ")

    lsn2, bob = spool.insert("users", name="bob", n=2)
    again = subprocess.run(
        [*script, "--endpos", end_pos(lsn2)], env=server.env_for_clients(),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "alice" not in again.stdout
    assert f"rid[bigint]:{bob} n[bigint]:2 name[text]:'bob'" in again.stdout


def run_consumer(server, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / "psycopg2_consumer.py"), server.dsn(), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_psycopg2_consumer_receives_and_confirms(spool, pgshim) -> None:
    server = pgshim(spool.path)
    args = ("--slot", "py", "-o", "include-xids=0", "--max-messages", "3")
    first = run_consumer(server, *args)
    wait_for(lambda: slot_exists(server, "py"))
    wait_for_slot(server, "t", "active")
    lsn, alice = spool.insert("users", name="alice", n=1)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert "created slot py (test_decoding)" in err
    commit = int(end_pos(lsn).replace("/", ""), 16)
    assert out.splitlines() == [
        f"{lsn << 8:X} BEGIN",
        f"{lsn << 8:X} table public.users: INSERT: rid[bigint]:{alice} n[bigint]:1 name[text]:'alice'",
        f"{commit:X} COMMIT",
    ]
    wait_for_slot(server, end_pos(lsn))

    lsn2, bob = spool.insert("users", name="bob", n=2)
    second = run_consumer(server, *args)
    out2, err2 = second.communicate(timeout=30)
    assert second.returncode == 0, err2
    assert "created slot" not in err2
    assert "alice" not in out2
    assert f"rid[bigint]:{bob}" in out2.splitlines()[1]
    wait_for_slot(server, end_pos(lsn2))


def test_asyncpg_status_prints_spool_and_slots(spool, pgshim) -> None:
    spool.insert("users", name="a", n=1)
    spool.insert("users", name="b", n=2)
    server = pgshim(spool.path)
    server.psql("SELECT pg_create_logical_replication_slot('watch', 'wal2json')")
    dsn = f"postgresql://postgres@127.0.0.1:{server.port}/reddb"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "asyncpg_status.py"), dsn],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"spool {spool.path}: 2 records, last LSN 2"
    assert lines[1] == f"slot watch (wal2json, idle) confirmed {end_pos(2)}"


def subscriber_statements() -> list[str]:
    text = "\n".join(
        line for line in (EXAMPLES / "subscriber.sql").read_text().splitlines()
        if not line.lstrip().startswith("--")
    )  # fmt: skip
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def test_subscriber_tables_match_the_demo_collections(tmp_path: Path, pgshim) -> None:
    spool_file = tmp_path / "demo.rdb.logical.wal"
    write_workload(str(spool_file), 3000, seed=7, layout="v3-41")
    server = pgshim(spool_file)
    listed = server.psql("SELECT tablename, array_to_string(columns, ',') FROM pgshim_collections")
    served = {name: cols.split(",") for name, cols in (r.split("|") for r in listed.splitlines())}
    assert set(served) == {*COLLECTIONS, REFRESHED_VIEW}

    declared = {}
    for stmt in subscriber_statements():
        if stmt.startswith("CREATE TABLE"):
            name = stmt.split()[2]
            body = stmt[stmt.index("(") + 1 : stmt.rindex(")")]
            declared[name] = [column.split()[0] for column in body.split(",\n")]
    assert declared == served


def test_subscriber_sql_applies_the_demo_workload(tmp_path: Path, pgshim, pg_cluster) -> None:
    config = tmp_path / "pgshim.toml"
    config.write_text('default_publication = "pgshim"\n')
    spool_file = tmp_path / "demo.rdb.logical.wal"
    records = Workload(seed=7).records(10**9)  # one workload: later rows continue earlier ones
    writer = SpoolWriter(spool_file, layout="v3-41", fsync=False)
    for _ in range(400):
        writer.append_record(next(records))
    server = pgshim(spool_file, "--config", str(config))
    pg_cluster.psql("CREATE DATABASE example_sub")
    conninfo = f"host=127.0.0.1 port={server.port} user=postgres dbname=reddb"
    try:
        for stmt in subscriber_statements():
            stmt = stmt.replace("host=127.0.0.1 port=5433 user=postgres dbname=reddb", conninfo)
            pg_cluster.psql(stmt, dbname="example_sub")
        wait_for_slot(server, "t", "active")
        for _ in range(1500):
            writer.append_record(next(records))

        def applied() -> bool:
            counts = pg_cluster.psql(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM orders), "
                "(SELECT count(*) FROM sensors), (SELECT count(*) FROM events)",
                dbname="example_sub",
            )
            return all(int(n) > 0 for n in counts.split("|"))

        wait_for(applied, 60, 0.5)
        last = server.psql("SELECT end_position FROM pgshim_spool")
        wait_for_slot(server, last)
    finally:
        pg_cluster.psql("DROP SUBSCRIPTION IF EXISTS reddb_sub", dbname="example_sub")
        pg_cluster.psql("DROP DATABASE example_sub")
        writer.close()


def test_debezium_config_names_what_pgshim_serves() -> None:
    config = json.loads((EXAMPLES / "debezium-connector.json").read_text())["config"]
    assert config["plugin.name"] in PLUGIN_NAMES
    assert config["publication.name"] == "pgshim"  # the demo's default publication
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["snapshot.mode"] == "never"  # Debezium snapshots with SELECTs pgshim lacks
    tables = {name.removeprefix("public.") for name in config["table.include.list"].split(",")}
    assert tables <= set(COLLECTIONS)


def test_example_configuration_loads() -> None:
    config = Config.load(EXAMPLES / "pgshim.toml", env={})
    assert config.metrics_port == 9187
    assert config.users["postgres"].replication
    assert [c["name"] for c in config.declared_columns()["orders"]] == [
        "order_id", "user_id", "amount",
    ]  # fmt: skip
