"""PostgreSQL 15's configuration parameters (GUCs): names, kinds, units, contexts and limits, and
their validation as PostgreSQL does it (parse_bool, parse_int/parse_real with units, enums).

The table is PostgreSQL 15's pg_settings (name, vartype, unit, context, category, short_desc,
min_val, max_val, enumvals, boot_val), one a line separated by |; SET accepts every name in it, SHOW and pg_settings show them.
Later versions' parameters are 15's with the changes in guc_versions.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pgshim.errors import PgError
from pgshim.sql import guc_versions


@dataclass(frozen=True, slots=True)
class Guc:
    name: str
    vartype: str  # bool, integer, real, enum, string
    unit: str | None
    context: str  # internal, postmaster, sighup, superuser-backend, backend, superuser, user
    category: str
    short_desc: str
    min_val: str | None
    max_val: str | None
    enumvals: tuple[str, ...] | None
    boot_val: str
    hidden: bool = False  # GUC_NO_SHOW_ALL: not in SHOW ALL or pg_settings


# what a unit's multiple is in the unit's base (PostgreSQL's memory and time unit tables)
_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_BASE_BYTES = {"B": 1, "kB": 1024, "MB": 1024**2, "8kB": 8192}
_BASE_MS = {"ms": 1, "s": 1000, "min": 60_000}
_NUMBER = re.compile(
    r"\s*([-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))\s*(\w*)\s*"
)
_MEMORY_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".'
_TIME_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".'


def lookup(name: str, major: int = 15) -> Guc | None:
    """Parameter ``name`` as PostgreSQL ``major`` has it (None: that version has no such one)."""
    return _table(major).get(name.lower())


def all_gucs(major: int = 15) -> list[Guc]:
    """The parameters PostgreSQL ``major`` has."""
    return list(_table(major).values())


def invalid(name: str, value: str, hint: str | None = None) -> PgError:
    return PgError("22023", f'invalid value for parameter "{name}": "{value}"', hint=hint)


def parse(guc: Guc, value: str, major: int = 15) -> str:
    """A value as SHOW prints it, or PostgreSQL ``major``'s 22023 error."""
    kind = guc.vartype
    if kind == "bool":
        parsed = parse_bool(value)
        if parsed is None:
            raise PgError("22023", f'parameter "{guc.name}" requires a Boolean value')
        return "on" if parsed else "off"
    if kind in ("integer", "real"):
        number = _parse_number(guc, value, major)
        return show_number(guc, number)
    if kind == "enum":
        return _parse_enum(guc, value)
    return value


def split_list(value: str) -> list[str]:
    """A list setting's items (SET gave them joined by ', '; set_config gives the text)."""
    items, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip() or items:
        items.append(current.strip())
    return [item for item in items if item]


def search_path_schemas(value: str) -> list[str]:
    """The schema names a search_path value lists, unquoted ("$user" stays as it is)."""
    return [
        item[1:-1].replace('""', '"') if len(item) >= 2 and item[0] == item[-1] == '"' else item
        for item in split_list(value)
    ]


def parse_bool(value: str) -> bool | None:
    """PostgreSQL's parse_bool: true/false/yes/no/on/off/1/0 and unique prefixes."""
    text = value.strip().lower()
    if not text:
        return None
    for word, result in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(text):
            return result
    if text in ("on", "off"):
        return text == "on"
    if text in ("of",):
        return False
    if text in ("1", "0"):
        return text == "1"
    return None


def base_number(guc: Guc, value: str) -> float:
    """A numeric setting in its base unit (what pg_settings.setting shows)."""
    return _parse_number(guc, value)


def _parse_number(guc: Guc, value: str, major: int = 15) -> float:
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise invalid(guc.name, value)
    text, unit = match.group(1), match.group(2)
    try:
        number = float(int(text, 16)) if text.lower().lstrip("+-").startswith("0x") else float(text)
    except ValueError:
        raise invalid(guc.name, value) from None
    if text.lower().lstrip("+-").startswith("0x") and text.startswith("-"):
        number = -number
    if unit:
        number = _to_base(guc, number, unit, value)
    if guc.vartype == "integer":  # rint(): a fraction is rounded, half to even
        number = float(round(number))
    low, high = _bound(guc.min_val), _bound(guc.max_val)
    if (low is not None and number < low) or (high is not None and number > high):
        unit = f" {guc.unit}" if guc.unit else ""
        bound_unit = unit if major >= 17 else ""  # 17.11 and 18 name the unit of the bounds too
        raise PgError(
            "22023",
            f"{_plain(number, guc.vartype)}{unit} is outside the valid range for parameter"
            f' "{guc.name}" ({_plain(low, guc.vartype)}{bound_unit} ..'
            f" {_plain(high, guc.vartype)}{bound_unit})",
        )
    return number


def _to_base(guc: Guc, number: float, unit: str, value: str) -> float:
    if guc.unit in _BASE_BYTES and unit in _MEMORY_UNITS:
        return number * _MEMORY_UNITS[unit] / _BASE_BYTES[guc.unit]
    if guc.unit in _BASE_MS and unit in _TIME_UNITS:
        return number * _TIME_UNITS[unit] / _BASE_MS[guc.unit]
    raise invalid(guc.name, value, _units_hint(guc))


def _units_hint(guc: Guc) -> str | None:
    if guc.unit in _BASE_BYTES:
        return _MEMORY_HINT
    if guc.unit in _BASE_MS:
        return _TIME_HINT
    return None


def _bound(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def _plain(number: float | None, vartype: str) -> str:
    if number is None:
        return ""
    if vartype == "integer" or number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:g}"


def show_number(guc: Guc, number: float) -> str:
    """SHOW's form: the largest unit that divides the value evenly (convert_int_from_base_unit)."""
    if guc.vartype == "real" and not guc.unit:
        return f"{number:g}"
    if not guc.unit or number <= 0:
        return _plain(number, guc.vartype)
    if guc.unit in _BASE_BYTES:
        size = number * _BASE_BYTES[guc.unit]
        table = [(u, m) for u, m in _MEMORY_UNITS.items() if m >= _BASE_BYTES[guc.unit]]
        if guc.unit == "8kB":
            table = [(u, m) for u, m in table if u != "B"]
    else:
        size = number * _BASE_MS[guc.unit]
        table = [(u, m) for u, m in _TIME_UNITS.items() if m >= _BASE_MS[guc.unit]]
    for unit, multiple in sorted(table, key=lambda item: -item[1]):
        if guc.vartype == "real" or size % multiple == 0:
            if guc.vartype == "real" and size / multiple < 1 and multiple != table[0][1]:
                continue
            return f"{_plain(size / multiple, guc.vartype)}{unit}"
    return f"{_plain(number, guc.vartype)}{guc.unit}"


def setting_in_base(guc: Guc, shown: str) -> str:
    """pg_settings.setting: numbers in the base unit, other kinds as SHOW prints them."""
    if guc.vartype in ("integer", "real"):
        try:
            return _plain(_parse_number(guc, shown), guc.vartype)
        except PgError:
            return shown
    return shown


