"""PostgreSQL 15's catalog as pgshim serves it: the columns of each catalog table, the rows that do
not depend on pgshim's state, and the catalog functions psql and drivers call per row (DuckDB
macros over the catalog tables, defined in each engine process).

Every relation pgshim serves appears in pg_class: each collection as a table public.<collection>
with a primary key index <collection>_pkey on ``rid`` (pg_index, pg_constraint), and pgshim's
catalog and status views as views in pg_catalog. Owners are the bootstrap role (oid 10).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from zlib import crc32

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from pgshim import pgtypes

PG_CATALOG_OID = 11
PUBLIC_OID = 2200
BOOTSTRAP_ROLE_OID = 10
DEFAULT_TABLESPACE_OID = 1663
GLOBAL_TABLESPACE_OID = 1664
HEAP_AM_OID = 2
BTREE_AM_OID = 403
DEFAULT_COLLATION_OID = 100
C_COLLATION_OID = 950
INTERNAL_LANGUAGE_OID = 12

# PostgreSQL types pgshim has no twin of, and what their columns hold instead (the text
# PostgreSQL prints for them)
SUBSTITUTED_TYPES = {
    "pg_node_tree": "text",
    "aclitem[]": "text[]",
    "anyarray": "text",
    "regproc": "text",
}

# PostgreSQL 15's columns of the catalogs pgshim serves (tests/test_psql_meta.py compares them
# with a PostgreSQL 15 cluster's); columns of types pgshim lacks hold SUBSTITUTED_TYPES.
PG15_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "pg_am": [
        ("oid", "oid"), ("amname", "name"), ("amhandler", "text"), ("amtype", '"char"'),
    ],
    "pg_amop": [
        ("oid", "oid"), ("amopfamily", "oid"), ("amoplefttype", "oid"), ("amoprighttype", "oid"),
        ("amopstrategy", "int2"), ("amoppurpose", '"char"'), ("amopopr", "oid"),
        ("amopmethod", "oid"), ("amopsortfamily", "oid"),
    ],
    "pg_amproc": [
        ("oid", "oid"), ("amprocfamily", "oid"), ("amproclefttype", "oid"),
        ("amprocrighttype", "oid"), ("amprocnum", "int2"), ("amproc", "text"),
    ],
    "pg_attrdef": [
        ("oid", "oid"), ("adrelid", "oid"), ("adnum", "int2"), ("adbin", "text"),
    ],
    "pg_attribute": [
        ("attrelid", "oid"), ("attname", "name"), ("atttypid", "oid"), ("attstattarget", "int4"),
        ("attlen", "int2"), ("attnum", "int2"), ("attndims", "int4"), ("attcacheoff", "int4"),
        ("atttypmod", "int4"), ("attbyval", "bool"), ("attalign", '"char"'),
        ("attstorage", '"char"'), ("attcompression", '"char"'), ("attnotnull", "bool"),
        ("atthasdef", "bool"), ("atthasmissing", "bool"), ("attidentity", '"char"'),
        ("attgenerated", '"char"'), ("attisdropped", "bool"), ("attislocal", "bool"),
        ("attinhcount", "int4"), ("attcollation", "oid"), ("attacl", "_text"),
        ("attoptions", "_text"), ("attfdwoptions", "_text"), ("attmissingval", "text"),
    ],
    "pg_authid": [
        ("oid", "oid"), ("rolname", "name"), ("rolsuper", "bool"), ("rolinherit", "bool"),
        ("rolcreaterole", "bool"), ("rolcreatedb", "bool"), ("rolcanlogin", "bool"),
        ("rolreplication", "bool"), ("rolbypassrls", "bool"), ("rolconnlimit", "int4"),
        ("rolpassword", "text"), ("rolvaliduntil", "timestamptz"),
    ],
    "pg_auth_members": [
        ("roleid", "oid"), ("member", "oid"), ("grantor", "oid"), ("admin_option", "bool"),
    ],
    "pg_cast": [
        ("oid", "oid"), ("castsource", "oid"), ("casttarget", "oid"), ("castfunc", "oid"),
        ("castcontext", '"char"'), ("castmethod", '"char"'),
    ],
    "pg_class": [
        ("oid", "oid"), ("relname", "name"), ("relnamespace", "oid"), ("reltype", "oid"),
        ("reloftype", "oid"), ("relowner", "oid"), ("relam", "oid"), ("relfilenode", "oid"),
        ("reltablespace", "oid"), ("relpages", "int4"), ("reltuples", "float4"),
        ("relallvisible", "int4"), ("reltoastrelid", "oid"), ("relhasindex", "bool"),
        ("relisshared", "bool"), ("relpersistence", '"char"'), ("relkind", '"char"'),
        ("relnatts", "int2"), ("relchecks", "int2"), ("relhasrules", "bool"),
        ("relhastriggers", "bool"), ("relhassubclass", "bool"), ("relrowsecurity", "bool"),
        ("relforcerowsecurity", "bool"), ("relispopulated", "bool"), ("relreplident", '"char"'),
        ("relispartition", "bool"), ("relrewrite", "oid"), ("relfrozenxid", "xid"),
        ("relminmxid", "xid"), ("relacl", "_text"), ("reloptions", "_text"),
        ("relpartbound", "text"),
    ],
    "pg_collation": [
        ("oid", "oid"), ("collname", "name"), ("collnamespace", "oid"), ("collowner", "oid"),
        ("collprovider", '"char"'), ("collisdeterministic", "bool"), ("collencoding", "int4"),
        ("collcollate", "text"), ("collctype", "text"), ("colliculocale", "text"),
        ("collversion", "text"),
    ],
    "pg_constraint": [
        ("oid", "oid"), ("conname", "name"), ("connamespace", "oid"), ("contype", '"char"'),
        ("condeferrable", "bool"), ("condeferred", "bool"), ("convalidated", "bool"),
        ("conrelid", "oid"), ("contypid", "oid"), ("conindid", "oid"), ("conparentid", "oid"),
        ("confrelid", "oid"), ("confupdtype", '"char"'), ("confdeltype", '"char"'),
        ("confmatchtype", '"char"'), ("conislocal", "bool"), ("coninhcount", "int4"),
        ("connoinherit", "bool"), ("conkey", "_int2"), ("confkey", "_int2"), ("conpfeqop", "_oid"),
        ("conppeqop", "_oid"), ("conffeqop", "_oid"), ("confdelsetcols", "_int2"),
        ("conexclop", "_oid"), ("conbin", "text"),
    ],
    "pg_conversion": [
        ("oid", "oid"), ("conname", "name"), ("connamespace", "oid"), ("conowner", "oid"),
        ("conforencoding", "int4"), ("contoencoding", "int4"), ("conproc", "text"),
        ("condefault", "bool"),
    ],
    "pg_database": [
        ("oid", "oid"), ("datname", "name"), ("datdba", "oid"), ("encoding", "int4"),
        ("datlocprovider", '"char"'), ("datistemplate", "bool"), ("datallowconn", "bool"),
        ("datconnlimit", "int4"), ("datfrozenxid", "xid"), ("datminmxid", "xid"),
        ("dattablespace", "oid"), ("datcollate", "text"), ("datctype", "text"),
        ("daticulocale", "text"), ("datcollversion", "text"), ("datacl", "_text"),
    ],
    "pg_db_role_setting": [
        ("setdatabase", "oid"), ("setrole", "oid"), ("setconfig", "_text"),
    ],
    "pg_default_acl": [
        ("oid", "oid"), ("defaclrole", "oid"), ("defaclnamespace", "oid"),
        ("defaclobjtype", '"char"'), ("defaclacl", "_text"),
    ],
    "pg_depend": [
        ("classid", "oid"), ("objid", "oid"), ("objsubid", "int4"), ("refclassid", "oid"),
        ("refobjid", "oid"), ("refobjsubid", "int4"), ("deptype", '"char"'),
    ],
    "pg_description": [
        ("objoid", "oid"), ("classoid", "oid"), ("objsubid", "int4"), ("description", "text"),
    ],
    "pg_enum": [
        ("oid", "oid"), ("enumtypid", "oid"), ("enumsortorder", "float4"), ("enumlabel", "name"),
    ],
    "pg_event_trigger": [
        ("oid", "oid"), ("evtname", "name"), ("evtevent", "name"), ("evtowner", "oid"),
        ("evtfoid", "oid"), ("evtenabled", '"char"'), ("evttags", "_text"),
    ],
    "pg_extension": [
        ("oid", "oid"), ("extname", "name"), ("extowner", "oid"), ("extnamespace", "oid"),
        ("extrelocatable", "bool"), ("extversion", "text"), ("extconfig", "_oid"),
        ("extcondition", "_text"),
    ],
    "pg_foreign_data_wrapper": [
        ("oid", "oid"), ("fdwname", "name"), ("fdwowner", "oid"), ("fdwhandler", "oid"),
        ("fdwvalidator", "oid"), ("fdwacl", "_text"), ("fdwoptions", "_text"),
    ],
    "pg_foreign_server": [
        ("oid", "oid"), ("srvname", "name"), ("srvowner", "oid"), ("srvfdw", "oid"),
        ("srvtype", "text"), ("srvversion", "text"), ("srvacl", "_text"), ("srvoptions", "_text"),
    ],
    "pg_foreign_table": [
        ("ftrelid", "oid"), ("ftserver", "oid"), ("ftoptions", "_text"),
    ],
    "pg_index": [
        ("indexrelid", "oid"), ("indrelid", "oid"), ("indnatts", "int2"), ("indnkeyatts", "int2"),
        ("indisunique", "bool"), ("indnullsnotdistinct", "bool"), ("indisprimary", "bool"),
        ("indisexclusion", "bool"), ("indimmediate", "bool"), ("indisclustered", "bool"),
        ("indisvalid", "bool"), ("indcheckxmin", "bool"), ("indisready", "bool"),
        ("indislive", "bool"), ("indisreplident", "bool"), ("indkey", "int2vector"),
        ("indcollation", "oidvector"), ("indclass", "oidvector"), ("indoption", "int2vector"),
        ("indexprs", "text"), ("indpred", "text"),
    ],
    "pg_inherits": [
        ("inhrelid", "oid"), ("inhparent", "oid"), ("inhseqno", "int4"),
        ("inhdetachpending", "bool"),
    ],
    "pg_init_privs": [
        ("objoid", "oid"), ("classoid", "oid"), ("objsubid", "int4"), ("privtype", '"char"'),
        ("initprivs", "_text"),
    ],
    "pg_language": [
        ("oid", "oid"), ("lanname", "name"), ("lanowner", "oid"), ("lanispl", "bool"),
        ("lanpltrusted", "bool"), ("lanplcallfoid", "oid"), ("laninline", "oid"),
        ("lanvalidator", "oid"), ("lanacl", "_text"),
    ],
    "pg_largeobject_metadata": [
        ("oid", "oid"), ("lomowner", "oid"), ("lomacl", "_text"),
    ],
    "pg_namespace": [
        ("oid", "oid"), ("nspname", "name"), ("nspowner", "oid"), ("nspacl", "_text"),
    ],
    "pg_opclass": [
        ("oid", "oid"), ("opcmethod", "oid"), ("opcname", "name"), ("opcnamespace", "oid"),
        ("opcowner", "oid"), ("opcfamily", "oid"), ("opcintype", "oid"), ("opcdefault", "bool"),
        ("opckeytype", "oid"),
    ],
    "pg_operator": [
        ("oid", "oid"), ("oprname", "name"), ("oprnamespace", "oid"), ("oprowner", "oid"),
        ("oprkind", '"char"'), ("oprcanmerge", "bool"), ("oprcanhash", "bool"), ("oprleft", "oid"),
        ("oprright", "oid"), ("oprresult", "oid"), ("oprcom", "oid"), ("oprnegate", "oid"),
        ("oprcode", "text"), ("oprrest", "text"), ("oprjoin", "text"),
    ],
    "pg_opfamily": [
        ("oid", "oid"), ("opfmethod", "oid"), ("opfname", "name"), ("opfnamespace", "oid"),
        ("opfowner", "oid"),
    ],
    "pg_parameter_acl": [
        ("oid", "oid"), ("parname", "text"), ("paracl", "_text"),
    ],
    "pg_partitioned_table": [
        ("partrelid", "oid"), ("partstrat", '"char"'), ("partnatts", "int2"),
        ("partdefid", "oid"), ("partattrs", "int2vector"), ("partclass", "oidvector"),
        ("partcollation", "oidvector"), ("partexprs", "text"),
    ],
    "pg_policy": [
        ("oid", "oid"), ("polname", "name"), ("polrelid", "oid"), ("polcmd", '"char"'),
        ("polpermissive", "bool"), ("polroles", "_oid"), ("polqual", "text"),
        ("polwithcheck", "text"),
    ],
    "pg_proc": [
        ("oid", "oid"), ("proname", "name"), ("pronamespace", "oid"), ("proowner", "oid"),
        ("prolang", "oid"), ("procost", "float4"), ("prorows", "float4"), ("provariadic", "oid"),
        ("prosupport", "text"), ("prokind", '"char"'), ("prosecdef", "bool"),
        ("proleakproof", "bool"), ("proisstrict", "bool"), ("proretset", "bool"),
        ("provolatile", '"char"'), ("proparallel", '"char"'), ("pronargs", "int2"),
        ("pronargdefaults", "int2"), ("prorettype", "oid"), ("proargtypes", "oidvector"),
        ("proallargtypes", "_oid"), ("proargmodes", "_char"), ("proargnames", "_text"),
        ("proargdefaults", "text"), ("protrftypes", "_oid"), ("prosrc", "text"),
        ("probin", "text"), ("prosqlbody", "text"), ("proconfig", "_text"), ("proacl", "_text"),
    ],
    "pg_publication": [
        ("oid", "oid"), ("pubname", "name"), ("pubowner", "oid"), ("puballtables", "bool"),
        ("pubinsert", "bool"), ("pubupdate", "bool"), ("pubdelete", "bool"),
        ("pubtruncate", "bool"), ("pubviaroot", "bool"),
    ],
    "pg_publication_namespace": [
        ("oid", "oid"), ("pnpubid", "oid"), ("pnnspid", "oid"),
    ],
    "pg_publication_rel": [
        ("oid", "oid"), ("prpubid", "oid"), ("prrelid", "oid"), ("prqual", "text"),
        ("prattrs", "int2vector"),
    ],
    "pg_subscription_rel": [
        ("srsubid", "oid"), ("srrelid", "oid"), ("srsubstate", '"char"'), ("srsublsn", "pg_lsn"),
    ],
    "pg_range": [
        ("rngtypid", "oid"), ("rngsubtype", "oid"), ("rngmultitypid", "oid"),
        ("rngcollation", "oid"), ("rngsubopc", "oid"), ("rngcanonical", "text"),
        ("rngsubdiff", "text"),
    ],
    "pg_rewrite": [
        ("oid", "oid"), ("rulename", "name"), ("ev_class", "oid"), ("ev_type", '"char"'),
        ("ev_enabled", '"char"'), ("is_instead", "bool"), ("ev_qual", "text"),
        ("ev_action", "text"),
    ],
    "pg_roles": [
        ("rolname", "name"), ("rolsuper", "bool"), ("rolinherit", "bool"),
        ("rolcreaterole", "bool"), ("rolcreatedb", "bool"), ("rolcanlogin", "bool"),
        ("rolreplication", "bool"), ("rolconnlimit", "int4"), ("rolpassword", "text"),
        ("rolvaliduntil", "timestamptz"), ("rolbypassrls", "bool"), ("rolconfig", "_text"),
        ("oid", "oid"),
    ],
    "pg_seclabels": [
        ("objoid", "oid"), ("classoid", "oid"), ("objsubid", "int4"), ("objtype", "text"),
        ("objnamespace", "oid"), ("objname", "text"), ("provider", "text"), ("label", "text"),
    ],
    "pg_sequence": [
        ("seqrelid", "oid"), ("seqtypid", "oid"), ("seqstart", "int8"), ("seqincrement", "int8"),
        ("seqmax", "int8"), ("seqmin", "int8"), ("seqcache", "int8"), ("seqcycle", "bool"),
    ],
    "pg_shseclabel": [
        ("objoid", "oid"), ("classoid", "oid"), ("provider", "text"), ("label", "text"),
    ],
    "pg_shdescription": [
        ("objoid", "oid"), ("classoid", "oid"), ("description", "text"),
    ],
    "pg_statistic_ext": [
        ("oid", "oid"), ("stxrelid", "oid"), ("stxname", "name"), ("stxnamespace", "oid"),
        ("stxowner", "oid"), ("stxstattarget", "int4"), ("stxkeys", "int2vector"),
        ("stxkind", "_char"), ("stxexprs", "text"),
    ],
    "pg_subscription": [
        ("oid", "oid"), ("subdbid", "oid"), ("subskiplsn", "pg_lsn"), ("subname", "name"),
        ("subowner", "oid"), ("subenabled", "bool"), ("subbinary", "bool"), ("substream", "bool"),
        ("subtwophasestate", '"char"'), ("subdisableonerr", "bool"), ("subconninfo", "text"),
        ("subslotname", "name"), ("subsynccommit", "text"), ("subpublications", "_text"),
    ],
    "pg_tablespace": [
        ("oid", "oid"), ("spcname", "name"), ("spcowner", "oid"), ("spcacl", "_text"),
        ("spcoptions", "_text"),
    ],
    "pg_transform": [
        ("oid", "oid"), ("trftype", "oid"), ("trflang", "oid"), ("trffromsql", "text"),
        ("trftosql", "text"),
    ],
    "pg_trigger": [
        ("oid", "oid"), ("tgrelid", "oid"), ("tgparentid", "oid"), ("tgname", "name"),
        ("tgfoid", "oid"), ("tgtype", "int2"), ("tgenabled", '"char"'), ("tgisinternal", "bool"),
        ("tgconstrrelid", "oid"), ("tgconstrindid", "oid"), ("tgconstraint", "oid"),
        ("tgdeferrable", "bool"), ("tginitdeferred", "bool"), ("tgnargs", "int2"),
        ("tgattr", "int2vector"), ("tgargs", "bytea"), ("tgqual", "text"), ("tgoldtable", "name"),
        ("tgnewtable", "name"),
    ],
    "pg_ts_config": [
        ("oid", "oid"), ("cfgname", "name"), ("cfgnamespace", "oid"), ("cfgowner", "oid"),
        ("cfgparser", "oid"),
    ],
    "pg_ts_dict": [
        ("oid", "oid"), ("dictname", "name"), ("dictnamespace", "oid"), ("dictowner", "oid"),
        ("dicttemplate", "oid"), ("dictinitoption", "text"),
    ],
    "pg_ts_parser": [
        ("oid", "oid"), ("prsname", "name"), ("prsnamespace", "oid"), ("prsstart", "text"),
        ("prstoken", "text"), ("prsend", "text"), ("prsheadline", "text"), ("prslextype", "text"),
    ],
    "pg_ts_template": [
        ("oid", "oid"), ("tmplname", "name"), ("tmplnamespace", "oid"), ("tmplinit", "text"),
        ("tmpllexize", "text"),
    ],
    "pg_type": [
        ("oid", "oid"), ("typname", "name"), ("typnamespace", "oid"), ("typowner", "oid"),
        ("typlen", "int2"), ("typbyval", "bool"), ("typtype", '"char"'), ("typcategory", '"char"'),
        ("typispreferred", "bool"), ("typisdefined", "bool"), ("typdelim", '"char"'),
        ("typrelid", "oid"), ("typsubscript", "text"), ("typelem", "oid"), ("typarray", "oid"),
        ("typinput", "text"), ("typoutput", "text"), ("typreceive", "text"), ("typsend", "text"),
        ("typmodin", "text"), ("typmodout", "text"), ("typanalyze", "text"),
        ("typalign", '"char"'), ("typstorage", '"char"'), ("typnotnull", "bool"),
        ("typbasetype", "oid"), ("typtypmod", "int4"), ("typndims", "int4"),
        ("typcollation", "oid"), ("typdefaultbin", "text"), ("typdefault", "text"),
        ("typacl", "_text"),
    ],
    "pg_user": [
        ("usename", "name"), ("usesysid", "oid"), ("usecreatedb", "bool"), ("usesuper", "bool"),
        ("userepl", "bool"), ("usebypassrls", "bool"), ("passwd", "text"),
        ("valuntil", "timestamptz"), ("useconfig", "_text"),
    ],
}  # fmt: skip

# PostgreSQL 15's oids of the relations pgshim serves under their PostgreSQL names (others, such
# as pgshim's own views, get an oid of their own below 16384)
RELATION_OIDS = {
    "pg_am": 2601, "pg_attrdef": 2604, "pg_attribute": 1249, "pg_auth_members": 1261,
    "pg_class": 1259, "pg_collation": 3456, "pg_constraint": 2606, "pg_database": 1262,
    "pg_depend": 2608, "pg_description": 2609, "pg_enum": 3501, "pg_extension": 3079,
    "pg_foreign_table": 3118, "pg_index": 2610, "pg_inherits": 2611, "pg_language": 2612,
    "pg_namespace": 2615, "pg_opclass": 2616, "pg_policy": 3256, "pg_proc": 1255,
    "pg_publication": 6104, "pg_publication_namespace": 6237, "pg_publication_rel": 6106,
    "pg_subscription_rel": 6102,
    "pg_rewrite": 2618, "pg_roles": 12000, "pg_sequence": 2224, "pg_shdescription": 2396,
    "pg_statistic_ext": 3381, "pg_tablespace": 1213, "pg_trigger": 2620, "pg_type": 1247,
    "pg_user": 12014, "pg_range": 3541, "pg_settings": 12104, "pg_replication_slots": 12257,
    "pg_stat_replication": 12227, "pg_stat_replication_slots": 12262,
    "pg_publication_tables": 12068, "pg_amop": 2602, "pg_amproc": 2603, "pg_cast": 2605,
    "pg_conversion": 2607, "pg_default_acl": 826, "pg_event_trigger": 3466,
    "pg_foreign_data_wrapper": 2328, "pg_foreign_server": 1417, "pg_init_privs": 3394,
    "pg_operator": 2617, "pg_opfamily": 2753, "pg_seclabels": 12099, "pg_subscription": 6100,
    "pg_transform": 3576, "pg_ts_config": 3602, "pg_ts_dict": 3600, "pg_ts_parser": 3601,
    "pg_ts_template": 3764, "pg_authid": 1260, "pg_db_role_setting": 2964,
    "pg_parameter_acl": 6243, "pg_shseclabel": 3592, "pg_partitioned_table": 3350,
    "pg_largeobject_metadata": 2995,
}  # fmt: skip
# those of them that are views in PostgreSQL (the others are tables, with system columns)
PG_VIEWS = frozenset({
    "pg_roles", "pg_user", "pg_settings", "pg_replication_slots", "pg_stat_replication",
    "pg_stat_replication_slots", "pg_publication_tables", "pg_seclabels",
})  # fmt: skip


def relation_oid(name: str) -> int:
    """A catalog relation's oid: PostgreSQL's, or one in 13000..15999 for pgshim's own."""
    return RELATION_OIDS.get(name) or 13_000 + crc32(name.encode()) % 3_000


