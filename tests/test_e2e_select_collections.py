"""SELECT over collections against a real pgshim process, with psycopg2 and psql: the rows and
types the replication stream gives, queries over them, snapshots (SET TRANSACTION SNAPSHOT with
an exported slot snapshot, then streaming from the slot: no gap, no overlap), privileges, and a
big collection read while other sessions go on."""

from __future__ import annotations

import datetime as dt
import re
import select
import threading
import time
import uuid
from decimal import Decimal

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import pytest
from server_proc import wait_for

from pgshim import pgtypes

pytestmark = pytest.mark.timeout(300)

_FIELD = re.compile(r"(\w+)\[([^\]]+)\]:('(?:[^']|'')*'|\S+)")


def write_rows(spool) -> None:  # noqa: ANN001
    for i in range(30):
        spool.insert(
            "users", name=f"u{i}", age=i, score=i / 8, active=i % 3 == 0,
            born=dt.date(1990, 1, 1 + i % 28),
            seen=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC) + dt.timedelta(minutes=i),
            uid=uuid.UUID(int=i * 7919), balance=Decimal(i * 125) / 100, photo=bytes([i, 0, 255]),
            tags={"n": i, "odd": i % 2 == 1},
        )  # fmt: skip
    for i in range(1, 31, 4):
        spool.update("users", i, name=f"renamed {i}", age=100 + i)
    for i in range(2, 31, 5):
        spool.delete("users", i)
    for i in range(12):
        spool.insert("orders", user_id=(i % 6) + 1, total=Decimal(i * 10) / 4, item="o'x\t\\")


def raw_text(conn) -> None:  # noqa: ANN001
    """Results as the text the server sent, whatever their type."""
    oids = tuple(pgtypes.BY_OID)
    psycopg2.extensions.register_type(
        psycopg2.extensions.new_type(oids, "RAW", lambda value, cur: value), conn
    )


def streamed_rows(server, slot: str, count: int) -> tuple[dict, dict]:  # noqa: ANN001
    """Fold ``count`` test_decoding messages from a slot into rows: {table: {rid: {column:
    text}}} and {table: {column: type name}}."""
    conn = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    cur = conn.cursor()
    cur.start_replication(slot_name=slot, decode=True, start_lsn=0)
    tables: dict[str, dict[int, dict[str, str | None]]] = {}
    types: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + 30
    seen = 0
    while seen < count:
        msg = cur.read_message()
        if msg is None:
            assert time.monotonic() < deadline, f"got {seen} of {count} messages"
            select.select([cur], [], [], 0.5)
            continue
        seen += 1
        match = re.match(r"table (\S+)\.(\S+): (\w+): (.*)", msg.payload)
        if not match:
            continue
        _, table, action, rest = match.groups()
        fields = {}
        for name, kind, value in _FIELD.findall(rest):
            types.setdefault(table, {})[name] = kind
            fields[name] = None if value == "null" else (
                value[1:-1].replace("''", "'") if value.startswith("'") else value
            )  # fmt: skip
            if kind == "boolean" and fields[name] is not None:
                fields[name] = fields[name][0]  # test_decoding prints true/false, typoutput t/f
        rows = tables.setdefault(table, {})
        if action == "DELETE":
            rows.pop(int(fields["rid"]), None)
        else:
            rows[int(fields["rid"])] = fields
    conn.close()
    return tables, types


def connect(server, **extra):  # noqa: ANN001, ANN003, ANN201
    conn = psycopg2.connect(server.dsn(**extra))
    conn.autocommit = True
    return conn


def test_select_gives_the_rows_and_types_of_the_stream(spool, pgshim) -> None:
    write_rows(spool)
    server = pgshim(spool.path)
    server.psql("SELECT pgshim_create_history_slot('h', 'test_decoding')")
    records = spool.lsn
    streamed, types = streamed_rows(server, "h", records * 3)
    conn = connect(server)
    raw_text(conn)
    cur = conn.cursor()
    for table in ("users", "orders"):
        for name in (table, f"public.{table}"):
            cur.execute(f"SELECT * FROM {name}")
            columns = [column.name for column in cur.description]
            got = {int(row[0]): dict(zip(columns, row, strict=True)) for row in cur.fetchall()}
            expected = {
                rid: {column: row.get(column) for column in columns}
                for rid, row in streamed[table].items()
            }
            assert got == expected
            assert {
                column.name: pgtypes.BY_OID[column.type_code].sql_name for column in cur.description
            } == types[table]
    # independently of the stream: what the spool holds
    cur.execute("SELECT rid, name, age FROM users ORDER BY rid")
    assert cur.fetchall() == [
        (str(rid), row.values["name"], str(row.values["age"]))
        for (collection, rid), row in sorted(spool.rows.items())
        if collection == "users"
    ]
    cur.execute("SELECT balance, photo, tags, seen FROM users WHERE rid = 4")
    assert cur.fetchone() == (
        "3.7500", "\\x0300ff", '{"n": 3, "odd": true}', "2024-05-01 12:03:00+00"
    )  # fmt: skip


