"""Instructions one record takes on the cold catch-up path, counted by callgrind.

The path is the server's, in one process: the spool ingested (``ChangeSource.ingest``, then
``store_released`` as the server's loop calls them), the decoded store writing its chunks with
the output rendered ahead in one format, then a catch-up read of that output from the oldest
change (``ChangeSource.history`` and the XLogData a session would send). Each format is run
twice under ``valgrind --tool=callgrind``, on N and on 2N of the benchmark's rows
(``workload.write_bench_spool``); one record's cost is the difference divided by N, start-up,
imports and the state's creation cancelling out. The collector runs as in the server (frozen
after start-up, its young generation collected every GC_YOUNG_THRESHOLD allocations).

Wall-clock times on a shared two-core machine move by a fifth from one run to the next, which
hides what one change to the per-record path does; instruction counts repeat to within a few
hundred a record. They complement ``run.py``'s end-to-end figures, they do not replace them.

    python benchmarks/instructions.py [--records N] [--formats test_decoding,pgoutput,none]

``none``: ingestion and the store, nothing rendered ahead.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = {"test_decoding": "test_decoding:100", "pgoutput": "pgoutput:text", "none": None}


def cold_path(spool: str, key: str | None) -> int:
    """Ingest, store and render ahead ``spool``, then read it all back in ``key``; the last LSN
    read (every record must be, or the count is not what it claims)."""
    import gc

    from pgshim.logical.decoded_store import STORE_FILE_NAME, DecodedStore
    from pgshim.logical.relations import RelationRegistry
    from pgshim.logical.source import AheadChunk, ChangeSource
    from pgshim.logical.transactions import TransactionBuilder
    from pgshim.reddb.identity import IdentityMap
    from pgshim.run import GC_YOUNG_THRESHOLD
    from pgshim.spool.follower import SpoolFollower
    from pgshim.state import open_state
    from pgshim.walsender.ahead import AheadKeys, chunk_messages

    state = Path(tempfile.mkdtemp())
    conn = open_state(state)
    relations = RelationRegistry(conn)
    store = DecodedStore(state / STORE_FILE_NAME, relations)
    AheadKeys(conn, store).use(key)
    follower = SpoolFollower(spool)
    source = ChangeSource(follower, TransactionBuilder(IdentityMap(conn), relations), store=store)
    try:
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        while source.ingest(now=1e12, store=False):
            source.store_released(now=1e12)
        store.flush()
        if key is None:
            return source.last_lsn
        last = 0
        for item in source.history(0, ahead=key):
            if isinstance(item, AheadChunk):
                chunk_messages(item, 0)  # the bytes a session sends
            last = item.last_lsn
        return last
    finally:
        follower.close()
        conn.close()
        shutil.rmtree(state, ignore_errors=True)


def count(spool: Path, fmt: str, records: int) -> int:
    """Instructions of a whole run of ``cold_path`` in a new process, under callgrind."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--inner", str(spool), fmt,
    ]  # fmt: skip
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no count: {out.stderr[-500:]}")
    if int(out.stdout.split()[-1]) != records:
        raise RuntimeError(f"{fmt}: read up to LSN {out.stdout.strip()} of {records}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--formats", default="test_decoding,pgoutput,none")
    parser.add_argument("--inner", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        spool, fmt = args.inner
        print(cold_path(spool, FORMATS[fmt]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (Debian: apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).parent))
    import workload

    from pgshim import speedups

    work = Path(tempfile.mkdtemp())
    try:
        spools = {}
        for n in (args.records, 2 * args.records):
            spools[n] = work / f"rows{n}.rdb.logical.wal"
            workload.write_bench_spool(spools[n], n)
        print(f"compiled core: {speedups.describe()}")
        print(f"{'format rendered ahead':24s} {'instructions a record':>22s}")
        for fmt in args.formats.split(","):
            small, large = (count(spools[n], fmt, n) for n in sorted(spools))
            print(f"{fmt:24s} {(large - small) / args.records:>22,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