_DEFAULTS = {"bool": False, "int2": 0, "int4": 0, "int8": 0, "float4": 0.0, "oid": 0, "xid": 0}


def catalog_row(catalog: str, **values: object) -> tuple:
    """A row of a PostgreSQL 15 catalog: the values given, false/0 for other booleans and
    numbers, NULL for the rest (as a fresh PostgreSQL has them for a plain table)."""
    columns = PG15_COLUMNS[catalog]
    unknown = set(values) - {name for name, _ in columns}
    if unknown:
        raise KeyError(f"{catalog} has no column {sorted(unknown)}")
    return tuple(values[name] if name in values else _DEFAULTS.get(kind) for name, kind in columns)


def _rows(catalog: str, items: Iterable[dict]) -> list[tuple]:
    return [catalog_row(catalog, **item) for item in items]


# --- rows that do not depend on pgshim's state -----------------------------------------------

STATIC_ROWS: dict[str, list[tuple]] = {
    "pg_description": [
        (PG_CATALOG_OID, RELATION_OIDS["pg_namespace"], 0, "system catalog schema"),
        (PUBLIC_OID, RELATION_OIDS["pg_namespace"], 0, "standard public schema"),
    ],
    "pg_am": _rows("pg_am", [
        {"oid": 2, "amname": "heap", "amhandler": "heap_tableam_handler", "amtype": "t"},
        {"oid": 403, "amname": "btree", "amhandler": "bthandler", "amtype": "i"},
        {"oid": 405, "amname": "hash", "amhandler": "hashhandler", "amtype": "i"},
    ]),
    "pg_language": _rows("pg_language", [
        {"oid": 12, "lanname": "internal", "lanowner": 10, "lanvalidator": 2246},
        {"oid": 13, "lanname": "c", "lanowner": 10, "lanvalidator": 2247},
        {"oid": 14, "lanname": "sql", "lanowner": 10, "lanpltrusted": True, "lanvalidator": 2248},
    ]),
    "pg_tablespace": _rows("pg_tablespace", [
        {"oid": DEFAULT_TABLESPACE_OID, "spcname": "pg_default", "spcowner": 10},
        {"oid": GLOBAL_TABLESPACE_OID, "spcname": "pg_global", "spcowner": 10},
    ]),
    "pg_collation": _rows("pg_collation", [
        {"oid": 100, "collname": "default", "collnamespace": 11, "collowner": 10,
         "collprovider": "d", "collisdeterministic": True, "collencoding": -1},
        {"oid": 950, "collname": "C", "collnamespace": 11, "collowner": 10,
         "collprovider": "c", "collisdeterministic": True, "collencoding": -1,
         "collcollate": "C", "collctype": "C"},
        {"oid": 951, "collname": "POSIX", "collnamespace": 11, "collowner": 10,
         "collprovider": "c", "collisdeterministic": True, "collencoding": -1,
         "collcollate": "POSIX", "collctype": "POSIX"},
    ]),
}  # fmt: skip

