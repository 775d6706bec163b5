"""SQL cursors (DECLARE / FETCH / MOVE / CLOSE) against a real pgshim: their rules and errors
compared with a real PostgreSQL 15, and the clients that read through them: psycopg2's named
cursors, psycopg 3's ServerCursor, SQLAlchemy's stream_results and pandas' chunksize, psql's
FETCH_COUNT, pg_dump --inserts restored into PostgreSQL 15; statement_timeout per FETCH, BINARY
cursors, the protocol's Close of a cursor's portal, and the engine processes cursors hold."""

from __future__ import annotations

import subprocess
import time

import psycopg
import psycopg2
import pytest
from pgcluster import pg_bindir
from server_proc import PgshimServer

from pgshim.sql.cursors import MAX_CURSORS

pytestmark = pytest.mark.timeout(120)

ROWS = 2500  # more than a batch (1000) of the engine's and of the wire's


@pytest.fixture
def server(spool, pgshim):
    for n in range(ROWS):
        spool.insert("items", n=n, label=f"item {n}")
    spool.insert("orders", total=12, note="first")
    return pgshim(spool.path, "--server-version", "15")  # compared with pg_cluster, pg_dump 15


SERIES = "SELECT g FROM generate_series(1, 5) AS g"
# (PostgreSQL's cursors over a plan that scans backward are SCROLL unless said NO SCROLL;
# pgshim's never are)
# each statement on one autocommit connection, in order: what PostgreSQL 15 answers
SCRIPT = [
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH c",
    "MOVE c",
    "CLOSE c",
    "CLOSE ALL",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "DECLARE c CURSOR FOR SELECT 1",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH 2 c",
    "MOVE 1 IN c",
    "FETCH NEXT FROM c",
    "FETCH PRIOR c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c ASENSITIVE NO SCROLL CURSOR WITHOUT HOLD FOR {SERIES}",
    "FETCH RELATIVE 0 c",
    "MOVE 0 c",
    "FETCH ABSOLUTE 4 c",
    "MOVE 0 c",
    "FETCH 0 c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH ABSOLUTE 2 c",
    "FETCH ABSOLUTE 2 c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH RELATIVE 2 c",
    "FETCH LAST c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH FORWARD ALL FROM c",
    "FETCH c",
    "FETCH RELATIVE 2 c",
    "FETCH 0 c",
    "MOVE ALL IN c",
    "FETCH BACKWARD 1 c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "FETCH -1 c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE c NO SCROLL CURSOR FOR {SERIES}",
    "MOVE FORWARD 3 c",
    "FETCH ALL c",
    "CLOSE c",
    "CLOSE c",
    "ROLLBACK",
    "BEGIN",
    f"DECLARE held NO SCROLL CURSOR WITH HOLD FOR {SERIES}",
    f"DECLARE plain CURSOR FOR {SERIES}",
    "FETCH 1 held",
    "COMMIT",
    "FETCH plain",
    "FETCH 2 held",
    "BEGIN",
    "FETCH 1 held",
    f"DECLARE later CURSOR WITH HOLD FOR {SERIES}",
    "ROLLBACK",
    "FETCH later",
    "FETCH ALL held",
    "CLOSE held",
    "DECLARE h INSENSITIVE CURSOR WITH HOLD FOR SELECT relname FROM pg_class"
    " WHERE relname = 'pg_class'",
    "FETCH h",
    "CLOSE ALL",
    "FETCH h",
    "BEGIN",
    "DECLARE c CURSOR FOR SELECT x FROM nosuch",
    "ROLLBACK",
    "BEGIN",
    "DECLARE c CURSOR FOR SELECT 1",
    "FETCH nosuch",
    "ROLLBACK",
    "BEGIN",
    "DECLARE c CURSOR FOR SELECT 1",
    "FETCH c",
    "FETCH BACKWARD 1 c",
    "ROLLBACK",
    "DECLARE c CURSOR FOR SELECT nosuch FROM pg_class",
    "BEGIN",
    "DECLARE a CURSOR FOR SELECT 1",
    "SAVEPOINT s",
    "DECLARE b CURSOR FOR SELECT 2",
    "SAVEPOINT t",
    "DECLARE d CURSOR FOR SELECT 3",
    "RELEASE t",
    "ROLLBACK TO s",
    "FETCH b",
    "ROLLBACK TO s",
    "FETCH d",
    "ROLLBACK TO s",
    "FETCH a",
    "COMMIT",
]


def _run_script(dsn: str) -> list[object]:
    answers: list[object] = []
    with psycopg2.connect(dsn) as conn:
        conn.autocommit = True
        cur = conn.cursor()
        for statement in SCRIPT:
            try:
                cur.execute(statement)
            except psycopg2.Error as error:
                diag = error.diag
                answers.append((statement, error.pgcode, diag.message_primary, diag.message_hint))
                continue
            rows = cur.fetchall() if cur.description else None
            answers.append((statement, cur.statusmessage, rows))
    return answers


