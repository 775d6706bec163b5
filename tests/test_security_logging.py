"""Passwords and SCRAM secrets never reach the log or the process output, even at DEBUG, through
successful and failed logins of every method, replication logins and malformed exchanges."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit

from pgshim.wire import messages as msg
from pgshim.wire.auth import ScramSecret, md5_hash

pytestmark = pytest.mark.timeout(180)

PASSWORDS = {
    "scram": "Scr4m-horse-battery",
    "hashed": "Md5-staple-correct",
    "clear": "Cl34r-text-secret",
    "rep": "R3pl-slot-key",
}
STORED_PASSWORD = "St0red-secret-only"
STORED = ScramSecret.from_password(STORED_PASSWORD)


def config_file(path: Path) -> Path:
    path.write_text(
        f"""
[users.scram]
password = "{PASSWORDS["scram"]}"
[users.hashed]
method = "md5"
password = "{PASSWORDS["hashed"]}"
[users.clear]
method = "password"
password = "{PASSWORDS["clear"]}"
[users.rep]
password = "{PASSWORDS["rep"]}"
replication = true
[users.stored]
secret = "{STORED.format()}"
"""
    )
    return path


def secrets_to_find() -> list[str]:
    found = [*PASSWORDS.values(), STORED_PASSWORD, STORED.format()]
    found += [md5_hash(password, user) for user, password in PASSWORDS.items()]
    found += [base64.b64encode(part).decode() for part in (STORED.stored_key, STORED.server_key)]
    found += [password.encode().hex() for password in PASSWORDS.values()]
    return found


def startup_packet(**params: str) -> bytes:
    payload = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return msg.StartupPacket.build({"code": 196608, "payload": payload})


def raw_login(port: int, user: str, *messages: bytes) -> bytes:
    """Startup, then the given frontend messages regardless of what the server asks."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(startup_packet(user=user, database="reddb"))
        sock.recv(65536)
        for message in messages:
            try:
                sock.sendall(message)
            except OSError:
                break
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def password_message(data: bytes) -> bytes:
    return msg.build_frontend(b"p", data=data)


def test_no_password_or_secret_in_debug_output(spool: SpoolKit, tmp_path: Path) -> None:
    spool.insert("users", name="ann")
    config = config_file(tmp_path / "pgshim.toml")
    server = PgshimServer(
        spool.path, tmp_path / "state", args=("--config", str(config), "--log-level", "DEBUG")
    ).start()
    try:
        dsn = f"host=127.0.0.1 port={server.port} dbname=reddb connect_timeout=10"
        logins = [*PASSWORDS.items(), ("stored", STORED_PASSWORD)]
        for user, password in logins:
            with psycopg.connect(f"{dsn} user={user} password={password}") as conn:
                assert conn.execute("SELECT current_user").fetchone() == (user,)
            # a wrong password that differs from the right one in its last character only
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(f"{dsn} user={user} password={password[:-1]}X")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"{dsn} user=nobody password={PASSWORDS['scram']}")
        # replication logins through pg_recvlogical, and one refused for want of the attribute
        env = {**server.env_for_clients(), "PGUSER": "rep", "PGPASSWORD": PASSWORDS["rep"]}
        created = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", "s1", "--create-slot", "-P", "test_decoding"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        env.update(PGUSER="clear", PGPASSWORD=PASSWORDS["clear"])
        refused = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", "s2", "--create-slot", "-P", "test_decoding"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert "permission denied to start WAL sender" in refused.stderr
        # malformed exchanges that carry a password where the server expects something else
        scram_reply = raw_login(
            server.port, "scram", password_message(PASSWORDS["scram"].encode() + b"\0")
        )
        assert b"E" in scram_reply and b"SFATAL\0" in scram_reply
        md5_reply = raw_login(
            server.port, "hashed", password_message(PASSWORDS["hashed"].encode() + b"\0")
        )
        assert b"C28P01\0" in md5_reply
        first = b"n,,n=,r=" + b"A" * 24
        sasl = raw_login(
            server.port,
            "scram",
            password_message(b"SCRAM-SHA-256\0" + len(first).to_bytes(4, "big") + first),
            password_message(f"c=biws,r=x,p={PASSWORDS['scram']}".encode()),
        )
        assert b"SFATAL\0" in sasl
        checked = subprocess.run(
            [*server_cmd_prefix(), "check-config", str(config)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
    finally:
        server.stop()
    output = server.log() + checked.stdout + checked.stderr
    assert "DEBUG" in output  # the log really was at DEBUG level
    assert 'password authentication failed for user "scram"' in output  # failures are logged
    for secret in secrets_to_find():
        assert secret not in output, f"a secret reached the output: {secret[:3]}..."
    assert not re.search(r"SCRAM-SHA-256\$\d+:", output)
    assert not re.search(r"\bmd5[0-9a-f]{32}\b", output)


def server_cmd_prefix() -> list[str]:
    import sys

    return [sys.executable, "-m", "pgshim"]