# catalogs pgshim has nothing for: no comments (but the two schemas'), defaults,
# inheritance, policies, statistics, sequences, enums, triggers, rules, extensions (no PL/pgSQL:
# pgshim runs no procedural code), subscriptions, foreign data, security labels, partitions,
# large objects; nor does it list PostgreSQL's built-in operators, operator families, casts,
# conversions and text search
EMPTY_CATALOGS = (
    "pg_shdescription", "pg_attrdef", "pg_inherits", "pg_policy",
    "pg_statistic_ext", "pg_sequence", "pg_enum", "pg_trigger", "pg_rewrite", "pg_depend",
    "pg_auth_members", "pg_extension", "pg_opclass", "pg_foreign_table",
    "pg_subscription_rel", "pg_amop", "pg_amproc", "pg_cast",
    "pg_conversion", "pg_default_acl", "pg_event_trigger", "pg_foreign_data_wrapper",
    "pg_foreign_server", "pg_init_privs", "pg_operator", "pg_opfamily", "pg_seclabels",
    "pg_subscription", "pg_transform", "pg_ts_config", "pg_ts_dict", "pg_ts_parser",
    "pg_ts_template", "pg_db_role_setting", "pg_parameter_acl", "pg_shseclabel",
    "pg_partitioned_table", "pg_largeobject_metadata",
)  # fmt: skip

