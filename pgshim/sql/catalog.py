"""The status catalog: an in-memory DuckDB whose tables are refreshed from live providers.

Queries arrive in PostgreSQL's dialect; sqlglot parses them, the AST is rewritten for DuckDB
(pg_catalog qualifiers, PostgreSQL-only casts and functions), and the result columns get
PostgreSQL's names and types back (declared view column types, declared function return types).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.sql import catalog_versions, gucs, information_schema, pg_functions, pg_settings
from pgshim.sql.bounds import Bound
from pgshim.sql.check import Names
from pgshim.sql.effects import Effects
from pgshim.sql.engine import Engine, TempTable
from pgshim.sql.engine_errors import translate
from pgshim.sql.numeric_scale import ANY_SCALE_NUMERIC, scale_of
from pgshim.sql.pg_functions import PG15_COLUMNS, pg_type_rows
from pgshim.sql.result_cache import deterministic, macro_names
from pgshim.sql.results import ColumnDesc, RowsResult
from pgshim.sql.rewrite_cache import Read, RewriteCache, Rewritten, fingerprint
from pgshim.sql.shared_tables import Derived
from pgshim.sql.system_columns import replace_system_columns
from pgshim.versions import DEFAULT as DEFAULT_VERSION
from pgshim.versions import ServerVersion

# PostgreSQL type -> DuckDB storage type. Types without a DuckDB twin get an otherwise unused
# DuckDB type so that a result column's DuckDB type still tells its PostgreSQL type.
_DUCK_OF: dict[int, str] = {
    16: "BOOLEAN",
    17: "BLOB",
    18: "VARCHAR",
    19: "VARCHAR",
    20: "BIGINT",
    21: "SMALLINT",
    22: "SMALLINT[]",
    23: "INTEGER",
    25: "VARCHAR",
    26: "UINTEGER",
    28: "UHUGEINT",
    30: "UINTEGER[]",
    114: "VARCHAR",
    650: "VARCHAR",
    700: "FLOAT",
    701: "DOUBLE",
    705: "VARCHAR",
    829: "VARCHAR",
    869: "VARCHAR",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    1186: "INTERVAL",
    1700: ANY_SCALE_NUMERIC,
    2205: "UINTEGER",
    2206: "UINTEGER",
    2950: "UUID",
    3220: "UBIGINT",
    3802: "VARCHAR",
}
_PG_OF_DUCK: dict[str, int] = {
    "BOOLEAN": 16,
    "BLOB": 17,
    "TINYINT": 21,
    "SMALLINT": 21,
    "INTEGER": 23,
    "BIGINT": 20,
    "HUGEINT": 1700,
    "UTINYINT": 21,
    "USMALLINT": 23,
    "UINTEGER": 26,
    "UBIGINT": 3220,
    "UHUGEINT": 28,
    "FLOAT": 700,
    "DOUBLE": 701,
    "VARCHAR": 25,
    "DATE": 1082,
    "TIME": 1083,
    "TIMESTAMP": 1114,
    "TIMESTAMP WITH TIME ZONE": 1184,
    "INTERVAL": 1186,
    "UUID": 2950,
    "SMALLINT[]": 22,
    "UINTEGER[]": 1028,
    "NULL": 25,
    '"NULL"': 25,
}


def duck_type(pg_oid: int) -> str:
    if pg_oid in _DUCK_OF:
        return _DUCK_OF[pg_oid]
    pg_type = pgtypes.BY_OID.get(pg_oid)
    if pg_type is not None and pg_type.category == "A":
        return duck_type(pg_type.elem_oid) + "[]"
    return "VARCHAR"


def pg_oid_of_duck(type_name: str) -> int:
    type_name = type_name.upper()
    if type_name in _PG_OF_DUCK:
        return _PG_OF_DUCK[type_name]
    if type_name.startswith("DECIMAL"):
        return 1700
    if type_name.endswith("[][]"):  # PostgreSQL's arrays of any dimension have one type
        return pg_oid_of_duck(type_name[:-2])
    if type_name.endswith("[]"):
        elem = pg_oid_of_duck(type_name[:-2])
        array = next(
            (t.oid for t in pgtypes.BY_OID.values() if t.category == "A" and t.elem_oid == elem),
            None,
        )
        return array if array is not None and array not in (22, 30) else 1009
    return 25


def pg_type_oid(type_name: str) -> int:
    try:
        return pgtypes.lookup(type_name).oid
    except KeyError:
        raise PgError("42704", f'type "{type_name}" does not exist') from None


class _PostgresTypes(Postgres):
    """PostgreSQL's dialect with oid, regclass, regtype, ... read as type names like any other
    (sqlglot's own tokens for them cannot take [] after them: regtype[])."""

    class Tokenizer(Postgres.Tokenizer):
        KEYWORDS = {
            word: token
            for word, token in Postgres.Tokenizer.KEYWORDS.items()
            if token != TokenType.OBJECT_IDENTIFIER
        }


class SessionContext(Protocol):
    """What catalog functions need from the session running the query."""

    user: str
    database: str
    pid: int

    def get_setting(self, name: str) -> str: ...
    def set_setting(self, name: str, value: str, is_local: bool) -> str: ...
    def check_setting(self, name: str, value: str | None) -> tuple[str, str]: ...


@dataclass
class _Table:
    name: str
    columns: list[tuple[str, int]]  # (name, PostgreSQL type oid)
    rows: Callable[..., Iterable[tuple]]
    needs_session: bool = False  # rows(session): what the querying role may see


@dataclass
class _Function:
    name: str
    fn: Callable[..., Any]
    arg_oids: list[int]
    return_oid: int
    needs_session: bool = False
    # a function with a side effect: plan(session, planned, *args) checks everything and returns
    # (its value in a SELECT list, its row in FROM, commit); commit() does it, after the engine
    # produced every row of the statement (see pgshim/sql/effects.py)
    plan: Callable[..., tuple[Any, tuple, Callable[[], Any]]] | None = None
    columns: list[tuple[str, int]] | None = None  # its columns in FROM (a record's fields)


@dataclass
class _TableFunction:
    name: str
    fn: Callable[..., Iterable[tuple]]
    columns: list[tuple[str, int]]
    needs_session: bool = False


class CollectionSource(Protocol):
    """Tables loaded into a query's engine process (pgshim.sql.collections.CollectionTables)."""

    schema: str

    def names(self) -> frozenset[str]: ...
    def columns(self, name: str) -> list[tuple[str, int]]: ...
    def table_name(self, name: str) -> str: ...
    def empty_tables(self, names: Iterable[str]) -> list[TempTable]: ...
    def check(self, names: Iterable[str], session: Any) -> None: ...
    async def stage(
        self, cursor: Any, names: Iterable[str], session: Any, bound: Bound
    ) -> None: ...


@dataclass
class ServerFacts:
    server_addr: str | None = "127.0.0.1"
    server_port: int | None = 5432
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    current_lsn: Callable[[], int] = lambda: 0
    database_sizes: Callable[[], Iterable[tuple[str, int]]] = lambda: ()
    version: ServerVersion = DEFAULT_VERSION


class Catalog:
    """One engine database per server; each query runs on a cursor of its own."""

    def __init__(self, facts: ServerFacts | None = None, engine: Engine | None = None) -> None:
        self.facts = facts or ServerFacts()
        self.engine = engine or Engine()
        self._tables: dict[str, _Table] = {}
        self._functions: dict[str, _Function] = {}
        self._table_functions: dict[str, _TableFunction] = {}
        self._lock = threading.Lock()
        self._configured = False  # the engine knows the tables and macros
        self._session: SessionContext | None = None
        self._collections: CollectionSource | None = None
        self._lsn_names: frozenset[str] | None = None  # see _lsn_columns
        self._generation = 0  # one more at each registration (see rewrite_cache.py)
        self._rewrites = RewriteCache()
        self._reads: list[Read] | None = None  # what the rewrite running now read
        # pg_class and pg_attribute rows of the views, computed again when one is registered
        self._view_rows = Derived(
            lambda: pg_functions.view_rows(self._own_views()), self._own_views
        )
        self._register_builtins()
        information_schema.register(self)

    # --- registration ---------------------------------------------------------------------

    def register_view(
        self,
        name: str,
        columns: list[tuple[str, str]],
        rows: Callable[..., Iterable[tuple]],
        *,
        needs_session: bool = False,
    ) -> None:
        """A table whose rows come from `rows()` each time a query names it; with needs_session
        the session running the query is passed (None outside a session). A catalog made in
        PostgreSQL 15's layout gets the served version's (catalog_versions)."""
        if name in ("pg_class", "pg_attribute"):
            rows = self._with_own_views(name, rows)
        major = self.facts.version.major
        if name in catalog_versions.changed_catalogs(major):
            rows = catalog_versions.adapt_rows(name, major, columns, rows)
            columns = catalog_versions.catalog_columns(name, major, columns)
        declared = [(column, pg_type_oid(type_name)) for column, type_name in columns]
        with self._lock:
            self._tables[name] = _Table(name, declared, rows, needs_session=needs_session)
            self._configured = False  # engine processes started from now on have it
            self._lsn_names = None
            self._generation += 1

    def register_function(
        self,
        name: str,
        fn: Callable[..., Any],
        arg_types: list[str],
        return_type: str,
        *,
        needs_session: bool = False,
        plan: Callable[..., tuple[Any, tuple, Callable[[], Any]]] | None = None,
        columns: list[tuple[str, str]] | None = None,
    ) -> None:
        """A scalar SQL function; with needs_session the session is passed as first argument.
        With non-constant arguments the engine runs the macro ``pgshim_fn_<name>`` instead (when
        there is one). ``plan`` marks a function with a side effect (see _Function)."""
        function = _Function(
            name, fn, [pg_type_oid(t) for t in arg_types], pg_type_oid(return_type), needs_session,
            plan, [(c, pg_type_oid(t)) for c, t in columns] if columns else None,
        )  # fmt: skip
        with self._lock:
            self._functions[name] = function
            self._generation += 1

    def register_table_function(
        self,
        name: str,
        fn: Callable[..., Iterable[tuple]],
        columns: list[tuple[str, str]],
        *,
        needs_session: bool = False,
    ) -> None:
        """A set-returning function used in FROM; like scalar functions it runs before DuckDB
        sees the query (constant arguments), and its rows go in as a typed VALUES list."""
        declared = [(column, pg_type_oid(type_name)) for column, type_name in columns]
        with self._lock:
            self._table_functions[name] = _TableFunction(name, fn, declared, needs_session)
            self._lsn_names = None
            self._generation += 1

    def register_collections(self, collections: CollectionSource) -> None:
        """Tables whose rows a query loads into its engine process before it runs (the
        collections, see pgshim/sql/collections.py), named bare or in their schema."""
        with self._lock:
            self._collections = collections
            self._generation += 1

    def _with_own_views(
        self, name: str, rows: Callable[..., Iterable[tuple]]
    ) -> Callable[..., list[tuple]]:
        """pg_class and pg_attribute list pgshim's catalog and status views too (in pg_catalog)."""

        def with_views(*session: Any) -> list[tuple]:
            classes, attributes = self._view_rows()
            return [*rows(*session), *(classes if name == "pg_class" else attributes)]

        return with_views

    def _own_views(self) -> dict[str, list[tuple[str, int]]]:
        return {
            view: table.columns
            for view, table in list(self._tables.items())
            if not _is_internal(view)
        }

    def _proc_rows(self) -> tuple[list[tuple], list[tuple]]:
        """pg_proc and the printed signatures: every function pgshim defines."""
        oid_name = {oid: t for t, oid in ((t.name, t.oid) for t in pgtypes.BY_OID.values())}
        signatures = [
            (name, [oid_name.get(oid, "text") for oid in function.arg_oids],
             oid_name.get(function.return_oid, "text"), False)
            for name, function in list(self._functions.items())
            if not _is_internal(name)
        ]  # fmt: skip
        signatures += [
            (name, args, result, False)
            for name, overloads in pg_functions.MACRO_SIGNATURES.items()
            if name not in self._functions
            for args, result in overloads
        ]
        return pg_functions.proc_rows(signatures, _proc_type_oid)

    # --- execution --------------------------------------------------------------------------

    def names(self) -> Names:
        """What queries may refer to (see check.py)."""
        collections = self._collections
        return Names(
            relations=frozenset(name.lower() for name in self._tables if not _is_internal(name)),
            functions=frozenset(
                [name for name in [*self._functions, *_MACROS] if not _is_internal(name)]
            ),
            table_functions=frozenset(self._table_functions) | _TABLE_MACROS,
            collections=collections.names() if collections else frozenset(),
            schema=collections.schema if collections else "public",
            information_schema=frozenset(information_schema.VIEWS),
        )

    def relation_columns(self, schema: str | None, name: str) -> tuple[tuple[str, int], ...] | None:
        """The columns (name, type oid) of a relation a query may read, as check.py finds it
        (see resolve.py)."""
        if schema == information_schema.SCHEMA and name in information_schema.VIEWS:
            return tuple(self._tables[information_schema.internal_name(name)].columns)
        table = self._tables.get(name.lower())
        if schema in (None, "pg_catalog") and table is not None and not _is_internal(name):
            return tuple(table.columns)
        collections = self._collections
        if (
            collections is not None
            and schema in (None, collections.schema)
            and name in collections.names()
        ):
            return tuple(collections.columns(name))
        return None

    def rows_of(self, name: str, session: Any) -> list[dict[str, Any]]:
        """The current rows of a catalog table, as dicts (for views defined over others)."""
        table = self._tables.get(name)
        if table is None:
            return []
        produced = table.rows(session) if table.needs_session else table.rows()
        names = [column for column, _ in table.columns]
        return [dict(zip(names, row, strict=False)) for row in produced]

    def _collection_refs(self, tree: exp.Expression) -> dict[int, str]:
        """The table references that name a collection (id of the node -> collection): in the
        collections' schema, or bare where no catalog view or CTE has the name."""
        collections = self._collections
        if collections is None:
            return {}
        names = collections.names()
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        refs = {}
        for node in tree.find_all(exp.Table):
            if not isinstance(node.this, exp.Identifier) or node.name not in names:
                continue
            if node.catalog:
                continue
            if node.db == collections.schema or (
                not node.db and node.name.lower() not in self._tables and node.name not in ctes
            ):
                refs[id(node)] = node.name
        return refs

    async def query(
        self, sql: str, params: list | None, session: SessionContext | None, bound: Bound
    ) -> RowsResult:
        """Run one checked query (`sql` is the text parse.py printed back); its rows stream from
        a cursor of its own, fetched off the event loop."""
        tree = _tree(sql)  # read here, never changed: the rewrite works on a copy
        params = params or []
        generation = self._generation
        kept = None
        if len(sql) <= _CACHED_TEXT:
            with self._lock:  # the reads call server functions as the rewrite does
                kept = self._rewrites.find(
                    sql, generation, partial(self._reads_same, params, session)
                )
        if kept is None:
            collections = sorted(set(self._collection_refs(tree).values()))
        else:
            collections = list(kept.collections)
        if collections and self._collections is not None:
            self._collections.check(collections, session)
        effects = Effects(self, tree, session) if kept is None else None
        computed = await self._table_function_rows(tree, params, session, bound, effects)
        if kept is None:
            assert effects is not None
            kept = self._rewritten(sql, tree, params, session, effects, collections)
            if not effects and len(sql) <= _CACHED_TEXT:
                self._rewrites.put(sql, generation, kept)
        with self._lock:
            self._ensure_db()
            temp_tables = self._view_tables(kept.views, session)
        temp_tables += [
            _temp_table(name, function.columns, computed.get(index, []))
            for name, index, function in kept.row_tables
        ]
        stage = None
        if collections and self._collections is not None:
            source = self._collections

            async def stage(cursor: Any) -> None:
                await source.stage(cursor, collections, session, bound)

        staging: dict[str, Any] = {"stage": stage} if stage is not None else {}
        if kept.deterministic:
            staging["deterministic"] = True
        cursor = await self.engine.open(
            kept.sql, [params[number - 1] for number in kept.param_numbers], temp_tables, bound,
            translate, **staging,
        )  # fmt: skip
        known = kept.columns.get(repr(cursor.description))
        columns = list(known) if known is not None else self._columns(tree, cursor.description)
        if known is None and len(kept.columns) < 4:  # one description, but for NULL columns
            kept.columns[repr(cursor.description)] = list(columns)
        if effects:  # every row first: nothing is done unless the engine's part succeeded
            rows = await effects.run(cursor, bound)
            return RowsResult(effects.visible(columns), rows, f"SELECT {len(rows)}")
        return RowsResult(columns, cursor, "SELECT")

    def _rewritten(
        self,
        sql: str,
        tree: exp.Expression,
        params: list,
        session: SessionContext | None,
        effects: Effects,
        collections: list[str],
    ) -> Rewritten:
        """The query rewritten for the engine, with what the rewrite read (see rewrite_cache)."""
        with self._lock:
            self._ensure_db()
            self._session = session
            self._reads = []
            try:
                executable = self._rewrite(effects.engine_tree(), params, evaluate=True)
                reads = tuple(self._reads)
            finally:
                self._session = None
                self._reads = None
            row_tables = tuple(
                (name, index, function) for name, (function, index) in self._temp_tables.items()
            )
        self._check_engine_tree(executable)
        numbers = _renumber_params(executable)  # before printing the SQL
        return Rewritten(
            reads, executable.sql("duckdb"), tuple(numbers), tuple(collections),
            tuple(self._referenced_views(tree)), row_tables,
            not effects and deterministic(executable, _MACRO_NAMES),
        )  # fmt: skip

    def _noted(self, kind: str, args: tuple, value: Any) -> Any:
        """``value``, what the rewrite found reading ``kind`` of ``args`` (see _read_again)."""
        if self._reads is not None:
            self._reads.append((kind, args, fingerprint(value)))
        return value

    def _read_again(
        self, params: list, session: SessionContext | None, kind: str, args: tuple
    ) -> Any:
        """What the read ``kind`` of ``args`` the rewrite noted finds now."""
        collections = self._collections
        if kind == "param":
            return params[args[0]]
        if kind == "call":
            function = self._functions[args[0]]
            values = [session, *args[1]] if function.needs_session else list(args[1])
            return function.fn(*values)
        if kind == "regclass":
            return self._regclass(args[0])
        if kind == "regnamespace":
            return self._regnamespace(args[0])
        assert collections is not None
        if kind == "collections":
            return _names_of(collections)
        if kind == "collection_table":
            return collections.table_name(args[0])
        if kind == "collection_columns":
            return collections.columns(args[0])
        raise AssertionError(kind)

    def _reads_same(self, params: list, session: SessionContext | None, read: Read) -> bool:
        kind, args, found = read
        try:
            return fingerprint(self._read_again(params, session, kind, args)) == found
        except (PgError, IndexError, KeyError):
            return False

    async def describe(
        self, sql: str, param_oids: list[int], bound: Bound
    ) -> tuple[list[int], list[ColumnDesc]]:
        """Parameter types (unknown ones inferred) and result columns, without running the query."""
        tree = _tree(sql)
        inferred = self._infer_params(tree, param_oids)
        collections = set(self._collection_refs(tree).values())
        effects = Effects(self, tree, None)
        with self._lock:
            self._ensure_db()
            probe = self._rewrite(effects.engine_tree(), [None] * len(inferred), evaluate=False)
            self._check_engine_tree(probe)
            empty = [
                _temp_table(alias, function.columns, [])
                for alias, (function, _) in self._temp_tables.items()
            ] + [
                _temp_table(name, self._tables[name].columns, [])
                for name in self._referenced_views(tree)
            ]
            if collections and self._collections is not None:
                empty += self._collections.empty_tables(collections)
        engine_params = [None] * len(_renumber_params(probe))
        limited = f"SELECT * FROM ({probe.sql('duckdb')}) AS _describe LIMIT 0"
        description = await self.engine.describe(limited, engine_params, empty, bound, translate)
        columns = self._columns(tree, description)
        return inferred, effects.visible(columns)

    async def _table_function_rows(
        self,
        tree: exp.Expression,
        params: list,
        session: SessionContext | None,
        bound: Bound,
        effects: Effects | None = None,
    ) -> dict[int, list[tuple]]:
        """Run the set-returning functions pgshim defines (before the engine sees the query;
        their arguments must be constants or parameters), by position in the tree. A scalar
        function in FROM is a one-row table; one with a side effect is planned here and done
        only once the engine produced every row."""
        self._params = params
        computed: dict[int, list[tuple]] = {}
        for index, node in enumerate(self._table_function_calls(tree)):
            name = node.this.name.lower()
            if name in self._functions:
                scalar = self._functions[name]
                values = [self._constant(name, arg) for arg in node.this.expressions]
                if scalar.plan is not None:
                    assert effects is not None
                    computed[index] = [effects.plan_once(scalar, values)]
                    continue
                if scalar.needs_session:
                    values.insert(0, session)
                result = scalar.fn(*values)
                computed[index] = [tuple(result) if scalar.columns else (result,)]
                continue
            function = self._table_functions[name]
            values = [self._constant(function.name, arg) for arg in node.this.expressions]
            if function.needs_session:
                values.insert(0, session)
            produced = function.fn(*values)
            if inspect.isawaitable(produced):
                produced = await produced
            computed[index] = [tuple(row) for row in produced]
            bound.check()
        return computed

    def _table_function_calls(self, tree: exp.Expression) -> list[exp.Table]:
        return [
            node
            for node in tree.find_all(exp.Table)
            if isinstance(node.this, exp.Anonymous)
            and (
                node.this.name.lower() in self._table_functions
                or node.this.name.lower() in self._functions
            )
        ]

    def _check_engine_tree(self, tree: exp.Expression) -> None:
        """A second wall behind check.py: the engine reads only pgshim's tables, the query's own
        CTEs and the temporary tables holding set-returning functions' rows."""
        allowed = set(self._tables) | set(self._temp_tables) | set(self._collection_tables)
        allowed |= {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for node in tree.find_all(exp.Table):
            if isinstance(node.this, exp.Identifier) and node.name not in allowed:
                raise PgError("42P01", f'relation "{node.name}" does not exist')
            if node.db and node.db.lower() != "pg_catalog":
                raise PgError("42P01", f'relation "{node.db}.{node.name}" does not exist')

    # --- parsing and rewriting ----------------------------------------------------------------

    def _rewrite(self, tree: exp.Expression, params: list, evaluate: bool) -> exp.Expression:
        """The engine's statement (``tree`` is changed); what it reads that is not in the text
        or the registrations goes through _noted."""
        self._params, self._evaluate = params, evaluate
        self._temp_tables: dict[str, tuple[_TableFunction, int]] = {}  # by name: rows of calls
        calls = {id(node): index for index, node in enumerate(self._table_function_calls(tree))}
        self._call_index = calls
        collections = self._collections
        if collections is not None:
            self._noted("collections", (), _names_of(collections))
        self._collection_nodes = self._collection_refs(tree)
        for name in sorted(set(self._collection_nodes.values())):
            assert collections is not None
            self._noted("collection_columns", (name,), collections.columns(name))
        self._tree_sources = self._sources(tree) if isinstance(tree, exp.Select) else {}
        self._collection_tables: set[str] = set()
        replace_system_columns(tree, _CATALOG_TABLES)
        return tree.transform(self._rewrite_node, copy=False)

    def _call(self, name: str, args: list[exp.Expression]) -> exp.Expression:
        """Server functions run once per query, before DuckDB sees it: their arguments must be
        constants or parameters, and the result goes into the query as a typed literal."""
        function = self._functions[name]
        target = exp.DataType.build(duck_type(function.return_oid), dialect="duckdb")
        if name in _ENGINE_EVALUATED or not all(_is_constant(arg) for arg in args):
            if function.plan is not None:  # Effects takes every call it can do exactly once
                raise _misplaced(name)
            macro = _internal(name)
            if macro not in _MACROS:
                raise PgError("0A000", f"arguments of {name}() must be constants")
            # evaluated per row by the engine: the same function written as a macro
            rewritten = [
                self._lsn_operand(arg) if oid == 3220 else arg.transform(self._rewrite_node)
                for arg, oid in zip(args, function.arg_oids, strict=False)
            ]
            rewritten += [exp.Null()] * (len(function.arg_oids) - len(rewritten))
            call = exp.Anonymous(this=macro, expressions=rewritten)
            return call if function.return_oid == 1700 else exp.Cast(this=call, to=target)
        if function.plan is not None and self._evaluate:
            raise _misplaced(name)
        if not self._evaluate:
            return exp.Cast(this=exp.Null(), to=target)
        values = [self._constant(name, arg) for arg in args]
        session = [self._session] if function.needs_session else []
        result = self._noted("call", (name, tuple(values)), function.fn(*session, *values))
        return exp.Cast(this=_literal(result), to=target)

    def _call_table(self, node: exp.Table) -> exp.Expression:
        """A set-returning function's rows go to the engine as a temporary table."""
        function = self._from_function(node.this.name.lower(), node.alias)
        index = self._call_index[id(node)]
        name = f"pgshim_rows_{index}"
        self._temp_tables[name] = (function, index)
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(function.name))
        return exp.Table(this=exp.to_identifier(name), alias=alias)

    def _collection_table(self, node: exp.Table) -> exp.Expression:
        """A collection is read from the table its query's process loads (under its name)."""
        assert self._collections is not None
        collection = self._collection_nodes[id(node)]
        name = self._noted(
            "collection_table", (collection,), self._collections.table_name(collection)
        )
        self._collection_tables.add(name)
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        return exp.Table(this=exp.to_identifier(name), alias=alias)

    def _from_function(self, name: str, alias: str = "") -> _TableFunction:
        """The set-returning function, or the scalar one in FROM: a one-row table whose column
        is named after the function, or its alias (a record's fields for one returning a
        record)."""
        if name in self._table_functions:
            return self._table_functions[name]
        scalar = self._functions[name]
        return _TableFunction(
            name, scalar.fn, scalar.columns or [(alias or name, scalar.return_oid)]
        )

    def _constant(self, function: str, arg: exp.Expression) -> Any:
        node = arg
        while isinstance(node, exp.Paren | exp.Cast):
            node = node.this
        if isinstance(node, exp.Parameter):
            index = int(node.this.this) - 1
            return self._noted("param", (index,), self._params[index])
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Boolean):
            return node.this
        if isinstance(node, exp.Literal):
            return node.this if node.is_string else int(node.this)
        raise PgError("0A000", f"arguments of {function}() must be constants")

    def _rewrite_node(self, node: exp.Expression) -> exp.Expression:
        rewritten = self._rewrite_catalog_syntax(node)
        if rewritten is not None:
            return rewritten
        if (
            isinstance(node, exp.Dot)
            and isinstance(node.expression, exp.Func)
            and node.this.name.lower() == "pg_catalog"
        ):
            return self._rewrite_node(node.expression)
        if (
            isinstance(node, exp.Table)
            and isinstance(node.this, exp.Anonymous)
            and (
                node.this.name.lower() in self._table_functions
                or node.this.name.lower() in self._functions
            )
        ):
            return self._call_table(node)
        if isinstance(node, exp.Sub | exp.Add) and (
            self._is_lsn(node.left) or self._is_lsn(node.right)
        ):
            return self._lsn_arithmetic(node)
        if isinstance(node, _COMPARISONS) and (self._is_lsn(node.left) or self._is_lsn(node.right)):
            node.set("this", self._lsn_operand(node.left))
            node.set("expression", self._lsn_operand(node.right))
            return node
        if isinstance(node, exp.Table) and id(node) in self._collection_nodes:
            return self._collection_table(node)
        if isinstance(node, exp.Table) and node.db.lower() == "pg_catalog":
            node.set("db", None)
            return node
        if isinstance(node, exp.Cast):
            return self._rewrite_cast(node)
        if (
            isinstance(node, exp.Sum)
            and not isinstance(node.parent, exp.Window)
            and self._integer_oid(node.this) in (21, 23)
        ):  # PostgreSQL's sum of int2/int4 is an int8 (the engine's a 128-bit integer)
            node.set("this", node.this.transform(self._rewrite_node))
            return exp.Cast(this=node, to=exp.DataType.build("BIGINT"))
        if isinstance(node, exp.Div):  # PostgreSQL's: integers divide to an integer, x/0 fails
            return exp.IntDiv(this=node.this, expression=node.expression)
        special = _SPECIAL_FUNCTIONS.get(type(node))
        if special is not None:
            return self._call(special, [])
        if isinstance(node, exp.Anonymous) and node.name.lower() in self._functions:
            return self._call(node.name.lower(), list(node.expressions))
        return node

    def _rewrite_catalog_syntax(self, node: exp.Expression) -> exp.Expression | None:
        """What psql and drivers send about the catalog: OPERATOR(pg_catalog.~), COLLATE
        "default", pg_catalog.pg_class.oid, regclass and regnamespace values (oids that print as
        names), PostgreSQL's array literals; None when the node is not one of them."""
        if isinstance(node, exp.Select):
            tables_of = _variadic_publication_tables(node)
            if tables_of is not None:
                return self._publication_tables_of(node, tables_of)
            listed = _listed_table_macro(node)
            if listed is not None:
                return self._from_table_macro(node, listed)
            for projection in node.expressions:  # a regclass in the result prints its name
                target = projection.this if isinstance(projection, exp.Alias) else projection
                if isinstance(target, exp.Cast) and _reg_target(target) in _REG_OUTPUT:
                    text = exp.Cast(this=target.copy(), to=exp.DataType.build("text"))
                    target.replace(text)
            return None
        if (
            isinstance(node, exp.Dot)
            and isinstance(node.expression, exp.Func)
            and node.this.name.lower() == "pg_catalog"
        ):  # the function and its arguments (the transform does not enter a replaced node)
            return node.expression.transform(self._rewrite_node)
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Explode):
            # unnest(x) AS a in FROM: a one-column subquery (its column named like the alias)
            alias = node.alias or "unnest"
            values = node.this.this.transform(self._rewrite_node)
            return exp.select(exp.alias_(exp.Explode(this=values), alias)).subquery(alias)
        if isinstance(node, exp.Like | exp.ILike) and _like_escape(node.expression) is not None:
            # PostgreSQL's parser turns LIKE p ESCAPE e into LIKE like_escape(p, e)
            pattern, escape = _like_escape(node.expression)
            like = type(node)(this=node.this.transform(self._rewrite_node),
                              expression=pattern.transform(self._rewrite_node),
                              negate=node.args.get("negate"))  # fmt: skip
            return exp.Escape(this=like, expression=escape.transform(self._rewrite_node))
        if isinstance(node, exp.Operator):
            return self._rewrite_operator(node)
        if isinstance(node, exp.Collate) and _collation_name(node) in _DEFAULT_COLLATIONS:
            return node.this.transform(self._rewrite_node)
        if isinstance(node, exp.Column) and node.args.get("db") is not None:
            if node.db.lower() == "pg_catalog" and not node.catalog:
                node.set("db", None)
                return node
            return None
        if isinstance(node, exp.Anonymous) and node.name.lower() == "json_build_object":
            return exp.Anonymous(
                this="json_object",
                expressions=[arg.transform(self._rewrite_node) for arg in node.expressions],
            )
        if isinstance(node, _COMPARISONS):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if _is_regtype_literal(side) and not _is_regtype(other):
                    # oid <> 'trigger'::regtype compares oids (the engine's regtype is a name)
                    oid = pg_type_oid(side.unnest().this.this.removeprefix("pg_catalog."))
                    to = exp.DataType.build("oid", udt=True)
                    side.replace(exp.Cast(this=exp.Literal.number(oid), to=to))
        quantified = _quantified_array(node)
        if isinstance(quantified, exp.Literal) and quantified.is_string:
            # x = ANY('{a,b}'): the untyped literal is an array of x's type (read as the cast)
            other = _compared_with(node)
            elem = self._declared_type(other, self._tree_sources) if other is not None else None
            if isinstance(other, exp.Literal) and not other.is_string:
                elem = 23 if other.this.lstrip("-").isdigit() else 1700
            array = pgtypes.BY_OID[_array_oid(elem) or 1009].name
            to = exp.DataType.build(array, dialect="postgres", udt=True)
            quantified.replace(exp.Cast(this=quantified.copy(), to=to))
            return None
        if isinstance(node, exp.EQ | exp.NEQ):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if (
                    isinstance(side, exp.Literal) and side.is_string
                    and side.this.startswith("{") and side.this.endswith("}")
                    and isinstance(other, exp.Column)
                ):  # fmt: skip
                    side.replace(exp.Literal.string("[" + side.this[1:-1] + "]"))
            return None
        if isinstance(node, exp.Cast):
            return self._rewrite_reg_cast(node)
        return None

    def _publication_tables_of(self, node: exp.Select, names: exp.Expression) -> exp.Expression:
        """``SELECT (pg_get_publication_tables(VARIADIC array_agg(x))).* FROM ... WHERE ...``
        (PostgreSQL 16+ subscribers): the rows of every publication the query names, with
        PostgreSQL 16's columns pubid, relid, attrs, qual."""
        chosen = node.copy()
        chosen.set("expressions", [names.copy()])
        chosen = chosen.transform(self._rewrite_node)
        return (
            exp.select("pgshim_p.oid AS pubid", "r.relid", "r.attrs", "r.qual")
            .from_("pgshim_publication_rel AS r")
            .join("pg_publication AS pgshim_p", on="pgshim_p.pubname = r.pubname")
            .where(exp.column("pubname", "r").isin(query=chosen))
        )

    def _from_table_macro(self, node: exp.Select, call: exp.Anonymous) -> exp.Expression:
        """``SELECT srf(args)`` of a one-column set-returning function: its rows, in a column
        named after it (psql 18's ``SELECT pg_partition_ancestors('16384')``)."""
        name = call.name.lower()
        column = _TABLE_FUNCTIONS[name][0][0]
        projection = node.expressions[0]
        alias = projection.alias if isinstance(projection, exp.Alias) else name
        source = exp.Table(this=call.transform(self._rewrite_node))
        return exp.select(exp.alias_(exp.column(column), alias)).from_(source)

    def _rewrite_operator(self, node: exp.Operator) -> exp.Expression:
        operator = str(node.args.get("operator") or "").lower().removeprefix("pg_catalog.")
        left = node.this.transform(self._rewrite_node)
        right = node.expression.transform(self._rewrite_node)
        negated = operator.startswith("!")
        kind = _OPERATORS.get(operator.removeprefix("!") if negated else operator)
        if kind is None:
            raise PgError(
                "42883", f"operator does not exist: OPERATOR({node.args.get('operator')})"
            )
        combined = kind(this=left, expression=right)
        return exp.Not(this=combined) if negated else combined

    def _rewrite_reg_cast(self, node: exp.Cast) -> exp.Expression | None:
        """regclass and regnamespace are oids; cast to text they print the name."""
        target = _reg_target(node)
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if target in (25, 1043, 19) and isinstance(inner, exp.Cast):
            inner_target = _reg_target(inner)
            if inner_target in _REG_OUTPUT:
                value = self._rewrite_reg_cast(inner) or inner.transform(self._rewrite_node)
                return exp.Anonymous(this=_internal(_REG_OUTPUT[inner_target]), expressions=[value])
            return None
        if target == 2205:
            if isinstance(inner, exp.Literal) and inner.is_string:
                return exp.Literal.number(self._noted_regclass(inner.this))
            value = inner.transform(self._rewrite_node)
            if isinstance(inner, exp.Parameter) or (
                isinstance(inner, exp.Cast) and _cast_target(inner) in (25, 1043, 19)
            ):
                return exp.Anonymous(
                    this=_internal("regclass_in"), expressions=[value, exp.Boolean(this=True)]
                )
            return exp.Cast(this=value, to=exp.DataType.build("UINTEGER", dialect="duckdb"))
        if target == 4089 and isinstance(inner, exp.Literal) and inner.is_string:
            return exp.Literal.number(
                self._noted("regnamespace", (inner.this,), self._regnamespace(inner.this))
            )
        if target == 4089:
            value = inner.transform(self._rewrite_node)
            return exp.Cast(this=value, to=exp.DataType.build("UINTEGER", dialect="duckdb"))
        if target == 24:  # regproc: only ever shown (pg_dump), so its name at once
            value = inner.transform(self._rewrite_node)
            return exp.Anonymous(this=_internal("regproc_out"), expressions=[value])
        return None

    def _rewrite_cast(self, node: exp.Cast) -> exp.Expression:
        target = _cast_target(node)
        inner = node.this
        if target == 2206 and isinstance(inner, exp.Literal) and inner.is_string:
            return exp.Anonymous(
                this=_internal("regtype_name"),
                expressions=[
                    exp.Literal.number(pg_type_oid(inner.this.removeprefix("pg_catalog.")))
                ],
            )
        if target == 26 and isinstance(inner, exp.Cast) and _cast_target(inner) == 2206:
            # a regtype's oid: the value before it became a name ('text'::regtype::oid)
            value = inner.this
            if isinstance(value, exp.Literal) and value.is_string:
                value = exp.Literal.number(pg_type_oid(value.this.removeprefix("pg_catalog.")))
            node.set("this", value)
            return self._rewrite_cast(node)
        if target in (2206, 2211):  # regtype, regtype[]: the engine holds their names
            inner = inner.transform(self._rewrite_node)
            macro = "regtype_name" if target == 2206 else "regtype_names"
            return exp.Anonymous(this=_internal(macro), expressions=[inner])
        if target in (25, 1043) and self._is_lsn(inner):
            # DuckDB would print the number: PostgreSQL prints pg_lsn as X/Y
            # the transform does not descend into a replaced node: rewrite the operand here
            inner = inner.transform(self._rewrite_node)
            return exp.Anonymous(this=_internal("lsn_text"), expressions=[inner])
        if target == 2205 and isinstance(inner, exp.Literal) and inner.is_string:
            return exp.Literal.number(self._noted_regclass(inner.this))
        if target == 3220 and isinstance(inner, exp.Literal) and inner.is_string:
            try:
                return exp.Cast(
                    this=exp.Literal.number(pgtypes.parse_lsn(inner.this)),
                    to=exp.DataType.build("UBIGINT", dialect="duckdb"),
                )
            except ValueError as error:
                raise PgError("22P02", str(error)) from None
        if target is None:
            return node
        if _is_array_type(target) and isinstance(inner, exp.Literal) and inner.is_string:
            value = _array_in(target, inner.this)
            depth, first = 1, value  # the engine's lists have a type per dimension
            while first and isinstance(first[0], list):
                depth, first = depth + 1, first[0]
            return exp.Cast(
                this=_array_literal(value),
                to=exp.DataType.build(duck_type(target) + "[]" * (depth - 1), dialect="duckdb"),
            )
        if isinstance(inner, exp.Anonymous) and inner.name == _internal("regtype_name"):
            return inner
        if target == 1700:
            node.set("to", exp.DataType.build(self._numeric_type(inner), dialect="duckdb"))
            return node
        node.set("to", exp.DataType.build(duck_type(target), dialect="duckdb"))
        return node

    def _numeric_type(self, node: exp.Expression) -> str:
        """The engine type of a cast to numeric: of the scale PostgreSQL gives the value where
        it is known before the query runs (a constant's as written, an integer's 0), else
        ANY_SCALE_NUMERIC."""
        while isinstance(node, exp.Paren | exp.Neg):
            node = node.this
        if isinstance(node, exp.Literal):
            scale = scale_of(node.this)
            return ANY_SCALE_NUMERIC if scale is None or scale > 38 else f"DECIMAL(38,{scale})"
        return "DECIMAL(38,0)" if self._is_integer(node) else ANY_SCALE_NUMERIC

    def _is_integer(self, node: exp.Expression) -> bool:
        """Whether an expression is certainly of an integer type (int2, int4, int8)."""
        return self._integer_oid(node) is not None

    def _integer_oid(self, node: exp.Expression) -> int | None:
        """The integer type (int2, int4 or int8) an expression certainly has, else None."""
        while isinstance(node, exp.Paren | exp.Neg):
            node = node.this
        if isinstance(node, exp.Literal):
            if node.is_string or not node.this.isdigit() or int(node.this) >= 2**63:
                return None
            return 23 if int(node.this) < 2**31 else 20
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Mod):
            kinds = [self._integer_oid(node.left), self._integer_oid(node.right)]
            if None in kinds:
                return None
            return max(kinds, key=_INTEGER_WIDTH.__getitem__)
        if isinstance(node, exp.Count):
            return 20
        if isinstance(node, exp.Column | exp.Cast | exp.Anonymous):
            select = node.find_ancestor(exp.Select)
            sources = self._sources(select) if isinstance(node, exp.Column) and select else {}
            declared = self._declared_type(node, sources)
            return declared if declared in _INTEGER_WIDTH else None
        return None

    def _lsn_operand(self, node: exp.Expression) -> exp.Expression:
        """An operand where PostgreSQL wants a pg_lsn: a string constant is read as one."""
        if isinstance(node, exp.Literal) and node.is_string:
            try:
                return exp.Cast(
                    this=exp.Literal.number(pgtypes.parse_lsn(node.this)),
                    to=exp.DataType.build("UBIGINT", dialect="duckdb"),
                )
            except ValueError:
                raise PgError(
                    "22P02", f'invalid input syntax for type pg_lsn: "{node.this}"'
                ) from None
        return node.transform(self._rewrite_node)

    def _lsn_arithmetic(self, node: exp.Sub | exp.Add) -> exp.Expression:
        """pg_lsn - pg_lsn is numeric (bytes, negative when the right one is ahead); pg_lsn +/-
        numeric is pg_lsn. The engine stores pg_lsn as UBIGINT: compute in HUGEINT."""
        left_lsn, right_lsn = self._is_lsn(node.left), self._is_lsn(node.right)
        left = self._lsn_operand(node.left) if left_lsn else node.left.transform(self._rewrite_node)
        right = (
            self._lsn_operand(node.right) if right_lsn else node.right.transform(self._rewrite_node)
        )
        wide = [exp.Cast(this=side, to=exp.DataType.build("HUGEINT")) for side in (left, right)]
        if left_lsn and right_lsn:
            if isinstance(node, exp.Add):
                raise PgError("42883", "operator does not exist: pg_lsn + pg_lsn")
            return exp.Cast(
                this=exp.Paren(this=exp.Sub(this=wide[0], expression=wide[1])),
                to=exp.DataType.build("DECIMAL(38, 0)", dialect="duckdb"),
            )
        if right_lsn and isinstance(node, exp.Sub):
            raise PgError("42883", "operator does not exist: numeric - pg_lsn")
        combined = type(node)(this=wide[0], expression=wide[1])
        return exp.Cast(
            this=exp.Paren(this=combined), to=exp.DataType.build("UBIGINT", dialect="duckdb")
        )

    def _is_lsn(self, node: exp.Expression) -> bool:
        """Whether an expression is a pg_lsn column of a catalog view or a pg_lsn function."""
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Cast):
            return _cast_target(node) == 3220
        if isinstance(node, exp.Sub | exp.Add):  # pg_lsn +/- numeric
            return self._is_lsn(node.left) != self._is_lsn(node.right)
        if isinstance(node, exp.Column):
            return node.name in self._lsn_columns()
        if isinstance(node, exp.Anonymous):
            function = self._functions.get(node.name.lower())
            return function is not None and function.return_oid == 3220
        return False

    def _lsn_columns(self) -> frozenset[str]:
        """The names of the pg_lsn columns of the views and set-returning functions."""
        if self._lsn_names is None:
            self._lsn_names = frozenset(
                column
                for table in [*self._tables.values(), *self._table_functions.values()]
                for column, oid in table.columns
                if oid == 3220
            )
        return self._lsn_names

    def _namespaces(self) -> dict[str, int]:
        namespaces = {"pg_catalog": 11, "public": 2200}
        table = self._tables.get("pg_namespace")
        for row in table.rows() if table and not table.needs_session else []:
            namespaces[row[1]] = row[0]
        return namespaces

    def _regnamespace(self, name: str) -> int:
        oid = self._namespaces().get(name.strip('"'))
        if oid is None:
            raise PgError("3F000", f'schema "{name}" does not exist')
        return oid

    def _noted_regclass(self, name: str) -> int:
        return self._noted("regclass", (name,), self._regclass(name))

    def _regclass(self, name: str) -> int:
        if name.isdigit():  # regclassin takes an oid as it is
            return int(name)
        parts = [part.strip('"') for part in name.split(".")]
        relname, schema = parts[-1], (parts[-2] if len(parts) > 1 else None)
        namespaces = self._namespaces()
        wanted = {namespaces.get(schema, -1)} if schema else {11, 2200}
        table = self._tables.get("pg_class")
        for row in table.rows() if table else []:
            columns = [column for column, _ in table.columns]
            record = dict(zip(columns, row, strict=False))
            if record.get("relname") == relname and record.get("relnamespace") in wanted:
                return int(record["oid"])
        raise PgError("42P01", f'relation "{name}" does not exist')

    # --- result columns -----------------------------------------------------------------------

    def _columns(self, tree: exp.Expression, description: list) -> list[ColumnDesc]:
        projections = tree.expressions if isinstance(tree, exp.Select) else []
        has_star = any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star)
            for p in projections
        )
        sources = self._sources(tree) if isinstance(tree, exp.Select) else {}
        columns = []
        for index, item in enumerate(description):
            duck_name, duck_type_code = item[0], str(item[1])
            physical = pg_oid_of_duck(duck_type_code)
            name, declared = duck_name, None
            if projections and not has_star and index < len(projections):
                projection = projections[index]
                name = _column_name(projection) or duck_name
                declared = self._declared_type(projection, sources)
            elif has_star:
                declared = _unique_source_type(sources, duck_name)
            oid = physical
            if declared is not None and (
                duck_type(declared) == duck_type(physical)
                or _HELD_AS_NAMES.get(declared) == duck_type_code.upper()
            ):
                oid = declared
            typlen = pgtypes.BY_OID[oid].typlen if oid in pgtypes.BY_OID else -1
            columns.append(ColumnDesc(name, oid, typlen))
        return columns

    def _sources(self, tree: exp.Select) -> dict[str, dict[str, int]]:
        sources: dict[str, dict[str, int]] = {}
        collections = self._collection_refs(tree)
        for table in tree.find_all(exp.Table):
            if id(table) in collections and self._collections is not None:
                columns = self._collections.columns(collections[id(table)])
                sources[table.alias_or_name.lower()] = {name.lower(): oid for name, oid in columns}
                continue
            if isinstance(table.this, exp.Anonymous) and (
                table.this.name.lower() in self._functions
                or table.this.name.lower() in self._table_functions
            ):
                function = self._from_function(table.this.name.lower(), table.alias)
                sources[table.alias_or_name.lower()] = dict(function.columns)
                continue
            known = self._tables.get(table.name.lower())
            if known is not None:
                sources[table.alias_or_name.lower()] = dict(known.columns)
        for unnest in tree.find_all(exp.Unnest):  # unnest(array) in FROM: its elements
            if isinstance(unnest.parent, exp.From | exp.Join) and len(unnest.expressions) == 1:
                declared = self._declared_type(unnest.expressions[0], sources)
                array = pgtypes.BY_OID.get(declared or 0)
                if array is not None and array.category == "A":
                    alias = unnest.args.get("alias")
                    names = alias.columns if alias is not None else []
                    column = (names[0].name if names else unnest.alias) or "unnest"
                    sources[unnest.alias.lower() or "unnest"] = {column.lower(): array.elem_oid}
        for lateral in tree.find_all(exp.Lateral):
            function = lateral.this
            if isinstance(function, exp.Anonymous) and function.name.lower() in _TABLE_FUNCTIONS:
                alias = lateral.alias_or_name.lower()
                sources[alias] = dict(_TABLE_FUNCTIONS[function.name.lower()])
        return sources

    def _declared_type(self, projection: exp.Expression, sources: dict) -> int | None:
        node = projection.this if isinstance(projection, exp.Alias) else projection
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Column):
            table = node.table.lower()
            if table:
                return sources.get(table, {}).get(node.name.lower())
            return _unique_source_type(sources, node.name.lower())
        if isinstance(node, exp.Cast):
            return _cast_target(node)
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            node = node.expression
        if type(node) in _SPECIAL_FUNCTIONS:
            return self._functions[_SPECIAL_FUNCTIONS[type(node)]].return_oid
        if isinstance(node, exp.Anonymous) and node.name.lower() in self._functions:
            return self._functions[node.name.lower()].return_oid
        if isinstance(node, exp.Case) and node.args.get("default") is not None:
            return self._declared_type(node.args["default"], sources)
        return None

    def _infer_params(self, tree: exp.Expression, given: list[int]) -> list[int]:
        count = max([int(p.this.this) for p in tree.find_all(exp.Parameter)] + [len(given)])
        oids = list(given) + [0] * (count - len(given))
        sources = self._sources(tree) if isinstance(tree, exp.Select) else {}
        for parameter in tree.find_all(exp.Parameter):
            index = int(parameter.this.this) - 1
            if oids[index]:
                continue
            parent = parameter.parent
            if isinstance(parent, exp.Cast):
                oids[index] = _cast_target(parent) or 25
            elif isinstance(parent, exp.Binary):
                other = parent.left if parent.right is parameter else parent.right
                oids[index] = self._declared_type(other, sources) or 0
            elif _any_operand(parameter) is not None:  # x = ANY($1): an array of x's type
                oids[index] = _array_oid(self._declared_type(_any_operand(parameter), sources))
        return [oid or 25 for oid in oids]

    # --- DuckDB --------------------------------------------------------------------------------

    def warm(self) -> None:
        """Have the engine ready before the first query needs it, and the engine's SQL dialect
        loaded (sqlglot loads it when first used: 50-70 ms of the first statement)."""
        Dialect.get_or_raise("duckdb")
        with self._lock:
            self._ensure_db()

    def _ensure_db(self) -> None:
        if not self._configured:
            # the engine's own tables hold the rows of now: enough for the static ones (types)
            # and for macros and planning; queries bring fresh versions of what they read
            tables = [
                _temp_table(table.name, table.columns, [] if table.needs_session else table.rows(),
                            shared=not table.needs_session)
                for table in self._tables.values()
            ]  # fmt: skip
            self.engine.configure(tables, _MACROS.values())
            self._configured = True

    def _view_tables(self, names: Iterable[str], session: SessionContext | None) -> list[TempTable]:
        """The current rows of every view the query reads (and of those the macros it calls
        read): the query's own temporary copies of the views whose rows depend on the session,
        versions of the shared tables of the others (see shared_tables.py)."""
        tables = []
        for name in names:
            table = self._tables[name]
            if table.needs_session:
                tables.append(_temp_table(name, table.columns, table.rows(session)))
            else:
                tables.append(_temp_table(name, table.columns, table.rows(), shared=True))
        return tables

    def _referenced_views(self, tree: exp.Expression) -> list[str]:
        names = {table.name.lower() for table in tree.find_all(exp.Table)}
        names.update(_macro_tables(tree))
        if tree.find(exp.Lateral) is not None or "pg_publication_tables" in names:
            names.add("pgshim_publication_rel")
        called = sql_functions(tree)
        if "pg_get_replica_identity_index" in called:
            names.add("pg_index")
        for function, views in _MACRO_VIEWS.items():
            if function in called:
                names.update(views)
        return sorted(name for name in names if name in self._tables)

    # --- built-ins ------------------------------------------------------------------------------

    def _current_schemas(self, session: SessionContext | None, implicit: bool) -> list[str]:
        """The search path's schemas that exist, each once, pg_catalog first unless listed
        (with implicit true), as PostgreSQL's current_schemas() answers."""
        path = session.get_setting("search_path") if session is not None else '"$user", public'
        user = session.user if session is not None else "postgres"
        namespaces = self._tables["pg_namespace"]
        rows = namespaces.rows(session) if namespaces.needs_session else namespaces.rows()
        existing = {row[1] for row in rows}
        schemas: list[str] = []
        for item in gucs.search_path_schemas(path):
            name = user if item == "$user" else item
            if name in existing and name not in schemas:
                schemas.append(name)
        if implicit and "pg_catalog" not in schemas:
            schemas.insert(0, "pg_catalog")
        return schemas

    def _current_schema(self, session: SessionContext | None) -> str | None:
        schemas = self._current_schemas(session, False)
        return schemas[0] if schemas else None

    def _register_builtins(self) -> None:
        facts = self.facts

        def setting(
            session: SessionContext | None, name: str, missing_ok: bool | None = False
        ) -> str | None:
            if session is None or name is None:
                return None
            try:
                return session.get_setting(name)
            except PgError:
                if missing_ok:
                    return None
                raise

        def set_config(session: SessionContext | None, name: str, value: str, local: bool) -> str:
            if session is None:
                raise PgError("55000", "set_config needs a session")
            return session.set_setting(name, value, bool(local))

        def plan_set_config(
            session: SessionContext | None, planned: dict, name: str, value: str, local: bool
        ) -> tuple[str, tuple, Callable[[], Any]]:
            """set_config per row (pg_dump's ``SELECT set_config(name, ...) FROM pg_settings``):
            every value is checked first, then they are set (see effects.py)."""
            if session is None:
                raise PgError("55000", "set_config needs a session")
            _, new = session.check_setting(name, value)
            return new, (new,), lambda: session.set_setting(name, value, bool(local))

        builtins: list[tuple[str, Callable[..., Any], list[str], str, bool]] = [
            ("version", lambda: facts.version.banner, [], "text", False),
            ("current_database", lambda s: s.database if s else "postgres", [], "name", True),
            ("current_user", lambda s: s.user if s else "postgres", [], "name", True),
            ("session_user", lambda s: s.user if s else "postgres", [], "name", True),
            ("current_schema", self._current_schema, [], "name", True),
            ("current_schemas", self._current_schemas, ["bool"], "name[]", True),
            ("pg_backend_pid", lambda s: s.pid if s else 0, [], "int4", True),
            ("pg_is_in_recovery", lambda: False, [], "bool", False),
            ("inet_server_addr", lambda: facts.server_addr, [], "inet", False),
            ("inet_server_port", lambda: facts.server_port, [], "int4", False),
            ("pg_postmaster_start_time", lambda: facts.start_time, [], "timestamptz", False),
            ("pg_current_wal_lsn", lambda: facts.current_lsn(), [], "pg_lsn", False),
            ("pg_current_wal_flush_lsn", lambda: facts.current_lsn(), [], "pg_lsn", False),
            ("pg_current_wal_insert_lsn", lambda: facts.current_lsn(), [], "pg_lsn", False),
            ("current_setting", setting, ["text", "bool"], "text", True),
            ("pg_lsn", _parse_lsn, ["text"], "pg_lsn", False),
            ("pg_wal_lsn_diff", _no_constant, ["pg_lsn", "pg_lsn"], "numeric", False),
            ("pg_last_wal_receive_lsn", lambda: None, [], "pg_lsn", False),
            ("pg_last_wal_replay_lsn", lambda: None, [], "pg_lsn", False),
            ("pg_last_xact_replay_timestamp", lambda: None, [], "timestamptz", False),
            ("pg_database_size", _no_constant, ["name"], "int8", False),
        ]
        for name, fn, args, result, needs_session in builtins:
            self.register_function(name, fn, args, result, needs_session=needs_session)
        self.register_function(
            "set_config", set_config, ["text", "text", "bool"], "text", needs_session=True,
            plan=plan_set_config,
        )  # fmt: skip
        for name, columns in CATALOG_VIEWS.items():
            self.register_view(name, columns, list)
        self.register_view("pg_type", CATALOG_VIEWS["pg_type"], pg_type_rows)
        for name, rows in pg_functions.STATIC_ROWS.items():
            self.register_view(name, CATALOG_VIEWS[name], lambda rows=rows: rows)
        self.register_view("pg_proc", CATALOG_VIEWS["pg_proc"], lambda: self._proc_rows()[0])
        self.register_view(
            "pgshim_function_signatures",
            CATALOG_VIEWS["pgshim_function_signatures"],
            lambda: self._proc_rows()[1],
        )
        for name in ("pg_roles", "pg_user", "pg_authid"):  # without a server: the bootstrap role
            self.register_view(
                name, CATALOG_VIEWS[name], partial(_bootstrap_role, name), needs_session=True
            )
        self.register_view("pg_settings", pg_settings.COLUMNS, pg_settings.rows, needs_session=True)
        self.register_view(
            "pgshim_type_names",
            [("oid", "oid"), ("sql_name", "text"), ("typname", "name")],
            lambda: [(t.oid, t.sql_name, t.name) for t in pgtypes.BY_OID.values()],
        )
        self.register_view(
            "pg_namespace",
            CATALOG_VIEWS["pg_namespace"],
            lambda: [
                pg_functions.catalog_row("pg_namespace", oid=oid, nspname=name, nspowner=10)
                for oid, name in ((11, "pg_catalog"), (2200, "public"))
            ],
        )
        self.register_view(
            "pgshim_session_settings",
            [("name", "text"), ("value", "text")],
            lambda session: list(session.settings().items()) if session is not None else [],
            needs_session=True,
        )
        self.register_view(
            "pgshim_database_sizes",
            [("datname", "name"), ("size", "int8")],
            lambda: list(facts.database_sizes()),
        )


