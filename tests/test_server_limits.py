"""Malformed input, size limits, connection limits and the auth timeout over real sockets."""

from __future__ import annotations

import socket
import struct
import time

import psycopg
import pytest
from wire_fixtures import running_server

from pgshim.config import Config


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def startup(user: str = "postgres", database: str = "reddb") -> bytes:
    body = struct.pack("!I", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!I", len(body) + 4) + body


def still_serving(port: int) -> bool:
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=reddb") as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture(scope="module")
def server():
    with running_server(Config(port=0, max_message_size=1024 * 1024)) as srv:
        yield srv


def test_garbage_first_bytes_get_an_error_and_close(server) -> None:
    reply = raw_exchange(server.port, b"\x00\x00\x00\x10GARBAGE-GARBAGE")
    assert reply.startswith(b"E")
    assert b"C0A000\x00" in reply  # "unsupported frontend protocol"
    assert still_serving(server.port)


def test_oversized_startup_packet(server) -> None:
    reply = raw_exchange(server.port, struct.pack("!I", 20000) + b"x" * 100)
    assert b"C08P01\x00" in reply
    assert b"invalid length of startup packet" in reply
    assert still_serving(server.port)


def test_oversized_message_after_startup(server) -> None:
    reply = raw_exchange(server.port, startup() + b"Q" + struct.pack("!I", 0x7FFFFFFF))
    assert reply.startswith(b"R\x00\x00\x00\x08\x00\x00\x00\x00")  # authenticated first
    assert b"C08P01\x00" in reply
    assert still_serving(server.port)


def test_unknown_message_type(server) -> None:
    reply = raw_exchange(server.port, startup() + b"\x07\x00\x00\x00\x04")
    after_ready = reply.split(b"Z\x00\x00\x00\x05I", 1)[1]
    assert after_ready.startswith(b"E") and b"C08P01\x00" in after_ready  # then closed
    assert still_serving(server.port)


def test_wrong_database_is_3d000(server) -> None:
    reply = raw_exchange(server.port, startup(database="nope"))
    assert b"C3D000\x00" in reply
    assert b'database "nope" does not exist' in reply


def test_protocol_negotiation_for_pq_options(server) -> None:
    body = struct.pack("!I", 196609) + b"user\0postgres\0database\0reddb\0_pq_.x\0y\0\0"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(struct.pack("!I", len(body) + 4) + body)
        time.sleep(0.2)
        reply = sock.recv(65536)
    assert reply.startswith(b"v" + struct.pack("!II", 19, 0) + struct.pack("!I", 1) + b"_pq_.x\0")


def test_too_many_clients_is_53300() -> None:
    with running_server(Config(port=0, max_connections=2)) as srv:
        dsn = f"host=127.0.0.1 port={srv.port} user=postgres dbname=reddb"
        held = [psycopg.connect(dsn), psycopg.connect(dsn)]
        try:
            with pytest.raises(psycopg.OperationalError, match="too many clients"):
                psycopg.connect(dsn)
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.1)
        assert still_serving(srv.port)


def test_auth_timeout_closes_a_silent_connection() -> None:
    with running_server(Config(port=0, auth_timeout=0.3)) as srv:
        started = time.monotonic()
        assert raw_exchange(srv.port, b"") == b""
        assert time.monotonic() - started < 4


def test_loopback_detection_for_trust() -> None:
    from pgshim.server import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1")
    assert not _is_loopback("10.1.2.3")