_ENCODINGS = {0: "SQL_ASCII", 6: "UTF8", 8: "LATIN1"}


def _storage(pg_type: pgtypes.PgType) -> tuple[bool, str, str]:
    """(typbyval, typalign, typstorage) as PostgreSQL declares them."""
    if pg_type.typlen in (1, 2, 4, 8) and pg_type.oid not in (1082,):
        align = {1: "c", 2: "s", 4: "i", 8: "d"}[pg_type.typlen]
        return True, align, "p"
    if pg_type.oid == 1082:
        return True, "i", "p"
    if pg_type.typlen > 0:
        return False, "d" if pg_type.typlen >= 8 else "c", "p"
    if pg_type.oid == 1700:
        return False, "i", "m"
    return False, "d" if pg_type.category in ("A", "P") else "i", "x"


def type_collation(pg_type: pgtypes.PgType) -> int:
    if pg_type.oid == 19:
        return C_COLLATION_OID
    return DEFAULT_COLLATION_OID if pg_type.category == "S" else 0


def pg_type_rows() -> list[tuple]:
    """pg_type for the types pgshim knows, all in pg_catalog."""
    arrays = {t.elem_oid: t.oid for t in pgtypes.BY_OID.values() if t.sql_name.endswith("[]")}
    rows = []
    for t in pgtypes.BY_OID.values():
        byval, align, storage = _storage(t)
        is_array = t.sql_name.endswith("[]")  # not int2vector and oidvector
        rows.append(catalog_row(
            "pg_type", oid=t.oid, typname=t.name, typnamespace=PG_CATALOG_OID,
            typowner=BOOTSTRAP_ROLE_OID, typlen=t.typlen, typbyval=byval,
            typtype="p" if t.category == "P" or t.oid == 705 else "b", typcategory=t.category,
            typispreferred=t.oid in (25, 701, 1184, 16), typisdefined=True, typdelim=",",
            typsubscript="array_subscript_handler" if is_array else "-",
            typelem=t.elem_oid, typarray=arrays.get(t.oid, 0),
            typinput=f"{'array' if is_array else t.name}_in",
            typoutput=f"{'array' if is_array else t.name}_out",
            typreceive=f"{'array' if is_array else t.name}_recv",
            typsend=f"{'array' if is_array else t.name}_send", typmodin="-", typmodout="-",
            typanalyze="array_typanalyze" if is_array else "-", typalign=align,
            typstorage=storage, typtypmod=-1, typcollation=type_collation(t),
        ))  # fmt: skip
    return rows


