"""Unauthenticated peers cannot make the real server buffer large messages.

Before authentication PostgreSQL takes a password message of at most 65535 bytes and a SASL
message of at most 1024; a longer length word is refused before any of the body is read.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit

CONFIG = """
[users.app]
password = "app-pw"
[users.clear]
method = "password"
password = "clear-pw"
"""
HUGE = 60 << 20  # the length word an attacker sends: 60 MiB
SENT_PER_CONNECTION = 4 << 20


@pytest.fixture
def server(tmp_path: Path, spool: SpoolKit, pgshim: Callable[..., PgshimServer]) -> PgshimServer:
    config = tmp_path / "pgshim.toml"
    config.write_text(CONFIG)
    return pgshim(spool.path, "--config", str(config))


def startup(user: str) -> bytes:
    body = struct.pack("!I", 196608) + f"user\0{user}\0database\0reddb\0\0".encode()
    return struct.pack("!I", len(body) + 4) + body


def rss_kib(server: PgshimServer) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def authenticating(port: int, user: str) -> socket.socket:
    """A connection past its startup packet, the server's authentication request read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(startup(user))
    assert sock.recv(65536)[:1] == b"R"
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


@pytest.mark.parametrize("user", ["app", "clear"])  # a SASL exchange, a cleartext password
def test_a_huge_length_word_is_refused_before_the_body(server: PgshimServer, user: str) -> None:
    with authenticating(server.port, user) as sock:
        sock.sendall(b"p" + struct.pack("!I", HUGE) + b"n,,n=,r=")
        reply = read_to_end(sock)
    assert reply[:1] == b"E"
    assert b"SFATAL\0" in reply and b"C08P01\0" in reply
    assert b"Minvalid message length\0" in reply
    with authenticating(server.port, "app") as sock:  # and the server serves everyone else
        assert sock.fileno() >= 0


def test_partial_huge_password_messages_do_not_grow_the_server(server: PgshimServer) -> None:
    before = rss_kib(server)
    chunk = b"x" * (256 << 10)
    socks = [authenticating(server.port, "clear") for _ in range(16)]
    try:
        for sock in socks:
            sock.settimeout(1)
            try:
                sock.sendall(b"p" + struct.pack("!I", HUGE))
                for _ in range(SENT_PER_CONNECTION // len(chunk)):
                    sock.sendall(chunk)
            except OSError:
                pass  # refused and closed: what should happen
        time.sleep(0.3)
        grown = rss_kib(server) - before
    finally:
        for sock in socks:
            sock.close()
    print(f"server RSS grew by {grown} KiB")
    # 16 x 4 MiB were offered; a server that buffered them would have grown by 64 MiB
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB"
