"""information_schema as PostgreSQL 15 defines it, for what pgshim serves (with 18's NOT NULL
constraints when presenting 18).

Its views have PostgreSQL 15's columns (the information_schema domains sent as their base types,
as PostgreSQL does) and their rows follow PostgreSQL's definitions over pgshim's own catalog
(pg_namespace, pg_class, pg_attribute, pg_constraint): the collections are base tables with rid
their primary key, pgshim's views and pg_catalog's are listed where PostgreSQL lists them.
Queries name them ``information_schema.<view>``; the engine knows them under internal names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pgshim import pgtypes
from pgshim.versions import DEFAULT as DEFAULT_VERSION

INTERNAL_PREFIX = "pgshim_infoschema_"
SCHEMA = "information_schema"
_SCHEMA_OID = 13000  # pg_namespace oid of information_schema in PostgreSQL 15 clusters
_SYSTEM_OID_LIMIT = 10000  # PostgreSQL's system catalogs (tables) have oids below this

# name:type, with the information_schema domains as their base types (sql_identifier -> name,
# character_data and yes_or_no -> varchar, cardinal_number -> int4)
_COLUMNS = """
schemata catalog_name:name schema_name:name schema_owner:name default_character_set_catalog:name
 default_character_set_schema:name default_character_set_name:name sql_path:varchar
tables table_catalog:name table_schema:name table_name:name table_type:varchar
 self_referencing_column_name:name reference_generation:varchar user_defined_type_catalog:name
 user_defined_type_schema:name user_defined_type_name:name is_insertable_into:varchar
 is_typed:varchar commit_action:varchar
columns table_catalog:name table_schema:name table_name:name column_name:name
 ordinal_position:int4 column_default:varchar is_nullable:varchar data_type:varchar
 character_maximum_length:int4 character_octet_length:int4 numeric_precision:int4
 numeric_precision_radix:int4 numeric_scale:int4 datetime_precision:int4 interval_type:varchar
 interval_precision:int4 character_set_catalog:name character_set_schema:name
 character_set_name:name collation_catalog:name collation_schema:name collation_name:name
 domain_catalog:name domain_schema:name domain_name:name udt_catalog:name udt_schema:name
 udt_name:name scope_catalog:name scope_schema:name scope_name:name maximum_cardinality:int4
 dtd_identifier:name is_self_referencing:varchar is_identity:varchar
 identity_generation:varchar identity_start:varchar identity_increment:varchar
 identity_maximum:varchar identity_minimum:varchar identity_cycle:varchar
 is_generated:varchar generation_expression:varchar is_updatable:varchar
views table_catalog:name table_schema:name table_name:name view_definition:varchar
 check_option:varchar is_updatable:varchar is_insertable_into:varchar
 is_trigger_updatable:varchar is_trigger_deletable:varchar is_trigger_insertable_into:varchar
table_constraints constraint_catalog:name constraint_schema:name constraint_name:name
 table_catalog:name table_schema:name table_name:name constraint_type:varchar
 is_deferrable:varchar initially_deferred:varchar enforced:varchar nulls_distinct:varchar
key_column_usage constraint_catalog:name constraint_schema:name constraint_name:name
 table_catalog:name table_schema:name table_name:name column_name:name ordinal_position:int4
 position_in_unique_constraint:int4
constraint_column_usage table_catalog:name table_schema:name table_name:name column_name:name
 constraint_catalog:name constraint_schema:name constraint_name:name
referential_constraints constraint_catalog:name constraint_schema:name constraint_name:name
 unique_constraint_catalog:name unique_constraint_schema:name unique_constraint_name:name
 match_option:varchar update_rule:varchar delete_rule:varchar
check_constraints constraint_catalog:name constraint_schema:name constraint_name:name
 check_clause:varchar
