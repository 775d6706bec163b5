"""Tools beyond psql's backslash commands against a real pgshim: psql -l and PostgreSQL's own
databases, PostgreSQL 15's and 18's settings (SET as pg_dump and drivers send it, 22023 as
PostgreSQL words it), pg_dump and pg_dumpall --schema-only compared with a real PostgreSQL of the
version presented, pgcli's completion refresh, pandas over SQLAlchemy (psycopg2 and psycopg 3)
and psycopg 3's type lookups."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import uuid
from decimal import Decimal

import psycopg
import psycopg2
import pytest
from pgcluster import PgCluster, pg18_bindir, pg_bindir, release_bindir
from test_psql_meta import create_like

pytestmark = pytest.mark.timeout(120)

# pgshim presenting 15, for what is compared with pg_cluster (15) and run by pg_dump 15
PG15 = ("--server-version", "15")
# what pg_dump 15 and the drivers set before their first query
PG_DUMP_SETTINGS = [
    "SET DATESTYLE = ISO",
    "SET INTERVALSTYLE = POSTGRES",
    "SET extra_float_digits TO 3",
    "SET synchronize_seqscans TO off",
    "SET statement_timeout = 0",
    "SET lock_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
    "SET row_security = off",
    "SET client_encoding TO 'UTF8'",
    "SET standard_conforming_strings = on",
    "SET check_function_bodies = false",
    "SET xmloption = content",
    "SET client_min_messages = warning",
    "SET search_path = public, pg_catalog",
    "SET default_transaction_read_only = on",
    "SET default_table_access_method = heap",
    "SET default_tablespace = ''",
    "SET TIME ZONE 'UTC'",
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
]
BAD_VALUES = [
    "SET synchronize_seqscans = maybe",
    "SET statement_timeout = 'soon'",
    "SET statement_timeout = '5 parsecs'",
    "SET statement_timeout = -1",
    "SET extra_float_digits = 9",
    "SET xmloption = bad",
    "SET client_min_messages = loud",
    "SET row_security = 2",
    "SET TIME ZONE 'Nowhere/Else'",
    "SET work_mem = '1 parsec'",
]
SHOWN = [
    ("statement_timeout", "'1.5s'"),
    ("statement_timeout", "90000"),
    ("lock_timeout", "'1d'"),
    ("work_mem", "'2GB'"),
    ("synchronize_seqscans", "'of'"),
    ("client_min_messages", "WARNING"),
    ("search_path", "a, 'b c'"),
    ("DateStyle", "german"),
    ("TimeZone", "'europe/paris'"),
    ("log_min_messages", "debug"),
]


@pytest.fixture
def server(spool, pgshim):
    spool.insert("users", name="ada", age=36, active=True, score=1.5)
    spool.insert("orders", total=12, note="first")
    return pgshim(spool.path, *PG15)  # compared with pg_cluster and pg_dump 15


def _psql(server, *args: str, sql: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", *args], input=sql, env=server.env_for_clients(),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def _error(dsn: str, statement: str) -> tuple[str, str, str | None]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as caught:
            cur.execute(statement)
        diag = caught.value.diag
        return caught.value.pgcode, diag.message_primary, diag.message_hint


# --- databases ------------------------------------------------------------------------------


def test_psql_list_and_postgres_databases(server) -> None:
    listed = _psql(server, "-l")
    assert listed.returncode == 0, listed.stderr
    names = [line.split("|")[0].strip() for line in listed.stdout.splitlines() if "|" in line]
    assert {"reddb", "postgres", "template0", "template1"} <= set(names)
    for db in ("postgres", "template1"):
        out = _psql(server, "-d", db, "-At", "-c", "SELECT 1, current_database()")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"1|{db}"
    with psycopg.connect(server.dsn(dbname="postgres")) as conn:
        slots = conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()
        assert slots == (0,)  # the same status catalog
    refused = _psql(server, "-d", "template0", "-c", "SELECT 1")
    assert "is not currently accepting connections" in refused.stderr
    missing = _psql(server, "-d", "nope", "-c", "SELECT 1")
    assert 'database "nope" does not exist' in missing.stderr


def test_replication_connections_keep_the_configured_database(server) -> None:
    with pytest.raises(psycopg2.OperationalError, match='database "postgres" does not exist'):
        psycopg2.connect(server.dsn(dbname="postgres", replication="database"))


# --- settings --------------------------------------------------------------------------------


def test_pg_dump_settings_are_accepted(server) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for statement in PG_DUMP_SETTINGS:
            conn.execute(statement)
        assert conn.execute("SHOW synchronize_seqscans").fetchone() == ("off",)
        assert conn.execute("SHOW xmloption").fetchone() == ("content",)
        assert conn.execute("SHOW default_transaction_isolation").fetchone() == ("repeatable read",)
        conn.execute("BEGIN")
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE")
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("serializable",)
        conn.execute("LOCK TABLE public.users IN ACCESS SHARE MODE")
        conn.execute("COMMIT")
        rows = conn.execute(
            "SELECT name, setting, vartype, context FROM pg_settings "
            "WHERE name IN ('synchronize_seqscans', 'check_function_bodies', 'xmloption') "
            "ORDER BY name"
        ).fetchall()
        assert rows == [
            ("check_function_bodies", "off", "bool", "user"),
            ("synchronize_seqscans", "off", "bool", "user"),
            ("xmloption", "content", "enum", "user"),
        ]


@pytest.fixture(scope="module")
def release_clusters(tmp_path_factory: pytest.TempPathFactory):
    """Real PostgreSQL 16, 17 and 18 servers shared by this module's tests, each started when
    first asked for."""
    started: dict[int, PgCluster] = {}

    def cluster(major: int) -> PgCluster:
        if major not in started:
            bindir = release_bindir(major)
            if bindir is None:
                pytest.skip(
                    f"no PostgreSQL {major}: not installed, nor fetched (no network, no cache)"
                )
            base = tmp_path_factory.mktemp(f"pg{major}")
            started[major] = PgCluster(base, {"wal_level": "logical"}, bindir=bindir).start()
        return started[major]

    yield cluster
    for pg in started.values():
        pg.stop()


@pytest.fixture(scope="module")
def pg18_cluster(release_clusters):
    """A real PostgreSQL 18 server shared by this module's tests."""
    return release_clusters(18)