def attribute_row(relid: int, name: str, type_oid: int, number: int, typmod: int = -1,
                  not_null: bool = False) -> tuple:  # fmt: skip
    pg_type = pgtypes.BY_OID.get(type_oid) or pgtypes.BY_OID[25]
    byval, align, storage = _storage(pg_type)
    return catalog_row(
        "pg_attribute", attrelid=relid, attname=name, atttypid=type_oid, attstattarget=-1,
        attlen=pg_type.typlen, attnum=number, attndims=1 if pg_type.category == "A" else 0,
        attcacheoff=-1, atttypmod=typmod, attbyval=byval, attalign=align, attstorage=storage,
        attcompression="", attnotnull=not_null, attidentity="", attgenerated="",
        attislocal=True, attcollation=type_collation(pg_type),
    )  # fmt: skip


def view_rows(views: dict[str, list[tuple[str, int]]]) -> tuple[list[tuple], list[tuple]]:
    """pg_class and pg_attribute rows of pgshim's catalog and status views (in pg_catalog)."""
    classes, attributes, taken = [], [], set()
    for name, columns in sorted(views.items(), key=lambda item: item[0] not in RELATION_OIDS):
        oid = relation_oid(name)
        while oid in taken:
            oid += 1
        taken.add(oid)
        classes.append(class_row(oid, name, PG_CATALOG_OID, "v", len(columns)))
        attributes += [
            attribute_row(oid, column, type_oid, number)
            for number, (column, type_oid) in enumerate(columns, start=1)
        ]
    return classes, attributes


def class_row(oid: int, name: str, namespace: int, kind: str, natts: int,
              has_index: bool = False, replident: str = "n") -> tuple:  # fmt: skip
    return catalog_row(
        "pg_class", oid=oid, relname=name, relnamespace=namespace,
        relowner=BOOTSTRAP_ROLE_OID, relam={"r": HEAP_AM_OID, "i": BTREE_AM_OID}.get(kind, 0),
        relfilenode=oid if kind in "ri" else 0, reltuples=-1.0 if kind == "r" else 0.0,
        relhasindex=has_index, relpersistence="p", relkind=kind, relnatts=natts,
        relispopulated=True, relreplident=replident,
    )  # fmt: skip


# --- functions ------------------------------------------------------------------------------

# keywords quote_ident quotes: all but the unreserved ones
_QUOTED_KEYWORDS = frozenset(RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)
_LOWER = frozenset(string.ascii_lowercase)

# acldefault: PostgreSQL 15's privileges of each kind of object before any GRANT, as (those of
# PUBLIC, those of the owner)
_DEFAULT_RIGHTS = {
    "c": ("", ""), "r": ("", "arwdDxt"), "s": ("", "rwU"), "d": ("Tc", "CTc"), "f": ("X", "X"),
    "l": ("U", "U"), "L": ("", "rw"), "n": ("", "UC"), "t": ("", "C"), "F": ("", "U"),
    "S": ("", "U"), "T": ("U", "U"), "p": ("", "sA"),
}  # fmt: skip


def _default_acl(public: str, owner: str) -> str:
    """acldefault's aclitem[] (as text[]) for the owner oid ``o`` (as grantee, 0 is PUBLIC)."""
    items = []
    if public:
        items.append(f"'={public}/' || pgshim_fn_acl_role(o)")
    if owner:
        grantee = "CASE WHEN o = 0 THEN '' ELSE pgshim_fn_acl_role(o) END"
        items.append(f"{grantee} || '={owner}/' || pgshim_fn_acl_role(o)")
    return f"CAST([{', '.join(items)}] AS VARCHAR[])"


def _quoted(name: str, plain: str, also: str = "") -> str:
    """``name`` as is when it fully matches the regular expression ``plain`` (and ``also``
    holds), else in double quotes (inner ones doubled)."""
    return (
        f"CASE WHEN regexp_full_match({name}, '{plain}'){also} THEN {name}"
        f" ELSE '\"' || replace({name}, '\"', '\"\"') || '\"' END"
    )


# DuckDB macros behind PostgreSQL's catalog functions, usable per row; each reads only the
# catalog tables named in MACRO_TABLES (a query calling it gets their current rows)
def _lookup(table: str, key: str, value: str, argument: str) -> str:
    """A macro's lookup of its argument in a catalog table: a map built by an uncorrelated
    subquery, so that the argument (a column of the caller's query, perhaps unqualified) is
    never bound inside the subquery, whose own columns would capture it."""
    return f"map_extract_value((SELECT map(list({key}), list({value})) FROM {table}), {argument})"


_SESSION_ROLE = (
    "(SELECT max(s.value) FROM pgshim_session_settings s WHERE s.name = 'session_authorization')"
)
_UNIQUE_RELNAMES = "(SELECT relname, min(oid) AS oid FROM pg_class GROUP BY relname)"
_TABLE_PRIVILEGES = ["select", "insert", "update", "delete", "truncate", "references", "trigger"]
_DATABASE_PRIVILEGES = "['create', 'connect', 'temporary', 'temp']"


def _privileges(argument: str) -> str:
    return f"pgshim_fn_privileges({argument})"


def _granted(argument: str, known: list[str]) -> str:
    """An error for a privilege PostgreSQL does not know, else true."""
    return (
        f"CASE WHEN NOT list_has_all({known!r}, {_privileges(argument)})"
        f" THEN error('unrecognized privilege type: \"' || {argument} || '\"') ELSE true END"
    )


def _role_is(attribute: str, role: str) -> str:
    return f"COALESCE({_lookup('pg_roles', 'rolname', attribute, role)}, false)"


def _relation_oid(argument: str) -> str:
    """A relation given by oid, or by name (quoted or not, schema-qualified or not)."""
    name = (
        f"regexp_replace(CASE WHEN contains(CAST({argument} AS VARCHAR), '\"')"
        f" THEN replace(CAST({argument} AS VARCHAR), '\"', '')"
        f" ELSE lower(CAST({argument} AS VARCHAR)) END, '^(public|pg_catalog)\\.', '')"
    )
    return (
        f"COALESCE(TRY_CAST(CAST({argument} AS VARCHAR) AS BIGINT),"
        f" {_lookup(_UNIQUE_RELNAMES, 'relname', 'oid', name)})"
    )


