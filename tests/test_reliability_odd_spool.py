"""A writer that does everything a careless RedDB deployment does, while two consumers stream.

It appends some LSNs late (within the reorder grace), some records twice, prunes the spool
(rewrites its tail into a new file renamed over it) and then fails over: a new term rewrites the
last LSNs already sent with other content and goes on. One consumer confirms each change at once,
the other stays well behind. In the end every LSN written is accounted for: the consumer behind
has received the final version of every record, and the eager one received everything up to the
divergence and then was told its slot is lost, with the reason. Nothing is lost silently.
"""

from __future__ import annotations

import os
import re
import select
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.errors
import psycopg2.extras
import pytest
from server_proc import PgshimServer, wait_for
from spoolkit import SpoolKit

from pgshim.logical.positions import end_pos
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.writer import SpoolWriter

pytestmark = pytest.mark.timeout(180)

INSERT = re.compile(r"INSERT: rid\[bigint\]:\d+ seq\[bigint\]:(\d+) version\[text\]:'(\w+)'")
RECORDS = int(os.environ.get("PGSHIM_ODD_RECORDS", "600"))
BEHIND = 200  # how far the lazy consumer stays behind what it received, in LSNs


class Writer:
    def __init__(self, path: Path) -> None:
        self.kit = SpoolKit(path)
        self.final: dict[int, str] = {}  # LSN -> the version the spool holds in the end
        self.late = self.twice = self.prunes = 0
        self.fork_lsn = 0

    def insert(self, lsn: int, version: str) -> None:
        self.kit.lsn = lsn - 1
        self.kit.insert("events", seq=lsn, version=version)
        self.final[lsn] = version

    def write(self, count: int) -> None:
        lsn = max(self.final, default=0)
        done = 0
        while done < count:
            lsn += 1
            if lsn % 31 == 0:  # lsn + 1 first, lsn 20 ms later
                self.insert(lsn + 1, "v1")
                time.sleep(0.02)
                self.insert(lsn, "v1")
                self.late += 1
                lsn += 1
                done += 2
                continue
            self.insert(lsn, "v1")
            if lsn % 37 == 0:  # the same record again
                frame = self.frames()[-1]
                with self.kit.path.open("ab") as spool:
                    spool.write(self.bytes_of(frame))
                self.twice += 1
            done += 1
            time.sleep(0.004)

    def frames(self) -> list:
        return SpoolFollower(self.kit.path).poll()

    def bytes_of(self, frame) -> bytes:  # noqa: ANN001
        with self.kit.path.open("rb") as spool:
            spool.seek(frame.offset)
            return spool.read(frame.size)

    def replace(self, keep_from_lsn: int, rewrite_from_lsn: int | None = None) -> None:
        """RedDB rewrites the spool into a new file renamed over it: it keeps the records from
        ``keep_from_lsn`` on; with ``rewrite_from_lsn``, a new term rewrites those from there."""
        kept = b"".join(
            self.bytes_of(f)
            for f in self.frames()
            if f.lsn >= keep_from_lsn and (rewrite_from_lsn is None or f.lsn < rewrite_from_lsn)
        )
        temp = self.kit.path.with_suffix(".tmp")
        temp.write_bytes(kept)
        self.kit.writer.close()
        os.rename(temp, self.kit.path)
        self.kit.writer = SpoolWriter(self.kit.path, layout=self.kit.layout, fsync=False)
        if rewrite_from_lsn is not None:
            self.kit.term += 1
            top = max(self.final)
            for lsn in range(rewrite_from_lsn, top + 1):
                self.insert(lsn, "v2")
            self.fork_lsn = rewrite_from_lsn
        self.prunes += 1


