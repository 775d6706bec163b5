"""Generated and mutated input against every parser a client can reach: only PgError escapes.

Two kinds of fuzzing: hypothesis properties (shrinking, a few hundred examples each), and a
seeded mutation loop for volume. ``PGSHIM_FUZZ_INPUTS`` sets the loop's total count (default: the
reduced CI form; the full run uses 1_000_000) and ``PGSHIM_FUZZ_EXAMPLES`` the hypothesis count.
"""

from __future__ import annotations

import os
import random
import struct
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlkit import run_sql

from pgshim.errors import PgError
from pgshim.sql.catalog import Catalog
from pgshim.sql.parse import parse_statements as split_statements
from pgshim.sql.session import SessionInfo, SqlSession
from pgshim.walsender.commands import is_replication_command, parse_command
from pgshim.wire import messages as msg
from pgshim.wire.connection import NEED_DATA, Phase, ServerConnection

FUZZ_INPUTS = int(os.environ.get("PGSHIM_FUZZ_INPUTS", "20000"))
EXAMPLES = int(os.environ.get("PGSHIM_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# What a malformed input may legitimately earn: protocol violation, syntax error, unsupported,
# and the value-level errors PostgreSQL gives for well-formed commands with bad arguments.
WIRE_STATES = {"08P01", "0A000", "08004", "22021", "28000", "22023", "42601"}
COMMAND_STATES = {"42601", "0A000", "22023", "42704", "42P02", "22P02", "22003", "42622"}
SQL_STATES = COMMAND_STATES | {
    "42P01", "42883", "42703", "25P02", "25001", "42501", "22012", "42P10", "XX000", "0A000",
    "22007", "22008", "42846", "42804", "21000", "42P18", "25006", "55000", "3F000", "42710",
    "22004", "42P07", "2BP01", "42725", "22018", "54000", "42P22", "42702", "42803", "2201W",
    "2201X", "22000", "42000",
}  # fmt: skip


def startup_packet(code: int, payload: bytes) -> bytes:
    return struct.pack("!II", len(payload) + 8, code) + payload


def startup_message(**params: str) -> bytes:
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return startup_packet(196608, body)


STARTUP_SEEDS = [
    startup_message(user="postgres", database="reddb"),
    startup_message(user="rep", database="reddb", replication="database", application_name="x"),
    startup_message(user="u", options="-c work_mem=4MB --search_path=public", _pq_x="1"),
    startup_message(user="u", replication="true"),
    startup_packet(80877103, b""),  # SSLRequest
    startup_packet(80877104, b""),  # GSSENCRequest
    startup_packet(80877102, struct.pack("!ii", 1234, -5)),  # CancelRequest
]

MESSAGE_SEEDS = [
    msg.build_frontend(b"Q", sql="SELECT 1; SHOW wal_level"),
    msg.build_frontend(b"P", name="s1", sql="SELECT $1::int4", param_oids=[23]),
    msg.build_frontend(
        b"B",
        portal="",
        statement="s1",
        param_formats=[0],
        params=[{"data": b"7"}],
        result_formats=[1],
    ),  # fmt: skip
    msg.build_frontend(b"D", kind=b"S", name="s1"),
    msg.build_frontend(b"E", portal="", max_rows=0),
    msg.build_frontend(b"C", kind=b"P", name=""),
    msg.build_frontend(b"S"),
    msg.build_frontend(b"H"),
    msg.build_frontend(b"d", data=msg.standby_status(0x1FF, 0x1FF, 0, 0, True)),
    msg.build_frontend(b"d", data=b"h" + bytes(16)),
    msg.build_frontend(b"c"),
    msg.build_frontend(b"f", message="stop"),
    msg.build_frontend(b"p", data=b"n,,n=user,r=abc"),
    msg.build_frontend(b"X"),
]

COMMAND_SEEDS = [
    "IDENTIFY_SYSTEM",
    "SHOW wal_segment_size",
    "TIMELINE_HISTORY 1",
    "CREATE_REPLICATION_SLOT \"s\" LOGICAL test_decoding (SNAPSHOT 'nothing')",
    "CREATE_REPLICATION_SLOT s TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT",
    "CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL",
    "DROP_REPLICATION_SLOT s WAIT",
    "READ_REPLICATION_SLOT s",
    "ALTER_REPLICATION_SLOT s (FAILOVER true)",
    'START_REPLICATION SLOT s LOGICAL 0/1A2B ("include-xids" \'0\', "skip-empty-xacts")',
    "START_REPLICATION SLOT s PHYSICAL 1/0 TIMELINE 1",
    "START_REPLICATION 0/0",
    "BASE_BACKUP (LABEL 'x', PROGRESS, MAX_RATE 32768)",
    "UPLOAD_MANIFEST",
]

SQL_SEEDS = [
    "SELECT 1",
    "SHOW ALL",
    "SET application_name = 'x'; SHOW application_name",
    "BEGIN; SELECT * FROM pg_replication_slots; COMMIT",
    "SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots WHERE active",
    "SELECT * FROM pg_stat_replication",
    "CREATE PUBLICATION p FOR ALL TABLES",
    "ALTER PUBLICATION p ADD TABLE users",
    "DROP PUBLICATION IF EXISTS p",
    "SELECT pg_catalog.version(), current_setting('server_version_num')",
    "select $$dollar$$ || 'quote''d' /* c */ -- tail",
    "ROLLBACK",
    "DISCARD ALL",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four byte-level edits: flips, insertions, deletions, splices, length lies."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[pos % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and out:
            del out[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            out[pos:pos] = rng.choice([b"\0", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"'"])
        elif op == 4 and len(out) >= 4:
            at = rng.randrange(len(out) - 3)
            out[at : at + 4] = struct.pack("!i", rng.choice([0, 3, 4, -1, 2**31 - 1, 10001]))
        elif op == 5:
            del out[pos:]
        else:
            out[pos:pos] = rng.choice([b"\xc3\x28", b"\xed\xa0\x80", "é".encode(), b"\\"])
    return bytes(out)


def mutate_text(rng: random.Random, text: str) -> str:
    return mutate(rng, text.encode()).decode("utf-8", "replace")


def pump(conn: ServerConnection, data: bytes, rng: random.Random | None = None) -> list[object]:
    """Feed ``data`` in random chunks; collect events until NEED_DATA or a PgError."""
    events: list[object] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 64) if rng else len(data)
        conn.receive_data(data[pos : pos + step])
        pos += step
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            if len(events) > 10_000:
                raise AssertionError("one input produced an unbounded number of events")
    return events


def expect_pg_error(states: set[str], call: Callable[[], object]) -> object:
    try:
        return call()
    except PgError as err:
        assert err.sqlstate in states, (err.sqlstate, err.message)
        assert err.message
        return err


def feed_startup(data: bytes, rng: random.Random | None = None) -> object:
    return expect_pg_error(WIRE_STATES, lambda: pump(ServerConnection(4096), data, rng))


def feed_messages(data: bytes, rng: random.Random | None = None) -> object:
    conn = ServerConnection(4096)
    conn.phase = Phase.MESSAGES
    return expect_pg_error(WIRE_STATES, lambda: pump(conn, data, rng))


def feed_command(text: str) -> object:
    is_replication_command(text)
    try:
        return parse_command(text)
    except PgError as err:
        # PostgreSQL reports an unknown CREATE_REPLICATION_SLOT option with elog(ERROR): XX000
        if not (err.sqlstate == "XX000" and err.message.startswith("unrecognized option: ")):
            assert err.sqlstate in COMMAND_STATES, (err.sqlstate, err.message)
        return err


def feed_standby(data: bytes) -> object:
    result = expect_pg_error({"08P01"}, lambda: msg.parse_standby_status(data))
    if not isinstance(result, PgError):
        assert data[:1] == b"r" and len(data) == 34
    return result


def random_status(rng: random.Random) -> bytes:
    lsns = [rng.getrandbits(64) for _ in range(3)]
    return msg.standby_status(*lsns, rng.getrandbits(63), rng.random() < 0.5)


@pytest.fixture(scope="module")
def sql_session() -> SqlSession:
    return SqlSession(Catalog(), SessionInfo(user="fuzz", pid=1))


def feed_sql(session: SqlSession, text: str) -> None:
    statements = expect_pg_error(SQL_STATES, lambda: split_statements(text))
    if isinstance(statements, PgError):
        return
    for statement in statements:  # type: ignore[union-attr]
        expect_pg_error(SQL_STATES, lambda s=statement: run_sql(session, s))
    if session.tx_status != "I":
        run_sql(session, "ROLLBACK")


# -- hypothesis properties ------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
def test_startup_random_bytes(data: bytes) -> None:
    feed_startup(data)


@FUZZ
@given(st.sampled_from(STARTUP_SEEDS), st.randoms(use_true_random=False))
def test_startup_mutated(seed: bytes, rng: random.Random) -> None:
    feed_startup(mutate(rng, seed), rng)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(b"QPBDECSHXdcfpFYz\0"), st.binary(max_size=40)), max_size=8)
)
def test_typed_messages_with_random_bodies(parts: list[tuple[int, bytes]]) -> None:
    data = b"".join(bytes([tag]) + struct.pack("!I", len(body) + 4) + body for tag, body in parts)
    feed_messages(data)


