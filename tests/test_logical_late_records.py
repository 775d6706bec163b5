"""Records that come late, twice, or rewritten: released in LSN order or reported, never dropped.

Each test writes a spool with known records, ingests it, then appends the odd record and checks
what the source releases (in order, with strictly increasing positions) and which rewinds it asks
its listeners for (the streams and slots that would miss a record).
"""

from __future__ import annotations

import os
import sqlite3
import zlib
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from spoolkit import SpoolKit

from pgshim.logical import source as source_module
from pgshim.logical.checkpoint import IngestCheckpoint
from pgshim.logical.positions import change_pos
from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import TransactionBuilder
from pgshim.reddb.identity import IdentityMap
from pgshim.reddb.link.terms import TermHistory
from pgshim.reddb.link.wiring import TermObservingFollower
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import Frame
from pgshim.state import open_state


class Harness:
    def __init__(self, spool: Path, state: Path) -> None:
        conn = open_state(str(state))
        builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn, schema="public"))
        self.terms = TermHistory(conn)
        follower = TermObservingFollower(SpoolFollower(spool), self.terms)
        self.source = ChangeSource(follower, builder, reorder_grace=0.0)  # type: ignore[arg-type]
        self.source.term_at = self.terms.term_at
        self.rewinds: list[tuple[int, str]] = []
        self.source.on_rewind(lambda position, why: self.rewinds.append((position, why)))

    def lsns(self) -> list[int]:
        """RedDB LSNs of what a session starting at 0 reads, checking positions increase."""
        transactions = self.source.read(0, 10_000)
        positions = [p for tx in transactions for p in (tx.begin_pos, tx.commit_pos, tx.end_pos)]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        return [tx.last_lsn for tx in transactions]

    def history_lsns(self) -> list[int]:
        return [tx.last_lsn for tx in self.source.history(0)]


def insert_at(kit: SpoolKit, lsn: int, name: str) -> None:
    kit.lsn = lsn - 1
    kit.insert("users", name=name)


def frame_bytes(path: Path, lsn: int) -> bytes:
    frame = next(f for f in SpoolFollower(path).poll() if f.lsn == lsn)
    with path.open("rb") as spool:
        spool.seek(frame.offset)
        return spool.read(frame.size)


def append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as spool:
        spool.write(data)


def test_a_record_that_comes_after_its_lsn_was_passed_over_is_released_in_order(tmp_path) -> None:
    kit = SpoolKit(tmp_path / "s.wal")
    for lsn in (1, 2, 3, 4, 5, 7):  # 6 is allocated to a writer that appends it later
        insert_at(kit, lsn, f"u{lsn}")
    harness = Harness(kit.path, tmp_path / "state")
    harness.source.ingest()
    assert harness.lsns() == [1, 2, 3, 4, 5, 7]

    insert_at(kit, 6, "late")
    harness.source.ingest()
    # sessions past LSN 6 are told (they restart from what they confirmed and receive it)
    assert [position for position, _ in harness.rewinds] == [change_pos(6)]
    assert "RedDB LSN 6" in harness.rewinds[0][1] and "arrived after" in harness.rewinds[0][1]
    assert harness.lsns() == [1, 2, 3, 4, 5, 6, 7]
    assert harness.history_lsns() == [1, 2, 3, 4, 5, 6, 7]
    assert harness.source.rewinds == 1


def test_the_same_record_twice_is_sent_once(tmp_path) -> None:
    kit = SpoolKit(tmp_path / "s.wal")
    for lsn in range(1, 4):
        insert_at(kit, lsn, f"u{lsn}")
    harness = Harness(kit.path, tmp_path / "state")
    harness.source.ingest()
    append_bytes(kit.path, frame_bytes(kit.path, 2))
    harness.source.ingest()
    assert harness.rewinds == [] and harness.source.duplicates == 1
    assert harness.lsns() == [1, 2, 3]


