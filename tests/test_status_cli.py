"""``pgshim status`` against a real server, its table layout, and ``pgshim check-config``."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path
from socket import gethostname

import pytest
from server_proc import free_port
from spoolkit import end_pos

from pgshim.status import StatusReport, parse_lsn, print_status

pytestmark = pytest.mark.timeout(120)


def pgshim_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pgshim", *args], capture_output=True, text=True, timeout=60,
        env=env,
    )  # fmt: skip


def test_print_status_table() -> None:
    report = StatusReport(
        spool=("/data/x.rdb.logical.wal", 9, 10, "0/AFF", 0, None),
        slots=[
            ("sub", "pgoutput", True, 77, "0/7FF", "a:5433"),
            ("idle", "wal2json", False, None, "0/AFF", None),
            ("far", "pgoutput", True, 78, "0/AFF", "b:5433"),  # another instance's session
        ],
        consumers=[(77, "pg15", "127.0.0.1", "streaming", "0/AFF", "0/7FF")],
        replicas=[("sub", 1.5, True)],
    )
    out = io.StringIO()
    print_status(report, out)
    assert out.getvalue() == (
        "spool  /data/x.rdb.logical.wal\n"
        "       9 records, last RedDB LSN 10, end 0/AFF, 0 decode errors\n"
        "\n"
        "slots\n"
        "  slot  plugin    active  instance  pid  confirmed  lag records  lag s\n"
        "  ----  --------  ------  --------  ---  ---------  -----------  -----\n"
        "  sub   pgoutput  yes     a:5433    77   0/7FF      3            1.5\n"
        "  idle  wal2json  no                     0/AFF      0\n"
        "  far   pgoutput  yes     b:5433    78   0/AFF      0\n"
        "\n"
        "consumers\n"
        "  pid  slot  application  client     state      sent   flushed\n"
        "  ---  ----  -----------  ---------  ---------  -----  -------\n"
        "  77   sub   pg15         127.0.0.1  streaming  0/AFF  0/7FF\n"
    )


def test_print_status_marks_corruption_and_empty_tables() -> None:
    report = StatusReport(("/s", 0, None, "0/FF", 2, "bad crc"), [], [], [])
    out = io.StringIO()
    print_status(report, out)
    text = out.getvalue()
    assert "2 decode errors, CORRUPT: bad crc" in text
    assert text.count("(none)") == 2


def test_parse_lsn() -> None:
    assert parse_lsn("0/7FF") == 0x7FF
    assert parse_lsn("1/0") == 1 << 32
    assert parse_lsn(None) is None


def test_status_lists_slots_and_the_streaming_consumer(spool, pgshim, tmp_path: Path) -> None:
    lsn, _ = spool.insert("users", name="a", n=1)
    server = pgshim(spool.path)
    env = server.env_for_clients()
    subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-S", "watched", "--create-slot", "-P", "test_decoding"],
        env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    spool.insert("users", name="b", n=2)
    spool.insert("users", name="c", n=3)
    consumer = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "watched", "--start", "-f", "/dev/null",
         "-F", "0", "-s", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = pgshim_cli("status", "-h", "127.0.0.1", "-p", str(server.port),
                              "-U", "postgres", "-d", "reddb")  # fmt: skip
            assert done.returncode == 0, done.stderr
            if "pg_recvlogical" in done.stdout and end_pos(3) in done.stdout:
                break
            time.sleep(0.2)
    finally:
        consumer.terminate()
        consumer.wait(20)
    lines = done.stdout.splitlines()
    assert lines[0] == f"spool  {spool.path}"
    assert lines[1].startswith("       3 records, last RedDB LSN 3, end 0/3FF")
    slot_line = next(line for line in lines if line.startswith("  watched"))
    instance = f"{gethostname()}:{server.port}"
    assert slot_line.split()[:4] == ["watched", "test_decoding", "yes", instance]
    consumer_line = next(line for line in lines if "pg_recvlogical" in line)
    pid, slot, app, client, state, sent = consumer_line.split()[:6]
    assert (slot, app, client, state, sent) == (
        "watched", "pg_recvlogical", "127.0.0.1", "streaming", end_pos(3),
    )  # fmt: skip
    assert pid in slot_line.split()


def test_status_reports_an_unreachable_server() -> None:
    done = pgshim_cli("status", "-h", "127.0.0.1", "-p", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.startswith("pgshim status: 127.0.0.1:")
    assert "Traceback" not in done.stderr


def test_check_config_accepts_a_valid_file(tmp_path: Path) -> None:
    config = tmp_path / "ok.toml"
    config.write_text('port = 6543\nspool = "/data/x.rdb"\n[users.app]\nmethod = "trust"\n')
    done = pgshim_cli("check-config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{config}: ok"
    assert "  port = 6543" in done.stdout
    assert "  users.app: trust" in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 5433\n", "prot: unknown setting"),
        ('port = "x"\n', "port: expected an integer, got 'x'"),
        ('[users.app]\nmethod = "md5"\n', "users.app: method md5 needs a password or a secret"),
        ("port = [\n", "config: "),
    ],
)
def test_check_config_names_the_key_and_the_reason(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    done = pgshim_cli("check-config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith(f"pgshim: configuration error: {message}")
    assert done.stdout == ""


def test_serve_reports_a_bad_key_at_start(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('log_format = "xml"\n')
    done = pgshim_cli("serve", "--spool", str(tmp_path / "x.rdb"), "--config", str(config))
    assert done.returncode == 2
    assert "configuration error: log_format: must be one of text, json" in done.stderr
