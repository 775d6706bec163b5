"""RedDB timestamps outside what a commit time can hold: delivered with a clamped time, reported.

A ChangeRecord ``timestamp`` in microseconds (1.7e15), a u64 of 2^63, a negative one, a
timestamp that is no integer, and an unparseable payload in a frame stamped 2^63: each record
becomes a transaction at its position, counted in ``decode_errors`` and logged once with its
spool offset and LSN; nothing raises, at start or live.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from spoolkit import Row, SpoolKit

from pgshim.logical.relations import RelationRegistry
from pgshim.logical.source import ChangeSource
from pgshim.logical.transactions import (
    MAX_COMMIT_TIME,
    MIN_COMMIT_TIME,
    TransactionBuilder,
    commit_time_of,
    commit_time_problem,
)
from pgshim.pgtypes import text_out
from pgshim.plugins.pgoutput import pg_timestamp
from pgshim.reddb.change import parse_change_record
from pgshim.reddb.identity import IdentityMap
from pgshim.spool.follower import SpoolFollower
from pgshim.state import open_state

MICROS = 1_700_000_000_000_000  # 2023 in microseconds, written where milliseconds belong
U63 = 1 << 63


@pytest.mark.parametrize(
    ("timestamp_ms", "expected"),
    [
        (MICROS, MAX_COMMIT_TIME),
        (U63, MAX_COMMIT_TIME),
        ((1 << 64) - 1, MAX_COMMIT_TIME),
        (10**40, MAX_COMMIT_TIME),
        (-(1 << 63), MIN_COMMIT_TIME),
        (-(10**40), MIN_COMMIT_TIME),
        (253_402_300_799_999, datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (-62_135_596_800_000, datetime(1, 1, 1, tzinfo=UTC)),
        (1_700_000_000_123, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_commit_time_is_total_and_clamped(timestamp_ms: int, expected: datetime) -> None:
    assert commit_time_of(timestamp_ms) == expected
    problem = commit_time_problem(timestamp_ms)
    if MIN_COMMIT_TIME < expected < MAX_COMMIT_TIME or expected.year in (1970, 2023):
        assert problem is None
    elif timestamp_ms not in (253_402_300_799_999, -62_135_596_800_000):
        assert problem is not None and str(timestamp_ms) in problem and "clamped" in problem


@pytest.mark.parametrize(
    ("timestamp", "expected", "reason"),
    [
        (b'"soon"', 77, "'soon' is not an integer; the frame's timestamp 77 ms used"),
        (b"null", 77, "None is not an integer"),
        (b"1.5e3", 1500, None),
        (b"1700000000123.75", 1_700_000_000_123, "truncated to 1700000000123"),
        (b"Infinity", 77, "inf is not an integer"),
        (b"[1]", 77, "[1] is not an integer"),
    ],
)
def test_a_timestamp_that_is_no_integer_does_not_lose_the_record(
    timestamp: bytes, expected: int, reason: str | None
) -> None:
    payload = b'{"collection":"c","lsn":9,"operation":"delete","rid":4,"timestamp":%s}' % timestamp
    record = parse_change_record(payload, 9, 77)
    assert (record.lsn, record.operation, record.rid) == (9, "delete", 4)
    assert record.timestamp_ms == expected
    if reason is None:
        assert record.problems == ()
    else:
        assert len(record.problems) == 1 and reason in record.problems[0]


# -- the change source over a generated spool --------------------------------------------------


def insert_at(kit: SpoolKit, collection: str, timestamp: object, frame_ms: int | None = None,
              **values: object) -> int:  # fmt: skip
    """An insert whose ChangeRecord (and optionally frame) carries the given timestamp."""
    row = Row(kit.next_id, kit.next_id, dict(values))
    kit.next_id += 1
    kit.rows[(collection, row.logical_id)] = row
    entity = kit._entity(collection, row)
    kit.lsn += 1
    kit.writer.append_record({
        "collection": collection, "kind": "row", "operation": "insert", "rid": row.physical_id,
        "entity_bytes_hex": entity, "lsn": kit.lsn, "term": kit.term, "timestamp": timestamp,
    }, timestamp_ms=frame_ms)  # fmt: skip
    return kit.lsn


def garbage_at(kit: SpoolKit, frame_ms: int) -> int:
    """A frame whose payload is no ChangeRecord, stamped ``frame_ms``."""
    kit.lsn += 1
    kit.writer.append(b"{not json", lsn=kit.lsn, timestamp_ms=frame_ms, term=kit.term)
    return kit.lsn


def timestamp_spool(path: Path) -> tuple[SpoolKit, dict[int, object]]:
    """Good records around every kind of bad timestamp; LSN -> what it carries."""
    kit = SpoolKit(path)
    carried: dict[int, object] = {}
    carried[kit.insert("events", seq=1)[0]] = "ok"
    carried[insert_at(kit, "events", MICROS, seq=2)] = MICROS
    carried[insert_at(kit, "events", U63, frame_ms=U63, seq=3)] = U63
    carried[insert_at(kit, "events", -(1 << 63), seq=4)] = -(1 << 63)
    carried[insert_at(kit, "events", "yesterday", frame_ms=U63, seq=5)] = "yesterday"
    carried[garbage_at(kit, U63)] = "garbage"
    carried[garbage_at(kit, (1 << 64) - 1)] = "garbage"
    carried[kit.insert("events", seq=8)[0]] = "ok"
    kit.close()
    return kit, carried


def new_source(spool: Path, state: Path) -> ChangeSource:
    conn = open_state(str(state))
    builder = TransactionBuilder(IdentityMap(conn), RelationRegistry(conn, schema="public"))
    return ChangeSource(SpoolFollower(spool), builder, reorder_grace=0.0)


def test_out_of_range_timestamps_are_delivered_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit, carried = timestamp_spool(tmp_path / "data.rdb.logical.wal")
    offsets = {f.lsn: f.offset for f in SpoolFollower(kit.path).poll()}
    source = new_source(kit.path, tmp_path / "state")
    caplog.set_level(logging.WARNING, logger="pgshim.logical.source")
    assert source.ingest() == len(carried)  # nothing raised, nothing held back
    txs = source.read(0, 100)
    assert [tx.first_lsn for tx in txs] == sorted(carried)
    by_lsn = {tx.first_lsn: tx for tx in txs}
    for lsn, what in carried.items():
        tx = by_lsn[lsn]
        if what == "garbage":
            assert tx.changes == [] and tx.commit_time == MAX_COMMIT_TIME
            assert any("invalid JSON" in error for error in tx.errors)
            assert any("frame commit timestamp" in error for error in tx.errors)
        else:  # the row arrives, whatever its timestamp
            assert [c.action for c in tx.changes] == ["I"], (lsn, tx.errors)
        if what == "ok":
            assert tx.errors == []
            assert MIN_COMMIT_TIME < tx.commit_time < MAX_COMMIT_TIME
    assert by_lsn[2].commit_time == by_lsn[3].commit_time == MAX_COMMIT_TIME
    assert by_lsn[4].commit_time == MIN_COMMIT_TIME
    assert by_lsn[5].commit_time == MAX_COMMIT_TIME  # the frame's 2^63, clamped too
    assert len(by_lsn[5].errors) == 2  # not an integer; the frame's time out of range
    bad = [lsn for lsn, what in carried.items() if what != "ok"]
    assert source.decode_errors == sum(len(by_lsn[lsn].errors) for lsn in bad)

    # each bad record is in the log with its offset and its LSN, once
    text = caplog.text
    for lsn in bad:
        lines = [line for line in text.splitlines() if f"spool offset {offsets[lsn]}" in line]
        assert lines and all(re.search(rf"\b(LSN|lsn) {lsn}\b", line) for line in lines), lsn
        assert len(lines) == len(by_lsn[lsn].errors), lines

    # a catch-up read decodes them again: delivered again, neither counted nor logged again
    errors, logged = source.decode_errors, len(caplog.records)
    again = list(source.history(0))
    assert [tx.first_lsn for tx in again] == sorted(carried)
    assert [tx.commit_time for tx in again] == [tx.commit_time for tx in txs]
    assert (source.decode_errors, len(caplog.records)) == (errors, logged)


def test_commit_times_render_in_every_output(tmp_path: Path) -> None:
    kit, carried = timestamp_spool(tmp_path / "data.rdb.logical.wal")
    source = new_source(kit.path, tmp_path / "state")
    source.ingest()
    txs = source.read(0, 100)
    assert len(txs) == len(carried)
    for tx in txs:  # pgoutput's int64 microseconds and the text test_decoding/wal2json print
        assert -(1 << 63) <= pg_timestamp(tx) < 1 << 63
        assert text_out(1184, tx.commit_time)
    assert text_out(1184, MAX_COMMIT_TIME) == "9999-12-31 23:59:59.999+00"
    assert text_out(1184, MIN_COMMIT_TIME) == "0001-01-01 00:00:00+00"
