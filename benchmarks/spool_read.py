"""Spool read throughput: framing+CRC, and full decode (ChangeRecord + entity).

Generates a spool (fsync off) in a temporary directory, then reads it back with SpoolFollower.

    python benchmarks/spool_read.py [--records N] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from itertools import chain

from pgshim.reddb.change import ChangeDecodeError, parse_change_record
from pgshim.reddb.entity import decode_entity
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.generate import Workload
from pgshim.spool.writer import SpoolWriter

BATCH_BYTES = 4 << 20  # bytes per poll, as a streaming consumer would take them


def write_spool(path: str, records: int, unique: int, seed: int) -> None:
    """``unique`` workload records, repeated with fresh LSNs up to ``records`` (fsync off).

    Encoding entities in Python is far slower than reading them, so a large spool reuses a
    realistic pool of payloads instead of generating every record.
    """
    pool = list(Workload(seed=seed).records(min(unique, records)))
    span = max(record["lsn"] for record in pool)
    with SpoolWriter(path, fsync=False) as writer:
        for i in range(records):
            record = dict(pool[i % len(pool)])
            record["lsn"] += span * (i // len(pool))
            writer.append_record(record, timestamp_ms=record["timestamp"] + 1)


def read_frames(path: str) -> tuple[int, float]:
    started = time.perf_counter()
    with SpoolFollower(path, chunk_size=4 << 20) as follower:
        count = 0
        while batch := follower.poll(max_bytes=BATCH_BYTES):
            count += len(batch)
    return count, time.perf_counter() - started


def decode_all(path: str) -> tuple[int, int, float]:
    started = time.perf_counter()
    count = errors = 0
    with SpoolFollower(path, chunk_size=4 << 20) as follower:
        for frame in chain.from_iterable(iter(lambda: follower.poll(BATCH_BYTES), [])):
            try:
                record = parse_change_record(frame.payload, frame.lsn)
                if record.entity_bytes is not None:
                    decode_entity(record.entity_bytes, lsn=record.lsn)
                for raw in record.refresh_records:
                    decode_entity(raw, lsn=record.lsn)
            except ChangeDecodeError:
                errors += 1
            count += 1
    return count, errors, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--unique", type=int, default=50_000, help="distinct generated records")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.rdb.logical.wal")
        started = time.perf_counter()
        write_spool(path, args.records, args.unique, args.seed)
        generated = time.perf_counter() - started
        size = os.path.getsize(path)
        print(f"generated {args.records} records, {size / 1e6:.1f} MB in {generated:.1f}s")
        runs = [read_frames(path) for _ in range(3)]
        count = runs[0][0]
        rates = sorted(count / elapsed for _, elapsed in runs)
        print(
            f"framing+CRC:  {rates[1]:>10,.0f} records/s, median of 3"
            f" (best {rates[-1]:,.0f}; {rates[1] * size / count / 1e6:.0f} MB/s)"
        )
        count, errors, elapsed = decode_all(path)
        print(f"full decode:  {count / elapsed:>10,.0f} records/s  ({errors} decode errors)")


if __name__ == "__main__":
    main()
