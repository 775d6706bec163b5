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

MAX_STARTUP_PACKET_LENGTH = 10000
DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024 * 1024
_CODE = struct.Struct("!I")


class NeedData(Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA


class Phase(Enum):
    STARTUP = "startup"  # expecting an untyped packet (SSLRequest, StartupMessage, ...)
    MESSAGES = "messages"  # typed messages (authentication, queries, copy)
    CLOSED = "closed"


class ServerConnection:
    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        self.phase = Phase.STARTUP
        self.max_message_length = max_message_length
        self._buffer = ReceiveBuffer()
        self._encryption_negotiated = False
        self.eof = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

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
        self.phase = Phase.MESSAGES
        return request

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
