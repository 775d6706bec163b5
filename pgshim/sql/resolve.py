"""Column and table references checked against the relations a query reads (pure).

PostgreSQL resolves every name while it analyses a query, before anything runs, and reports an
unknown or ambiguous one with its position and, where a name is close to one it knows, a hint.
This walk does the same over pglast's tree wherever the columns in reach are known (pgshim's
views, the collections, CTEs and subqueries whose output names are plain); where they are not, it
stays silent and the engine's error is translated instead (engine_errors.py). Where the types are
certain (a column's, a number's, a cast's) it also refuses what PostgreSQL's analysis refuses but
the engine would cast implicitly: an operator between kinds of types that have none, a condition
that is not boolean, a set operation's columns of kinds no type holds both of.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pglast import ast, enums

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.sql.constants import constant_location

# (schema or None, relation name) -> its columns (name, type oid), None when it is not a
# relation pgshim knows
ColumnLookup = Callable[[str | None, str], tuple[tuple[str, int], ...] | None]

# names a table's row carries beyond its columns: never reported as missing
SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
_MAX_FUZZY_DISTANCE = 3  # parse_relation.c


@dataclass(eq=False)
class _Item:
    """A FROM item: PostgreSQL's range-table entry."""

    name: str  # its reference name (alias, else the relation's name)
    relname: str | None
    aliased: bool
    columns: tuple[str, ...] | None  # None: not known here
    types: dict[str, int] = field(default_factory=dict)  # of a relation's columns


@dataclass
class _Level:
    """One query level: the FROM items analysed so far and those an expression may name."""

    rtable: list[_Item] = field(default_factory=list)
    visible: list[_Item] = field(default_factory=list)
    merged: set[str] = field(default_factory=set)  # USING / NATURAL columns: not ambiguous
    outputs: tuple[str, ...] | None = ()  # output column names (ORDER BY may name them)


def check_references(node: ast.SelectStmt, columns: ColumnLookup, source: str = "") -> None:
    """Raise PostgreSQL's error for a column or FROM-clause reference that names nothing (or
    more than one thing) in reach, or of a type PostgreSQL refuses where it stands; positions
    are 1-based into the statement's text (``source``)."""
    _Resolver(columns, source, node).select(node, [], {})


