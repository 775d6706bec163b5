import logging
import os
import random
from pathlib import Path

import pytest
from spoolkit import SpoolKit

from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import build_frame
from pgshim.spool.writer import SpoolWriter


def frame(lsn: int, layout: str = "v3-41") -> bytes:
    return build_frame(layout, lsn, b'{"lsn":%d}' % lsn, timestamp_ms=1_700_000_000_000 + lsn)


def write(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def lsns(frames: list) -> list[int]:
    return [f.lsn for f in frames]


def test_missing_then_empty_then_growing_file(tmp_path: Path) -> None:
    path = tmp_path / "data.rdb.logical.wal"
    follower = SpoolFollower(path)
    assert follower.poll() == []
    assert not follower.status.exists
    path.write_bytes(b"")
    assert follower.poll() == []
    assert follower.status.exists and follower.status.size == 0
    write(path, frame(1) + frame(2))
    assert lsns(follower.poll()) == [1, 2]
    write(path, frame(3))
    assert lsns(follower.poll()) == [3]
    assert follower.poll() == []
    assert follower.status.records == 3
    assert (follower.status.first_lsn, follower.status.last_lsn) == (1, 3)
    assert follower.status.layouts_seen == {"v3-41"}
    follower.close()


@pytest.mark.parametrize("layout", ["v1", "v2", "v3-33", "v3-41"])
def test_torn_tail_cut_at_every_byte(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "spool.logical.wal"
    complete = frame(2, layout)
    for cut in range(len(complete)):
        path.write_bytes(frame(1, layout))
        with SpoolFollower(path) as follower:
            assert lsns(follower.poll()) == [1]
            write(path, complete[:cut])
            assert follower.poll() == [], cut
            assert follower.status.corrupt_offset is None
            assert follower.status.offset == len(frame(1, layout))
            write(path, complete[cut:])
            assert lsns(follower.poll()) == [2], cut
            assert follower.poll() == []


def test_crc_flip_is_reported_with_offset_logged_once_and_cleared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.logical.wal"
    good = [frame(i) for i in range(1, 4)]
    corrupted = bytearray(good[1])
    corrupted[-1] ^= 0xFF
    path.write_bytes(good[0] + bytes(corrupted) + good[2])
    caplog.set_level(logging.WARNING, logger="pgshim.spool")
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == [1]
    for _ in range(3):
        assert follower.poll() == []
        assert follower.status.corrupt_offset == len(good[0])
        assert "CRC mismatch" in (follower.status.corrupt_reason or "")
    warnings = [r for r in caplog.records if "bad frame" in r.getMessage()]
    assert len(warnings) == 1
    assert str(len(good[0])) in warnings[0].getMessage()
    # RedDB repairs in place (truncates at the bad frame) and appends again.
    with open(path, "r+b") as f:
        f.truncate(len(good[0]))
    write(path, good[1] + good[2])
    assert lsns(follower.poll()) == [2, 3]
    assert follower.status.corrupt_offset is None
    assert follower.status.corrupt_reason is None


def test_prune_while_following_loses_and_repeats_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    with SpoolWriter(path, fsync=False) as writer:
        for lsn in range(1, 51):
            writer.append(b"p%d" % lsn, lsn=lsn)
    follower = SpoolFollower(path, chunk_size=128)
    seen = lsns(follower.poll())
    with SpoolWriter(path, fsync=False) as writer:  # appended before the prune reads the file
        for lsn in range(51, 61):
            writer.append(b"p%d" % lsn, lsn=lsn)
    # Prune through 40: rewrite the retained records into a temp file and rename it over.
    tmp = tmp_path / "spool.logical.logical.wal.tmp"
    with SpoolWriter(tmp, fsync=False) as writer:
        for lsn in range(41, 66):
            writer.append(b"p%d" % lsn, lsn=lsn)
    os.rename(tmp, path)
    seen += lsns(follower.poll())
    assert seen == list(range(1, 66))
    assert follower.status.prunes == 1
    assert follower.status.first_lsn == 41
    with SpoolWriter(path, fsync=False) as writer:
        writer.append(b"p66", lsn=66)
    assert lsns(follower.poll()) == [66]


def test_shrunk_file_counts_as_prune(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in range(1, 6)))
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == [1, 2, 3, 4, 5]
    with open(path, "r+b") as f:  # same inode, rewritten shorter
        f.truncate(0)
        f.write(frame(5) + frame(6))
    assert lsns(follower.poll()) == [6]
    assert follower.status.prunes == 1


def test_out_of_order_and_gapped_lsns_are_delivered_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    order = [1, 2, 4, 3, 5, 8, 9, 11, 10, 12]
    path.write_bytes(b"".join(frame(i) for i in order))
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == order
    status = follower.status
    assert status.out_of_order == 2
    assert status.gaps == 2  # 6 and 7 are missing
    assert (status.first_lsn, status.last_lsn) == (1, 12)


def test_seek_uses_running_max_with_out_of_order_lsns(tmp_path: Path) -> None:
    rng = random.Random(7)
    order = list(range(1, 2001))
    for i in range(0, len(order) - 1, 3):  # many adjacent swaps
        if rng.random() < 0.5:
            order[i], order[i + 1] = order[i + 1], order[i]
    order = [lsn for lsn in order if lsn % 17]  # gaps
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in order))
    follower = SpoolFollower(path, chunk_size=4096)
    for after in [0, 1, 5, 63, 64, 65, 500, 1021, 1999, 2000, 5000]:
        follower.seek(after)
        got = lsns(follower.poll())
        assert got == [lsn for lsn in order if lsn > after], after
        assert lsns(follower.iter_from(after)) == got
        assert lsns(follower.iter_from(after, limit=3)) == got[:3]
    assert follower.status.records == len(order)  # each record counted once


