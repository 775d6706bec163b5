"""Slots end to end over real sockets: a prune past a slot makes it lost (and says so), a future
start position or confirmation never moves a slot past what exists, and a temporary slot lives
exactly as long as its session. Every change written to the spool is checked to be delivered or
reported."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit, end_pos

from pgshim.pgtypes import parse_lsn
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.writer import SpoolWriter
from pgshim.wire import messages as msg

START_ARGS: tuple[str, ...] = ()


def insert_rows(kit: SpoolKit, count: int) -> list[int]:
    return [kit.insert("users", name=f"u{kit.lsn + 1}", seq=kit.lsn + 1)[0] for _ in range(count)]


def begun_lsns(text: str) -> list[int]:
    """RedDB LSNs of the transactions in test_decoding output (the xid is the LSN)."""
    return [int(n) for n in re.findall(r"^BEGIN (\d+)$", text, re.MULTILINE)]


def slot_row(server: PgshimServer, name: str) -> dict[str, str]:
    cols = ["slot_name", "active", "active_pid", "restart_lsn", "confirmed_flush_lsn", "wal_status"]
    out = server.psql(
        f"SELECT {', '.join(cols)} FROM pg_replication_slots WHERE slot_name = '{name}'"
    )
    return dict(zip(cols, out.split("|"), strict=True)) if out else {}


def wait_for(check: Callable[[], object], timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def prune_keeping_above(kit: SpoolKit, keep_above: int) -> None:
    """RedDB's prune: the records with LSN > keep_above are copied to a new file that is renamed
    over the spool; the kit appends to the new file from now on."""
    data = kit.path.read_bytes()
    frames = SpoolFollower(kit.path).poll()
    keep_from = next(f.offset for f in frames if f.lsn > keep_above)
    rewritten = kit.path.with_suffix(".tmp")
    rewritten.write_bytes(data[keep_from:])
    os.rename(rewritten, kit.path)
    kit.writer.close()
    kit.writer = SpoolWriter(kit.path, layout=kit.layout, fsync=False)


def replication_connection(server: PgshimServer):  # noqa: ANN201 - psycopg2's connection
    return psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )


# --- (5) a prune past a slot ------------------------------------------------------------------


def test_prune_past_a_slot_makes_it_lost_and_ends_its_stream(
    spool: SpoolKit, pgshim: Callable[..., PgshimServer]
) -> None:
    written = insert_rows(spool, 5)  # LSN 1..5
    server = pgshim(spool.path, *START_ARGS)
    server.psql("SELECT pg_create_logical_replication_slot('behind', 'test_decoding')")
    written += insert_rows(spool, 5)  # 6..10
    wait_for(lambda: server.psql("SELECT pg_current_wal_lsn()") == end_pos(10))
    server.psql("SELECT pg_create_logical_replication_slot('past', 'test_decoding')")
    spool.skip_lsn(3)  # 11..13 never existed (KV watch events)
    written += insert_rows(spool, 3)  # 14..16
    assert slot_row(server, "behind")["confirmed_flush_lsn"] == end_pos(5)
    assert slot_row(server, "past")["confirmed_flush_lsn"] == end_pos(10)

    # a consumer streams from "behind", receives everything and confirms nothing
    conn = replication_connection(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="behind", decode=True, status_interval=60)
    received: list[int] = []
    deadline = time.monotonic() + 15
    while 16 not in received:
        assert time.monotonic() < deadline, received
        message = cur.read_message()
        if message is None:
            select.select([conn], [], [], 0.5)
            continue
        received += begun_lsns(message.payload)
    assert received == [6, 7, 8, 9, 10, 14, 15, 16]

    # RedDB prunes keeping LSN > 13: 6..10, never confirmed by "behind", are gone
    prune_keeping_above(spool, 13)
    with pytest.raises(psycopg2.Error) as caught:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if cur.read_message() is None:
                select.select([conn], [], [], 0.5)
    assert caught.value.pgcode == "55000"
    assert 'can no longer get changes from replication slot "behind"' in str(caught.value)
    assert caught.value.diag.message_detail == (
        "This slot has been invalidated because RedDB pruned 5 change records it had not "
        "confirmed from the spool (RedDB LSN 6 to 10; the spool now starts at LSN 14)."
    )
    conn.close()

    behind = slot_row(server, "behind")
    assert (behind["wal_status"], behind["restart_lsn"]) == ("lost", "")
    reason = server.psql("SELECT invalidation_reason FROM pgshim_slots WHERE slot_name = 'behind'")
    assert "RedDB LSN 6 to 10" in reason
    # the slot past the pruned records (only holes between) is untouched
    assert slot_row(server, "past")["wal_status"] == "reserved"
    assert slot_row(server, "past")["restart_lsn"] == end_pos(10)

    # START_REPLICATION later fails the same way; SQL decoding too
    later = server.recvlogical("-S", "behind", "--start", "-f", "-", "--no-loop")
    assert later.returncode != 0
    assert 'can no longer get changes from replication slot "behind"' in later.stderr
    assert "This slot has been invalidated because RedDB pruned" in later.stderr
    sql = server.run("psql", "-X", "-At", "-c",
                     "SELECT * FROM pg_logical_slot_peek_changes('behind', NULL, NULL)")  # fmt: skip
    assert "can no longer get changes" in sql.stderr

    # "past" goes on with the retained records and new ones
    written += insert_rows(spool, 2)  # 17, 18
    out = server.recvlogical("-S", "past", "--start", "-E", end_pos(18), "-f", "-")
    assert out.returncode == 0, out.stderr
    past_got = begun_lsns(out.stdout)
    assert past_got == [14, 15, 16, 17, 18]

    # every change written was delivered to each slot or reported lost for it
    reported_lost = set(range(6, 11))
    assert {lsn for lsn in written if lsn > 5} <= set(received) | set(past_got) | reported_lost
    assert {lsn for lsn in written if lsn > 10} == set(past_got)
    server_log = server.log()
    assert server_log.count('replication slot "behind" invalidated') == 1
    assert "byte offsets" in server_log


# --- (7) positions beyond what exists ----------------------------------------------------------


def test_future_start_position_does_not_poison_the_slot(
    spool: SpoolKit, pgshim: Callable[..., PgshimServer]
) -> None:
    insert_rows(spool, 3)
    server = pgshim(spool.path, *START_ARGS)
    server.psql("SELECT pg_create_logical_replication_slot('s', 'test_decoding')")
    out_file = spool.path.parent / "future.out"
    env = server.env_for_clients()
    proc = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "s", "--start", "-I", "10/0", "-s", "1",
         "-f", str(out_file), "--no-loop"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)  # keepalives and status updates go back and forth
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    confirmed = parse_lsn(slot_row(server, "s")["confirmed_flush_lsn"])
    assert confirmed <= parse_lsn(end_pos(3)), (err, slot_row(server, "s"))

    written = insert_rows(spool, 2)  # 4, 5
    out = server.recvlogical("-S", "s", "--start", "-E", end_pos(5), "-f", "-")
    assert out.returncode == 0, out.stderr
    assert begun_lsns(out.stdout) == written == [4, 5]


def test_confirmations_beyond_sent_are_clamped(
    spool: SpoolKit, pgshim: Callable[..., PgshimServer]
) -> None:
    insert_rows(spool, 3)
    server = pgshim(spool.path, *START_ARGS)
    server.psql("SELECT pg_create_logical_replication_slot('c', 'test_decoding')")
    conn = replication_connection(server)
    cur = conn.cursor()
    cur.start_replication(slot_name="c", decode=True, status_interval=60)
    cur.send_feedback(write_lsn=0x10_0000_0000, flush_lsn=0x10_0000_0000, force=True)
    select.select([conn], [], [], 0.5)
    cur.read_message()
    time.sleep(0.6)  # persisted within 0.2 s
    end = parse_lsn(end_pos(3))
    assert parse_lsn(slot_row(server, "c")["confirmed_flush_lsn"]) <= end
    sent = server.psql("SELECT sent_lsn, write_lsn, flush_lsn FROM pg_stat_replication")
    assert all(parse_lsn(lsn) <= end for lsn in sent.split("|")), sent
    conn.close()
    # the SQL advance is clamped to the end as well
    advanced = server.psql("SELECT end_lsn FROM pg_replication_slot_advance('c', '20/0')")
    assert parse_lsn(advanced) <= end
    assert (
        parse_lsn(server.psql("SELECT max(confirmed_flush_lsn) FROM pg_replication_slots")) <= end
    )

    written = insert_rows(spool, 2)  # 4, 5: still delivered
    wait_for(lambda: server.psql("SELECT pg_current_wal_lsn()") == end_pos(5))
    rows = server.psql("SELECT data FROM pg_logical_slot_get_changes('c', NULL, NULL)")
    assert begun_lsns(rows) == written


# --- (8) temporary slots -----------------------------------------------------------------------


def startup_replication() -> bytes:
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0reddb\0replication\0database\0\0"
    return struct.pack("!I", len(body) + 4) + body


class RawSession:
    """A walsender connection spoken byte by byte (CopyDone is not in psycopg2's API)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(15)
        self.data = b""
        self.sock.sendall(startup_replication())
        self.pid = 0
        for tag, body in self.until(b"Z"):
            if tag == b"K":
                self.pid = struct.unpack("!I", body[:4])[0]

    def message(self) -> tuple[bytes, bytes]:
        while True:
            if len(self.data) >= 5:
                length = struct.unpack("!I", self.data[1:5])[0]
                if len(self.data) >= 1 + length:
                    tag, body = self.data[:1], self.data[5 : 1 + length]
                    self.data = self.data[1 + length :]
                    return tag, body
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.data += chunk

    def until(self, tag: bytes) -> list[tuple[bytes, bytes]]:
        seen = []
        while True:
            seen.append(self.message())
            if seen[-1][0] == tag:
                return seen

    def query(self, sql: str) -> list[tuple[bytes, bytes]]:
        self.sock.sendall(msg.build_frontend(b"Q", sql=sql))
        return self.until(b"Z")

    def close(self) -> None:
        self.sock.sendall(msg.build_frontend(b"X"))
        self.sock.close()


def error_of(replies: list[tuple[bytes, bytes]]) -> dict[str, str]:
    for tag, body in replies:
        if tag == b"E":
            fields = [f for f in body.split(b"\0") if f]
            return {f[:1].decode(): f[1:].decode() for f in fields}
    return {}


def test_temporary_slot_lives_as_long_as_its_session(
    spool: SpoolKit, pgshim: Callable[..., PgshimServer]
) -> None:
    written = insert_rows(spool, 2)
    server = pgshim(spool.path, *START_ARGS)
    session = RawSession(server.port)
    created = session.query("CREATE_REPLICATION_SLOT tmp TEMPORARY LOGICAL test_decoding")
    assert not error_of(created)
    written += insert_rows(spool, 2)  # 3, 4
    wait_for(lambda: server.psql("SELECT pg_current_wal_lsn()") == end_pos(4))

    # stream, take the changes, end the stream with CopyDone: the slot stays, the session's
    session.sock.sendall(msg.build_frontend(b"Q", sql="START_REPLICATION SLOT tmp LOGICAL 0/0"))
    streamed: list[int] = []
    while 4 not in streamed:
        tag, body = session.message()
        if tag == b"d" and body[:1] == b"w":
            streamed += begun_lsns(msg.XLogData.parse(body).payload.decode())
    session.sock.sendall(msg.build_frontend(b"c"))
    session.until(b"Z")
    row = slot_row(server, "tmp")
    assert (row["active"], row["active_pid"]) == ("t", str(session.pid))

    # SQL-level decoding in the same session: the slot stays
    peek = session.query("SELECT data FROM pg_logical_slot_peek_changes('tmp', NULL, NULL)")
    assert not error_of(peek)
    assert slot_row(server, "tmp")["active_pid"] == str(session.pid)

    # another session cannot use it
    other = server.run("psql", "-X", "-At", "-c",
                       "SELECT * FROM pg_logical_slot_peek_changes('tmp', NULL, NULL)")  # fmt: skip
    assert f'replication slot "tmp" is active for PID {session.pid}' in other.stderr
    conn = replication_connection(server)
    with pytest.raises(psycopg2.Error) as caught:
        conn.cursor().start_replication(slot_name="tmp", decode=True)
    assert caught.value.pgcode == "55006"
    conn.close()

    assert streamed == written[2:]  # what the slot was created before is not its to deliver
    session.close()
    wait_for(lambda: not slot_row(server, "tmp"))


def test_temporary_slot_is_dropped_when_its_client_is_killed(
    spool: SpoolKit, pgshim: Callable[..., PgshimServer]
) -> None:
    insert_rows(spool, 1)
    server = pgshim(spool.path, *START_ARGS)
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(server.port)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent,
    )  # fmt: skip
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "ready"
        assert slot_row(server, "gone")["active"] == "t"
        client.send_signal(signal.SIGKILL)
        client.wait(10)
        wait_for(lambda: not slot_row(server, "gone"))
    finally:
        if client.poll() is None:
            client.kill()


KILLED_CLIENT = """
import sys, time
from test_slots_lifecycle import RawSession
from pgshim.wire import messages as msg
session = RawSession(int(sys.argv[1]))
session.query("CREATE_REPLICATION_SLOT gone TEMPORARY LOGICAL test_decoding")
session.sock.sendall(msg.build_frontend(b"Q", sql="START_REPLICATION SLOT gone LOGICAL 0/0"))
session.message()
session.sock.sendall(msg.build_frontend(b"c"))  # CopyDone: the session goes on, the slot too
session.until(b"Z")
print("ready", flush=True)
time.sleep(60)
"""
