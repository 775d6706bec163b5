"""kill -9 at random moments while a writer appends and two kinds of consumers confirm.

After every restart each slot's confirmed position is read before its consumer reconnects; the
first change the consumer then receives must be the first one after that position, the positions
must never move backwards, and in the end every appended change has arrived at least once with
the logical id it was written with. ``PGSHIM_CRASH_CYCLES`` sets the number of kills (default:
the reduced CI form; the full run uses 20).
"""

from __future__ import annotations

import os
import random
import re
import select
import subprocess
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit

CYCLES = int(os.environ.get("PGSHIM_CRASH_CYCLES", "3"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + 15 * CYCLES)]

INSERT = re.compile(r"INSERT: rid\[bigint\]:(\d+) seq\[bigint\]:(\d+)")


class Writer(threading.Thread):
    """Appends one insert every few milliseconds; seq equals the record's RedDB LSN.

    As concurrent RedDB writers do, some LSNs are appended late (after the next one, within the
    server's reorder grace), and some records are appended twice (the same bytes again)."""

    def __init__(self, spool: SpoolKit) -> None:
        super().__init__(daemon=True)
        self.spool = spool
        self.rids: dict[int, int] = {}
        self.stop = threading.Event()
        self.late = 0
        self.duplicates = 0

    def run(self) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            if count % 17 == 0:
                late = self.spool.lsn + 1
                self.spool.lsn = late  # the writer of `late` is slower
                self._insert()
                time.sleep(0.02)
                newest, self.spool.lsn = self.spool.lsn, late - 1
                self._insert()
                self.spool.lsn = newest
                self.late += 1
            elif count % 23 == 0:
                self._insert(twice=True)
                self.duplicates += 1
            else:
                self._insert()
            time.sleep(0.004)

    def _insert(self, twice: bool = False) -> None:
        size = self.spool.path.stat().st_size if self.spool.path.exists() else 0
        lsn, rid = self.spool.insert("events", seq=self.spool.lsn + 1)
        self.rids[lsn] = rid
        if twice:
            with self.spool.path.open("rb") as spool:
                spool.seek(size)
                frame = spool.read()
            with self.spool.path.open("ab") as spool:
                spool.write(frame)