class _Resolver:
    def __init__(
        self, columns: ColumnLookup, source: str = "", root: ast.Node | None = None
    ) -> None:
        self.columns = columns
        self.source = source  # the statement's text, for the positions of constants
        self.root = root  # the statement's tree
        self.output_types: dict[int, list[int | None]] = {}  # id(SELECT) -> its columns' types

    # --- query levels -------------------------------------------------------------------------

    def select(
        self, node: ast.SelectStmt, parents: list[_Level], ctes: dict[str, tuple[str, ...] | None]
    ) -> tuple[str, ...] | None:
        """Check one SELECT (or set operation, or VALUES); its output column names."""
        ctes = self._with(node.withClause, parents, ctes) if node.withClause else ctes
        if node.op != enums.SetOperation.SETOP_NONE:
            left = self.select(node.larg, parents, ctes)
            self.select(node.rarg, parents, ctes)
            self._set_types(node)
            return left
        level = _Level()
        scopes = [*parents, level]
        if node.valuesLists:
            for row in node.valuesLists:
                self.expression(row, scopes, ctes)
            width = len(node.valuesLists[0])
            return tuple(f"column{index}" for index in range(1, width + 1))
        for item in node.fromClause or ():
            level.visible += self.from_item(item, level, parents, ctes)
        level.outputs = self._outputs(node.targetList or (), level)
        for target in node.targetList or ():
            value = target.val
            bare_star = isinstance(value, ast.ColumnRef) and value.fields == (ast.A_Star(),)
            if bare_star and not level.rtable:
                raise PgError(
                    "42601",
                    "SELECT * with no tables specified is not valid",
                    position=_location(value),
                )
            self.expression(target.val, scopes, ctes)
        if level.outputs is not None:
            self.output_types[id(node)] = [self._type(t.val, scopes) for t in node.targetList or ()]
        self.expression(node.whereClause, scopes, ctes)
        self._boolean(node.whereClause, "WHERE", scopes)
        self.expression(node.havingClause, scopes, ctes)
        self._boolean(node.havingClause, "HAVING", scopes)
        for sort in node.sortClause or ():
            self.output_or_expression(sort.node, scopes, ctes)
        for group in node.groupClause or ():
            self.output_or_expression(group, scopes, ctes)
        for distinct in node.distinctClause or ():
            if distinct is not None:
                self.output_or_expression(distinct, scopes, ctes)
        self.expression(node.limitOffset, scopes, ctes)
        self.expression(node.limitCount, scopes, ctes)
        self.expression(node.windowClause, scopes, ctes)
        return level.outputs

    def _with(
        self,
        clause: ast.WithClause,
        parents: list[_Level],
        ctes: dict[str, tuple[str, ...] | None],
    ) -> dict[str, tuple[str, ...] | None]:
        ctes = dict(ctes)
        for cte in clause.ctes:
            if clause.recursive:
                ctes[cte.ctename] = None
            query = cte.ctequery
            found = (
                self.select(query, [*parents, _Level()], ctes)
                if isinstance(query, ast.SelectStmt)
                else None
            )
            ctes[cte.ctename] = _renamed(found, cte.aliascolnames)
        return ctes

    def from_item(
        self,
        item: ast.Node,
        level: _Level,
        parents: list[_Level],
        ctes: dict[str, tuple[str, ...] | None],
    ) -> list[_Item]:
        """Add a FROM item (and what it joins) to the level; the items it makes visible."""
        if isinstance(item, ast.RangeVar):
            columns, types = None, {}
            if item.catalogname is None:
                if item.schemaname is None and item.relname in ctes:
                    columns = ctes[item.relname]
                else:
                    typed = self.columns(item.schemaname, item.relname)
                    if typed is not None:
                        columns, types = tuple(name for name, _ in typed), dict(typed)
            entry = self._add(level, item.alias, item.relname, columns)
            if not (item.alias and item.alias.colnames):
                entry.types = types
            return [entry]
        if isinstance(item, ast.RangeSubselect):
            if item.alias is None:
                raise PgError(
                    "42601",
                    "subquery in FROM must have an alias",
                    hint="For example, FROM (SELECT ...) [AS] foo.",
                    position=_location(item.subquery),
                )
            # PostgreSQL's hints look through the items analysed so far; LATERAL may name them
            sibling = _Level(list(level.rtable), list(level.rtable) if item.lateral else [])
            columns = self.select(item.subquery, [*parents, sibling], ctes)
            return [self._add(level, item.alias, None, columns)]
        if isinstance(item, ast.JoinExpr):
            left = self.from_item(item.larg, level, parents, ctes)
            right = self.from_item(item.rarg, level, parents, ctes)
            joined = left + right
            if item.usingClause:
                names = [name.sval for name in item.usingClause]
                self._check_using(names, left, "left")
                self._check_using(names, right, "right")
                level.merged.update(names)
            if item.isNatural:
                level.merged.update(_natural(left, right))
            if item.quals is not None:
                on = _Level(level.rtable, joined, level.merged, level.outputs)
                self.expression(item.quals, [*parents, on], ctes)
                self._boolean(item.quals, "JOIN/ON", [*parents, on])
            if item.alias is not None:  # the joined items are known by the join's name only
                return [self._add(level, item.alias, None, None)]
            return joined
        if isinstance(item, ast.RangeFunction):
            lateral = _Level(list(level.rtable), list(level.rtable))  # implicitly LATERAL
            self.expression(item.functions, [*parents, lateral], ctes)
            columns = None
            if item.coldeflist:
                columns = tuple(column.colname for column in item.coldeflist)
            return [self._add(level, item.alias, _function_name(item), columns, rename=False)]
        return [self._add(level, None, None, None)]

    def _add(
        self,
        level: _Level,
        alias: ast.Alias | None,
        relname: str | None,
        columns: tuple[str, ...] | None,
        rename: bool = True,
    ) -> _Item:
        if alias is not None and rename:
            columns = _renamed(columns, alias.colnames)
        name = alias.aliasname if alias is not None else (relname or "")
        entry = _Item(name, relname, alias is not None, columns)
        level.rtable.append(entry)
        return entry

    def _check_using(self, names: list[str], items: list[_Item], side: str) -> None:
        if any(item.columns is None for item in items):
            return
        for name in names:
            if not any(name in item.columns for item in items if item.columns is not None):
                raise PgError(
                    "42703",
                    f'column "{name}" specified in USING clause does not exist in {side} table',
                )

    def _outputs(self, targets: tuple, level: _Level) -> tuple[str, ...] | None:
        names: list[str] = []
        for target in targets:
            value = target.val
            if target.name is not None:
                names.append(target.name)
            elif isinstance(value, ast.ColumnRef) and _is_star(value):
                expanded = self._star(value, level)
                if expanded is None:
                    return None
                names += expanded
            else:
                name = _figure_colname(value)
                if name is None:
                    return None
                names.append(name)
        return tuple(names)

    def _star(self, ref: ast.ColumnRef, level: _Level) -> list[str] | None:
        if level.merged:
            return None
        if len(ref.fields) == 1:
            items = level.visible
        else:
            items = [item for item in level.visible if item.name == _field(ref.fields[0])]
        if not items or any(item.columns is None for item in items):
            return None
        return [column for item in items for column in item.columns or ()]

    # --- expressions --------------------------------------------------------------------------

    def output_or_expression(
        self, node: object, scopes: list[_Level], ctes: dict[str, tuple[str, ...] | None]
    ) -> None:
        """ORDER BY, GROUP BY and DISTINCT ON items: a bare name may be an output column."""
        if isinstance(node, ast.GroupingSet):  # ROLLUP (a, b) and the like: each item alike
            for item in node.content or ():
                self.output_or_expression(item, scopes, ctes)
            return
        if isinstance(node, ast.ColumnRef) and len(node.fields) == 1:
            outputs = scopes[-1].outputs
            name = _field(node.fields[0])
            if outputs is None or name in outputs:
                return
        self.expression(node, scopes, ctes)

    def expression(
        self, node: object, scopes: list[_Level], ctes: dict[str, tuple[str, ...] | None]
    ) -> None:
        if isinstance(node, tuple | list):
            for item in node:
                self.expression(item, scopes, ctes)
            return
        if not isinstance(node, ast.Node):
            return
        if isinstance(node, ast.SelectStmt):
            self.select(node, scopes, ctes)
            return
        if isinstance(node, ast.ColumnRef):
            self.column_ref(node, scopes)
            return
        for child in _children(node):
            self.expression(child, scopes, ctes)
        if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
            self._operator(node, scopes)

    def _boolean(self, node: object, clause: str, scopes: list[_Level]) -> None:
        """42804 for a WHERE, HAVING or ON condition of a type known not to be boolean."""
        found = self._type(node, scopes) if node is not None else None
        if found is not None and found != 16 and found in pgtypes.BY_OID:
            name = pgtypes.BY_OID[found].sql_name
            raise PgError(
                "42804",
                f"argument of {clause} must be type boolean, not type {name}",
                position=self._position(node),
            )

    def _set_types(self, node: ast.SelectStmt) -> None:
        """42804 for a set operation's columns of kinds no type can hold both of."""
        left = self.output_types.get(id(node.larg))
        right = self.output_types.get(id(node.rarg))
        if left is None or right is None or len(left) != len(right):
            return
        self.output_types[id(node)] = left
        targets = node.rarg.targetList if node.rarg.op == enums.SetOperation.SETOP_NONE else None
        for index, (one, other) in enumerate(zip(left, right, strict=True)):
            kinds = (_CATEGORIES.get(one or 0), _CATEGORIES.get(other or 0))
            if None in kinds or kinds[0] == kinds[1]:
                continue
            assert one is not None and other is not None
            operation = enums.SetOperation(node.op).name.removeprefix("SETOP_")
            names = f"{pgtypes.BY_OID[one].sql_name} and {pgtypes.BY_OID[other].sql_name}"
            raise PgError(
                "42804",
                f"{operation} types {names} cannot be matched",
                position=self._position(targets[index].val) if targets else None,
            )

    def _position(self, node: object) -> int | None:
        """Where a node starts in the statement (constants: found by value, if unique)."""
        if isinstance(node, ast.A_Const) and self.source:
            value = node.val
            kind = {ast.Integer: "ival", ast.Float: "fval", ast.String: "sval"}.get(type(value))
            if kind is None:
                return None
            wanted = getattr(value, kind)
            alike = [
                other for other in _walk(self.root)
                if isinstance(other, ast.A_Const) and type(other.val) is type(value)
                and getattr(other.val, kind) == wanted
            ]  # fmt: skip
            index = next(i for i, other in enumerate(alike) if other is node)
            found = constant_location(self.source, kind, wanted, index, len(alike))
            return None if found is None else found + 1
        if isinstance(node, ast.TypeCast):  # PostgreSQL's exprLocation: the leftmost part
            places = [p for p in (self._position(node.arg), _location(node)) if p is not None]
            return min(places) if places else None
        return _location(node)

    def _operator(self, node: ast.A_Expr, scopes: list[_Level]) -> None:
        """42883 for an operator PostgreSQL has not for these types (a text column compared
        with a number, ...), which the engine would cast implicitly instead."""
        if len(node.name) != 1 or node.lexpr is None or node.rexpr is None:
            return
        op = node.name[0].sval
        left, right = self._type(node.lexpr, scopes), self._type(node.rexpr, scopes)
        if left is None or right is None:
            return
        kinds = (_CATEGORIES.get(left), _CATEGORIES.get(right))
        if None in kinds or kinds[0] == kinds[1]:
            return
        if op in _COMPARISONS or (op in _ARITHMETIC and "datetime" not in kinds):
            names = " ".join((pgtypes.BY_OID[left].sql_name, op, pgtypes.BY_OID[right].sql_name))
            raise PgError(
                "42883",
                f"operator does not exist: {names}",
                hint="No operator matches the given name and argument types. "
                "You might need to add explicit type casts.",
                position=_location(node),
            )

    def _type(self, node: object, scopes: list[_Level]) -> int | None:
        """The type of a column or number, where it is certain; None otherwise."""
        if isinstance(node, ast.A_Const):
            if isinstance(node.val, ast.Integer):
                return 23
            if isinstance(node.val, ast.Float):
                return 20 if node.val.fval.isdigit() and int(node.val.fval) < 2**63 else 1700
            if isinstance(node.val, ast.Boolean):
                return 16
            return None
        if isinstance(node, ast.TypeCast) and node.typeName is not None:
            names = node.typeName.names or ()
            if node.typeName.arrayBounds or not names or len(names) > 2:
                return None
            try:
                return pgtypes.lookup(names[-1].sval).oid
            except KeyError:
                return None
        if not isinstance(node, ast.ColumnRef):
            return None
        fields = [_field(part) for part in node.fields]
        if None in fields or len(fields) > 2:
            return None
        if len(fields) == 2:
            item = _find_item(fields[0] or "", scopes)
            return item.types.get(fields[1] or "") if item is not None else None
        name = fields[0] or ""
        for level in reversed(scopes):
            if name in level.merged:
                return None
            matches = [
                item for item in level.visible if item.columns is not None and name in item.columns
            ]
            if len(matches) == 1:
                return matches[0].types.get(name)
            if matches or any(item.columns is None for item in level.visible):
                return None
        return None

    def column_ref(self, ref: ast.ColumnRef, scopes: list[_Level]) -> None:
        fields = [_field(part) for part in ref.fields]
        if any(part is None for part in fields[:-1]) or len(fields) > 2:
            return  # schema.table.column and indirection are left to the engine
        position = _location(ref)
        if len(fields) == 1:
            if fields[0] is not None:
                self._unqualified(fields[0], scopes, position)
            return
        table, column = fields
        assert table is not None
        item = _find_item(table, scopes)
        if item is None:
            self._missing_table(table, scopes, position)
            return
        if column is None or item.columns is None or column in item.columns:
            return
        if column in SYSTEM_COLUMNS and item.relname is not None:
            return
        if not _all_known(scopes):
            return
        hint = _fuzzy_hint(scopes, table, column)
        raise PgError(
            "42703", f"column {table}.{column} does not exist", hint=hint, position=position
        )

    def _unqualified(self, name: str, scopes: list[_Level], position: int | None) -> None:
        for level in reversed(scopes):
            matches = [
                item for item in level.visible if item.columns is not None and name in item.columns
            ]
            if len(matches) > 1 and name not in level.merged:
                raise PgError("42702", f'column reference "{name}" is ambiguous', position=position)
            if matches:
                return
            if any(item.columns is None for item in level.visible):
                return
        if name in SYSTEM_COLUMNS or _find_item(name, scopes) is not None:
            return  # a system column, or a whole-row reference
        if not _all_known(scopes):
            return
        raise PgError(
            "42703",
            f'column "{name}" does not exist',
            hint=_fuzzy_hint(scopes, None, name),
            position=position,
        )

    def _missing_table(self, table: str, scopes: list[_Level], position: int | None) -> None:
        """errorMissingRTE, where a column of that name cannot be meant instead."""
        for level in scopes:
            for item in level.visible:
                if item.columns is None or table in item.columns:
                    return  # perhaps a composite column's field
        for level in reversed(scopes):
            for item in level.rtable:
                if item.name == table or item.relname == table:
                    visible = _find_item(item.name, scopes) is item
                    if item.aliased and item.name != table and visible:
                        raise PgError(
                            "42P01",
                            f'invalid reference to FROM-clause entry for table "{table}"',
                            hint=f'Perhaps you meant to reference the table alias "{item.name}".',
                            position=position,
                        )
                    return  # in reach only with LATERAL, or elsewhere: left to the engine
        raise PgError("42P01", f'missing FROM-clause entry for table "{table}"', position=position)


