"""pg_recvlogical catching up through a real server: what it receives from the decoded store is what
it receives when the store is gone and the spool is decoded again."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from spoolkit import end_pos

from pgshim.logical.decoded_store import STORE_FILE_NAME
from pgshim.spool.generate import write_workload

pytestmark = pytest.mark.timeout(180)

RECORDS = 3000


def catch_up(server, slot: str, out: Path, last_lsn: int, *options: str) -> list[str]:  # noqa: ANN001
    server.psql(f"SELECT pgshim_create_history_slot('{slot}', 'test_decoding')")
    done = server.recvlogical("-S", slot, "--start", "-f", str(out), "--endpos",
                              end_pos(last_lsn), *options, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text().splitlines()


def test_catch_up_from_the_store_equals_decoding_the_spool(pgshim, tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), RECORDS, seed=5)
    state = tmp_path / "state"
    os.environ["PGSHIM_RING_TRANSACTIONS"] = "64"  # sessions starting at 0 are behind the ring
    try:
        server = pgshim(spool, state_dir=state)
        last_lsn = int(server.psql("SELECT last_lsn FROM pgshim_spool"))
        from_store = catch_up(server, "a", tmp_path / "a.txt", last_lsn, "-o", "include-xids=0")
        server.stop()
        with sqlite3.connect(state / STORE_FILE_NAME) as db:
            (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        assert chunks >= RECORDS // 256 - 2

        for suffix in ("", "-wal", "-shm"):
            Path(f"{state / STORE_FILE_NAME}{suffix}").unlink(missing_ok=True)
        (state / "state.db").unlink()  # ingestion starts over; the spool is decoded again
        for suffix in ("-wal", "-shm"):
            Path(f"{state / 'state.db'}{suffix}").unlink(missing_ok=True)
        os.environ["PGSHIM_RING_TRANSACTIONS"] = "4096"  # everything from the spool's decode
        again = pgshim(spool, state_dir=state)
        from_spool = catch_up(again, "b", tmp_path / "b.txt", last_lsn, "-o", "include-xids=0")
    finally:
        os.environ.pop("PGSHIM_RING_TRANSACTIONS", None)
    assert len(from_store) > RECORDS
    assert from_store == from_spool
