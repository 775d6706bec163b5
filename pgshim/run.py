"""``pgshim serve`` and ``pgshim demo``: run the server on a spool, or on a live demo spool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pgshim.config import Config, ConfigError, secret_file_warning
from pgshim.logging_setup import configure_logging
from pgshim.versions import DEFAULT_MAJOR, MINOR_RELEASES

log = logging.getLogger("pgshim")

GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (default 700)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 5433)")
    parser.add_argument(
        "--state-dir", help="slots, identities, publications (default ./pgshim-state)"
    )
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument(
        "--instance-name",
        help="this instance's name among those sharing state_url (default HOST:PORT)",
    )
    parser.add_argument("--database", help="the database name clients connect to (default reddb)")
    parser.add_argument("--tls-cert", help="PEM certificate: enables TLS")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--log-format", choices=("text", "json"))
    parser.add_argument("--log-level")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.add_argument(
        "--server-version",
        type=int,
        choices=sorted(MINOR_RELEASES),
        help=f"the PostgreSQL major version to present (default {DEFAULT_MAJOR})",
    )


def add_server_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve a RedDB spool over PostgreSQL replication")
    serve.add_argument("--spool", help="the RedDB data file (.rdb) or its .logical.wal spool")
    serve.add_argument("--source", help="grpc://HOST:PORT: stream from a RedDB primary instead")
    serve.add_argument("--reddb-grpc", help="HOST:PORT of a RedDB primary to forward acks to")
    serve.add_argument(
        "--reddb-token-file",
        metavar="FILE",
        help="file holding the bearer token for RedDB (or PGSHIM_REDDB_TOKEN)",
    )
    serve.add_argument("--reddb-token", nargs="?", action=RefusedSecretFlag, help=argparse.SUPPRESS)
    serve.add_argument("--reddb-http", help="RedDB's HTTP URL, for declared column schemas")
    add_server_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="serve a generated spool with a live RedDB-like writer")
    demo.add_argument("--dir", help="where the demo spool and state live (default: a temp dir)")
    demo.add_argument("--rate", type=float, default=5.0, help="records per second (default 5)")
    demo.add_argument("--seed", type=int, default=7)
    add_server_arguments(demo)
    demo.set_defaults(handler=cmd_demo)

    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", metavar="FILE", help="TOML configuration file")
    check.set_defaults(handler=cmd_check_config)


class RefusedSecretFlag(argparse.Action):
    """``--reddb-token``, no longer accepted: a process's arguments are visible to every local
    user (``ps``, /proc/PID/cmdline). Declared so that it is not taken for an abbreviation of
    ``--reddb-token-file``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        parser.error(
            f"{option_string} is not accepted: a token on the command line is visible to every "
            "local user (ps); use --reddb-token-file FILE, PGSHIM_REDDB_TOKEN or reddb_token in "
            "the config file"
        )


def load_config(args: argparse.Namespace, **extra: Any) -> Config:
    overrides = {
        "host": args.host,
        "port": args.port,
        "state_dir": args.state_dir,
        "instance_name": args.instance_name,
        "database": args.database,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "log_format": args.log_format,
        "log_level": args.log_level,
        "metrics_port": args.metrics_port,
        "server_version": args.server_version,
        **extra,
    }
    return Config.load(args.config, overrides=overrides)


