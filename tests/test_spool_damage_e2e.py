"""End to end over a real socket: bad timestamps are delivered, a damaged length is reported.

Every change written to the spool is checked independently (a reader of the frames written,
not pgshim's) to be delivered to a session or reported: in ``pgshim_spool`` and, after
``corruption_grace``, as XX001 to the session that needs it.
"""

from __future__ import annotations

import re
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from server_proc import PgshimServer, wait_for
from spoolkit import SpoolKit, end_pos
from test_reliability_corruption import GRACE, inserted_seqs, recvlogical
from test_reliability_timestamps import MICROS, U63, garbage_at, insert_at

pytestmark = pytest.mark.timeout(120)


def written_lsns(data: bytes) -> list[tuple[int, int]]:
    """(LSN, offset) of each v3-41 frame in ``data``, read with struct and zlib alone."""
    out, pos = [], 0
    while pos + 45 <= len(data):
        assert data[pos : pos + 5] == b"RDLW\x03", pos
        _term, _epoch, lsn, _ts, size = struct.unpack_from("<QQQQI", data, pos + 5)
        end = pos + 41 + size
        assert zlib.crc32(data[pos + 4 : end]) == struct.unpack_from("<I", data, end)[0]
        out.append((lsn, pos))
        pos = end + 4
    assert pos == len(data)
    return out


def transactions(text: str) -> dict[int, list[str]]:
    """test_decoding output with include-xids: xid (= RedDB LSN) -> its lines."""
    txs: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if m := re.fullmatch(r"BEGIN (\d+)", line):
            current = txs.setdefault(int(m.group(1)), [])
        elif line.startswith("COMMIT") and current is not None:
            current.append(line)
            current = None
        elif current is not None:
            current.append(line)
    return txs


