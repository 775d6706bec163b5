"""Runs a real pgshim server process for end-to-end tests with real clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pgshim.pgtypes import parse_lsn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgshimServer:
    def __init__(
        self,
        spool: Path,
        state_dir: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.spool = spool
        self.state_dir = state_dir
        self.port = port or free_port()
        self.args = args
        self.env = env
        self.log_path = state_dir.parent / f"pgshim-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that starts this server (subclasses wrap it)."""
        return [
            sys.executable, "-m", "pgshim", "serve",
            "--spool", str(self.spool),
            "--state-dir", str(self.state_dir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> PgshimServer:
        start_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = dict(os.environ)
        env.update(self.env or {})
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgshim exited early:\n{self.log()}")
            with self.log_path.open("rb") as f:
                f.seek(start_at)
                if b"listening on" in f.read():
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"pgshim did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def dsn(self, *, user: str = "postgres", dbname: str = "reddb", **extra: str) -> str:
        parts = [f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A client program (psql, pg_recvlogical, ...) pointed at this server by PG* variables."""
        return subprocess.run(
            command, env=self.env_for_clients(), capture_output=True, text=True, timeout=timeout
        )

    def psql(self, sql: str) -> str:
        """``psql -At -c sql``: the unaligned output, stripped; raises on an error."""
        out = self.run("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)
        if out.returncode != 0:
            raise AssertionError(f"psql failed: {out.stderr}")
        return out.stdout.strip()

    def confirmed_lsns(self) -> dict[str, int]:
        """Each slot's confirmed RedDB LSN (its confirmed_flush_lsn without the last 8 bits)."""
        rows = self.psql("SELECT slot_name, confirmed_flush_lsn FROM pg_replication_slots")
        return {
            name: parse_lsn(lsn) >> 8
            for name, lsn in (line.split("|") for line in rows.splitlines())
        }

    def recvlogical(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.run("pg_recvlogical", "-d", "reddb", *args, timeout=timeout)

    def env_for_clients(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="postgres",
                   PGDATABASE="reddb", PGCONNECT_TIMEOUT="10")  # fmt: skip
        return env


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns something true; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)