# --- PostgreSQL's rules, as functions ---------------------------------------------------------


_CATEGORIES = {
    **dict.fromkeys((25, 1043, 19, 1042), "string"),
    **dict.fromkeys((21, 23, 20, 700, 701, 1700), "numeric"),
    16: "boolean",
    **dict.fromkeys((1082, 1114, 1184), "datetime"),
}
_COMPARISONS = frozenset({"=", "<>", "<", ">", "<=", ">="})
_ARITHMETIC = frozenset({"+", "-", "*", "/"})


def _find_item(name: str, scopes: list[_Level]) -> _Item | None:
    for level in reversed(scopes):
        for item in level.visible:
            if item.name == name:
                return item
    return None


def _all_known(scopes: list[_Level]) -> bool:
    return all(item.columns is not None for level in scopes for item in level.rtable)


def _fuzzy_hint(scopes: list[_Level], alias: str | None, column: str) -> str | None:
    """errorMissingColumn's hint: the closest column(s) by Levenshtein distance."""
    distance = _MAX_FUZZY_DISTANCE + 1
    first: tuple[_Item, str | None] | None = None
    second: tuple[_Item, str] | None = None
    for level in reversed(scopes):
        for item in level.rtable:
            penalty = 0 if alias is None else _levenshtein(alias, item.name)
            exact = False
            for actual in item.columns or ():
                exact = exact or actual == column
                if penalty > distance:
                    continue
                found = _levenshtein(actual, column)
                if found > len(column) // 2:
                    continue
                found += penalty
                if found < distance:
                    distance, first, second = found, (item, actual), None
                elif found == distance:
                    if second is not None:
                        first, second, distance = None, None, found - 1
                    elif first is not None and first[1] is not None:
                        second = (item, actual)
                    elif distance <= _MAX_FUZZY_DISTANCE:
                        first = (item, actual)
            if exact and penalty == 0:
                first, second = (item, None), None
                break
        else:
            continue
        break
    if first is None:
        return None
    if second is not None:
        return (
            f'Perhaps you meant to reference the column "{first[0].name}.{first[1]}" or the '
            f'column "{second[0].name}.{second[1]}".'
        )
    if first[1] is None:
        return (
            f'There is a column named "{column}" in table "{first[0].name}", but it cannot be '
            "referenced from this part of the query."
        )
    return f'Perhaps you meant to reference the column "{first[0].name}.{first[1]}".'


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _figure_colname(node: object) -> str | None:
    """FigureColname: the name PostgreSQL gives an output column (None: not worked out here)."""
    if isinstance(node, ast.ColumnRef):
        return _field(node.fields[-1])
    if isinstance(node, ast.FuncCall):
        return node.funcname[-1].sval
    if isinstance(node, ast.TypeCast):
        inner = _figure_colname(node.arg)
        if inner != "?column?":
            return inner
        names = node.typeName.names if node.typeName is not None else None
        return names[-1].sval if names else None
    if isinstance(node, ast.CollateClause):
        return _figure_colname(node.arg)
    if isinstance(node, ast.CaseExpr):
        inner = _figure_colname(node.defresult) if node.defresult is not None else "?column?"
        return "case" if inner == "?column?" else inner
    if isinstance(node, ast.SubLink):
        kind = enums.SubLinkType
        if node.subLinkType == kind.EXISTS_SUBLINK:
            return "exists"
        if node.subLinkType == kind.ARRAY_SUBLINK:
            return "array"
        if node.subLinkType == kind.EXPR_SUBLINK:
            targets = getattr(node.subselect, "targetList", None)
            if not targets:
                return None
            return targets[0].name or _figure_colname(targets[0].val)
        return "?column?"
    simple = _SIMPLE_NAMES.get(type(node))
    if simple is not None:
        return simple
    if isinstance(node, ast.MinMaxExpr):
        return "greatest" if node.op == enums.MinMaxOp.IS_GREATEST else "least"
    if isinstance(node, ast.SQLValueFunction):
        return (
            enums.SQLValueFunctionOp(node.op).name.removeprefix("SVFOP_").lower().removesuffix("_n")
        )
    if isinstance(node, ast.A_Expr):
        return "nullif" if node.kind == enums.A_Expr_Kind.AEXPR_NULLIF else "?column?"
    if isinstance(node, ast.A_Const | ast.ParamRef | ast.BoolExpr | ast.NullTest | ast.BooleanTest):
        return "?column?"
    return None


