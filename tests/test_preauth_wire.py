"""Size limits before authentication in the sans-IO connection and the channel's reads.

PostgreSQL caps the startup packet at 10000 bytes (MAX_STARTUP_PACKET_LENGTH), a password message
at 65535 (PG_MAX_AUTH_TOKEN_LENGTH) and a SASL message at 1024 (PG_MAX_SASL_MESSAGE_LENGTH), and
decides from the type byte and the length word, before any body arrives.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from pgshim.errors import PgError
from pgshim.server import READ_CHUNK, Channel
from pgshim.wire import events as ev
from pgshim.wire import messages as msg
from pgshim.wire.connection import (
    MAX_STARTUP_PACKET_LENGTH,
    NEED_DATA,
    PG_MAX_AUTH_TOKEN_LENGTH,
    PG_MAX_SASL_MESSAGE_LENGTH,
    Phase,
    ServerConnection,
)


def startup(**params: str) -> bytes:
    body = struct.pack("!I", 196608)
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def fatal(sqlstate: str, message: str) -> bytes:
    """An ErrorResponse as PostgreSQL frames it, built by hand."""
    fields = b"SFATAL\0VFATAL\0C" + sqlstate.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def authenticating() -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(startup(user="u"))
    assert isinstance(conn.next_event(), ev.StartupRequest)
    assert conn.phase is Phase.AUTHENTICATION
    return conn


def refusal(conn: ServerConnection, data: bytes) -> bytes:
    conn.receive_data(data)
    with pytest.raises(PgError) as err:
        conn.next_event()
    assert conn.phase is Phase.CLOSED
    return msg.error_response(err.value)


def password_message(length: int) -> bytes:
    """A 'p' message whose length word is `length` (the body is a NUL-ended string)."""
    return b"p" + struct.pack("!I", length) + b"x" * (length - 5) + b"\0"


# ---------------------------------------------------------------- the startup packet


def test_startup_packet_over_10000_bytes_is_refused_from_its_length_word() -> None:
    conn = ServerConnection()
    assert refusal(conn, struct.pack("!I", MAX_STARTUP_PACKET_LENGTH + 1)) == fatal(
        "08P01", "invalid length of startup packet"
    )


def test_startup_packet_of_10000_bytes_is_taken() -> None:
    packet = startup(user="u", application_name="a" * 10000)
    packet = startup(user="u", application_name="a" * (10000 - len(packet) + 10000))
    assert len(packet) == MAX_STARTUP_PACKET_LENGTH
    conn = ServerConnection()
    conn.receive_data(packet)
    assert isinstance(conn.next_event(), ev.StartupRequest)


# ---------------------------------------------------------------- authentication messages


def test_password_message_over_the_token_limit_is_refused_from_its_header() -> None:
    conn = authenticating()
    header = b"p" + struct.pack("!I", PG_MAX_AUTH_TOKEN_LENGTH + 1)
    assert refusal(conn, header) == fatal("08P01", "invalid message length")
    # the 60 MiB the old limit let through: refused the same way, nothing of the body needed
    conn = authenticating()
    assert refusal(conn, b"p" + struct.pack("!I", 60 << 20)) == fatal(
        "08P01", "invalid message length"
    )
    conn = authenticating()
    assert refusal(conn, b"p\0\0\0\3") == fatal("08P01", "invalid message length")


def test_password_message_at_the_token_limit_is_taken() -> None:
    conn = authenticating()
    data = password_message(PG_MAX_AUTH_TOKEN_LENGTH)
    conn.receive_data(data[:-1])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(data[-1:])
    event = conn.next_event()
    assert isinstance(event, ev.PasswordMessage) and len(event.data) == PG_MAX_AUTH_TOKEN_LENGTH - 4


def test_sasl_messages_have_postgresqls_smaller_limit() -> None:
    conn = authenticating()
    conn.expect_sasl()
    assert refusal(conn, b"p" + struct.pack("!I", PG_MAX_SASL_MESSAGE_LENGTH + 1)) == fatal(
        "08P01", "invalid message length"
    )
    conn = authenticating()
    conn.expect_sasl()
    conn.receive_data(password_message(PG_MAX_SASL_MESSAGE_LENGTH))
    assert isinstance(conn.next_event(), ev.PasswordMessage)


def test_other_message_types_are_refused_at_the_type_byte() -> None:
    conn = authenticating()
    assert refusal(conn, b"Q") == fatal("08P01", "expected password response, got message type 81")
    conn = authenticating()
    conn.expect_sasl()
    assert refusal(conn, b"X") == fatal("08P01", "expected SASL response, got message type 88")


def test_after_authentication_the_configured_limit_applies() -> None:
    conn = ServerConnection(1 << 20)
    conn.receive_data(startup(user="u"))
    conn.next_event()
    conn.authenticated()
    assert conn.phase is Phase.MESSAGES and conn.receive_limit is None
    conn.receive_data(msg.build_frontend(b"d", data=b"x" * (200 << 10)))
    assert isinstance(conn.next_event(), ev.CopyData)


def test_receive_limit_per_phase() -> None:
    conn = ServerConnection()
    assert conn.receive_limit == MAX_STARTUP_PACKET_LENGTH
    conn.receive_data(startup(user="u"))
    conn.next_event()
    assert conn.receive_limit == 1 + PG_MAX_AUTH_TOKEN_LENGTH
    conn.expect_sasl()
    assert conn.receive_limit == 1 + PG_MAX_SASL_MESSAGE_LENGTH
    conn.authenticated()
    assert conn.receive_limit is None


# ---------------------------------------------------------------- the channel's reads


class FakeTransport:
    def __init__(self) -> None:
        self.paused = False

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def read_like_a_transport(channel: Channel, transport: FakeTransport, data: bytes) -> int:
    """Feed `data` the way asyncio does for a BufferedProtocol until reading is paused; the
    number of bytes the channel took."""
    taken = 0
    while taken < len(data) and not transport.paused:
        buffer = channel.get_buffer(-1)
        n = min(len(buffer), len(data) - taken)
        buffer[:n] = data[taken : taken + n]
        channel.buffer_updated(n)
        taken += n
    return taken


def make_channel() -> tuple[Channel, FakeTransport]:
    config = SimpleNamespace(max_message_size=64 << 20)
    server = SimpleNamespace(
        config=config,
        read_scratch=memoryview(bytearray(READ_CHUNK)),
        open_session=lambda channel: object(),
    )
    channel = Channel(server)  # type: ignore[arg-type]
    transport = FakeTransport()
    channel.connection_made(transport)  # type: ignore[arg-type]
    return channel, transport


def test_channel_holds_at_most_one_startup_packet() -> None:
    channel, transport = make_channel()
    # a length word within the limit, then a flood: reading stops at the limit
    data = struct.pack("!II", MAX_STARTUP_PACKET_LENGTH, 196608) + b"\1" * (4 << 20)
    taken = read_like_a_transport(channel, transport, data)
    assert transport.paused
    assert taken == channel.conn.buffered == MAX_STARTUP_PACKET_LENGTH


def test_channel_holds_at_most_one_password_message() -> None:
    channel, transport = make_channel()
    read_like_a_transport(channel, transport, startup(user="u"))
    assert isinstance(channel.conn.next_event(), ev.StartupRequest)
    data = password_message(PG_MAX_AUTH_TOKEN_LENGTH) + b"\1" * (4 << 20)
    taken = read_like_a_transport(channel, transport, data)
    assert transport.paused and taken == 1 + PG_MAX_AUTH_TOKEN_LENGTH
    assert isinstance(channel.conn.next_event(), ev.PasswordMessage)


def test_channel_reads_freely_once_authenticated() -> None:
    channel, transport = make_channel()
    read_like_a_transport(channel, transport, startup(user="u"))
    channel.conn.next_event()
    channel.conn.authenticated()
    data = msg.build_frontend(b"d", data=b"x" * (600 << 10))
    assert read_like_a_transport(channel, transport, data) == len(data)
    assert not transport.paused