# DuckDB macros behind PostgreSQL functions (and two internal helpers of the rewrite)
_MACROS: dict[str, str] = {
    **pg_functions.MACROS,
    "pg_get_replica_identity_index": (
        "CREATE MACRO pg_get_replica_identity_index(r) AS (SELECT indexrelid FROM pg_index"
        " WHERE indrelid = r AND (indisreplident OR indisprimary)"
        " ORDER BY indisreplident DESC LIMIT 1)"
    ),
    "pg_get_publication_tables": (
        "CREATE MACRO pg_get_publication_tables(p) AS TABLE "
        "SELECT relid, attrs, qual FROM pgshim_publication_rel WHERE pubname = p"
    ),
    # collections are plain tables: in no partition tree, so PostgreSQL answers no rows
    "pg_partition_tree": (
        "CREATE MACRO pg_partition_tree(r) AS TABLE SELECT CAST(r AS UINTEGER) AS relid,"
        " CAST(NULL AS UINTEGER) AS parentrelid, true AS isleaf, 0 AS level WHERE false"
    ),
    # pgshim has no extensions to install
    "pg_available_extensions": (
        "CREATE MACRO pg_available_extensions() AS TABLE SELECT CAST(NULL AS VARCHAR) AS name,"
        " CAST(NULL AS VARCHAR) AS default_version, CAST(NULL AS VARCHAR) AS comment WHERE false"
    ),
    "pg_partition_ancestors": (
        "CREATE MACRO pg_partition_ancestors(r) AS TABLE "
        "SELECT CAST(r AS UINTEGER) AS relid WHERE false"
    ),
    "pgshim_fn_regtype_name": (
        "CREATE MACRO pgshim_fn_regtype_name(t) AS "
        "(SELECT sql_name FROM pgshim_type_names WHERE oid = t)"
    ),
    "pgshim_fn_regtype_names": (
        "CREATE MACRO pgshim_fn_regtype_names(a) AS (SELECT list_transform(a, lambda t:"
        " COALESCE(pgshim_m[t], CAST(t AS VARCHAR))) FROM"
        " (SELECT map(list(oid), list(sql_name)) AS pgshim_m FROM pgshim_type_names))"
    ),
    "pgshim_fn_lsn_text": (
        "CREATE MACRO pgshim_fn_lsn_text(x) AS "
        "printf('%X/%X', x::UBIGINT >> 32, x::UBIGINT & 4294967295::UBIGINT)"
    ),
    # server functions evaluated per row (arguments that are no constants)
    "pgshim_fn_pg_lsn": (
        "CREATE MACRO pgshim_fn_pg_lsn(t) AS "
        "(('0x' || split_part(t, '/', 1))::UBIGINT << 32) | ('0x' || split_part(t, '/', 2))::UBIGINT"
    ),
    "pgshim_fn_pg_wal_lsn_diff": (
        "CREATE MACRO pgshim_fn_pg_wal_lsn_diff(a, b) AS "
        "CAST(CAST(a AS HUGEINT) - CAST(b AS HUGEINT) AS DECIMAL(38, 0))"
    ),
    "pgshim_fn_current_setting": (
        "CREATE MACRO pgshim_fn_current_setting(n, missing_ok) AS CASE WHEN n IS NULL THEN NULL"
        " ELSE COALESCE((SELECT max(s.value) FROM pgshim_session_settings s"
        " WHERE lower(s.name) = lower(n)), CASE WHEN missing_ok THEN NULL"
        " ELSE error('unrecognized configuration parameter \"' || n || '\"') END) END"
    ),
    "pgshim_fn_format_type": "CREATE MACRO pgshim_fn_format_type(t, m) AS pgshim_fn_regtype_name(t)",
    "pgshim_fn_pg_database_size": (
        "CREATE MACRO pgshim_fn_pg_database_size(d) AS "
        "(SELECT COALESCE(max(size), 0) FROM pgshim_database_sizes WHERE datname = d)"
    ),
    # roles pgshim has are superusers or not: a superuser has every role's privileges, any
    # role its own (pg_read_all_stats and the like are no one's)
    "pg_has_role": (
        "CREATE MACRO pg_has_role(r, p) AS COALESCE((SELECT max(s.value) = 'on'"
        " FROM pgshim_session_settings s WHERE s.name = 'is_superuser'), false)"
        " OR r = (SELECT max(s.value) FROM pgshim_session_settings s"
        " WHERE s.name = 'session_authorization')"
    ),
}
_MACRO_NAMES = macro_names(_MACROS.values())
# internal views the per-row macros read
_MACRO_VIEWS: dict[str, list[str]] = {
    "current_setting": ["pgshim_session_settings"],
    "pg_has_role": ["pgshim_session_settings"],
    "pg_database_size": ["pgshim_database_sizes"],
    "pg_get_publication_tables": ["pgshim_publication_rel"],  # in FROM too, not only LATERAL
}
_ENGINE_EVALUATED = {"pg_wal_lsn_diff", "pg_database_size"}  # always the macro: exact numeric
_INTEGER_WIDTH = {21: 0, 23: 1, 20: 2}  # int2, int4, int8
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _listed_table_macro(node: exp.Select) -> exp.Anonymous | None:
    """The call of ``SELECT srf(...)`` (nothing else, no FROM) to a one-column set-returning
    function the engine runs, else None."""
    if node.args.get("from_") is not None or len(node.expressions) != 1:
        return None
    call = node.expressions[0]
    call = call.this if isinstance(call, exp.Alias) else call
    if isinstance(call, exp.Dot) and call.this.name.lower() == "pg_catalog":
        call = call.expression
    if (
        isinstance(call, exp.Anonymous)
        and call.name.lower() in _TABLE_MACROS
        and len(_TABLE_FUNCTIONS[call.name.lower()]) == 1
    ):
        return call
    return None


