"""SIGTERM under load: every streaming session gets 57P01, confirmed positions are flushed, and a
restart resumes every slot exactly after its confirmed position."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit, end_pos

SLOTS = int(os.environ.get("PGSHIM_SHUTDOWN_SLOTS", "6"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def recvlogical(server: PgshimServer, slot: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", slot, "--start", "-f", str(out), "-n",
         "-F", "1", "-s", "1", "-o", "include-xids=0", *extra],
        env=server.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def seqs(path: Path) -> list[int]:
    return [
        int(line.rsplit(":", 1)[1]) for line in path.read_text().splitlines() if "INSERT" in line
    ]


def test_sigterm_ends_sessions_with_57p01_and_restart_resumes(
    spool: SpoolKit, tmp_path: Path
) -> None:
    server = PgshimServer(spool.path, tmp_path / "state").start()
    slots = [f"s{i}" for i in range(SLOTS)]
    for slot in slots:
        created = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", slot, "--create-slot", "-P", "test_decoding"],
            env=server.env_for_clients(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    first = {slot: tmp_path / f"{slot}-1.txt" for slot in slots}
    procs = {slot: recvlogical(server, slot, first[slot]) for slot in slots}
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # load: a steady stream of inserts
            spool.insert("events", seq=spool.lsn + 1)
            time.sleep(0.002)
        time.sleep(2.5)  # let the consumers confirm (-s 1) and the slot flush run
        server.stop()  # SIGTERM
        stderr = {slot: proc.communicate(timeout=10)[1] for slot, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for slot in slots:
        assert "terminating connection due to administrator command" in stderr[slot], stderr[slot]
    assert "Traceback" not in server.log()

    written = spool.lsn
    for seq in range(written + 1, written + 51):  # written while pgshim is down
        spool.insert("events", seq=seq)
    server.start()
    resumed_at = server.confirmed_lsns()
    for slot in slots:
        # everything streamed before SIGTERM and acknowledged was flushed at shutdown
        assert resumed_at[slot] == seqs(first[slot])[-1] > 0
        second = tmp_path / f"{slot}-2.txt"
        done = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", slot, "--start", "-f", str(second),
             "--endpos", end_pos(spool.lsn), "-o", "include-xids=0"],
            env=server.env_for_clients(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert seqs(second) == list(range(resumed_at[slot] + 1, spool.lsn + 1))
        assert set(seqs(first[slot])) | set(seqs(second)) == set(range(1, spool.lsn + 1))
    server.stop()
