"""Sustained appends: a writer at a fixed rate, consumers connected from the start, and each
change's lag from its append to its receipt.

pgshim: frames generated before any clock are copied into the spool at the pace
(workload.append_paced); the time of each write is matched to the changes by their LSNs.
PostgreSQL: pgbench --rate runs the same inserts and each row's ts, now() of its transaction, is
its append time. The consumers are psycopg2 replication connections (test_decoding), a process
each like pg_recvlogical.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import consumers
import numpy as np
import workload

# a writer: seconds it took, and per write (last LSN, append µs) when the changes' stamps are
# LSNs rather than append times
Batches = tuple[np.ndarray, np.ndarray]
Writer = Callable[[], tuple[float, Batches | None]]
P99_LIMIT_MS = 100.0


@dataclass
class Lags:
    rate: float  # records per second the writer achieved
    expected: int  # changes each consumer should have received
    consumers: int
    ms: np.ndarray  # the lag of every change received, all consumers
    early: float  # p99 of the changes appended in the first window, ms
    late: float  # p99 of those appended in the last one
    window: float  # seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ms, q)) if len(self.ms) else float("nan")

    @property
    def complete(self) -> bool:
        return len(self.ms) == self.expected * self.consumers

    @property
    def flat(self) -> bool:
        return self.late <= 2 * self.early or self.late - self.early <= 10

    def sustains(self, rate: float) -> bool:
        """Everything arrived, the writer kept ``rate`` and p99 stayed under the limit."""
        return self.complete and self.rate >= 0.95 * rate and self.percentile(99) < P99_LIMIT_MS

    def note(self) -> str:
        trend = "flat" if self.flat else "growing"
        return (f"writer {self.rate:,.0f}/s; {len(self.ms)}/{self.expected * self.consumers}"
                f" received; p99 first/last {self.window:.3g} s {self.early:.1f}/{self.late:.1f} ms"
                f" ({trend})")  # fmt: skip


class FrameSource:
    """``count`` + 1 benchmark frames written before any clock, so that the writer only copies
    bytes; frame 0 (LSN 1) starts each run's spool, the others are appended at the pace."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count
        self.ends = array("Q")
        workload.write_bench_spool(path, count + 1, ends=self.ends)

    def start_spool(self, spool: Path) -> None:
        with self.path.open("rb") as source:
            spool.write_bytes(source.read(self.ends[0]))

    def writer(self, spool: Path, rate: float, count: int) -> Writer:
        if count > self.count:
            raise ValueError(f"{count} records asked, {self.count} generated")

        def write() -> tuple[float, Batches | None]:
            elapsed, lsns, times = workload.append_paced(self.path, self.ends, spool, rate, count)
            return elapsed, (np.frombuffer(lsns, np.int64), np.frombuffer(times, np.int64))

        return write


def append_times(lsns: np.ndarray, batches: Batches) -> np.ndarray:
    """When each LSN was appended: the time of the first write whose last LSN is at or past it."""
    last_lsns, times = batches
    return times[np.minimum(np.searchsorted(last_lsns, lsns), len(times) - 1)]


def _consume(out: str, barrier: object, *args: object) -> None:
    stamps, received = consumers.receive_changes(*args, ready=barrier.wait)  # type: ignore[arg-type, attr-defined]
    with open(out, "wb") as f:
        stamps.tofile(f)
        received.tofile(f)


def measure(
    dsn: str, slots: list[str], count: int, seconds: float, stamp: consumers.Stamp, write: Writer
) -> Lags:
    """One consumer process per slot, all streaming before ``write`` starts; each waits for
    ``count`` changes (or until twice the writer's time and 30 s more have passed)."""
    barrier = multiprocessing.Barrier(len(slots) + 1)
    timeout = 2 * seconds + 30
    with tempfile.TemporaryDirectory(prefix="pgshim-sustained-") as tmp:
        outs = [Path(tmp) / f"{slot}.bin" for slot in slots]
        procs = [multiprocessing.Process(target=_consume, args=(str(out), barrier, dsn, slot,
                                                                count, timeout, stamp))
                 for slot, out in zip(slots, outs, strict=True)]  # fmt: skip
        for proc in procs:
            proc.start()
        try:
            barrier.wait(timeout=60)
            elapsed, batches = write()
            for proc in procs:
                proc.join(timeout + 60)
                if proc.exitcode != 0:
                    raise RuntimeError(f"a consumer failed (exit code {proc.exitcode})")
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        halves = [np.fromfile(out, np.int64).reshape(2, -1) for out in outs]
    stamps = np.concatenate([h[0] for h in halves])
    received = np.concatenate([h[1] for h in halves])
    appended = stamps if batches is None else append_times(stamps, batches)
    lags = (received - appended) / 1000
    window = min(10.0, seconds / 3)

    def p99(mask: np.ndarray) -> float:
        return float(np.percentile(lags[mask], 99)) if mask.any() else float("nan")

    early = p99(appended < appended.min() + window * 1e6) if len(lags) else float("nan")
    late = p99(appended >= appended.max() - window * 1e6) if len(lags) else float("nan")
    return Lags(count / elapsed, count, len(slots), lags, early, late, window)
