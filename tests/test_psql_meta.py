"""The backslash commands of psql 15 to 18 against pgshim presenting that version answer like
a PostgreSQL of that version holding the same tables: both servers get the same collections
(PostgreSQL's tables made from pgshim_collections) and each command's output is compared, with
what must differ normalised (sizes, owners of PostgreSQL's own objects, descriptions PostgreSQL
ships)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from pgcluster import PgCluster, pg_bindir, release_bindir

from pgshim.sql.catalog_versions import catalog_columns
from pgshim.sql.pg_functions import PG15_COLUMNS, SUBSTITUTED_TYPES
from pgshim.versions import DEFAULT_MAJOR

pytestmark = pytest.mark.timeout(180)


def _psql(
    port: int, command: str, dbname: str = "reddb", bindir=None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str((bindir or pg_bindir()) / "psql"), "-X", "-A", "-h", "127.0.0.1", "-p", str(port), "-U",
         "postgres", "-d", dbname, "-c", command],
        capture_output=True, text=True, timeout=60, env={"PGCONNECT_TIMEOUT": "10"},
    )  # fmt: skip


def create_like(server_psql, pg: PgCluster, dbname: str = "reddb") -> None:
    """PostgreSQL tables with the columns pgshim shows for its collections (rid the key), in a
    new database."""
    rows = server_psql("SELECT tablename, columns, types FROM pgshim_collections")
    pg.psql(f"DROP DATABASE IF EXISTS {dbname}")
    pg.psql(f"CREATE DATABASE {dbname}")
    for line in rows.splitlines():
        table, columns, types = line.split("|")
        names = columns.strip("{}").split(",")
        kinds = [kind.strip('"') for kind in _split_array(types)]
        defs = ", ".join(
            f'"{name}" {kind}' + (" PRIMARY KEY" if name == "rid" else "")
            for name, kind in zip(names, kinds, strict=True)
        )
        pg.psql(f'CREATE TABLE "{table}" ({defs})', dbname=dbname)


def _split_array(text: str) -> list[str]:
    items, current, quoted = [], "", False
    for ch in text.strip("{}"):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append(current)
            current = ""
            continue
        current += ch
    return [*items, current]


class Servers:
    """pgshim presenting PostgreSQL ``major`` and a real one of that version, same tables."""

    def __init__(self, server, pg: PgCluster, major: int) -> None:
        self.server, self.pg, self.major, self.bindir = server, pg, major, pg.bindir

    def ours(self, command: str) -> subprocess.CompletedProcess[str]:
        return _psql(self.server.port, command, bindir=self.bindir)

    def theirs(self, command: str) -> subprocess.CompletedProcess[str]:
        return _psql(self.pg.port, command, bindir=self.bindir)


@pytest.fixture(scope="module", params=[15, 16, 17, 18])
def servers(tmp_path_factory, request):
    major = request.param
    bindir = pg_bindir() if major == 15 else release_bindir(major)
    if bindir is None:
        pytest.skip(f"PostgreSQL {major} binaries are not available")
    import datetime as dt
    import uuid
    from decimal import Decimal

    from server_proc import PgshimServer
    from spoolkit import SpoolKit

    base = tmp_path_factory.mktemp(f"psqlmeta{major}")
    kit = SpoolKit(base / "data.rdb.logical.wal")
    kit.insert("users", name="ann", age=3, score=1.5, active=True, born=dt.date(2000, 1, 1),
               data={"a": 1}, uid=uuid.uuid4(), amount=Decimal("1.5"),
               ts=dt.datetime.now(dt.UTC), blob=b"x")  # fmt: skip
    kit.insert("orders", item="x", qty=2)
    kit.close()
    # the default (18) is served without --server-version
    args = () if major == DEFAULT_MAJOR else ("--server-version", str(major))
    server = PgshimServer(kit.path, base / "state", args=args).start()
    pg = PgCluster(base / "pg", bindir=bindir).start()
    try:
        create_like(server.psql, pg)
        for port in (server.port, pg.port):
            done = _psql(port, "CREATE PUBLICATION pub FOR TABLE users", bindir=bindir)
            assert done.returncode == 0, done.stderr
        yield Servers(server, pg, major)
    finally:
        pg.stop()
        server.stop()


def _normalise(command: str, text: str) -> str:
    if command.startswith("\\l+"):  # sizes and PostgreSQL's descriptions of its databases
        text = re.sub(
            r"\|-?\d+ (bytes|kB|MB|GB|TB|PB)\|pg_default\|[^\n]*", "|SIZE|pg_default|", text
        )
    lines = text.splitlines()
    if command == "\\dn":  # PostgreSQL 15's public schema belongs to pg_database_owner
        lines = [line.replace("|pg_database_owner", "|postgres") for line in lines]
    return "\n".join(lines)


COMMANDS = ["\\d", "\\dt", "\\dv", "\\d users", "\\d+ users", "\\d orders", "\\dn", "\\l", "\\l+",
            "\\du", "\\dRp+", "\\df", "\\di"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_backslash_command_answers_like_postgresql(servers: Servers, command: str) -> None:
    ours, theirs = servers.ours(command), servers.theirs(command)
    assert ours.returncode == 0 and ours.stderr == theirs.stderr, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert _normalise(command, ours.stdout) == _normalise(command, theirs.stdout)


def test_dx_lists_no_extensions(servers: Servers) -> None:
    """pgshim runs no procedural code: no plpgsql (PostgreSQL lists it)."""
    ours = servers.ours("\\dx")
    assert ours.returncode == 0 and not ours.stderr, ours.stderr
    assert "(0 rows)" in ours.stdout
    assert "plpgsql" in servers.theirs("\\dx").stdout


def test_catalog_columns_are_the_versions(servers: Servers) -> None:
    """Each catalog pgshim serves has the served version's columns, in order, with its types."""
    pg = servers.pg
    names = ", ".join(f"'{name}'" for name in PG15_COLUMNS)
    text = pg.psql(
        "SELECT c.relname, a.attname, format_type(a.atttypid, NULL) FROM pg_class c"
        " JOIN pg_attribute a ON a.attrelid = c.oid WHERE c.relnamespace = 11"
        f" AND a.attnum > 0 AND c.relname IN ({names}) ORDER BY c.relname, a.attnum"
    )
    theirs: dict[str, list[tuple[str, str]]] = {}
    for line in text.splitlines():
        relname, column, kind = line.split("|")
        theirs.setdefault(relname, []).append((column, SUBSTITUTED_TYPES.get(kind, kind)))
    from pgshim import pgtypes

    ours = {
        name: [
            (column, pgtypes.lookup(kind).sql_name)
            for column, kind in catalog_columns(name, servers.major)
        ]
        for name in PG15_COLUMNS
    }
    assert ours == theirs


