"""Configuration: a TOML file, then PGSHIM_* environment variables, then command-line flags."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgshim.versions import DEFAULT_MAJOR, MINOR_RELEASES

AUTH_METHODS = ("trust", "password", "md5", "scram-sha-256")
LOG_FORMATS = ("text", "json")
ENV_PREFIX = "PGSHIM_"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(slots=True)
class UserConfig:
    method: str = "scram-sha-256"
    password: str | None = None
    # A SCRAM secret (`SCRAM-SHA-256$4096:...`) or an md5 hash (`md5...`), instead of a password.
    secret: str | None = None
    # the REPLICATION attribute: replication connections and the replication slot functions;
    # a superuser has it too
    replication: bool = False
    # the SUPERUSER attribute: everything a replication role may do, and every session's details
    # in pg_stat_replication
    superuser: bool = False
    # a `hostssl` rule: this user is refused (28000) on a connection without TLS
    require_tls: bool = False

    def __repr__(self) -> str:  # never print credentials
        return (
            f"UserConfig(method={self.method!r}, superuser={self.superuser!r}, "
            f"replication={self.replication!r}, require_tls={self.require_tls!r})"
        )


@dataclass(slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 5433
    spool: str | None = None
    state_dir: str = "./pgshim-state"
    # postgresql://...: slots, publications, identities and relations kept in that database,
    # shared by every instance serving the same RedDB source (None: all in state_dir)
    state_url: str | None = field(default=None, repr=False)
    # this instance's name among those sharing state_url (default: host name and port)
    instance_name: str | None = None
    # seconds a slot stays held by an instance that stopped renewing its lease (state_url)
    slot_lease_seconds: float = 10.0
    database: str = "reddb"
    users: dict[str, UserConfig] = field(default_factory=dict)
    # users without a password (method trust, or no [users] at all) on a listener that is not a
    # loopback address: refused at start unless this forces it
    allow_trust_remote: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    # a `hostssl` rule for everyone: connections without TLS are refused (28000)
    require_tls: bool = False
    max_connections: int = 100
    # connections still in the startup/authentication phase at once; when full, the oldest one
    # that has not sent its startup packet makes room, otherwise newcomers get FATAL 53300
    max_unauthenticated: int = 64
    # the same from one client address (loopback clients all share one)
    max_unauthenticated_per_address: int = 32
    # seconds from accepting a connection to its StartupMessage (SSL negotiation included)
    startup_timeout: float = 10.0
    auth_timeout: float = 60.0
    wal_sender_timeout: float = 60.0
    # every SQL statement's default statement_timeout, in seconds (0: none); sessions may SET it
    statement_timeout: float = 300.0
    # the SQL engine's memory for all running queries together, in MiB
    query_memory: int = 256
    # SQL queries running at once (each on a worker thread); more wait for a free one
    query_workers: int = 4
    max_replication_slots: int = 128
    # recent decoded transactions kept for live sessions; sessions further behind read the spool
    ring_transactions: int = 4096
    # output formats (plugin and the options that shape its output) rendered ahead at ingestion
    # for consumers that catch up: the ones used most recently; 0 turns it off
    render_ahead_formats: int = 4
    # how long a bad spool frame is waited out (RedDB repairs on its next open) before sessions
    # that need data past it get XX001
    corruption_grace: float = 30.0
    # how long, and for how many later records, a hole in RedDB's LSNs is waited for before the
    # records above it are released (a record coming later than that restarts the streams past
    # it and loses the slots confirmed past it: see the delivery contract)
    reorder_grace: float = 0.05
    reorder_window: int = 1024
    max_message_size: int = 64 * 1024 * 1024
    schema: str = "public"
    collections: dict[str, Any] = field(default_factory=dict)
    log_format: str = "text"
    log_level: str = "INFO"
    # created FOR ALL TABLES at start when set and missing
    default_publication: str | None = None
    # the RedDB replica id each slot's feedback is reported under
    replica_id_format: str = "pgshim:{slot}"
    # where a new slot starts: "end" (as PostgreSQL) or "oldest" (RedDB's retained history)
    new_slot_position: str = "end"
    reddb_grpc: str | None = None  # forward acks to this RedDB primary (HOST:PORT)
    # the bearer token for RedDB: from the file, the environment (PGSHIM_REDDB_TOKEN) or
    # reddb_token_file (read at start); never a command-line flag, which `ps` shows to everyone
    reddb_token: str | None = field(default=None, repr=False)
    reddb_token_file: str | None = None
    source: str | None = None  # grpc://HOST:PORT: stream from a RedDB primary instead of a spool
    reddb_http: str | None = None  # RedDB's HTTP base URL, for declared column schemas
    metrics_port: int | None = None
    # the PostgreSQL major version pgshim presents itself as: 15, 16, 17 or 18
    server_version: int = DEFAULT_MAJOR

    def instance(self) -> str:
        """This instance's name among the ones sharing ``state_url``."""
        return self.instance_name or f"{socket.gethostname()}:{self.port}"

    def declared_columns(self) -> dict[str, list[dict[str, Any]]]:
        """``[collections.NAME] columns = [{name, type, source}]``, validated at load time."""
        return {name: list(spec.get("columns", [])) for name, spec in self.collections.items()}

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """File values, replaced by PGSHIM_* variables, replaced by non-None `overrides`."""
        values: dict[str, Any] = {}
        if path is not None:
            values.update(_read_toml(Path(path)))
        values.update(_from_env(os.environ if env is None else env))
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return from_mapping(values)


