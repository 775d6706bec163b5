"""The compiled ingestion core (``pgshim/_ingest_core.pyx``, Cython), when it was built.

The pure-Python decoders stay the reference: the compiled ones give the same values and, on
anything unusual, hand over to the reference, which then reports the error as always. Setting
``PGSHIM_PURE=1`` in the environment turns the compiled core off.
"""

from __future__ import annotations

import os
from types import ModuleType

core: ModuleType | None = None
if not os.environ.get("PGSHIM_PURE"):
    try:
        from pgshim import _ingest_core as core  # type: ignore[no-redef]
    except ImportError:  # not built (no compiler at install time): the pure-Python path
        core = None


def untrack(*objects: object) -> None:
    """Take objects that cannot be in a reference cycle out of the cyclic garbage collector's
    sight; reference counting still frees them. Decoded transactions and their output are kept
    by the thousand for seconds: without this every young-generation collection walks those
    that arrived since the last one, a pause of tens of milliseconds for every session at 10k
    records/s. Only for objects whose containers (and what they hold) never refer back to them.
    Without the compiled core: nothing (the collector walks them)."""
    if core is not None:
        core.untrack(*objects)


def untrack_transaction(tx: object) -> None:
    """``untrack`` for a decoded transaction and the lists and records it owns."""
    if core is not None:
        core.untrack_transaction(tx)


def describe() -> str:
    """Whether the compiled core is in use, for logs and benchmarks."""
    if core is not None:
        return f"in use ({core.__file__})"
    return "off (PGSHIM_PURE)" if os.environ.get("PGSHIM_PURE") else "not built"
