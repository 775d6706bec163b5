"""pgshim's status in SQL: PostgreSQL's replication views, pgshim's own views and the server
functions (slot creation and dropping, SQL-level decoding, the commit waiter), over live state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from pgshim import pgtypes
from pgshim.errors import PgError
from pgshim.logical.positions import end_pos
from pgshim.plugins import check_plugin, default_ahead_key
from pgshim.reddb.link.wiring import FORWARD_COLUMNS
from pgshim.sql.catalog import CATALOG_VIEWS
from pgshim.sql.privileges import check_slot_permissions, sees_details_of
from pgshim.sql.providers import authid_rows, role_rows, user_rows
from pgshim.sql.statistics import register_statistics_views
from pgshim.walsender.replicas import REPLICA_COLUMNS
from pgshim.walsender.slots import PGSHIM_SLOT_COLUMNS, slot_columns, validate_slot_name
from pgshim.walsender.sqldecoding import SqlDecoding

if TYPE_CHECKING:
    from pgshim.app import Application


def _named_types(columns: list[tuple[str, int]]) -> list[tuple[str, str]]:
    return [(name, pgtypes.BY_OID[oid].name) for name, oid in columns]


def _pg_time(us: int | None) -> datetime | None:
    if not us:
        return None
    return pgtypes.PG_EPOCH + timedelta(microseconds=us)


SPOOL_COLUMNS = [
    ("path", "text"), ("exists", "bool"), ("layouts", "text"), ("first_lsn", "int8"),
    ("last_lsn", "int8"), ("records", "int8"), ("bytes", "int8"), ("read_offset", "int8"),
    ("corrupt_offset", "int8"), ("corrupt_reason", "text"), ("gaps", "int8"),
    ("out_of_order", "int8"), ("prunes", "int8"), ("decode_errors", "int8"),
    ("end_position", "pg_lsn"), ("store", "text"), ("store_error", "text"),
    ("duplicates", "int8"), ("superseded", "int8"), ("rewinds", "int8"),
    ("last_rewind_lsn", "int8"), ("last_rewind_reason", "text"), ("last_rewind_at", "timestamptz"),
]  # fmt: skip
COMMIT_WAITER_COLUMNS = [
    ("acking_replicas", "int4"), ("connected_replicas", "int4"), ("quorum_size", "int4"),
    ("durable_on_one", "int8"), ("durable_on_quorum", "int8"), ("durable_on_all", "int8"),
]  # fmt: skip
OUTPUT_FORMAT_COLUMNS = [
    ("format", "text"), ("last_used", "timestamptz"), ("chunks", "int8"), ("bytes", "int8"),
]  # fmt: skip
COLLECTION_COLUMNS = [
    ("schemaname", "name"), ("tablename", "name"), ("relid", "oid"), ("columns", "_text"),
    ("types", "_text"), ("version", "int4"),
]  # fmt: skip


def register_status_views(app: Application) -> None:
    cat = app.catalog
    cat.register_view(
        "pg_stat_replication",
        CATALOG_VIEWS["pg_stat_replication"],
        partial(_stat_replication, app),
        needs_session=True,
    )
    major = app.version.major
    cat.register_view(
        "pg_replication_slots",
        [(name, pgtypes.lookup(oid).name) for name, oid in slot_columns(major)],
        partial(app.slots.slot_rows, major),
    )
    cat.register_view("pgshim_slots", PGSHIM_SLOT_COLUMNS, app.slots.pgshim_slot_rows)
    cat.register_view("pgshim_spool", SPOOL_COLUMNS, partial(_spool_rows, app))
    cat.register_view(
        "pgshim_replicas",
        _named_types(REPLICA_COLUMNS) + FORWARD_COLUMNS,
        partial(_replica_rows, app),
    )
    cat.register_view("pgshim_collections", COLLECTION_COLUMNS, partial(_collection_rows, app))
    cat.register_view("pgshim_output_formats", OUTPUT_FORMAT_COLUMNS, app.ahead.rows)
    for name, rows in app.catalog_rows.providers().items():
        cat.register_view(name, CATALOG_VIEWS[name], rows)
    roles_by_view = {"pg_roles": role_rows, "pg_user": user_rows, "pg_authid": authid_rows}
    for name, roles in roles_by_view.items():
        cat.register_view(
            name, CATALOG_VIEWS[name], partial(roles, app.config.users), needs_session=True
        )
    # PostgreSQL 17 added failover
    create_args = ["name", "name", "boolean", "boolean"] + (["boolean"] if major >= 17 else [])
    cat.register_function(
        "pg_create_logical_replication_slot", partial(_sql_create_slot, app),
        create_args, "text", needs_session=True,
        plan=partial(_plan_create_slot, app), columns=SLOT_RECORD,
    )  # fmt: skip
    cat.register_function(
        "pg_drop_replication_slot", partial(_sql_drop_slot, app), ["name"], "void",
        needs_session=True, plan=partial(_plan_drop_slot, app),
    )  # fmt: skip
    register_statistics_views(app)
    SqlDecoding(app).register()
    cat.register_view(
        "pgshim_commit_waiter", COMMIT_WAITER_COLUMNS, partial(_commit_waiter_rows, app)
    )
    cat.register_function("pgshim_is_durable", app.replicas.is_durable, ["int8", "int4"], "bool")
    cat.register_function("pgshim_quorum_durable", app.replicas.quorum, ["int8"], "bool")
    cat.register_function(
        "pgshim_create_history_slot",
        partial(_sql_create_slot, app, from_oldest=True),
        ["name", "name"],
        "text",
        needs_session=True,
        plan=partial(_plan_create_slot, app, from_oldest=True),
        columns=SLOT_RECORD,
    )


SLOT_RECORD = [("slot_name", "name"), ("lsn", "pg_lsn")]


def _nothing() -> None:
    return None


def _plan_create_slot(
    app: Application,
    session: object,
    planned: dict,
    name: str | None,
    plugin: str | None,
    temporary: bool | None = False,
    two_phase: bool | None = False,
    failover: bool | None = False,
    *,
    from_oldest: bool = False,
) -> tuple[str | None, tuple, Callable[[], None]]:
    """Everything pg_create_logical_replication_slot checks, for one call of a statement (the
    statement's earlier calls count: ``planned``); the slot is created by the returned commit at
    the position announced, once the statement's rows are all there."""
    check_slot_permissions(session)
    if name is None or plugin is None:  # strict, as in PostgreSQL
        return None, (None, None), _nothing
    check_plugin(plugin)
    validate_slot_name(name)
    if failover and temporary:
        raise PgError("22023", "cannot enable failover for a temporary replication slot")
    created, dropped = planned.setdefault("created", set()), planned.setdefault("dropped", set())
    if name in created or (app.slots.get(name) is not None and name not in dropped):
        raise PgError("42710", f'replication slot "{name}" already exists')
    if len(app.slots.list()) - len(dropped) + len(created) >= app.slots.max_slots:
        raise PgError(
            "53400",
            "all replication slots are in use",
            hint='Free one or increase "max_replication_slots".',
        )
    created.add(name)
    position = app.new_slot_position(from_oldest)
    pid = session.pid  # type: ignore[attr-defined]

    def commit() -> None:
        app.slots.create(
            name, plugin, temporary=bool(temporary), two_phase=bool(two_phase),
            confirmed_flush=position, restart_pos=position, pid=pid if temporary else None,
            failover=bool(failover),
        )  # fmt: skip
        app.ahead.use(default_ahead_key(plugin))

    return f"({name},{pgtypes.format_lsn(position)})", (name, position), commit


def _plan_drop_slot(
    app: Application, session: object, planned: dict, name: str | None
) -> tuple[None, tuple, Callable[[], None]]:
    """pg_drop_replication_slot's checks for one call; the returned commit drops the slot."""
    check_slot_permissions(session)
    if name is None:
        return None, (None,), _nothing
    dropped = planned.setdefault("dropped", set())
    slot = app.slots.get(name)
    if slot is None or name in dropped:
        raise PgError("42704", f'replication slot "{name}" does not exist')
    pid = session.pid  # type: ignore[attr-defined]
    if slot.active_pid is not None and slot.active_pid != pid:
        raise PgError("55006", f'replication slot "{name}" is active for PID {slot.active_pid}')
    dropped.add(name)

    def commit() -> None:
        app.slots.drop(name, pid=pid)
        app.replicas.forget_slot(name)

    return None, (None,), commit


def _sql_create_slot(
    app: Application,
    session: object,
    name: str,
    plugin: str,
    temporary: bool = False,
    two_phase: bool = False,
    failover: bool = False,
    *,
    from_oldest: bool = False,
) -> str:
    """pg_create_logical_replication_slot, and pgshim_create_history_slot (``from_oldest``): a
    slot whose consumer reads every change the spool still retains. A temporary slot belongs to
    the calling session and is dropped when it ends."""
    check_slot_permissions(session)
    check_plugin(plugin)
    slot = app.create_slot(
        name, plugin, temporary=bool(temporary), two_phase=bool(two_phase),
        pid=session.pid, from_oldest=from_oldest,  # type: ignore[attr-defined]
        failover=bool(failover),
    )  # fmt: skip
    return f"({slot.name},{pgtypes.format_lsn(slot.confirmed_flush)})"


def _sql_drop_slot(app: Application, session: object, name: str) -> None:
    check_slot_permissions(session)
    app.slots.drop(name, pid=session.pid)  # type: ignore[attr-defined]
    app.replicas.forget_slot(name)


def _stat_replication(app: Application, querying: object) -> list[tuple]:
    """One row per streaming session. Another role's session shows, as PostgreSQL 15 shows it to
    a role without pg_read_all_stats, only what pg_stat_get_activity gives everyone (pid,
    usesysid, usename, application_name); a superuser sees every column, a role its own."""
    rows = []
    for session in app.sessions.values():
        stream = session.stream
        if stream is None:
            continue
        info, fb = session.info, stream.state.feedback
        if not sees_details_of(querying, info.user):
            rows.append((info.pid, 10, info.user, info.application_name) + (None,) * 16)
            continue
        rows.append((
            info.pid, 10, info.user, info.application_name, info.client_addr, None,
            info.client_port, info.backend_start, None, "streaming",
            # a position the client never reported is NULL, as PostgreSQL shows InvalidXLogRecPtr
            stream.state.sent or None, fb.write or None, fb.flush or None, fb.apply or None,
            None, None, None, 0, "async",
            _pg_time(fb.reply_time_us),
        ))  # fmt: skip
    return rows


def _spool_rows(app: Application) -> list[tuple]:
    st = app.follower.status
    return [(
        st.path, st.exists, ",".join(sorted(st.layouts_seen)), st.first_lsn, st.last_lsn,
        st.records, st.size, st.offset, st.corrupt_offset, st.corrupt_reason, st.gaps,
        st.out_of_order, st.prunes, app.source.decode_errors,
        end_pos(st.last_lsn or 0), *_store_status(app), *_odd_records(app),
    )]  # fmt: skip


def _store_status(app: Application) -> tuple[str, str | None]:
    """The decoded store (a cache): ok, failing (the spool is decoded instead) or off."""
    store = app.source.store
    return ("off", None) if store is None else (store.state, store.error)


def _odd_records(app: Application) -> tuple:
    """Records read twice, older versions skipped, and the source's rewinds (the last one's
    RedDB LSN, reason and time): see the delivery contract."""
    source = app.source
    last = source.last_rewind or (None, None, None)
    return (source.duplicates, source.superseded, source.rewinds, *last)


def _replica_rows(app: Application) -> list[tuple]:
    rows = app.replicas.rows(current_lsn=app.source.last_lsn)
    return [(*row, *app.link.forward_status(row[0])) for row in rows]


def _commit_waiter_rows(app: Application) -> list[tuple]:
    """RedDB's commit waiter over pgshim's consumers: how far 1, a quorum and all are durable."""
    waiter = app.replicas.waiter
    members = app.replicas.connected_ids()
    quorum = waiter.quorum_size()
    return [(
        len(waiter.acks()), len(members), quorum, waiter.commit_watermark(1),
        waiter.commit_watermark(quorum), waiter.commit_watermark(max(len(members), 1)),
    )]  # fmt: skip


def _collection_rows(app: Application) -> list[tuple]:
    return [
        (rel.schema, rel.name, rel.oid, [c.name for c in rel.columns],
         [pgtypes.format_type(c.type_oid, c.typmod) for c in rel.columns], rel.version)
        for rel in app.relations.relations()
    ]  # fmt: skip