routines specific_catalog:name specific_schema:name specific_name:name routine_catalog:name
 routine_schema:name routine_name:name routine_type:varchar module_catalog:name
 module_schema:name module_name:name udt_catalog:name udt_schema:name udt_name:name
 data_type:varchar character_maximum_length:int4 character_octet_length:int4
 character_set_catalog:name character_set_schema:name character_set_name:name
 collation_catalog:name collation_schema:name collation_name:name numeric_precision:int4
 numeric_precision_radix:int4 numeric_scale:int4 datetime_precision:int4 interval_type:varchar
 interval_precision:int4 type_udt_catalog:name type_udt_schema:name type_udt_name:name
 scope_catalog:name scope_schema:name scope_name:name maximum_cardinality:int4
 dtd_identifier:name routine_body:varchar routine_definition:varchar external_name:varchar
 external_language:varchar parameter_style:varchar is_deterministic:varchar
 sql_data_access:varchar is_null_call:varchar sql_path:varchar schema_level_routine:varchar
 max_dynamic_result_sets:int4 is_user_defined_cast:varchar is_implicitly_invocable:varchar
 security_type:varchar to_sql_specific_catalog:name to_sql_specific_schema:name
 to_sql_specific_name:name as_locator:varchar created:timestamptz last_altered:timestamptz
 new_savepoint_level:varchar is_udt_dependent:varchar result_cast_from_data_type:varchar
 result_cast_as_locator:varchar result_cast_char_max_length:int4
 result_cast_char_octet_length:int4 result_cast_char_set_catalog:name
 result_cast_char_set_schema:name result_cast_char_set_name:name
 result_cast_collation_catalog:name result_cast_collation_schema:name
 result_cast_collation_name:name result_cast_numeric_precision:int4
 result_cast_numeric_precision_radix:int4 result_cast_numeric_scale:int4
 result_cast_datetime_precision:int4 result_cast_interval_type:varchar
 result_cast_interval_precision:int4 result_cast_type_udt_catalog:name
 result_cast_type_udt_schema:name result_cast_type_udt_name:name result_cast_scope_catalog:name
 result_cast_scope_schema:name result_cast_scope_name:name result_cast_maximum_cardinality:int4
 result_cast_dtd_identifier:name
character_sets character_set_catalog:name character_set_schema:name character_set_name:name
 character_repertoire:name form_of_use:name default_collate_catalog:name
 default_collate_schema:name default_collate_name:name