def _variadic_publication_tables(node: exp.Select) -> exp.Expression | None:
    """The x of a select list that is only ``(pg_get_publication_tables(VARIADIC
    array_agg(x))).*``, else None."""
    if len(node.expressions) != 1:
        return None
    star = node.expressions[0]
    if not (isinstance(star, exp.Dot) and isinstance(star.expression, exp.Star)):
        return None
    call = star.this
    while isinstance(call, exp.Paren):
        call = call.this
    if isinstance(call, exp.Dot) and call.this.name.lower() == "pg_catalog":
        call = call.expression
    if not (
        isinstance(call, exp.Anonymous)
        and call.name.lower() == "pg_get_publication_tables"
        and len(call.expressions) == 1
        and isinstance(call.expressions[0], exp.Variadic)
        and isinstance(call.expressions[0].this, exp.ArrayAgg)
    ):
        return None
    return call.expressions[0].this.this


_CACHED_TEXT = 16_384  # longer texts are parsed each time (the cache holds a few trees)


def _tree(sql: str) -> exp.Expression:
    """The query's tree, to read only (the rewrite changes a copy): parsed once per text
    (tools send the same catalog queries again and again), each time for long texts."""
    return _parse_text(sql) if len(sql) > _CACHED_TEXT else _parsed(sql)


