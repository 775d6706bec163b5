"""psycopg2's LogicalReplicationConnection against a real pgshim process: feedback, restarts, kill -9."""

from __future__ import annotations

import select
import time

import psycopg2
import psycopg2.extras
import pytest
from server_proc import wait_for
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(120)


def lsn_text(pos: int) -> str:
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"


def connect(server):
    return psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )


def read_messages(cur, count: int, timeout: float = 15.0) -> list:
    """The next ``count`` XLogData messages (decoded text), waiting on the socket."""
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        msg = cur.read_message()
        if msg is not None:
            messages.append(msg)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"got {len(messages)} of {count} messages")
        select.select([cur], [], [], min(remaining, 0.5))
    return messages


def test_confirmed_commit_resumes_with_next_change(spool, pgshim) -> None:
    server = pgshim(spool.path)
    conn = connect(server)
    cur = conn.cursor()
    cur.create_replication_slot("pg2", output_plugin="test_decoding")
    lsns = [spool.insert("users", name=f"u{i}")[0] for i in range(4)]
    cur.start_replication(
        slot_name="pg2", decode=True, options={"include-xids": "1", "include-timestamp": "on"}
    )
    first = read_messages(cur, 6)  # two transactions
    assert [m.payload.split(" ")[0] for m in first] == ["BEGIN", "table", "COMMIT"] * 2
    assert first[0].payload == f"BEGIN {lsns[0]}"
    assert first[2].data_start == (lsns[0] << 8) | 0xFF
    cur.send_feedback(flush_lsn=first[5].data_start, force=True)  # the second COMMIT
    wait_for(lambda: server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots")
             == end_pos(lsns[1]))  # fmt: skip
    assert server.psql("SELECT last_durable_lsn, last_acked_lsn FROM pgshim_replicas") == (
        f"{lsns[1]}|{lsns[1]}"
    )
    conn.close()

    conn = connect(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="pg2", decode=True, start_lsn=0)
    again = read_messages(cur, 3)
    assert again[0].payload == f"BEGIN {lsns[2]}"  # nothing lost, nothing repeated
    assert "name[text]:'u2'" in again[1].payload
    conn.close()


def test_confirming_begin_or_change_redelivers_the_transaction(spool, pgshim) -> None:
    server = pgshim(spool.path)
    conn = connect(server)
    cur = conn.cursor()
    cur.create_replication_slot("pg2b", output_plugin="test_decoding")
    lsns = [spool.insert("users", name=f"v{i}")[0] for i in range(3)]
    cur.start_replication(slot_name="pg2b", decode=True)
    msgs = read_messages(cur, 6)
    cur.send_feedback(flush_lsn=msgs[4].data_start, force=True)  # the second tx's change
    wait_for(lambda: server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots")
             == lsn_text(msgs[4].data_start))  # fmt: skip
    conn.close()

    conn = connect(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="pg2b", decode=True)
    again = read_messages(cur, 3)
    assert again[0].payload == f"BEGIN {lsns[1]}"  # the whole second transaction again
    conn.close()

    # confirmations of 0/0, 0/1 or backwards are ignored
    conn = connect(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="pg2b", decode=True)
    read_messages(cur, 3)
    cur.send_feedback(flush_lsn=1, force=True)
    time.sleep(0.5)
    assert server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots") == lsn_text(
        msgs[4].data_start
    )
    conn.close()


def test_kill_9_and_restart_keep_the_confirmed_slot(spool, pgshim, tmp_path) -> None:
    server = pgshim(spool.path)
    conn = connect(server)
    cur = conn.cursor()
    cur.create_replication_slot("durable", output_plugin="test_decoding")
    lsns = [spool.insert("orders", n=i)[0] for i in range(5)]
    cur.start_replication(slot_name="durable", decode=True)
    msgs = read_messages(cur, 9)
    cur.send_feedback(flush_lsn=msgs[8].data_start, force=True)  # third COMMIT
    wait_for(lambda: server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots")
             == end_pos(lsns[2]))  # fmt: skip
    time.sleep(0.5)  # confirmations are made durable in batches (every 0.2 s)
    conn.close()
    server.kill()

    server.start()
    assert server.psql("SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots") == (
        f"durable|{end_pos(lsns[2])}"
    )
    conn = connect(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="durable", decode=True)
    again = read_messages(cur, 6)
    assert again[0].payload.startswith(f"BEGIN {lsns[3]}")
    assert again[3].payload.startswith(f"BEGIN {lsns[4]}")
    conn.close()
