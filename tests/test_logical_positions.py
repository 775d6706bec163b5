from hypothesis import given
from hypothesis import strategies as st

from pgshim.logical.positions import (
    change_pos,
    commit_pos,
    consistent_point,
    covered_lsn,
    end_pos,
    lsn_of,
    should_skip,
    xid_of,
)

LSNS = st.integers(min_value=0, max_value=(1 << 56) - 2)


def test_layout_of_one_lsn() -> None:
    assert change_pos(7) == 0x700
    assert commit_pos(7) == 0x7FE
    assert end_pos(7) == 0x7FF
    assert lsn_of(0x7FF) == 7
    assert consistent_point(0) == 0xFF
    assert xid_of((1 << 32) + 5) == 5


@given(LSNS, LSNS)
def test_positions_of_earlier_transaction_are_all_smaller(a: int, b: int) -> None:
    if a == b:
        return
    a, b = min(a, b), max(a, b)
    earlier = (change_pos(a), commit_pos(a), end_pos(a))
    later = (change_pos(b), commit_pos(b), end_pos(b))
    assert max(earlier) < min(later)
    assert change_pos(a) < commit_pos(a) < end_pos(a)
    assert end_pos(a) + 1 == change_pos(a + 1)


@given(LSNS, st.integers(min_value=0, max_value=1 << 64))
def test_skip_rule_equals_postgres_commit_rule(lsn: int, start: int) -> None:
    assert should_skip(end_pos(lsn), start) == (commit_pos(lsn) < start)
    assert lsn_of(change_pos(lsn)) == lsn_of(end_pos(lsn)) == lsn


@given(LSNS)
def test_covered_lsn_counts_only_finished_transactions(lsn: int) -> None:
    assert covered_lsn(end_pos(lsn)) == lsn
    assert covered_lsn(commit_pos(lsn + 1)) == lsn
    assert covered_lsn(change_pos(lsn + 1)) == lsn
    assert covered_lsn(0) == 0