"""


def _parse_columns(text: str) -> dict[str, list[tuple[str, str]]]:
    views: dict[str, list[tuple[str, str]]] = {}
    name = ""
    for line in text.strip("\n").splitlines():
        words = line.split()
        if not line.startswith(" "):
            name, words = words[0], words[1:]
            views[name] = []
        views[name] += [tuple(word.split(":")) for word in words]  # type: ignore[misc]
    return views


VIEWS: dict[str, list[tuple[str, str]]] = _parse_columns(_COLUMNS)


def internal_name(view: str) -> str:
    return INTERNAL_PREFIX + view


# (catalog table, session) -> its rows as dicts of column -> value
RowSource = Callable[[str, Any], list[dict[str, Any]]]


def register(catalog: Any) -> None:
    """Register the views on the catalog; their rows come from its other tables per query."""
    for view, columns in VIEWS.items():
        build = _BUILDERS[view]

        def rows(session: Any = None, build: Callable = build) -> Iterable[tuple]:
            return build(_Facts(catalog.rows_of, session))

        catalog.register_view(internal_name(view), columns, rows, needs_session=True)


class _Facts:
    """What PostgreSQL's definitions read: pgshim's catalog as the session sees it."""

    def __init__(self, rows_of: RowSource, session: Any) -> None:
        self.database = getattr(session, "database", None) or "postgres"
        self.namespaces = {row["oid"]: row for row in rows_of("pg_namespace", session)}
        self.namespaces.setdefault(
            _SCHEMA_OID, {"oid": _SCHEMA_OID, "nspname": SCHEMA, "nspowner": 10}
        )
        self.roles = {row["oid"]: row["rolname"] for row in rows_of("pg_roles", session)}
        self.classes = [
            row for row in rows_of("pg_class", session)
            if row["relkind"] in ("r", "v", "p", "f") and row["relnamespace"] in self.namespaces
        ]  # fmt: skip
        attributes: dict[int, list[dict]] = {}
        for row in rows_of("pg_attribute", session):
            if row["attnum"] > 0 and not row.get("attisdropped"):
                attributes.setdefault(row["attrelid"], []).append(row)
        self.attributes = {
            oid: sorted(rows, key=lambda r: r["attnum"]) for oid, rows in attributes.items()
        }
        self.constraints = rows_of("pg_constraint", session)
        self.major = getattr(session, "major", DEFAULT_VERSION.major)
        self.rows_of, self.session = rows_of, session

    def schema(self, oid: int) -> str:
        return self.namespaces[oid]["nspname"]

    def relations(self) -> list[tuple[str, str, dict, str]]:
        """(schema, name, pg_class row, table_type) of every table and view, information_schema's
        own views among them."""
        found = [
            (self.schema(row["relnamespace"]), row["relname"], row, _table_type(row))
            for row in self.classes
        ]
        found += [(SCHEMA, view, {"oid": None, "relkind": "v"}, "VIEW") for view in VIEWS]
        return found

    def columns_of(self, schema: str, row: dict) -> list[tuple[str, int, bool, int]]:
        """(name, type oid, not null, number) of a relation's columns."""
        if schema == SCHEMA and row["oid"] is None:
            return []  # listed by name only: see _columns
        return [
            (a["attname"], a["atttypid"], bool(a["attnotnull"]), a["attnum"])
            for a in self.attributes.get(row["oid"], [])
        ]


def _table_type(row: dict) -> str:
    if row["relkind"] in ("r", "p") or (
        row["relnamespace"] == 11 and row["oid"] < _SYSTEM_OID_LIMIT
    ):
        return "BASE TABLE"
    return {"v": "VIEW", "f": "FOREIGN"}.get(row["relkind"], "BASE TABLE")


def _schemata(facts: _Facts) -> list[tuple]:
    return [
        (facts.database, row["nspname"], facts.roles.get(row["nspowner"], "postgres"),
         None, None, None, None)
        for row in facts.namespaces.values()
    ]  # fmt: skip


def _tables(facts: _Facts) -> list[tuple]:
    rows = []
    for schema, name, _row, kind in facts.relations():
        insertable = "YES" if kind == "BASE TABLE" else "NO"
        rows.append((facts.database, schema, name, kind, None, None, None, None, None,
                     insertable, "NO", None))  # fmt: skip
    return rows


def _columns(facts: _Facts) -> list[tuple]:
    rows = []
    for schema, name, row, kind in facts.relations():
        if schema == SCHEMA and row["oid"] is None:
            columns = [
                (column, pgtypes.lookup(type_name).oid, False, number)
                for number, (column, type_name) in enumerate(VIEWS[name], start=1)
            ]
        else:
            columns = facts.columns_of(schema, row)
        updatable = "YES" if kind == "BASE TABLE" else "NO"
        for column, type_oid, not_null, number in columns:
            rows.append(
                (facts.database, schema, name, column, number, None, "NO" if not_null else "YES",
                 *_type_facts(type_oid), None, None, None, None, None, None, None, None, None,
                 facts.database, "pg_catalog", _udt_name(type_oid), None, None, None, None,
                 str(number), "NO", "NO", None, None, None, None, None, "NO", "NEVER", None,
                 updatable)
            )  # fmt: skip
    return rows


def _udt_name(type_oid: int) -> str:
    known = pgtypes.BY_OID.get(type_oid)
    return known.name if known is not None else "text"