@functools.lru_cache(maxsize=128)
def _parsed(sql: str) -> exp.Expression:
    return _parse_text(sql)


def _parse_text(sql: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(sql, read=_PostgresTypes)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as error:
        raise PgError(
            "0A000", f"pgshim cannot run this query: {str(error).splitlines()[0]}"
        ) from None
    if tree is None:
        raise PgError("42601", "syntax error")
    for node in list(tree.find_all(exp.CurrentSchemas)):  # a server function like others
        args = [node.this] if node.this is not None else []
        node.replace(exp.Anonymous(this="current_schemas", expressions=args))
    for node in tree.find_all(exp.Table):  # check.py let through only views it has
        if node.db.lower() == information_schema.SCHEMA and not node.catalog:
            node.set("db", None)
            node.set("this", exp.to_identifier(information_schema.internal_name(node.name)))
    for node in tree.find_all(exp.Parameter, exp.Placeholder):
        # only $n means a parameter to PostgreSQL (check.py saw the same text); anything
        # else the rewrite took for one (a slice's ":name") it cannot run as PostgreSQL would
        if not (isinstance(node, exp.Parameter) and str(node.this.this).isdigit()):
            raise PgError("0A000", f"pgshim cannot run this query: {node.sql('postgres')}")
    return tree


def _macro_tables(tree: exp.Expression) -> set[str]:
    """The catalog tables read by the catalog macros a query calls."""
    called = {node.name.lower() for node in tree.find_all(exp.Anonymous)}
    if tree.find(exp.Cast) is not None:
        called.update(("pgshim_fn_regclass_in", "pgshim_fn_regclass_out"))
        called.add("pgshim_fn_regnamespace_out")
    if any(_reg_target(cast) == 24 for cast in tree.find_all(exp.Cast)):
        called.add("pgshim_fn_regproc_out")
    return {table for name in called for table in pg_functions.MACRO_TABLES.get(name, ())}


def _bootstrap_role(catalog: str, session: Any) -> list[tuple]:
    """pg_roles / pg_user / pg_authid of a catalog without a server (views.py registers the
    configured users): the session's user, a superuser."""
    from pgshim.sql.providers import authid_rows, role_rows, user_rows

    rows = {"pg_roles": role_rows, "pg_user": user_rows, "pg_authid": authid_rows}[catalog]
    return rows({}, session)


def _proc_type_oid(name: str) -> int:
    try:
        return pgtypes.lookup(name).oid
    except KeyError:
        return {"regnamespace": 4089}.get(name, 25)


def _like_escape(node: exp.Expression) -> list[exp.Expression] | None:
    """The pattern and escape of a like_escape(p, e) call (the parser's form of ESCAPE)."""
    if isinstance(node, exp.Dot) and node.this.name.lower() == "pg_catalog":
        node = node.expression
    if (
        isinstance(node, exp.Anonymous)
        and node.name.lower() == "like_escape"
        and len(node.expressions) == 2
    ):
        return list(node.expressions)
    return None


def _reg_target(node: exp.Cast) -> int | None:
    """_cast_target, knowing regnamespace and regproc too."""
    name = node.to.sql("postgres").lower().replace("pg_catalog.", "")
    if name in _CATALOG_TYPE_OIDS:
        return _CATALOG_TYPE_OIDS[name]
    return _cast_target(node)


_CATALOG_TYPE_OIDS = {"regnamespace": 4089, "regproc": 24}


def _collation_name(node: exp.Collate) -> str:
    collation = node.expression
    return (collation.name if isinstance(collation, exp.Column) else collation.sql()).strip('"')


# regtype values the engine holds as the types' names (see _rewrite_cast)
_HELD_AS_NAMES = {2206: "VARCHAR", 2211: "VARCHAR[]"}
_DEFAULT_COLLATIONS = {"default", "C", "POSIX"}
# regclass / regnamespace -> the macro printing a value's name
_REG_OUTPUT = {2205: "regclass_out", 4089: "regnamespace_out"}
_OPERATORS: dict[str, type[exp.Expression]] = {
    "~": exp.RegexpLike, "~*": exp.RegexpILike, "~~": exp.Like, "~~*": exp.ILike,
    "=": exp.EQ, "<>": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT,
    ">=": exp.GTE, "||": exp.DPipe, "+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div,
}  # fmt: skip


def _is_internal(name: str) -> bool:
    """Tables and macros that serve the rewrite; queries cannot name them."""
    prefixes = ("pgshim_fn_", "pgshim_rows_", information_schema.INTERNAL_PREFIX)
    return name.startswith(prefixes) or name in _INTERNAL_TABLES


# PostgreSQL's catalog tables (not views) pgshim serves: their rows have a tableoid
_CATALOG_TABLES = {
    name: oid
    for name, oid in pg_functions.RELATION_OIDS.items()
    if name not in pg_functions.PG_VIEWS
}
_INTERNAL_TABLES = pg_functions.INTERNAL_TABLES | {
    "pgshim_type_names", "pgshim_publication_rel", "pgshim_session_settings",
    "pgshim_database_sizes",
}  # fmt: skip


def _is_constant(arg: exp.Expression) -> bool:
    """What _constant can evaluate before the engine runs."""
    node = arg
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return isinstance(node, exp.Parameter | exp.Null | exp.Boolean | exp.Literal)


def _misplaced(name: str) -> PgError:
    return PgError(
        "0A000",
        f"pgshim runs {name}() only in FROM or as a whole column of the outer SELECT list",
        hint="A function with a side effect runs exactly once per row of the statement; "
        f"write SELECT {name}(...) FROM ... WHERE ... or SELECT * FROM {name}(...).",
    )


def _parse_lsn(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return pgtypes.parse_lsn(str(text))
    except ValueError:
        raise PgError("22P02", f'invalid input syntax for type pg_lsn: "{text}"') from None


def _no_constant(*_args: Any) -> None:
    raise PgError("XX000", "evaluated by the engine (see _ENGINE_EVALUATED)")


def _temp_table(
    name: str, columns: list[tuple[str, int]], rows: Iterable[tuple], shared: bool = False
) -> TempTable:
    return TempTable(
        name, [(column, duck_type(oid)) for column, oid in columns], [tuple(row) for row in rows],
        shared,
    )  # fmt: skip


def _literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, list):
        return exp.Array(expressions=[_literal(item) for item in value])
    return exp.Literal.string(str(value))


def _is_array_type(oid: int) -> bool:
    pg_type = pgtypes.BY_OID.get(oid)
    return pg_type is not None and pg_type.category == "A" and oid not in (22, 30)


def _array_in(oid: int, text: str) -> list:
    """PostgreSQL's text form of an array ('{1,2}') read as the array type ``oid``."""
    try:
        items = pgtypes.text_in(1009, text)  # the structure, elements as text
    except (ValueError, IndexError, AssertionError):
        raise PgError("22P02", f'malformed array literal: "{text}"') from None
    element = pgtypes.BY_OID[pgtypes.BY_OID[oid].elem_oid]

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(inner) for inner in item]
        try:
            return None if item is None else pgtypes.text_in(element.oid, item)
        except ValueError:
            raise PgError(
                "22P02", f'invalid input syntax for type {element.sql_name}: "{item}"'
            ) from None

    return convert(items)


