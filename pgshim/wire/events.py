"""Frontend events produced by the sans-IO connection: small immutable records."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SSLRequest:
    pass


@dataclass(frozen=True, slots=True)
class GSSENCRequest:
    pass


@dataclass(frozen=True, slots=True)
class CancelRequest:
    pid: int
    secret: int


@dataclass(frozen=True, slots=True)
class StartupRequest:
    user: str
    database: str
    replication: str  # "false" | "database" | "true"
    application_name: str
    params: dict[str, str]
    options: dict[str, str]  # GUCs from the "options" parameter
    protocol_minor: int = 0
    unrecognized: tuple[str, ...] = ()  # "_pq_." options we do not support


@dataclass(frozen=True, slots=True)
class PasswordMessage:
    """Any 'p' message: cleartext/md5 password, SASLInitialResponse or SASLResponse."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Query:
    sql: str


@dataclass(frozen=True, slots=True)
class Parse:
    name: str
    sql: str
    param_oids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...] = ()
    params: tuple[bytes | None, ...] = ()
    result_formats: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Describe:
    kind: str  # "S" statement | "P" portal
    name: str


@dataclass(frozen=True, slots=True)
class Execute:
    portal: str
    max_rows: int = 0


@dataclass(frozen=True, slots=True)
class Close:
    kind: str  # "S" statement | "P" portal
    name: str


@dataclass(frozen=True, slots=True)
class Sync:
    pass


@dataclass(frozen=True, slots=True)
class Flush:
    pass


@dataclass(frozen=True, slots=True)
class Terminate:
    pass


@dataclass(frozen=True, slots=True)
class CopyData:
    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    pass


@dataclass(frozen=True, slots=True)
class CopyFail:
    message: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    data: bytes = field(repr=False, default=b"")


StartupEvent = SSLRequest | GSSENCRequest | CancelRequest | StartupRequest
FrontendEvent = (
    PasswordMessage
    | Query
    | Parse
    | Bind
    | Describe
    | Execute
    | Close
    | Sync
    | Flush
    | Terminate
    | CopyData
    | CopyDone
    | CopyFail
    | FunctionCall
)
EXTENDED_EVENTS = (Parse, Bind, Describe, Execute, Close, Flush)
