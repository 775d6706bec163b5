"""The ``pgshim`` command line. Subcommands register themselves on the top-level parser."""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TextIO

from pgshim.errors import PgError
from pgshim.reddb.change import ChangeDecodeError, ChangeRecord, parse_change_record
from pgshim.reddb.entity import Entity, decode_entity
from pgshim.reddb.identity import IdentityMap
from pgshim.reddb.values import TypedValue, value_type
from pgshim.run import add_server_commands
from pgshim.spool import spool_path
from pgshim.spool.follower import SpoolFollower
from pgshim.spool.frames import scan_frames
from pgshim.spool.generate import write_workload
from pgshim.status import add_status_command

PROGRESS_MIN_BYTES = 16 << 20
FOLLOW_INTERVAL_S = 0.2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgshim",
        description="Serve RedDB's logical change stream over PostgreSQL logical replication.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_spool_commands(commands)
    add_server_commands(commands)
    add_status_command(commands)
    return parser


def add_spool_commands(commands: argparse._SubParsersAction) -> None:
    spool = commands.add_parser("spool", help="inspect, dump or generate a RedDB logical WAL spool")
    actions = spool.add_subparsers(dest="spool_command", metavar="ACTION", required=True)
    path_help = "the .rdb data file (spool = PATH.logical.wal) or the .logical.wal spool itself"

    inspect = actions.add_parser("inspect", help="summarise a spool: layouts, LSNs, corruption")
    inspect.add_argument("path", metavar="PATH", help=path_help)
    inspect.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for large files on a terminal)",
    )
    inspect.set_defaults(handler=cmd_inspect)

    dump = actions.add_parser("dump", help="print decoded changes with typed column values")
    dump.add_argument("path", metavar="PATH", help=path_help)
    dump.add_argument(
        "--from",
        dest="from_lsn",
        type=int,
        default=0,
        metavar="LSN",
        help="only records with a RedDB LSN greater than LSN",
    )
    dump.add_argument("--follow", action="store_true", help="keep waiting for new records")
    dump.add_argument("--format", choices=("text", "json"), default="text")
    dump.set_defaults(handler=cmd_dump)

    generate = actions.add_parser("generate", help="append a realistic RedDB workload")
    generate.add_argument("path", metavar="PATH", help=path_help)
    generate.add_argument("--records", type=int, required=True, metavar="N")
    generate.add_argument(
        "--rate", type=float, default=None, metavar="R", help="records per second"
    )
    generate.add_argument("--seed", type=int, default=0, metavar="S")
    generate.add_argument(
        "--version",
        choices=("2", "3"),
        default="3",
        help="frame version: 2 (RedDB <= 1.7) or 3 (41-byte header, 1.23+)",
    )
    generate.add_argument("--fsync", action="store_true", help="fsync every frame like RedDB")
    generate.set_defaults(handler=cmd_generate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


# ---------------------------------------------------------------------------------------------
# spool generate


def cmd_generate(args: argparse.Namespace) -> int:
    path = spool_path(args.path)
    start_lsn = _next_lsn(path)
    layout = "v2" if args.version == "2" else "v3-41"
    written = write_workload(
        path,
        args.records,
        seed=args.seed,
        layout=layout,
        rate=args.rate,
        fsync=args.fsync,
        start_lsn=start_lsn,
    )
    print(f"appended {written} records to {path} (LSN {start_lsn}..)")
    return 0


def _next_lsn(path: str) -> int:
    """Continue after the highest LSN already in the spool."""
    if not os.path.exists(path):
        return 1
    with SpoolFollower(path) as follower:
        follower.poll()
        last = follower.status.last_lsn
    return 1 if last is None else last + 1


# ---------------------------------------------------------------------------------------------
# spool inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    path = spool_path(args.path)
    out = sys.stdout
    if not os.path.exists(path):
        print(
            f"{path}: no spool (RedDB creates it on the first start as replication primary)",
            file=out,
        )
        return 1
    size = os.path.getsize(path)
    show_progress = args.progress
    if show_progress is None:
        show_progress = size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    summary = inspect_spool(path, progress=_progress_bar(size) if show_progress else None)
    if show_progress:
        print(file=sys.stderr)
    _print_summary(path, size, summary, out)
    return 1 if summary["corrupt"] else 0


def inspect_spool(path: str, progress: Callable[[int], None] | None = None) -> dict:
    """Scan a whole spool once: layouts, LSN range, gaps, out-of-order LSNs, collections."""
    layouts: Counter[str] = Counter()
    collections: Counter[str] = Counter()
    operations: Counter[str] = Counter()
    decode_errors: list[str] = []
    lsns: list[int] = []
    out_of_order = 0
    highest = -1
    offset = 0
    pending = b""
    corrupt = None
    torn = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            data = pending + chunk if pending else chunk
            result = scan_frames(data, offset)
            for frame in result.frames:
                layouts[frame.layout] += 1
                lsns.append(frame.lsn)
                if frame.lsn < highest:
                    out_of_order += 1
                highest = max(highest, frame.lsn)
                try:
                    record = parse_change_record(frame.payload, frame.lsn)
                except ChangeDecodeError as exc:
                    decode_errors.append(str(exc))
                    continue
                collections[record.collection] += 1
                operations[record.operation] += 1
            offset += result.consumed
            pending = data[result.consumed :]
            if progress is not None:
                progress(offset)
            if result.problem is not None:
                corrupt = result.problem
                break
            if not chunk:
                torn = len(pending)
                break
    return {
        "layouts": layouts,
        "records": len(lsns),
        "first_lsn": min(lsns) if lsns else None,
        "last_lsn": max(lsns) if lsns else None,
        "gaps": _gaps(lsns),
        "out_of_order": out_of_order,
        "collections": collections,
        "operations": operations,
        "decode_errors": decode_errors,
        "corrupt": corrupt,
        "torn_tail_bytes": torn,
        "valid_bytes": offset,
    }


def _gaps(lsns: list[int]) -> list[tuple[int, int]]:
    """Missing LSN ranges (inclusive) between the lowest and highest LSN."""
    ordered = sorted(set(lsns))
    return [(a + 1, b - 1) for a, b in zip(ordered, ordered[1:], strict=False) if b > a + 1]


def _print_summary(path: str, size: int, s: dict, out: TextIO) -> None:
    print(f"spool        {path}", file=out)
    print(f"size         {size} bytes ({s['valid_bytes']} in complete frames)", file=out)
    layouts = ", ".join(f"{name} x{count}" for name, count in sorted(s["layouts"].items()))
    print(f"layouts      {layouts or '-'}", file=out)
    print(f"records      {s['records']}", file=out)
    print(f"first lsn    {s['first_lsn']}", file=out)
    print(f"last lsn     {s['last_lsn']}", file=out)
    gaps = s["gaps"]
    missing = sum(b - a + 1 for a, b in gaps)
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in gaps[:20])
    more = " ..." if len(gaps) > 20 else ""
    print(
        f"gaps         {len(gaps)} ({missing} LSNs missing){': ' + shown + more if gaps else ''}",
        file=out,
    )
    print(f"out of order {s['out_of_order']}", file=out)
    ops = ", ".join(f"{name} {count}" for name, count in sorted(s["operations"].items()))
    print(f"operations   {ops or '-'}", file=out)
    print("collections", file=out)
    for name, count in sorted(s["collections"].items()):
        print(f"  {name:<24} {count}", file=out)
    if s["decode_errors"]:
        print(f"decode errors {len(s['decode_errors'])}", file=out)
        for message in s["decode_errors"][:10]:
            print(f"  {message}", file=out)
    if s["torn_tail_bytes"]:
        print(f"torn tail    {s['torn_tail_bytes']} bytes (a frame still being written)", file=out)
    problem = s["corrupt"]
    print(
        f"corrupt      {'-' if problem is None else f'offset {problem.offset}: {problem.reason}'}",
        file=out,
    )


