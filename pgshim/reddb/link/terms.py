"""RedDB terms as PostgreSQL timelines.

RedDB stamps every record with the leader ``term`` (v3 frames and the ChangeRecord's ``term``,
v1.8+). pgshim reports the current term as the timeline in IDENTIFY_SYSTEM, and each term switch
as a line of the timeline history file TIMELINE_HISTORY returns:
``<parent timeline>\\t<switchpoint X/Y>\\t<reason>\\n``, where the switchpoint is the position of
the first record of the new term (``change_pos``), which is also where the old one ended.

Records without a term (v1 and v2 frames report 0) belong to whichever term is current; a term
lower than the current one (a stale leader's record appended late) does not switch back.
"""

from __future__ import annotations

import logging
import sqlite3
from itertools import pairwise

from pgshim.errors import PgError
from pgshim.logical.positions import change_pos
from pgshim.pgtypes import format_lsn
from pgshim.spool.frames import Frame

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS term_history (
    term INTEGER PRIMARY KEY,
    start_lsn INTEGER NOT NULL
)
"""
MAX_TIMELINE = 0xFFFFFFFF  # PostgreSQL's TimeLineID is a uint32


def timeline_of(term: int) -> int:
    """The PostgreSQL timeline for a RedDB term (timelines start at 1; RedDB's default term)."""
    if term > MAX_TIMELINE:
        raise ValueError(f"RedDB term {term} does not fit a PostgreSQL timeline")
    return max(term, 1)


def history_file_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def timeline_history(terms: list[tuple[int, int]]) -> str:
    """History file content for the last of ``terms``, a list of (term, start RedDB LSN)."""
    ordered = sorted(terms)
    return "".join(
        f"{timeline_of(parent)}\t{format_lsn(change_pos(start))}\t"
        f"RedDB term {term} began at LSN {start}\n"
        for (parent, _), (term, start) in pairwise(ordered)
    )


class TermHistory:
    """Follows the term of the records read and remembers where each term began."""

    def __init__(self, conn: sqlite3.Connection | None = None) -> None:
        self.conn = conn
        self._terms: list[tuple[int, int]] = []
        if conn is not None:
            conn.execute(_SCHEMA)
            rows = conn.execute("SELECT term, start_lsn FROM term_history ORDER BY term")
            self._terms = [(term, start) for term, start in rows]

    @property
    def current_term(self) -> int:
        return self._terms[-1][0] if self._terms else 1

    @property
    def timeline(self) -> int:
        return timeline_of(self.current_term)

    @property
    def terms(self) -> list[tuple[int, int]]:
        return list(self._terms)

    def observe_frame(self, frame: Frame) -> bool:
        return self.observe(frame.term, frame.lsn)

    def observe(self, term: int, lsn: int) -> bool:
        """Note a record of ``term`` at ``lsn``; True when it starts a new term."""
        if term <= 0:
            return False
        if self._terms:
            current, start = self._terms[-1]
            if term == current:
                if lsn < start:  # a record of the term read after later ones (a rewrite's)
                    self._record(term, lsn, replace=True)
                return False
            if term < current:
                log.warning("RedDB LSN %d has term %d, older than term %d", lsn, term, current)
                return False
        timeline_of(term)
        self._record(term, lsn)
        return True

    def term_at(self, lsn: int) -> int:
        """The term the record at ``lsn`` belongs to, by where each term began (0: none)."""
        found = 0
        for term, start in self._terms:
            if start > lsn:
                break
            found = term
        return found

    def _record(self, term: int, lsn: int, replace: bool = False) -> None:
        if replace:
            self._terms[-1] = (term, lsn)
        else:
            self._terms.append((term, lsn))
        if self.conn is not None:
            self.conn.execute(
                "INSERT OR REPLACE INTO term_history (term, start_lsn) VALUES (?, ?)", (term, lsn)
            )
            if self.conn.in_transaction:
                self.conn.commit()

    def history_file(self, timeline: int) -> tuple[str, str]:
        """(file name, content) for TIMELINE_HISTORY; 58P01 when that timeline has no history."""
        known = [(term, start) for term, start in self._terms if timeline_of(term) <= timeline]
        if not known or timeline_of(known[-1][0]) != timeline or len(known) < 2:
            name = history_file_name(timeline)
            raise PgError(
                "58P01", f'could not open file "pg_wal/{name}": No such file or directory'
            )
        return history_file_name(timeline), timeline_history(known)