def test_duplicates_read_in_one_poll_neither_crash_nor_lose_what_follows(tmp_path) -> None:
    kit = SpoolKit(tmp_path / "s.wal")
    insert_at(kit, 1, "u1")
    insert_at(kit, 2, "u2")
    insert_at(kit, 3, "u3")
    third = frame_bytes(kit.path, 3)
    harness = Harness(kit.path, tmp_path / "state")
    harness.source.ingest()
    # 3, 3, 4, 5 in one write
    append_bytes(kit.path, third)
    insert_at(kit, 4, "u4")
    insert_at(kit, 5, "u5")
    append_bytes(kit.path, third)
    harness.source.ingest()
    assert harness.lsns() == [1, 2, 3, 4, 5]
    assert harness.rewinds == []

    # and a fresh source reading all of it at once (the start of a server) does not crash
    again = Harness(kit.path, tmp_path / "state2")
    again.source.ingest()
    assert again.lsns() == [1, 2, 3, 4, 5]


def test_a_record_written_again_with_other_content_replaces_what_was_sent(tmp_path) -> None:
    kit = SpoolKit(tmp_path / "s.wal")
    for lsn in range(1, 6):
        insert_at(kit, lsn, f"u{lsn}")
    harness = Harness(kit.path, tmp_path / "state")
    harness.source.ingest()
    insert_at(kit, 3, "rewritten")
    harness.source.ingest()
    assert [position for position, _ in harness.rewinds] == [change_pos(3)]
    assert harness.lsns() == [1, 2, 3, 4, 5]
    third = next(tx for tx in harness.source.read(0, 10) if tx.last_lsn == 3)
    assert "rewritten" in third.changes[0].new
    # the older version, read again, does not rewind a second time
    harness.source.ingest()
    assert len(harness.rewinds) == 1


def test_a_new_term_that_rewrites_sent_lsns_is_a_divergence_at_its_first_lsn(tmp_path) -> None:
    path = tmp_path / "s.wal"
    kit = SpoolKit(path)
    for lsn in range(1, 11):
        insert_at(kit, lsn, f"old {lsn}")
    kit.close()
    harness = Harness(path, tmp_path / "state")
    harness.source.ingest()
    assert harness.lsns() == list(range(1, 11))

    # a failover: the new leader (term 2) kept 1..7 and wrote 8.. again; RedDB replaces the file
    tail = SpoolKit(tmp_path / "tail.wal", term=2)
    for lsn in range(8, 12):
        insert_at(tail, lsn, f"new {lsn}")
    tail.close()
    replacement = tmp_path / "new.wal"
    kept = b"".join(frame_bytes(path, lsn) for lsn in range(1, 8))
    replacement.write_bytes(kept + tail.path.read_bytes())
    os.replace(replacement, path)
    harness.source.ingest()

    assert [position for position, _ in harness.rewinds][:1] == [change_pos(8)]
    assert harness.lsns() == list(range(1, 12))
    names = {tx.last_lsn: tx.changes[0].new[1] for tx in harness.source.read(0, 100) if tx.changes}
    assert [names[lsn] for lsn in range(7, 12)] == ["old 7", "new 8", "new 9", "new 10", "new 11"]
    assert harness.terms.terms == [(1, 1), (2, 8)]  # TIMELINE_HISTORY: term 2 began at LSN 8


def test_a_prune_that_keeps_the_records_sent_is_no_divergence(tmp_path) -> None:
    path = tmp_path / "s.wal"
    kit = SpoolKit(path)
    for lsn in range(1, 11):
        insert_at(kit, lsn, f"u{lsn}")
    kit.close()
    harness = Harness(path, tmp_path / "state")
    harness.source.ingest()
    pruned = tmp_path / "pruned.wal"
    with pruned.open("wb") as out:
        for lsn in range(6, 11):
            out.write(frame_bytes(path, lsn))
    os.replace(pruned, path)
    harness.source.ingest()
    assert harness.rewinds == [] and harness.source.duplicates == 0
    assert harness.lsns() == list(range(1, 11))


def test_a_record_appended_late_while_pgshim_was_stopped_is_found_at_restart(tmp_path) -> None:
    kit = SpoolKit(tmp_path / "s.wal")
    for lsn in (1, 2, 3, 5):
        insert_at(kit, lsn, f"u{lsn}")
    first = Harness(kit.path, tmp_path / "state")
    first.source.resume(IngestCheckpoint(open_state(str(tmp_path / "state"))))
    first.source.ingest()
    first.source.save_checkpoint()
    assert first.lsns() == [1, 2, 3, 5]

    insert_at(kit, 4, "late")  # appended while stopped, below the checkpoint's LSN
    second = Harness(kit.path, tmp_path / "state")
    second.source.resume(IngestCheckpoint(open_state(str(tmp_path / "state"))))
    second.source.ingest()
    assert [position for position, _ in second.rewinds] == [change_pos(4)]
    assert 4 in second.history_lsns()