def _array_literal(value: list) -> exp.Expression:
    """The engine's list of a parsed array (nested for more dimensions)."""
    return exp.Array(
        expressions=[_array_literal(item) if isinstance(item, list) else _literal(item)
                     for item in value]
    )  # fmt: skip


def _value_literal(value: Any) -> exp.Expression:
    if isinstance(value, bytes | bytearray | memoryview):
        return exp.Anonymous(this="from_hex", expressions=[exp.Literal.string(bytes(value).hex())])
    return _literal(value)


def _names_of(collections: CollectionSource) -> tuple[tuple[str, ...], str]:
    """The collections' names (in order: a set's printed order may differ) and schema."""
    return tuple(sorted(collections.names())), collections.schema


def _renumber_params(tree: exp.Expression) -> list[int]:
    """DuckDB wants exactly the parameters the statement still mentions, numbered from $1: the
    tree's parameters are renumbered (server functions may have taken some, e.g. a
    current_setting($1)); the query's numbers of them are returned in the new order."""
    nodes = list(tree.find_all(exp.Parameter))
    used = sorted({int(node.this.this) for node in nodes})
    number = {old: new for new, old in enumerate(used, start=1)}
    for node in nodes:
        node.this.set("this", str(number[int(node.this.this)]))
    return used


def sql_functions(tree: exp.Expression) -> set[str]:
    return {node.name.lower() for node in tree.find_all(exp.Anonymous)}