class PsycopgConsumer(threading.Thread):
    """psycopg2's LogicalReplicationConnection; confirms each COMMIT's data_start."""

    def __init__(self, dsn: str, slot: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.slot = slot
        self.generation = 0
        self.allowed = threading.Event()  # set while the server is up and positions were read
        self.stop = threading.Event()
        self.received: list[tuple[int, int, int]] = []  # (generation, seq, rid)
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.allowed.wait()
            generation = self.generation
            try:
                self._consume(generation)
            except psycopg2.Error as exc:
                if self.generation == generation and not self.stop.is_set():
                    self.errors.append(str(exc))
                    time.sleep(0.1)

    def _consume(self, generation: int) -> None:
        conn = psycopg2.connect(
            self.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        try:
            cur = conn.cursor()
            cur.start_replication(
                slot_name=self.slot, decode=True, options={"include-xids": "0"}, status_interval=1
            )
            while not self.stop.is_set() and self.generation == generation:
                message = cur.read_message()
                if message is None:
                    select.select([cur], [], [], 0.1)
                    continue
                if match := INSERT.search(message.payload):
                    self.received.append((generation, int(match[2]), int(match[1])))
                elif message.payload == "COMMIT":
                    cur.send_feedback(flush_lsn=message.data_start)
        finally:
            conn.close()


def start_recvlogical(server: PgshimServer, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "rl", "--start", "-f", str(out), "-n",
         "-F", "1", "-s", "1", "-o", "include-xids=0"],
        env=server.env_for_clients(), stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def recvlogical_rows(path: Path) -> list[tuple[int, int]]:
    """(seq, rid) of each INSERT line pg_recvlogical wrote (a cut last line is ignored)."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]
    return [(int(m[2]), int(m[1])) for line in lines if (m := INSERT.search(line))]


def test_kill9_cycles_redeliver_exactly_from_the_confirmed_position(
    spool: SpoolKit, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("PGSHIM_CRASH_SEED", "3")))
    # a reorder grace longer than the writer's late appends: they are put back in order
    server = PgshimServer(
        spool.path, tmp_path / "state", env={"PGSHIM_REORDER_GRACE": "0.5"}
    ).start()
    for slot in ("py", "rl"):
        created = subprocess.run(
            ["pg_recvlogical", "-d", "reddb", "-S", slot, "--create-slot", "-P", "test_decoding"],
            env=server.env_for_clients(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    positions = [server.confirmed_lsns()]
    writer = Writer(spool)
    consumer = PsycopgConsumer(server.dsn(), "py")
    rl_files = [tmp_path / "rl-0.txt"]
    recvlogical = start_recvlogical(server, rl_files[0])
    consumer.allowed.set()
    writer.start()
    consumer.start()
    try:
        for cycle in range(1, CYCLES + 1):
            time.sleep(rng.uniform(0.3, 2.0))
            if cycle == CYCLES:
                # the last kill comes after each consumer confirmed something new (pg_recvlogical
                # every second): re-delivery from a confirmed position is what is checked
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and any(
                    server.confirmed_lsns()[slot] <= positions[-1][slot] for slot in ("py", "rl")
                ):
                    time.sleep(0.1)
            consumer.allowed.clear()
            server.kill()
            consumer.generation = cycle
            recvlogical.wait(10)
            time.sleep(rng.uniform(0.0, 0.3))  # the writer goes on while pgshim is down
            server.start()
            positions.append(server.confirmed_lsns())
            rl_files.append(tmp_path / f"rl-{cycle}.txt")
            recvlogical = start_recvlogical(server, rl_files[-1])
            consumer.allowed.set()
        time.sleep(1.0)
        writer.stop.set()
        writer.join()
        final = spool.lsn
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            py_done = any(seq == final for _, seq, _ in consumer.received)
            rl_done = any(seq == final for seq, _ in recvlogical_rows(rl_files[-1]))
            if py_done and rl_done:
                break
            time.sleep(0.1)
        assert py_done and rl_done, "the consumers did not catch up after the last restart"
    finally:
        consumer.stop.set()
        consumer.allowed.set()
        recvlogical.terminate()
        recvlogical.wait(10)
        server.stop()
    consumer.join(10)

    written = set(range(1, final + 1))
    py_by_generation: dict[int, list[int]] = {}
    for generation, seq, rid in consumer.received:
        assert rid == writer.rids[seq]  # identities survive the crashes
        py_by_generation.setdefault(generation, []).append(seq)
    rl_by_generation = {}
    for generation, path in enumerate(rl_files):
        rows = recvlogical_rows(path)
        assert all(rid == writer.rids[seq] for seq, rid in rows)
        rl_by_generation[generation] = [seq for seq, _ in rows]

    for slot, by_generation in (("py", py_by_generation), ("rl", rl_by_generation)):
        confirmed = [p[slot] for p in positions]
        assert confirmed == sorted(confirmed), f"{slot}: a confirmed position moved backwards"
        delivered = {seq for seqs in by_generation.values() for seq in seqs}
        assert written <= delivered, f"{slot}: {sorted(written - delivered)[:10]} never arrived"
        for generation in range(1, CYCLES + 1):
            seqs = by_generation.get(generation)
            if seqs:
                # re-delivery starts exactly after the position persisted before the kill
                assert seqs[0] == confirmed[generation] + 1, (slot, generation)
                assert seqs == sorted(seqs)
        assert confirmed[-1] > 0, f"{slot}: nothing was ever confirmed"
    redelivered = sum(len(s) for s in py_by_generation.values()) - len(written)
    assert writer.late and writer.duplicates
    print(
        f"{CYCLES} kill -9 cycles, {final} changes ({writer.late} appended late, "
        f"{writer.duplicates} twice), psycopg2 re-deliveries: {redelivered}, lost: 0"
    )
    print("confirmed RedDB LSN after each restart:", positions)
