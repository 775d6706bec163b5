"""Load: many concurrent consumers with mixed plugins while a writer appends at a steady rate.

Every consumer must receive every transaction up to the end exactly once and in order, nobody
sees an error, and pgshim's peak RSS stays bounded. Most consumers are light asyncio replication
clients built on pgshim's own message layouts; a few are real pg_recvlogical and psycopg2 clients.

Size knobs (CI runs the small default): PGSHIM_LOAD_CONSUMERS, PGSHIM_LOAD_SECONDS,
PGSHIM_LOAD_RATE (records per second), PGSHIM_LOAD_MAX_RSS_MB. Each consumer holds its own
slot, so the server's slot limit (64) caps PGSHIM_LOAD_CONSUMERS; beyond it slot creation gets
53400, as in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit

from pgshim.wire import messages as msg

CONSUMERS = int(os.environ.get("PGSHIM_LOAD_CONSUMERS", "12"))
SECONDS = float(os.environ.get("PGSHIM_LOAD_SECONDS", "8"))
RATE = int(os.environ.get("PGSHIM_LOAD_RATE", "2000"))
MAX_RSS_MB = int(os.environ.get("PGSHIM_LOAD_MAX_RSS_MB", "600"))
CATCH_UP = 60 + SECONDS * 2  # after the writer stops, to finish delivering
RING = max(4096, int(RATE * 30))  # ring_transactions: 30 s of the writer's output

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(300 + SECONDS * 6))]

PLUGINS = {
    "test_decoding": ("test_decoding", "", lambda payload: payload.startswith(b"COMMIT")),
    "wal2json": (
        "wal2json",
        "(\"format-version\" '2')",
        lambda payload: payload.startswith(b'{"action":"C"'),
    ),
    "pgoutput": (
        "pgoutput",
        "(proto_version '1', publication_names 'load')",
        lambda payload: payload[:1] == b"C",
    ),
}


# ---------------------------------------------------------------- the writer (its own process)


def write_steadily(path: str, rate: int, seconds: float, done: multiprocessing.Queue) -> None:
    kit = SpoolKit(Path(path))
    started = time.monotonic()
    step = 0.01
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(min(elapsed + step, seconds) * rate)
        while kit.lsn < due:
            kit.insert("events", seq=kit.lsn + 1, body="payload-" + str(kit.lsn))
        time.sleep(max(0.0, started + (due / rate) - time.monotonic()))
    kit.close()
    done.put((kit.lsn, time.monotonic() - started))


# ---------------------------------------------------------------- a light replication client


@dataclass
class Outcome:
    slot: str
    plugin: str
    commits: int = 0
    positions_in_order: bool = True
    last_commit_start: int = 0
    errors: list[str] = field(default_factory=list)


def startup_packet(**params: str) -> bytes:
    payload = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return msg.StartupPacket.build({"code": 196608, "payload": payload})


def query(sql: str) -> bytes:
    return msg.build_frontend(b"Q", sql=sql)


def status_update(position: int) -> bytes:
    now_us = int((time.time() - 946684800) * 1_000_000)
    return msg.build_frontend(
        b"d", data=msg.standby_status(position, position, position, now_us, False)
    )


class BackendReader:
    """Splits the backend byte stream into (tag, body) without an await per message."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.buffer = bytearray()

    async def fill(self) -> bool:
        chunk = await self.reader.read(1 << 18)
        self.buffer += chunk
        return bool(chunk)

    def messages(self) -> list[tuple[bytes, bytes]]:
        out = []
        buf = self.buffer
        offset = 0
        while len(buf) - offset >= 5:
            length = int.from_bytes(buf[offset + 1 : offset + 5], "big")
            end = offset + 1 + length
            if end > len(buf):
                break
            out.append((bytes(buf[offset : offset + 1]), bytes(buf[offset + 5 : end])))
            offset = end
        del buf[:offset]
        return out

    async def until_ready(self) -> list[tuple[bytes, bytes]]:
        seen: list[tuple[bytes, bytes]] = []
        while True:
            seen += self.messages()
            if any(tag in (b"Z", b"E") for tag, _ in seen):
                return seen
            if not await self.fill():
                return seen


def errors_in(messages: list[tuple[bytes, bytes]]) -> list[str]:
    return [body.decode(errors="replace") for tag, body in messages if tag == b"E"]