def _regtype_name(oid: int | None) -> str | None:
    if oid is None:
        return None
    pg_type = pgtypes.BY_OID.get(int(oid))
    return pg_type.sql_name if pg_type else str(oid)


def _format_type(oid: int | None, _typmod: int | None) -> str | None:
    return _regtype_name(oid)


def _internal(name: str) -> str:
    return f"pgshim_fn_{name}"


_SPECIAL_FUNCTIONS: dict[type, str] = {
    exp.CurrentVersion: "version",
    exp.CurrentDatabase: "current_database",
    exp.CurrentUser: "current_user",
    exp.SessionUser: "session_user",
    exp.CurrentSchema: "current_schema",
}

_TABLE_FUNCTIONS: dict[str, list[tuple[str, int]]] = {
    "pg_get_publication_tables": [("relid", 26), ("attrs", 22), ("qual", 25)],
    "pg_partition_tree": [("relid", 2205), ("parentrelid", 2205), ("isleaf", 16), ("level", 23)],
    "pg_partition_ancestors": [("relid", 2205)],
    "pg_available_extensions": [("name", 19), ("default_version", 25), ("comment", 25)],
}
_TABLE_MACROS = frozenset(_TABLE_FUNCTIONS)  # set-returning functions the engine runs

_COLUMN_NAMES: dict[type, str] = {
    exp.CurrentTimestamp: "current_timestamp",
    exp.CurrentVersion: "version",
    exp.CurrentDatabase: "current_database",
    exp.CurrentUser: "current_user",
    exp.SessionUser: "session_user",
    exp.CurrentSchema: "current_schema",
    exp.Coalesce: "coalesce",
    exp.Exists: "exists",
}


