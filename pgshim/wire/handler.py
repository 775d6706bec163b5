"""What the server needs from the code behind it, and what a CopyBoth stream gets from the server.

The server builds one SessionHandler per connection through a HandlerFactory; a handler's
``simple`` may return a CopyBothStream whose ``run(io)`` then owns the connection until it
returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pgshim.wire.events import FrontendEvent

if TYPE_CHECKING:
    from pgshim.sql.results import (
        CommandResult,
        CopyBothStream,
        CopyOutResult,
        Prepared,
        RowsResult,
    )


@dataclass(slots=True)
class ConnectionInfo:
    pid: int
    secret: int
    user: str
    database: str
    application_name: str
    replication: str  # "false" | "database" | "true"
    client_addr: str | None
    client_port: int | None
    backend_start: datetime
    startup_params: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # GUCs from the "options" parameter
    is_superuser: bool = True
    tls: bool = False


class SessionHandler(Protocol):
    tx_status: str  # 'I' | 'T' | 'E'

    def split(self, sql: str) -> list[str]: ...

    async def simple(
        self, stmt: str
    ) -> RowsResult | CommandResult | CopyOutResult | CopyBothStream: ...

    async def prepare(self, stmt: str, param_oids: list[int]) -> Prepared: ...

    async def execute(
        self, prepared: Prepared, params: list[Any]
    ) -> RowsResult | CommandResult: ...

    def reported_changes(self) -> list[tuple[str, str]]: ...

    def cursor_columns(self, name: str) -> list[Any] | None:
        """The columns of the session's SQL cursor ``name`` (DECLARE), if it is open: a
        Describe of that portal."""

    def close_cursor(self, name: str) -> None:
        """A Close of the portal of the session's SQL cursor ``name``: closes it, if open."""

    def failed(self) -> None:
        """A statement ended in an error (while its rows were sent, too): a transaction block
        it ran in is aborted."""

    def cancel(self) -> None: ...

    async def close(self) -> None: ...


HandlerFactory = Callable[[ConnectionInfo], SessionHandler]


class StreamIO(Protocol):
    """The connection as a CopyBoth stream sees it."""

    @property
    def closed(self) -> bool: ...

    def write(self, data: bytes) -> None:
        """Queue already-framed bytes; they go out together on the next drain()."""

    def flush(self) -> bool:
        """Send what was written without waiting; False while the transport is above its
        high-water mark (drain() would wait)."""

    async def drain(self) -> None:
        """Send what was written; wait while the transport is above its high-water mark."""

    async def read_message(self) -> FrontendEvent | None:
        """The next frontend message (CopyData, CopyDone, CopyFail, Terminate, ...); None at EOF."""

    def pending_messages(self) -> list[FrontendEvent]:
        """Messages already received, without waiting (possibly none)."""
