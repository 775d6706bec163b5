"""The engine's processes: a pool shared by queries, killed at a deadline, contained in memory."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound
from pgshim.sql.engine import Engine, TempTable
from pgshim.sql.engine_errors import translate


def engine(workers: int = 2, memory: str = "64MB") -> Engine:
    made = Engine(memory_limit=memory, workers=workers)
    made.configure([TempTable("t", [("a", "INTEGER")], [(1,), (2,), (3,)])], [])
    return made


async def rows(made: Engine, sql: str, timeout_ms: float = 0, params: list | None = None) -> list:
    cursor = await made.open(sql, params or [], [], Bound(timeout_ms).start(), translate)
    fetched = await cursor.fetch(100_000)
    cursor.close()
    return fetched


def test_more_queries_than_processes_all_finish() -> None:
    made = engine(workers=2)

    async def main() -> list:
        return await asyncio.gather(*(rows(made, f"SELECT sum(a) + {n} FROM t") for n in range(8)))

    assert [result[0][0] for result in asyncio.run(main())] == [6 + n for n in range(8)]
    assert made._live <= 2
    made.close()


def test_a_query_past_its_deadline_is_killed_and_its_process_replaced() -> None:
    made = engine(workers=1)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    started = time.monotonic()
    with pytest.raises(PgError) as caught:
        asyncio.run(rows(made, endless, timeout_ms=300))
    assert caught.value.sqlstate == "57014" and time.monotonic() - started < 3
    # the one process was killed: the next query gets a new one
    assert asyncio.run(rows(made, "SELECT count(*) FROM t")) == [(3,)]
    made.close()


def test_waiting_for_a_process_counts_against_the_deadline() -> None:
    made = engine(workers=1)

    async def main() -> None:
        busy = await made.open("SELECT * FROM range(10) r", [], [], Bound().start(), translate)
        try:
            with pytest.raises(PgError) as caught:
                await rows(made, "SELECT 1", timeout_ms=200)
            assert caught.value.sqlstate == "57014"
        finally:
            busy.close()

    asyncio.run(main())
    made.close()


def test_what_a_query_builds_beyond_the_cap_fails_in_its_process_only() -> None:
    made = engine(workers=1)
    big = "SELECT length(concat({})) FROM (SELECT string_agg(md5(i::varchar), '') s FROM range(1000000) r(i))"
    before = _rss_mib()
    with pytest.raises(PgError) as caught:
        asyncio.run(rows(made, big.format(", ".join(["s"] * 80))))
    assert caught.value.sqlstate == "53200"
    assert _rss_mib() - before < 50  # none of it in this process
    assert asyncio.run(rows(made, "SELECT 1")) == [(1,)]
    made.close()


def _rss_mib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")