def test_out_of_range_timestamps_at_start_and_live(spool: SpoolKit, tmp_path: Path) -> None:
    bad: dict[int, int] = {}  # LSN -> errors expected for it
    spool.insert("events", seq=1)
    bad[insert_at(spool, "events", MICROS, seq=2)] = 1
    bad[insert_at(spool, "events", U63, frame_ms=U63, seq=3)] = 1
    bad[garbage_at(spool, U63)] = 2  # not JSON, and its frame's time out of range
    spool.insert("events", seq=5)

    server = PgshimServer(spool.path, tmp_path / "state").start()  # no crash at start
    try:
        assert server.psql("SELECT pgshim_create_history_slot('all', 'test_decoding')")
        # live: records written while the server runs
        bad[insert_at(spool, "events", MICROS * 1000, seq=6)] = 1
        bad[insert_at(spool, "events", -(1 << 63), seq=7)] = 1
        spool.insert("events", seq=8)
        out = tmp_path / "all.txt"
        done = server.recvlogical(
            "-S", "all", "--start", "-f", str(out), "--endpos", end_pos(spool.lsn),
            "-o", "include-timestamp=1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        txs = transactions(out.read_text())

        # independently: every record written is delivered, at its LSN
        written = written_lsns(spool.path.read_bytes())
        assert sorted(txs) == [lsn for lsn, _ in written] == list(range(1, spool.lsn + 1))
        for lsn, lines in txs.items():
            if lsn == 4:
                assert len(lines) == 1  # unparseable: an empty transaction, reported
            else:
                assert len(lines) == 2 and "INSERT" in lines[0], lines
        clamped_max = "(at 9999-12-31 23:59:59.999+00)"
        for lsn in (2, 3, 4, 6):
            assert txs[lsn][-1] == f"COMMIT {lsn} {clamped_max}"
        assert txs[7][-1] == "COMMIT 7 (at 0001-01-01 00:00:00+00)"
        assert re.fullmatch(r"COMMIT 8 \(at 20\d\d-.*\)", txs[8][-1])

        # counted in pgshim_spool, logged with offset and LSN, once
        decode_errors = server.psql("SELECT decode_errors FROM pgshim_spool")
        assert int(decode_errors) == sum(bad.values())
        log = server.log()
        offsets = dict(written)
        for lsn, count in bad.items():
            lines = [x for x in log.splitlines() if f"spool offset {offsets[lsn]}" in x]
            assert len(lines) == count, (lsn, lines)
            assert all(re.search(rf"\b(LSN|lsn) {lsn}\b", x) for x in lines)
        assert "Traceback" not in log
    finally:
        assert server.stop() == 0


@pytest.fixture
def server(spool: SpoolKit, tmp_path: Path):
    proc = PgshimServer(
        spool.path, tmp_path / "state", env={"PGSHIM_CORRUPTION_GRACE": str(GRACE)}
    ).start()
    yield proc
    proc.stop()


def test_damaged_length_mid_spool_is_reported_and_xx001_after_the_grace(
    spool: SpoolKit, server: PgshimServer, tmp_path: Path
) -> None:
    for seq in range(1, 6):
        spool.insert("events", seq=seq)
    assert server.psql("SELECT pgshim_create_history_slot('behind', 'test_decoding')")
    assert recvlogical(server, "-S", "live", "--create-slot", "-P", "test_decoding").returncode == 0
    spool.insert("events", seq=6)

    # frames 7..13 written elsewhere, 7's length field damaged (it now runs past the end of the
    # file, six complete frames after it), then appended in one write
    bad_offset = spool.path.stat().st_size
    side = SpoolKit(tmp_path / "side.wal", lsn=spool.lsn, next_id=spool.next_id)
    for seq in range(7, 14):
        side.insert("events", seq=seq)
    side.close()
    good = side.path.read_bytes()
    (length,) = struct.unpack_from("<I", good, 37)
    damaged = good[:37] + struct.pack("<I", length + 1_000_000) + good[41:]
    with spool.path.open("ab") as f:
        f.write(damaged)
    written = written_lsns(spool.path.read_bytes()[:bad_offset] + good)
    assert [lsn for lsn, _ in written] == list(range(1, 14))

    # reported in pgshim_spool, with its offset
    status = wait_for(
        lambda: server.psql("SELECT corrupt_offset, corrupt_reason FROM pgshim_spool")
        .split("|", 1)[0] == str(bad_offset)
        and server.psql("SELECT corrupt_offset, corrupt_reason FROM pgshim_spool")
    )  # fmt: skip
    assert "runs past the end of the spool" in status

    started = time.monotonic()
    live_out = tmp_path / "live.txt"
    live = recvlogical(server, "-S", "live", "--start", "-f", str(live_out), "-o", "include-xids=0")
    assert live.returncode != 0
    assert "invalid page in RedDB spool" in live.stderr
    assert f"at byte offset {bad_offset}:" in live.stderr
    assert time.monotonic() - started >= GRACE * 0.5  # not before the grace
    live_seqs = inserted_seqs(live_out.read_text())
    assert live_seqs == [6]

    behind_out = tmp_path / "behind.txt"
    behind = recvlogical(
        server, "-S", "behind", "--start", "-f", str(behind_out), "--endpos", end_pos(6)
    )
    assert behind.returncode == 0, behind.stderr
    assert inserted_seqs(behind_out.read_text()) == [1, 2, 3, 4, 5, 6]

    # independently: each change written is delivered, or lies at or past the reported offset
    # (and the session needing it got XX001)
    delivered = set(inserted_seqs(behind_out.read_text())) | set(live_seqs)
    reported = {lsn for lsn, offset in written if offset >= bad_offset}
    assert delivered | reported == {lsn for lsn, _ in written}
    assert (len(written), len(delivered), len(reported)) == (13, 6, 7)

    log = server.log()
    assert log.count(f"bad frame at byte offset {bad_offset}") == 1
    assert server.psql("SELECT 1") == "1"

    # RedDB repairs it: everything after it arrives
    with spool.path.open("r+b") as f:
        f.seek(bad_offset)
        f.write(good)
    repaired_out = tmp_path / "repaired.txt"
    repaired = recvlogical(
        server, "-S", "live", "--start", "-f", str(repaired_out), "--endpos", end_pos(13)
    )
    assert repaired.returncode == 0, repaired.stderr
    assert inserted_seqs(repaired_out.read_text())[-7:] == list(range(7, 14))
    assert server.psql("SELECT corrupt_offset IS NULL FROM pgshim_spool") == "t"


def test_a_torn_tail_alone_is_never_reported(
    spool: SpoolKit, server: PgshimServer, tmp_path: Path
) -> None:
    for seq in range(1, 4):
        spool.insert("events", seq=seq)
    assert recvlogical(server, "-S", "live", "--create-slot", "-P", "test_decoding").returncode == 0
    side = SpoolKit(tmp_path / "side.wal", lsn=spool.lsn, next_id=spool.next_id)
    side.insert("events", seq=4)
    side.close()
    frame4 = side.path.read_bytes()
    with spool.path.open("ab") as f:
        f.write(frame4[:50])  # RedDB is still writing it

    out = tmp_path / "live.txt"
    proc = subprocess.Popen(
        ["pg_recvlogical", "-d", "reddb", "-n", "-S", "live", "--start", "-f", str(out),
         "-o", "include-xids=0", "-F", "0"],
        env=server.env_for_clients(), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(GRACE * 2.5)
        assert proc.poll() is None  # still streaming: no XX001 for a torn tail
        assert server.psql("SELECT corrupt_offset IS NULL FROM pgshim_spool") == "t"
        with spool.path.open("ab") as f:
            f.write(frame4[50:])
        wait_for(lambda: out.exists() and inserted_seqs(out.read_text()) == [4])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert "bad frame" not in server.log()
