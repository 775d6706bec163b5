"""The RedDB link end to end, against an in-test primary that implements RedDB's documented
replication contract (RedDB itself cannot run here): acks forwarded over gRPC, a remote source."""

from __future__ import annotations

import subprocess

import pytest
from fake_reddb import FakeRedDb, Principal, SchemaServer
from server_proc import PgshimServer, wait_for
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def primary():
    fake = FakeRedDb(principals={"s3cret": Principal("pgshim:fw")})
    fake.start()
    yield fake
    fake.stop()


def test_consumer_acks_reach_the_in_test_primary(spool, tmp_path, primary) -> None:
    server = PgshimServer(
        spool.path, tmp_path / "state",
        args=("--reddb-grpc", f"127.0.0.1:{primary.port}"), env={"PGSHIM_REDDB_TOKEN": "s3cret"},
    ).start()  # fmt: skip
    try:
        assert (
            server.recvlogical("-S", "fw", "--create-slot", "-P", "test_decoding").returncode == 0
        )
        lsns = [spool.insert("users", name=f"n{i}")[0] for i in range(3)]
        done = server.recvlogical("-S", "fw", "--start", "-f", "-", "--endpos", end_pos(lsns[-1]))
        assert done.returncode == 0, done.stderr
        # pg_recvlogical confirmed the end position: RedDB hears durable = applied = last LSN
        wait_for(lambda: primary.commit_acks.get("pgshim:fw") == lsns[-1])
        acks = [body for name, body in primary.calls if name == "AckReplicaLsn"]
        assert acks[-1]["replica_id"] == "pgshim:fw"
        assert acks[-1]["durable_lsn"] == acks[-1]["applied_lsn"] == lsns[-1]
        status = server.psql(
            "SELECT replica_id, last_durable_lsn, forwarded_durable_lsn, forward_error"
            " FROM pgshim_replicas"
        )
        assert status == f"pgshim:fw|{lsns[-1]}|{lsns[-1]}|"
    finally:
        server.stop()


def test_a_denied_ack_shows_the_forwarding_error(spool, tmp_path, primary) -> None:
    server = PgshimServer(
        spool.path, tmp_path / "state",
        args=("--reddb-grpc", f"127.0.0.1:{primary.port}"), env={"PGSHIM_REDDB_TOKEN": "s3cret"},
    ).start()  # fmt: skip
    try:
        server.recvlogical("-S", "other", "--create-slot", "-P", "test_decoding")
        lsn, _ = spool.insert("users", name="x")
        server.recvlogical("-S", "other", "--start", "-f", "-", "--endpos", end_pos(lsn))
        # the token's principal is pgshim:fw, so RedDB refuses acks for pgshim:other
        error = wait_for(lambda: server.psql("SELECT forward_error FROM pgshim_replicas"))
        assert "PERMISSION_DENIED" in error or "permission" in error.lower()
    finally:
        server.stop()


def test_remote_source_streams_the_primarys_records(tmp_path, primary) -> None:
    lsns = [primary.append("users", rid=100 + i) for i in range(4)]
    server = PgshimServer(
        tmp_path / "unused.rdb", tmp_path / "state",
        args=("--source", f"grpc://127.0.0.1:{primary.port}"), env={"PGSHIM_REDDB_TOKEN": "s3cret"},
    ).start()  # fmt: skip
    try:
        server.psql("SELECT pgshim_create_history_slot('remote', 'test_decoding')")
        later = primary.append("users", rid=200)
        done = server.recvlogical(
            "-S", "remote", "--start", "-f", "-", "-o", "include-xids=0", "--endpos", end_pos(later)
        )
        assert done.returncode == 0, done.stderr
        deletes = [line for line in done.stdout.splitlines() if "DELETE" in line]
        assert deletes == [f"table public.users: DELETE: rid[bigint]:{rid}"
                           for rid in (100, 101, 102, 103, 200)]  # fmt: skip
        assert lsns == [1, 2, 3, 4]
        spool_row = server.psql("SELECT path, last_lsn FROM pgshim_spool")
        assert spool_row == f"grpc://127.0.0.1:{primary.port}|{later}"
    finally:
        server.stop()


def test_terms_are_timelines(spool, pgshim) -> None:
    spool.insert("users", name="term one")
    spool.term = 3  # a new leader
    lsn, _ = spool.insert("users", name="term three")
    server = pgshim(spool.path)
    env = dict(server.env_for_clients(), PGOPTIONS="")
    ident = subprocess.run(
        ["psql", "-X", "-At", "-d", "dbname=reddb replication=database", "-c", "IDENTIFY_SYSTEM"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert ident.returncode == 0, ident.stderr
    systemid, timeline, xlogpos, dbname = ident.stdout.strip().split("|")
    assert (timeline, xlogpos, dbname) == ("3", end_pos(lsn), "reddb")
    history = subprocess.run(
        ["psql", "-X", "-At", "-d", "dbname=reddb replication=database", "-c",
         "TIMELINE_HISTORY 3"], env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert history.returncode == 0, history.stderr
    # the new term's first record is the switch point
    assert history.stdout.strip() == (
        f"00000003.history|1\t0/{lsn << 8:X}\tRedDB term 3 began at LSN {lsn}"
    )
    missing = subprocess.run(
        ["psql", "-X", "-At", "-d", "dbname=reddb replication=database", "-c",
         "TIMELINE_HISTORY 1"], env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "could not open file" in missing.stderr


def test_declared_columns_from_reddbs_http_schema(spool, tmp_path) -> None:
    """Positional rows named by RedDB's GET /collections/{name}/schema (an in-test HTTP server
    answering with a collection contract's declared_columns)."""
    http = SchemaServer()
    http.contracts["/collections/orders/schema"] = {"ok": True, "declared_columns": [
        {"name": "order_no", "data_type": "Integer", "not_null": True},
        {"name": "item", "data_type": "Text"},
        {"name": "amount", "data_type": "Float"},
    ]}  # fmt: skip
    server = PgshimServer(
        spool.path, tmp_path / "state",
        args=("--reddb-http", http.url),
    ).start()  # fmt: skip
    try:
        server.psql("SELECT pgshim_create_history_slot('schemas', 'test_decoding')")
        _, rid = spool.insert_positional("orders", 9, "cup", 4.5)
        lsn, other = spool.insert_positional("misc", "loose")
        done = server.recvlogical(
            "-S", "schemas", "--start", "-f", "-", "-o", "include-xids=0", "--endpos", end_pos(lsn)
        )
        changes = [line for line in done.stdout.splitlines() if line.startswith("table")]
        assert changes == [
            f"table public.orders: INSERT: rid[bigint]:{rid} order_no[bigint]:9 item[text]:'cup'"
            " amount[double precision]:4.5",
            f"table public.misc: INSERT: rid[bigint]:{other} c1[text]:'loose'",
        ]
        asked = [path for path, _ in http.requests]
        assert asked == ["/collections/orders/schema", "/collections/misc/schema"]
    finally:
        server.stop()
        http.stop()