# pg_settings' columns compared; boot values that depend on how PostgreSQL was built are not
SETTINGS_QUERY = (
    "SELECT name, vartype, unit, context, category, short_desc, min_val, max_val, enumvals,"
    " CASE WHEN name IN ('krb_server_keyfile', 'unix_socket_directories') THEN NULL"
    " ELSE boot_val END FROM pg_settings"
    " WHERE name NOT IN ('server_version', 'server_version_num') ORDER BY name"
)


@pytest.mark.parametrize("version", ["15", "16", "17", "18"])
def test_settings_match_postgresql(spool, pgshim, request, version: str) -> None:
    """Bad values fail as in PostgreSQL of the version presented (22023, same message and hint),
    good ones show alike, and pg_settings and SHOW ALL know every parameter that version has, with
    its type, unit, context, category, description, limits, choices and built-in value."""
    # the default (18) is served without --server-version
    server = pgshim(spool.path, *(("--server-version", version) if version != "18" else ()))
    if version == "15":
        pg_cluster = request.getfixturevalue("pg_cluster")
    else:
        pg_cluster = request.getfixturevalue("release_clusters")(int(version))
    for statement in BAD_VALUES:
        theirs = _error(pg_cluster.dsn(), statement)
        assert _error(server.dsn(), statement) == theirs, statement
        assert theirs[0] == "22023"
    for name, value in SHOWN:
        shown = []
        for dsn in (server.dsn(), pg_cluster.dsn()):
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(f"SET {name} = {value}")
                cur.execute(f"SHOW {name}")
                shown.append(cur.fetchone())
        assert shown[0] == shown[1], name
    for statement in ("SET wal_level = minimal", "SET server_version = '1'"):
        assert _error(server.dsn(), statement) == _error(pg_cluster.dsn(), statement)
    with psycopg.connect(server.dsn()) as ours, psycopg.connect(pg_cluster.dsn()) as theirs:
        assert ours.execute(SETTINGS_QUERY).fetchall() == theirs.execute(SETTINGS_QUERY).fetchall()
        shown = [{row[0] for row in conn.execute("SHOW ALL")} for conn in (ours, theirs)]
        assert shown[0] == shown[1]


