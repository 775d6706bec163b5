"""Several pgshim instances sharing slots through a PostgreSQL state database (state_url), with
real peers over real sockets: pg_recvlogical, psycopg2 replication cursors and a PostgreSQL 15
subscriber, given both instances in a multi-host connection string, across kill -9 of the
instance that holds the slot, a restart of the state database, and start-up errors.

Each test has its own database in one PostgreSQL 15 cluster (the state store) and its own pair of
instances "a" and "b" reading the same spool file."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from hastate import StateDb
from pgcluster import PgCluster, free_port, pg_bindir
from server_proc import PgshimServer, wait_for
from spoolkit import SpoolKit, end_pos

from pgshim.pgtypes import parse_lsn

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed"),
]

LEASE = 3  # slot_lease_seconds of every instance here
TAKEOVER_LIMIT = LEASE + 4  # kill -9 -> first XLogData on the next connection, at most
WRITE_INTERVAL = 0.05  # seconds between the writer thread's records


# --- the state store and the instances ----------------------------------------------------------


class Instance(PgshimServer):
    """A pgshim instance named ``name`` sharing ``state_url`` with the others."""

    def __init__(self, name: str, spool: Path, base: Path, state_url: str) -> None:
        home = base / name
        home.mkdir(parents=True)
        config = home / "pgshim.toml"
        config.write_text(
            f'state_url = "{state_url}"\ninstance_name = "{name}"\nslot_lease_seconds = {LEASE}\n'
        )
        super().__init__(spool, home / "state", args=("--config", str(config)))
        self.name = name


@pytest.fixture
def instances(
    spool: SpoolKit, state_db: StateDb, tmp_path: Path
) -> Iterator[Callable[[], tuple[Instance, Instance]]]:
    """Starts instances "a" and "b" on the same spool and state database; stops them at the end."""
    started: list[Instance] = []

    def start() -> tuple[Instance, Instance]:
        pair = tuple(Instance(n, spool.path, tmp_path, state_db.url) for n in ("a", "b"))
        for instance in pair:
            started.append(instance.start())
        return pair  # type: ignore[return-value]

    yield start
    for instance in started:
        instance.stop()


def multi_host(*servers: PgshimServer) -> str:
    """libpq's multi-host connection string: the first server that accepts the connection."""
    hosts = ",".join("127.0.0.1" for _ in servers)
    ports = ",".join(str(s.port) for s in servers)
    return f"host={hosts} port={ports} dbname=reddb user=postgres connect_timeout=5"


def replication_connection(dsn: str):  # noqa: ANN201 - psycopg2's connection
    return psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)


def holder_of(state: StateDb, slot: str, timeout: float = 15) -> str:
    return wait_for(lambda: state.slot(slot).get("holder"), timeout=timeout)  # type: ignore[return-value]


def wait_confirmed(state: StateDb, slot: str, lsn: int, timeout: float) -> None:
    """Until pgshim.slots holds the COMMIT of RedDB LSN ``lsn`` as the slot's confirmed_flush."""
    wanted = str(parse_lsn(end_pos(lsn)))
    wait_for(lambda: state.slot(slot)["confirmed_flush"] == wanted, timeout=timeout)


def begun_lsns(text: str) -> list[int]:
    """RedDB LSNs of the transactions in test_decoding output (the xid is the LSN)."""
    return [int(n) for n in re.findall(r"^BEGIN (\d+)$", text, re.MULTILINE)]


