"""Where RedDB keeps the logical WAL spool: a sibling of the data file named ``<file>.logical.wal``."""

from __future__ import annotations

import os

SPOOL_SUFFIX = ".logical.wal"


def spool_path(path: str | os.PathLike[str]) -> str:
    """The spool for PATH: PATH itself if it ends with ``.logical.wal``, else PATH + ``.logical.wal``.

    PATH may name the ``.rdb`` data file or the spool.
    """
    text = os.fspath(path)
    return text if text.endswith(SPOOL_SUFFIX) else text + SPOOL_SUFFIX