# --- pg_dump ---------------------------------------------------------------------------------


def _create_tables(dump: str) -> dict[str, str]:
    """CREATE TABLE statements by table name (as pg_dump quotes it)."""
    tables = {}
    for match in re.finditer(r"CREATE TABLE public\.(\S+) \((.*?)\n\);", dump, re.S):
        tables[match.group(1)] = match.group(2)
    return tables


def _comparable(dump: str) -> str:
    """A dump without what differs between two servers holding the same tables: the random key
    of \\restrict, the server's version, and the public schema's owner (pgshim's belongs to
    the bootstrap role, PostgreSQL 15's to pg_database_owner, which pg_dump leaves out)."""
    dump = re.sub(r"^\\(un)?restrict \S+$", r"\\\1restrict KEY", dump, flags=re.M)
    dump = re.sub(r"^-- Dumped from database version .*$", "-- Dumped from", dump, flags=re.M)
    return re.sub(
        r"--\n-- Name: public; Type: SCHEMA; [^\n]*\n--\n\n-- \*not\* creating schema[^\n]*\n\n\n"
        r"ALTER SCHEMA public OWNER TO postgres;\n\n",
        "", dump,
    )  # fmt: skip


DUMPED = {"users", "orders", "user"}  # _dump_spool's collections


def _dump_spool(spool) -> None:
    """Collections of every kind of column, one named by a keyword."""
    spool.insert("users", name="ada", age=36, active=True, score=1.5)
    spool.insert("orders", total=12, note="first")
    spool.insert("user", born=dt.date(2000, 1, 1), data={"a": 1}, uid=uuid.uuid4(),
                 amount=Decimal("1.5"), at=dt.datetime.now(dt.UTC), blob=b"x")  # fmt: skip


@pytest.fixture
def dump_server(spool, pgshim):
    _dump_spool(spool)
    return pgshim(spool.path, *PG15)


def _twin(server, pg_cluster, tables: set[str] = DUMPED, db: str = "dump_twin") -> str:
    """A database of the real cluster with tables like pgshim's collections: the columns pgshim
    shows, in its order and with its types, and rid the primary key."""
    with psycopg.connect(server.dsn()) as conn:
        columns = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
            " AND a.attnum > 0 ORDER BY c.relname, a.attnum"
        ).fetchall()
    assert {table for table, *_ in columns} == tables
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {db}")
    pg_cluster.psql(f"CREATE DATABASE {db}")
    defs_of: dict[str, list[str]] = {}
    for table, name, type_, notnull in columns:
        defs_of.setdefault(table, []).append(f'"{name}" {type_}{" NOT NULL" if notnull else ""}')
    pg_cluster.psql(
        "\n".join(
            f'CREATE TABLE public."{table}" ({", ".join(defs)}, PRIMARY KEY (rid));'
            for table, defs in defs_of.items()
        ),
        dbname=db,
    )
    return db


def _dump_tool(version: str, tool: str) -> str:
    bindir = pg_bindir() if version == "15" else pg18_bindir()
    if bindir is None:
        pytest.skip(f"no {tool} {version}: not installed, nor fetched (no network, no cache)")
    return str(bindir / tool)


