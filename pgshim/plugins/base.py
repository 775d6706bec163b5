"""What every output plugin shares: the context, the interface and option parsing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from pgshim.errors import PgError
from pgshim.speedups import untrack
from pgshim.versions import DEFAULT as DEFAULT_VERSION

if TYPE_CHECKING:
    from pgshim.logical.publications import PublicationStore
    from pgshim.logical.source import AheadChunk
    from pgshim.logical.transactions import Relation, Transaction
    from pgshim.sql.bounds import Bound

Message = tuple[int, bytes]
# appends a transaction's XLogData framing to a chunk's pieces after ``tail`` and returns the new
# tail, as ``walsender.ahead.frame_messages`` does with the plugin's messages; None: not for it
AheadFraming = Callable[[list[bytes], bytes, "Transaction"], bytes | None]
T = TypeVar("T")


@dataclass(slots=True)
class PluginContext:
    publications: PublicationStore | None = None
    server_version_num: int = DEFAULT_VERSION.num
    schema: str = "public"
    # the retained transactions from the first (for what a row was before a change)
    history: Callable[[], Iterable[object]] | None = None
    old_rows_budget: int | None = None  # bytes a session may keep of those rows


class OutputPlugin(Protocol):
    name: str
    cache_key: tuple | None
    ahead_key: str | None  # names this output when it can be rendered ahead (walsender.ahead)

    def startup(self) -> list[Message]: ...

    async def prepare(
        self, items: Sequence[Transaction | AheadChunk], sent: int, bound: Bound
    ) -> None:
        """Before ``items`` are encoded, the work that takes long (in paced steps: ``encode``
        runs at once, on the event loop)."""
        ...

    def encode(self, tx: Transaction) -> list[Message]: ...

    def takes_ahead(self, actions: list[tuple[Relation, str]]) -> bool:
        """Whether output rendered ahead for transactions with these (relation, action) changes
        is what this session would send for them now."""
        ...


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
    ahead_key: str | None = None

    def startup(self) -> list[Message]:
        return []

    def takes_ahead(self, actions: list[tuple[Relation, str]]) -> bool:
        return True

    async def prepare(
        self, items: Sequence[Transaction | AheadChunk], sent: int, bound: Bound
    ) -> None:
        return None

    def encode(self, tx: Transaction) -> list[Message]:
        return cached(tx, self.cache_key, lambda: untracked_messages(self.render(tx)))

    def render(self, tx: Transaction) -> list[Message]:
        """The transaction's messages, rendered now (``encode`` renders once and shares)."""
        raise NotImplementedError


def untracked_messages(messages: list[Message]) -> list[Message]:
    """``messages``, kept with a transaction, out of the cyclic collector's sight (see
    ``speedups.untrack``: positions and bytes refer to nothing)."""
    untrack(messages, *messages)
    return messages


def reused(tx: Transaction, key: tuple, render: Callable[[], T]) -> T:
    """What the sessions with ``key`` already rendered for the transaction, else rendered now
    and not kept: output rendered ahead would otherwise keep every stored chunk's messages
    alive a second time in the transactions loaded with it."""
    encoded = tx.encoded.get(key)
    return render() if encoded is None else encoded


def unless_rendered(key: tuple, frame: AheadFraming) -> AheadFraming:
    """``frame`` for the transactions the sessions with ``key`` have not rendered already: what
    they rendered is reused."""

    def framing(pieces: list[bytes], tail: bytes, tx: Transaction) -> bytes | None:
        return None if key in tx.encoded else frame(pieces, tail, tx)

    return framing


def cached(tx: Transaction, key: tuple, render: Callable[[], T]) -> T:
    """Encoded output shared by every session whose plugin output has the same key."""
    encoded = tx.encoded.get(key)
    if encoded is None:
        encoded = render()
        tx.encoded[key] = encoded
        untrack(tx.encoded)
    return encoded
