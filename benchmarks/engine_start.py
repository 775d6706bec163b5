#!/usr/bin/env python
"""How long the SQL engine takes to start a process (the catalog's tables and macros loaded).

    .venv/bin/python benchmarks/engine_start.py [--runs 20]

An engine process is started ahead for the next queries, when more queries run at once than
processes are idle, and after a statement timeout or a cancel killed one. Each run here starts
one (as the server does, with pgshim's whole catalog) and ends it; the median, the fastest and
the slowest start, wall clock. PostgreSQL has no counterpart to time side by side: its backend
starts with the connection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pgshim.sql.catalog import Catalog  # noqa: E402
from pgshim.sql.engine import Engine  # noqa: E402


def start_times(runs: int) -> list[float]:
    engine = Engine(workers=1)
    Catalog(engine=engine).warm()
    times = []
    for _ in range(runs + 1):  # the first starts the fork server's template too: not counted
        with engine._free:  # a process as the pool makes one (engine._take)
            engine._live += 1
        started = time.perf_counter()
        process = engine._start()
        times.append(time.perf_counter() - started)
        process.kill()
        with engine._free:
            engine._live -= 1
    engine.close()
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    times = [1000 * t for t in start_times(parser.parse_args().runs)]
    print(
        f"engine process start: median {statistics.median(times):.1f} ms, "
        f"min {min(times):.1f} ms, max {max(times):.1f} ms ({len(times)} runs)"
    )


if __name__ == "__main__":
    main()
