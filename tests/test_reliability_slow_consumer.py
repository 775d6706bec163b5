"""A consumer that stops reading: back-pressure on its session only, bounded memory, and
wal_sender_timeout once it also stops talking."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit, end_pos

from pgshim.wire import messages as msg

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TIMEOUT = 3.0
ROWS = 5000  # more than the change source's ring, so the ring is full before measuring
PHASES = 3
PAYLOAD = "x" * 2000


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def startup_replication() -> bytes:
    params = {"user": "postgres", "database": "reddb", "replication": "database"}
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!II", len(body) + 8, 196608) + body


def query(sql: str) -> bytes:
    return b"Q" + struct.pack("!I", len(sql) + 5) + sql.encode() + b"\0"


def test_stalled_reader_is_held_back_alone_then_timed_out(spool: SpoolKit, tmp_path: Path) -> None:
    server = PgshimServer(
        spool.path, tmp_path / "state", env={"PGSHIM_WAL_SENDER_TIMEOUT": str(TIMEOUT)}
    ).start()
    try:
        for seq in range(ROWS):
            spool.insert("blobs", seq=seq, body=PAYLOAD)
        server.psql("SELECT pgshim_create_history_slot('slow', 'test_decoding')")
        server.psql("SELECT pgshim_create_history_slot('watch', 'test_decoding')")
        assert server.proc is not None
        pid = server.proc.pid

        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", server.port))
        stalled.sendall(startup_replication() + query('START_REPLICATION SLOT "slow" LOGICAL 0/0'))
        time.sleep(1.0)  # it fills the socket buffers and the session blocks
        baseline = rss_bytes(pid)

        talking = threading.Event()
        talking.set()

        def keep_talking() -> None:  # alive but not reading: status updates only
            status = msg.build_frontend(b"d", data=msg.standby_status(0, 0, 0, 0, False))
            while talking.is_set():
                try:
                    stalled.sendall(status)
                except OSError:
                    return
                time.sleep(0.5)

        talker = threading.Thread(target=keep_talking, daemon=True)
        talker.start()
        out = tmp_path / "watch.txt"
        rss = [baseline]
        for phase in range(1, PHASES + 1):
            for seq in range(phase * ROWS, (phase + 1) * ROWS):
                spool.insert("blobs", seq=seq, body=PAYLOAD)
            watched = subprocess.run(
                ["pg_recvlogical", "-d", "reddb", "-S", "watch", "--start", "-f", str(out),
                 "--endpos", end_pos(spool.lsn)],
                env=server.env_for_clients(), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            # the other session streams everything while the stalled one is held back
            assert watched.returncode == 0, watched.stderr
            assert out.read_text().count("INSERT") == (phase + 1) * ROWS
            rss.append(rss_bytes(pid))
        # steady state: once the ring is full, more data through the server does not grow it
        phase_output = ROWS * len(PAYLOAD)
        assert rss[-1] - rss[1] < phase_output, rss  # two phases' output went through
        time.sleep(TIMEOUT + 1)
        assert "replication timeout" not in server.log()  # it still talks, so it stays

        talking.clear()
        talker.join()
        silent_since = time.monotonic()  # silent now: wal_sender_timeout ends it
        ended = "terminating walsender process due to replication timeout"
        while ended not in server.log() and time.monotonic() - silent_since < TIMEOUT + 15:
            time.sleep(0.2)
        assert ended in server.log()
        assert time.monotonic() - silent_since >= TIMEOUT - 0.6  # not before the timeout
        stalled.settimeout(10)
        received = 0
        while chunk := stalled.recv(1 << 20):
            received += len(chunk)
        stalled.close()
        # it was cut off: only what sat in the buffers reached it, not the whole stream
        assert received < (PHASES + 1) * phase_output // 4
        assert (
            server.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'slow'") == "f"
        )
        print(f"RSS MiB after each phase: {[r >> 20 for r in rss]}; stalled got {received} bytes")
    finally:
        server.stop()
