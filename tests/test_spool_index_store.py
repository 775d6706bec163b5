"""The persisted spool index: a restart takes it back instead of reading the file, and only when it
still describes the file there (same file, same first bytes, records ending where it ended)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from sqlite3 import Connection

import pytest
from spoolkit import end_pos

from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import build_frame
from pgshim.spool.generate import write_workload
from pgshim.spool.index_store import SpoolIndexStore
from pgshim.state import open_state


def frame(lsn: int) -> bytes:
    return build_frame("v3-41", lsn, b'{"lsn":%d,"pad":"%s"}' % (lsn, b"x" * (lsn % 50)),
                       timestamp_ms=1_700_000_000_000 + lsn)  # fmt: skip


def append(path: Path, lsns: list[int]) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(frame(lsn) for lsn in lsns))


def shuffled_lsns(first: int, count: int, seed: int) -> list[int]:
    """Mostly increasing LSNs with holes and a few swapped neighbours, as RedDB writes them."""
    rng = random.Random(seed)
    lsns = [lsn for lsn in range(first, first + count) if rng.random() > 0.05]
    for i in range(0, len(lsns) - 1, 37):
        lsns[i], lsns[i + 1] = lsns[i + 1], lsns[i]
    return lsns


def status_of(follower: SpoolFollower) -> tuple:
    s = follower.status
    return (s.records, s.first_lsn, s.last_lsn, s.gaps, s.out_of_order, s.layouts_seen)


def read_after(follower: SpoolFollower, lsn: int) -> list[int]:
    follower.seek(lsn)
    return [f.lsn for f in follower.poll()]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "data.rdb.logical.wal"
    append(path, shuffled_lsns(1, 3000, seed=1))
    return path


def saved_index(spool: Path, state: Path) -> tuple[SpoolFollower, SpoolIndexStore, Connection]:
    """A follower that read the whole spool, and the store its index was saved to."""
    conn = open_state(state)
    store = SpoolIndexStore(conn)
    indexed = SpoolFollower(spool)
    indexed.poll()
    store.save(indexed)
    return indexed, store, conn


def test_a_restart_takes_the_index_back_and_seeks_the_same(spool: Path, tmp_path: Path) -> None:
    indexed, _, _ = saved_index(spool, tmp_path / "state")
    restarted = SpoolFollower(spool)
    snapshot = SpoolIndexStore(open_state(tmp_path / "state")).load()
    assert snapshot is not None and snapshot.count == indexed.status.records
    assert restarted.restore_index(snapshot)
    assert status_of(restarted) == status_of(indexed)
    assert not restarted.restore_index(snapshot)  # once, before reading
    for lsn in (0, 1, 64, 65, 1000, 2500, 2999, 3000, 5000):
        assert restarted._index.start_offset(lsn) == indexed._index.start_offset(lsn)
        assert read_after(restarted, lsn) == read_after(indexed, lsn)


def test_records_appended_since_are_indexed_by_reading_them(spool: Path, tmp_path: Path) -> None:
    indexed, _, _ = saved_index(spool, tmp_path / "state")
    append(spool, shuffled_lsns(3001, 500, seed=2))
    restarted = SpoolFollower(spool)
    assert restarted.restore_index(SpoolIndexStore(open_state(tmp_path / "state")).load())
    assert read_after(restarted, 2900) == read_after(indexed, 2900)
    indexed.poll()
    assert status_of(restarted) == status_of(indexed)


def test_saves_add_the_new_checkpoints(spool: Path, tmp_path: Path) -> None:
    follower, store, conn = saved_index(spool, tmp_path / "state")
    rows = conn.execute("SELECT count(*) FROM spool_index").fetchone()[0]
    append(spool, shuffled_lsns(3001, 2000, seed=3))
    follower.poll()
    store.save(follower)
    store.save(follower)  # nothing new
    total = conn.execute("SELECT count(*) FROM spool_index").fetchone()[0]
    assert rows < total == follower._index.checkpoints
    assert SpoolIndexStore(conn).load().entries == follower._index.entries()


def test_a_pruned_spool_starts_the_index_again(spool: Path, tmp_path: Path) -> None:
    follower, store, conn = saved_index(spool, tmp_path / "state")
    pruned = tmp_path / "pruned.tmp"
    append(pruned, shuffled_lsns(2000, 1500, seed=4))
    os.replace(pruned, spool)  # a new file under the same name
    assert not SpoolFollower(spool).restore_index(store.load())
    follower.poll()
    store.save(follower)
    assert SpoolIndexStore(conn).load().entries == follower._index.entries()
    restarted = SpoolFollower(spool)
    assert restarted.restore_index(store.load())
    assert read_after(restarted, 2500) == read_after(follower, 2500)


@pytest.mark.parametrize("change", ["first bytes", "shorter", "records moved"])
def test_an_index_of_other_bytes_is_not_taken(spool: Path, tmp_path: Path, change: str) -> None:
    indexed, _, _ = saved_index(spool, tmp_path / "state")
    size = spool.stat().st_size
    with open(spool, "r+b") as f:  # the same file (inode), other content
        if change == "first bytes":
            f.write(frame(7))
        elif change == "shorter":
            f.truncate(size - 10)
        else:
            f.seek(indexed._index.entries()[-1][1])  # the last checkpoint's record
            f.write(frame(99_999) * 3)
    restarted = SpoolFollower(spool)
    assert not restarted.restore_index(SpoolIndexStore(open_state(tmp_path / "state")).load())
    assert restarted.status.records == 0  # untouched: it indexes by reading, as without a store


def test_a_restarted_server_seeks_without_reading_the_spool(pgshim, tmp_path: Path) -> None:
    spool = tmp_path / "data.rdb.logical.wal"
    write_workload(str(spool), 2000, seed=4)
    state = tmp_path / "state"
    server = pgshim(spool, state_dir=state)
    server.psql("SELECT pgshim_create_history_slot('s', 'test_decoding')")
    status = server.psql("SELECT records, first_lsn, last_lsn, gaps FROM pgshim_spool")
    last = int(status.split("|")[2])
    before = server.recvlogical("-S", "s", "--start", "-f", str(tmp_path / "a.txt"),
                                "--endpos", end_pos(last), timeout=60)  # fmt: skip
    assert before.returncode == 0, before.stderr
    server.stop()

    again = pgshim(spool, state_dir=state)
    assert "seek index of 2000 records taken over" in again.log()
    assert again.psql("SELECT records, first_lsn, last_lsn, gaps FROM pgshim_spool") == status
    again.psql("SELECT pgshim_create_history_slot('t', 'test_decoding')")
    after = again.recvlogical("-S", "t", "--start", "-f", str(tmp_path / "b.txt"),
                              "--endpos", end_pos(last), timeout=60)  # fmt: skip
    assert after.returncode == 0, after.stderr
    assert (tmp_path / "b.txt").read_text() == (tmp_path / "a.txt").read_text()