# DuckDB macros behind PostgreSQL's catalog functions, usable per row; each reads only the
# catalog tables named in MACRO_TABLES (a query calling it gets their current rows)
MACROS: dict[str, str] = {
    "pg_get_userbyid": (
        "CREATE MACRO pg_get_userbyid(r) AS COALESCE("
        + _lookup("pg_roles", "oid", "rolname", "r")
        + ", 'unknown (OID=' || CAST(r AS VARCHAR) || ')')"
    ),
    "pg_table_is_visible": (
        "CREATE MACRO pg_table_is_visible(r) AS "
        + _lookup("pg_class", "oid", "relnamespace IN (11, 2200)", "r")
    ),
    "pg_type_is_visible": (
        "CREATE MACRO pg_type_is_visible(t) AS "
        + _lookup("pg_type", "oid", "typnamespace IN (11, 2200)", "t")
    ),
    "pg_function_is_visible": (
        "CREATE MACRO pg_function_is_visible(f) AS "
        + _lookup("pg_proc", "oid", "pronamespace IN (11, 2200)", "f")
    ),
    "pg_collation_is_visible": (
        "CREATE MACRO pg_collation_is_visible(c) AS "
        + _lookup("pg_collation", "oid", "collnamespace IN (11, 2200)", "c")
    ),
    "format_type": (
        "CREATE MACRO format_type(t, m) AS CASE WHEN t IS NULL THEN NULL ELSE COALESCE("
        "CASE WHEN m IS NULL OR m < 0 THEN pgshim_fn_type_name(t)"
        " WHEN t IN (1043, 1042) AND m >= 4"
        " THEN pgshim_fn_type_name(t) || '(' || CAST(m - 4 AS VARCHAR) || ')'"
        " WHEN t = 1700 AND m >= 4 THEN 'numeric(' || CAST((m - 4) >> 16 AS VARCHAR) || ','"
        " || CAST((m - 4) & 65535 AS VARCHAR) || ')'"
        " WHEN t IN (1114, 1184, 1083, 1266) THEN regexp_replace(pgshim_fn_type_name(t),"
        " '^(\\w+)', '\\1(' || CAST(m AS VARCHAR) || ')')"
        " ELSE pgshim_fn_type_name(t) END, '???') END"
    ),
    "obj_description": (
        "CREATE MACRO obj_description(o) AS CAST(NULL AS VARCHAR), (o, c) AS "
        + _lookup(
            "pg_description",
            "CAST(objoid AS VARCHAR) || '/' || CAST(classoid AS VARCHAR) || '/' ||"
            " CAST(objsubid AS VARCHAR)",
            "description",
            "CAST(o AS VARCHAR) || '/' || CAST(CASE c "
            + " ".join(f"WHEN '{name}' THEN {oid}" for name, oid in sorted(RELATION_OIDS.items()))
            + " END AS VARCHAR) || '/0'",
        )
    ),
    "col_description": "CREATE MACRO col_description(r, n) AS CAST(NULL AS VARCHAR)",
    "shobj_description": "CREATE MACRO shobj_description(o, c) AS CAST(NULL AS VARCHAR)",
    "pg_get_expr": "CREATE MACRO pg_get_expr(e, r) AS e, (e, r, p) AS e",
    "pg_get_indexdef": (
        "CREATE MACRO pg_get_indexdef(i) AS "
        + _lookup("pgshim_index_definitions", "indexrelid", "definition", "i")
        + ", (i, c, p) AS CASE WHEN c = 0 THEN "
        + _lookup("pgshim_index_definitions", "indexrelid", "definition", "i")
        + " ELSE "
        + _lookup("pgshim_index_definitions", "indexrelid", "columns", "i")
        + "[c] END"
    ),
    "pg_get_constraintdef": (
        "CREATE MACRO pg_get_constraintdef(c) AS "
        + _lookup("pgshim_constraint_definitions", "oid", "definition", "c")
        + ", (c, p) AS "
        + _lookup("pgshim_constraint_definitions", "oid", "definition", "c")
    ),
    "pg_get_function_result": (
        "CREATE MACRO pg_get_function_result(f) AS "
        + _lookup("pgshim_function_signatures", "oid", "result", "f")
    ),
    "pg_get_function_arguments": (
        "CREATE MACRO pg_get_function_arguments(f) AS "
        + _lookup("pgshim_function_signatures", "oid", "arguments", "f")
    ),
    "pg_get_function_identity_arguments": (
        "CREATE MACRO pg_get_function_identity_arguments(f) AS "
        + _lookup("pgshim_function_signatures", "oid", "arguments", "f")
    ),
    "pg_encoding_to_char": (
        "CREATE MACRO pg_encoding_to_char(e) AS CASE e "
        + " ".join(f"WHEN {n} THEN '{name}'" for n, name in _ENCODINGS.items())
        + " ELSE '' END"
    ),
    "pg_char_to_encoding": (
        "CREATE MACRO pg_char_to_encoding(s) AS CASE upper(s) "
        + " ".join(f"WHEN '{name}' THEN {n}" for n, name in _ENCODINGS.items())
        + " ELSE -1 END"
    ),
    "to_regtype": (
        "CREATE MACRO to_regtype(n) AS (SELECT min(pgshim_t.oid) FROM"
        " (SELECT lower(regexp_replace(n, '^pg_catalog\\.', '')) AS pgshim_k) AS pgshim_a"
        " JOIN pgshim_type_names AS pgshim_t"
        " ON pgshim_t.sql_name = pgshim_a.pgshim_k OR pgshim_t.typname = pgshim_a.pgshim_k)"
    ),
    "to_regnamespace": (
        "CREATE MACRO to_regnamespace(n) AS " + _lookup("pg_namespace", "nspname", "oid", "n")
    ),
    "pgshim_fn_current_schemas": (  # per row: for the default search path
        "CREATE MACRO pgshim_fn_current_schemas(i) AS"
        " CASE WHEN i THEN ['pg_catalog', 'public'] ELSE ['public'] END"
    ),
    # what pgshim's privileges allow (see privileges.py): a superuser everything; any role may
    # SELECT the catalog, a collection only with REPLICATION, pg_authid not; no role but a
    # superuser may write, create or truncate; USAGE of the schemas, CONNECT and TEMPORARY on
    # the databases are everyone's, as PostgreSQL grants them to PUBLIC
    "pgshim_fn_privileges": (  # before the macros that call it
        "CREATE MACRO pgshim_fn_privileges(p) AS list_transform(string_split(lower(p), ','),"
        " lambda x: trim(regexp_replace(trim(x), '\\s+with\\s+grant\\s+option$', '')))"
    ),
    "has_table_privilege": (
        f"CREATE MACRO has_table_privilege(t, p) AS pgshim_fn_table_privilege({_SESSION_ROLE}, t, p),"
        " (u, t, p) AS pgshim_fn_table_privilege(u, t, p)"
    ),
    "pgshim_fn_table_privilege": (
        "CREATE MACRO pgshim_fn_table_privilege(u, t, p) AS"
        f" {_granted('p', _TABLE_PRIVILEGES)} AND ("
        f" {_role_is('rolsuper', 'u')} OR (list_contains({_privileges('p')}, 'select')"
        f" AND CASE WHEN {_relation_oid('t')} IS NULL"
        " THEN error('relation \"' || CAST(t AS VARCHAR) || '\" does not exist')"
        f" WHEN {_lookup('pg_class', 'oid', 'relname', _relation_oid('t'))} = 'pg_authid'"
        " THEN false"
        f" WHEN {_lookup('pg_class', 'oid', 'relnamespace', _relation_oid('t'))} = 2200"
        f" THEN {_role_is('rolreplication', 'u')} ELSE true END))"
    ),
    "has_schema_privilege": (
        "CREATE MACRO has_schema_privilege(s, p) AS"
        f" pgshim_fn_usage_privilege({_SESSION_ROLE}, p, ['usage', 'create']),"
        " (u, s, p) AS pgshim_fn_usage_privilege(u, p, ['usage', 'create'])"
    ),
    "has_database_privilege": (
        "CREATE MACRO has_database_privilege(d, p) AS"
        f" pgshim_fn_usage_privilege({_SESSION_ROLE}, p, {_DATABASE_PRIVILEGES}),"
        f" (u, d, p) AS pgshim_fn_usage_privilege(u, p, {_DATABASE_PRIVILEGES})"
    ),
    "pgshim_fn_usage_privilege": (
        "CREATE MACRO pgshim_fn_usage_privilege(u, p, known) AS"
        " CASE WHEN NOT list_has_all(known, pgshim_fn_privileges(p))"
        " THEN error('unrecognized privilege type: \"' || p || '\"')"
        f" ELSE {_role_is('rolsuper', 'u')} OR list_has_any(pgshim_fn_privileges(p),"
        " ['usage', 'connect', 'temporary', 'temp']) END"
    ),
    "pg_relation_is_publishable": (
        "CREATE MACRO pg_relation_is_publishable(r) AS COALESCE("
        + _lookup("pg_class", "oid", "relkind = 'r' AND relnamespace <> 11", "r")
        + ", false)"
    ),
    # collections hold no data in pgshim: their rows live in RedDB and its change stream
    "pg_relation_size": "CREATE MACRO pg_relation_size(r) AS CAST(0 AS BIGINT),"
    " (r, f) AS CAST(0 AS BIGINT)",
    "pg_table_size": "CREATE MACRO pg_table_size(r) AS CAST(0 AS BIGINT)",
    "pg_indexes_size": "CREATE MACRO pg_indexes_size(r) AS CAST(0 AS BIGINT)",
    "pg_total_relation_size": "CREATE MACRO pg_total_relation_size(r) AS CAST(0 AS BIGINT)",
    # PostgreSQL 15's pg_size_pretty(bigint): bytes below 10 kB, then halves rounded away from 0
    "pg_size_pretty": (
        "CREATE MACRO pg_size_pretty(s) AS CASE"
        " WHEN s IS NULL THEN NULL"
        " WHEN abs(s) < 10240 THEN CAST(s AS VARCHAR) || ' bytes'"
        + "".join(
            f" WHEN abs(s >> {shift}) < 20479 THEN"
            f" CAST(CAST(trunc(((s >> {shift}) + sign(s >> {shift})) / 2) AS BIGINT) AS VARCHAR)"
            f" || ' {unit}'"
            for shift, unit in ((9, "kB"), (19, "MB"), (29, "GB"), (39, "TB"))
        )
        + " ELSE CAST(CAST(trunc(((s >> 49) + sign(s >> 49)) / 2) AS BIGINT) AS VARCHAR)"
        " || ' PB' END"
    ),
    "array_upper": "CREATE MACRO array_upper(a, d) AS CASE WHEN d = 1 AND len(a) > 0"
    " THEN CAST(len(a) AS INTEGER) END",
    "array_lower": "CREATE MACRO array_lower(a, d) AS CASE WHEN d = 1 AND len(a) > 0 THEN 1 END",
    "pg_get_serial_sequence": "CREATE MACRO pg_get_serial_sequence(t, c) AS CAST(NULL AS VARCHAR)",
    "pg_get_statisticsobjdef_columns": (
        "CREATE MACRO pg_get_statisticsobjdef_columns(o) AS CAST(NULL AS VARCHAR)"
    ),
    # the rewrite's helpers: regclass and regnamespace input and output
    "pgshim_fn_type_name": (
        "CREATE MACRO pgshim_fn_type_name(t) AS "
        + _lookup("pgshim_type_names", "oid", "sql_name", "t")
    ),
    "pgshim_fn_regclass_in": (
        "CREATE MACRO pgshim_fn_regclass_in(n, strict) AS (SELECT pgshim_c.oid FROM"
        " (SELECT n AS pgshim_k) AS pgshim_a JOIN pg_class AS pgshim_c"
        " ON pgshim_c.relname = split_part(pgshim_a.pgshim_k, '.', -1)"
        " JOIN pg_namespace AS pgshim_s ON pgshim_s.oid = pgshim_c.relnamespace"
        " WHERE CASE WHEN pgshim_a.pgshim_k LIKE '%.%'"
        " THEN pgshim_s.nspname = split_part(pgshim_a.pgshim_k, '.', 1)"
        " ELSE pgshim_s.oid IN (11, 2200) END ORDER BY pgshim_s.oid LIMIT 1)"
    ),
    "pgshim_fn_regclass_out": (
        "CREATE MACRO pgshim_fn_regclass_out(r) AS CASE WHEN r IS NULL THEN NULL ELSE COALESCE("
        + _lookup(
            "pg_class AS pgshim_c JOIN pg_namespace AS pgshim_s"
            " ON pgshim_s.oid = pgshim_c.relnamespace",
            "pgshim_c.oid",
            "CASE WHEN pgshim_c.relnamespace IN (11, 2200) THEN pgshim_c.relname"
            " ELSE pgshim_s.nspname || '.' || pgshim_c.relname END",
            "r",
        )
        + ", CAST(r AS VARCHAR)) END"
    ),
    "pgshim_fn_regnamespace_out": (
        "CREATE MACRO pgshim_fn_regnamespace_out(r) AS CASE WHEN r IS NULL THEN NULL ELSE"
        " COALESCE(" + _lookup("pg_namespace", "oid", "nspname", "r") + ", CAST(r AS VARCHAR)) END"
    ),
    "to_regclass": "CREATE MACRO to_regclass(n) AS pgshim_fn_regclass_in(n, false)",
    # what pg_dump reads of privileges, options and names
    "acldefault": (
        "CREATE MACRO acldefault(t, o) AS CASE WHEN t IS NULL OR o IS NULL THEN NULL"
        + "".join(
            f" WHEN t = '{kind}' THEN " + _default_acl(public, owner)
            for kind, (public, owner) in _DEFAULT_RIGHTS.items()
        )
        + " ELSE error('unrecognized objtype abbreviation: ' || t) END"
    ),
    "pgshim_fn_acl_role": (
        "CREATE MACRO pgshim_fn_acl_role(r) AS COALESCE("
        + _lookup("pg_roles", "oid", _quoted("rolname", "[A-Za-z0-9_]+"), "r")
        + ", CAST(r AS VARCHAR))"
    ),
    "quote_ident": (
        "CREATE MACRO quote_ident(s) AS "
        + _quoted(
            "s",
            "[a-z_][a-z0-9_]*",
            " AND s NOT IN (" + ", ".join(f"'{word}'" for word in sorted(_QUOTED_KEYWORDS)) + ")",
        )
    ),
    "quote_literal": (
        "CREATE MACRO quote_literal(v) AS CASE WHEN v IS NULL THEN NULL"
        " WHEN contains(CAST(v AS VARCHAR), '\\') THEN 'E''' || replace(replace("
        "CAST(v AS VARCHAR), '\\', '\\\\'), '''', '''''') || ''''"
        " ELSE '''' || replace(CAST(v AS VARCHAR), '''', '''''') || '''' END"
    ),
    "pg_options_to_table": (
        "CREATE MACRO pg_options_to_table(o) AS TABLE SELECT"
        " CASE WHEN strpos(x, '=') > 0 THEN substr(x, 1, strpos(x, '=') - 1) ELSE x END"
        " AS option_name,"
        " CASE WHEN strpos(x, '=') > 0 THEN substr(x, strpos(x, '=') + 1) END AS option_value"
        " FROM unnest(o) AS pgshim_o(x)"
    ),
    "array_remove": (
        "CREATE MACRO array_remove(a, e) AS list_filter(a, lambda x: x IS DISTINCT FROM e)"
    ),
    # pgshim's tablespaces are PostgreSQL's built-in ones: in the data directory
    "pg_tablespace_location": (
        "CREATE MACRO pg_tablespace_location(t) AS CASE WHEN t IS NULL THEN NULL"
        f" WHEN t IN ({DEFAULT_TABLESPACE_OID}, {GLOBAL_TABLESPACE_OID}) THEN ''"
        " ELSE error('could not stat file \"pg_tblspc/' || CAST(t AS VARCHAR)"
        " || '\": No such file or directory') END"
    ),
    # pgshim has no triggers (pg_trigger is empty): NULL, as PostgreSQL for an unknown oid
    "pg_get_triggerdef": (
        "CREATE MACRO pg_get_triggerdef(t) AS CAST(NULL AS VARCHAR),"
        " (t, p) AS CAST(NULL AS VARCHAR)"
    ),
    # regproc: a function's name (its oid in pg_proc, "-" for none); a column that holds the
    # name already (SUBSTITUTED_TYPES) keeps it
    "pgshim_fn_regproc_out": (
        "CREATE MACRO pgshim_fn_regproc_out(p) AS CASE WHEN p IS NULL THEN NULL"
        " WHEN CAST(p AS VARCHAR) = '0' THEN '-' ELSE COALESCE("
        + _lookup("pg_proc", "oid", "proname", "TRY_CAST(p AS UINTEGER)")
        + ", CAST(p AS VARCHAR)) END"
    ),
}

