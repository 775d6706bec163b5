"""A damaged length field is corruption wherever it is, a torn tail is not; stale bytes are re-read.

A frame whose length runs past the end of the file while complete frames follow it cannot be a
frame RedDB is still writing (RedDB appends each frame with a single write): it is reported like
any bad frame, at its offset, so that sessions needing what follows get XX001 after
``corruption_grace``. A frame cut short with nothing after it is retried, never reported. Bytes
read as a torn tail are read again from the file when it changed, not taken from a buffer.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import pytest
from spoolkit import SpoolKit

from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.reddb.identity import IdentityMap
from pgshim.spool import follower as follower_module
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import MAX_PAYLOAD, build_frame, scan_frames
from pgshim.state import open_state

LAYOUTS = ["v1", "v2", "v3-33", "v3-41"]
# where each layout keeps its payload length, and how wide it is
LENGTH_FIELD = {"v1": (13, "<Q"), "v2": (21, "<I"), "v3-33": (29, "<I"), "v3-41": (37, "<I")}


def frame(lsn: int, layout: str = "v3-41", size: int = 40) -> bytes:
    payload = (b'{"lsn":%d,"pad":"' % lsn).ljust(size - 2, b"x") + b'"}'
    return build_frame(layout, lsn, payload, timestamp_ms=1_700_000_000_000 + lsn, term=2)


def with_length(data: bytes, layout: str, length: int) -> bytes:
    at, fmt = LENGTH_FIELD[layout]
    return data[:at] + struct.pack(fmt, length) + data[at + struct.calcsize(fmt) :]


def spool_bytes(layout: str, count: int) -> tuple[bytes, list[int]]:
    """``count`` frames (LSN 1..count) and the offset of each."""
    data, offsets = b"", []
    for lsn in range(1, count + 1):
        offsets.append(len(data))
        data += frame(lsn, layout)
    return data, offsets


def damage_length(data: bytes, offset: int, layout: str, by: int = 1_000_000) -> bytes:
    """The frame at ``offset`` says it is ``by`` bytes longer than it is."""
    at, fmt = LENGTH_FIELD[layout]
    (length,) = struct.unpack_from(fmt, data, offset + at)
    return data[:offset] + with_length(data[offset:], layout, length + by)


# -- frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("past_end", [1, 1000, 1_000_000, 200_000_000])
def test_a_length_running_past_the_end_with_frames_after_it_is_corruption(
    layout: str, past_end: int
) -> None:
    data, offsets = spool_bytes(layout, 10)
    # frame 4 says it ends ``past_end`` bytes after the end of the file; frames 5..10 follow
    damaged = damage_length(data, offsets[3], layout, len(data) - offsets[4] + past_end)
    result = scan_frames(damaged, 1000)
    assert [f.lsn for f in result.frames] == [1, 2, 3]
    assert result.consumed == offsets[3]
    assert result.problem is not None, "taken for a torn tail"
    assert result.problem.offset == 1000 + offsets[3]
    assert not result.problem.at_tail
    assert "runs past the end" in result.problem.reason
    assert f"complete frame follows at byte offset {1000 + offsets[4]}" in result.problem.reason


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_last_frame_cut_at_every_byte_is_a_torn_tail(layout: str) -> None:
    data, offsets = spool_bytes(layout, 6)
    for cut in range(offsets[5], len(data)):
        result = scan_frames(data[:cut])
        assert [f.lsn for f in result.frames] == [1, 2, 3, 4, 5], cut
        assert result.problem is None, (cut, result.problem)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_damaged_length_with_nothing_after_it_waits_like_a_torn_tail(layout: str) -> None:
    data, offsets = spool_bytes(layout, 6)
    damaged = damage_length(data, offsets[5], layout)
    result = scan_frames(damaged)
    assert [f.lsn for f in result.frames] == [1, 2, 3, 4, 5]
    assert result.problem is None  # RedDB may be writing it; a frame after it would tell
    # ... and beyond the 256 MiB guard it is corruption at once, at the tail too
    guarded = scan_frames(
        data[: offsets[5]] + with_length(frame(6, layout), layout, MAX_PAYLOAD + 1)
    )
    if layout in ("v1", "v2"):  # one reading of the header: nothing else could be meant
        assert guarded.problem is not None and "exceeds 256 MiB" in guarded.problem.reason


def test_payload_bytes_that_look_like_a_frame_header_do_not_make_a_torn_tail_corrupt() -> None:
    # a payload holding the magic, even a whole frame's header fields, is not a complete frame
    inner = frame(99)
    payload = b'{"text":"RDLW' + inner[4:40].hex().encode() + b'RDLW\\u0003"}'
    torn = build_frame("v3-41", 7, payload)
    for cut in range(len(torn)):
        assert scan_frames(frame(6) + torn[:cut]).problem is None, cut


# -- the follower ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [64, 1 << 20])
def test_follower_reports_a_damaged_length_mid_spool_once_and_resumes_after_repair(
    tmp_path: Path, chunk_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    data, offsets = spool_bytes("v3-41", 10)
    path = tmp_path / "data.rdb.logical.wal"
    path.write_bytes(damage_length(data, offsets[3], "v3-41"))
    caplog.set_level(logging.WARNING, logger="pgshim.spool")
    with SpoolFollower(path, chunk_size=chunk_size) as follower:
        assert [f.lsn for f in follower.poll()] == [1, 2, 3]
        for _ in range(3):
            assert follower.poll() == []
        status = follower.status
        assert status.corrupt_offset == offsets[3]
        assert "runs past the end" in (status.corrupt_reason or "")
        assert status.offset == offsets[3]
        warnings = [r.getMessage() for r in caplog.records if "bad frame" in r.getMessage()]
        assert len(warnings) == 1 and f"byte offset {offsets[3]}:" in warnings[0]

        # RedDB repairs the file in place (same size): the rest is read, the status clears
        with path.open("r+b") as f:
            f.write(data)
        assert [f.lsn for f in follower.poll()] == [4, 5, 6, 7, 8, 9, 10]
        assert follower.status.corrupt_offset is None
        assert follower.status.corrupt_reason is None


def test_follower_never_reports_a_torn_tail_and_completes_it(tmp_path: Path) -> None:
    data, offsets = spool_bytes("v3-41", 8)
    path = tmp_path / "data.rdb.logical.wal"
    path.write_bytes(data[: offsets[7] + 20])
    with SpoolFollower(path) as follower:
        assert len(follower.poll()) == 7
        past = os.stat(path).st_mtime_ns - 10 * 10**9
        os.utime(path, ns=(past, past))  # long untouched: polls need not read it again
        for _ in range(5):
            assert follower.poll() == []
            assert follower.status.corrupt_offset is None
        with path.open("ab") as f:
            f.write(data[offsets[7] + 20 :])
        assert [f.lsn for f in follower.poll()] == [8]


def test_an_unchanged_torn_tail_is_not_read_again(tmp_path: Path, monkeypatch) -> None:
    data, offsets = spool_bytes("v3-41", 4)
    path = tmp_path / "data.rdb.logical.wal"
    path.write_bytes(data[:-5])
    past = os.stat(path).st_mtime_ns - 10 * 10**9
    os.utime(path, ns=(past, past))
    with SpoolFollower(path) as follower:
        assert len(follower.poll()) == 3
        reads = []
        real_pread = os.pread
        monkeypatch.setattr(
            follower_module.os, "pread", lambda *a: reads.append(a) or real_pread(*a)
        )
        for _ in range(10):
            assert follower.poll() == []
        assert reads == []
        os.utime(path)  # touched (RedDB rewrote it, perhaps): read from the file again
        assert follower.poll() == []
        assert reads


def test_torn_bytes_rewritten_in_place_are_read_again_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.rdb.logical.wal"
    one, two = frame(1), frame(2)
    good = one + two
    # a length field damaged while the frame was written, then fixed in place: same size
    path.write_bytes(one + damage_length(two, 0, "v3-41", by=5))
    with SpoolFollower(path) as follower:
        assert [f.lsn for f in follower.poll()] == [1]
        assert follower.poll() == [] and follower.status.corrupt_offset is None
        with path.open("r+b") as f:
            f.write(good)
        got = follower.poll()
        assert [f.lsn for f in got] == [2]
        assert got[0].payload == two[41:-4]


def test_a_torn_tail_cut_off_and_written_again_longer_is_read_from_the_file(
    tmp_path: Path,
) -> None:
    """RedDB's repair truncates a frame being written; the appender goes on at the new end, so
    the file grows past the old size with other bytes where the torn ones were."""
    path = tmp_path / "data.rdb.logical.wal"
    one, old_two, new_two = frame(1), frame(2, size=60), frame(2, size=200)
    path.write_bytes(one + old_two[:50])
    with SpoolFollower(path) as follower:
        assert [f.lsn for f in follower.poll()] == [1]
        with path.open("r+b") as f:
            f.truncate(len(one))
            f.seek(len(one))
            f.write(new_two + frame(3))
        got = follower.poll()
        assert [f.lsn for f in got] == [2, 3]
        assert got[0].payload == new_two[41:-4]
        assert follower.status.corrupt_offset is None


# -- the change source -------------------------------------------------------------------------


def new_source(spool: Path, state: Path, grace: float) -> ChangeSource:
    conn = open_state(str(state))
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn, schema="public"))
    return ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0, corruption_grace=grace)


def test_source_blocks_sessions_past_a_damaged_length_after_the_grace(tmp_path: Path) -> None:
    kit = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for seq in range(10):
        kit.insert("events", seq=seq)
    kit.close()
    frames = SpoolFollower(kit.path).poll()
    bad = frames[3]
    data = kit.path.read_bytes()
    kit.path.write_bytes(damage_length(data, bad.offset, "v3-41"))  # six good frames follow

    source = new_source(kit.path, tmp_path / "state", grace=5.0)
    source.ingest(now=100.0)
    assert [tx.first_lsn for tx in source.read(0, 100)] == [1, 2, 3]
    assert source.follower.status.corrupt_offset == bad.offset
    assert source.blocked_by_corruption(now=104.0) is None  # waited out first
    source.ingest(now=104.0)
    error = source.blocked_by_corruption(now=105.5)
    assert error is not None and error.sqlstate == "XX001"
    assert f"at byte offset {bad.offset}:" in error.message
    assert "RedDB LSN 3" in (error.detail or "")


def test_source_never_blocks_on_a_torn_tail(tmp_path: Path) -> None:
    kit = SpoolKit(tmp_path / "data.rdb.logical.wal")
    for seq in range(4):
        kit.insert("events", seq=seq)
    kit.close()
    data = kit.path.read_bytes()
    kit.path.write_bytes(data[:-7])
    source = new_source(kit.path, tmp_path / "state", grace=0.0)
    for now in (1.0, 50.0, 1000.0):
        source.ingest(now=now)
        assert source.blocked_by_corruption(now=now + 1) is None
    assert source.follower.status.corrupt_offset is None
    kit.path.write_bytes(data)
    source.ingest(now=2000.0)
    assert [tx.first_lsn for tx in source.read(0, 100)] == [1, 2, 3, 4]
