"""The sustained benchmark's writer and its matching of changes to append times."""

from __future__ import annotations

import sys
from array import array
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import sustained  # noqa: E402
import workload  # noqa: E402

from pgshim.spool.follower import SpoolFollower  # noqa: E402


def test_append_paced_copies_frames_at_the_rate(tmp_path: Path) -> None:
    source, spool = tmp_path / "source", tmp_path / "spool"
    ends = array("Q")
    workload.write_bench_spool(source, 301, ends=ends)
    assert len(ends) == 301 and ends[-1] == source.stat().st_size
    spool.write_bytes(source.read_bytes()[: ends[0]])
    elapsed, lsns, times = workload.append_paced(source, ends, spool, rate=1000, count=300)
    assert spool.read_bytes() == source.read_bytes()
    assert 0.29 <= elapsed < 1.5
    assert lsns[-1] == 301 and list(lsns) == sorted(set(lsns)) and len(lsns) > 10
    assert list(times) == sorted(times) and (times[-1] - times[0]) / 1e6 >= 0.28
    with SpoolFollower(str(spool)) as follower:
        assert [f.lsn for f in follower.poll(max_bytes=1 << 20)] == list(range(1, 302))


def test_append_times_by_lsn() -> None:
    batches = (np.array([3, 5, 9]), np.array([100, 200, 300]))
    lsns = np.array([2, 3, 4, 5, 6, 9])
    assert sustained.append_times(lsns, batches).tolist() == [100, 100, 200, 200, 300, 300]
