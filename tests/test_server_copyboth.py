"""The CopyBoth hand-off: a stream owns the connection, then the session goes on."""

from __future__ import annotations

import socket
import struct

from wire_fixtures import running_server

from pgshim.wire import messages as msg


def startup_replication() -> bytes:
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0reddb\0replication\0database\0\0"
    return struct.pack("!I", len(body) + 4) + body


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

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
            message = self.message()
            seen.append(message)
            if message[0] == tag:
                return seen


def test_copy_both_stream_then_copy_done_then_next_query() -> None:
    with running_server() as srv, socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.settimeout(5)
        reader = Reader(sock)
        sock.sendall(startup_replication())
        reader.until(b"Z")
        sock.sendall(msg.build_frontend(b"Q", sql="START_REPLICATION 500"))
        assert reader.message() == (b"W", b"\x00\x00\x00")
        for n in range(500):
            tag, body = reader.message()
            assert tag == b"d"
            assert msg.XLogData.parse(body).payload == f"change {n}".encode()
        status = msg.standby_status(0, 0x1234, 0, 0, False)
        sock.sendall(msg.build_frontend(b"d", data=status) + msg.build_frontend(b"c"))
        tag, body = reader.message()
        assert msg.PrimaryKeepalive.parse(body).wal_end == 0x1234
        rest = reader.until(b"Z")
        assert [m[0] for m in rest] == [b"c", b"C", b"C", b"Z"]
        assert rest[1][1] == b"COPY 0\x00" and rest[2][1] == b"START_REPLICATION\x00"
        sock.sendall(msg.build_frontend(b"Q", sql="SELECT 8"))
        replies = reader.until(b"Z")
        assert (b"D", b"\x00\x01\x00\x00\x00\x018") in replies


def test_extended_protocol_refused_on_replication_connection() -> None:
    with running_server() as srv, socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.settimeout(5)
        reader = Reader(sock)
        sock.sendall(startup_replication())
        reader.until(b"Z")
        sock.sendall(
            msg.build_frontend(b"P", name="", sql="SELECT 1", param_oids=[])
            + msg.build_frontend(b"B", portal="", statement="", param_formats=[], params=[],
                                 result_formats=[])
            + msg.build_frontend(b"E", portal="", max_rows=0)
            + msg.build_frontend(b"S")
        )  # fmt: skip
        replies = reader.until(b"Z")
        assert [m[0] for m in replies] == [b"E", b"Z"]  # one error, the rest skipped to Sync
        assert b"extended query protocol not supported in a replication connection" in replies[0][1]