@FUZZ
@given(st.lists(st.sampled_from(MESSAGE_SEEDS), min_size=1, max_size=6), st.randoms())
def test_message_stream_mutated(seeds: list[bytes], rng: random.Random) -> None:
    feed_messages(mutate(rng, b"".join(seeds)), rng)


@FUZZ
@given(st.text(max_size=200))
def test_replication_command_random_text(text: str) -> None:
    feed_command(text)


@FUZZ
@given(st.sampled_from(COMMAND_SEEDS), st.randoms(use_true_random=False))
def test_replication_command_mutated(seed: str, rng: random.Random) -> None:
    feed_command(mutate_text(rng, seed))


@FUZZ
@given(st.binary(max_size=64))
def test_standby_status_random_bytes(data: bytes) -> None:
    feed_standby(data)


@FUZZ
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1))
def test_standby_status_round_trip(write: int, flush: int, send_time: int) -> None:
    data = msg.standby_status(write, flush, 0, send_time, True)
    assert msg.parse_standby_status(data) == (write, flush, 0, send_time, True)


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 25))
@given(st.text(max_size=120))
def test_sql_random_text(sql_session: SqlSession, text: str) -> None:
    feed_sql(sql_session, text)


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 25))
@given(st.sampled_from(SQL_SEEDS), st.randoms(use_true_random=False))
def test_sql_mutated(sql_session: SqlSession, seed: str, rng: random.Random) -> None:
    feed_sql(sql_session, mutate_text(rng, seed))