def test_where_order_limit_aggregates_and_joins(spool, pgshim) -> None:
    write_rows(spool)
    server = pgshim(spool.path)
    live = sorted(
        (rid, row.values) for (collection, rid), row in spool.rows.items() if collection == "users"
    )
    conn = connect(server)
    cur = conn.cursor()
    cur.execute("SELECT rid, name FROM users WHERE age >= %s AND active ORDER BY age DESC LIMIT 3",
                (10,))  # fmt: skip
    wanted = sorted(
        ((rid, v["name"], v["age"]) for rid, v in live if v["age"] >= 10 and v["active"]),
        key=lambda item: -item[2],
    )[:3]
    assert cur.fetchall() == [(rid, name) for rid, name, _ in wanted]
    cur.execute("SELECT count(*), sum(balance), max(seen) FROM users")
    count, total, latest = cur.fetchone()
    assert count == len(live)
    assert total == sum(v["balance"] for _, v in live)
    assert latest == max(v["seen"] for _, v in live)
    cur.execute(
        "SELECT u.name, count(*), sum(o.total) FROM public.users u JOIN orders o "
        "ON o.user_id = u.rid GROUP BY u.name ORDER BY u.name"
    )
    by_user: dict[str, list] = {}
    names = dict(live)
    for (collection, _), row in spool.rows.items():
        if collection == "orders" and row.values["user_id"] in names:
            entry = by_user.setdefault(names[row.values["user_id"]]["name"], [0, Decimal(0)])
            entry[0] += 1
            entry[1] += row.values["total"]
    assert cur.fetchall() == [(name, n, total) for name, (n, total) in sorted(by_user.items())]
    # the extended protocol describes it first; psql prints it
    assert server.psql("SELECT item FROM orders LIMIT 1") == "o'x\t\\"
    assert server.psql("SELECT count(*) FROM users WHERE name LIKE 'renamed%'") == str(
        sum(1 for _, v in live if v["name"].startswith("renamed"))
    )
    with pytest.raises(psycopg2.errors.UndefinedTable):
        cur.execute("SELECT * FROM other.users")