def committed_lsns(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^COMMIT (\d+)$", text, re.MULTILINE)]


class Writer(threading.Thread):
    """Appends one row (one transaction) to the spool every ``interval`` seconds, like RedDB."""

    def __init__(self, kit: SpoolKit, collection: str = "users", interval: float = WRITE_INTERVAL):
        super().__init__(name="spool-writer", daemon=True)
        self.kit, self.collection, self.interval = kit, collection, interval
        self.lsns: list[int] = []
        self.rows: list[tuple[int, str, int]] = []  # (rid, name, seq) as a subscriber has them
        self.stopped = threading.Event()

    def write_one(self) -> int:
        seq = len(self.lsns) + 1
        lsn, rid = self.kit.insert(self.collection, name=f"row {seq}", seq=seq)
        self.lsns.append(lsn)
        self.rows.append((rid, f"row {seq}", seq))
        return lsn

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.write_one()

    def finish(self) -> list[int]:
        self.stopped.set()
        self.join(10)
        return self.lsns


@dataclass
class Delivery:
    session: int
    at: float
    data_start: int
    payload: str


@dataclass
class Attempt:
    started: float  # when the connection was begun
    port: int | None = None  # the instance that served it, once streaming
    error: tuple[str | None, str] | None = None  # (SQLSTATE, message) it ended with


class Consumer(threading.Thread):
    """A psycopg2 LogicalReplicationConnection consumer of test_decoding that confirms every
    COMMIT as it goes and connects again (at once) whenever its connection ends."""

    def __init__(self, dsn: str, slot: str) -> None:
        super().__init__(name="replication-consumer", daemon=True)
        self.dsn, self.slot = dsn, slot
        self.attempts: list[Attempt] = []
        self.deliveries: list[Delivery] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            attempt = Attempt(time.monotonic())
            self.attempts.append(attempt)
            conn = None
            try:
                conn = replication_connection(self.dsn)
                cur = conn.cursor()
                cur.start_replication(slot_name=self.slot, decode=True, status_interval=1)
                attempt.port = conn.info.port
                self._stream(cur, len(self.attempts) - 1)
            except psycopg2.Error as exc:
                attempt.error = (exc.pgcode, str(exc).strip())
                time.sleep(0.1)
            finally:
                if conn is not None:
                    conn.close()

    def _stream(self, cur, session: int) -> None:  # noqa: ANN001
        while not self.stopped.is_set():
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 0.2)
                continue
            self.deliveries.append(Delivery(session, time.monotonic(), msg.data_start, msg.payload))
            if msg.payload.startswith("COMMIT"):
                cur.send_feedback(flush_lsn=msg.data_start, force=True)

    def begun(self) -> set[int]:
        return {
            int(d.payload.split()[1])
            for d in list(self.deliveries)
            if d.payload.startswith("BEGIN")
        }

    def wait_for_lsns(self, lsns: list[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not set(lsns) <= self.begun():
            if time.monotonic() > deadline:
                missing = sorted(set(lsns) - self.begun())
                raise AssertionError(f"{len(missing)} transactions not received: {missing[:20]}")
            time.sleep(0.1)

    def wait_for_session_after(self, begun: int, timeout: float) -> None:
        """Until a session begun after the first ``begun`` attempts delivers something."""
        wait_for(lambda: any(d.session >= begun for d in self.deliveries[-50:]), timeout=timeout)

    def finish(self) -> None:
        self.stopped.set()
        self.join(15)


# --- (1) shared slots and publications ----------------------------------------------------------


def test_slots_publications_and_identity_are_shared_and_one_session_streams(
    spool: SpoolKit, instances, state_db: StateDb, tmp_path: Path
) -> None:
    spool.insert("users", name="before", seq=0)
    a, b = instances()
    created = a.recvlogical("--slot", "s1", "--create-slot", "-P", "test_decoding")
    assert created.returncode == 0, created.stderr
    assert (
        b.psql(
            "SELECT slot_name, plugin, slot_type, database, active, confirmed_flush_lsn"
            " FROM pg_replication_slots"
        )
        == f"s1|test_decoding|logical|reddb|f|{end_pos(1)}"
    )

    out = tmp_path / "a.out"
    streaming = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "--slot", "s1", "--start", "-f", str(out), "-F", "1"],
        env=a.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        pid = int(wait_for(lambda: a.psql("SELECT pid FROM pg_stat_replication")))
        assert a.psql("SELECT active, active_pid FROM pg_replication_slots") == f"t|{pid}"
        assert state_db.slot("s1")["holder"] == "a"
        assert state_db.slot("s1")["holder_pid"] == str(pid)

        # instance b sees a's session, and refuses a second one as PostgreSQL does
        assert b.psql("SELECT active, active_pid FROM pg_replication_slots") == f"t|{pid}"
        assert b.psql("SELECT active_instance FROM pgshim_slots WHERE slot_name = 's1'") == "a"
        active = f'replication slot "s1" is active for PID {pid}'
        conn = replication_connection(b.dsn())
        try:
            with pytest.raises(psycopg2.Error) as started:
                conn.cursor().start_replication(slot_name="s1", decode=True)
            assert (started.value.pgcode, started.value.pgerror.splitlines()[0]) == (
                "55006",
                f"ERROR:  {active}",
            )
        finally:
            conn.close()
        second = b.recvlogical("--slot", "s1", "--start", "-f", "-", "--no-loop", timeout=20)
        assert second.returncode == 1
        assert f"ERROR:  {active}" in second.stderr

        # DROP on b while a streams: refused, and the slot stays everywhere
        conn = replication_connection(b.dsn())
        try:
            with pytest.raises(psycopg2.Error) as dropped:
                conn.cursor().drop_replication_slot("s1")
            assert (dropped.value.pgcode, dropped.value.pgerror.splitlines()[0]) == (
                "55006",
                f"ERROR:  {active}",
            )
        finally:
            conn.close()
        with pytest.raises(AssertionError, match=re.escape(active)):
            b.psql("SELECT pg_drop_replication_slot('s1')")
        assert state_db.sql("SELECT name FROM pgshim.slots") == "s1"
        assert a.psql("SELECT slot_name, active_pid FROM pg_replication_slots") == f"s1|{pid}"

        # one server identity
        ids = []
        for server in (a, b):
            conn = replication_connection(server.dsn())
            try:
                cur = conn.cursor()
                cur.execute("IDENTIFY_SYSTEM")
                ids.append(cur.fetchone()[0])
            finally:
                conn.close()
        assert ids[0] == ids[1] == state_db.sql("SELECT system_identifier FROM pgshim.meta")

        # a publication created on a is seen on b within two seconds
        a.psql("CREATE PUBLICATION pub1 FOR TABLE users WITH (publish = 'insert')")
        created_at = time.monotonic()
        wait_for(lambda: b.psql("SELECT pubname, puballtables, pubinsert, pubupdate"
                                " FROM pg_publication") == "pub1|f|t|f", timeout=2.5)  # fmt: skip
        print(f"publication seen on b after {time.monotonic() - created_at:.2f} s")
        assert b.psql("SELECT schemaname, tablename FROM pg_publication_tables") == "public|users"

        # a's stream went on undisturbed by b's refusals
        lsns = [spool.insert("users", name=f"live {i}", seq=i)[0] for i in range(1, 4)]
        wait_for(lambda: out.exists() and committed_lsns(out.read_text()) == lsns)
        assert begun_lsns(out.read_text()) == lsns
    finally:
        streaming.send_signal(signal.SIGINT)
        streaming.wait(15)
    assert streaming.returncode == 0, streaming.stderr.read()

    # a's session ended and gave up its lease: b may now use the slot, and drop it
    wait_for(lambda: state_db.slot("s1")["holder"] == "", timeout=5)
    wait_for(lambda: b.psql("SELECT active FROM pg_replication_slots") == "f", timeout=5)
    assert b.psql("SELECT count(*) FROM pgshim_slots WHERE active_instance IS NOT NULL") == "0"
    dropped_on_b = b.recvlogical("--slot", "s1", "--drop-slot")
    assert dropped_on_b.returncode == 0, dropped_on_b.stderr
    assert state_db.sql("SELECT count(*) FROM pgshim.slots") == "0"
    wait_for(lambda: a.psql("SELECT count(*) FROM pg_replication_slots") == "0", timeout=5)


# --- (2) kill -9 of the holding instance, three times, under a psycopg2 consumer ----------------


@dataclass
class Kill:
    victim: str
    pid: int  # the victim's session holding the slot (pgshim.slots.holder_pid)
    at: float
    sessions_before: int  # consumer attempts begun before the kill
    confirmed: int  # pgshim.slots.confirmed_flush right after the kill
    lease_left: float  # seconds the victim's lease still had then


def test_kill_9_of_the_holder_three_times_psycopg2_multi_host(
    spool: SpoolKit, instances, state_db: StateDb
) -> None:
    spool.insert("users", name="before", seq=0)
    a, b = instances()
    by_name = {"a": a, "b": b}
    conn = replication_connection(a.dsn())
    try:
        conn.cursor().create_replication_slot("ha", output_plugin="test_decoding")
    finally:
        conn.close()
    writer = Writer(spool)
    consumer = Consumer(multi_host(a, b), "ha")
    writer.start()
    consumer.start()
    kills: list[Kill] = []
    try:
        for _ in range(3):
            # the slot is streamed and confirmed: its position in the state database moves
            since = int(state_db.slot("ha")["confirmed_flush"])
            wait_for(lambda since=since: int(state_db.slot("ha")["confirmed_flush"]) > since,
                     timeout=TAKEOVER_LIMIT + 10)  # fmt: skip
            victim = holder_of(state_db, "ha")
            by_name[victim].kill()
            killed_at = time.monotonic()
            row = state_db.slot("ha")
            assert row["holder"] == victim  # the lease outlives its holder for a while
            kills.append(Kill(victim, int(row["holder_pid"]), killed_at, len(consumer.attempts),
                              int(row["confirmed_flush"]), float(row["lease_left"])))  # fmt: skip
            # the other instance takes the slot once the lease has run out
            consumer.wait_for_session_after(len(consumer.attempts), TAKEOVER_LIMIT + 10)
            assert holder_of(state_db, "ha") == ("b" if victim == "a" else "a")
            by_name[victim].start()
        written = writer.finish()
        consumer.wait_for_lsns(written)
        # the last confirmation reaches the state database while the consumer is connected
        wait_confirmed(state_db, "ha", written[-1], timeout=10)
    finally:
        writer.stopped.set()
        consumer.finish()

    assert [k.victim for k in kills] == ["a", "b", "a"]  # the slot went back and forth
    deliveries = list(consumer.deliveries)
    assert sorted(consumer.begun()) == written  # every transaction, and nothing else
    takeovers = [
        next(d.at for d in deliveries if consumer.attempts[d.session].started > kill.at) - kill.at
        for kill in kills
    ]
    print("takeover times (kill -9 -> first XLogData):", [f"{t:.2f} s" for t in takeovers])
    for kill in kills:
        after = [d for d in deliveries if consumer.attempts[d.session].started > kill.at]
        first = after[0]
        assert consumer.attempts[first.session].port == (b if kill.victim == "a" else a).port
        # the new session starts just after what the state database had confirmed at the kill,
        # and nothing at or before that position comes again
        assert first.payload == f"BEGIN {(kill.confirmed >> 8) + 1}"
        assert first.data_start == ((kill.confirmed >> 8) + 1) << 8
        assert [d for d in after if d.data_start <= kill.confirmed] == []
        # no session streamed from the slot before the victim's lease had run out; until then
        # the slot was refused as active for the victim's session
        assert first.at - kill.at >= kill.lease_left - 0.3, (kill, first.at)
        refused = {
            attempt.error for attempt in consumer.attempts[kill.sessions_before : first.session]
        }
        active = f'replication slot "ha" is active for PID {kill.pid}'
        assert refused == {("55006", active)}, refused
    assert all(t < TAKEOVER_LIMIT for t in takeovers), takeovers


# --- (1b) a consumer that moves from one instance to the other without a failure ----------------------


def stream_until(server: PgshimServer, slot: str, last: int, timeout: float = 15) -> list[str]:
    """Stream ``slot`` from ``server`` (once the other instance has let it go) through the COMMIT
    of RedDB LSN ``last``, confirm that COMMIT and disconnect: the payloads received."""
    deadline = time.monotonic() + timeout
    while True:
        conn = replication_connection(server.dsn())
        try:
            cur = conn.cursor()
            try:
                cur.start_replication(slot_name=slot, decode=True)
            except psycopg2.Error as exc:
                if exc.pgcode != "55006" or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            payloads: list[str] = []
            while not payloads or payloads[-1] != f"COMMIT {last}":
                assert time.monotonic() < deadline, payloads
                msg = cur.read_message()
                if msg is None:
                    select.select([cur], [], [], 0.2)
                    continue
                payloads.append(msg.payload)
            cur.send_feedback(flush_lsn=msg.data_start, force=True)
            return payloads
        finally:
            conn.close()


def sql_changes(server: PgshimServer, slot: str, timeout: float = 15) -> list[str]:
    """pg_logical_slot_get_changes on ``server`` (once the other instance has let it go)."""
    deadline = time.monotonic() + timeout
    while True:
        out = server.run("psql", "-X", "-At", "-c",
                         f"SELECT data FROM pg_logical_slot_get_changes('{slot}', NULL, NULL)")  # fmt: skip
        if out.returncode == 0:
            return out.stdout.splitlines()
        assert "is active for PID" in out.stderr and time.monotonic() < deadline, out.stderr


def test_a_consumer_moving_between_instances_resumes_after_what_it_confirmed(
    spool: SpoolKit, instances, state_db: StateDb
) -> None:
    spool.insert("users", name="before", seq=0)
    a, b = instances()
    conn = replication_connection(a.dsn())
    try:
        conn.cursor().create_replication_slot("sw", output_plugin="test_decoding")
    finally:
        conn.close()
    for round_ in range(6):
        lsns = [spool.insert("users", name=f"r{round_}", seq=i)[0] for i in range(3)]
        # at once after the other instance let the slot go: streamed from a, read by SQL on b
        received = stream_until(a, "sw", lsns[-1]) if round_ % 2 == 0 else sql_changes(b, "sw")
        assert begun_lsns("\n".join(received)) == lsns, (round_, received)
        assert committed_lsns("\n".join(received)) == lsns
        wait_confirmed(state_db, "sw", lsns[-1], timeout=5)


# --- (3) pg_recvlogical's own reconnection loop ---------------------------------------------------


def test_pg_recvlogical_multi_host_loop_survives_kill_9_of_the_holder(
    spool: SpoolKit, instances, state_db: StateDb, tmp_path: Path
) -> None:
    spool.insert("users", name="before", seq=0)
    a, b = instances()
    dsn = multi_host(a, b)
    created = subprocess.run(
        ["pg_recvlogical", "-d", dsn, "--slot", "rl", "--create-slot", "-P", "test_decoding"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert state_db.sql("SELECT name, plugin, confirmed_flush FROM pgshim.slots") == (
        f"rl|test_decoding|{parse_lsn(end_pos(1))}"
    )
    out = tmp_path / "rl.out"
    # the default loop: on a lost connection it waits 5 s and connects again (to either host)
    recv = subprocess.Popen(
        ["pg_recvlogical", "-d", dsn, "--slot", "rl", "--start", "-f", str(out), "-F", "1",
         "-s", "1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    writer = Writer(spool)
    writer.start()
    try:
        assert holder_of(state_db, "rl") == "a"  # the first host
        wait_for(lambda: out.exists() and len(committed_lsns(out.read_text())) >= 10)
        a.kill()
        killed_at = time.monotonic()
        wait_for(lambda: state_db.slot("rl")["holder"] == "b", timeout=5 + LEASE + 10)
        print(f"pg_recvlogical streams from b {time.monotonic() - killed_at:.2f} s after the kill")
        seen = len(committed_lsns(out.read_text()))
        wait_for(lambda: len(committed_lsns(out.read_text())) >= seen + 10)
        written = writer.finish()
        wait_for(lambda: set(written) <= set(committed_lsns(out.read_text())), timeout=20)
    finally:
        writer.stopped.set()
        recv.send_signal(signal.SIGINT)
        recv.wait(15)
    stderr = recv.stderr.read()
    assert recv.returncode == 0, stderr
    assert "disconnected; waiting 5 seconds to try again" in stderr
    text = out.read_text()
    # every transaction, whole: some more than once (those not confirmed before the kill)
    assert sorted(set(begun_lsns(text))) == written
    assert sorted(set(committed_lsns(text))) == written
    for lsn, (rid, name, seq) in zip(written, writer.rows, strict=True):
        block = (f"BEGIN {lsn}\ntable public.users: INSERT: rid[bigint]:{rid} name[text]:'{name}'"
                 f" seq[bigint]:{seq}\nCOMMIT {lsn}\n")  # fmt: skip
        assert block in text


# --- (4) a PostgreSQL 15 subscriber ---------------------------------------------------------------


def test_postgresql_subscriber_multi_host_survives_kill_9_of_the_holder(
    spool: SpoolKit, instances, state_db: StateDb, tmp_path: Path
) -> None:
    subscriber = PgCluster(tmp_path / "subscriber", {"wal_retrieve_retry_interval": "500ms"})
    subscriber.start()
    try:
        subscriber.psql("CREATE TABLE users (rid bigint PRIMARY KEY, name text, seq bigint)")
        spool.insert("users", name="before", seq=0)  # the collection exists for the publication
        a, b = instances()
        a.psql("CREATE PUBLICATION pub FOR ALL TABLES")
        subscriber.psql(
            f"CREATE SUBSCRIPTION sub CONNECTION '{multi_host(a, b)}' PUBLICATION pub"
            " WITH (copy_data = false)"
        )
        writer = Writer(spool)
        writer.start()
        try:
            assert holder_of(state_db, "sub") == "a"  # the first host
            wait_for(lambda: int(subscriber.psql("SELECT count(*) FROM users")) >= 20)
            pid = int(state_db.slot("sub")["holder_pid"])
            a.kill()
            killed_at = time.monotonic()
            wait_for(lambda: state_db.slot("sub")["holder"] == "b", timeout=LEASE + 15)
            print(
                f"the subscriber streams from b {time.monotonic() - killed_at:.2f} s after the kill"
            )
            assert b.psql("SELECT application_name, state FROM pg_stat_replication") == (
                "sub|streaming"
            )
            seen = int(subscriber.psql("SELECT count(*) FROM users"))
            wait_for(lambda: int(subscriber.psql("SELECT count(*) FROM users")) >= seen + 10)
        finally:
            written = writer.finish()
        expected = [f"{rid}|{name}|{seq}" for rid, name, seq in writer.rows]
        wait_for(lambda: subscriber.psql("SELECT rid, name, seq FROM users ORDER BY rid")
                 == "\n".join(expected), timeout=30)  # fmt: skip
        wait_confirmed(state_db, "sub", written[-1], timeout=15)
        # the apply worker's only errors: the lost connection, and b refusing the slot while
        # a's lease ran (no duplicate row, no missing relation, no protocol error)
        errors = [line.split("ERROR:", 1)[1].strip() for line in subscriber.log_text().splitlines()
                  if "ERROR:" in line]  # fmt: skip
        allowed = {
            "could not receive data from WAL stream: server closed the connection unexpectedly",
            'could not start WAL streaming: ERROR:  replication slot "sub" is active for PID '
            f"{pid}",
        }
        assert set(errors) <= allowed, errors
        assert errors, "the kill went unnoticed"
    finally:
        subscriber.stop()


# --- (5) the state database restarted under a streaming session ---------------------------------

LOST_LEASE = (
    'replication slot "sr" is no longer held by this instance: its lease could not be renewed'
)
UNREACHABLE = "could not access the state database: "


def clear(error: tuple[str | None, str]) -> bool:
    """Whether a session's error says that the state database was away."""
    code, message = error
    return (code == "55006" and message.startswith(LOST_LEASE)) or (
        code == "58030" and message.startswith(UNREACHABLE)
    )


def test_state_database_restart_and_outage_while_streaming(
    spool: SpoolKit, instances, state_db: StateDb, state_pg: PgCluster
) -> None:
    spool.insert("users", name="before", seq=0)
    a, b = instances()
    conn = replication_connection(a.dsn())
    try:
        conn.cursor().create_replication_slot("sr", output_plugin="test_decoding")
    finally:
        conn.close()
    writer = Writer(spool)
    consumer = Consumer(multi_host(a, b), "sr")
    writer.start()
    consumer.start()
    try:
        assert holder_of(state_db, "sr") == "a"
        wait_for(lambda: len(consumer.begun()) >= 20)

        # a restart (a fast shutdown and a start, well within the lease)
        before_restart = len(consumer.attempts)
        started = time.monotonic()
        state_pg.restart()
        print(f"state database restarted in {time.monotonic() - started:.2f} s")
        at_restart = int(state_db.slot("sr")["confirmed_flush"])
        wait_for(lambda: int(state_db.slot("sr")["confirmed_flush"]) > at_restart, timeout=15)
        restart_errors = [x.error for x in consumer.attempts[before_restart - 1 :]]

        # an outage longer than the lease: a's session cannot keep its lease, so it is ended
        # (else b could take the slot while a streams); the consumer comes back once it can
        wait_for(lambda: len(consumer.begun()) >= len(writer.lsns) - 5)
        before_outage = len(consumer.attempts)
        state_pg.pause()
        time.sleep(LEASE + 1.5)
        state_pg.resume()
        at_outage = int(state_db.slot("sr")["confirmed_flush"])
        wait_for(lambda: int(state_db.slot("sr")["confirmed_flush"]) > at_outage, timeout=20)
        outage_sessions = consumer.attempts[before_outage - 1 :]

        written = writer.finish()
        consumer.wait_for_lsns(written)
        wait_confirmed(state_db, "sr", written[-1], timeout=15)
    finally:
        writer.stopped.set()
        consumer.finish()
    print("errors across the restart:", restart_errors)
    print("errors across the outage:", Counter(x.error[0] for x in outage_sessions if x.error))
    assert sorted(consumer.begun()) == written
    # the restart: the session went on, or ended with a clear error and the consumer came back
    assert [error for error in restart_errors if error is not None and not clear(error)] == []
    # the outage: the streaming session ended saying why; reconnections meanwhile were refused
    # saying why; a streams again (the first host, never down)
    assert outage_sessions[0].error is not None
    assert outage_sessions[0].error[0] == "55006", outage_sessions[0].error
    assert outage_sessions[0].error[1].startswith(LOST_LEASE), outage_sessions[0].error
    assert [x.error for x in outage_sessions if x.error is not None and not clear(x.error)] == []
    assert outage_sessions[-1].port == a.port and outage_sessions[-1].error is None
    assert state_db.slot("sr")["holder"] == ""  # given up when the consumer left
    assert a.proc is not None and a.proc.poll() is None
    assert b.proc is not None and b.proc.poll() is None


# --- (6) start-up errors --------------------------------------------------------------------------

PASSWORD = "Sup3r-S3cret-pw"


def run_pgshim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgshim", *args], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **(env or {})),
    )  # fmt: skip


def test_start_up_errors_of_state_url(spool: SpoolKit, tmp_path: Path) -> None:
    nobody = free_port()  # nothing listens there
    url = f"postgresql://pgshim:{PASSWORD}@127.0.0.1:{nobody}/pgshim_state"
    serve = ("serve", "--spool", str(spool.path), "--state-dir", str(tmp_path / "state"),
             "--host", "127.0.0.1", "--port", str(free_port()))  # fmt: skip
    unreachable = tmp_path / "unreachable.toml"
    unreachable.write_text(f'state_url = "{url}"\n')
    for result in (
        run_pgshim(*serve, "--config", str(unreachable)),
        run_pgshim(*serve, env={"PGSHIM_STATE_URL": url}),
    ):
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            f"pgshim: cannot connect to the state database 127.0.0.1:{nobody}/pgshim_state: "
        ), lines
        assert PASSWORD not in result.stderr

    # not a postgresql:// URL: the configuration is refused before anything starts
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'state_url = "mysql://pgshim:{PASSWORD}@127.0.0.1/pgshim_state"\n')
    refused = "pgshim: configuration error: state_url: must be a postgresql:// URL\n"
    for result in (
        run_pgshim("check-config", str(wrong)),
        run_pgshim(*serve, "--config", str(wrong)),
    ):
        assert (result.returncode, result.stderr, result.stdout) == (2, refused, "")
    accepted = run_pgshim("check-config", str(unreachable))
    assert accepted.returncode == 0, accepted.stderr
    assert PASSWORD not in accepted.stdout + accepted.stderr