def _parse_enum(guc: Guc, value: str) -> str:
    text = value.strip().lower()
    choices = guc.enumvals or ()
    for choice in choices:
        if choice.lower() == text:
            return choice
    hidden = _HIDDEN_ENUM_VALUES.get(guc.name.lower(), {})
    if text in hidden:
        return hidden[text]
    if "on" in choices and "off" in choices:  # PostgreSQL's hidden boolean spellings
        parsed = parse_bool(text) if text not in ("o",) else None
        if parsed is not None and text in ("true", "false", "yes", "no", "1", "0"):
            return "on" if parsed else "off"
    available = ", ".join(c for c in choices)
    raise invalid(guc.name, value, f"Available values: {available}.")


_HIDDEN_ENUM_VALUES: dict[str, dict[str, str]] = {
    "client_min_messages": {"info": "info", "debug": "debug2"},
    "trace_recovery_messages": {"debug": "debug2"},
    "log_min_messages": {"debug": "debug2"},
    "log_min_error_statement": {"debug": "debug2"},
    "wal_level": {"archive": "replica", "hot_standby": "replica"},
    "synchronous_commit": {"true": "on", "false": "off", "yes": "on", "no": "off", "1": "on", "0": "off"},
    "force_parallel_mode": {"true": "on", "false": "off", "yes": "on", "no": "off", "1": "on", "0": "off"},
    "debug_parallel_query": {"true": "on", "false": "off", "yes": "on", "no": "off", "1": "on", "0": "off"},
}  # fmt: skip


def _guc(row: str) -> Guc:
    name, vartype, unit, context, category, desc, low, high, enums, boot = row.split("|")
    return Guc(
        name, vartype, unit or None, context, category, desc, low or None, high or None,
        tuple(enums.split(",")) if vartype == "enum" else None, _TRAILING_SPACE.get(name, boot),
    )  # fmt: skip


@cache
def _table(major: int) -> dict[str, Guc]:
    if major > 15:
        table = dict(_table(15))
        for line in guc_versions.CHANGES.strip("\n").split("\n"):
            version, change, row = line.split("|", 2)
            if int(version) > major:
                continue
            if change == "-":
                del table[row.lower()]
            else:
                table[row.split("|", 1)[0].lower()] = _guc(row)
        return table
    table = {(guc := _guc(line)).name.lower(): guc for line in _DATA.strip("\n").split("\n")}
    for name, vartype, context, desc in _NOT_SHOWN:
        table[name.lower()] = Guc(
            name, vartype, None, context, "Ungrouped", desc, None, None, None, "", hidden=True
        )
    return table


_TRAILING_SPACE = {"log_line_prefix": "%m [%p] "}  # a boot value the table cannot end a line with

# GUC_NO_SHOW_ALL parameters: SET and SHOW know them, SHOW ALL and pg_settings do not
_NOT_SHOWN = [
    ("is_superuser", "bool", "internal", "Shows whether the current user is a superuser."),
    ("role", "string", "user", "Sets the current role."),
    ("session_authorization", "string", "user", "Sets the session user name."),
]