def test_cursor_statements_answer_like_postgresql(server, pg_cluster) -> None:
    ours = _run_script(server.dsn())
    theirs = _run_script(pg_cluster.dsn())
    for mine, real in zip(ours, theirs, strict=True):
        assert mine == real


def test_scroll_cursors_are_refused_and_cursors_are_bounded(server) -> None:
    with psycopg2.connect(server.dsn()) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("DECLARE s SCROLL CURSOR FOR SELECT 1")
        assert caught.value.pgcode == "0A000"
        conn.rollback()
        for n in range(MAX_CURSORS):
            cur.execute(f"DECLARE c{n} CURSOR FOR SELECT n FROM items")
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("DECLARE one_more CURSOR FOR SELECT 1")
        assert caught.value.pgcode == "54000"
        assert caught.value.diag.message_primary == "too many open cursors"
        conn.rollback()
        cur.execute("DECLARE again CURSOR FOR SELECT n FROM items ORDER BY n")  # closed: room
        cur.execute("FETCH 2 again")
        assert cur.fetchall() == [(0,), (1,)]


@pytest.mark.parametrize("withhold", [False, True])
def test_psycopg2_named_cursor(server, withhold: bool) -> None:
    """psycopg2's named cursors read a catalog view and a collection as a plain query does,
    itersize rows at a time."""
    catalog = "SELECT oid, relname FROM pg_class ORDER BY oid"
    collection = "SELECT n, label FROM items ORDER BY n"
    with psycopg2.connect(server.dsn()) as conn:
        plain = conn.cursor()
        for query in (catalog, collection):
            plain.execute(query)
            expected = plain.fetchall()
            conn.commit()
            with conn.cursor(name="c", withhold=withhold) as named:
                named.itersize = 300
                named.execute(query)
                assert list(named) == expected
            conn.commit()
        with conn.cursor(name="w", withhold=withhold) as named:
            named.execute(collection)
            first = named.fetchmany(10)
            if withhold:
                conn.commit()  # the cursor outlives the transaction
                assert named.fetchmany(5) == [(n, f"item {n}") for n in range(10, 15)]
            assert first == [(n, f"item {n}") for n in range(10)]
        conn.commit()


def test_psycopg3_server_cursor(server) -> None:
    with psycopg.connect(server.dsn()) as conn:
        with conn.cursor(name="sc") as cur:
            cur.itersize = 400
            cur.execute("SELECT n, label FROM items WHERE n >= %s ORDER BY n", [100])
            assert cur.fetchone() == (100, "item 100")
            assert cur.fetchmany(3) == [(101, "item 101"), (102, "item 102"), (103, "item 103")]
            rest = cur.fetchall()
        assert [n for n, _ in rest] == list(range(104, ROWS))
        with conn.cursor(name="cat") as cur:
            cur.execute("SELECT nspname FROM pg_namespace ORDER BY nspname")
            names = [row[0] for row in cur]
        assert names == [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace ORDER BY 1")]


def test_sqlalchemy_stream_results_and_pandas_chunks(server) -> None:
    pd = pytest.importorskip("pandas")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg2://postgres@127.0.0.1:{server.port}/reddb"
    )
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, max_row_buffer=200).execute(
                sqlalchemy.text("SELECT n FROM items ORDER BY n")
            )
            assert [row.n for row in result] == list(range(ROWS))
        with engine.connect() as conn:
            chunks = list(
                pd.read_sql(
                    sqlalchemy.text("SELECT n, label FROM items ORDER BY n"),
                    conn.execution_options(stream_results=True),
                    chunksize=1000,
                )
            )
        assert [len(chunk) for chunk in chunks] == [1000, 1000, ROWS - 2000]
        assert list(pd.concat(chunks)["n"]) == list(range(ROWS))
    finally:
        engine.dispose()