# -- volume: a seeded mutation loop over every target ----------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_mutation_volume(sql_session: SqlSession) -> None:
    """FUZZ_INPUTS mutated inputs spread over the targets; none may hang or escape."""
    rng = random.Random(int(os.environ.get("PGSHIM_FUZZ_SEED", "7")))
    targets: list[tuple[int, Callable[[], object]]] = [
        (30, lambda: feed_startup(mutate(rng, rng.choice(STARTUP_SEEDS)), rng)),
        (30, lambda: feed_messages(mutate(rng, b"".join(rng.choices(MESSAGE_SEEDS, k=3))), rng)),
        (25, lambda: feed_command(mutate_text(rng, rng.choice(COMMAND_SEEDS)))),
        (10, lambda: feed_standby(mutate(rng, random_status(rng)))),
        (1, lambda: feed_sql(sql_session, mutate_text(rng, rng.choice(SQL_SEEDS)))),
        (4, lambda: feed_startup(rng.randbytes(rng.randint(0, 64)), rng)),
    ]
    weights = [w for w, _ in targets]
    calls = [c for _, c in targets]
    slowest = 0.0
    errors = 0
    for _ in range(FUZZ_INPUTS):
        started = time.perf_counter()
        result = rng.choices(calls, weights)[0]()
        slowest = max(slowest, time.perf_counter() - started)
        errors += isinstance(result, PgError)
    assert slowest < 2.0, f"an input took {slowest:.2f} s"
    assert 0 < errors < FUZZ_INPUTS  # the mutations reach both the accepting and refusing paths
    print(f"{FUZZ_INPUTS} inputs, {errors} refused with PgError, slowest {slowest * 1e3:.1f} ms")