_DATA = r"""
allow_in_place_tablespaces|bool||superuser|Developer Options|Allows tablespaces directly inside pg_tblspc, for testing.||||off
allow_system_table_mods|bool||superuser|Developer Options|Allows modifications of the structure of system tables.||||off
application_name|string||user|Reporting and Logging / What to Log|Sets the application name to be reported in statistics and logs.||||
archive_cleanup_command|string||sighup|Write-Ahead Log / Archive Recovery|Sets the shell command that will be executed at every restart point.||||
archive_command|string||sighup|Write-Ahead Log / Archiving|Sets the shell command that will be called to archive a WAL file.||||
archive_library|string||sighup|Write-Ahead Log / Archiving|Sets the library that will be called to archive a WAL file.||||
archive_mode|enum||postmaster|Write-Ahead Log / Archiving|Allows archiving of WAL files using archive_command.|||always,on,off|off
archive_timeout|integer|s|sighup|Write-Ahead Log / Archiving|Sets the amount of time to wait before forcing a switch to the next WAL file.|0|1073741823||0
array_nulls|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Enable input of NULL elements in arrays.||||on
authentication_timeout|integer|s|sighup|Connections and Authentication / Authentication|Sets the maximum allowed time to complete client authentication.|1|600||60
autovacuum|bool||sighup|Autovacuum|Starts the autovacuum subprocess.||||on
autovacuum_analyze_scale_factor|real||sighup|Autovacuum|Number of tuple inserts, updates, or deletes prior to analyze as a fraction of reltuples.|0|100||0.1
autovacuum_analyze_threshold|integer||sighup|Autovacuum|Minimum number of tuple inserts, updates, or deletes prior to analyze.|0|2147483647||50
autovacuum_freeze_max_age|integer||postmaster|Autovacuum|Age at which to autovacuum a table to prevent transaction ID wraparound.|100000|2000000000||200000000
autovacuum_max_workers|integer||postmaster|Autovacuum|Sets the maximum number of simultaneously running autovacuum worker processes.|1|262143||3
autovacuum_multixact_freeze_max_age|integer||postmaster|Autovacuum|Multixact age at which to autovacuum a table to prevent multixact wraparound.|10000|2000000000||400000000
autovacuum_naptime|integer|s|sighup|Autovacuum|Time to sleep between autovacuum runs.|1|2147483||60
autovacuum_vacuum_cost_delay|real|ms|sighup|Autovacuum|Vacuum cost delay in milliseconds, for autovacuum.|-1|100||2
autovacuum_vacuum_cost_limit|integer||sighup|Autovacuum|Vacuum cost amount available before napping, for autovacuum.|-1|10000||-1
autovacuum_vacuum_insert_scale_factor|real||sighup|Autovacuum|Number of tuple inserts prior to vacuum as a fraction of reltuples.|0|100||0.2
autovacuum_vacuum_insert_threshold|integer||sighup|Autovacuum|Minimum number of tuple inserts prior to vacuum, or -1 to disable insert vacuums.|-1|2147483647||1000
autovacuum_vacuum_scale_factor|real||sighup|Autovacuum|Number of tuple updates or deletes prior to vacuum as a fraction of reltuples.|0|100||0.2
autovacuum_vacuum_threshold|integer||sighup|Autovacuum|Minimum number of tuple updates or deletes prior to vacuum.|0|2147483647||50
autovacuum_work_mem|integer|kB|sighup|Resource Usage / Memory|Sets the maximum memory to be used by each autovacuum worker process.|-1|2147483647||-1
backend_flush_after|integer|8kB|user|Resource Usage / Asynchronous Behavior|Number of pages after which previously performed writes are flushed to disk.|0|256||0
backslash_quote|enum||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Sets whether "\'" is allowed in string literals.|||safe_encoding,on,off|safe_encoding
backtrace_functions|string||superuser|Developer Options|Log backtrace for errors in these functions.||||
bgwriter_delay|integer|ms|sighup|Resource Usage / Background Writer|Background writer sleep time between rounds.|10|10000||200
bgwriter_flush_after|integer|8kB|sighup|Resource Usage / Background Writer|Number of pages after which previously performed writes are flushed to disk.|0|256||64
bgwriter_lru_maxpages|integer||sighup|Resource Usage / Background Writer|Background writer maximum number of LRU pages to flush per round.|0|1073741823||100
bgwriter_lru_multiplier|real||sighup|Resource Usage / Background Writer|Multiple of the average buffer usage to free per round.|0|10||2
block_size|integer||internal|Preset Options|Shows the size of a disk block.|8192|8192||8192
bonjour|bool||postmaster|Connections and Authentication / Connection Settings|Enables advertising the server via Bonjour.||||off
bonjour_name|string||postmaster|Connections and Authentication / Connection Settings|Sets the Bonjour service name.||||
bytea_output|enum||user|Client Connection Defaults / Statement Behavior|Sets the output format for bytea.|||escape,hex|hex
check_function_bodies|bool||user|Client Connection Defaults / Statement Behavior|Check routine bodies during CREATE FUNCTION and CREATE PROCEDURE.||||on
checkpoint_completion_target|real||sighup|Write-Ahead Log / Checkpoints|Time spent flushing dirty buffers during checkpoint, as fraction of checkpoint interval.|0|1||0.9
checkpoint_flush_after|integer|8kB|sighup|Write-Ahead Log / Checkpoints|Number of pages after which previously performed writes are flushed to disk.|0|256||32
checkpoint_timeout|integer|s|sighup|Write-Ahead Log / Checkpoints|Sets the maximum time between automatic WAL checkpoints.|30|86400||300
checkpoint_warning|integer|s|sighup|Write-Ahead Log / Checkpoints|Sets the maximum time before warning if checkpoints triggered by WAL volume happen too frequently.|0|2147483647||30
client_connection_check_interval|integer|ms|user|Connections and Authentication / Connection Settings|Sets the time interval between checks for disconnection while running queries.|0|2147483647||0
client_encoding|string||user|Client Connection Defaults / Locale and Formatting|Sets the client's character set encoding.||||SQL_ASCII
client_min_messages|enum||user|Client Connection Defaults / Statement Behavior|Sets the message levels that are sent to the client.|||debug5,debug4,debug3,debug2,debug1,log,notice,warning,error|notice
cluster_name|string||postmaster|Reporting and Logging / Process Title|Sets the name of the cluster, which is included in the process title.||||
commit_delay|integer||superuser|Write-Ahead Log / Settings|Sets the delay in microseconds between transaction commit and flushing WAL to disk.|0|100000||0
commit_siblings|integer||user|Write-Ahead Log / Settings|Sets the minimum number of concurrent open transactions required before performing commit_delay.|0|1000||5
compute_query_id|enum||superuser|Statistics / Monitoring|Enables in-core computation of query identifiers.|||auto,regress,on,off|auto
config_file|string||postmaster|File Locations|Sets the server's main configuration file.||||
constraint_exclusion|enum||user|Query Tuning / Other Planner Options|Enables the planner to use constraints to optimize queries.|||partition,on,off|partition
cpu_index_tuple_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of processing each index entry during an index scan.|0|1.79769e+308||0.005
cpu_operator_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of processing each operator or function call.|0|1.79769e+308||0.0025
cpu_tuple_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of processing each tuple (row).|0|1.79769e+308||0.01
cursor_tuple_fraction|real||user|Query Tuning / Other Planner Options|Sets the planner's estimate of the fraction of a cursor's rows that will be retrieved.|0|1||0.1
data_checksums|bool||internal|Preset Options|Shows whether data checksums are turned on for this cluster.||||off
data_directory|string||postmaster|File Locations|Sets the server's data directory.||||
data_directory_mode|integer||internal|Preset Options|Shows the mode of the data directory.|0|511||448
data_sync_retry|bool||postmaster|Error Handling|Whether to continue running after a failure to sync data files.||||off
DateStyle|string||user|Client Connection Defaults / Locale and Formatting|Sets the display format for date and time values.||||ISO, MDY
db_user_namespace|bool||sighup|Connections and Authentication / Authentication|Enables per-database user names.||||off
deadlock_timeout|integer|ms|superuser|Lock Management|Sets the time to wait on a lock before checking for deadlock.|1|2147483647||1000
debug_assertions|bool||internal|Preset Options|Shows whether the running server has assertion checks enabled.||||off
debug_discard_caches|integer||superuser|Developer Options|Aggressively flush system caches for debugging purposes.|0|0||0
debug_pretty_print|bool||user|Reporting and Logging / What to Log|Indents parse and plan tree displays.||||on
debug_print_parse|bool||user|Reporting and Logging / What to Log|Logs each query's parse tree.||||off
debug_print_plan|bool||user|Reporting and Logging / What to Log|Logs each query's execution plan.||||off
debug_print_rewritten|bool||user|Reporting and Logging / What to Log|Logs each query's rewritten parse tree.||||off
default_statistics_target|integer||user|Query Tuning / Other Planner Options|Sets the default statistics target.|1|10000||100
default_table_access_method|string||user|Client Connection Defaults / Statement Behavior|Sets the default table access method for new tables.||||heap
default_tablespace|string||user|Client Connection Defaults / Statement Behavior|Sets the default tablespace to create tables and indexes in.||||
default_text_search_config|string||user|Client Connection Defaults / Locale and Formatting|Sets default text search configuration.||||pg_catalog.simple
default_toast_compression|enum||user|Client Connection Defaults / Statement Behavior|Sets the default compression method for compressible values.|||pglz,lz4|pglz
default_transaction_deferrable|bool||user|Client Connection Defaults / Statement Behavior|Sets the default deferrable status of new transactions.||||off
default_transaction_isolation|enum||user|Client Connection Defaults / Statement Behavior|Sets the transaction isolation level of each new transaction.|||serializable,repeatable read,read committed,read uncommitted|read committed
default_transaction_read_only|bool||user|Client Connection Defaults / Statement Behavior|Sets the default read-only status of new transactions.||||off
dynamic_library_path|string||superuser|Client Connection Defaults / Other Defaults|Sets the path for dynamically loadable modules.||||$libdir
dynamic_shared_memory_type|enum||postmaster|Resource Usage / Memory|Selects the dynamic shared memory implementation used.|||posix,sysv,mmap|posix
effective_cache_size|integer|8kB|user|Query Tuning / Planner Cost Constants|Sets the planner's assumption about the total size of the data caches.|1|2147483647||524288
effective_io_concurrency|integer||user|Resource Usage / Asynchronous Behavior|Number of simultaneous requests that can be handled efficiently by the disk subsystem.|0|1000||1
enable_async_append|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of async append plans.||||on
enable_bitmapscan|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of bitmap-scan plans.||||on
enable_gathermerge|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of gather merge plans.||||on
enable_hashagg|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of hashed aggregation plans.||||on
enable_hashjoin|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of hash join plans.||||on
enable_incremental_sort|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of incremental sort steps.||||on
enable_indexonlyscan|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of index-only-scan plans.||||on
enable_indexscan|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of index-scan plans.||||on
enable_material|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of materialization.||||on
enable_memoize|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of memoization.||||on
enable_mergejoin|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of merge join plans.||||on
enable_nestloop|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of nested-loop join plans.||||on
enable_parallel_append|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of parallel append plans.||||on
enable_parallel_hash|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of parallel hash plans.||||on
enable_partition_pruning|bool||user|Query Tuning / Planner Method Configuration|Enables plan-time and execution-time partition pruning.||||on
enable_partitionwise_aggregate|bool||user|Query Tuning / Planner Method Configuration|Enables partitionwise aggregation and grouping.||||off
enable_partitionwise_join|bool||user|Query Tuning / Planner Method Configuration|Enables partitionwise join.||||off
enable_seqscan|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of sequential-scan plans.||||on
enable_sort|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of explicit sort steps.||||on
enable_tidscan|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's use of TID scan plans.||||on
escape_string_warning|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Warn about backslash escapes in ordinary string literals.||||on
event_source|string||postmaster|Reporting and Logging / Where to Log|Sets the application name used to identify PostgreSQL messages in the event log.||||PostgreSQL
exit_on_error|bool||user|Error Handling|Terminate session on any error.||||off
extension_destdir|string||superuser|File Locations|Path to prepend for extension loading.||||
external_pid_file|string||postmaster|File Locations|Writes the postmaster PID to the specified file.||||
extra_float_digits|integer||user|Client Connection Defaults / Locale and Formatting|Sets the number of digits displayed for floating-point values.|-15|3||1
force_parallel_mode|enum||user|Developer Options|Forces use of parallel query facilities.|||off,on,regress|off
from_collapse_limit|integer||user|Query Tuning / Other Planner Options|Sets the FROM-list size beyond which subqueries are not collapsed.|1|2147483647||8
fsync|bool||sighup|Write-Ahead Log / Settings|Forces synchronization of updates to disk.||||on
full_page_writes|bool||sighup|Write-Ahead Log / Settings|Writes full pages to WAL when first modified after a checkpoint.||||on
geqo|bool||user|Query Tuning / Genetic Query Optimizer|Enables genetic query optimization.||||on
geqo_effort|integer||user|Query Tuning / Genetic Query Optimizer|GEQO: effort is used to set the default for other GEQO parameters.|1|10||5
geqo_generations|integer||user|Query Tuning / Genetic Query Optimizer|GEQO: number of iterations of the algorithm.|0|2147483647||0
geqo_pool_size|integer||user|Query Tuning / Genetic Query Optimizer|GEQO: number of individuals in the population.|0|2147483647||0
geqo_seed|real||user|Query Tuning / Genetic Query Optimizer|GEQO: seed for random path selection.|0|1||0
geqo_selection_bias|real||user|Query Tuning / Genetic Query Optimizer|GEQO: selective pressure within the population.|1.5|2||2
geqo_threshold|integer||user|Query Tuning / Genetic Query Optimizer|Sets the threshold of FROM items beyond which GEQO is used.|2|2147483647||12
gin_fuzzy_search_limit|integer||user|Client Connection Defaults / Other Defaults|Sets the maximum allowed result for exact search by GIN.|0|2147483647||0
gin_pending_list_limit|integer|kB|user|Client Connection Defaults / Statement Behavior|Sets the maximum size of the pending list for GIN index.|64|2147483647||4096
hash_mem_multiplier|real||user|Resource Usage / Memory|Multiple of work_mem to use for hash tables.|1|1000||2
hba_file|string||postmaster|File Locations|Sets the server's "hba" configuration file.||||
hot_standby|bool||postmaster|Replication / Standby Servers|Allows connections and queries during recovery.||||on
hot_standby_feedback|bool||sighup|Replication / Standby Servers|Allows feedback from a hot standby to the primary that will avoid query conflicts.||||off
huge_page_size|integer|kB|postmaster|Resource Usage / Memory|The size of huge page that should be requested.|0|2147483647||0
huge_pages|enum||postmaster|Resource Usage / Memory|Use of huge pages on Linux or Windows.|||off,on,try|try
ident_file|string||postmaster|File Locations|Sets the server's "ident" configuration file.||||
idle_in_transaction_session_timeout|integer|ms|user|Client Connection Defaults / Statement Behavior|Sets the maximum allowed idle time between queries, when in a transaction.|0|2147483647||0
idle_session_timeout|integer|ms|user|Client Connection Defaults / Statement Behavior|Sets the maximum allowed idle time between queries, when not in a transaction.|0|2147483647||0
ignore_checksum_failure|bool||superuser|Developer Options|Continues processing after a checksum failure.||||off
ignore_invalid_pages|bool||postmaster|Developer Options|Continues recovery after an invalid pages failure.||||off
ignore_system_indexes|bool||backend|Developer Options|Disables reading from system indexes.||||off
in_hot_standby|bool||internal|Preset Options|Shows whether hot standby is currently active.||||off
integer_datetimes|bool||internal|Preset Options|Shows whether datetimes are integer based.||||on
IntervalStyle|enum||user|Client Connection Defaults / Locale and Formatting|Sets the display format for interval values.|||postgres,postgres_verbose,sql_standard,iso_8601|postgres
jit|bool||user|Query Tuning / Other Planner Options|Allow JIT compilation.||||on
jit_above_cost|real||user|Query Tuning / Planner Cost Constants|Perform JIT compilation if query is more expensive.|-1|1.79769e+308||100000
jit_debugging_support|bool||superuser-backend|Developer Options|Register JIT-compiled functions with debugger.||||off
jit_dump_bitcode|bool||superuser|Developer Options|Write out LLVM bitcode to facilitate JIT debugging.||||off
jit_expressions|bool||user|Developer Options|Allow JIT compilation of expressions.||||on
jit_inline_above_cost|real||user|Query Tuning / Planner Cost Constants|Perform JIT inlining if query is more expensive.|-1|1.79769e+308||500000
jit_optimize_above_cost|real||user|Query Tuning / Planner Cost Constants|Optimize JIT-compiled functions if query is more expensive.|-1|1.79769e+308||500000
jit_profiling_support|bool||superuser-backend|Developer Options|Register JIT-compiled functions with perf profiler.||||off
jit_provider|string||postmaster|Client Connection Defaults / Shared Library Preloading|JIT provider to use.||||llvmjit
jit_tuple_deforming|bool||user|Developer Options|Allow JIT compilation of tuple deforming.||||on
join_collapse_limit|integer||user|Query Tuning / Other Planner Options|Sets the FROM-list size beyond which JOIN constructs are not flattened.|1|2147483647||8
krb_caseins_users|bool||sighup|Connections and Authentication / Authentication|Sets whether Kerberos and GSSAPI user names should be treated as case-insensitive.||||off
krb_server_keyfile|string||sighup|Connections and Authentication / Authentication|Sets the location of the Kerberos server key file.||||
lc_collate|string||internal|Preset Options|Shows the collation order locale.||||C
lc_ctype|string||internal|Preset Options|Shows the character classification and case conversion locale.||||C
lc_messages|string||superuser|Client Connection Defaults / Locale and Formatting|Sets the language in which messages are displayed.||||
lc_monetary|string||user|Client Connection Defaults / Locale and Formatting|Sets the locale for formatting monetary amounts.||||C
lc_numeric|string||user|Client Connection Defaults / Locale and Formatting|Sets the locale for formatting numbers.||||C
lc_time|string||user|Client Connection Defaults / Locale and Formatting|Sets the locale for formatting date and time values.||||C
listen_addresses|string||postmaster|Connections and Authentication / Connection Settings|Sets the host name or IP address(es) to listen to.||||localhost
lo_compat_privileges|bool||superuser|Version and Platform Compatibility / Previous PostgreSQL Versions|Enables backward compatibility mode for privilege checks on large objects.||||off
local_preload_libraries|string||user|Client Connection Defaults / Shared Library Preloading|Lists unprivileged shared libraries to preload into each backend.||||
lock_timeout|integer|ms|user|Client Connection Defaults / Statement Behavior|Sets the maximum allowed duration of any wait for a lock.|0|2147483647||0
log_autovacuum_min_duration|integer|ms|sighup|Reporting and Logging / What to Log|Sets the minimum execution time above which autovacuum actions will be logged.|-1|2147483647||600000
log_checkpoints|bool||sighup|Reporting and Logging / What to Log|Logs each checkpoint.||||on
log_connections|bool||superuser-backend|Reporting and Logging / What to Log|Logs each successful connection.||||off
log_destination|string||sighup|Reporting and Logging / Where to Log|Sets the destination for server log output.||||stderr
log_directory|string||sighup|Reporting and Logging / Where to Log|Sets the destination directory for log files.||||log
log_disconnections|bool||superuser-backend|Reporting and Logging / What to Log|Logs end of a session, including duration.||||off
log_duration|bool||superuser|Reporting and Logging / What to Log|Logs the duration of each completed SQL statement.||||off
log_error_verbosity|enum||superuser|Reporting and Logging / What to Log|Sets the verbosity of logged messages.|||terse,default,verbose|default
log_executor_stats|bool||superuser|Statistics / Monitoring|Writes executor performance statistics to the server log.||||off
log_file_mode|integer||sighup|Reporting and Logging / Where to Log|Sets the file permissions for log files.|0|511||384
log_filename|string||sighup|Reporting and Logging / Where to Log|Sets the file name pattern for log files.||||postgresql-%Y-%m-%d_%H%M%S.log
log_hostname|bool||sighup|Reporting and Logging / What to Log|Logs the host name in the connection logs.||||off
log_line_prefix|string||sighup|Reporting and Logging / What to Log|Controls information prefixed to each log line.||||%m [%p]
log_lock_waits|bool||superuser|Reporting and Logging / What to Log|Logs long lock waits.||||off
log_min_duration_sample|integer|ms|superuser|Reporting and Logging / When to Log|Sets the minimum execution time above which a sample of statements will be logged. Sampling is determined by log_statement_sample_rate.|-1|2147483647||-1
log_min_duration_statement|integer|ms|superuser|Reporting and Logging / When to Log|Sets the minimum execution time above which all statements will be logged.|-1|2147483647||-1
log_min_error_statement|enum||superuser|Reporting and Logging / When to Log|Causes all statements generating error at or above this level to be logged.|||debug5,debug4,debug3,debug2,debug1,info,notice,warning,error,log,fatal,panic|error
log_min_messages|enum||superuser|Reporting and Logging / When to Log|Sets the message levels that are logged.|||debug5,debug4,debug3,debug2,debug1,info,notice,warning,error,log,fatal,panic|warning
log_parameter_max_length|integer|B|superuser|Reporting and Logging / What to Log|Sets the maximum length in bytes of data logged for bind parameter values when logging statements.|-1|1073741823||-1
log_parameter_max_length_on_error|integer|B|user|Reporting and Logging / What to Log|Sets the maximum length in bytes of data logged for bind parameter values when logging statements, on error.|-1|1073741823||0
log_parser_stats|bool||superuser|Statistics / Monitoring|Writes parser performance statistics to the server log.||||off
log_planner_stats|bool||superuser|Statistics / Monitoring|Writes planner performance statistics to the server log.||||off
log_recovery_conflict_waits|bool||sighup|Reporting and Logging / What to Log|Logs standby recovery conflict waits.||||off
log_replication_commands|bool||superuser|Reporting and Logging / What to Log|Logs each replication command.||||off
log_rotation_age|integer|min|sighup|Reporting and Logging / Where to Log|Sets the amount of time to wait before forcing log file rotation.|0|35791394||1440
log_rotation_size|integer|kB|sighup|Reporting and Logging / Where to Log|Sets the maximum size a log file can reach before being rotated.|0|2097151||10240
log_startup_progress_interval|integer|ms|sighup|Reporting and Logging / When to Log|Time between progress updates for long-running startup operations.|0|2147483647||10000
log_statement|enum||superuser|Reporting and Logging / What to Log|Sets the type of statements logged.|||none,ddl,mod,all|none
log_statement_sample_rate|real||superuser|Reporting and Logging / When to Log|Fraction of statements exceeding log_min_duration_sample to be logged.|0|1||1
log_statement_stats|bool||superuser|Statistics / Monitoring|Writes cumulative performance statistics to the server log.||||off
log_temp_files|integer|kB|superuser|Reporting and Logging / What to Log|Log the use of temporary files larger than this number of kilobytes.|-1|2147483647||-1
log_timezone|string||sighup|Reporting and Logging / What to Log|Sets the time zone to use in log messages.||||GMT
log_transaction_sample_rate|real||superuser|Reporting and Logging / When to Log|Sets the fraction of transactions from which to log all statements.|0|1||0
log_truncate_on_rotation|bool||sighup|Reporting and Logging / Where to Log|Truncate existing log files of same name during log rotation.||||off
logging_collector|bool||postmaster|Reporting and Logging / Where to Log|Start a subprocess to capture stderr, csvlog and/or jsonlog into log files.||||off
logical_decoding_work_mem|integer|kB|user|Resource Usage / Memory|Sets the maximum memory to be used for logical decoding.|64|2147483647||65536
maintenance_io_concurrency|integer||user|Resource Usage / Asynchronous Behavior|A variant of effective_io_concurrency that is used for maintenance work.|0|1000||10
maintenance_work_mem|integer|kB|user|Resource Usage / Memory|Sets the maximum memory to be used for maintenance operations.|1024|2147483647||65536
max_connections|integer||postmaster|Connections and Authentication / Connection Settings|Sets the maximum number of concurrent connections.|1|262143||100
max_files_per_process|integer||postmaster|Resource Usage / Kernel Resources|Sets the maximum number of simultaneously open files for each server process.|64|2147483647||1000
max_function_args|integer||internal|Preset Options|Shows the maximum number of function arguments.|100|100||100
max_identifier_length|integer||internal|Preset Options|Shows the maximum identifier length.|63|63||63
max_index_keys|integer||internal|Preset Options|Shows the maximum number of index keys.|32|32||32
max_locks_per_transaction|integer||postmaster|Lock Management|Sets the maximum number of locks per transaction.|10|2147483647||64
max_logical_replication_workers|integer||postmaster|Replication / Subscribers|Maximum number of logical replication worker processes.|0|262143||4
max_parallel_maintenance_workers|integer||user|Resource Usage / Asynchronous Behavior|Sets the maximum number of parallel processes per maintenance operation.|0|1024||2
max_parallel_workers|integer||user|Resource Usage / Asynchronous Behavior|Sets the maximum number of parallel workers that can be active at one time.|0|1024||8
max_parallel_workers_per_gather|integer||user|Resource Usage / Asynchronous Behavior|Sets the maximum number of parallel processes per executor node.|0|1024||2
max_pred_locks_per_page|integer||sighup|Lock Management|Sets the maximum number of predicate-locked tuples per page.|0|2147483647||2
max_pred_locks_per_relation|integer||sighup|Lock Management|Sets the maximum number of predicate-locked pages and tuples per relation.|-2147483648|2147483647||-2
max_pred_locks_per_transaction|integer||postmaster|Lock Management|Sets the maximum number of predicate locks per transaction.|10|2147483647||64
max_prepared_transactions|integer||postmaster|Resource Usage / Memory|Sets the maximum number of simultaneously prepared transactions.|0|262143||0
max_replication_slots|integer||postmaster|Replication / Sending Servers|Sets the maximum number of simultaneously defined replication slots.|0|262143||10
max_slot_wal_keep_size|integer|MB|sighup|Replication / Sending Servers|Sets the maximum WAL size that can be reserved by replication slots.|-1|2147483647||-1
max_stack_depth|integer|kB|superuser|Resource Usage / Memory|Sets the maximum stack depth, in kilobytes.|100|2147483647||100
max_standby_archive_delay|integer|ms|sighup|Replication / Standby Servers|Sets the maximum delay before canceling queries when a hot standby server is processing archived WAL data.|-1|2147483647||30000
max_standby_streaming_delay|integer|ms|sighup|Replication / Standby Servers|Sets the maximum delay before canceling queries when a hot standby server is processing streamed WAL data.|-1|2147483647||30000
max_sync_workers_per_subscription|integer||sighup|Replication / Subscribers|Maximum number of table synchronization workers per subscription.|0|262143||2
max_wal_senders|integer||postmaster|Replication / Sending Servers|Sets the maximum number of simultaneously running WAL sender processes.|0|262143||10
max_wal_size|integer|MB|sighup|Write-Ahead Log / Checkpoints|Sets the WAL size that triggers a checkpoint.|2|2147483647||1024
max_worker_processes|integer||postmaster|Resource Usage / Asynchronous Behavior|Maximum number of concurrent worker processes.|0|262143||8
min_dynamic_shared_memory|integer|MB|postmaster|Resource Usage / Memory|Amount of dynamic shared memory reserved at startup.|0|2147483647||0
min_parallel_index_scan_size|integer|8kB|user|Query Tuning / Planner Cost Constants|Sets the minimum amount of index data for a parallel scan.|0|715827882||64
min_parallel_table_scan_size|integer|8kB|user|Query Tuning / Planner Cost Constants|Sets the minimum amount of table data for a parallel scan.|0|715827882||1024
min_wal_size|integer|MB|sighup|Write-Ahead Log / Checkpoints|Sets the minimum size to shrink the WAL to.|2|2147483647||80
old_snapshot_threshold|integer|min|postmaster|Resource Usage / Asynchronous Behavior|Time before a snapshot is too old to read pages changed after the snapshot was taken.|-1|86400||-1
parallel_leader_participation|bool||user|Resource Usage / Asynchronous Behavior|Controls whether Gather and Gather Merge also run subplans.||||on
parallel_setup_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of starting up worker processes for parallel query.|0|1.79769e+308||1000
parallel_tuple_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of passing each tuple (row) from worker to leader backend.|0|1.79769e+308||0.1
password_encryption|enum||user|Connections and Authentication / Authentication|Chooses the algorithm for encrypting passwords.|||md5,scram-sha-256|scram-sha-256
plan_cache_mode|enum||user|Query Tuning / Other Planner Options|Controls the planner's selection of custom or generic plan.|||auto,force_generic_plan,force_custom_plan|auto
port|integer||postmaster|Connections and Authentication / Connection Settings|Sets the TCP port the server listens on.|1|65535||5432
post_auth_delay|integer|s|backend|Developer Options|Sets the amount of time to wait after authentication on connection startup.|0|2147||0
pre_auth_delay|integer|s|sighup|Developer Options|Sets the amount of time to wait before authentication on connection startup.|0|60||0
primary_conninfo|string||sighup|Replication / Standby Servers|Sets the connection string to be used to connect to the sending server.||||
primary_slot_name|string||sighup|Replication / Standby Servers|Sets the name of the replication slot to use on the sending server.||||
promote_trigger_file|string||sighup|Replication / Standby Servers|Specifies a file name whose presence ends recovery in the standby.||||
quote_all_identifiers|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|When generating SQL fragments, quote all identifiers.||||off
random_page_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of a nonsequentially fetched disk page.|0|1.79769e+308||4
recovery_end_command|string||sighup|Write-Ahead Log / Archive Recovery|Sets the shell command that will be executed once at the end of recovery.||||
recovery_init_sync_method|enum||sighup|Error Handling|Sets the method for synchronizing the data directory before crash recovery.|||fsync,syncfs|fsync
recovery_min_apply_delay|integer|ms|sighup|Replication / Standby Servers|Sets the minimum delay for applying changes during recovery.|0|2147483647||0
recovery_prefetch|enum||sighup|Write-Ahead Log / Recovery|Prefetch referenced blocks during recovery.|||off,on,try|try
recovery_target|string||postmaster|Write-Ahead Log / Recovery Target|Set to "immediate" to end recovery as soon as a consistent state is reached.||||
recovery_target_action|enum||postmaster|Write-Ahead Log / Recovery Target|Sets the action to perform upon reaching the recovery target.|||pause,promote,shutdown|pause
recovery_target_inclusive|bool||postmaster|Write-Ahead Log / Recovery Target|Sets whether to include or exclude transaction with recovery target.||||on
recovery_target_lsn|string||postmaster|Write-Ahead Log / Recovery Target|Sets the LSN of the write-ahead log location up to which recovery will proceed.||||
recovery_target_name|string||postmaster|Write-Ahead Log / Recovery Target|Sets the named restore point up to which recovery will proceed.||||
recovery_target_time|string||postmaster|Write-Ahead Log / Recovery Target|Sets the time stamp up to which recovery will proceed.||||
recovery_target_timeline|string||postmaster|Write-Ahead Log / Recovery Target|Specifies the timeline to recover into.||||latest
recovery_target_xid|string||postmaster|Write-Ahead Log / Recovery Target|Sets the transaction ID up to which recovery will proceed.||||
recursive_worktable_factor|real||user|Query Tuning / Other Planner Options|Sets the planner's estimate of the average size of a recursive query's working table.|0.001|1e+06||10
remove_temp_files_after_crash|bool||sighup|Developer Options|Remove temporary files after backend crash.||||on
restart_after_crash|bool||sighup|Error Handling|Reinitialize server after backend crash.||||on
restore_command|string||sighup|Write-Ahead Log / Archive Recovery|Sets the shell command that will be called to retrieve an archived WAL file.||||
restrict_nonsystem_relation_kind|string||user|Client Connection Defaults / Statement Behavior|Prohibits access to non-system relations of specified kinds.||||
row_security|bool||user|Client Connection Defaults / Statement Behavior|Enable row security.||||on
search_path|string||user|Client Connection Defaults / Statement Behavior|Sets the schema search order for names that are not schema-qualified.||||"$user", public
segment_size|integer|8kB|internal|Preset Options|Shows the number of pages per disk file.|131072|131072||131072
seq_page_cost|real||user|Query Tuning / Planner Cost Constants|Sets the planner's estimate of the cost of a sequentially fetched disk page.|0|1.79769e+308||1
server_encoding|string||internal|Preset Options|Shows the server (database) character set encoding.||||SQL_ASCII
server_version|string||internal|Preset Options|Shows the server version.||||15.18 (Debian 15.18-0+deb12u1)
server_version_num|integer||internal|Preset Options|Shows the server version as an integer.|150018|150018||150018
session_preload_libraries|string||superuser|Client Connection Defaults / Shared Library Preloading|Lists shared libraries to preload into each backend.||||
session_replication_role|enum||superuser|Client Connection Defaults / Statement Behavior|Sets the session's behavior for triggers and rewrite rules.|||origin,replica,local|origin
shared_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the number of shared memory buffers used by the server.|16|1073741823||16384
shared_memory_size|integer|MB|internal|Preset Options|Shows the size of the server's main shared memory area (rounded up to the nearest MB).|0|2147483647||0
shared_memory_size_in_huge_pages|integer||internal|Preset Options|Shows the number of huge pages needed for the main shared memory area.|-1|2147483647||-1
shared_memory_type|enum||postmaster|Resource Usage / Memory|Selects the shared memory implementation used for the main shared memory region.|||sysv,mmap|mmap
shared_preload_libraries|string||postmaster|Client Connection Defaults / Shared Library Preloading|Lists shared libraries to preload into server.||||
ssl|bool||sighup|Connections and Authentication / SSL|Enables SSL connections.||||off
ssl_ca_file|string||sighup|Connections and Authentication / SSL|Location of the SSL certificate authority file.||||
ssl_cert_file|string||sighup|Connections and Authentication / SSL|Location of the SSL server certificate file.||||server.crt
ssl_ciphers|string||sighup|Connections and Authentication / SSL|Sets the list of allowed SSL ciphers.||||HIGH:MEDIUM:+3DES:!aNULL
ssl_crl_dir|string||sighup|Connections and Authentication / SSL|Location of the SSL certificate revocation list directory.||||
ssl_crl_file|string||sighup|Connections and Authentication / SSL|Location of the SSL certificate revocation list file.||||
ssl_dh_params_file|string||sighup|Connections and Authentication / SSL|Location of the SSL DH parameters file.||||
ssl_ecdh_curve|string||sighup|Connections and Authentication / SSL|Sets the curve to use for ECDH.||||prime256v1
ssl_key_file|string||sighup|Connections and Authentication / SSL|Location of the SSL server private key file.||||server.key
ssl_library|string||internal|Preset Options|Shows the name of the SSL library.||||OpenSSL
ssl_max_protocol_version|enum||sighup|Connections and Authentication / SSL|Sets the maximum SSL/TLS protocol version to use.|||,TLSv1,TLSv1.1,TLSv1.2,TLSv1.3|
ssl_min_protocol_version|enum||sighup|Connections and Authentication / SSL|Sets the minimum SSL/TLS protocol version to use.|||TLSv1,TLSv1.1,TLSv1.2,TLSv1.3|TLSv1.2
ssl_passphrase_command|string||sighup|Connections and Authentication / SSL|Command to obtain passphrases for SSL.||||
ssl_passphrase_command_supports_reload|bool||sighup|Connections and Authentication / SSL|Controls whether ssl_passphrase_command is called during server reload.||||off
ssl_prefer_server_ciphers|bool||sighup|Connections and Authentication / SSL|Give priority to server ciphersuite order.||||on
standard_conforming_strings|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Causes '...' strings to treat backslashes literally.||||on
statement_timeout|integer|ms|user|Client Connection Defaults / Statement Behavior|Sets the maximum allowed duration of any statement.|0|2147483647||0
stats_fetch_consistency|enum||user|Statistics / Cumulative Query and Index Statistics|Sets the consistency of accesses to statistics data.|||none,cache,snapshot|cache
superuser_reserved_connections|integer||postmaster|Connections and Authentication / Connection Settings|Sets the number of connection slots reserved for superusers.|0|262143||3
synchronize_seqscans|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Enable synchronized sequential scans.||||on
synchronous_commit|enum||user|Write-Ahead Log / Settings|Sets the current transaction's synchronization level.|||local,remote_write,remote_apply,on,off|on
synchronous_standby_names|string||sighup|Replication / Primary Server|Number of synchronous standbys and list of names of potential synchronous ones.||||
syslog_facility|enum||sighup|Reporting and Logging / Where to Log|Sets the syslog "facility" to be used when syslog enabled.|||local0,local1,local2,local3,local4,local5,local6,local7|local0
syslog_ident|string||sighup|Reporting and Logging / Where to Log|Sets the program name used to identify PostgreSQL messages in syslog.||||postgres
syslog_sequence_numbers|bool||sighup|Reporting and Logging / Where to Log|Add sequence number to syslog messages to avoid duplicate suppression.||||on
syslog_split_messages|bool||sighup|Reporting and Logging / Where to Log|Split messages sent to syslog by lines and to fit into 1024 bytes.||||on
tcp_keepalives_count|integer||user|Connections and Authentication / Connection Settings|Maximum number of TCP keepalive retransmits.|0|2147483647||0
tcp_keepalives_idle|integer|s|user|Connections and Authentication / Connection Settings|Time between issuing TCP keepalives.|0|2147483647||0
tcp_keepalives_interval|integer|s|user|Connections and Authentication / Connection Settings|Time between TCP keepalive retransmits.|0|2147483647||0
tcp_user_timeout|integer|ms|user|Connections and Authentication / Connection Settings|TCP user timeout.|0|2147483647||0
temp_buffers|integer|8kB|user|Resource Usage / Memory|Sets the maximum number of temporary buffers used by each session.|100|1073741823||1024
temp_file_limit|integer|kB|superuser|Resource Usage / Disk|Limits the total size of all temporary files used by each process.|-1|2147483647||-1
temp_tablespaces|string||user|Client Connection Defaults / Statement Behavior|Sets the tablespace(s) to use for temporary tables and sort files.||||
TimeZone|string||user|Client Connection Defaults / Locale and Formatting|Sets the time zone for displaying and interpreting time stamps.||||GMT
timezone_abbreviations|string||user|Client Connection Defaults / Locale and Formatting|Selects a file of time zone abbreviations.||||
trace_notify|bool||user|Developer Options|Generates debugging output for LISTEN and NOTIFY.||||off
trace_recovery_messages|enum||sighup|Developer Options|Enables logging of recovery-related debugging information.|||debug5,debug4,debug3,debug2,debug1,log,notice,warning,error|log
trace_sort|bool||user|Developer Options|Emit information about resource usage in sorting.||||off
track_activities|bool||superuser|Statistics / Cumulative Query and Index Statistics|Collects information about executing commands.||||on
track_activity_query_size|integer|B|postmaster|Statistics / Cumulative Query and Index Statistics|Sets the size reserved for pg_stat_activity.query, in bytes.|100|1048576||1024
track_commit_timestamp|bool||postmaster|Replication / Sending Servers|Collects transaction commit time.||||off
track_counts|bool||superuser|Statistics / Cumulative Query and Index Statistics|Collects statistics on database activity.||||on
track_functions|enum||superuser|Statistics / Cumulative Query and Index Statistics|Collects function-level statistics on database activity.|||none,pl,all|none
track_io_timing|bool||superuser|Statistics / Cumulative Query and Index Statistics|Collects timing statistics for database I/O activity.||||off
track_wal_io_timing|bool||superuser|Statistics / Cumulative Query and Index Statistics|Collects timing statistics for WAL I/O activity.||||off
transaction_deferrable|bool||user|Client Connection Defaults / Statement Behavior|Whether to defer a read-only serializable transaction until it can be executed with no possible serialization failures.||||off
transaction_isolation|enum||user|Client Connection Defaults / Statement Behavior|Sets the current transaction's isolation level.|||serializable,repeatable read,read committed,read uncommitted|read committed
transaction_read_only|bool||user|Client Connection Defaults / Statement Behavior|Sets the current transaction's read-only status.||||off
transform_null_equals|bool||user|Version and Platform Compatibility / Other Platforms and Clients|Treats "expr=NULL" as "expr IS NULL".||||off
unix_socket_directories|string||postmaster|Connections and Authentication / Connection Settings|Sets the directories where Unix-domain sockets will be created.||||
unix_socket_group|string||postmaster|Connections and Authentication / Connection Settings|Sets the owning group of the Unix-domain socket.||||
unix_socket_permissions|integer||postmaster|Connections and Authentication / Connection Settings|Sets the access permissions of the Unix-domain socket.|0|511||511
update_process_title|bool||superuser|Reporting and Logging / Process Title|Updates the process title to show the active SQL command.||||on
vacuum_cost_delay|real|ms|user|Resource Usage / Cost-Based Vacuum Delay|Vacuum cost delay in milliseconds.|0|100||0
vacuum_cost_limit|integer||user|Resource Usage / Cost-Based Vacuum Delay|Vacuum cost amount available before napping.|1|10000||200
vacuum_cost_page_dirty|integer||user|Resource Usage / Cost-Based Vacuum Delay|Vacuum cost for a page dirtied by vacuum.|0|10000||20
vacuum_cost_page_hit|integer||user|Resource Usage / Cost-Based Vacuum Delay|Vacuum cost for a page found in the buffer cache.|0|10000||1
vacuum_cost_page_miss|integer||user|Resource Usage / Cost-Based Vacuum Delay|Vacuum cost for a page not found in the buffer cache.|0|10000||2
vacuum_defer_cleanup_age|integer||sighup|Replication / Primary Server|Number of transactions by which VACUUM and HOT cleanup should be deferred, if any.|0|1000000||0
vacuum_failsafe_age|integer||user|Client Connection Defaults / Statement Behavior|Age at which VACUUM should trigger failsafe to avoid a wraparound outage.|0|2100000000||1600000000
vacuum_freeze_min_age|integer||user|Client Connection Defaults / Statement Behavior|Minimum age at which VACUUM should freeze a table row.|0|1000000000||50000000
vacuum_freeze_table_age|integer||user|Client Connection Defaults / Statement Behavior|Age at which VACUUM should scan whole table to freeze tuples.|0|2000000000||150000000
vacuum_multixact_failsafe_age|integer||user|Client Connection Defaults / Statement Behavior|Multixact age at which VACUUM should trigger failsafe to avoid a wraparound outage.|0|2100000000||1600000000
vacuum_multixact_freeze_min_age|integer||user|Client Connection Defaults / Statement Behavior|Minimum age at which VACUUM should freeze a MultiXactId in a table row.|0|1000000000||5000000
vacuum_multixact_freeze_table_age|integer||user|Client Connection Defaults / Statement Behavior|Multixact age at which VACUUM should scan whole table to freeze tuples.|0|2000000000||150000000
wal_block_size|integer||internal|Preset Options|Shows the block size in the write ahead log.|8192|8192||8192
wal_buffers|integer|8kB|postmaster|Write-Ahead Log / Settings|Sets the number of disk-page buffers in shared memory for WAL.|-1|262143||-1
wal_compression|enum||superuser|Write-Ahead Log / Settings|Compresses full-page writes written in WAL file with specified method.|||pglz,lz4,zstd,on,off|off
wal_consistency_checking|string||superuser|Developer Options|Sets the WAL resource managers for which WAL consistency checks are done.||||
wal_decode_buffer_size|integer|B|postmaster|Write-Ahead Log / Recovery|Buffer size for reading ahead in the WAL during recovery.|65536|1073741823||524288
wal_init_zero|bool||superuser|Write-Ahead Log / Settings|Writes zeroes to new WAL files before first use.||||on
wal_keep_size|integer|MB|sighup|Replication / Sending Servers|Sets the size of WAL files held for standby servers.|0|2147483647||0
wal_level|enum||postmaster|Write-Ahead Log / Settings|Sets the level of information written to the WAL.|||minimal,replica,logical|replica
wal_log_hints|bool||postmaster|Write-Ahead Log / Settings|Writes full pages to WAL when first modified after a checkpoint, even for a non-critical modification.||||off
wal_receiver_create_temp_slot|bool||sighup|Replication / Standby Servers|Sets whether a WAL receiver should create a temporary replication slot if no permanent slot is configured.||||off
wal_receiver_status_interval|integer|s|sighup|Replication / Standby Servers|Sets the maximum interval between WAL receiver status reports to the sending server.|0|2147483||10
wal_receiver_timeout|integer|ms|sighup|Replication / Standby Servers|Sets the maximum wait time to receive data from the sending server.|0|2147483647||60000
wal_recycle|bool||superuser|Write-Ahead Log / Settings|Recycles WAL files by renaming them.||||on
wal_retrieve_retry_interval|integer|ms|sighup|Replication / Standby Servers|Sets the time to wait before retrying to retrieve WAL after a failed attempt.|1|2147483647||5000
wal_segment_size|integer|B|internal|Preset Options|Shows the size of write ahead log segments.|1048576|1073741824||16777216
wal_sender_timeout|integer|ms|user|Replication / Sending Servers|Sets the maximum time to wait for WAL replication.|0|2147483647||60000
wal_skip_threshold|integer|kB|user|Write-Ahead Log / Settings|Minimum size of new file to fsync instead of writing WAL.|0|2147483647||2048
wal_sync_method|enum||sighup|Write-Ahead Log / Settings|Selects the method used for forcing WAL updates to disk.|||fsync,fdatasync,open_sync,open_datasync|fdatasync
wal_writer_delay|integer|ms|sighup|Write-Ahead Log / Settings|Time between WAL flushes performed in the WAL writer.|1|10000||200
wal_writer_flush_after|integer|8kB|sighup|Write-Ahead Log / Settings|Amount of WAL written out by WAL writer that triggers a flush.|0|2147483647||128
work_mem|integer|kB|user|Resource Usage / Memory|Sets the maximum memory to be used for query workspaces.|64|2147483647||4096
xmlbinary|enum||user|Client Connection Defaults / Statement Behavior|Sets how binary values are to be encoded in XML.|||base64,hex|base64
xmloption|enum||user|Client Connection Defaults / Statement Behavior|Sets whether XML data in implicit parsing and serialization operations is to be considered as documents or content fragments.|||content,document|content
zero_damaged_pages|bool||superuser|Developer Options|Continues processing past damaged page headers.||||off
"""
