"""RedDB terms as PostgreSQL timelines: history file content and term tracking."""

from __future__ import annotations

import sqlite3

import pytest

from pgshim.errors import PgError
from pgshim.reddb.link.terms import TermHistory, history_file_name, timeline_history, timeline_of
from pgshim.spool.frames import Frame


def test_timeline_history_lines() -> None:
    # term 2 starts at RedDB LSN 7 (position 0/700); term 5 at LSN 2**32 + 1, whose position
    # (2**32 + 1) << 8 = 0x100_0000_0100 prints as 100/100
    content = timeline_history([(5, 0x1_0000_0001), (1, 1), (2, 7)])
    assert content == (
        "1\t0/700\tRedDB term 2 began at LSN 7\n2\t100/100\tRedDB term 5 began at LSN 4294967297\n"
    )
    assert timeline_history([(1, 1)]) == ""
    assert timeline_history([]) == ""


def test_timeline_of_and_file_name() -> None:
    assert timeline_of(0) == 1  # v1/v2 frames carry no term
    assert timeline_of(3) == 3
    with pytest.raises(ValueError):
        timeline_of(2**32)
    assert history_file_name(10) == "0000000A.history"


def _frame(lsn: int, term: int) -> Frame:
    return Frame("v3-41", lsn, 0, term, 0, b"{}", 0, 2)


def test_term_history_follows_frames() -> None:
    history = TermHistory()
    assert (history.current_term, history.timeline) == (1, 1)
    assert history.observe_frame(_frame(1, 1)) is True
    assert history.observe_frame(_frame(2, 1)) is False
    assert history.observe_frame(_frame(3, 0)) is False  # no term: stays
    assert history.observe_frame(_frame(4, 3)) is True
    assert history.observe_frame(_frame(5, 2)) is False  # a stale leader's late record
    assert history.current_term == 3
    assert history.terms == [(1, 1), (3, 4)]
    assert history.history_file(3) == (
        "00000003.history",
        "1\t0/400\tRedDB term 3 began at LSN 4\n",
    )


@pytest.mark.parametrize("timeline", [1, 2, 4])
def test_history_file_missing_is_58P01(timeline: int) -> None:
    history = TermHistory()
    history.observe(1, 1)
    history.observe(3, 9)
    with pytest.raises(PgError) as info:
        history.history_file(timeline)
    assert info.value.sqlstate == "58P01"
    assert history_file_name(timeline) in info.value.message


def test_term_history_persists() -> None:
    conn = sqlite3.connect(":memory:")
    first = TermHistory(conn)
    first.observe(1, 1)
    first.observe(2, 50)
    again = TermHistory(conn)
    assert again.terms == [(1, 1), (2, 50)]
    assert again.current_term == 2
    assert again.observe(2, 51) is False
