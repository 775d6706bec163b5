"""``pgshim status``: slots and consumers of a running pgshim, as a table.

It asks the server over an ordinary PostgreSQL connection (psycopg: libpq's authentication, TLS,
``PG*`` variables and ``.pgpass`` come for free) and reads only the status views any SQL client
can read, so it works against a pgshim on another host as well.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from pgshim.logical.positions import lsn_of

SLOTS_SQL = (
    "SELECT s.slot_name, s.plugin, s.active, s.active_pid, s.confirmed_flush_lsn,"
    " p.active_instance FROM pg_replication_slots s"
    " LEFT JOIN pgshim_slots p ON p.slot_name = s.slot_name ORDER BY s.slot_name"
)
CONSUMERS_SQL = (
    "SELECT pid, application_name, client_addr, state, sent_lsn, flush_lsn "
    "FROM pg_stat_replication ORDER BY pid"
)
REPLICAS_SQL = "SELECT slot_name, lag_seconds, connected FROM pgshim_replicas"
SPOOL_SQL = (
    "SELECT path, records, last_lsn, end_position, decode_errors, corrupt_reason FROM pgshim_spool"
)


@dataclass(slots=True)
class StatusReport:
    spool: tuple | None  # a pgshim_spool row
    slots: list[tuple]
    consumers: list[tuple]
    replicas: list[tuple]


def add_status_command(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="show the slots and consumers of a running pgshim",
        add_help=False,  # -h is the host, as in psql
    )
    status.add_argument("--help", action="help", help="show this help message and exit")
    status.add_argument("-h", "--host", help="server host (default $PGHOST or 127.0.0.1)")
    status.add_argument("-p", "--port", help="server port (default $PGPORT or 5433)")
    status.add_argument("-U", "--username", help="user name (default $PGUSER or postgres)")
    status.add_argument("-d", "--dbname", help="database (default $PGDATABASE or reddb)")
    status.set_defaults(handler=cmd_status)


def connection_params(args: argparse.Namespace, env: dict[str, str] | None = None) -> dict:
    env = dict(os.environ) if env is None else env
    return {
        "host": args.host or env.get("PGHOST") or "127.0.0.1",
        "port": args.port or env.get("PGPORT") or "5433",
        "user": args.username or env.get("PGUSER") or "postgres",
        "dbname": args.dbname or env.get("PGDATABASE") or "reddb",
        "application_name": "pgshim status",
        "connect_timeout": env.get("PGCONNECT_TIMEOUT") or "10",
    }


def fetch_status(params: dict) -> StatusReport:
    import psycopg  # imported late: only this command needs a client library

    with psycopg.connect(**params, autocommit=True) as conn:
        spool = conn.execute(SPOOL_SQL).fetchall()
        return StatusReport(
            spool=spool[0] if spool else None,
            slots=conn.execute(SLOTS_SQL).fetchall(),
            consumers=conn.execute(CONSUMERS_SQL).fetchall(),
            replicas=conn.execute(REPLICAS_SQL).fetchall(),
        )


def cmd_status(args: argparse.Namespace) -> int:
    import psycopg

    params = connection_params(args)
    try:
        report = fetch_status(params)
    except psycopg.Error as exc:
        where = f"{params['host']}:{params['port']}"
        print(f"pgshim status: {where}: {str(exc).strip()}", file=sys.stderr)
        return 1
    print_status(report, sys.stdout)
    return 0


def parse_lsn(text: str | None) -> int | None:
    if text is None:
        return None
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def print_status(report: StatusReport, out: TextIO) -> None:
    last_lsn = 0
    if report.spool is not None:
        path, records, last, end_position, decode_errors, corrupt = report.spool
        last_lsn = last or 0
        print(f"spool  {path}", file=out)
        print(
            f"       {records} records, last RedDB LSN {last}, end {end_position}, "
            f"{decode_errors} decode errors" + (f", CORRUPT: {corrupt}" if corrupt else ""),
            file=out,
        )
        print(file=out)
    lag_seconds: dict[str, float] = {}
    for slot, seconds, _connected in report.replicas:
        lag_seconds[slot] = max(lag_seconds.get(slot, 0.0), float(seconds or 0.0))
    here = {pid for pid, *_ in report.consumers}  # this instance's streaming sessions
    slot_of_pid = {row[3]: row[0] for row in report.slots if row[3] in here}
    slot_rows = []
    for name, plugin, active, pid, confirmed, instance in report.slots:
        position = parse_lsn(confirmed)
        lag = None if position is None else max(0, last_lsn - lsn_of(position))
        slot_rows.append((
            name, plugin, "yes" if active else "no", _text(instance), _text(pid), _text(confirmed),
            _text(lag), f"{lag_seconds[name]:.1f}" if name in lag_seconds else "",
        ))  # fmt: skip
    print("slots", file=out)
    write_table(
        ["slot", "plugin", "active", "instance", "pid", "confirmed", "lag records", "lag s"],
        slot_rows, out,
    )  # fmt: skip
    print(file=out)
    consumer_rows = [
        (_text(pid), slot_of_pid.get(pid, ""), app or "", _text(addr), state or "",
         _text(sent), _text(flush))
        for pid, app, addr, state, sent, flush in report.consumers
    ]  # fmt: skip
    print("consumers", file=out)
    write_table(["pid", "slot", "application", "client", "state", "sent", "flushed"],
                consumer_rows, out)  # fmt: skip


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def write_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """An aligned plain-text table; ``(none)`` when there are no rows."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    print("  " + line(header), file=out)
    print("  " + "  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print("  " + line(row), file=out)
    if not rows:
        print("  (none)", file=out)
