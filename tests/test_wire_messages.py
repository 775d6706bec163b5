"""Message layouts, byte for byte (lengths and values taken from the PG 15 transcripts)."""

from __future__ import annotations

import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgshim.errors import PgError
from pgshim.wire import messages as msg


def test_parameter_status_matches_transcript_lengths() -> None:
    # psql-status.txt: "ParameterStatus len=26 application_name='psql'"
    data = msg.parameter_status("application_name", "psql")
    assert data == b"S\x00\x00\x00\x1aapplication_name\x00psql\x00"
    # "ParameterStatus len=50 server_version='15.18 (Debian 15.18-0+deb12u1)'"
    long = msg.parameter_status("server_version", "15.18 (Debian 15.18-0+deb12u1)")
    assert struct.unpack("!I", long[1:5])[0] == 50


def test_startup_sequence_messages() -> None:
    assert msg.auth_ok() == b"R\x00\x00\x00\x08\x00\x00\x00\x00"
    # "BackendKeyData len=12 pid=8063 key=-97790415"
    assert msg.backend_key_data(8063, -97790415) == b"K\x00\x00\x00\x0c" + struct.pack(
        "!ii", 8063, -97790415
    )
    assert msg.ready_for_query("I") == b"Z\x00\x00\x00\x05I"
    assert msg.command_complete("SELECT 0") == b"C\x00\x00\x00\x0dSELECT 0\x00"


def test_authentication_requests() -> None:
    assert msg.authentication(msg.AUTH_SASL, ["SCRAM-SHA-256", ""]) == (
        b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"
    )
    assert msg.authentication(msg.AUTH_MD5, b"\x01\x02\x03\x04") == (
        b"R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04"
    )
    assert msg.authentication(msg.AUTH_SASL_FINAL, b"v=abc") == (
        b"R\x00\x00\x00\x0d\x00\x00\x00\x0cv=abc"
    )


def test_row_description_one_pg_lsn_column() -> None:
    # "RowDescription len=43 ncols=1 [pg_current_wal_lsn:3220(pg_lsn)]"
    data = msg.row_description([msg.field("pg_current_wal_lsn", 3220, 8)])
    assert struct.unpack("!I", data[1:5])[0] == 43
    assert data == (
        b"T\x00\x00\x00\x2b\x00\x01pg_current_wal_lsn\x00"
        + struct.pack("!IhIhih", 0, 0, 3220, 8, -1, 0)
    )
    parsed = msg.BackendMessage.parse(data)
    assert parsed.body.fields[0].name == "pg_current_wal_lsn"


def test_copy_responses() -> None:
    # "CopyBothResponse len=7 overallFormat=0 ncols=0"; "CopyOutResponse len=15 ... ncols=4"
    assert msg.copy_both_response() == b"W\x00\x00\x00\x07\x00\x00\x00"
    out = msg.copy_out_response([0, 0, 0, 0])
    assert out == b"H\x00\x00\x00\x0f\x00\x00\x04" + b"\x00\x00" * 4
    assert msg.copy_done() == b"c\x00\x00\x00\x04"


def test_error_response_fields() -> None:
    data = msg.error_response(PgError("28P01", "password authentication failed", severity="FATAL"))
    assert data == (
        b"E\x00\x00\x00\x3aSFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00"
    )


def test_negotiate_protocol_version() -> None:
    data = msg.negotiate_protocol_version(0, ["_pq_.foo"])
    assert data == b"v\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x01_pq_.foo\x00"


def test_frontend_bind_parses() -> None:
    # asyncpg: "Bind len=34 portal='' stmt='__asyncpg_stmt_1__' paramFormats=[1] params=[] resultFormats=[1]"
    raw = msg.build_frontend(
        b"B",
        portal="",
        statement="__asyncpg_stmt_1__",
        param_formats=[1],
        params=[],
        result_formats=[1],
    )
    assert struct.unpack("!I", raw[1:5])[0] == 34
    body = msg.parse_frontend_body(b"B", raw[5:])
    assert body.statement == "__asyncpg_stmt_1__"
    assert list(body.result_formats) == [1]


def test_malformed_body_is_protocol_violation() -> None:
    try:
        msg.parse_frontend_body(b"Q", b"no terminator")
    except PgError as err:
        assert err.sqlstate == "08P01"
        assert err.severity == "FATAL"
    else:
        raise AssertionError("expected PgError")


values = st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=12)


@given(values)
def test_data_row_fast_path_equals_schema(row: list[bytes | None]) -> None:
    schema = msg.BackendMessage.build({"tag": b"D", "body": {"values": [{"data": v} for v in row]}})
    assert msg.data_row(row) == schema


u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)


@given(u64, u64, i64, st.binary(max_size=64))
def test_xlog_data_fast_path_equals_schema(start: int, end: int, ts: int, payload: bytes) -> None:
    inner = msg.XLogData.build(
        {"data_start": start, "wal_end": end, "send_time": ts, "payload": payload}
    )
    assert msg.xlog_data(start, end, ts, payload) == msg.build_backend(b"d", data=inner)


@given(u64, i64, st.booleans())
def test_keepalive_fast_path_equals_schema(end: int, ts: int, reply: bool) -> None:
    inner = msg.PrimaryKeepalive.build(
        {"wal_end": end, "send_time": ts, "reply_requested": int(reply)}
    )
    assert msg.keepalive(end, ts, reply) == msg.build_backend(b"d", data=inner)


@given(u64, u64, u64, i64, st.booleans())
def test_standby_status_round_trip(w: int, f: int, a: int, ts: int, reply: bool) -> None:
    data = msg.standby_status(w, f, a, ts, reply)
    assert data == msg.StandbyStatusUpdate.build(
        {"write": w, "flush": f, "apply": a, "send_time": ts, "reply_requested": int(reply)}
    )
    assert msg.parse_standby_status(data) == (w, f, a, ts, reply)


def test_a_large_query_message_parses_in_linear_time() -> None:
    """A string field was read a byte at a time and joined: a 1 MiB Query took 14 s."""
    sql = "SELECT 1;" * (8 * 1024 * 1024 // 9)
    started = time.perf_counter()
    parsed = msg.parse_frontend_body(b"Q", sql.encode() + b"\0")
    assert parsed.sql == sql
    assert time.perf_counter() - started < 1.0
    with pytest.raises(PgError) as caught:
        msg.parse_frontend_body(b"Q", b"SELECT 1")  # no terminating NUL
    assert caught.value.sqlstate == "08P01"
