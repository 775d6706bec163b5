"""Security rules: SCRAM by default, `hostssl`-style require_tls, trust only on loopback listeners,
a bound on connections still authenticating, and the auth timeout against slow handshakes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from wire_fixtures import running_server

from pgshim.config import Config, ConfigError, UserConfig, from_mapping
from pgshim.server import PgServer
from pgshim.wire import messages as msg
from pgshim.wire.auth import ScramSecret, md5_hash

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
PSQL = shutil.which("psql") or (
    os.path.join(
        subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip(),
        "psql",
    )
    if shutil.which("pg_config")
    else None
)
needs_psql = pytest.mark.skipif(PSQL is None or not os.path.exists(PSQL), reason="no psql")


def startup_packet(**params: str) -> bytes:
    payload = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return msg.StartupPacket.build({"code": 196608, "payload": payload})


def first_reply(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and return the first backend message."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while len(received) < 5 or len(received) < 1 + int.from_bytes(received[1:5], "big"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def auth_request(reply: bytes) -> tuple[int, object]:
    assert reply[:1] == b"R", reply
    parsed = msg.AuthenticationBody.parse(reply[5 : 1 + int.from_bytes(reply[1:5], "big")])
    return parsed.code, parsed.payload


def dsn(port: int, user: str = "postgres", **extra: str) -> str:
    parts = [f"host=127.0.0.1 port={port} user={user} dbname=reddb connect_timeout=10"]
    return " ".join(parts + [f"{k}={v}" for k, v in extra.items()])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


# ---------------------------------------------------------------- methods


def test_new_users_default_to_scram_sha_256() -> None:
    assert UserConfig().method == "scram-sha-256"
    config = from_mapping({"users": {"alice": {"password": "pw"}}})
    assert config.users["alice"].method == "scram-sha-256"


def test_each_method_asks_for_its_own_exchange() -> None:
    users = {
        "default": UserConfig(password="a"),
        "hashed": UserConfig(method="md5", password="b"),
        "clear": UserConfig(method="password", password="c"),
    }
    with running_server(Config(port=0, users=users)) as srv:
        code, mechanisms = auth_request(first_reply(srv.port, startup_packet(user="default")))
        assert (code, list(mechanisms)) == (msg.AUTH_SASL, ["SCRAM-SHA-256", ""])
        code, salt = auth_request(first_reply(srv.port, startup_packet(user="hashed")))
        assert code == msg.AUTH_MD5 and len(salt) == 4
        code, _ = auth_request(first_reply(srv.port, startup_packet(user="clear")))
        assert code == msg.AUTH_CLEARTEXT
        # an unknown user is offered SCRAM like everyone else (and fails at the proof)
        code, _ = auth_request(first_reply(srv.port, startup_packet(user="stranger")))
        assert code == msg.AUTH_SASL


def test_an_md5_hash_cannot_back_a_scram_user() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"users": {"bob": {"secret": md5_hash("pw", "bob")}}})
    assert err.value.key == "users.bob.secret"
    # md5 with a stored SCRAM secret is fine: PostgreSQL then runs SCRAM
    secret = ScramSecret.from_password("pw").format()
    assert from_mapping({"users": {"bob": {"method": "md5", "secret": secret}}})


# ---------------------------------------------------------------- hostssl-style rules


def test_require_tls_needs_a_certificate() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"require_tls": True})
    assert err.value.key == "require_tls"
    with pytest.raises(ConfigError) as err:
        from_mapping({"users": {"u": {"password": "p", "require_tls": True}}})
    assert err.value.key == "users.u.require_tls"


@needs_openssl
def test_global_require_tls_refuses_plain_connections(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    config = Config(port=0, tls_cert=str(cert), tls_key=str(key), require_tls=True)
    with running_server(config) as srv:
        with pytest.raises(psycopg.OperationalError) as err:
            psycopg.connect(dsn(srv.port, sslmode="disable"))
        assert (
            'no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "reddb", '
            "no encryption" in str(err.value)
        )
        raw = first_reply(srv.port, startup_packet(user="postgres", database="reddb"))
        assert raw[:1] == b"E" and b"SFATAL\0" in raw and b"C28000\0" in raw
        # physical replication connections get PostgreSQL's other wording
        raw = first_reply(srv.port, startup_packet(user="rep", replication="true"))
        assert (
            b'no pg_hba.conf entry for replication connection from host "127.0.0.1", '
            b'user "rep", no encryption' in raw
        )
        with psycopg.connect(dsn(srv.port, sslmode="require")) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT 1").fetchone() == (1,)


@needs_openssl
def test_per_user_require_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    users = {
        "secure": UserConfig(password="s-pw", require_tls=True),
        "relaxed": UserConfig(password="r-pw"),
    }
    config = Config(port=0, tls_cert=str(cert), tls_key=str(key), users=users)
    with running_server(config) as srv:
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            psycopg.connect(dsn(srv.port, "secure", password="s-pw", sslmode="disable"))
        with psycopg.connect(dsn(srv.port, "secure", password="s-pw", sslmode="require")) as c:
            assert c.execute("SELECT current_user").fetchone() == ("secure",)
        with psycopg.connect(dsn(srv.port, "relaxed", password="r-pw", sslmode="disable")) as c:
            assert not c.pgconn.ssl_in_use


@needs_openssl
@needs_psql
def test_psql_verify_full_against_require_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    users = {"secure": UserConfig(password="s-pw", require_tls=True)}
    config = Config(port=0, tls_cert=str(cert), tls_key=str(key), users=users)
    env = {**os.environ, "PGPASSWORD": "s-pw", "PGCONNECT_TIMEOUT": "10"}
    with running_server(config) as srv:
        for host in ("localhost", "127.0.0.1"):
            conninfo = dsn(srv.port, "secure", sslmode="verify-full", sslrootcert=str(cert))
            out = subprocess.run(
                [PSQL, "-X", "-At", conninfo.replace("127.0.0.1", host), "-c", "SELECT 7"],
                capture_output=True, text=True, timeout=30, env=env,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == "7"
        # a certificate the client does not trust: verify-full refuses before any password
        other = tmp_path / "other"
        other.mkdir()
        other_cert, _ = make_certificate(other)
        conninfo = dsn(srv.port, "secure", sslmode="verify-full", sslrootcert=str(other_cert))
        out = subprocess.run(
            [PSQL, "-X", "-At", conninfo, "-c", "SELECT 7"],
            capture_output=True, text=True, timeout=30, env=env,
        )  # fmt: skip
        assert out.returncode != 0
        assert "certificate verify failed" in out.stderr


# ---------------------------------------------------------------- trust and the listener


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "db.example.com"])
def test_trust_on_a_non_loopback_listener_is_refused(host: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"host": host})  # no [users]: everyone would be trusted
    assert err.value.key == "host" and "allow_trust_remote" in err.value.reason
    with pytest.raises(ConfigError, match="users ops use trust"):
        from_mapping(
            {"host": host, "users": {"ops": {"method": "trust"}, "app": {"password": "x"}}}
        )
    # passwords for everyone, or an explicit force, are accepted
    assert from_mapping({"host": host, "users": {"app": {"password": "x"}}}).host == host
    assert from_mapping({"host": host, "allow_trust_remote": True}).allow_trust_remote


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_trust_on_a_loopback_listener_is_fine(host: str) -> None:
    assert from_mapping({"host": host}).host == host


def test_server_built_in_code_refuses_to_listen_with_remote_trust() -> None:
    async def start() -> None:
        server = PgServer(Config(host="0.0.0.0", port=0), lambda info: None)
        await server.start()  # must raise before binding anything

    with pytest.raises(ConfigError) as err:
        asyncio.run(start())
    assert err.value.key == "host"


# ---------------------------------------------------------------- unauthenticated connections


def stalled_in_scram(port: int) -> socket.socket:
    """A connection past its startup packet that never answers the SASL request."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(startup_packet(user="app", database="reddb"))
    assert sock.recv(65536)[:1] == b"R"
    return sock