def test_a_record_whose_decoding_cannot_be_recorded_waits_instead_of_going_out_empty(
    tmp_path, monkeypatch
) -> None:
    """A new collection on a full state disk: the record is held back, then released whole."""
    kit = SpoolKit(tmp_path / "s.wal")
    insert_at(kit, 1, "u1")
    harness = Harness(kit.path, tmp_path / "state")
    harness.source.ingest()
    kit.lsn = 1
    kit.insert("orders", total=5)  # a relation never seen: it must be written to state.db
    full = sqlite3.OperationalError("database or disk is full")
    original = RelationRegistry._save

    def failing(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise full

    monkeypatch.setattr(RelationRegistry, "_save", failing)
    assert harness.source.ingest() == 0
    assert harness.lsns() == [1] and harness.source.checkpoint_error is not None
    monkeypatch.setattr(RelationRegistry, "_save", original)
    harness.source._held_until = float("-inf")  # the retry is due
    assert harness.source.ingest() == 1
    orders = harness.source.read(0, 10)[-1]
    assert orders.last_lsn == 2 and orders.changes and not orders.errors


@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**63 - 1),
    st.binary(max_size=64),
)
def test_a_released_version_is_kept_exactly(term: int, generation: int, offset: int,
                                            payload: bytes) -> None:  # fmt: skip
    # ingestion keeps the version of each recent LSN packed in one integer
    frame = Frame("v3-33", 7, 0, term, 0, payload, offset, len(payload) + 33)
    version = source_module._Version.of(frame, generation)
    assert version.term == term and version.rank == (term, generation, offset)
    assert version.crc == zlib.crc32(payload)
    released = source_module._ReleasedVersions(2)
    released.add(frame, generation)
    assert released.get(7) == version


# a poll's frames: LSNs around a few values (duplicates, holes, disorder), terms and offsets;
# often in increasing order with holes, as a spool mostly is
FRAME_SPECS = st.lists(
    st.tuples(st.integers(1, 12), st.integers(1, 3), st.integers(0, 10**6)), max_size=8
)
POLLED = st.one_of(
    FRAME_SPECS, FRAME_SPECS.map(lambda specs: sorted({spec[0]: spec for spec in specs}.values()))
).map(
    lambda specs: [Frame("v3-41", lsn, 0, term, 0, b"", offset, 50) for lsn, term, offset in specs]
)
STEPS = st.lists(
    st.tuples(
        POLLED,
        st.sampled_from([0.0, 0.5, 2.0]),  # time passing before the release round
        # the first frame released is put back (the state database failing), or the round
        # ends after so many frames (ingestion's budget), or takes all that are ready
        st.sampled_from(["put back", 1, 2, "all"]),
        st.booleans(),  # a final round
    ),
    max_size=8,
)


def _frames(*lsns: int) -> list[Frame]:
    return [Frame("v3-41", lsn, 0, 1, 0, b"", lsn * 100, 50) for lsn in lsns]


@settings(max_examples=400, deadline=None)
@given(STEPS, st.integers(0, 4), st.integers(0, 3))
# two runs waiting behind a hole: the window counts both
@example([(_frames(1, 3), 0.0, 1, False), (_frames(4, 5, 6), 0.0, "all", False)], 3, 0)
def test_runs_of_frames_are_released_like_frames_pushed_one_by_one(
    steps: list, window: int, generation: int
) -> None:
    fast = source_module._Reorder(0, grace=1.0, window=window)
    reference = source_module._Reorder(0, grace=1.0, window=window)
    now = 0.0
    for polled, elapsed, how, final in steps:
        fresh = [frame for frame in polled if frame.lsn > fast.released]
        assert fresh == [frame for frame in polled if frame.lsn > reference.released]
        fast.push_all(fresh, now, generation)
        for frame in fresh:
            reference.push(frame, now, generation)
        assert len(fast) == len(reference)
        now += elapsed
        released = []
        for reorder in (fast, reference):
            out = []
            for frame in reorder.pop_ready(now, final=final):
                out.append(frame)
                if how == "put back":
                    reorder.put_back(frame, now, generation)
                    break
                if len(out) == how:
                    break
            released.append((out, reorder.take_behind(), reorder.released, len(reorder)))
        assert released[0] == released[1]