def test_describe_is_fast_with_200_collections(tmp_path) -> None:
    from server_proc import PgshimServer
    from spoolkit import SpoolKit

    kit = SpoolKit(tmp_path / "data.rdb.logical.wal")
    kit.insert("users", name="ann", age=3)
    for n in range(200):
        kit.insert(f"c{n:03d}", v=n, s="x")
    kit.close()
    server = PgshimServer(kit.path, tmp_path / "state").start()
    try:
        assert _psql(server.port, "\\d users").returncode == 0  # warm
        started = time.monotonic()
        runs = 5
        for _ in range(runs):
            out = _psql(server.port, "\\d users")
            assert out.returncode == 0 and "users_pkey" in out.stdout, out.stderr
        elapsed = (time.monotonic() - started) / runs
        print(f"psql \\d users with 201 collections: {elapsed * 1000:.0f} ms")
        assert elapsed < 2.0
    finally:
        server.stop()


STATUS_VIEWS = ["pg_replication_slots", "pg_stat_replication", "pg_stat_replication_slots",
                "pg_stat_activity", "pg_stat_database", "pg_stat_database_conflicts",
                "pg_stat_bgwriter", "pg_stat_archiver", "pg_stat_wal", "pg_stat_subscription_stats",
                "pg_stat_io", "pg_stat_checkpointer"]  # fmt: skip


def test_status_views_have_the_versions_columns(servers: Servers) -> None:
    """The same catalog query on both servers: each status view's columns and types."""
    names = ", ".join(f"'{name}'" for name in STATUS_VIEWS)
    query = (
        "SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, NULL)"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
        f" WHERE c.relnamespace = 11 AND a.attnum > 0 AND c.relname IN ({names})"
        " ORDER BY c.relname, a.attnum"
    )
    ours, theirs = servers.ours(query), servers.theirs(query)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout


STAT_IO_COUNTERS = ["reads", "read_bytes", "read_time", "writes", "write_bytes", "write_time",
                    "writebacks", "writeback_time", "extends", "extend_bytes", "extend_time",
                    "hits", "evictions", "reuses", "fsyncs", "fsync_time"]  # fmt: skip
# 16 and 17 count no bytes per operation; op_bytes is the block size where an operation counts
STAT_IO_COUNTERS_16 = [c for c in STAT_IO_COUNTERS if not c.endswith("_bytes")] + ["op_bytes"]


def test_stat_io_has_the_versions_rows(servers: Servers) -> None:
    """pg_stat_io (16+) has PostgreSQL's rows, NULL where PostgreSQL counts nothing; pgshim's
    counters are zero and every view's stats_reset is the server's start."""
    if servers.major < 16:  # as in PostgreSQL 15, there is no pg_stat_io
        for answer in (servers.ours("SELECT * FROM pg_stat_io"),
                       servers.theirs("SELECT * FROM pg_stat_io")):  # fmt: skip
            assert 'relation "pg_stat_io" does not exist' in answer.stderr
        return
    counters = STAT_IO_COUNTERS if servers.major >= 18 else STAT_IO_COUNTERS_16
    nulls = " || ".join(f"CASE WHEN {c} IS NULL THEN 'N' ELSE '0' END" for c in counters)
    query = f"SELECT backend_type, object, context, {nulls} FROM pg_stat_io ORDER BY 1, 2, 3"
    ours, theirs = servers.ours(query), servers.theirs(query)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    if servers.major < 18:  # op_bytes: the block size, as PostgreSQL's
        query = "SELECT DISTINCT op_bytes FROM pg_stat_io"
        assert servers.ours(query).stdout == servers.theirs(query).stdout
        counters = [c for c in counters if c != "op_bytes"]
    total = " + ".join(f"coalesce({c}, 0)" for c in counters)
    rows = theirs.stdout.splitlines()[-1]  # (N rows)
    checks = [
        (f"SELECT count(*)::text || ' rows', sum({total}) FROM pg_stat_io", f"{rows[1:-1]}|0"),
        ("SELECT wal_records, wal_bytes = 0, stats_reset = pg_postmaster_start_time()"
         " FROM pg_stat_wal", "0|t|t"),
    ]  # fmt: skip
    if servers.major >= 17:  # 18 added num_done and slru_written
        checkpoints = "num_timed + num_requested + buffers_written"
        if servers.major >= 18:
            checkpoints += " + num_done + slru_written"
        checks.append((f"SELECT {checkpoints}, stats_reset = pg_postmaster_start_time()"
                       " FROM pg_stat_checkpointer", "0|t"))  # fmt: skip
    for query, expected in checks:
        answer = servers.ours(query)
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout.splitlines()[1] == expected, query