_SIMPLE_NAMES = {
    ast.A_ArrayExpr: "array",
    ast.RowExpr: "row",
    ast.CoalesceExpr: "coalesce",
    ast.GroupingFunc: "grouping",
}


def _renamed(
    columns: tuple[str, ...] | None, aliases: tuple | list | None
) -> tuple[str, ...] | None:
    if not aliases:
        return columns
    names = tuple(alias.sval for alias in aliases)
    if columns is None:
        return None
    return names + columns[len(names) :]


def _natural(left: list[_Item], right: list[_Item]) -> set[str]:
    names: list[set[str]] = []
    for side in (left, right):
        if any(item.columns is None for item in side):
            return {"*"}  # merged columns unknown: the level's star expansion is left alone
        names.append({column for item in side for column in item.columns or ()})
    return names[0] & names[1]


def _function_name(node: ast.RangeFunction) -> str | None:
    for entry in node.functions or ():
        call = entry[0] if isinstance(entry, tuple | list) else entry
        if isinstance(call, ast.FuncCall):
            return call.funcname[-1].sval
    return None


def _is_star(ref: ast.ColumnRef) -> bool:
    return isinstance(ref.fields[-1], ast.A_Star)


def _field(part: object) -> str | None:
    return part.sval if isinstance(part, ast.String) else None


def _location(node: object) -> int | None:
    location = getattr(node, "location", None)
    return None if location is None or location < 0 else location + 1


def _walk(node: object) -> Iterator[ast.Node]:
    """Every node of a tree, depth first in field order (the order of the parse's JSON form)."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for child in _children(node):
            yield from _walk(child)


def _children(node: ast.Node) -> Iterator[object]:
    for name in type(node).__slots__:
        value = getattr(node, name)
        if isinstance(value, ast.Node | tuple | list):
            yield value


def column_owner(node: ast.SelectStmt, columns: ColumnLookup, name: str) -> str | None:
    """The FROM item of the query's top level whose columns hold ``name``, if just one does."""
    resolver = _Resolver(columns)
    ctes = resolver._with(node.withClause, [], {}) if node.withClause else {}
    level = _Level()
    for item in node.fromClause or ():
        level.visible += resolver.from_item(item, level, [], ctes)
    owners = [item.name for item in level.visible if item.columns and name in item.columns]
    return owners[0] if len(owners) == 1 else None
