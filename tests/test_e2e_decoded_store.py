"""pg_recvlogical catching up through a real server: what it receives from the decoded store, or as
output rendered ahead for its slot, is what it receives when the store is gone and the spool is
decoded again."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from server_proc import wait_for
from spoolkit import end_pos

from pgshim.logical.decoded_store import STORE_FILE_NAME
from pgshim.spool.generate import write_workload

pytestmark = pytest.mark.timeout(180)

RECORDS = 3000


def receive(server, slot: str, out: Path, last_lsn: int, *options: str) -> bytes:  # noqa: ANN001
    done = server.recvlogical("-S", slot, "--start", "-f", str(out), "--endpos",
                              end_pos(last_lsn), *options, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def catch_up(server, slot: str, out: Path, last_lsn: int, *options: str) -> list[str]:  # noqa: ANN001
    server.psql(f"SELECT pgshim_create_history_slot('{slot}', 'test_decoding')")
    return receive(server, slot, out, last_lsn, *options).decode().splitlines()


def forget_store_and_state(state: Path) -> None:
    """Ingestion starts over and the spool is decoded again."""
    for name in (STORE_FILE_NAME, "state.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state / name}{suffix}").unlink(missing_ok=True)


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

        forget_store_and_state(state)
        os.environ["PGSHIM_RING_TRANSACTIONS"] = "4096"  # everything from the spool's decode
        again = pgshim(spool, state_dir=state)
        from_spool = catch_up(again, "b", tmp_path / "b.txt", last_lsn, "-o", "include-xids=0")
    finally:
        os.environ.pop("PGSHIM_RING_TRANSACTIONS", None)
    assert len(from_store) > RECORDS
    assert from_store == from_spool


PGOUTPUT = ("-o", "proto_version=1", "-o", "publication_names=p")


def test_slots_waiting_for_changes_get_them_rendered_ahead(pgshim, tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"  # RedDB writes it once the slots exist
    state = tmp_path / "state"
    os.environ["PGSHIM_RING_TRANSACTIONS"] = "64"
    try:
        server = pgshim(spool, state_dir=state)
        server.psql("SELECT pg_create_logical_replication_slot('td', 'test_decoding')")
        server.psql("SELECT pg_create_logical_replication_slot('po', 'pgoutput')")
        server.psql("CREATE PUBLICATION p FOR ALL TABLES")
        write_workload(str(spool), RECORDS, seed=8)
        wait_for(lambda: server.psql("SELECT records FROM pgshim_spool") == str(RECORDS), 60)
        last = int(server.psql("SELECT last_lsn FROM pgshim_spool"))
        wait_for(lambda: server.psql("SELECT pg_current_wal_lsn()") == end_pos(last), 60)
        text = receive(server, "td", tmp_path / "td.txt", last)
        binary = receive(server, "po", tmp_path / "po.bin", last, *PGOUTPUT)
        formats = server.psql("SELECT format, chunks FROM pgshim_output_formats ORDER BY 1")
        server.stop()
        chunks = dict(line.split("|") for line in formats.splitlines())
        assert chunks.keys() == {"pgoutput:text", "test_decoding:100"}
        assert min(int(n) for n in chunks.values()) >= RECORDS // 256 - 2

        forget_store_and_state(state)
        os.environ["PGSHIM_RING_TRANSACTIONS"] = "4096"
        again = pgshim(spool, state_dir=state)
        again.psql("SELECT pgshim_create_history_slot('td', 'test_decoding')")
        again.psql("SELECT pgshim_create_history_slot('po', 'pgoutput')")
        again.psql("CREATE PUBLICATION p FOR ALL TABLES")
        assert receive(again, "td", tmp_path / "td2.txt", last) == text
        assert receive(again, "po", tmp_path / "po2.bin", last, *PGOUTPUT) == binary
    finally:
        os.environ.pop("PGSHIM_RING_TRANSACTIONS", None)
    assert text.count(b"\nCOMMIT ") == RECORDS and binary.count(b"\nC\x00") > RECORDS // 2
