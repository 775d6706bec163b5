"""PostgreSQL 15's statistics views over pgshim's own state, for monitoring tools (the
Prometheus postgres_exporter's default collectors, monitoring scripts): pg_stat_activity (the
server's sessions), pg_stat_replication_slots (what each slot's consumers were sent),
pg_stat_database, pg_stat_database_conflicts, pg_stat_bgwriter, pg_stat_archiver, pg_stat_wal,
pg_stat_subscription_stats and pg_locks; presenting 16 or later pg_stat_io (stat_io.py), 17 or
later pg_stat_checkpointer.

Values are honest: pgshim has no buffers, checkpoints, archiver, locks or write transactions, so
those counters are zero (and pg_locks is empty); what PostgreSQL shows as NULL is NULL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from pgshim.sql import stat_io
from pgshim.sql.catalog import CATALOG_VIEWS
from pgshim.sql.privileges import sees_details_of

if TYPE_CHECKING:
    from pgshim.app import Application

SUPERUSER_OID = 10  # what pg_stat_replication shows as usesysid
# pg_stat_checkpointer as PostgreSQL 17 added it (catalog_versions has 18's change)
CHECKPOINTER_COLUMNS = [
    ("num_timed", "int8"), ("num_requested", "int8"), ("restartpoints_timed", "int8"),
    ("restartpoints_req", "int8"), ("restartpoints_done", "int8"), ("write_time", "float8"),
    ("sync_time", "float8"), ("buffers_written", "int8"), ("stats_reset", "timestamptz"),
]  # fmt: skip


def register_statistics_views(app: Application) -> None:
    cat = app.catalog
    views: dict[str, Any] = {
        "pg_stat_database": partial(_stat_database, app),
        "pg_stat_database_conflicts": partial(_stat_database_conflicts, app),
        "pg_stat_bgwriter": partial(_stat_bgwriter, app),
        "pg_stat_archiver": partial(_stat_archiver, app),
        "pg_stat_wal": partial(_stat_wal, app),
        "pg_stat_subscription_stats": list,  # pgshim subscribes to nothing
        "pg_locks": list,
        "pg_stat_replication_slots": partial(_stat_replication_slots, app),
    }
    for name, rows in views.items():
        cat.register_view(name, CATALOG_VIEWS[name], rows)
    major = app.version.major
    if major >= 16:
        start = app.catalog.facts.start_time
        cat.register_view("pg_stat_io", stat_io.columns(major), lambda: stat_io.rows(major, start))
    if major >= 17:
        cat.register_view(
            "pg_stat_checkpointer", CHECKPOINTER_COLUMNS, partial(_stat_checkpointer, app)
        )
    cat.register_view(
        "pg_stat_activity",
        CATALOG_VIEWS["pg_stat_activity"],
        partial(_stat_activity, app),
        needs_session=True,
    )
    cat.facts.database_sizes = partial(_database_sizes, app)


def _databases(app: Application) -> list[tuple[int, str]]:
    provider = app.catalog_rows.providers().get("pg_database")
    return [(row[0], row[1]) for row in provider()] if provider else []


def _database_sizes(app: Application) -> list[tuple[str, int]]:
    """pg_database_size(): the configured database holds the spool's changes; the others
    (postgres, template1) nothing."""
    spool = app.follower.status.size or 0
    return [(name, spool if name == app.config.database else 0) for _, name in _databases(app)]


def _backends(app: Application, database: str | None) -> int:
    return sum(
        1
        for session in app.sessions.values()
        if (getattr(session.info, "database", None) == database)
    )


def _stat_database(app: Application) -> list[tuple]:
    """PostgreSQL 15's rows: one for shared objects (datid 0, datname NULL), one per database."""
    rows = []
    for oid, name in [(0, None), *_databases(app)]:
        counters = (0,) * 14  # xact_commit .. deadlocks, checksum_failures below
        rows.append((
            oid, name, _backends(app, name) if name else 0, *counters[:13],
            None, None,  # checksum_failures, checksum_last_failure: data checksums are off
            0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0,
            None,  # stats_reset: never reset
        ))  # fmt: skip
    return rows


def _stat_database_conflicts(app: Application) -> list[tuple]:
    return [(oid, name, 0, 0, 0, 0, 0) for oid, name in _databases(app)]


def _stat_bgwriter(app: Application) -> list[tuple]:
    # stats_reset is when the counters started: the server's start (never NULL in PostgreSQL)
    return [(0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, app.catalog.facts.start_time)]


def _stat_wal(app: Application) -> list[tuple]:
    return [(0, 0, 0, 0, 0, 0, 0.0, 0.0, app.catalog.facts.start_time)]


def _stat_checkpointer(app: Application) -> list[tuple]:
    return [(0, 0, 0, 0, 0, 0.0, 0.0, 0, app.catalog.facts.start_time)]


def _stat_archiver(app: Application) -> list[tuple]:
    return [(0, None, None, 0, None, None, app.catalog.facts.start_time)]


def _stat_replication_slots(app: Application) -> list[tuple]:
    """Per slot: the transactions and bytes its consumers (streams, SQL decoding) were sent since
    the server started; pgshim never spills or streams in-progress transactions."""
    return [
        (slot.name, 0, 0, 0, 0, 0, 0, slot.stats.total_txns, slot.stats.total_bytes, None)
        for slot in app.slots.list()
    ]


def _stat_activity(app: Application, querying: Any) -> list[tuple]:
    """One row per session. The querying session is running this query; the others' statements
    are not tracked (state 'idle', or 'active' while streaming, query NULL). Another role's
    session shows only what PostgreSQL 15 shows a role without pg_read_all_stats."""
    now = datetime.now(UTC)
    own_pid = getattr(getattr(querying, "info", None), "pid", None)
    oids = {name: oid for oid, name in _databases(app)}
    rows = []
    for session in app.sessions.values():
        info = session.info
        replication = getattr(info, "replication", None)
        backend_type = "walsender" if replication else "client backend"
        database = info.database if replication != "true" else None
        datid = oids.get(database) if database else None
        if not sees_details_of(querying, info.user):
            rows.append((
                datid, database, info.pid, None, SUPERUSER_OID, info.user, info.application_name,
                *(None,) * 13, "<insufficient privilege>", backend_type,
            ))  # fmt: skip
            continue
        running = info.pid == own_pid
        streaming = getattr(session, "stream", None) is not None
        state = "active" if running or streaming else "idle"
        rows.append((
            datid, database, info.pid, None, SUPERUSER_OID, info.user, info.application_name,
            info.client_addr, None, info.client_port, info.backend_start,
            now if running else None, now if running else None, now if running else None,
            None if running or streaming else "Client",
            None if running or streaming else "ClientRead",
            state, None, None, None, None, backend_type,
        ))  # fmt: skip
    return rows
