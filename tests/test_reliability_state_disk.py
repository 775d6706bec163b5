"""A full state disk, a damaged state database and a damaged decoded store, against a real server.

The full disk is real: the state directory is a small tmpfs mounted in a private mount namespace
(``unshare``, no privileges needed where user namespaces are allowed), filled with a file until
writes fail with ENOSPC, emptied again to let space return. The server runs in that namespace;
the spool and the clients stay outside.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from server_proc import PgshimServer, wait_for
from spoolkit import SpoolKit, end_pos

from pgshim.logical.decoded_store import STORE_FILE_NAME

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


class StateDisk:
    """A tmpfs of ``size`` at ``mount`` in a mount namespace held by a sleeping process."""

    def __init__(self, mount: Path, size: str) -> None:
        self.mount = mount
        mount.mkdir(parents=True)
        script = f"mount -t tmpfs -o size={size} tmpfs '{mount}' && echo ready && exec sleep 3600"
        self.holder = subprocess.Popen(["unshare", "-rm", "sh", "-c", script],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        ready = self.holder.stdout.readline() if self.holder.stdout else b""
        if ready.strip() != b"ready":
            self.close()
            pytest.skip(f"no private tmpfs: {self.holder.stderr.read().decode().strip()}")

    def path(self, inside: Path) -> Path:
        """``inside`` (a path in the namespace) as this process reaches it."""
        return Path(f"/proc/{self.holder.pid}/root{inside}")

    def prefix(self) -> list[str]:
        # --wd: entering a mount namespace moves to its root; this checkout's pgshim is run
        return ["nsenter", "-t", str(self.holder.pid), "-U", "-m", "--preserve-credentials",
                f"--wd={Path(__file__).resolve().parent.parent}"]  # fmt: skip

    def fill(self) -> None:
        with self.path(self.mount / "filler").open("ab", buffering=0) as filler:
            for size in (1 << 20, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        filler.write(b"\0" * size)
        try:
            self.path(self.mount / "probe").write_bytes(b"x" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        else:
            raise AssertionError("the disk is not full")

    def free(self) -> None:
        self.path(self.mount / "filler").unlink(missing_ok=True)
        self.path(self.mount / "probe").unlink(missing_ok=True)

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
        self.holder.wait()


class NamespacedServer(PgshimServer):
    """A pgshim process started in the state disk's mount namespace."""

    def __init__(self, disk: StateDisk, spool: Path, state_dir: Path, log_dir: Path) -> None:
        super().__init__(spool, state_dir)
        self.disk = disk
        self.log_path = log_dir / f"pgshim-{self.port}.log"

    def command(self) -> list[str]:
        return [*self.disk.prefix(), *super().command()]

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def store(self) -> tuple[str, str]:
        return tuple(self.psql("SELECT store, coalesce(store_error, '') FROM pgshim_spool")
                     .split("|", 1))  # type: ignore[return-value]  # fmt: skip

    def sigterm_seconds(self) -> float:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self.proc = None
        return time.monotonic() - started


@pytest.fixture
def disk(tmp_path: Path):  # noqa: ANN201
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("unshare/nsenter are not installed")
    disk = StateDisk(tmp_path / "disk", "48m")
    yield disk
    disk.close()


@pytest.fixture
def servers():  # noqa: ANN201
    started: list[PgshimServer] = []
    yield started
    for server in started:
        server.stop(timeout=10)


def streaming(server: PgshimServer, slot: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", slot, "--start", "-f", str(out), "-n",
         "-F", "1", "-s", "1", "-o", "include-xids=0"],
        env=server.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def received(out: Path) -> list[int]:
    """The seq of every insert received (each row's seq is its RedDB LSN)."""
    if not out.exists():
        return []
    return [int(line.rsplit(":", 1)[1]) for line in out.read_text().splitlines()
            if "INSERT" in line]  # fmt: skip


def write(spool: SpoolKit, count: int) -> None:
    for _ in range(count):
        spool.insert("events", seq=spool.lsn + 1, pad="p" * 100)


def test_a_full_state_disk_degrades_to_the_spool_and_recovers(
    disk: StateDisk, spool: SpoolKit, servers: list, tmp_path: Path
) -> None:
    server = NamespacedServer(disk, spool.path, disk.mount / "state", tmp_path)
    servers.append(server.start())
    created = server.recvlogical("-S", "s", "--create-slot", "-P", "test_decoding")
    assert created.returncode == 0, created.stderr
    out = tmp_path / "s.txt"
    consumer = streaming(server, "s", out)
    try:
        write(spool, 2000)
        wait_for(lambda: len(received(out)) == 2000, 60)
        assert server.store() == ("ok", "")
        baseline = server.rss_mb()

        disk.fill()
        peak = baseline
        for _ in range(40):  # the spool grows by 40000 records while nothing can be stored
            write(spool, 1000)
            time.sleep(0.05)
            peak = max(peak, server.rss_mb())
        wait_for(lambda: len(received(out)) == spool.lsn, 120)
        peak = max(peak, server.rss_mb())
        state, error = server.store()
        assert state == "failing" and "full" in error, (state, error)
        # every change written is received, once, in order
        assert received(out) == list(range(1, spool.lsn + 1))
        print(f"RSS {baseline:.1f} MB before the disk filled, at most {peak:.1f} MB after "
              f"{spool.lsn - 2000} more records")  # fmt: skip
        assert peak - baseline < 40, (baseline, peak)
        assert "reading the spool failed" not in server.log()
        assert server.log().count("decoded store") <= 2  # logged once (and maybe its reopening)

        disk.free()  # space returns: the store is used again
        write(spool, 1000)
        seen: list = []

        def store_ok() -> bool:  # tried again as records come, after at most RETRY_MAX
            write(spool, 100)
            seen.append(server.store())
            return seen[-1] == ("ok", "")

        try:
            wait_for(store_ok, 90, 0.5)
        except AssertionError:
            raise AssertionError(f"the store stays {seen[-1]}") from None
        # ("ok" once a chunk was written again)
        wait_for(lambda: len(received(out)) == spool.lsn, 60)
        assert received(out) == list(range(1, spool.lsn + 1))
    finally:
        consumer.send_signal(signal.SIGINT)
        consumer.wait(10)
    disk.fill()
    write(spool, 3000)
    time.sleep(2)
    seconds = server.sigterm_seconds()
    print(f"SIGTERM with the state disk full: exited after {seconds:.2f} s")
    assert seconds < 5
    assert "never retrieved" not in server.log() and "reading the spool failed" not in server.log()


