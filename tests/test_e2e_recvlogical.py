"""pg_recvlogical 15 against a real pgshim process, on a spool appended live."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from server_proc import wait_for
from spoolkit import end_pos

pytestmark = pytest.mark.timeout(120)


def test_new_slot_starts_at_the_end_and_endpos_stops(spool, pgshim, tmp_path: Path) -> None:
    spool.insert("users", name="before", n=1)
    server = pgshim(spool.path)
    created = server.recvlogical("-S", "td", "--create-slot", "-P", "test_decoding")
    assert created.returncode == 0, created.stderr
    assert server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots") == end_pos(1)

    lsn_a, alice = spool.insert("users", name="alice", n=7)
    spool.skip_lsn()  # a hole, as a KV watch event leaves
    lsn_u = spool.update("users", alice, name="alice o'hara", n=8)
    lsn_d = spool.delete("users", alice)
    out = tmp_path / "out.txt"
    done = server.recvlogical("-S", "td", "--start", "-f", str(out), "--endpos", end_pos(lsn_d))
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == [
        f"BEGIN {lsn_a}",
        f"table public.users: INSERT: rid[bigint]:{alice} n[bigint]:7 name[text]:'alice'",
        f"COMMIT {lsn_a}",
        f"BEGIN {lsn_u}",
        f"table public.users: UPDATE: rid[bigint]:{alice} n[bigint]:8 name[text]:'alice o''hara'",
        f"COMMIT {lsn_u}",
        f"BEGIN {lsn_d}",
        f"table public.users: DELETE: rid[bigint]:{alice}",
        f"COMMIT {lsn_d}",
    ]
    # --endpos confirmed its end position before leaving
    slot = server.psql("SELECT confirmed_flush_lsn, active FROM pg_replication_slots")
    assert slot == f"{end_pos(lsn_d)}|f"


def test_live_stream_sigint_and_restart_redelivers_only_unflushed(spool, pgshim, tmp_path) -> None:
    server = pgshim(spool.path)
    assert server.recvlogical("-S", "live", "--create-slot", "-P", "test_decoding").returncode == 0
    first = tmp_path / "first.txt"
    proc = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-S", "live", "--start", "-f", str(first),
         "-s", "1", "-F", "1", "-o", "include-xids=0"],
        env=server.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ids = []
        for i in range(20):
            _, row = spool.insert("events", seq=i)
            ids.append(row)
            time.sleep(0.02)
        # live records arrive within milliseconds, not seconds of polling
        wait_for(lambda: first.exists() and first.read_text().count("INSERT") == 20)
        # pg_recvlogical flushes (-F 1) and reports (-s 1): the slot follows
        wait_for(lambda: server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots")
                 == end_pos(spool.lsn), timeout=10)  # fmt: skip
        assert server.psql("SELECT last_durable_lsn FROM pgshim_replicas") == str(spool.lsn)
        for i in range(20, 25):
            spool.insert("events", seq=i)
        wait_for(lambda: first.read_text().count("INSERT") == 25)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    lines = first.read_text().splitlines()
    assert lines[:3] == [
        "BEGIN",
        f"table public.events: INSERT: rid[bigint]:{ids[0]} seq[bigint]:0",
        "COMMIT",
    ]
    # after SIGINT pg_recvlogical confirms nothing more: the unflushed tail is sent again
    flushed = server.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots")
    second = tmp_path / "second.txt"
    done = server.recvlogical(
        "-S", "live", "--start", "-f", str(second), "--endpos", end_pos(spool.lsn)
    )
    assert done.returncode == 0, done.stderr
    again = [line for line in second.read_text().splitlines() if "INSERT" in line]
    seqs = [int(line.rsplit(":", 1)[1]) for line in again]
    high, low = (int(half, 16) for half in flushed.split("/"))
    flushed_lsn = ((high << 32) | low) >> 8
    # exactly the records after the last flushed one come again (seq i is RedDB LSN i + 1)
    assert seqs == list(range(flushed_lsn, 25))
    assert flushed_lsn >= 20


def test_options_wal2json_and_drop_slot(spool, pgshim, tmp_path: Path) -> None:
    server = pgshim(spool.path)
    assert server.recvlogical("-S", "w2j", "--create-slot", "-P", "wal2json").returncode == 0
    assert server.recvlogical("-S", "tdx", "--create-slot", "-P", "test_decoding").returncode == 0
    lsn, rid = spool.insert("orders", item="book", qty=2, price=9.5, paid=True)
    out = tmp_path / "w2j.txt"
    done = server.recvlogical(
        "-S", "w2j", "--start", "-f", str(out), "--endpos", end_pos(lsn),
        "-o", "format-version=2", "-o", "include-xids=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["action"] for m in messages] == ["B", "I", "C"]
    assert messages[0]["xid"] == lsn
    insert = messages[1]
    assert (insert["schema"], insert["table"]) == ("public", "orders")
    assert {c["name"]: c["value"] for c in insert["columns"]} == {
        "rid": rid,
        "item": "book",
        "paid": True,
        "price": 9.5,
        "qty": 2,
    }

    td = tmp_path / "td.txt"
    done = server.recvlogical(
        "-S", "tdx", "--start", "-f", str(td), "--endpos", end_pos(lsn),
        "-o", "include-xids=0", "-o", "include-timestamp",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = td.read_text().splitlines()
    assert lines[0] == "BEGIN" and lines[2].startswith("COMMIT (at ")

    bad = server.recvlogical("-S", "tdx", "--start", "-n", "-f", "-", "-o", "no-such-option=1")
    assert 'option "no-such-option" = "1" is unknown' in bad.stderr

    assert server.recvlogical("-S", "w2j", "--drop-slot").returncode == 0
    assert server.psql("SELECT string_agg(slot_name, ',') FROM pg_replication_slots") == "tdx"
    missing = server.recvlogical("-S", "w2j", "--drop-slot")
    assert 'replication slot "w2j" does not exist' in missing.stderr
