"""The engine's processes: a pool shared by queries, killed at a deadline, contained in memory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from pgshim.errors import PgError
from pgshim.sql import engine as engine_module
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


def test_processes_start_from_the_engines_template_single_threaded() -> None:
    made = Engine(memory_limit="64MB", workers=1)
    made.configure(
        [TempTable("t", [("a", "INTEGER")], [(1,), (2,), (3,)]),
         TempTable("s", [("b", "INTEGER")], [(10,)], shared=True)],
        ["CREATE MACRO twice(x) AS x * 2"],
    )  # fmt: skip
    newer = TempTable("s", [("b", "INTEGER")], [(20,), (30,)], shared=True)

    async def main() -> tuple[list, int]:
        cursor = await made.open(
            "SELECT sum(a), twice((SELECT sum(b) FROM s)) FROM t", [], [newer], Bound().start(),
            translate,
        )  # fmt: skip
        try:
            return await cursor.fetch(10), cursor.process.pid
        finally:
            cursor.close()

    result, pid = asyncio.run(main())
    assert result == [(6, 100)]
    assert engine_module._FORK_SERVER._templates[made._setup[0]] is not None
    # DuckDB runs no thread of its own there (a fork copies only the calling thread)
    assert os.listdir(f"/proc/{pid}/task") == [str(pid)]
    # the next process is forked from the template, which holds the first rows of s: it is
    # given the newer ones when it starts (the query does not send what the process holds)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    with pytest.raises(PgError):
        asyncio.run(rows(made, endless, timeout_ms=100))
    result, second = asyncio.run(main())
    assert result == [(6, 100)] and second != pid
    made.close()


def test_engines_with_other_setups_never_share_a_template() -> None:
    # more engines than the fork server keeps templates of: the oldest are opened again
    count = engine_module.MAX_TEMPLATES + 2
    made = []
    for n in range(count):
        one = Engine(memory_limit="64MB", workers=1)
        one.configure([TempTable("t", [("a", "INTEGER")], [(n,)])], [f"CREATE MACRO m() AS {n}"])
        made.append(one)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    for _ in range(2):
        for n, one in enumerate(made):
            assert asyncio.run(rows(one, "SELECT a, m() FROM t")) == [(n, n)]
        templates = engine_module._FORK_SERVER._templates
        kept = [key for key, held in templates.items() if held is not None]
        assert len(kept) == engine_module.MAX_TEMPLATES
        for one in made:  # its process is killed: the next query's is forked again
            with pytest.raises(PgError):
                asyncio.run(rows(one, endless, timeout_ms=100))
    for one in made:
        one.close()


def test_a_template_is_refused_where_a_fork_would_copy_a_running_thread() -> None:
    script = """
import pickle, socket, threading
from multiprocessing.connection import Connection
from pgshim.sql import engine_worker
setup = {"memory_limit": "64MB", "tables": [("t", [("a", "INTEGER")], [(1,)])], "macros": []}

def kept(with_thread):
    ours, theirs = socket.socketpair()
    Connection(ours.detach()).send_bytes(pickle.dumps(setup))
    stop = threading.Event()
    if with_thread:
        threading.Thread(target=stop.wait).start()
    templates = {}
    try:
        return engine_worker._keep_template(templates, 1, 4, Connection(theirs.detach())), templates
    finally:
        stop.set()

print(kept(True)[0] is False and kept(True)[1] == {}, kept(False)[0])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.split() == ["True", "True"]


def test_a_fork_server_that_died_is_started_again_with_the_templates() -> None:
    made = engine(workers=1)
    assert asyncio.run(rows(made, "SELECT sum(a) FROM t")) == [(6,)]
    fork_server = engine_module._FORK_SERVER
    assert fork_server._proc is not None
    fork_server._proc.kill()
    fork_server._proc.wait()
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    with pytest.raises(PgError):  # its process is killed: the next one needs the fork server
        asyncio.run(rows(made, endless, timeout_ms=100))
    assert asyncio.run(rows(made, "SELECT sum(a) FROM t")) == [(6,)]
    assert fork_server._templates[made._setup[0]] is not None
    made.close()
