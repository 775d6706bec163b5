"""The one exception type that becomes a PostgreSQL ErrorResponse."""

from __future__ import annotations


class PgError(Exception):
    """An error reported to a client as ErrorResponse with a SQLSTATE.

    severity is ERROR (the session goes on) or FATAL (the connection is closed after it).
    """

    def __init__(
        self,
        sqlstate: str,
        message: str,
        *,
        severity: str = "ERROR",
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.severity = severity
        self.detail = detail
        self.hint = hint
        self.position = position  # 1-based character index into the query text

    def __repr__(self) -> str:
        return f"PgError({self.sqlstate!r}, {self.message!r}, severity={self.severity!r})"
