"""The sans-IO server side of a PostgreSQL v3 connection: bytes in, events out.

The asyncio shell feeds whatever the socket delivers to ``receive_data`` and pulls events
with ``next_event`` until it gets ``NEED_DATA``. Nothing here blocks or touches a socket.
"""

from __future__ import annotations

import struct
from enum import Enum

from pgshim.errors import PgError
from pgshim.wire import events as ev
from pgshim.wire.buffer import ReceiveBuffer
from pgshim.wire.messages import (
    CANCEL_REQUEST_CODE,
    GSSENC_REQUEST_CODE,
    SSL_REQUEST_CODE,
    CancelRequestBody,
    parse_frontend_body,
)
from pgshim.wire.startup import parse_startup

# PostgreSQL's limits before authentication: the startup packet (postmaster.c), a password or
# GSS token (PG_MAX_AUTH_TOKEN_LENGTH, auth.c) and a SASL message (PG_MAX_SASL_MESSAGE_LENGTH,
# auth-sasl.c). Each counts the length word and not the type byte, like every message length.
MAX_STARTUP_PACKET_LENGTH = 10000
PG_MAX_AUTH_TOKEN_LENGTH = 65535
PG_MAX_SASL_MESSAGE_LENGTH = 1024
DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024
_CODE = struct.Struct("!I")


class NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA


class Phase(Enum):
    STARTUP = "startup"  # expecting an untyped packet (SSLRequest, StartupMessage, ...)
    AUTHENTICATION = "authentication"  # after the StartupMessage: only 'p' messages, small
    MESSAGES = "messages"  # typed messages once authenticated (queries, copy)
    CLOSED = "closed"


class ServerConnection:
    """Before `authenticated()`, every frame is held to PostgreSQL's pre-authentication limits.

    A length beyond the phase's limit is refused from the length word alone, and `receive_limit`
    tells the reader how much it may buffer at most, so an unauthenticated peer never makes the
    server hold more than one small frame.
    """

    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        self.phase = Phase.STARTUP
        self.max_message_length = max_message_length
        self._buffer = ReceiveBuffer()
        self._encryption_negotiated = False
        # what the awaited 'p' message is called in PostgreSQL's errors, and its length limit
        self._auth_response = "password"
        self._auth_limit = PG_MAX_AUTH_TOKEN_LENGTH
        self.eof = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def receive_limit(self) -> int | None:
        """The most unparsed bytes worth holding in this phase; None once authenticated.

        A complete frame of the phase always fits, so a reader that stops at this limit never
        waits for bytes it refused to read.
        """
        if self.phase is Phase.STARTUP:
            return MAX_STARTUP_PACKET_LENGTH
        if self.phase is Phase.AUTHENTICATION:
            return 1 + self._auth_limit
        if self.phase is Phase.CLOSED:
            return 0
        return None

    def expect_sasl(self) -> None:
        """The exchange is SASL: its messages are smaller, and PostgreSQL names them so."""
        self._auth_response = "SASL"
        self._auth_limit = PG_MAX_SASL_MESSAGE_LENGTH

    def authenticated(self) -> None:
        """Authentication succeeded: from now on messages up to `max_message_length`."""
        if self.phase is Phase.AUTHENTICATION:
            self.phase = Phase.MESSAGES

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; b"" means the peer closed its side."""
        if data:
            self._buffer.feed(data)
        else:
            self.eof = True

    def take_unread(self) -> bytes:
        """Bytes already received but not parsed (must be empty before a TLS handshake)."""
        return self._buffer.take_rest()

    def next_event(self) -> ev.StartupEvent | ev.FrontendEvent | NeedData:
        """The next event, or NEED_DATA. Raises PgError (FATAL) on a protocol violation."""
        if self.phase is Phase.CLOSED:
            return NEED_DATA
        try:
            if self.phase is Phase.STARTUP:
                return self._next_startup_event()
            if self.phase is Phase.AUTHENTICATION:
                return self._next_auth_event()
            return self._next_message_event()
        except PgError as err:
            if err.severity == "FATAL":
                self.phase = Phase.CLOSED
            raise

    def _next_startup_event(self) -> ev.StartupEvent | NeedData:
        packet = self._buffer.next_startup_packet(MAX_STARTUP_PACKET_LENGTH)
        if packet is None:
            return NEED_DATA
        (code,) = _CODE.unpack_from(packet)
        payload = packet[4:]
        if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
            if payload or self._encryption_negotiated:
                raise PgError("08P01", "invalid length of startup packet", severity="FATAL")
            self._encryption_negotiated = True
            return ev.SSLRequest() if code == SSL_REQUEST_CODE else ev.GSSENCRequest()
        if code == CANCEL_REQUEST_CODE:
            if len(payload) != CancelRequestBody.sizeof():
                raise PgError("08P01", "invalid length of startup packet", severity="FATAL")
            body = CancelRequestBody.parse(payload)
            self.phase = Phase.CLOSED
            return ev.CancelRequest(pid=body.pid, secret=body.secret)
        request = parse_startup(code, payload)
        self.phase = Phase.AUTHENTICATION
        return request

    def _next_auth_event(self) -> ev.FrontendEvent | NeedData:
        # PostgreSQL reads the type byte first and refuses anything but 'p' at once
        # (recv_password_packet, CheckSASLAuth), then the length word against its limit
        # (pq_getmessage), so neither a wrong type nor a huge length waits for a body.
        tag = self._buffer.first_byte()
        if tag is None:
            return NEED_DATA
        if tag != ord("p"):
            raise PgError(
                "08P01",
                f"expected {self._auth_response} response, got message type {tag}",
                severity="FATAL",
            )
        message = self._buffer.next_message(self._auth_limit, "invalid message length")
        if message is None:
            return NEED_DATA
        tag_bytes, body = message
        return _to_event(tag_bytes, parse_frontend_body(tag_bytes, body))

    def _next_message_event(self) -> ev.FrontendEvent | NeedData:
        message = self._buffer.next_message(self.max_message_length)
        if message is None:
            return NEED_DATA
        tag, body = message
        return _to_event(tag, parse_frontend_body(tag, body))


def _to_event(tag: bytes, body) -> ev.FrontendEvent:  # noqa: ANN001 - construct Container
    match tag:
        case b"Q":
            return ev.Query(body.sql)
        case b"P":
            return ev.Parse(body.name, body.sql, tuple(body.param_oids))
        case b"B":
            return ev.Bind(
                body.portal,
                body.statement,
                tuple(body.param_formats),
                tuple(p.data for p in body.params),
                tuple(body.result_formats),
            )
        case b"D" | b"C":
            kind = body.kind.decode("latin-1")
            if kind not in ("S", "P"):
                what = "DESCRIBE" if tag == b"D" else "CLOSE"
                raise PgError("08P01", f"invalid {what} message subtype {ord(kind)}")
            return ev.Describe(kind, body.name) if tag == b"D" else ev.Close(kind, body.name)
        case b"E":
            return ev.Execute(body.portal, body.max_rows)
        case b"S":
            return ev.Sync()
        case b"H":
            return ev.Flush()
        case b"X":
            return ev.Terminate()
        case b"d":
            return ev.CopyData(body.data)
        case b"c":
            return ev.CopyDone()
        case b"f":
            return ev.CopyFail(body.message)
        case b"p":
            return ev.PasswordMessage(body.data)
        case _:
            return ev.FunctionCall(body.data)