_SCALARS = {f.name: f for f in dataclasses.fields(Config) if f.name not in ("users", "collections")}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: env[ENV_PREFIX + name.upper()]
        for name in _SCALARS
        if ENV_PREFIX + name.upper() in env
    }


def _coerce(key: str, value: Any, kind: str) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, f"expected a boolean, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected an integer, got {value!r}") from None
    if kind == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"expected a number of seconds, got {value!r}") from None
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(key, f"expected a string, got {value!r}")
    return os.fspath(value)


def _kind(name: str) -> str:
    annotation = str(_SCALARS[name].type)
    for kind in ("bool", "int", "float"):
        if annotation.startswith(kind):
            return kind
    return "str"


def _users(raw: Any) -> dict[str, UserConfig]:
    if not isinstance(raw, Mapping):
        raise ConfigError("users", "expected a table of user name -> settings")
    users = {}
    for name, settings in raw.items():
        key = f"users.{name}"
        if not isinstance(settings, Mapping):
            raise ConfigError(key, "expected a table")
        unknown = set(settings) - {
            "method", "password", "secret", "replication", "superuser", "require_tls"
        }  # fmt: skip
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown setting")
        user = UserConfig(
            method=_coerce(f"{key}.method", settings.get("method", "scram-sha-256"), "str"),
            password=settings.get("password"),
            secret=settings.get("secret"),
            replication=_coerce(f"{key}.replication", settings.get("replication", False), "bool"),
            superuser=_coerce(f"{key}.superuser", settings.get("superuser", False), "bool"),
            require_tls=_coerce(f"{key}.require_tls", settings.get("require_tls", False), "bool"),
        )
        if user.method not in AUTH_METHODS:
            raise ConfigError(f"{key}.method", f"must be one of {', '.join(AUTH_METHODS)}")
        if user.method != "trust" and user.password is None and user.secret is None:
            raise ConfigError(key, f"method {user.method} needs a password or a secret")
        if user.secret is not None and not user.secret.startswith(("SCRAM-SHA-256$", "md5")):
            raise ConfigError(f"{key}.secret", "expected a SCRAM-SHA-256 secret or an md5 hash")
        md5_only = user.password is None and (user.secret or "").startswith("md5")
        if user.method == "scram-sha-256" and md5_only:
            raise ConfigError(f"{key}.secret", "an md5 hash cannot verify SCRAM-SHA-256")
        user.replication = user.replication or user.superuser  # as PostgreSQL's checks see it
        users[str(name)] = user
    return users


def from_mapping(values: Mapping[str, Any]) -> Config:
    config = Config()
    for key, value in values.items():
        if key == "users":
            config.users = _users(value)
        elif key == "collections":
            if not isinstance(value, Mapping):
                raise ConfigError("collections", "expected a table of collection -> columns")
            config.collections = dict(value)
        elif key in _SCALARS:
            setattr(config, key, _coerce(key, value, _kind(key)))
        else:
            raise ConfigError(key, "unknown setting")
    _validate(config)
    return config