def test_exported_snapshot_then_stream_no_gap_no_overlap(spool, pgshim) -> None:
    for i in range(20):
        spool.insert("users", name=f"before {i}")
    server = pgshim(spool.path)
    wait_for(lambda: server.psql("SELECT count(*) FROM users") == "20")
    repl = psycopg2.connect(
        server.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    rcur = repl.cursor()
    rcur.execute("CREATE_REPLICATION_SLOT sync LOGICAL test_decoding (SNAPSHOT 'export')")
    slot, consistent, snapshot, _ = rcur.fetchone()
    # the writer goes on: updates, deletes, inserts after the consistent point
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            spool.insert("users", name=f"after {n}")
            n += 1
            time.sleep(0.002)

    spool.update("users", 3, name="changed")
    spool.delete("users", 5)
    thread = threading.Thread(target=writer)
    thread.start()
    conn = psycopg2.connect(server.dsn())
    conn.set_session(isolation_level="REPEATABLE READ")  # psycopg2 sends BEGIN ISOLATION ...
    cur = conn.cursor()
    cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
    cur.execute("SELECT rid, name FROM users ORDER BY rid")
    first = cur.fetchall()
    time.sleep(0.2)
    cur.execute("SELECT rid, name FROM users ORDER BY rid")  # the same snapshot, later
    assert cur.fetchall() == first
    conn.commit()
    assert first == [(i + 1, f"before {i}") for i in range(20)]
    with pytest.raises(psycopg2.errors.InvalidParameterValue):
        cur.execute("SET TRANSACTION SNAPSHOT 'not-a-snapshot'")
    conn.rollback()
    with pytest.raises(psycopg2.errors.ActiveSqlTransaction):
        cur.execute("SELECT 1")
        cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
    conn.rollback()
    conn.set_session(isolation_level="READ COMMITTED")
    with pytest.raises(psycopg2.errors.FeatureNotSupported):  # PostgreSQL refuses it too
        cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
    conn.rollback()
    stop.set()
    thread.join()
    # the tablesync contract: the snapshot plus the stream is the table, every change once
    rows = {rid: {"rid": str(rid), "name": name} for rid, name in first}
    rcur.start_replication(slot_name=slot, decode=True)
    later = (
        spool.lsn
        - int(consistent.split("/")[1], 16) // 256
        - (int(consistent.split("/")[0], 16) << 24)
    )
    deadline = time.monotonic() + 30
    seen = 0
    while seen < later * 3:
        msg = rcur.read_message()
        if msg is None:
            assert time.monotonic() < deadline, f"got {seen} messages"
            select.select([rcur], [], [], 0.5)
            continue
        seen += 1
        match = re.match(r"table \S+: (\w+): (.*)", msg.payload)
        if match:
            fields = {n: v.strip("'") for n, _, v in _FIELD.findall(match.group(2))}
            rid = int(fields["rid"])
            if match.group(1) == "INSERT":
                assert rid not in rows, f"overlap: {msg.payload}"
            if match.group(1) == "DELETE":
                rows.pop(rid)
            else:
                rows[rid] = {"rid": fields["rid"], "name": fields["name"]}
    repl.close()
    expected = {
        rid: {"rid": str(rid), "name": row.values["name"]}
        for (collection, rid), row in spool.rows.items()
        if collection == "users"
    }
    assert rows == expected
    conn.autocommit = True
    cur.execute("SELECT count(*) FROM users")  # and now: everything
    assert cur.fetchone()[0] == len(expected)
    conn.close()


def test_use_snapshot_in_the_replication_session(spool, pgshim) -> None:
    spool.insert("users", name="kept")
    server = pgshim(spool.path)
    wait_for(lambda: server.psql("SELECT count(*) FROM users") == "1")
    conn = psycopg2.connect(server.dsn(replication="database"))
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("BEGIN READ ONLY ISOLATION LEVEL REPEATABLE READ")
    cur.execute("CREATE_REPLICATION_SLOT tmp TEMPORARY LOGICAL pgoutput (SNAPSHOT 'use')")
    spool.insert("users", name="later")
    wait_for(lambda: server.psql("SELECT count(*) FROM users") == "2")
    cur.execute("SELECT name FROM users")
    assert cur.fetchall() == [("kept",)]
    conn.close()


CONFIG = """
[users.root]
password = "r00t"
superuser = true

[users.alice]
password = "wonder"
replication = true

[users.bob]
password = "builder"
"""


def test_plain_role_is_refused_and_pruned_history_is_55000(spool, pgshim, tmp_path) -> None:
    spool.insert("users", name="ann")
    config = tmp_path / "roles.toml"
    config.write_text(CONFIG)
    server = pgshim(spool.path, "--config", str(config))
    bob = connect(server, user="bob", password="builder")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as refused:
        bob.cursor().execute("SELECT * FROM users")
    assert str(refused.value.pgerror).splitlines()[0] == (
        "ERROR:  permission denied for table users"
    )
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        bob.cursor().execute("SELECT count(*) FROM pg_class c JOIN public.users u ON true")
    cur = bob.cursor()
    cur.execute("SELECT relname FROM pg_class WHERE relname = 'users'")  # the catalog is not
    assert cur.fetchall() == [("users",)]
    alice = connect(server, user="alice", password="wonder")
    cur = alice.cursor()
    cur.execute("SELECT name FROM users")
    assert cur.fetchall() == [("ann",)]


def test_pruned_history_is_refused_like_copy(tmp_path, pgshim) -> None:
    from spoolkit import SpoolKit

    kit = SpoolKit(tmp_path / "data.rdb.logical.wal")
    kit.skip_lsn(5)  # the spool starts at LSN 6: RedDB pruned what came before
    kit.insert("users", name="late")
    kit.close()
    server = pgshim(kit.path)
    conn = connect(server)
    wait_for(lambda: server.psql("SELECT count(*) FROM pg_class WHERE relname = 'users'") == "1")
    with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState) as pruned:
        conn.cursor().execute("SELECT * FROM users")
    assert "pruned the spool before LSN 6" in str(pruned.value)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_big_collection_bounded_memory_and_other_sessions_go_on(spool, pgshim, capsys) -> None:
    rows = 200_000
    server = pgshim(spool.path)
    for i in range(rows):
        spool.insert("big", n=i, label=f"row {i} " + "x" * 40)
    wait_for(lambda: server.psql("SELECT count(*) FROM big") == str(rows), timeout=240, interval=1)
    pid = server.proc.pid
    before = _rss_kib(pid)
    peak = [before]
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:
        other = connect(server)
        cur = other.cursor()
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib(pid))
            started = time.monotonic()
            cur.execute("SELECT 1")
            cur.fetchall()
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
        other.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    conn = connect(server)
    cur = conn.cursor()  # the server streams it in batches of 1000
    started = time.monotonic()
    cur.execute("SELECT n, label FROM big")
    total = sum(1 for _ in cur)
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    conn.close()
    assert total == rows
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0
    with capsys.disabled():
        print(
            f"\nSELECT of {rows} rows: {elapsed:.1f} s; server RSS {before // 1024} MiB before, "
            f"peak {peak[0] // 1024} MiB; other session's SELECT 1: {len(latencies)} runs, "
            f"median {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
            f"max {latencies[-1] * 1000:.1f} ms"
        )
    assert peak[0] - before < 100 * 1024  # the server never holds the table
    assert latencies[len(latencies) // 2] < 0.1
    # statement_timeout bounds it
    cur = connect(server).cursor()
    cur.execute("SET statement_timeout = '50ms'")
    with pytest.raises(psycopg2.errors.QueryCanceled):
        cur.execute("SELECT count(*) FROM big")
