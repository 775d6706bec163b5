"""Rewritten statements kept for the next query of the same text.

Rewriting a catalog query for the engine (catalog.py) walks its tree many times and prints it
again; tools send the same texts again and again. The rewrite is a function of the statement's
text, of what is registered in the catalog (its ``generation``) and of what it reads while it
runs, each read noted as it happens (a Read): a parameter's value taken as a constant, a
server function's result put in as a literal (these carry the session's values: user,
settings, search path), a regclass or regnamespace looked up, the collections' names, engine
tables and columns. A kept rewrite is used again only for the same text and generation when
every one of its reads gives the same answer now (compared by type and printed value), so it
is exactly the rewrite that would be made again (a server function the rewrite calls has no
side effect: those with one are planned and done after the engine ran, see effects.py, so
calling one again to compare is harmless). The result columns named and typed from the
query's tree and the engine's description of them (they read nothing else) are kept with it.
Statements with a side effect are not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_TEXTS = 256
VARIANTS = 4  # rewrites kept per text (sessions with different settings taking turns)

Read = tuple[str, tuple, object]  # (kind, arguments, fingerprint of what was found)


def fingerprint(value: Any) -> object:
    """What a read found, compared so that equal fingerprints print as equal literals (1, 1.0
    and True are different)."""
    return type(value).__name__, repr(value)


@dataclass(frozen=True, slots=True)
class Rewritten:
    """What a query needs of its rewrite to run."""

    reads: tuple[Read, ...]
    sql: str  # the engine's statement
    param_numbers: tuple[int, ...]  # the query's parameters the statement uses, in its order
    collections: tuple[str, ...]  # collections it reads
    views: tuple[str, ...]  # catalog views it reads (their rows are the query's)
    row_tables: tuple[tuple[str, int, Any], ...]  # (table, call index, function): rows of calls
    deterministic: bool  # see result_cache.deterministic
    # the result's columns (catalog.Catalog._columns) by the engine's description of them
    columns: dict[str, list] = field(default_factory=dict)


class RewriteCache:
    """Kept rewrites by (text, catalog generation), the most recently used MAX_TEXTS texts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, int], list[Rewritten]] = OrderedDict()
        self.hits = 0

    def find(self, text: str, generation: int, still: Callable[[Read], bool]) -> Rewritten | None:
        """A kept rewrite of the text each of whose reads ``still`` finds the same."""
        with self._lock:
            variants = list(self._kept.get((text, generation), ()))
        for rewritten in variants:
            if all(still(read) for read in rewritten.reads):
                with self._lock:
                    self.hits += 1
                    if (text, generation) in self._kept:
                        self._kept.move_to_end((text, generation))
                return rewritten
        return None

    def put(self, text: str, generation: int, rewritten: Rewritten) -> None:
        with self._lock:
            variants = self._kept.setdefault((text, generation), [])
            variants.insert(0, rewritten)
            del variants[VARIANTS:]
            self._kept.move_to_end((text, generation))
            while len(self._kept) > MAX_TEXTS:
                self._kept.popitem(last=False)
