"""A statement's limits: its deadline (statement_timeout) and the pace of long Python loops."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TypeVar

from pgshim.errors import PgError

T = TypeVar("T")

_DURATION = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*", re.IGNORECASE)
_UNIT_MS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
PACE = 256  # items between two yields to the event loop


def duration_ms(name: str, value: str) -> float:
    """A time setting in milliseconds, as PostgreSQL reads it (a bare number is ms)."""
    match = _DURATION.fullmatch(value)
    if match is None or float(match.group(1)) < 0:
        raise PgError("22023", f'invalid value for parameter "{name}": "{value}"')
    return float(match.group(1)) * _UNIT_MS[(match.group(2) or "ms").lower()]


def timed_out() -> PgError:
    return PgError("57014", "canceling statement due to statement timeout")


@dataclass
class Bound:
    timeout_ms: float = 0  # 0: none
    deadline: float | None = None

    def start(self) -> Bound:
        """Start (or restart, for a portal's next Execute) the statement's clock."""
        self.deadline = time.monotonic() + self.timeout_ms / 1000 if self.timeout_ms else None
        return self

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def check(self) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise timed_out()


async def paced(items: Iterable[T], bound: Bound, every: int = PACE) -> AsyncIterator[T]:
    """The items, yielding to the event loop every few so that other sessions go on, and
    stopping with 57014 once the statement's deadline has passed."""
    for count, item in enumerate(items, start=1):
        yield item
        if count % every == 0:
            await asyncio.sleep(0)
            bound.check()