def test_connections_still_authenticating_are_bounded() -> None:
    users = {"app": UserConfig(password="pw")}
    with running_server(Config(port=0, users=users, max_unauthenticated=2)) as srv:
        idle = [stalled_in_scram(srv.port) for _ in range(2)]
        try:
            # over the limit, and none of them is idle before its startup packet (those make
            # room, see test_preauth_admission): the client finishes its startup packet, then
            # gets 53300
            with pytest.raises(psycopg.OperationalError, match="too many clients"):
                psycopg.connect(dsn(srv.port, "app", password="pw"))
            reply = first_reply(srv.port, startup_packet(user="app", database="reddb"))
            assert reply[:1] == b"E" and b"C53300\0" in reply
            # as many again being turned away: the next one is closed before it says anything
            idle += [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(2)]
            time.sleep(0.2)
            reply = first_reply(srv.port, b"")
            assert reply[:1] == b"E" and b"C53300\0" in reply
            assert b"sorry, too many clients already" in reply
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        # authenticated sessions do not count against the limit
        held = [psycopg.connect(dsn(srv.port, "app", password="pw")) for _ in range(4)]
        try:
            for conn in held:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            for conn in held:
                conn.close()


def test_max_unauthenticated_must_be_positive() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"max_unauthenticated": 0})
    assert err.value.key == "max_unauthenticated"


# ---------------------------------------------------------------- slow handshakes


def test_auth_timeout_ends_a_trickled_startup_packet() -> None:
    with running_server(Config(port=0, auth_timeout=0.5)) as srv:
        packet = startup_packet(user="postgres", database="reddb", application_name="x" * 200)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            started = time.monotonic()
            try:
                for byte in packet:  # always talking, never finishing
                    sock.sendall(bytes([byte]))
                    time.sleep(0.02)
                pytest.fail("the server kept a trickling handshake open")
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert time.monotonic() - started < 3


def test_auth_timeout_ends_a_stalled_scram_exchange() -> None:
    users = {"app": UserConfig(password="pw")}
    with running_server(Config(port=0, users=users, auth_timeout=0.5)) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(startup_packet(user="app", database="reddb"))
            received = b""
            while chunk := sock.recv(65536):  # SASL request, then nothing more from us
                received += chunk
            elapsed = time.monotonic() - started
        assert auth_request(received)[0] == msg.AUTH_SASL
        assert 0.4 < elapsed < 3