def _progress_bar(total: int) -> Callable[[int], None]:
    width = 40

    def show(done: int) -> None:
        filled = width * done // total if total else width
        percent = 100 * done // total if total else 100
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}%")
        sys.stderr.flush()

    return show


# ---------------------------------------------------------------------------------------------
# spool dump


def cmd_dump(args: argparse.Namespace) -> int:
    path = spool_path(args.path)
    identity = IdentityMap(sqlite3.connect(":memory:"))
    render = _render_json if args.format == "json" else _render_text
    out = sys.stdout
    with SpoolFollower(path) as follower:
        if args.from_lsn:
            # Learn identities from the skipped records so deletes still resolve.
            try:
                for frame in follower.iter_from(-1):
                    if frame.lsn > args.from_lsn:
                        continue
                    _learn(identity, frame.payload, frame.lsn)
            except PgError as exc:  # a bad frame before the end
                print(exc.message, file=sys.stderr)
                return 1
            follower.seek(args.from_lsn)
        while True:
            for frame in follower.poll():
                out.write(render(*_decode(identity, frame.payload, frame.lsn)) + "\n")
            out.flush()
            if not args.follow:
                break
            time.sleep(FOLLOW_INTERVAL_S)
        problem = follower.status.corrupt_reason
        if problem:
            print(
                f"stopped at byte offset {follower.status.corrupt_offset}: {problem}",
                file=sys.stderr,
            )
            return 1
    return 0


