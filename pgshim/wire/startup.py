"""Reading the StartupMessage: protocol version, replication mode, the options string."""

from __future__ import annotations

from construct import ConstructError

from pgshim.errors import PgError
from pgshim.wire.events import StartupRequest
from pgshim.wire.messages import StartupParams

SUPPORTED_MAJOR = 3
SUPPORTED_MINOR = 0

_TRUE_WORDS = ("true", "yes")
_FALSE_WORDS = ("false", "no")


def parse_bool(text: str) -> bool | None:
    """PostgreSQL's parse_bool: true/false/yes/no prefixes, on/off, 1/0; None if invalid."""
    value = text.strip().lower()
    if not value:
        return None
    if any(word.startswith(value) for word in _TRUE_WORDS):
        return True
    if any(word.startswith(value) for word in _FALSE_WORDS):
        return False
    if value == "on" or value == "1":
        return True
    if value in ("of", "off", "0"):
        return False
    return None


def replication_mode(value: str | None) -> str:
    """'false' (normal backend), 'database' (logical walsender) or 'true' (physical)."""
    if value is None:
        return "false"
    if value == "database":
        return "database"
    flag = parse_bool(value)
    if flag is None:
        raise PgError(
            "22023", f'invalid value for parameter "replication": "{value}"', severity="FATAL"
        )
    return "true" if flag else "false"


def split_options(options: str) -> list[str]:
    """Split on whitespace; a backslash makes the next character literal (pg_split_opts)."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    escaped = False
    for char in options:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
        else:
            current.append(char)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def parse_options(options: str) -> dict[str, str]:
    """GUC settings from `-c name=value`, `-cname=value` and `--name=value` words."""
    settings: dict[str, str] = {}
    words = split_options(options)
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "-c" and index < len(words):
            assignment = words[index]
            index += 1
        elif word.startswith("--") or word.startswith("-c"):
            assignment = word[2:]
        else:
            continue
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise PgError(
                "42601",
                f"--{name} requires a value" if name else "invalid options",
                severity="FATAL",
            )
        settings[name.replace("-", "_").lower()] = value
    return settings


def _protocol_error(major: int, minor: int) -> PgError:
    return PgError(
        "0A000",
        f"unsupported frontend protocol {major}.{minor}: server supports "
        f"{SUPPORTED_MAJOR}.0 to {SUPPORTED_MAJOR}.{SUPPORTED_MINOR}",
        severity="FATAL",
    )


def parse_startup(code: int, payload: bytes) -> StartupRequest:
    """The StartupMessage whose protocol word is `code` and whose parameters are `payload`."""
    major, minor = code >> 16, code & 0xFFFF
    if major != SUPPORTED_MAJOR:
        raise _protocol_error(major, minor)
    try:
        words = StartupParams.parse(payload)
    except (ConstructError, UnicodeDecodeError) as exc:
        raise PgError("08P01", "invalid startup packet layout", severity="FATAL") from exc
    words = words[:-1]
    if len(words) % 2:
        raise PgError(
            "08P01",
            "invalid startup packet layout: expected terminator as last byte",
            severity="FATAL",
        )
    params: dict[str, str] = {}
    unrecognized: list[str] = []
    for name, value in zip(words[0::2], words[1::2], strict=True):
        if name.startswith("_pq_."):
            unrecognized.append(name)
        else:
            params[name] = value
    user = params.get("user", "")
    if not user:
        raise PgError(
            "28000", "no PostgreSQL user name specified in startup packet", severity="FATAL"
        )
    replication = replication_mode(params.get("replication"))
    options = parse_options(params.get("options", ""))
    return StartupRequest(
        user=user,
        database=params.get("database") or user,
        replication=replication,
        application_name=params.get("application_name", options.get("application_name", "")),
        params=params,
        options=options,
        protocol_minor=minor,
        unrecognized=tuple(unrecognized),
    )