def start_on_a_full_disk(disk: StateDisk, spool: SpoolKit, tmp_path: Path) -> NamespacedServer:
    """A server whose slot ``s`` was left behind the spool, started again on a full disk."""
    server = NamespacedServer(disk, spool.path, disk.mount / "state", tmp_path)
    server.start()
    assert server.recvlogical("-S", "s", "--create-slot", "-P", "test_decoding").returncode == 0
    write(spool, 300)
    server.stop()
    write(spool, 300)  # while it is down
    disk.fill()
    return server.start()


def test_the_server_starts_on_a_full_state_disk(
    disk: StateDisk, spool: SpoolKit, servers: list, tmp_path: Path
) -> None:
    server = start_on_a_full_disk(disk, spool, tmp_path)
    servers.append(server)
    assert server.store()[0] in ("ok", "failing")
    assert server.psql("SELECT records FROM pgshim_spool") == "600"
    refused = server.run("psql", "-X", "-At", "-v", "VERBOSITY=verbose", "-c",
                         "SELECT pg_create_logical_replication_slot('t', 'test_decoding')")  # fmt: skip
    assert refused.returncode != 0
    assert 'ERROR:  53100: could not write to file "state.db": No space left on device' in (
        refused.stderr
    ), refused.stderr
    created = server.recvlogical("-S", "u", "--create-slot", "-P", "test_decoding")
    assert "No space left on device" in created.stderr
    assert server.psql("SELECT string_agg(slot_name, ',') FROM pg_replication_slots") == "s"
    assert server.sigterm_seconds() < 5
    assert "never retrieved" not in server.log() and "reading the spool failed" not in server.log()

    disk.free()  # what could not be written then is written now
    server.start()
    assert server.recvlogical("-S", "t", "--create-slot", "-P", "test_decoding").returncode == 0
    server.stop()


def test_a_slot_streams_from_the_spool_on_a_full_state_disk(
    disk: StateDisk, spool: SpoolKit, servers: list, tmp_path: Path
) -> None:
    server = start_on_a_full_disk(disk, spool, tmp_path)
    servers.append(server)
    out = tmp_path / "s.txt"
    done = server.recvlogical("-S", "s", "--start", "-f", str(out), "--endpos",
                              end_pos(spool.lsn), "-o", "include-xids=0", timeout=20)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert received(out) == list(range(1, spool.lsn + 1))


def serve_once(spool: Path, state: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pgshim", "serve", "--spool", str(spool), "--state-dir",
         str(state), "--host", "127.0.0.1", "--port", "1"],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_state_database_is_refused_in_one_line(
    spool: SpoolKit, pgshim, tmp_path: Path, damage: str
) -> None:
    spool.insert("events", seq=1)
    server = pgshim(spool.path)
    assert server.recvlogical("-S", "s", "--create-slot", "-P", "test_decoding").returncode == 0
    write(spool, 2000)
    wait_for(lambda: server.psql("SELECT records FROM pgshim_spool") == str(spool.lsn))
    server.stop()
    db = tmp_path / "state" / "state.db"
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(os.urandom(len(data)))
    else:
        db.write_bytes(data[: len(data) // 3])
    done = serve_once(spool.path, tmp_path / "state")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(f'pgshim: the state database "{db}" is damaged'), lines
    assert "restore it from a backup" in lines[-1]


def test_a_damaged_decoded_store_is_started_again(spool: SpoolKit, pgshim, tmp_path: Path) -> None:
    write(spool, 3000)
    server = pgshim(spool.path)
    wait_for(lambda: server.psql("SELECT records FROM pgshim_spool") == "3000")
    server.stop()
    store = tmp_path / "state" / STORE_FILE_NAME
    store.write_bytes(store.read_bytes()[:4096] + os.urandom(8192))
    server.start()
    write(spool, 1000)
    wait_for(lambda: server.psql("SELECT records FROM pgshim_spool") == "4000")
    out = tmp_path / "all.txt"
    server.psql("SELECT pgshim_create_history_slot('h', 'test_decoding')")
    done = server.recvlogical("-S", "h", "--start", "-f", str(out), "--endpos",
                              end_pos(spool.lsn), "-o", "include-xids=0", timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert received(out) == list(range(1, spool.lsn + 1))
    assert "starting it again" in server.log()
    assert "Traceback" not in server.log()
    wait_for(lambda: server.psql("SELECT store FROM pgshim_spool") == "ok")
    server.stop()
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT count(*) FROM chunks").fetchone()[0] >= 3