async def open_replication(port: int) -> tuple[asyncio.StreamWriter, BackendReader, list[str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    params = {"user": "postgres", "database": "reddb", "replication": "database"}
    writer.write(startup_packet(**params, application_name="load"))
    backend = BackendReader(reader)
    return writer, backend, errors_in(await backend.until_ready())


async def create_slot(port: int, slot: str, plugin: str) -> list[str]:
    writer, backend, errors = await open_replication(port)
    if not errors:
        writer.write(query(f'CREATE_REPLICATION_SLOT "{slot}" LOGICAL {plugin}'))
        errors = errors_in(await backend.until_ready())
    writer.write(msg.build_frontend(b"X"))
    writer.close()
    return errors


async def stream(port: int, outcome: Outcome, target: asyncio.Future, deadline: float) -> None:
    plugin, options, is_commit = PLUGINS[outcome.plugin]
    writer, backend, errors = await open_replication(port)
    outcome.errors += errors
    if errors:
        return
    writer.write(query(f'START_REPLICATION SLOT "{outcome.slot}" LOGICAL 0/0 {options}'.strip()))
    last_status = time.monotonic()
    try:
        while True:
            for tag, body in backend.messages():
                if tag == b"E":
                    outcome.errors.append(body.decode(errors="replace"))
                    return
                if tag != b"d":
                    continue
                if body[:1] == b"w":
                    if is_commit(body[25:]):
                        start = int.from_bytes(body[1:9], "big")
                        if start <= outcome.last_commit_start:
                            outcome.positions_in_order = False
                        outcome.last_commit_start = start
                        outcome.commits += 1
                elif body[:1] == b"k" and body[17:18] == b"\x01":
                    writer.write(status_update(outcome.last_commit_start))
            if target.done() and outcome.commits >= target.result():
                writer.write(status_update(outcome.last_commit_start))
                writer.write(msg.build_frontend(b"c"))
                return
            now = time.monotonic()
            if now - last_status >= 1.0:
                writer.write(status_update(outcome.last_commit_start))
                last_status = now
            if now > deadline:
                outcome.errors.append(f"incomplete: {outcome.commits} commits")
                return
            try:
                async with asyncio.timeout(0.5):
                    if not await backend.fill():
                        outcome.errors.append("server closed the connection")
                        return
            except TimeoutError:
                pass
    finally:
        writer.close()


# ---------------------------------------------------------------- real clients


def recvlogical(server: PgshimServer, slot: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", slot, "--start", "-f", str(out), "-F", "1",
         "-s", "1", "-o", "include-xids=0"],
        env=server.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def psycopg2_consumer(
    server: PgshimServer, outcome: Outcome, target: list, stop: threading.Event
) -> None:
    conn = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        cur = conn.cursor()
        cur.start_replication(slot_name=outcome.slot, decode=False)
        while not stop.is_set():
            if target and outcome.commits >= target[0]:
                cur.send_feedback(flush_lsn=outcome.last_commit_start, force=True)
                return
            message = cur.read_message()
            if message is None:
                select.select([cur], [], [], 0.5)
                continue
            if message.payload.startswith(b"COMMIT"):
                if message.data_start <= outcome.last_commit_start:
                    outcome.positions_in_order = False
                outcome.last_commit_start = message.data_start
                outcome.commits += 1
                if outcome.commits % 500 == 0:
                    cur.send_feedback(flush_lsn=message.data_start)
    except psycopg2.Error as exc:
        outcome.errors.append(str(exc))
    finally:
        conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# ---------------------------------------------------------------- the test


def test_many_consumers_mixed_plugins_under_a_steady_writer(tmp_path: Path) -> None:
    spool_path = tmp_path / "data.rdb.logical.wal"
    SpoolKit(spool_path).close()
    server = PgshimServer(
        spool_path,
        tmp_path / "state",
        # a minute of the writer's output stays decoded in memory, so consumers that fall behind
        # under this load are served from it instead of decoding the spool again
        env={"PGSHIM_DEFAULT_PUBLICATION": "load", "PGSHIM_RING_TRANSACTIONS": str(RING)},
    ).start()
    assert server.proc is not None
    real_recvlogical = 2 if CONSUMERS >= 6 else 0
    real_psycopg2 = 1 if CONSUMERS >= 4 else 0
    names = list(PLUGINS)
    outcomes = [
        Outcome(
            f"load{i}", "test_decoding" if i < real_recvlogical + real_psycopg2 else names[i % 3]
        )
        for i in range(CONSUMERS)
    ]
    light = outcomes[real_recvlogical + real_psycopg2 :]
    try:

        async def create_all() -> list[list[str]]:
            gate = asyncio.Semaphore(16)

            async def one(outcome: Outcome) -> list[str]:
                async with gate:
                    return await create_slot(server.port, outcome.slot, PLUGINS[outcome.plugin][0])

            return await asyncio.gather(*(one(o) for o in outcomes))

        assert asyncio.run(create_all()) == [[]] * CONSUMERS

        files = {o.slot: tmp_path / f"{o.slot}.txt" for o in outcomes[:real_recvlogical]}
        procs = {slot: recvlogical(server, slot, out) for slot, out in files.items()}
        target_box: list[int] = []
        stop_threads = threading.Event()
        threads = [
            threading.Thread(
                target=psycopg2_consumer, args=(server, o, target_box, stop_threads), daemon=True
            )
            for o in outcomes[real_recvlogical : real_recvlogical + real_psycopg2]
        ]
        for thread in threads:
            thread.start()

        # a fresh interpreter: a fork of this process (its client threads, the extension modules
        # earlier tests loaded) can crash in the child's garbage collector
        spawn = multiprocessing.get_context("spawn")
        done: multiprocessing.Queue = spawn.Queue()
        writer = spawn.Process(target=write_steadily, args=(str(spool_path), RATE, SECONDS, done))
        started = time.monotonic()

        async def consume_all() -> tuple[int, float]:
            loop = asyncio.get_running_loop()
            target: asyncio.Future = loop.create_future()
            deadline = time.monotonic() + SECONDS + CATCH_UP
            gate = asyncio.Semaphore(16)

            async def one(outcome: Outcome) -> None:
                async with gate:  # connect in waves, as a fleet of real clients would
                    await asyncio.sleep(0)
                await stream(server.port, outcome, target, deadline)

            tasks = [asyncio.ensure_future(one(o)) for o in light]
            writer.start()
            # bounded, so that a failure cannot leave the executor thread (and asyncio.run) waiting
            written, took = await loop.run_in_executor(None, done.get, True, SECONDS + CATCH_UP)
            target.set_result(written)
            target_box.append(written)
            await asyncio.gather(*tasks)
            return written, took

        written, writer_seconds = asyncio.run(consume_all())
        writer.join(10)
        for thread in threads:
            thread.join(CATCH_UP)
        stop_threads.set()
        deadline = time.monotonic() + CATCH_UP
        for out in files.values():
            while time.monotonic() < deadline and (
                not out.exists() or out.read_text().count("COMMIT") < written
            ):
                time.sleep(0.2)
        delivered_seconds = time.monotonic() - started
        stderr = {}
        for slot, proc in procs.items():
            proc.send_signal(signal.SIGINT)
            stderr[slot] = proc.communicate(timeout=20)[1]
            assert proc.returncode == 0, stderr[slot]
        rss_mb = peak_rss_mb(server.proc.pid)
    finally:
        server.stop()

    print(
        f"\n{CONSUMERS} consumers, {written} records in {writer_seconds:.1f}s "
        f"({written / writer_seconds:.0f}/s); all delivered after {delivered_seconds:.1f}s; "
        f"pgshim peak RSS {rss_mb:.0f} MiB"
    )
    assert written >= RATE * SECONDS * 0.9  # the writer kept its rate
    for outcome in outcomes[real_recvlogical:]:
        assert outcome.errors == [], (outcome.slot, outcome.plugin, outcome.errors[:3])
        assert outcome.commits == written, (outcome.slot, outcome.plugin)
        assert outcome.positions_in_order, outcome.slot
    for slot, out in files.items():
        text = out.read_text()
        assert text.count("COMMIT") == written, slot
        seqs = [int(line.rsplit(":", 1)[1]) for line in text.splitlines() if "seq[bigint]" in line]
        assert seqs == list(range(1, written + 1)), slot
        # PostgreSQL 15's pg_recvlogical reports its own SIGINT this way (exit code 0); any other
        # error line would come from the server
        errors = [line for line in stderr[slot].splitlines() if "error" in line.lower()]
        assert all("unexpected termination of replication stream" in e for e in errors), errors
    log = server.log()
    assert "Traceback" not in log and " ERROR " not in log
    assert rss_mb < MAX_RSS_MB, rss_mb