def _validate(config: Config) -> None:
    if not 0 <= config.port <= 65535:
        raise ConfigError("port", f"must be between 0 and 65535, got {config.port}")
    if config.max_connections < 1:
        raise ConfigError("max_connections", "must be at least 1")
    if config.render_ahead_formats < 0:
        raise ConfigError("render_ahead_formats", "must not be negative")
    if config.ring_transactions < 16:
        raise ConfigError("ring_transactions", "must be at least 16")
    if config.max_replication_slots < 1:
        raise ConfigError("max_replication_slots", "must be at least 1")
    if config.max_unauthenticated < 1:
        raise ConfigError("max_unauthenticated", "must be at least 1")
    if config.max_unauthenticated_per_address < 1:
        raise ConfigError("max_unauthenticated_per_address", "must be at least 1")
    if config.auth_timeout <= 0:
        raise ConfigError("auth_timeout", "must be positive")
    if config.startup_timeout <= 0:
        raise ConfigError("startup_timeout", "must be positive")
    if config.wal_sender_timeout < 0:
        raise ConfigError("wal_sender_timeout", "must not be negative")
    if config.statement_timeout < 0:
        raise ConfigError("statement_timeout", "must not be negative")
    if config.query_memory < 16:
        raise ConfigError("query_memory", "must be at least 16 (MiB)")
    if not 1 <= config.query_workers <= 64:
        raise ConfigError("query_workers", "must be between 1 and 64")
    if config.corruption_grace < 0:
        raise ConfigError("corruption_grace", "must not be negative")
    if config.reorder_grace < 0:
        raise ConfigError("reorder_grace", "must not be negative")
    if config.reorder_window < 1:
        raise ConfigError("reorder_window", "must be at least 1")
    if config.state_url is not None and not config.state_url.startswith(
        ("postgresql://", "postgres://")
    ):
        raise ConfigError("state_url", "must be a postgresql:// URL")
    if config.slot_lease_seconds < 1:
        raise ConfigError("slot_lease_seconds", "must be at least 1")
    if config.instance_name is not None and not config.instance_name.strip():
        raise ConfigError("instance_name", "must not be empty")
    if config.max_message_size < 1024:
        raise ConfigError("max_message_size", "must be at least 1024 bytes")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("tls_cert" if config.tls_cert is None else "tls_key", "TLS needs both")
    validate_security(config)
    if config.log_format not in LOG_FORMATS:
        raise ConfigError("log_format", f"must be one of {', '.join(LOG_FORMATS)}")
    if not config.database:
        raise ConfigError("database", "must not be empty")
    if config.new_slot_position not in ("end", "oldest"):
        raise ConfigError("new_slot_position", "must be end or oldest")
    if "{slot}" not in config.replica_id_format:
        raise ConfigError("replica_id_format", "must contain {slot}")
    if config.server_version not in MINOR_RELEASES:
        versions = ", ".join(str(major) for major in MINOR_RELEASES)
        raise ConfigError("server_version", f"must be one of {versions}")
    _validate_collections(config.collections)
    _read_token_file(config)


def _read_token_file(config: Config) -> None:
    """``reddb_token_file``: the token is the file's content without its trailing newline."""
    path = config.reddb_token_file
    if path is None:
        return
    if config.reddb_token:
        raise ConfigError(
            "reddb_token_file",
            "reddb_token (or PGSHIM_REDDB_TOKEN) is set as well; give the token one way",
        )
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError("reddb_token_file", f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError("reddb_token_file", f"{path} is not UTF-8 text") from None
    if not token.strip():
        raise ConfigError("reddb_token_file", f"{path} is empty")
    if "\n" in token:
        raise ConfigError("reddb_token_file", f"{path} has more than one line")
    config.reddb_token = token


def secret_file_warning(path: str | None) -> str | None:
    """A warning when a secret file may be read by other users (group or other permission bits),
    as libpq says of a .pgpass file; None when it is private or not set."""
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path} is accessible by group or others (mode {mode & 0o777:o}); "
            "restrict it with chmod 600"
        )
    return None


def is_loopback_host(host: str | None) -> bool:
    """True for a loopback address, ``localhost`` or None (a unix socket)."""
    if host is None:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def validate_security(config: Config) -> None:
    """Rules the server also checks before it listens (for configurations built in code)."""
    tls = config.tls_cert is not None and config.tls_key is not None
    if config.require_tls and not tls:
        raise ConfigError("require_tls", "needs tls_cert and tls_key")
    for name, user in config.users.items():
        if user.require_tls and not tls:
            raise ConfigError(f"users.{name}.require_tls", "needs tls_cert and tls_key")
    if is_loopback_host(config.host) or config.allow_trust_remote:
        return
    trusted = [name for name, user in config.users.items() if user.method == "trust"]
    if not config.users or trusted:
        who = f"users {', '.join(sorted(trusted))} use" if trusted else "no [users] means"
        raise ConfigError(
            "host",
            f"{config.host!r} is not a loopback address and {who} trust (no password); "
            "give every user a password method, or set allow_trust_remote = true to force it",
        )


def _validate_collections(collections: Mapping[str, Any]) -> None:
    from pgshim import pgtypes

    for name, spec in collections.items():
        key = f"collections.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(key, "expected a table with a columns list")
        unknown = set(spec) - {"columns"}
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown setting")
        columns = spec.get("columns", [])
        if not isinstance(columns, list):
            raise ConfigError(f"{key}.columns", "expected a list of {name, type, source}")
        for i, column in enumerate(columns):
            ckey = f"{key}.columns[{i}]"
            if not isinstance(column, Mapping) or not isinstance(column.get("name"), str):
                raise ConfigError(ckey, "expected a table with at least a name")
            unknown = set(column) - {"name", "type", "source"}
            if unknown:
                raise ConfigError(f"{ckey}.{sorted(unknown)[0]}", "unknown setting")
            type_name = column.get("type", "text")
            if type_name not in pgtypes.BY_NAME:
                raise ConfigError(f"{ckey}.type", f'unknown PostgreSQL type "{type_name}"')
            source = column.get("source")
            if source is not None and not isinstance(source, str | int):
                raise ConfigError(f"{ckey}.source", "expected a field name or a position")