def _type_facts(type_oid: int) -> tuple:
    """data_type, character_maximum_length, character_octet_length, numeric_precision,
    numeric_precision_radix, numeric_scale, datetime_precision, interval_type,
    interval_precision (PostgreSQL's _pg_* functions, for the default typmod)."""
    known = pgtypes.BY_OID.get(type_oid)
    if known is None:
        return ("USER-DEFINED", None, None, None, None, None, None, None, None)
    if known.elem_oid and known.typlen == -1:  # name's element is char, but it is no array
        return ("ARRAY", None, None, None, None, None, None, None, None)
    octets = 1073741824 if type_oid in (25, 1042, 1043) else None
    precision = _NUMERIC_PRECISION.get(type_oid)
    radix = 10 if type_oid == 1700 else (2 if precision is not None else None)
    scale = 0 if type_oid in (20, 21, 23) else None
    datetime = (
        0 if type_oid == 1082 else (6 if type_oid in (1083, 1114, 1184, 1186, 1266) else None)
    )
    return (known.sql_name, None, octets, precision, radix, scale, datetime, None, None)


_NUMERIC_PRECISION = {21: 16, 23: 32, 20: 64, 700: 24, 701: 53}


def _views(facts: _Facts) -> list[tuple]:
    return [
        (facts.database, schema, name, None, "NONE", "NO", "NO", "NO", "NO", "NO")
        for schema, name, _row, kind in facts.relations()
        if kind == "VIEW"
    ]


def _keys(facts: _Facts) -> list[tuple[str, str, str, dict, list[str]]]:
    """(constraint schema, name, table, constraint row, key columns) of primary keys and unique
    constraints of the relations listed."""
    by_oid = {row["oid"]: row for row in facts.classes}
    found = []
    for con in facts.constraints:
        table = by_oid.get(con["conrelid"])
        if table is None or con["contype"] not in ("p", "u"):
            continue
        names = {a["attnum"]: a["attname"] for a in facts.attributes.get(table["oid"], [])}
        columns = [names[number] for number in con["conkey"] or () if number in names]
        found.append((facts.schema(con["connamespace"]), con["conname"], table, con, columns))
    return found


def _not_null_checks(facts: _Facts) -> list[tuple[str, str, dict]]:
    """PostgreSQL lists each NOT NULL column of a table as a CHECK constraint: from 18 on its
    pg_constraint row's (contype n), before as one named after the oids."""
    if facts.major >= 18:
        by_oid = {row["oid"]: row for row in facts.classes if row["relkind"] in ("r", "p")}
        found = []
        for con in facts.constraints:
            table = by_oid.get(con["conrelid"])
            if table is None or con["contype"] != "n":
                continue
            names = {a["attnum"]: a["attname"] for a in facts.attributes.get(table["oid"], [])}
            found += [(con["conname"], names[n], table) for n in con["conkey"] or () if n in names]
        return found
    found = []
    for table in facts.classes:
        if table["relkind"] not in ("r", "p"):
            continue
        for a in facts.attributes.get(table["oid"], []):
            if a["attnotnull"]:
                name = f"{table['relnamespace']}_{table['oid']}_{a['attnum']}_not_null"
                found.append((name, a["attname"], table))
    return found


def _table_constraints(facts: _Facts) -> list[tuple]:
    rows = []
    for schema, name, table, con, _columns in _keys(facts):
        kind = "PRIMARY KEY" if con["contype"] == "p" else "UNIQUE"
        rows.append((facts.database, schema, name, facts.database,
                     facts.schema(table["relnamespace"]), table["relname"], kind, "NO", "NO",
                     "YES", "YES" if kind == "UNIQUE" else None))  # fmt: skip
    for name, _column, table in _not_null_checks(facts):
        schema = facts.schema(table["relnamespace"])
        rows.append((facts.database, schema, name, facts.database, schema, table["relname"],
                     "CHECK", "NO", "NO", "YES", None))  # fmt: skip
    return rows


