"""Connections that have not authenticated cannot lock others out.

Idle sockets make room for newcomers (the oldest one without a startup packet goes), the startup
packet has a short deadline of its own, and one client address holds at most
`max_unauthenticated_per_address` of the unauthenticated slots.
"""

from __future__ import annotations

import socket
import struct
import time

import psycopg
import pytest
from wire_fixtures import running_server

from pgshim.config import Config, ConfigError, UserConfig, from_mapping

USERS = {"app": UserConfig(password="pw", replication=True)}


def startup(user: str = "app", **extra: str) -> bytes:
    params = {"user": user, "database": "reddb", **extra}
    body = struct.pack("!I", 196608)
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def connect_from(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def stalled_in_scram(port: int, source: str = "127.0.0.1") -> socket.socket:
    """Past its startup packet, never answering the SASL request."""
    sock = connect_from(port, source)
    sock.sendall(startup())
    assert sock.recv(65536)[:1] == b"R"
    return sock


def closed_with(sock: socket.socket, timeout: float = 2.0) -> bytes | None:
    """What the server sent before closing `sock`; None if it is still open after `timeout`."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def dsn(port: int, **extra: str) -> str:
    parts = [f"host=127.0.0.1 port={port} user=app password=pw dbname=reddb connect_timeout=5"]
    return " ".join(parts + [f"{k}={v}" for k, v in extra.items()])


def login_seconds(port: int, **extra: str) -> float:
    started = time.monotonic()
    with psycopg.connect(dsn(port, **extra)) as conn:
        if not extra:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    return time.monotonic() - started


def test_an_idle_flood_does_not_lock_out_a_real_client() -> None:
    config = Config(port=0, users=USERS, auth_timeout=60)
    with running_server(config) as srv:
        idle = [connect_from(srv.port) for _ in range(config.max_unauthenticated)]
        try:
            time.sleep(0.2)
            assert login_seconds(srv.port) < 1.0
            assert login_seconds(srv.port, replication="database") < 1.0
            # the room was made by the oldest idle sockets, told so like a turned-away client
            reply = closed_with(idle[0])
            assert reply is not None and reply[:1] == b"E" and b"C53300\0" in reply
            # a flood that keeps coming: each newcomer pushes out an older idle socket
            idle += [connect_from(srv.port) for _ in range(2 * config.max_unauthenticated)]
            time.sleep(0.2)
            assert login_seconds(srv.port) < 1.0
        finally:
            for sock in idle:
                sock.close()


def test_a_client_past_its_startup_packet_is_not_evicted() -> None:
    with running_server(Config(port=0, users=USERS, max_unauthenticated=2)) as srv:
        stalled = stalled_in_scram(srv.port)
        idle = connect_from(srv.port)
        try:
            time.sleep(0.1)
            assert login_seconds(srv.port) < 1.0  # the idle one made room
            assert closed_with(idle) is not None
            assert closed_with(stalled, 0.3) is None  # still in its exchange
        finally:
            stalled.close()
            idle.close()


def test_startup_packet_deadline_is_shorter_than_the_auth_timeout() -> None:
    config = Config(port=0, users=USERS, startup_timeout=0.3, auth_timeout=30)
    with running_server(config) as srv:
        idle = connect_from(srv.port)
        stalled = stalled_in_scram(srv.port)
        started = time.monotonic()
        try:
            assert closed_with(idle) == b""  # closed without a word, like PostgreSQL's timeout
            assert time.monotonic() - started < 1.5
            assert closed_with(stalled, 0.5) is None  # auth_timeout governs the exchange
            # a trickled startup packet counts as not sent
            trickle = connect_from(srv.port)
            try:
                for byte in startup()[:-1]:
                    trickle.sendall(bytes([byte]))
                    time.sleep(0.02)
                pytest.fail("a trickled startup packet outlived startup_timeout")
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                trickle.close()
        finally:
            idle.close()
            stalled.close()


def test_one_address_holds_at_most_its_share() -> None:
    config = Config(port=0, users=USERS, max_unauthenticated=8, max_unauthenticated_per_address=2)
    with running_server(config) as srv:
        other = "127.0.0.2"  # another client address on the loopback interface
        try:
            socket.create_connection((other, 1), timeout=0.2).close()
        except ConnectionRefusedError:
            pass
        except OSError:
            pytest.skip("127.0.0.2 is not usable as a source address here")
        held = [stalled_in_scram(srv.port, other), stalled_in_scram(srv.port, other)]
        try:
            # its share is taken by exchanges in progress: the third gets 53300 after its
            # startup packet
            third = connect_from(srv.port, other)
            third.sendall(startup())
            reply = closed_with(third)
            assert reply is not None and reply[:1] == b"E" and b"C53300\0" in reply
            third.close()
            # everyone else still gets in
            assert login_seconds(srv.port) < 1.0
            # an idle socket of that address makes room for the same address's newcomer
            held[1].close()
            time.sleep(0.1)
            idle = connect_from(srv.port, other)
            time.sleep(0.1)
            newcomer = connect_from(srv.port, other)
            newcomer.sendall(startup())
            assert newcomer.recv(65536)[:1] == b"R"
            assert closed_with(idle) is not None
            held += [idle, newcomer]
        finally:
            for sock in held:
                sock.close()


def test_new_settings_are_validated() -> None:
    assert Config().startup_timeout == 10.0
    assert Config().max_unauthenticated_per_address == 32
    config = from_mapping({"startup_timeout": "2.5", "max_unauthenticated_per_address": "4"})
    assert (config.startup_timeout, config.max_unauthenticated_per_address) == (2.5, 4)
    for key, value in (("startup_timeout", 0), ("max_unauthenticated_per_address", 0)):
        with pytest.raises(ConfigError) as err:
            from_mapping({key: value})
        assert err.value.key == key