def serve(config: Config) -> int:
    if not config.spool and not config.source:
        raise ConfigError(
            "spool", "no spool given (use --spool or --source, PGSHIM_SPOOL or the config file)"
        )
    from pgshim.sql.engine import start_fork_server

    start_fork_server()  # it loads DuckDB on the other core while the server's modules load
    from pgshim.app import Application  # imported late: the CLI's other commands stay light

    configure_logging(config.log_format, config.log_level)
    warning = secret_file_warning(config.reddb_token_file)
    if warning is not None:
        log.warning("reddb_token_file: %s", warning)
    app = Application(config)
    if config.metrics_port is not None:
        from pgshim.metrics import start_metrics

        metrics = start_metrics(app, config.metrics_port)
        log.info("metrics on http://%s:%d/metrics", metrics.host, metrics.port)
    # what startup built (modules, the catalog engine, caches) lives until exit: keep it out of
    # the collector's scans, and collect the young generation less often, since streaming
    # allocates many short-lived containers
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(app.run())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        return serve(
            load_config(
                args, spool=args.spool, source=args.source, reddb_grpc=args.reddb_grpc,
                reddb_token_file=args.reddb_token_file, reddb_http=args.reddb_http,
            )
        )  # fmt: skip
    except ConfigError as exc:
        print(f"pgshim: configuration error: {exc}", file=sys.stderr)
        return 2


def cmd_check_config(args: argparse.Namespace) -> int:
    """Load FILE (with PGSHIM_* variables over it) as ``serve`` would, without serving."""
    try:
        config = Config.load(args.file)
    except ConfigError as exc:
        print(f"pgshim: configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    for name in (
        "host",
        "port",
        "database",
        "spool",
        "state_dir",
        "log_format",
        "metrics_port",
        "server_version",
    ):
        print(f"  {name} = {getattr(config, name)!r}")
    for name, user in sorted(config.users.items()):
        role = ", superuser" if user.superuser else ", replication" if user.replication else ""
        print(f"  users.{name}: {user.method}{role}")
    warning = secret_file_warning(config.reddb_token_file)
    if warning is not None:
        print(f"  warning: reddb_token_file: {warning}")
    if not config.spool and not config.source:
        print("  note: no spool set; give --spool when serving")
    return 0


class DemoWriter(threading.Thread):
    """Appends a realistic RedDB workload to the demo spool, like a RedDB primary would."""

    def __init__(self, path: Path, *, rate: float, seed: int, initial: int) -> None:
        super().__init__(name="demo-writer", daemon=True)
        from pgshim.spool.generate import Workload
        from pgshim.spool.writer import SpoolWriter

        self.writer = SpoolWriter(path, layout="v3-41", fsync=True)
        self.records = Workload(seed=seed).records(10**12)
        self.rate = rate
        self.stopped = threading.Event()
        for _ in range(initial):
            self._append()

    def _append(self) -> None:
        record = next(self.records)
        record["timestamp"] = int(time.time() * 1000)
        self.writer.append_record(record)

    def run(self) -> None:
        while not self.stopped.wait(1.0 / self.rate):
            self._append()


DEMO_HELP = """\
pgshim demo: serving a live RedDB spool at {spool}
  status      psql "host={host} port={port} user=postgres dbname={db}" -c "SELECT * FROM pgshim_spool"
  stream      pg_recvlogical -h {host} -p {port} -U postgres -d {db} -S demo --create-slot -P test_decoding
              pg_recvlogical -h {host} -p {port} -U postgres -d {db} -S demo --start -f -
  psycopg2    python examples/psycopg2_consumer.py "host={host} port={port} user=postgres dbname={db}"
  subscriber  CREATE SUBSCRIPTION reddb_sub CONNECTION 'host={host} port={port} user=postgres dbname={db}'
                PUBLICATION pgshim WITH (copy_data = false);   -- tables as in examples/subscriber.sql
"""


def cmd_demo(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="pgshim-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    spool = directory / "demo.rdb.logical.wal"
    state_dir = args.state_dir or str(directory / "state")
    try:
        config = load_config(args, spool=str(spool), state_dir=state_dir)
    except ConfigError as exc:
        print(f"pgshim: configuration error: {exc}", file=sys.stderr)
        return 2
    if config.default_publication is None:
        config.default_publication = "pgshim"
    writer = DemoWriter(spool, rate=args.rate, seed=args.seed, initial=0 if spool.exists() else 200)
    writer.start()
    print(
        DEMO_HELP.format(spool=spool, host=config.host, port=config.port, db=config.database),
        flush=True,
    )
    try:
        return serve(config)
    finally:
        writer.stopped.set()