def _key_column_usage(facts: _Facts) -> list[tuple]:
    return [
        (facts.database, schema, name, facts.database, facts.schema(table["relnamespace"]),
         table["relname"], column, position, None)
        for schema, name, table, _con, columns in _keys(facts)
        for position, column in enumerate(columns, start=1)
    ]  # fmt: skip


def _constraint_column_usage(facts: _Facts) -> list[tuple]:
    rows = [
        (facts.database, facts.schema(table["relnamespace"]), table["relname"], column,
         facts.database, schema, name)
        for schema, name, table, _con, columns in _keys(facts)
        for column in columns
    ]  # fmt: skip
    if facts.major >= 18:  # a catalogued NOT NULL constraint uses its column
        for name, column, table in _not_null_checks(facts):
            schema = facts.schema(table["relnamespace"])
            rows.append((facts.database, schema, table["relname"], column, facts.database,
                         schema, name))  # fmt: skip
    return rows


def _check_constraints(facts: _Facts) -> list[tuple]:
    return [
        (facts.database, facts.schema(table["relnamespace"]), name, f"{column} IS NOT NULL")
        for name, column, table in _not_null_checks(facts)
    ]


def _character_sets(facts: _Facts) -> list[tuple]:
    database = next(
        (row for row in facts.rows_of("pg_database", facts.session)
         if row["datname"] == facts.database), None,
    )  # fmt: skip
    if database is None:
        return []
    matching = sorted(
        (row for row in facts.rows_of("pg_collation", facts.session)
         if row.get("collcollate") == database["datcollate"]
         and row.get("collctype") == database["datctype"]),
        key=lambda row: (-len(row["collname"]), row["collname"]),
    )  # fmt: skip
    collation = matching[0] if matching else None
    return [(
        None, None, "UTF8", "UCS", "UTF8", facts.database,
        facts.schema(collation["collnamespace"]) if collation else None,
        collation["collname"] if collation else None,
    )]  # fmt: skip


def _routines(facts: _Facts) -> list[tuple]:
    languages = {row["oid"]: row["lanname"] for row in facts.rows_of("pg_language", facts.session)}
    rows = []
    for proc in facts.rows_of("pg_proc", facts.session):
        if proc["pronamespace"] not in facts.namespaces:
            continue
        schema, kind = facts.schema(proc["pronamespace"]), proc["prokind"]
        language = languages.get(proc["prolang"], "internal")
        function = kind != "p"
        data_type = _type_facts(proc["prorettype"])[0] if function else None
        udt = _udt_name(proc["prorettype"]) if function else None
        rows.append((
            facts.database, schema, f"{proc['proname']}_{proc['oid']}", facts.database, schema,
            proc["proname"], {"f": "FUNCTION", "p": "PROCEDURE"}.get(kind), None, None, None,
            None, None, None, data_type, *[None] * 14,
            facts.database if function else None, "pg_catalog" if function else None, udt,
            None, None, None, None, "0" if function else None,
            "SQL" if language == "sql" else "EXTERNAL", proc["prosrc"],
            proc["prosrc"] if language == "c" else None, language.upper(), "GENERAL",
            "YES" if proc["provolatile"] == "i" else "NO", "MODIFIES",
            ("YES" if proc["proisstrict"] else "NO") if function else None, None, "YES", 0,
            None, None, "DEFINER" if proc["prosecdef"] else "INVOKER", None, None, None, "NO",
            None, None, None, "NO", *[None] * 24,
        ))  # fmt: skip
    return rows


_BUILDERS: dict[str, Callable[[_Facts], list[tuple]]] = {
    "schemata": _schemata,
    "tables": _tables,
    "columns": _columns,
    "views": _views,
    "table_constraints": _table_constraints,
    "key_column_usage": _key_column_usage,
    "constraint_column_usage": _constraint_column_usage,
    "referential_constraints": lambda _facts: [],  # collections reference nothing
    "check_constraints": _check_constraints,
    "character_sets": _character_sets,
    "routines": _routines,
}
