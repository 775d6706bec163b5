"""A client that confirms and disconnects at once: the confirmation is applied, as in PostgreSQL,
which processes every message received before the connection went away."""

from __future__ import annotations

import select
import subprocess
import time

import psycopg2
import psycopg2.extras
import pytest

pytestmark = pytest.mark.timeout(180)

ROUNDS = 20


def slot_row(server, slot: str) -> tuple[bool, int]:
    """(active, confirmed_flush_lsn) of the slot."""
    out = subprocess.run(
        ["psql", "-X", "-At", "-c",
         "SELECT active, confirmed_flush_lsn FROM pg_replication_slots "
         f"WHERE slot_name = '{slot}'"],
        env=server.env_for_clients(), capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    active, lsn = out.stdout.strip().split("|")
    high, low = lsn.split("/")
    return active == "t", (int(high, 16) << 32) | int(low, 16)


def confirmed_once_released(server, slot: str, timeout: float = 10.0) -> int:
    """The slot's confirmed position once the ended session has released it."""
    deadline = time.monotonic() + timeout
    while True:
        active, confirmed = slot_row(server, slot)
        if not active:
            return confirmed
        if time.monotonic() > deadline:
            raise AssertionError("the slot stayed active after the client left")
        time.sleep(0.05)


def next_commit(cur, timeout: float = 15.0) -> int:
    """The dataStart of the next COMMIT message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = cur.read_message()
        if message is None:
            select.select([cur], [], [], 0.2)
        elif message.payload.startswith("COMMIT"):
            return message.data_start
    raise AssertionError("no COMMIT received in time")


def test_feedback_then_immediate_close_is_applied_every_time(spool, pgshim) -> None:
    server = pgshim(spool.path)
    setup = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    setup.cursor().create_replication_slot("quick", output_plugin="test_decoding")
    setup.close()
    for round_no in range(ROUNDS):
        spool.insert("events", seq=round_no)
        conn = psycopg2.connect(
            server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        cur = conn.cursor()
        cur.start_replication(slot_name="quick", decode=True)
        flushed = next_commit(cur)
        cur.send_feedback(flush_lsn=flushed, force=True)
        conn.close()  # at once: no wait for the server to read the update
        assert confirmed_once_released(server, "quick") == flushed, f"round {round_no}"
