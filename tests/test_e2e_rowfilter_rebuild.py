"""A pgoutput session whose publication has an UPDATE/DELETE row filter rebuilds the table's last
rows from the whole retained history at its first streamed change. Over a long spool that takes
a while, and meanwhile every other session goes on: another session's SELECT 1 is answered and
another streaming consumer receives new changes at once (the rebuild yields to the event loop
in steps instead of holding it for the whole replay)."""

from __future__ import annotations

import re
import select
import threading
import time

import psycopg
import psycopg2
import psycopg2.extras
import pytest
from pgoutput_parser import parse

pytestmark = pytest.mark.timeout(300)

HISTORY = 40_000  # transactions before the filtered session's first change
MEMBERS = 500


def _replication(server):  # noqa: ANN001, ANN202 - a psycopg2 replication cursor
    conn = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    return conn, conn.cursor()


def test_a_rebuild_over_a_long_history_leaves_other_sessions_served(spool, pgshim) -> None:
    ages: dict[int, int] = {}
    for n in range(MEMBERS):
        _, rid = spool.insert("members", name=f"m{n}", age=n % 60)
        ages[rid] = n % 60
    rids = list(ages)
    for n in range(HISTORY - MEMBERS):
        rid = rids[n % MEMBERS]
        ages[rid] = (ages[rid] + 7) % 60
        spool.update("members", rid, age=ages[rid])
    server = pgshim(spool.path)
    server.psql("CREATE PUBLICATION adults FOR TABLE members WHERE (age > 30)")
    filtered_conn, filtered = _replication(server)
    filtered.create_replication_slot("filtered", output_plugin="pgoutput")
    plain_conn, plain = _replication(server)
    plain.create_replication_slot("plain", output_plugin="test_decoding")
    plain.start_replication(slot_name="plain", decode=True)

    done = threading.Event()
    timed: list[tuple[float, float]] = []  # (started, seconds) of each SELECT 1
    received: dict[int, float] = {}

    def select_one() -> None:
        with psycopg.connect(server.dsn(), autocommit=True) as other:
            while not done.is_set():
                at = time.perf_counter()
                other.execute("SELECT 1").fetchone()
                timed.append((at, time.perf_counter() - at))
                time.sleep(0.01)

    def consume() -> None:
        while not done.is_set():
            message = plain.read_message()
            if message is None:
                select.select([plain], [], [], 0.05)
                continue
            found = re.search(r"table public\.pings: INSERT: .*\bn\[\w+\]:(\d+)", message.payload)
            if found:
                received[int(found.group(1))] = time.perf_counter()
            plain.send_feedback(flush_lsn=message.data_start)

    threads = [threading.Thread(target=select_one), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    sent: dict[int, float] = {}
    try:
        time.sleep(0.5)  # both running
        rid = rids[0]
        old_age = ages[rid]
        spool.update("members", rid, age=45)  # the filtered session's first change
        started = time.perf_counter()
        filtered.start_replication(
            slot_name="filtered",
            decode=False,
            options={"proto_version": "1", "publication_names": "adults"},
        )
        messages = []
        ping = 0
        deadline = time.monotonic() + 240
        while len(messages) < 4:  # Begin, Relation, the change, Commit
            message = filtered.read_message()
            if message is not None:
                messages.append(parse(message.payload))
                continue
            assert time.monotonic() < deadline, "the filtered session sent nothing"
            ping += 1
            spool.insert("pings", n=ping)
            sent[ping] = time.perf_counter()
            select.select([filtered], [], [], 0.1)
        rebuild = time.perf_counter() - started
        time.sleep(1.0)  # the last pings arrive
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
        filtered_conn.close()
        plain_conn.close()
    # the queries during the rebuild (the session's first ones paid for its engine's start)
    latencies = [seconds for at, seconds in timed if at >= started]
    # the rebuilt old row decides: out of the filter before (age <= 30) -> INSERT, else UPDATE
    assert messages[2]["type"] == ("U" if old_age > 30 else "I")
    delays = [received[n] - at for n, at in sent.items() if n in received]
    print(
        f"first filtered change after {rebuild:.2f} s ({HISTORY} transactions replayed); "
        f"SELECT 1: {len(latencies)} runs, max {max(latencies) * 1000:.0f} ms; pings: "
        f"{len(delays)} of {len(sent)} received, max delay {max(delays, default=0) * 1000:.0f} ms"
    )
    assert latencies
    assert len(delays) == len(sent) and sent, "pings the other consumer never received"
    # a synchronous rebuild holds every session for the whole replay; a paced one for one of
    # its steps (the bound is generous: the machine may be loaded, and a step may load a chunk)
    bound = rebuild * 0.6
    assert max(latencies) < bound, (max(latencies), rebuild)
    assert max(delays) < bound, (max(delays), rebuild)