def _cast_target(node: exp.Cast) -> int | None:
    target = node.to.sql("postgres").lower().replace("pg_catalog.", "")
    try:
        return pgtypes.lookup(target).oid
    except KeyError:
        return None


def _column_name(projection: exp.Expression) -> str | None:
    """PostgreSQL's FigureColname."""
    if isinstance(projection, exp.Alias):
        return projection.alias
    return _figure_colname(projection)[0]


def _figure_colname(node: exp.Expression) -> tuple[str, int]:
    """A column's name and how strongly it holds (PostgreSQL's FigureColnameInternal: 2 for
    a column's or function's name, 1 for a cast's type or "case", 0 for none)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        node = node.expression
    if isinstance(node, exp.Column):
        return node.name, 2
    if isinstance(node, exp.Cast):
        name, strength = _figure_colname(node.this)
        if strength > 1:
            return name, strength
        target = _cast_target(node)
        if target is None:
            return node.to.sql("postgres").lower(), 1
        written = pgtypes.BY_OID[target]  # the type's last name: an array's is its element's
        if written.sql_name.endswith("[]"):
            written = pgtypes.BY_OID[written.elem_oid]
        return written.name, 1
    if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Select):
        return _column_name(node.this.expressions[0]) or "?column?", 2  # (SELECT x ...)
    if isinstance(node, exp.Case):
        default = node.args.get("default")
        name, strength = _figure_colname(default) if default is not None else ("", 0)
        return (name, strength) if strength > 1 else ("case", 1)
    if type(node) in _COLUMN_NAMES:
        return _COLUMN_NAMES[type(node)], 2
    if isinstance(node, exp.Anonymous):
        return node.name.lower(), 2
    if isinstance(node, exp.Func) and not isinstance(node, exp.Binary | exp.Unary):
        return node.sql_name().lower(), 2
    return "?column?", 0


def _any_operand(parameter: exp.Expression) -> exp.Expression | None:
    """The other operand of the comparison whose ANY(...) or ALL(...) is the parameter."""
    node = parameter.parent
    while isinstance(node, exp.Paren):
        node = node.parent
    if node is None or _quantified_array(node) is not parameter:
        return None
    return _compared_with(node)


def _is_regtype(node: exp.Expression) -> bool:
    node = node.unnest()
    return isinstance(node, exp.Cast) and _cast_target(node) == 2206


def _is_regtype_literal(node: exp.Expression) -> bool:
    """'name'::regtype"""
    return (
        _is_regtype(node)
        and isinstance(node.unnest().this, exp.Literal)
        and node.unnest().this.is_string
    )


def _quantified_array(node: exp.Expression) -> exp.Expression | None:
    """The array of ANY(array) or ALL(array) (sqlglot reads ALL(...) as a call)."""
    if isinstance(node, exp.Any):
        return node.this.unnest()
    if isinstance(node, exp.Anonymous) and node.name.lower() == "all" and node.expressions:
        return node.expressions[0].unnest()
    return None


def _compared_with(quantified: exp.Expression) -> exp.Expression | None:
    """The other side of the comparison an ANY(...) or ALL(...) is the right side of."""
    comparison = quantified.parent
    if not isinstance(comparison, exp.Binary):
        return None
    return comparison.left if comparison.right is quantified else comparison.right


def _array_oid(elem_oid: int | None) -> int:
    """The array type of a type (0 when it has none)."""
    return next(
        (t.oid for t in pgtypes.BY_OID.values()
         if t.category == "A" and t.elem_oid == elem_oid and t.oid not in (22, 30)),
        0,
    )  # fmt: skip


def _unique_source_type(sources: dict[str, dict[str, int]], column: str) -> int | None:
    found = [columns[column] for columns in sources.values() if column in columns]
    return found[0] if len(found) == 1 else None


# PostgreSQL 15 catalog views with their exact column types; rows come from the server's providers.
CATALOG_VIEWS: dict[str, list[tuple[str, str]]] = {
    "pg_stat_replication": [
        ("pid", "int4"),
        ("usesysid", "oid"),
        ("usename", "name"),
        ("application_name", "text"),
        ("client_addr", "inet"),
        ("client_hostname", "text"),
        ("client_port", "int4"),
        ("backend_start", "timestamptz"),
        ("backend_xmin", "xid"),
        ("state", "text"),
        ("sent_lsn", "pg_lsn"),
        ("write_lsn", "pg_lsn"),
        ("flush_lsn", "pg_lsn"),
        ("replay_lsn", "pg_lsn"),
        ("write_lag", "interval"),
        ("flush_lag", "interval"),
        ("replay_lag", "interval"),
        ("sync_priority", "int4"),
        ("sync_state", "text"),
        ("reply_time", "timestamptz"),
    ],
    "pg_replication_slots": [
        ("slot_name", "name"),
        ("plugin", "name"),
        ("slot_type", "text"),
        ("datoid", "oid"),
        ("database", "name"),
        ("temporary", "bool"),
        ("active", "bool"),
        ("active_pid", "int4"),
        ("xmin", "xid"),
        ("catalog_xmin", "xid"),
        ("restart_lsn", "pg_lsn"),
        ("confirmed_flush_lsn", "pg_lsn"),
        ("wal_status", "text"),
        ("safe_wal_size", "int8"),
        ("two_phase", "bool"),
    ],
    "pg_stat_replication_slots": [
        ("slot_name", "text"),
        ("spill_txns", "int8"),
        ("spill_count", "int8"),
        ("spill_bytes", "int8"),
        ("stream_txns", "int8"),
        ("stream_count", "int8"),
        ("stream_bytes", "int8"),
        ("total_txns", "int8"),
        ("total_bytes", "int8"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_publication_tables": [
        ("pubname", "name"),
        ("schemaname", "name"),
        ("tablename", "name"),
        ("attnames", "name[]"),
        ("rowfilter", "text"),
    ],
    # statistics views (PostgreSQL 15's columns; pgshim/sql/statistics.py fills them)
    "pg_stat_database": [
        ("datid", "oid"),
        ("datname", "name"),
        ("numbackends", "int4"),
        ("xact_commit", "int8"),
        ("xact_rollback", "int8"),
        ("blks_read", "int8"),
        ("blks_hit", "int8"),
        ("tup_returned", "int8"),
        ("tup_fetched", "int8"),
        ("tup_inserted", "int8"),
        ("tup_updated", "int8"),
        ("tup_deleted", "int8"),
        ("conflicts", "int8"),
        ("temp_files", "int8"),
        ("temp_bytes", "int8"),
        ("deadlocks", "int8"),
        ("checksum_failures", "int8"),
        ("checksum_last_failure", "timestamptz"),
        ("blk_read_time", "float8"),
        ("blk_write_time", "float8"),
        ("session_time", "float8"),
        ("active_time", "float8"),
        ("idle_in_transaction_time", "float8"),
        ("sessions", "int8"),
        ("sessions_abandoned", "int8"),
        ("sessions_fatal", "int8"),
        ("sessions_killed", "int8"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_stat_database_conflicts": [
        ("datid", "oid"),
        ("datname", "name"),
        ("confl_tablespace", "int8"),
        ("confl_lock", "int8"),
        ("confl_snapshot", "int8"),
        ("confl_bufferpin", "int8"),
        ("confl_deadlock", "int8"),
    ],
    "pg_stat_bgwriter": [
        ("checkpoints_timed", "int8"),
        ("checkpoints_req", "int8"),
        ("checkpoint_write_time", "float8"),
        ("checkpoint_sync_time", "float8"),
        ("buffers_checkpoint", "int8"),
        ("buffers_clean", "int8"),
        ("maxwritten_clean", "int8"),
        ("buffers_backend", "int8"),
        ("buffers_backend_fsync", "int8"),
        ("buffers_alloc", "int8"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_stat_wal": [
        ("wal_records", "int8"),
        ("wal_fpi", "int8"),
        ("wal_bytes", "numeric"),
        ("wal_buffers_full", "int8"),
        ("wal_write", "int8"),
        ("wal_sync", "int8"),
        ("wal_write_time", "float8"),
        ("wal_sync_time", "float8"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_stat_subscription_stats": [
        ("subid", "oid"),
        ("subname", "name"),
        ("apply_error_count", "int8"),
        ("sync_error_count", "int8"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_stat_archiver": [
        ("archived_count", "int8"),
        ("last_archived_wal", "text"),
        ("last_archived_time", "timestamptz"),
        ("failed_count", "int8"),
        ("last_failed_wal", "text"),
        ("last_failed_time", "timestamptz"),
        ("stats_reset", "timestamptz"),
    ],
    "pg_stat_activity": [
        ("datid", "oid"),
        ("datname", "name"),
        ("pid", "int4"),
        ("leader_pid", "int4"),
        ("usesysid", "oid"),
        ("usename", "name"),
        ("application_name", "text"),
        ("client_addr", "inet"),
        ("client_hostname", "text"),
        ("client_port", "int4"),
        ("backend_start", "timestamptz"),
        ("xact_start", "timestamptz"),
        ("query_start", "timestamptz"),
        ("state_change", "timestamptz"),
        ("wait_event_type", "text"),
        ("wait_event", "text"),
        ("state", "text"),
        ("backend_xid", "xid"),
        ("backend_xmin", "xid"),
        ("query_id", "int8"),
        ("query", "text"),
        ("backend_type", "text"),
    ],
    "pg_locks": [
        ("locktype", "text"),
        ("database", "oid"),
        ("relation", "oid"),
        ("page", "int4"),
        ("tuple", "int2"),
        ("virtualxid", "text"),
        ("transactionid", "xid"),
        ("classid", "oid"),
        ("objid", "oid"),
        ("objsubid", "int2"),
        ("virtualtransaction", "text"),
        ("pid", "int4"),
        ("mode", "text"),
        ("granted", "bool"),
        ("fastpath", "bool"),
        ("waitstart", "timestamptz"),
    ],
    # backs pg_get_publication_tables(pubname): one row per (publication, table)
    "pgshim_publication_rel": [
        ("pubname", "name"),
        ("relid", "oid"),
        ("attrs", "int2vector"),
        ("qual", "text"),
    ],
    # PostgreSQL 15's catalogs (all their columns) behind psql's and drivers' introspection
    **PG15_COLUMNS,
    # back pg_get_indexdef, pg_get_constraintdef and pg_get_function_result/arguments
    "pgshim_index_definitions": [
        ("indexrelid", "oid"),
        ("definition", "text"),
        ("columns", "_text"),
    ],
    "pgshim_constraint_definitions": [("oid", "oid"), ("definition", "text")],
    "pgshim_function_signatures": [("oid", "oid"), ("result", "text"), ("arguments", "text")],
}
