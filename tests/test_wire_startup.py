"""The startup machine: SSLRequest, cancel, protocol versions, replication values, garbage."""

from __future__ import annotations

import struct

import pytest

from pgshim.errors import PgError
from pgshim.wire import events as ev
from pgshim.wire.connection import NEED_DATA, Phase, ServerConnection
from pgshim.wire.messages import build_frontend
from pgshim.wire.startup import parse_bool, parse_options, replication_mode


def startup(params: dict[str, str], version: int = 196608) -> bytes:
    body = struct.pack("!I", version)
    for name, value in params.items():
        body += name.encode() + b"\x00" + value.encode() + b"\x00"
    body += b"\x00"
    return struct.pack("!I", len(body) + 4) + body


SSL_REQUEST = struct.pack("!II", 8, 80877103)


def events_of(data: bytes) -> list:
    conn = ServerConnection()
    conn.receive_data(data)
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_ssl_request_then_startup_on_the_same_socket() -> None:
    # psql-status.txt: "StartupMessage len=61 protocol=3.0 params={user, database, application_name}"
    packet = startup({"user": "postgres", "database": "testdb", "application_name": "psql"})
    assert len(packet) == 61
    got = events_of(SSL_REQUEST + packet)
    assert got[0] == ev.SSLRequest()
    request = got[1]
    assert isinstance(request, ev.StartupRequest)
    assert (request.user, request.database, request.application_name) == (
        "postgres",
        "testdb",
        "psql",
    )
    assert request.replication == "false"


def test_startup_split_byte_by_byte() -> None:
    data = SSL_REQUEST + startup({"user": "u"}) + build_frontend(b"Q", sql="SELECT 1")
    conn = ServerConnection()
    got = []
    for byte in data:
        conn.receive_data(bytes([byte]))
        while (event := conn.next_event()) is not NEED_DATA:
            got.append(event)
            if isinstance(event, ev.StartupRequest):
                conn.authenticated()  # as the server does once the exchange succeeded
    assert [type(e) for e in got] == [ev.SSLRequest, ev.StartupRequest, ev.Query]
    assert got[1].database == "u"  # database defaults to the user name


def test_cancel_request_closes_the_machine() -> None:
    conn = ServerConnection()
    conn.receive_data(struct.pack("!IIii", 16, 80877102, 4242, -5))
    assert conn.next_event() == ev.CancelRequest(4242, -5)
    assert conn.phase is Phase.CLOSED


def test_gssenc_request() -> None:
    assert events_of(struct.pack("!II", 8, 80877104)) == [ev.GSSENCRequest()]


def test_protocol_2_is_refused() -> None:
    with pytest.raises(PgError) as err:
        events_of(startup({"user": "u"}, version=2 << 16))
    assert err.value.sqlstate == "0A000"
    assert "unsupported frontend protocol 2.0" in err.value.message
    assert err.value.severity == "FATAL"


def test_newer_minor_and_pq_options_are_negotiated() -> None:
    (request,) = events_of(startup({"user": "u", "_pq_.compression": "on"}, version=196610))
    assert request.protocol_minor == 2
    assert request.unrecognized == ("_pq_.compression",)
    assert "_pq_.compression" not in request.params


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("database", "database"),
        ("true", "true"),
        ("on", "true"),
        ("yes", "true"),
        ("1", "true"),
        ("t", "true"),
        ("false", "false"),
        ("of", "false"),
        ("n", "false"),
        ("0", "false"),
        (None, "false"),
    ],
)
def test_replication_values(value: str | None, mode: str) -> None:
    assert replication_mode(value) == mode


def test_bad_replication_value_is_fatal_22023() -> None:
    with pytest.raises(PgError) as err:
        events_of(startup({"user": "u", "replication": "x"}))
    assert err.value.sqlstate == "22023"
    assert err.value.message == 'invalid value for parameter "replication": "x"'


def test_parse_bool_rejects_ambiguous_and_junk() -> None:
    assert parse_bool("o") is None
    assert parse_bool("maybe") is None
    assert parse_bool("TRUE") is True


def test_options_parameter_is_parsed_loosely() -> None:
    # The PG15 subscriber sends a leading space and several -c settings.
    options = " -c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3"
    assert parse_options(options) == {
        "datestyle": "ISO",
        "intervalstyle": "postgres",
        "extra_float_digits": "3",
    }
    assert parse_options("--search-path=a\\ b -cwork_mem=64kB") == {
        "search_path": "a b",
        "work_mem": "64kB",
    }


def test_oversized_startup_packet() -> None:
    with pytest.raises(PgError) as err:
        events_of(struct.pack("!II", 10001, 196608) + b"x" * 20)
    assert (err.value.sqlstate, err.value.message) == ("08P01", "invalid length of startup packet")


def test_garbage_first_bytes() -> None:
    with pytest.raises(PgError) as err:
        events_of(b"GET / HTTP/1.1\r\n\r\n")
    assert err.value.sqlstate in ("08P01", "0A000")


def test_missing_user_is_28000() -> None:
    with pytest.raises(PgError) as err:
        events_of(startup({"database": "x"}))
    assert err.value.sqlstate == "28000"


def test_unknown_message_type_after_startup() -> None:
    conn = ServerConnection()
    conn.receive_data(startup({"user": "u"}) + b"\x01\x00\x00\x00\x04")
    assert isinstance(conn.next_event(), ev.StartupRequest)
    with pytest.raises(PgError) as err:
        conn.next_event()
    assert err.value.sqlstate == "08P01"
    assert conn.phase is Phase.CLOSED


def test_extended_messages_become_events() -> None:
    conn = ServerConnection()
    conn.receive_data(
        startup({"user": "u"})
        + build_frontend(b"P", name="s1", sql="SELECT $1", param_oids=[23])
        + build_frontend(b"D", kind=b"S", name="s1")
        + build_frontend(b"E", portal="", max_rows=1)
        + build_frontend(b"H")
    )
    conn.next_event()
    conn.authenticated()
    assert conn.next_event() == ev.Parse("s1", "SELECT $1", (23,))
    assert conn.next_event() == ev.Describe("S", "s1")
    assert conn.next_event() == ev.Execute("", 1)
    assert conn.next_event() == ev.Flush()
    assert conn.next_event() is NEED_DATA
