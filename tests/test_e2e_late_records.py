"""A record that comes after a higher LSN was sent, through a real server and psycopg2 consumers.

A consumer that has not confirmed past the late record gets an error, reconnects from what it
confirmed and receives every change in LSN order; a slot that confirmed past it is lost and says
so. Every LSN written is checked: received by the first consumer, or reported on the second slot.
"""

from __future__ import annotations

import select
import time

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest
from server_proc import wait_for
from spoolkit import end_pos

from pgshim.logical.positions import end_pos as end_position

pytestmark = pytest.mark.timeout(120)


def connect(server):  # noqa: ANN201 - a psycopg2 replication connection
    return psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )


def begins(cur, count: int, timeout: float = 15.0) -> list[int]:  # noqa: ANN001
    """RedDB LSNs of the next ``count`` transactions (test_decoding's BEGIN xid is the LSN)."""
    lsns: list[int] = []
    deadline = time.monotonic() + timeout
    while len(lsns) < count:
        msg = cur.read_message()
        if msg is not None:
            if msg.payload.startswith("BEGIN"):
                lsns.append(int(msg.payload.split()[1]))
            continue
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {lsns}"
        select.select([cur], [], [], min(remaining, 0.5))
    return lsns


def insert_at(spool, lsn: int, name: str) -> None:  # noqa: ANN001
    spool.lsn = lsn - 1
    spool.insert("users", name=name)


def test_a_late_record_is_delivered_in_order_or_its_slot_is_lost(spool, pgshim) -> None:
    server = pgshim(spool.path)
    behind, ahead = connect(server), connect(server)
    cur, other = behind.cursor(), ahead.cursor()
    cur.create_replication_slot("behind", output_plugin="test_decoding")
    other.create_replication_slot("ahead", output_plugin="test_decoding")
    for lsn in (1, 2, 3, 5):  # RedDB allocated 4 to a writer that appends it later
        insert_at(spool, lsn, f"u{lsn}")
    options = {"include-xids": "1"}
    cur.start_replication(slot_name="behind", decode=True, options=options)
    other.start_replication(slot_name="ahead", decode=True, options=options)
    assert begins(cur, 4) == [1, 2, 3, 5]
    assert begins(other, 4) == [1, 2, 3, 5]
    cur.send_feedback(flush_lsn=end_position(2), force=True)
    other.send_feedback(flush_lsn=end_position(5), force=True)
    wait_for(lambda: server.psql(
        "SELECT string_agg(confirmed_flush_lsn::text, ',' ORDER BY slot_name) "
        "FROM pg_replication_slots"
    ) == f"{end_pos(5)},{end_pos(2)}")  # fmt: skip

    insert_at(spool, 4, "late")
    # both streams had sent past LSN 4: they end with an error
    for stream in (cur, other):
        with pytest.raises(psycopg2.Error) as ended:
            begins(stream, 1, timeout=10)
        assert "RedDB LSN 4" in str(ended.value)

    # the slot that confirmed 2 receives 3, 4 and 5, in LSN order, from a new connection
    again = connect(server).cursor()
    again.start_replication(slot_name="behind", decode=True, options=options)
    assert begins(again, 3) == [3, 4, 5]

    # the slot that confirmed 5 would never receive 4: it is lost, and says why
    lost = connect(server).cursor()
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState) as refused:
        lost.start_replication(slot_name="ahead", decode=True, options=options)
        begins(lost, 1, timeout=10)
    assert 'can no longer get changes from replication slot "ahead"' in str(refused.value)
    assert "RedDB LSN 4" in str(refused.value)
    assert server.psql(
        "SELECT slot_name, wal_status FROM pg_replication_slots ORDER BY slot_name"
    ).splitlines() == ["ahead|lost", "behind|reserved"]
    assert server.psql(
        "SELECT rewinds, last_rewind_lsn, last_rewind_reason LIKE '%arrived after%' FROM pgshim_spool"
    ) == "1|4|t"