def test_seek_reads_only_near_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in range(1, 10001)))
    follower = SpoolFollower(path, chunk_size=4096)
    follower.seek(0)  # builds the index once
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    follower.seek(9990)
    assert lsns(follower.poll()) == list(range(9991, 10001))
    assert sum(read) < 64 * len(frame(1)) + 4096


def test_polling_costs_only_new_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in range(1, 2001)))
    follower = SpoolFollower(path)
    assert len(follower.poll()) == 2000
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    write(path, frame(2001))
    assert lsns(follower.poll()) == [2001]
    assert follower.poll() == []
    assert sum(read) == len(frame(2001))


def test_file_removed_and_recreated_is_a_replacement(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(frame(1) + frame(2))
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == [1, 2]
    path.unlink()
    assert follower.poll() == []
    assert not follower.status.exists
    path.write_bytes(frame(2) + frame(3))
    assert lsns(follower.poll()) == [3]


def test_follower_never_writes_the_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    raw = frame(1) + b"RDLW\x09garbage"
    path.write_bytes(raw)
    path.chmod(0o444)
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == [1]
    assert follower.status.corrupt_reason == "unknown frame version 9"
    assert path.read_bytes() == raw


def test_prune_after_out_of_order_records_skips_exactly_the_delivered(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in [1, 2, 4, 3, 5]))
    follower = SpoolFollower(path)
    assert lsns(follower.poll()) == [1, 2, 4, 3, 5]
    tmp = tmp_path / "new"
    tmp.write_bytes(b"".join(frame(i) for i in [3, 4, 5, 7, 6, 8]))
    os.rename(tmp, path)
    assert lsns(follower.poll()) == [7, 6, 8]
    with open(path, "ab") as f:
        f.write(frame(9))
    assert lsns(follower.poll()) == [9]


def test_delivered_window_keeps_a_floor_for_old_lsns() -> None:
    from pgshim.spool.follower import DeliveredLsns

    delivered = DeliveredLsns(window=4)
    for batch in ([1, 2], [4, 3], [5, 6], [7]):
        delivered.record(batch)
    assert delivered.floor == 2  # the oldest batch left the exact window
    assert 1 in delivered and 3 in delivered and 7 in delivered
    assert 8 not in delivered


def test_poll_max_bytes_bounds_one_call(tmp_path: Path) -> None:
    path = tmp_path / "spool.logical.wal"
    path.write_bytes(b"".join(frame(i) for i in range(1, 101)))
    follower = SpoolFollower(path, chunk_size=256)
    batches = []
    while batch := follower.poll(max_bytes=512):
        batches.append(lsns(batch))
    assert len(batches) > 1
    assert [lsn for b in batches for lsn in b] == list(range(1, 101))


def test_reads_bounded_by_max_bytes_go_on_through_an_unchanged_file(tmp_path) -> None:
    """A read that stops at max_bytes leaves the frame cut at that point pending: the next poll
    reads on, even when the file has not changed for a long time (it is no torn tail)."""
    kit = SpoolKit(tmp_path / "s.wal")
    for n in range(200):
        kit.insert("users", name=f"user {n}")
    kit.close()
    old = kit.path.stat().st_mtime - 3600
    os.utime(kit.path, (old, old))
    follower = SpoolFollower(kit.path, chunk_size=700)
    lsns: list[int] = []
    for _ in range(1000):
        frames = follower.poll(max_bytes=700)
        if not frames and len(lsns) == 200:
            break
        lsns += [frame.lsn for frame in frames]
    assert lsns == list(range(1, 201))