MACRO_TABLES: dict[str, tuple[str, ...]] = {
    "pg_get_userbyid": ("pg_roles",),
    "obj_description": ("pg_description",),
    "format_type": ("pgshim_type_names",),
    "pg_table_is_visible": ("pg_class",),
    "pg_type_is_visible": ("pg_type",),
    "pg_function_is_visible": ("pg_proc",),
    "pg_collation_is_visible": ("pg_collation",),
    "pg_get_indexdef": ("pgshim_index_definitions",),
    "pg_get_constraintdef": ("pgshim_constraint_definitions",),
    "pg_get_function_result": ("pgshim_function_signatures",),
    "pg_get_function_arguments": ("pgshim_function_signatures",),
    "pg_get_function_identity_arguments": ("pgshim_function_signatures",),
    "to_regclass": ("pg_class", "pg_namespace"),
    "to_regnamespace": ("pg_namespace",),
    "pg_relation_is_publishable": ("pg_class",),
    "pgshim_fn_regclass_in": ("pg_class", "pg_namespace"),
    "pgshim_fn_regclass_out": ("pg_class", "pg_namespace"),
    "pgshim_fn_regnamespace_out": ("pg_namespace",),
    "acldefault": ("pg_roles",),
    "pgshim_fn_acl_role": ("pg_roles",),
    "pgshim_fn_regproc_out": ("pg_proc",),
    "has_table_privilege": ("pgshim_session_settings", "pg_roles", "pg_class"),
    "pgshim_fn_table_privilege": ("pg_roles", "pg_class"),
    "has_schema_privilege": ("pgshim_session_settings", "pg_roles"),
    "has_database_privilege": ("pgshim_session_settings", "pg_roles"),
    "pgshim_fn_usage_privilege": ("pg_roles",),
}