def _learn(identity: IdentityMap, payload: bytes, lsn: int) -> None:
    try:
        record = parse_change_record(payload, lsn)
        if record.entity_bytes is not None and record.operation in ("insert", "update"):
            entity = decode_entity(record.entity_bytes, lsn=lsn)
            identity.learn(record.collection, entity.id, entity.stable_id)
    except ChangeDecodeError:
        pass


DecodedChange = tuple[int, ChangeRecord | None, list[Entity], int | None, str | None]


def _decode(identity: IdentityMap, payload: bytes, lsn: int) -> DecodedChange:
    """(lsn, record, entities, row key, error) for one frame."""
    try:
        record = parse_change_record(payload, lsn)
    except ChangeDecodeError as exc:
        return lsn, None, [], None, str(exc)
    entities: list[Entity] = []
    try:
        if record.entity_bytes is not None:
            entities.append(decode_entity(record.entity_bytes, lsn=lsn))
        for raw in record.refresh_records:
            entities.append(decode_entity(raw, lsn=lsn))
    except ChangeDecodeError as exc:
        return lsn, record, entities, None, str(exc)
    key: int | None = None
    if record.operation in ("insert", "update") and entities:
        key = entities[0].stable_id
        identity.learn(record.collection, entities[0].id, key)
    elif record.operation == "delete":
        key = identity.resolve(record.collection, record.rid)
    return lsn, record, entities, key, None


def _type_name(value: TypedValue) -> str:
    return value_type(value.type_code).name


def _text_value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float | int | Decimal | bool):
        return str(value)
    return repr(str(value)) if isinstance(value, str) else str(value)


def _render_text(
    lsn: int,
    record: ChangeRecord | None,
    entities: list[Entity],
    key: int | None,
    error: str | None,
) -> str:
    if record is None:
        return f"lsn={lsn} ERROR {error}"
    head = f"lsn={lsn} {record.operation} {record.collection} rid={record.rid}"
    if key is not None:
        head += f" key={key}"
    lines = [head]
    for entity in entities:
        lines.append(
            f"  {entity.kind} id={entity.id} logical={entity.logical_id} xmin={entity.xmin}"
        )
        for i, f in enumerate(entity.fields):
            name = f.name if f.name is not None else f"${i + 1}"
            lines.append(f"    {name} [{_type_name(f.value)}] = {_text_value(f.value.value)}")
    if error:
        lines.append(f"  ERROR {error}")
    return "\n".join(lines)


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Decimal | uuid.UUID | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def _render_json(
    lsn: int,
    record: ChangeRecord | None,
    entities: list[Entity],
    key: int | None,
    error: str | None,
) -> str:
    obj: dict = {"lsn": lsn}
    if record is not None:
        obj.update(
            operation=record.operation,
            collection=record.collection,
            rid=record.rid,
            key=key,
            timestamp_ms=record.timestamp_ms,
            rows=[
                {
                    "kind": e.kind,
                    "id": e.id,
                    "logical_id": e.logical_id,
                    "xmin": e.xmin,
                    "columns": [
                        {
                            "name": f.name,
                            "type": _type_name(f.value),
                            "type_oid": f.value.type_oid,
                            "value": _json_value(f.value.value),
                        }
                        for f in e.fields
                    ],
                }
                for e in entities
            ],
        )
    if error:
        obj["error"] = error
    return json.dumps(obj, ensure_ascii=False)


if __name__ == "__main__":
    sys.exit(main())