class Consumer(threading.Thread):
    """A psycopg2 replication consumer that reconnects after errors; confirms ``behind`` LSNs
    behind what it received (0: each COMMIT at once)."""

    def __init__(self, server: PgshimServer, slot: str, behind: int) -> None:
        super().__init__(daemon=True)
        self.server, self.slot, self.behind = server, slot, behind
        self.received: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._consume()
            except psycopg2.Error as exc:
                self.errors.append(str(exc).strip())
                if "can no longer get changes" in str(exc):
                    return
                time.sleep(0.2)

    def _consume(self) -> None:
        conn = psycopg2.connect(
            self.server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
        )
        try:
            cur = conn.cursor()
            cur.start_replication(slot_name=self.slot, decode=True, status_interval=1)
            while not self.stop.is_set():
                message = cur.read_message()
                if message is None:
                    select.select([cur], [], [], 0.1)
                    continue
                if match := INSERT.search(message.payload):
                    self.received.append((int(match[1]), match[2]))
                elif message.payload.startswith("COMMIT") and self.received:
                    lsn = self.received[-1][0] - self.behind
                    if lsn > 0:
                        cur.send_feedback(flush_lsn=end_pos(lsn), force=True)
        finally:
            conn.close()


def test_late_twice_pruned_and_diverging_records_are_delivered_or_reported(
    tmp_path: Path,
) -> None:
    writer = Writer(tmp_path / "data.rdb.logical.wal")
    writer.write(5)
    server = PgshimServer(
        writer.kit.path, tmp_path / "state", env={"PGSHIM_REORDER_GRACE": "0.3"}
    ).start()
    consumers = []
    try:
        for slot in ("eager", "lazy"):
            server.psql(f"SELECT pgshim_create_history_slot('{slot}', 'test_decoding')")
        eager, lazy = Consumer(server, "eager", 0), Consumer(server, "lazy", BEHIND)
        consumers = [eager, lazy]
        for consumer in consumers:
            consumer.start()
        writer.write(RECORDS // 3)
        writer.replace(keep_from_lsn=max(writer.final) - 2 * BEHIND)  # a prune
        writer.write(RECORDS // 3)
        top = max(writer.final)
        wait_for(lambda: server.confirmed_lsns()["eager"] >= top, 30)
        writer.replace(keep_from_lsn=top - 2 * BEHIND, rewrite_from_lsn=top - 20)  # failover
        writer.write(RECORDS // 3)
        final_lsn = max(writer.final)
        wait_for(lambda: any(lsn == final_lsn for lsn, _ in lazy.received), 60)
        reason = server.psql("SELECT invalidation_reason FROM pgshim_slots WHERE slot_name = 'eager'")
        spool_counts = server.psql("SELECT duplicates, superseded, rewinds FROM pgshim_spool")
    finally:
        for consumer in consumers:
            consumer.stop.set()
        for consumer in consumers:
            consumer.join(10)
        server.stop()

    # the consumer that stayed behind received the final version of every LSN written
    last_version = {}
    for lsn, version in lazy.received:
        last_version[lsn] = version
    missing = [lsn for lsn in writer.final if lsn not in last_version]
    assert missing == []
    wrong = [lsn for lsn, version in writer.final.items() if last_version[lsn] != version]
    assert wrong == []
    # the eager one confirmed records the failover rewrote: its slot is lost and says why
    assert f"RedDB LSN {writer.fork_lsn}" in reason, reason
    assert any("can no longer get changes" in error for error in eager.errors), eager.errors
    before_fork = {lsn for lsn, _ in eager.received if lsn < writer.fork_lsn}
    assert before_fork == {lsn for lsn in writer.final if lsn < writer.fork_lsn}
    print(
        f"{len(writer.final)} LSNs written ({writer.late} late, {writer.twice} twice, "
        f"{writer.prunes} replacements, a new term from LSN {writer.fork_lsn}); lazy slot: "
        f"{len(last_version)} received in their final version, 0 lost; eager slot: "
        f"{len(before_fork)} received before the divergence, then lost: {reason}; "
        f"pgshim_spool duplicates|superseded|rewinds = {spool_counts}"
    )
