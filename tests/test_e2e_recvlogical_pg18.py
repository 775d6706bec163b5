"""pg_recvlogical 18 against pgshim presenting PostgreSQL 18 (and 15): slot options, their
columns in pg_replication_slots, ALTER_REPLICATION_SLOT, and a restart keeping them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pgcluster import pg18_bindir
from spoolkit import end_pos

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(pg18_bindir() is None, reason="PostgreSQL 18 binaries are not available"),
]

SLOT_FLAGS = (
    "SELECT slot_name, two_phase, two_phase_at, failover, synced,"
    " inactive_since IS NOT NULL, conflicting, invalidation_reason"
    " FROM pg_replication_slots ORDER BY slot_name"
)


def recvlogical(server, *args: str) -> subprocess.CompletedProcess[str]:
    return server.run(str(pg18_bindir() / "pg_recvlogical"), "-d", "reddb", *args)


def replication_command(server, command: str) -> subprocess.CompletedProcess[str]:
    return server.run(
        str(pg18_bindir() / "psql"), "-X", "-At", "-d", "dbname=reddb replication=database",
        "-c", command,
    )  # fmt: skip


def test_slot_options_columns_and_alter(spool, pgshim, tmp_path: Path) -> None:
    spool.insert("users", name="before", n=1)
    server = pgshim(spool.path, "--server-version", "18")
    for args in (
        ("-S", "both", "--enable-failover", "--enable-two-phase"),
        ("-S", "old_flag", "--two-phase"),  # the deprecated spelling
        ("-S", "plain",),
    ):  # fmt: skip
        created = recvlogical(server, *args, "--create-slot", "-P", "test_decoding")
        assert created.returncode == 0, created.stderr
    at = end_pos(1)  # where they were created
    expected = [f"both|t|{at}|t|f|t|f|", f"old_flag|t|{at}|f|f|t|f|", "plain|f||f|f|t|f|"]
    assert server.psql(SLOT_FLAGS).splitlines() == expected
    assert server.psql("SELECT slot_name FROM pg_replication_slots WHERE failover") == "both"

    lsn, rid = spool.insert("users", name="alice", n=7)
    out = tmp_path / "out.txt"
    done = recvlogical(
        server, "-S", "both", "--start", "-f", str(out), "--endpos", end_pos(lsn),
        "-o", "include-xids=0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == [
        "BEGIN",
        f"table public.users: INSERT: rid[bigint]:{rid} n[bigint]:7 name[text]:'alice'",
        "COMMIT",
    ]

    server.stop()
    server.start()
    assert server.psql(SLOT_FLAGS).splitlines() == expected  # kept in the state database

    altered = replication_command(
        server, "ALTER_REPLICATION_SLOT both ( FAILOVER false, TWO_PHASE false )"
    )
    assert altered.returncode == 0, altered.stderr
    enabled = replication_command(server, "ALTER_REPLICATION_SLOT plain ( FAILOVER, TWO_PHASE )")
    assert enabled.returncode == 0, enabled.stderr
    assert server.psql(SLOT_FLAGS).splitlines() == [
        "both|f||f|f|t|f|", f"old_flag|t|{at}|f|f|t|f|", f"plain|t|{at}|t|f|t|f|",
    ]  # fmt: skip
    for command, error in (
        ("ALTER_REPLICATION_SLOT nope ( FAILOVER )", 'replication slot "nope" does not exist'),
        ("ALTER_REPLICATION_SLOT plain ( SNAPSHOT 'use' )", "unrecognized option: snapshot"),
        (
            "ALTER_REPLICATION_SLOT plain ( FAILOVER, FAILOVER false )",
            "conflicting or redundant options",
        ),
        ("ALTER_REPLICATION_SLOT plain ( FAILOVER 'maybe' )", "failover requires a Boolean value"),
    ):
        refused = replication_command(server, command)
        assert refused.returncode == 1 and error in refused.stderr, refused.stderr

    # a temporary slot cannot fail over
    temporary = replication_command(
        server, "CREATE_REPLICATION_SLOT t TEMPORARY LOGICAL test_decoding ( FAILOVER )"
    )
    assert "cannot enable failover for a temporary replication slot" in temporary.stderr


def test_postgresql_15_has_no_failover(spool, pgshim) -> None:
    """pgshim presenting 15: pg_recvlogical 18 leaves FAILOVER out, PostgreSQL 15's
    pg_replication_slots has no such column and no ALTER_REPLICATION_SLOT."""
    server = pgshim(spool.path, "--server-version", "15")
    created = recvlogical(server, "-S", "s", "--create-slot", "--enable-failover", "-t")
    assert created.returncode == 0, created.stderr
    assert server.psql("SELECT slot_name, two_phase FROM pg_replication_slots") == "s|t"
    missing = server.run("psql", "-X", "-c", "SELECT failover FROM pg_replication_slots")
    assert 'column "failover" does not exist' in missing.stderr
    alter = replication_command(server, "ALTER_REPLICATION_SLOT s ( FAILOVER )")
    assert 'syntax error at or near "ALTER_REPLICATION_SLOT"' in alter.stderr
    explicit = replication_command(
        server, "CREATE_REPLICATION_SLOT f LOGICAL test_decoding (FAILOVER)"
    )
    assert "unrecognized option: failover" in explicit.stderr


def test_sql_slot_function_takes_failover_from_17(spool, pgshim) -> None:
    server = pgshim(spool.path, "--server-version", "18")
    server.psql("SELECT pg_create_logical_replication_slot('f', 'pgoutput', false, true, true)")
    assert server.psql("SELECT two_phase, failover FROM pg_replication_slots") == "t|t"
    temporary = server.run(
        "psql", "-X", "-c",
        "SELECT pg_create_logical_replication_slot('t', 'pgoutput', true, false, true)",
    )  # fmt: skip
    assert "cannot enable failover for a temporary replication slot" in temporary.stderr


def test_pgoutput_protocol_4_options_and_two_phase_at_start(spool, pgshim, tmp_path: Path) -> None:
    """pgoutput with what a PostgreSQL 18 subscriber asks for, through pg_recvlogical 18;
    two_phase 'on' at START_REPLICATION turns the slot's two_phase on, from where it started."""
    spool.insert("users", name="before", n=1)
    server = pgshim(spool.path, "--server-version", "18")
    server.psql("CREATE PUBLICATION pub FOR ALL TABLES")
    created = recvlogical(server, "-S", "po", "--create-slot", "-P", "pgoutput")
    assert created.returncode == 0, created.stderr
    assert server.psql("SELECT two_phase, two_phase_at FROM pg_replication_slots") == "f|"
    lsn, _ = spool.insert("users", name="alice", n=7)
    out = tmp_path / "out.bin"
    options = ["proto_version=4", "publication_names=pub", "streaming=parallel", "origin=none",
               "two_phase=on", "binary=true"]  # fmt: skip
    done = recvlogical(
        server, "-S", "po", "--start", "-f", str(out), "--endpos", end_pos(lsn),
        *(arg for option in options for arg in ("-o", option)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"B") and b"users\x00" in data and b"alice" in data
    assert server.psql("SELECT two_phase, two_phase_at FROM pg_replication_slots") == (
        f"t|{end_pos(1)}"
    )
    too_new = recvlogical(
        server, "-S", "po", "--start", "-n", "-f", "-", "-o", "proto_version=5",
        "-o", "publication_names=pub",
    )  # fmt: skip
    assert "client sent proto_version=5 but server only supports protocol 4 or lower" in (
        too_new.stderr
    )