@pytest.mark.parametrize(
    ("version", "served", "options"),
    [("15", "15", []), ("18", "15", []), ("18", "18", []), ("15", "15", ["--table", "users"]),
     ("18", "15", ["--table", "users"]), ("18", "18", ["--table", "users"])],
)  # fmt: skip
def test_pg_dump_schema_only(
    spool, pgshim, request, version: str, served: str, options: list[str]
) -> None:
    """pg_dump 15 and 18 dump pgshim's collections (pgshim presenting 15: pg_dump 18 sends
    PostgreSQL 15's catalog queries; presenting 18: 18's) as they dump the same tables of a real
    PostgreSQL of the version presented."""
    pg_dump = [_dump_tool(version, "pg_dump"), "--schema-only", *options]
    _dump_spool(spool)
    server = pgshim(spool.path, "--server-version", served)
    pg_cluster = request.getfixturevalue("pg_cluster" if served == "15" else "pg18_cluster")
    ours = subprocess.run(
        [*pg_dump, "-d", "reddb"], env=server.env_for_clients(), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    db = _twin(server, pg_cluster)
    theirs = subprocess.run(
        [*pg_dump, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", pg_cluster.superuser,
         "-d", db], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    tables = {"users"} if options else {"users", "orders", '"user"'}
    assert set(_create_tables(ours.stdout)) == tables
    assert _create_tables(ours.stdout) == _create_tables(theirs.stdout)
    for table in tables:
        key = table.strip('"') + "_pkey"
        assert f"ALTER TABLE ONLY public.{table}\n    ADD CONSTRAINT {key} PRIMARY KEY (rid);" in (
            ours.stdout
        )
    assert _comparable(ours.stdout) == _comparable(theirs.stdout)


def test_pg_dumpall_18_schema_only(spool, pgshim, pg18_cluster) -> None:
    """pg_dumpall 18 --schema-only of pgshim presenting 18: the roles, and the configured
    database's part as pg_dump 18 --create dumps a real PostgreSQL 18 database of that name
    holding the same tables."""
    _dump_spool(spool)
    server = pgshim(spool.path, "--server-version", "18")
    ours = subprocess.run(
        [_dump_tool("18", "pg_dumpall"), "--schema-only"], env=server.env_for_clients(),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    assert "CREATE ROLE postgres;" in ours.stdout
    part = ours.stdout.split('-- Database "reddb" dump\n--\n\n')[1]
    part = part.split("--\n-- PostgreSQL database cluster dump complete")[0]
    db = _twin(server, pg18_cluster, db="reddb")
    theirs = subprocess.run(
        [_dump_tool("18", "pg_dump"), "--schema-only", "--create", "-h", "127.0.0.1", "-p",
         str(pg18_cluster.port), "-U", pg18_cluster.superuser, "-d", db],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert _comparable(part) == _comparable(theirs.stdout)


def test_pg_dump_restores_into_postgresql(dump_server, pg_cluster) -> None:
    """A whole dump by pg_dump 15 (the collections' rows too) restored by psql into PostgreSQL
    15 holds what pgshim answers to SELECT."""
    ours = subprocess.run(
        [str(pg_bindir() / "pg_dump"), "-d", "reddb"], env=dump_server.env_for_clients(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    db = "dump_restored"
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {db}")
    pg_cluster.psql(f"CREATE DATABASE {db}")
    restore_and_compare(ours.stdout, dump_server, pg_cluster, db, ["users", "orders", "user"])


def restore_and_compare(
    dump: str, server, pg_cluster: PgCluster, db: str, tables: list[str]
) -> None:
    """psql restores ``dump`` into ``db``, whose tables then hold what pgshim answers."""
    restored = subprocess.run(
        [str(pg_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
         str(pg_cluster.port), "-U", pg_cluster.superuser, "-d", db],
        input=dump, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(server.dsn()) as mine, psycopg.connect(pg_cluster.dsn(db)) as pg:
        for table in tables:
            query = f'SELECT * FROM public."{table}" ORDER BY rid'
            rows = mine.execute(query).fetchall()
            assert rows and pg.execute(query).fetchall() == rows, table


# what pg_dump reads besides the catalogs' rows, and its edges
PG_DUMP_READS = [
    'SELECT k, acldefault(k::"char", 10) FROM'
    " unnest(ARRAY['c','r','s','d','f','l','L','n','t','F','S','T','p']) AS k",
    "SELECT acldefault('r', 0), acldefault('n', NULL)",
    "SELECT n, quote_ident(n) FROM unnest(ARRAY['users', 'Users', 'order', 'a b', 'x\"y', '_x1',"
    " '1x', 'user', 'name', 'between', 'é', '']) AS n",
    "SELECT x, quote_literal(x) FROM unnest(ARRAY['it''s', E'back\\\\slash', NULL, '']) AS x",
    "SELECT array_remove(ARRAY['a','b','a'], 'a'), array_remove(NULL::text[], 'a')",
    "SELECT '{16385,16392}'::pg_catalog.oid[], '{}'::pg_catalog.int4[],"
    " '{{1,2},{3,4}}'::pg_catalog.int8[], '{a,\"b c\",NULL}'::pg_catalog.text[]",
    "SELECT '{1,x}'::pg_catalog.int4[]",
    "SELECT '{1'::pg_catalog.int4[]",
    "SELECT 'public'::regnamespace, 'pg_catalog'::regnamespace::oid",
    "SELECT 'nope'::regnamespace",
    "SELECT option_name, option_value FROM pg_options_to_table(ARRAY['a=1','b=x=y','c'])",
    "SELECT DISTINCT tableoid FROM pg_class",
    "SELECT c.tableoid, n.tableoid, c.tableoid::regclass FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace LIMIT 1",
    "SELECT (SELECT x.tableoid FROM pg_am y LIMIT 1) FROM pg_type x LIMIT 1",
    "SELECT tableoid FROM pg_class, pg_namespace LIMIT 1",
    "WITH t AS (SELECT 7 AS tableoid) SELECT tableoid FROM t",
    "SELECT tableoid FROM (SELECT 8 AS tableoid FROM pg_am) AS s LIMIT 1",
    "SELECT pg_tablespace_location(1663), pg_tablespace_location(NULL)",
    "SELECT amhandler::regproc FROM pg_am WHERE amname = 'heap'",
    "SELECT pg_get_triggerdef(0), pg_get_triggerdef(0, true)",
    "SELECT obj_description(2200, 'pg_namespace'), obj_description(11, 'pg_namespace')",
]


def _rows_or_error(dsn: str, query: str) -> object:
    with psycopg.connect(dsn) as conn:
        try:
            return conn.execute(query).fetchall()
        except psycopg.Error as error:
            return error.sqlstate, error.diag.message_primary


def test_what_pg_dump_reads_answers_like_postgresql(server, pg_cluster) -> None:
    for query in PG_DUMP_READS:
        ours, theirs = (_rows_or_error(dsn, query) for dsn in (server.dsn(), pg_cluster.dsn()))
        assert ours == theirs, query


def test_pg_dump_18_of_pgshim_serving_18(spool, pgshim, tmp_path) -> None:
    """pgshim presenting PostgreSQL 18: pg_dump 18 and pg_dumpall 18 send it PostgreSQL 18's
    catalog queries, and dump what they dump of a PostgreSQL 18 cluster with the same tables."""
    bindir = pg18_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL 18: not installed, nor fetched (no network, no cache)")
    spool.insert("users", name="ada", age=36, active=True, score=1.5)
    spool.insert("user", born=dt.date(2000, 1, 1), data={"a": 1}, amount=Decimal("1.5"))
    server = pgshim(spool.path, "--server-version", "18")
    with PgCluster(tmp_path / "pg18", bindir=bindir) as pg18:
        db = _twin(server, pg18, {"users", "user"})
        for tool, options in (("pg_dump", ["--schema-only"]), ("pg_dumpall", ["--globals-only"])):
            ours = subprocess.run(
                [str(bindir / tool), *options, *(["-d", "reddb"] if tool == "pg_dump" else [])],
                env=server.env_for_clients(), capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert ours.returncode == 0, ours.stderr
            theirs = subprocess.run(
                [str(bindir / tool), *options, "-h", "127.0.0.1", "-p", str(pg18.port), "-U",
                 pg18.superuser, *(["-d", db] if tool == "pg_dump" else [])],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert theirs.returncode == 0, theirs.stderr
            if tool == "pg_dump":
                assert "-- Dumped from database version 18." in ours.stdout
            assert _comparable(ours.stdout) == _comparable(theirs.stdout), tool


@pytest.mark.parametrize("version", ["15", "18"])
@pytest.mark.parametrize("mode", ["--globals-only", "--roles-only"])
def test_pg_dumpall_globals(server, pg_cluster, version: str, mode: str) -> None:
    """pg_dumpall's roles (without passwords: pgshim shows none) and tablespaces, as of a
    PostgreSQL 15 cluster whose only role is postgres."""
    bindir = pg_bindir() if version == "15" else pg18_bindir()
    if bindir is None:
        pytest.skip(f"no pg_dumpall {version}: not installed, nor fetched (no network, no cache)")
    pg_dumpall = [str(bindir / "pg_dumpall"), mode]
    ours = subprocess.run(
        pg_dumpall, env=server.env_for_clients(), capture_output=True, text=True, timeout=60
    )
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(
        [*pg_dumpall, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", pg_cluster.superuser],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert "CREATE ROLE postgres;\nALTER ROLE postgres WITH SUPERUSER" in ours.stdout
    assert _comparable(ours.stdout) == _comparable(theirs.stdout)


# --- pgcli ------------------------------------------------------------------------------------


PGCLI_COMMANDS = [r"\dt", r"\di", r"\d users", r"\d+ orders", r"\dv pg_replication_slots",
                  r"\df pg_get_userbyid", r"\dT"]  # fmt: skip


def _pgcli_session(port: int, database: str):
    """pgcli's completer after every refresher pgcli has ran (each raises on a failed query),
    the search path it found and what its backslash commands answer."""
    from pgcli.completion_refresher import CompletionRefresher
    from pgcli.pgcompleter import PGCompleter
    from pgcli.pgexecute import PGExecute
    from pgspecial.main import PGSpecial

    executor = PGExecute(
        database=database, user="postgres", password=None, host="127.0.0.1", port=port, dsn=None
    )
    completer = PGCompleter(smart_completion=True, pgspecial=PGSpecial(), settings={})
    try:
        for name, refresh in CompletionRefresher.refreshers.items():
            refresh(completer, executor)
            assert executor.conn.info.transaction_status == 0, name  # idle, not failed
        special = PGSpecial()
        answers = {
            command: [(rows and list(rows), headers, status)
                      for _, rows, headers, status, *_ in executor.run(command, special)]
            for command in PGCLI_COMMANDS
        }  # fmt: skip
        return completer, executor.search_path(), answers
    finally:
        executor.conn.close()


def test_pgcli_completion_refresh(server, pg_cluster, caplog) -> None:
    """pgcli knows pgshim's collections, their columns, databases, functions, types and schemas
    as it knows the same tables in PostgreSQL 15."""
    pytest.importorskip("pgcli")
    create_like(server.psql, pg_cluster, "pgcli_twin")
    with caplog.at_level("ERROR"):
        ours, our_path, our_answers = _pgcli_session(server.port, "reddb")
        theirs, their_path, their_answers = _pgcli_session(pg_cluster.port, "pgcli_twin")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    mine, real = ours.dbmetadata, theirs.dbmetadata
    assert mine["tables"]["public"] == real["tables"]["public"]  # columns, types, in order
    assert "rid" in mine["tables"]["public"]["users"]
    slots = "pg_replication_slots"
    assert mine["views"]["pg_catalog"][slots] == real["views"]["pg_catalog"][slots]
    for name in ("format_type", "pg_get_userbyid", "current_schemas", "array_upper"):
        key = ours.escape_name(name)  # quoted where pgcli takes the name for a keyword
        assert mine["functions"]["pg_catalog"][key] == real["functions"]["pg_catalog"][key]
    assert mine["datatypes"]["public"] == real["datatypes"]["public"]
    assert set(mine["tables"]) <= set(real["tables"])  # the schemas
    assert {"reddb", "postgres", "template1"} <= set(ours.databases)
    assert our_path == their_path == ours.search_path == ["pg_catalog", "public"]
    for command in PGCLI_COMMANDS:
        assert our_answers[command] == their_answers[command], command


# --- catalog queries compared with PostgreSQL 15 ---------------------------------------------

CATALOG_QUERIES = [
    "SELECT * FROM unnest(current_schemas(true))",
    "SELECT * FROM current_schemas(true)",
    "SELECT * FROM pg_catalog.current_schemas(false) AS s",
    "SELECT u FROM unnest(current_schemas(true)) AS u",
    "SELECT proname, proargtypes::regtype[], prorettype::regtype, prorettype::regtype::text,"
    " COALESCE(proallargtypes::regtype[], proargtypes::regtype[])::text[] FROM pg_proc"
    " WHERE proname IN ('format_type', 'pg_get_userbyid', 'current_schemas', 'array_upper')"
    " AND prorettype::regtype != 'trigger'::regtype ORDER BY 1",
    "SELECT 'int4'::regtype, 'text'::regtype::oid, '1'::int4::text,"
    " (SELECT count(*) FROM pg_namespace WHERE nspname = 'public')",
    "SELECT oid, typname, typlen, typbyval, typtype, typcategory, typelem, typarray, typalign"
    " FROM pg_type WHERE typname IN ('record', '_record', 'anyarray', 'trigger', 'void')"
    " ORDER BY oid",
    "SELECT relname FROM pg_class c WHERE c.relkind = ANY('{v,m}')"
    " AND relname IN ('pg_replication_slots', 'pg_settings') ORDER BY 1",
    "SELECT 'x' = ANY('{x,y}'), 2 <> ALL('{1,3}'), '{1,2}'::int2[], '{}'::text[]",
    "SELECT proname FROM pg_proc p WHERE p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype"
    " AND proname = 'pg_get_userbyid'",
    "SELECT rngtypid, rngsubtype, rngmultitypid, rngcollation, rngsubopc FROM pg_range WHERE false",
    # sum of int2/int4 is int8, of int8 numeric
    "SELECT sum(1), sum(2::int2), sum(3::int8), sum(1 + 2), sum(relnatts),"
    " sum(relnatts::int4 * 2) FROM pg_class WHERE relname = 'pg_namespace'",
    # nested SELECTs' unnamed columns are referred to by PostgreSQL's names for them
    "SELECT c.count, c.max, c.coalesce, c.upper FROM (SELECT count(*), max(nspname),"
    " coalesce(1, 2), upper('a') FROM pg_namespace WHERE nspname = 'public') c",
    "WITH t AS (SELECT count(*), min(oid) FROM pg_namespace WHERE nspname = 'public')"
    " SELECT count, min FROM t",
    "SELECT nspname FROM pg_namespace WHERE nspname = 'public' AND (SELECT count FROM"
    " (SELECT count(*) FROM pg_namespace WHERE nspname = 'public') s) = 1",
]
SEARCH_PATHS = [None, "public, pg_catalog, public, nope", "''", '"$user", public']


def _answer(conn: psycopg.Connection, query: str, params=None) -> tuple:
    cur = conn.execute(query, params)
    assert cur.description is not None
    return [(c.name, c.type_code) for c in cur.description], cur.fetchall()


@pytest.mark.parametrize("query", CATALOG_QUERIES)
def test_catalog_queries_answer_like_postgresql(server, pg_cluster, query: str) -> None:
    with psycopg.connect(server.dsn()) as ours, psycopg.connect(pg_cluster.dsn()) as theirs:
        assert _answer(ours, query) == _answer(theirs, query)


def test_current_schemas_follow_the_search_path(server, pg_cluster) -> None:
    query = "SELECT current_schemas(true), current_schemas(false), current_schema()"
    with psycopg.connect(server.dsn()) as ours, psycopg.connect(pg_cluster.dsn()) as theirs:
        for path in SEARCH_PATHS:
            for conn in (ours, theirs):
                if path is not None:
                    conn.execute(f"SET search_path = {path}")
            assert _answer(ours, query) == _answer(theirs, query), path


@pytest.mark.parametrize(("quantified", "kinds"), [("= ANY", ["v", "m"]), ("<> ALL", ["r", "m"])])
def test_any_takes_an_untyped_array_parameter(server, pg_cluster, quantified, kinds) -> None:
    """x = ANY($1) with $1 of unknown type (psycopg 3's list of str): an array of x's type."""
    query = f"SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind {quantified}($1)"
    query += " AND c.relname IN ('pg_replication_slots', 'pg_settings') ORDER BY 1"
    described = []
    for dsn in (server.dsn(), pg_cluster.dsn()):
        with psycopg.connect(dsn) as conn:
            conn.pgconn.prepare(b"any_kinds", query.encode())
            described.append(conn.pgconn.describe_prepared(b"any_kinds").param_type(0))
            found = conn.execute(query.replace("$1", "%s"), [kinds]).fetchall()
            assert found == [("pg_replication_slots",), ("pg_settings",)]
    assert described[0] == described[1] == 1002  # "char"[]


# --- pandas and drivers ----------------------------------------------------------------------


def _read_sql_table(pd, engine, name: str, schema: str | None = None):
    """pandas' read_sql_table, or the ValueError it raises for a table it does not find."""
    try:
        return pd.read_sql_table(name, engine, schema=schema)
    except ValueError as error:
        return str(error)


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_pandas_read_sql(server, pg_cluster, driver: str) -> None:
    """pandas over SQLAlchemy reads pgshim's views and collections; a pg_catalog view is found
    by read_sql_table where PostgreSQL 15's is: in schema pg_catalog (SQLAlchemy leaves
    pg_catalog out of its unqualified lookup)."""
    pd = pytest.importorskip("pandas")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    subprocess.run(
        ["psql", "-X", "-c", "SELECT pgshim_create_history_slot('seen', 'test_decoding')"],
        env=server.env_for_clients(), check=True, capture_output=True,
    )  # fmt: skip
    engine = sqlalchemy.create_engine(
        f"postgresql+{driver}://postgres@127.0.0.1:{server.port}/reddb"
    )
    real = sqlalchemy.create_engine(
        f"postgresql+{driver}://postgres@127.0.0.1:{pg_cluster.port}/postgres"
    )
    try:
        slots = pd.read_sql("select * from pg_replication_slots", engine)
        assert list(slots["slot_name"]) == ["seen"]
        assert slots.loc[0, "plugin"] == "test_decoding"
        spool = pd.read_sql("select * from pgshim_spool", engine)
        assert len(spool) == 1
        table = _read_sql_table(pd, engine, "pg_replication_slots", "pg_catalog")
        assert list(table["slot_name"]) == ["seen"]
        theirs = _read_sql_table(pd, real, "pg_replication_slots", "pg_catalog")
        assert list(table.columns) == list(theirs.columns)
        for unqualified in ("pg_replication_slots", "nope"):
            assert _read_sql_table(pd, engine, unqualified) == _read_sql_table(
                pd, real, unqualified
            )
        users = _read_sql_table(pd, engine, "users")
        assert list(users["name"]) == ["ada"] and list(users["age"]) == [36]
        inspector = sqlalchemy.inspect(engine)
        assert inspector.get_pk_constraint("users")["constrained_columns"] == ["rid"]
        assert inspector.has_table("pg_replication_slots", schema="pg_catalog")
    finally:
        engine.dispose()
        real.dispose()


def test_psycopg3_type_info(server) -> None:
    from psycopg.types import TypeInfo

    with psycopg.connect(server.dsn()) as conn:
        info = TypeInfo.fetch(conn, "text")
        assert info is not None and info.oid == 25 and info.array_oid == 1009
        assert conn.execute("SELECT to_regtype('int4')::oid, to_regtype('nope')").fetchone() == (
            23,
            None,
        )