# (argument types, result type) of each macro, for pg_proc (one row per overload)
MACRO_SIGNATURES: dict[str, list[tuple[list[str], str]]] = {
    "pg_get_userbyid": [(["oid"], "name")],
    "pg_table_is_visible": [(["oid"], "bool")],
    "pg_type_is_visible": [(["oid"], "bool")],
    "pg_function_is_visible": [(["oid"], "bool")],
    "pg_collation_is_visible": [(["oid"], "bool")],
    "format_type": [(["oid", "int4"], "text")],
    "obj_description": [(["oid"], "text"), (["oid", "name"], "text")],
    "col_description": [(["oid", "int4"], "text")],
    "shobj_description": [(["oid", "name"], "text")],
    "pg_get_expr": [(["text", "oid"], "text"), (["text", "oid", "bool"], "text")],
    "pg_get_indexdef": [(["oid"], "text"), (["oid", "int4", "bool"], "text")],
    "pg_get_constraintdef": [(["oid"], "text"), (["oid", "bool"], "text")],
    "pg_get_function_result": [(["oid"], "text")],
    "pg_get_function_arguments": [(["oid"], "text")],
    "pg_get_function_identity_arguments": [(["oid"], "text")],
    "pg_encoding_to_char": [(["int4"], "name")],
    "pg_char_to_encoding": [(["name"], "int4")],
    "to_regtype": [(["text"], "regtype")],
    "to_regclass": [(["text"], "regclass")],
    "to_regnamespace": [(["text"], "regnamespace")],
    "has_table_privilege": [(["text", "text"], "bool"), (["name", "text", "text"], "bool")],
    "has_schema_privilege": [(["text", "text"], "bool"), (["name", "text", "text"], "bool")],
    "has_database_privilege": [(["text", "text"], "bool"), (["name", "text", "text"], "bool")],
    "pg_has_role": [(["name", "text"], "bool")],
    "pg_relation_is_publishable": [(["regclass"], "bool")],
    "pg_relation_size": [(["regclass"], "int8"), (["regclass", "text"], "int8")],
    "pg_table_size": [(["regclass"], "int8")],
    "pg_indexes_size": [(["regclass"], "int8")],
    "pg_total_relation_size": [(["regclass"], "int8")],
    "pg_size_pretty": [(["int8"], "text")],
    "array_upper": [(["anyarray", "int4"], "int4")],
    "array_lower": [(["anyarray", "int4"], "int4")],
    "pg_get_serial_sequence": [(["text", "text"], "text")],
    "pg_get_statisticsobjdef_columns": [(["oid"], "text")],
    "acldefault": [(['"char"', "oid"], "_text")],
    "quote_ident": [(["text"], "text")],
    "quote_literal": [(["text"], "text")],
    "array_remove": [(["anyarray", "text"], "anyarray")],
    "pg_get_triggerdef": [(["oid"], "text"), (["oid", "bool"], "text")],
    "pg_tablespace_location": [(["oid"], "text")],
}


def function_oid(name: str, arg_types: list[str], taken: set[int]) -> int:
    """An oid for a function pgshim defines (stable for a name and signature)."""
    oid = 8_000 + crc32(f"{name}({','.join(arg_types)})".encode()) % 4_000
    while oid in taken:
        oid += 1
    taken.add(oid)
    return oid


def proc_rows(
    signatures: Iterable[tuple[str, list[str], str, bool]], type_oid: Callable[[str], int]
) -> tuple[list[tuple], list[tuple]]:
    """pg_proc rows and their printed signatures, for (name, argument types, result type,
    returns a set) of every function pgshim defines."""
    procs, printed, taken = [], [], set()
    for name, arg_types, result, retset in sorted(signatures):
        oid = function_oid(name, arg_types, taken)
        arg_oids = [type_oid(t) for t in arg_types]
        procs.append(catalog_row(
            "pg_proc", oid=oid, proname=name, pronamespace=PG_CATALOG_OID,
            proowner=BOOTSTRAP_ROLE_OID, prolang=INTERNAL_LANGUAGE_OID, procost=1.0,
            prorows=1000.0 if retset else 0.0, prosupport="-", prokind="f", proretset=retset,
            provolatile="v", proparallel="u", pronargs=len(arg_oids), prorettype=type_oid(result),
            proargtypes=arg_oids, prosrc=name,
        ))  # fmt: skip
        shown = [_type_name(oid) for oid in arg_oids]
        printed.append((oid, ("SETOF " if retset else "") + _type_name(type_oid(result)),
                        ", ".join(shown)))  # fmt: skip
    return procs, printed


def _type_name(oid: int) -> str:
    pg_type = pgtypes.BY_OID.get(oid)
    return pg_type.sql_name if pg_type else str(oid)


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_ident."""
    plain = (
        bool(name)
        and (name[0] in _LOWER or name[0] == "_")
        and all(ch in _LOWER or ch in string.digits or ch == "_" for ch in name)
        and name not in _QUOTED_KEYWORDS
    )
    return name if plain else '"' + name.replace('"', '""') + '"'


# tables behind the macros above; queries cannot name them
INTERNAL_TABLES = frozenset({
    "pgshim_index_definitions", "pgshim_constraint_definitions", "pgshim_function_signatures",
})  # fmt: skip

# the helpers first: a macro is created after those it calls
MACROS = dict(sorted(MACROS.items(), key=lambda item: not item[0].startswith("pgshim_fn_")))
