"""What every output plugin shares: the context, the interface and option parsing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from pgshim.errors import PgError

if TYPE_CHECKING:
    from pgshim.logical.publications import PublicationStore
    from pgshim.logical.transactions import Transaction

Message = tuple[int, bytes]
T = TypeVar("T")


@dataclass(slots=True)
class PluginContext:
    publications: PublicationStore | None = None
    server_version_num: int = 150018
    schema: str = "public"


class OutputPlugin(Protocol):
    name: str
    cache_key: tuple | None
    needs_records: bool  # whether encode() reads tx.records (see ChangeSource.history)

    def startup(self) -> list[Message]: ...

    def encode(self, tx: Transaction) -> list[Message]: ...


def parse_bool(text: str) -> bool | None:
    """PostgreSQL's parse_bool: true/false/yes/no/on/off/1/0 and unique prefixes, any case."""
    value = text.lower()
    if not value:
        return None
    if value in ("1", "0"):
        return value == "1"
    if value == "on":
        return True
    if value in ("of", "off"):
        return False
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(value):
            return meaning
    return None


def option_bool(name: str, value: str | None) -> bool:
    """A test_decoding / wal2json boolean option: a valueless option means true."""
    if value is None:
        return True
    parsed = parse_bool(value)
    if parsed is None:
        raise PgError("22023", f'could not parse value "{value}" for parameter "{name}"')
    return parsed


class SharedOutputPlugin:
    """A plugin whose output depends only on the transaction and its options: rendered once per
    transaction and shared by every session with the same ``cache_key``."""

    name: str
    cache_key: tuple
    needs_records = False

    def startup(self) -> list[Message]:
        return []

    def encode(self, tx: Transaction) -> list[Message]:
        return cached(tx, self.cache_key, lambda: self._render(tx))

    def _render(self, tx: Transaction) -> list[Message]:
        raise NotImplementedError


def cached(tx: Transaction, key: tuple, render: Callable[[], T]) -> T:
    """Encoded output shared by every session whose plugin output has the same key."""
    encoded = tx.encoded.get(key)
    if encoded is None:
        encoded = render()
        tx.encoded[key] = encoded
    return encoded
