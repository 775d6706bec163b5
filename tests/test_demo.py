"""``pgshim demo``, the README's run command: a live spool served, its printed commands work."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from server_proc import free_port

pytestmark = pytest.mark.timeout(90)


def test_demo_serves_a_live_spool_and_its_commands_work(tmp_path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgshim", "demo", "--dir", str(tmp_path / "demo"),
             "--port", str(port), "--rate", "40"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while b"listening on" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        printed = log.read_text()
        commands = [
            shlex.split(line[line.index("pg_recvlogical") :])
            for line in printed.splitlines()
            if "pg_recvlogical -h" in line
        ]
        create, start = commands
        assert create[0] == start[0] == "pg_recvlogical"
        assert subprocess.run(create, capture_output=True, timeout=30).returncode == 0
        status = re.search(r'psql "([^"]+)" -c "([^"]+)"', printed)
        assert status is not None
        spool = subprocess.run(
            ["psql", "-X", "-At", status.group(1), "-c", "SELECT records > 0 FROM pgshim_spool"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert spool.stdout.strip() == "t"
        # the live writer keeps appending: the stream receives new changes within seconds
        reader = subprocess.Popen([*start], stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        reader.send_signal(signal.SIGINT)
        output, _ = reader.communicate(timeout=10)
        assert output.count("COMMIT") >= 10, output
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
