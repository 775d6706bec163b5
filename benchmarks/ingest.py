"""Ingestion throughput: from the spool file to the decoded transactions the server keeps.

Generates a spool of the demo workload's records (its mix of collections and value types), then
measures each stage alone, on the previous stage's output, and the whole path as the server runs
it (``ChangeSource.ingest`` with the decoded store), in records per CPU second and CPU µs per
record (this process's CPU time):

    frames   spool frames + CRC (SpoolFollower.poll)
    json     ChangeRecord JSON (parse_change_record)
    entity   entity bytes -> typed values (decode_entity)
    rows     relation rows and identities (TransactionBuilder.build less its entity decode)
    store    the decoded store (DecodedStore.add: text output, pickling, compression, sqlite)
    total    ChangeSource.ingest of the whole spool, store included

    python benchmarks/ingest.py [--records N] [--runs R] [--profile] [--pure]

``--pure`` turns the compiled core off (PGSHIM_PURE=1); ``--profile`` runs the whole path once
under cProfile and prints the functions taking the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if "--pure" in sys.argv:
    os.environ["PGSHIM_PURE"] = "1"

from spool_read import write_spool  # noqa: E402

from pgshim import speedups  # noqa: E402
from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore  # noqa: E402
from pgshim.logical.relations import RelationRegistry  # noqa: E402
from pgshim.logical.source import ChangeSource  # noqa: E402
from pgshim.logical.transactions import TransactionBuilder  # noqa: E402
from pgshim.reddb.change import parse_change_record  # noqa: E402
from pgshim.reddb.entity import decode_entity  # noqa: E402
from pgshim.reddb.identity import IdentityMap  # noqa: E402
from pgshim.spool.follower import SpoolFollower  # noqa: E402
from pgshim.state import open_state  # noqa: E402

BATCH_BYTES = 4 << 20
UNIQUE = 50_000  # distinct generated records, repeated with fresh LSNs beyond


class _State:
    """A fresh state directory with what the server builds from it."""

    def __init__(self, root: str, name: str) -> None:
        directory = Path(root) / name
        directory.mkdir()
        self.conn = open_state(directory)
        self.relations = RelationRegistry(self.conn)
        self.builder = TransactionBuilder(IdentityMap(self.conn), self.relations)
        self.store = DecodedStore(directory / STORE_FILE_NAME, self.relations)


def _timed(work: Callable[[], object]) -> tuple[object, float]:
    """The result and the CPU seconds this process spent on it: on a machine busy with other
    work, wall time measures the others as much as ingestion."""
    started = time.process_time()
    result = work()
    return result, time.process_time() - started


def read_frames(path: str) -> list:
    frames: list = []
    with SpoolFollower(path, chunk_size=BATCH_BYTES) as follower:
        while batch := follower.poll(max_bytes=BATCH_BYTES):
            frames.extend(batch)
    return frames


def stages(path: str, root: str, run: int) -> dict[str, float]:
    """Seconds per stage, each on the previous stage's output."""
    frames, t_frames = _timed(lambda: read_frames(path))
    records, t_json = _timed(
        lambda: [parse_change_record(f.payload, f.lsn, f.timestamp_ms) for f in frames]
    )

    def entities() -> None:
        for record in records:
            if record.entity_bytes is not None:
                decode_entity(record.entity_bytes, lsn=record.lsn)
            for raw in record.refresh_records:
                decode_entity(raw, lsn=record.lsn)

    _, t_entity = _timed(entities)
    state = _State(root, f"stages{run}")
    build = state.builder.build
    transactions, t_build = _timed(lambda: [build([record]) for record in records])

    def store() -> None:
        before = 0
        for tx in transactions:
            state.store.add(tx, before)
            state.store.flush_full()
            before = tx.last_lsn
        state.store.flush()

    _, t_store = _timed(store)
    state.conn.close()
    return {
        "frames": t_frames,
        "json": t_json,
        "entity": t_entity,
        "rows": max(t_build - t_entity, 0.0),
        "store": t_store,
    }


def whole(path: str, root: str, run: int) -> tuple[int, float]:
    """The server's path: ChangeSource.ingest of the whole spool into the decoded store."""
    state = _State(root, f"whole{run}")
    source = ChangeSource(SpoolFollower(path), state.builder, store=state.store)
    # the workload leaves holes in its LSNs (as RedDB's KV watch events do): the records above
    # one are released once its grace has passed, here by a second call a day later
    released, elapsed = _timed(lambda: source.ingest(now=0.0) + source.ingest(now=86400.0))
    source.follower.close()
    state.conn.close()
    return int(released), elapsed  # type: ignore[call-overload]


def total(path: str, root: str, runs: int) -> tuple[int, float]:
    """Transactions released and the median CPU seconds of ``runs`` whole-path ingestions."""
    totals = [whole(path, root, run) for run in range(runs)]
    return totals[0][0], statistics.median(elapsed for _, elapsed in totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--unique", type=int, default=UNIQUE, help="distinct generated records")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="the whole path under cProfile")
    parser.add_argument("--pure", action="store_true", help="without the compiled core")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.rdb.logical.wal")
        _, generated = _timed(lambda: write_spool(path, args.records, args.unique, args.seed))
        size = os.path.getsize(path)
        print(f"{args.records:,} records, {size / 1e6:.1f} MB, generated in {generated:.1f}s; "
              f"compiled core: {speedups.describe()}")  # fmt: skip
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            whole(path, tmp, 0)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return
        runs = [stages(path, tmp, run) for run in range(args.runs)]
        count, total_seconds = total(path, tmp, args.runs)
        print(
            f"{'stage':<8} {'records/s':>12} {'µs/record':>10}   (CPU time, median of {args.runs})"
        )
        rows = [(name, statistics.median(run[name] for run in runs)) for name in runs[0]]
        rows.append(("total", total_seconds))
        for name, seconds in rows:
            print(f"{name:<8} {count / seconds:>12,.0f} {seconds / count * 1e6:>10.2f}")


if __name__ == "__main__":
    main()