@pytest.mark.parametrize("options", [["--inserts"], ["--data-only", "--inserts"]])
def test_pg_dump_inserts_restore_into_postgresql(server, pg_cluster, options) -> None:
    """pg_dump --inserts reads each collection through a cursor (DECLARE, FETCH 100); restored
    into PostgreSQL 15, the rows are pgshim's."""
    from test_tools_pgcli_pandas_dump import _twin, restore_and_compare

    pg_dump = str(pg_bindir() / "pg_dump")
    ours = subprocess.run(
        [pg_dump, *options, "-d", "reddb"], env=server.env_for_clients(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    assert "INSERT INTO public.items" in ours.stdout
    if "--data-only" in options:
        db = _twin(server, pg_cluster, {"items", "orders"})
    else:
        db = "inserts_restored"
        pg_cluster.psql(f"DROP DATABASE IF EXISTS {db}")
        pg_cluster.psql(f"CREATE DATABASE {db}")
    restore_and_compare(ours.stdout, server, pg_cluster, db, ["items", "orders"])


def test_statement_timeout_counts_each_fetch(server) -> None:
    """Each FETCH has statement_timeout for its own work, counted from its start (not from
    DECLARE's), under the setting in force when it runs."""
    with psycopg2.connect(server.dsn()) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = '2s'")
        cur.execute("DECLARE quick CURSOR FOR SELECT n FROM items ORDER BY n")
        cur.execute(
            "DECLARE slow CURSOR FOR SELECT a.n FROM items a, items b, items c"
            " WHERE md5(a.label || b.label || c.label) <> 'x'"
        )  # billions of rows, read only as far as FETCH and MOVE ask
        time.sleep(2.5)
        cur.execute("FETCH 2 quick")
        assert cur.fetchall() == [(0,), (1,)]
        cur.execute("FETCH 3 slow")
        assert len(cur.fetchall()) == 3
        cur.execute("SET statement_timeout = '1s'")
        started = time.monotonic()
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("MOVE ALL IN slow")
        assert caught.value.pgcode == "57014"
        assert 0.9 < time.monotonic() - started < 5  # (a loaded machine answers late)
        conn.rollback()
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("FETCH quick")  # the transaction's end closed it
        assert caught.value.pgcode == "34000"


def test_psql_fetch_count(server) -> None:
    """psql with FETCH_COUNT reads a query through a cursor (BEGIN; DECLARE _psql_cursor NO
    SCROLL CURSOR; FETCH FORWARD n), printing what it prints without it."""
    env = server.env_for_clients()
    query = "SELECT n, label FROM items ORDER BY n;\n"
    plain, fetched = (
        subprocess.run(
            ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *options],
            input=query,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        for options in ([], ["-v", "FETCH_COUNT=300"])
    )
    assert plain.returncode == 0 and fetched.returncode == 0, (plain.stderr, fetched.stderr)
    assert fetched.stdout == plain.stdout
    assert len(fetched.stdout.splitlines()) == ROWS


def _binary_fetch(dsn: str) -> list[object]:
    """A BINARY cursor's FETCH over the simple protocol, as libpq receives it."""
    with psycopg.connect(dsn) as conn:
        pgconn = conn.pgconn
        answers: list[object] = []
        for statement in (
            b"BEGIN",
            b"DECLARE b BINARY CURSOR FOR SELECT 1::int4 AS i, 'x'::text AS t",
            b"FETCH b",
            b"ROLLBACK",
        ):
            result = pgconn.exec_(statement)
            answers.append((result.command_status, result.ntuples))
            if result.ntuples:
                answers += [(result.fformat(i), result.get_value(0, i)) for i in range(2)]
        return answers


def test_binary_cursor_sends_binary_rows(server, pg_cluster) -> None:
    ours = _binary_fetch(server.dsn())
    assert (1, b"\x00\x00\x00\x01") in ours
    assert ours == _binary_fetch(pg_cluster.dsn())


def test_close_message_closes_a_cursor(server, pg_cluster) -> None:
    """The extended protocol's Close of a portal closes the SQL cursor of that name."""
    answers = []
    for dsn in (server.dsn(), pg_cluster.dsn()):
        with psycopg.connect(dsn) as conn:
            conn.execute("DECLARE kept CURSOR WITH HOLD FOR SELECT 1")
            conn.pgconn.close_portal(b"kept")
            conn.pgconn.close_portal(b"never_declared")  # no error, as for any portal
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("FETCH kept")
            answers.append((caught.value.sqlstate, caught.value.diag.message_primary))
    assert answers[0] == answers[1] == ("34000", 'cursor "kept" does not exist')


def test_cursors_give_their_engine_processes_back(spool, tmp_path) -> None:
    """An open cursor holds its engine process (with two, two cursors leave none for another
    query); the connection's end gives them back."""
    for n in range(10):
        spool.insert("items", n=n, label=f"item {n}")
    env = {"PGSHIM_MAX_CONNECTIONS": "2", "PGSHIM_QUERY_WORKERS": "2"}
    server = PgshimServer(spool.path, tmp_path / "state", env=env).start()
    try:
        conn = psycopg2.connect(server.dsn())
        cur = conn.cursor()
        cur.execute("SET statement_timeout = '2s'")
        cur.execute("DECLARE a CURSOR WITH HOLD FOR SELECT n FROM items")
        cur.execute("DECLARE b CURSOR WITH HOLD FOR SELECT n FROM items")
        conn.commit()
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute("SELECT count(*) FROM items")
        assert caught.value.pgcode == "57014"
        conn.rollback()
        conn.close()
        with psycopg2.connect(server.dsn()) as again, again.cursor() as cur:
            cur.execute("SET statement_timeout = '20s'")
            cur.execute("SELECT count(*) FROM items")
            assert cur.fetchone() == (10,)
    finally:
        server.stop()
