"""Server functions with a side effect (creating and dropping slots) run exactly once per row of
the statement that calls them, and only when the statement succeeds.

Such a call may stand in FROM (``SELECT * FROM pg_create_logical_replication_slot('s', 'p')``:
called once, its constant arguments known before the engine runs) or be a whole column of the
outer SELECT list (``SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE
...``: called once per row). The engine runs the statement with each such column replaced by a
placeholder and its arguments as extra columns; once every row is there, each call is planned
(privileges, existence, names: everything that can fail is checked, for all rows) and only then
are they done, in row order, and the results put in place. Anywhere else (a WHERE clause, a
subquery, an expression around the call) the number of calls would be the engine's choice, so
pgshim refuses it with 0A000.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from pgshim.errors import PgError
from pgshim.sql.bounds import Bound

if TYPE_CHECKING:
    from pgshim.sql.catalog import Catalog, _Function
    from pgshim.sql.results import RowSource

FETCH = 1000


class Effects:
    def __init__(self, catalog: Catalog, tree: exp.Expression, session: Any) -> None:
        self.catalog = catalog
        self.tree = tree
        self.session = session
        self.planned: dict[str, Any] = {}  # what earlier calls of the statement will do
        self.commits: list[Callable[[], Any]] = []  # calls in FROM, planned before the engine
        self.calls = self._select_list_calls(tree)  # (column index, function)
        self.width = len(tree.expressions) if isinstance(tree, exp.Select) else 0

    def visible(self, columns: list) -> list:
        """The statement's own columns (without the arguments appended for the engine)."""
        return columns[: self.width] if self.calls else columns

    def __bool__(self) -> bool:
        return bool(self.calls or self.commits)

    def _function(self, node: exp.Expression) -> _Function | None:
        if isinstance(node, exp.Dot) and node.this.name.lower() == "pg_catalog":
            node = node.expression
        if isinstance(node, exp.Anonymous):
            function = self.catalog._functions.get(node.name.lower())
            if function is not None and function.plan is not None:
                return function
        return None

    def _select_list_calls(self, tree: exp.Expression) -> list[tuple[int, _Function]]:
        if not isinstance(tree, exp.Select):
            return []
        calls = []
        for index, projection in enumerate(tree.expressions):
            node = projection.this if isinstance(projection, exp.Alias) else projection
            function = self._function(node)
            if function is not None:
                calls.append((index, function))
        if calls and tree.args.get("distinct") is not None:
            raise PgError("0A000", f"pgshim cannot run {calls[0][1].name}() in SELECT DISTINCT")
        if calls and any(
            isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star)
            for p in tree.expressions
        ):
            raise PgError(
                "0A000",
                f"pgshim cannot run {calls[0][1].name}() next to * in a SELECT list",
                hint="Name the columns you want.",
            )
        return calls

    def plan_once(self, function: _Function, values: list) -> tuple:
        """A call in FROM: planned now, done once the engine produced every row."""
        _value, row, commit = self._plan(function, values)
        self.commits.append(commit)
        return row

    def _plan(self, function: _Function, values: list | tuple) -> tuple[Any, tuple, Callable]:
        assert function.plan is not None
        return function.plan(self.session, self.planned, *values)

    def engine_tree(self) -> exp.Expression:
        """The statement the engine runs: each call in the SELECT list replaced by a placeholder
        of its type, its arguments appended as extra columns (after ``width``)."""
        work = self.tree.copy()
        if not self.calls:
            return work
        from pgshim.sql.catalog import duck_type

        self._arguments: list[tuple[int, int]] = []  # (first extra column, how many)
        extra = self.width
        for index, function in self.calls:
            projection = work.expressions[index]
            node = projection.this if isinstance(projection, exp.Alias) else projection
            call = node.expression if isinstance(node, exp.Dot) else node
            args = list(call.expressions)
            placeholder = exp.Cast(
                this=exp.Null(), to=exp.DataType.build(duck_type(function.return_oid), "duckdb")
            )
            node.replace(placeholder)
            for position, arg in enumerate(args):
                work.append("expressions", exp.alias_(arg, f"pgshim_arg_{index}_{position}"))
            self._arguments.append((extra, len(args)))
            extra += len(args)
        return work

    async def run(self, cursor: RowSource, bound: Bound) -> list[tuple]:
        """Every row first; then plan every call, then do them; the rows with their results."""
        rows: list[tuple] = []
        try:
            while batch := await cursor.fetch(FETCH):
                rows.extend(batch)
                bound.check()
        finally:
            cursor.close()
        commits: list[Callable[[], Any]] = []
        done: list[tuple] = []
        for row in rows:
            if not self.calls:
                done.append(tuple(row))
                continue
            out = list(row[: self.width])
            for (index, function), (first, count) in zip(self.calls, self._arguments, strict=True):
                value, _row, commit = self._plan(function, row[first : first + count])
                out[index] = value
                commits.append(commit)
            done.append(tuple(out))
        for commit in [*self.commits, *commits]:
            commit()
        return done
