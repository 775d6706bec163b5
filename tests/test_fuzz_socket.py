"""Mutated protocol traffic against a live pgshim while a real pg_recvlogical keeps streaming.

Every fuzz connection half-closes after sending, so a server that waits for more bytes sees EOF
and must end the session: reading its answer to the end within a few seconds proves there is no
hang. ``PGSHIM_FUZZ_CONNECTIONS`` sets the count (default: the reduced CI form).
"""

from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit
from test_fuzz_parsers import COMMAND_SEEDS, MESSAGE_SEEDS, SQL_SEEDS, STARTUP_SEEDS, mutate

from pgshim.wire import messages as msg

CONNECTIONS = int(os.environ.get("PGSHIM_FUZZ_CONNECTIONS", "300"))
PARALLEL = 8
QUIET = 0.2
pytestmark = pytest.mark.timeout(120 + CONNECTIONS // 10)


def startup(replication: str | None = None) -> bytes:
    params = {"user": "postgres", "database": "reddb", "application_name": "fuzz"}
    if replication:
        params["replication"] = replication
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!II", len(body) + 8, 196608) + body


def query(sql: str | bytes) -> bytes:
    raw = sql.encode() if isinstance(sql, str) else sql
    return b"Q" + struct.pack("!I", len(raw) + 5) + raw + b"\0"


def error_states(data: bytes) -> list[tuple[str, str]]:
    """(SQLSTATE, message) of every ErrorResponse in a backend byte stream."""
    found = []
    pos = 0
    while pos + 5 <= len(data):
        tag = data[pos : pos + 1]
        (length,) = struct.unpack_from("!I", data, pos + 1)
        body = data[pos + 5 : pos + 1 + length]
        pos += 1 + length
        if tag == b"E":
            fields = {f[:1]: f[1:].decode("utf-8", "replace") for f in body.split(b"\0") if f}
            found.append((fields.get(b"C", ""), fields.get(b"M", "")))
    return found


def exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send ``payload``, read the answers until the server goes quiet, then half-close and read
    until the server closes; not closing within ``timeout`` of EOF is a hang."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            sock.settimeout(QUIET)
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass  # quiet: it waits for more input
        except (BrokenPipeError, ConnectionResetError):
            return bytes(received)  # it refused the input and closed
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(timeout)
            while chunk := sock.recv(65536):
                received += chunk
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            assert not isinstance(exc, TimeoutError), "the server did not end a fuzz session"
    return bytes(received)


def fuzz_payload(rng: random.Random, slot: str) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return mutate(rng, rng.choice(STARTUP_SEEDS))
    if kind == 1:
        return startup() + mutate(rng, b"".join(rng.choices(MESSAGE_SEEDS, k=3)))
    if kind == 2:
        return startup() + query(mutate(rng, rng.choice(SQL_SEEDS).encode()))
    if kind == 3:
        return startup("database") + query(mutate(rng, rng.choice(COMMAND_SEEDS).encode()))
    # a streaming session that then receives mutated standby messages
    status = msg.standby_status(rng.getrandbits(64), rng.getrandbits(64), 0, 0, True)
    copy_data = msg.build_frontend(b"d", data=mutate(rng, status))
    return (
        startup("database")
        + query(f'START_REPLICATION SLOT "{slot}" LOGICAL 0/0')
        + mutate(rng, copy_data + rng.choice(MESSAGE_SEEDS))
    )


def inserts_in(path: Path) -> int:
    return path.read_text().count("INSERT") if path.exists() else 0


def test_fuzzed_connections_leave_a_streaming_client_alone(
    spool: SpoolKit, pgshim, tmp_path: Path
) -> None:
    server: PgshimServer = pgshim(spool.path)
    env = server.env_for_clients()
    for slot in ("watcher", "fuzzslot"):
        created = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", slot, "--create-slot", "-P", "test_decoding"],
            env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    out = tmp_path / "watcher.txt"
    watcher = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "watcher", "--start", "-f", str(out),
         "-F", "1", "-s", "1", "-n"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    rng = random.Random(int(os.environ.get("PGSHIM_FUZZ_SEED", "11")))
    refused: dict[str, int] = {}
    written = 0
    payloads = [fuzz_payload(rng, "fuzzslot") for _ in range(CONNECTIONS)]
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            for start in range(0, CONNECTIONS, PARALLEL * 4):
                spool.insert("events", seq=written)
                written += 1
                batch = payloads[start : start + PARALLEL * 4]
                for answer in pool.map(lambda p: exchange(server.port, p), batch):
                    for sqlstate, message in error_states(answer):
                        unknown_option = message.startswith("unrecognized option")
                        assert sqlstate != "XX000" or unknown_option, message
                        refused[sqlstate] = refused.get(sqlstate, 0) + 1
        spool.insert("events", seq=written)
        written += 1
        deadline = time.monotonic() + 20
        while inserts_in(out) < written and time.monotonic() < deadline:
            assert watcher.poll() is None, watcher.stderr.read() if watcher.stderr else ""
            time.sleep(0.05)
        assert inserts_in(out) == written
        assert watcher.poll() is None  # it is still connected and streaming
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert "08P01" in refused and sum(refused.values()) > CONNECTIONS // 4
    assert "Traceback" not in server.log()
    print(f"{CONNECTIONS} fuzz connections; errors by SQLSTATE: {refused}")
