"""RedDB's bearer token comes from a file or the environment, never from the command line, where
every local user can read it (ps, /proc/PID/cmdline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_reddb import FakeRedDb, Principal
from server_proc import PgshimServer, wait_for
from spoolkit import end_pos

from pgshim.config import Config, ConfigError

pytestmark = pytest.mark.timeout(90)

TOKEN = "s3cret-Bearer-4f1d"


@pytest.fixture
def primary():
    fake = FakeRedDb(principals={TOKEN: Principal("pgshim:fw")})
    fake.start()
    yield fake
    fake.stop()


def token_file(path: Path, mode: int = 0o600) -> Path:
    path.write_text(TOKEN + "\n")  # as `echo TOKEN > FILE` writes it
    path.chmod(mode)
    return path


@pytest.mark.parametrize("flag", [["--reddb-token", TOKEN], [f"--reddb-token={TOKEN}"]])
def test_the_token_flag_is_refused(tmp_path, flag) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pgshim", "serve", "--spool", str(tmp_path / "data.rdb"),
         "--state-dir", str(tmp_path / "state"), "--port", "0", *flag],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert "--reddb-token is not accepted" in run.stderr
    assert "--reddb-token-file" in run.stderr and "PGSHIM_REDDB_TOKEN" in run.stderr
    assert TOKEN not in run.stderr + run.stdout
    assert not (tmp_path / "state").exists()  # refused before anything started


def test_a_token_file_reaches_reddb_and_stays_off_the_command_line(
    spool, tmp_path, primary
) -> None:
    secret = token_file(tmp_path / "reddb.token")
    server = PgshimServer(
        spool.path, tmp_path / "state",
        args=("--reddb-grpc", f"127.0.0.1:{primary.port}", "--reddb-token-file", str(secret)),
    ).start()  # fmt: skip
    try:
        assert server.proc is not None
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"serve" in cmdline and str(secret).encode() in cmdline
        assert TOKEN.encode() not in b" ".join(cmdline)
        created = server.recvlogical("-S", "fw", "--create-slot", "-P", "test_decoding")
        assert created.returncode == 0, created.stderr
        lsn, _ = spool.insert("users", name="x")
        done = server.recvlogical("-S", "fw", "--start", "-f", "-", "--endpos", end_pos(lsn))
        assert done.returncode == 0, done.stderr
        # the primary accepted the ack: the file's token (without its newline) was the bearer
        wait_for(lambda: primary.commit_acks.get("pgshim:fw") == lsn)
        assert server.psql("SELECT forward_error FROM pgshim_replicas") == ""
    finally:
        server.stop()
    assert TOKEN not in server.log()
    assert "accessible by group or others" not in server.log()


def test_a_token_file_others_may_read_is_warned_about(spool, tmp_path, primary) -> None:
    secret = token_file(tmp_path / "reddb.token", mode=0o644)
    server = PgshimServer(
        spool.path, tmp_path / "state",
        args=("--reddb-grpc", f"127.0.0.1:{primary.port}"),
        env={"PGSHIM_REDDB_TOKEN_FILE": str(secret)},
    ).start()  # fmt: skip
    try:
        assert "reddb_token_file" in server.log()
        assert "is accessible by group or others (mode 644)" in server.log()
        assert (
            server.recvlogical("-S", "fw", "--create-slot", "-P", "test_decoding").returncode == 0
        )
        lsn, _ = spool.insert("users", name="x")
        server.recvlogical("-S", "fw", "--start", "-f", "-", "--endpos", end_pos(lsn))
        wait_for(lambda: primary.commit_acks.get("pgshim:fw") == lsn)
    finally:
        server.stop()
    assert TOKEN not in server.log()


def test_token_file_configuration_errors(tmp_path) -> None:
    secret = token_file(tmp_path / "reddb.token")
    assert Config.load(env={"PGSHIM_REDDB_TOKEN_FILE": str(secret)}).reddb_token == TOKEN
    assert TOKEN not in repr(Config.load(env={"PGSHIM_REDDB_TOKEN": TOKEN}))
    with pytest.raises(ConfigError, match="give the token one way") as both:
        Config.load(env={"PGSHIM_REDDB_TOKEN": TOKEN}, overrides={"reddb_token_file": secret})
    assert both.value.key == "reddb_token_file"
    with pytest.raises(ConfigError, match="cannot read") as missing:
        Config.load(env={}, overrides={"reddb_token_file": str(tmp_path / "absent")})
    assert missing.value.key == "reddb_token_file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        Config.load(env={}, overrides={"reddb_token_file": str(tmp_path / "empty")})
    config = tmp_path / "pgshim.toml"
    config.write_text(f'reddb_token_file = "{secret}"\n')
    os.chmod(secret, 0o640)
    checked = subprocess.run(
        [sys.executable, "-m", "pgshim", "check-config", str(config)],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PGSHIM_REDDB_TOKEN": "other"},
    )  # fmt: skip
    assert checked.returncode == 2 and "give the token one way" in checked.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGSHIM_")}
    checked = subprocess.run(
        [sys.executable, "-m", "pgshim", "check-config", str(config)],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "warning: reddb_token_file" in checked.stdout and TOKEN not in checked.stdout
