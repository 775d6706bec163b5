"""Torn tails and prunes under the change source: nothing partial, nothing lost, same positions."""

from __future__ import annotations

import os
from pathlib import Path

from spoolkit import SpoolKit

from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import Transaction, TransactionBuilder
from pgshim.reddb.identity import IdentityMap
from pgshim.spool.follower import SpoolFollower
from pgshim.state import open_state


def new_source(spool: Path, state: Path) -> ChangeSource:
    conn = open_state(str(state))
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn, schema="public"))
    return ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0)


def view(tx: Transaction) -> tuple:
    """What a consumer sees of a transaction: positions and row images."""
    changes = [(c.action, c.relation.name, c.new, c.key, c.pos) for c in tx.changes]
    return (tx.begin_pos, tx.commit_pos, tx.end_pos, tx.errors, changes)


def written_spool(tmp_path: Path, rows: int) -> SpoolKit:
    kit = SpoolKit(tmp_path / "full.wal")
    for seq in range(rows):
        _, rid = kit.insert("users", name=f"user {seq}", seq=seq, ok=seq % 2 == 0)
        if seq % 3 == 0:
            kit.update("users", rid, name=f"renamed {seq}", score=seq / 4)
    kit.close()
    return kit


def test_cut_at_every_byte_of_a_frame_never_sends_a_partial_change(tmp_path: Path) -> None:
    kit = written_spool(tmp_path, 6)
    full = kit.path.read_bytes()
    reference = new_source(kit.path, tmp_path / "ref")
    reference.ingest()
    expected = [view(tx) for tx in reference.read(0, 1000)]
    assert len(expected) == kit.lsn

    live = tmp_path / "live.wal"
    source = new_source(live, tmp_path / "state")
    follower = SpoolFollower(kit.path)
    offsets = [frame.offset for frame in follower.poll()] + [len(full)]
    released: list[tuple] = []
    with live.open("wb") as out:
        for start, stop in zip(offsets, offsets[1:], strict=False):
            for cut in range(start, stop):  # every torn length of this frame, one byte at a time
                out.write(full[cut : cut + 1])
                out.flush()
                source.ingest()
                new = source.read(released[-1][2] if released else 0, 100)
                if cut < stop - 1:
                    assert new == [], f"a change was released from a frame cut at byte {cut}"
                else:
                    assert len(new) == 1  # the frame completed: its change arrives, once
                released += [view(tx) for tx in new]
            assert source.follower.status.corrupt_offset is None  # torn is not corrupt
    assert released == expected


def test_prune_renamed_over_the_spool_while_streaming(tmp_path: Path) -> None:
    kit = written_spool(tmp_path, 8)
    full = kit.path.read_bytes()
    spool = tmp_path / "data.rdb.logical.wal"
    spool.write_bytes(full)
    source = new_source(spool, tmp_path / "state")
    source.ingest()
    before = source.read(0, 1000)
    assert len(before) == kit.lsn
    sent = before[len(before) // 2].end_pos  # a consumer halfway through

    # RedDB rewrites the retained tail into a new file, appends, and renames it over the spool
    frames = SpoolFollower(kit.path).poll()
    keep_from = frames[len(frames) // 3].offset
    appended = SpoolKit(tmp_path / "more.wal", lsn=kit.lsn, next_id=kit.next_id, rows=kit.rows)
    for seq in range(100, 104):
        appended.insert("users", name=f"late {seq}", seq=seq, ok=True)
    appended.close()
    rewritten = tmp_path / "rewrite.tmp"
    rewritten.write_bytes(full[keep_from:] + appended.path.read_bytes())
    os.rename(rewritten, spool)

    source.ingest()
    assert source.follower.status.prunes == 1
    after = source.read(sent, 1000)
    # streaming goes on from where the consumer was: the retained changes with unchanged
    # positions, then the new ones, none twice
    assert [view(tx) for tx in after[: len(before) - len(before) // 2 - 1]] == [
        view(tx) for tx in before[len(before) // 2 + 1 :]
    ]
    first_unsent = before[len(before) // 2].last_lsn + 1
    assert [tx.first_lsn for tx in after] == list(range(first_unsent, appended.lsn + 1))
    # a catch-up read after the prune serves what the new file retains, at the same positions
    retained = list(source.history(sent))
    assert [view(tx) for tx in retained] == [view(tx) for tx in after]
