"""A bad frame in the middle of the spool: reported once, waited out, then XX001 past it only."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from server_proc import PgshimServer
from spoolkit import SpoolKit, end_pos

pytestmark = pytest.mark.timeout(120)

GRACE = 1.5


def recvlogical(server: PgshimServer, *args: str, timeout: float = 30):
    return subprocess.run(
        ["pg_recvlogical", "-d", "reddb", "-n", *args],
        env=server.env_for_clients(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def flip_byte(path: Path, offset: int) -> int:
    """XOR one byte of the file in place (as a bad sector would); returns the original byte."""
    with path.open("r+b") as f:
        f.seek(offset)
        original = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([original ^ 0x5A]))
    return original


def inserted_seqs(text: str) -> list[int]:
    return [int(line.rsplit(":", 1)[1]) for line in text.splitlines() if "INSERT" in line]


@pytest.fixture
def server(spool: SpoolKit, tmp_path: Path):
    proc = PgshimServer(
        spool.path, tmp_path / "state", env={"PGSHIM_CORRUPTION_GRACE": str(GRACE)}
    ).start()
    yield proc
    proc.stop()


def test_bad_frame_mid_file(spool: SpoolKit, server: PgshimServer, tmp_path: Path) -> None:
    for seq in range(1, 6):
        spool.insert("events", seq=seq)
    assert server.psql("SELECT pgshim_create_history_slot('behind', 'test_decoding')")
    assert recvlogical(server, "-S", "live", "--create-slot", "-P", "test_decoding").returncode == 0

    spool.insert("events", seq=6)
    bad_offset = spool.path.stat().st_size
    # frames 7 and 8 are written elsewhere, one byte of 7 damaged, then appended in one write:
    # the server never sees a good copy of 7 (it reads the spool as soon as it changes)
    side = SpoolKit(tmp_path / "side.rdb.logical.wal", lsn=spool.lsn, next_id=spool.next_id)
    side.insert("events", seq=7)
    frame_size = side.path.stat().st_size
    side.insert("events", seq=8)  # a good frame after the bad one: corruption, not a torn tail
    side.close()
    flipped_at = bad_offset + frame_size // 2
    original = flip_byte(side.path, frame_size // 2)
    with spool.path.open("ab") as f:
        f.write(side.path.read_bytes())

    started = time.monotonic()
    live_out = tmp_path / "live.txt"
    live = recvlogical(server, "-S", "live", "--start", "-f", str(live_out), "-o", "include-xids=0")
    waited = time.monotonic() - started
    # the session that needs LSN 7 gets what precedes it, then XX001 once the grace has passed
    assert live.returncode != 0
    assert inserted_seqs(live_out.read_text()) == [6]
    assert "invalid page in RedDB spool" in live.stderr
    assert f"at byte offset {bad_offset}:" in live.stderr
    assert waited >= GRACE * 0.9

    status = server.psql("SELECT corrupt_offset, corrupt_reason IS NOT NULL FROM pgshim_spool")
    assert status == f"{bad_offset}|t"

    # a session still behind the bad frame streams everything before it, after the grace too
    behind_out = tmp_path / "behind.txt"
    behind = recvlogical(
        server, "-S", "behind", "--start", "-f", str(behind_out), "--endpos", end_pos(6)
    )
    assert behind.returncode == 0, behind.stderr
    assert inserted_seqs(behind_out.read_text()) == [1, 2, 3, 4, 5, 6]

    # the server stayed up and logged the bad frame once, however often it re-read it
    assert server.psql("SELECT 1") == "1"
    assert server.log().count(f"bad frame at byte offset {bad_offset}") == 1

    # RedDB repairs the frame: the status clears and the stream goes on past it
    flip_byte(spool.path, flipped_at)
    with spool.path.open("rb") as f:
        f.seek(flipped_at)
        assert f.read(1)[0] == original
    os.utime(spool.path)
    repaired_out = tmp_path / "repaired.txt"
    repaired = recvlogical(
        server, "-S", "live", "--start", "-f", str(repaired_out), "--endpos", end_pos(8)
    )
    assert repaired.returncode == 0, repaired.stderr
    assert inserted_seqs(repaired_out.read_text())[-2:] == [7, 8]
    assert server.psql("SELECT corrupt_offset IS NULL FROM pgshim_spool") == "t"


def test_a_frame_damaged_behind_the_tail_fails_catch_up_reads_past_it(
    spool: SpoolKit, tmp_path: Path
) -> None:
    # a bad sector under records already read, which a new consumer has to read again from the
    # spool (the ring is small, no output was rendered ahead for its format): it gets everything
    # up to the bad frame, then XX001 naming the offset, never a silent jump over the rest
    offsets = []
    for seq in range(1, 601):
        offsets.append(spool.path.stat().st_size)
        spool.insert("events", seq=seq)
    end = end_pos(spool.lsn)
    server = PgshimServer(spool.path, tmp_path / "state",
                          env={"PGSHIM_RING_TRANSACTIONS": "16"}).start()  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while server.psql(f"SELECT pg_current_wal_lsn() >= '{end}'") != "t":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        bad_offset = offsets[299]  # seq 300's frame, in the middle of the second stored chunk
        flip_byte(spool.path, bad_offset + 40)
        assert server.psql("SELECT pgshim_create_history_slot('early', 'test_decoding')")
        out = tmp_path / "early.txt"
        early = recvlogical(server, "-S", "early", "--start", "-f", str(out), "--endpos", end)
        assert early.returncode != 0
        assert f'invalid page in RedDB spool "{spool.path}" at byte offset {bad_offset}:' in (
            early.stderr
        )
        # what came before it, in order and without a gap (the batch read with the bad frame
        # may go unsent: the slot resends it), and nothing after it
        seqs = inserted_seqs(out.read_text())
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 300
        assert server.log().count(f"bad frame at byte offset {bad_offset}") == 1
        assert server.psql("SELECT 1") == "1"  # the server serves everyone else
    finally:
        server.stop()
