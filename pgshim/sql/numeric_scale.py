"""PostgreSQL's numeric in the engine, whose decimals have one scale per column where
PostgreSQL's numeric has one per value (its display scale). Casts and constants whose scale is
known get an engine type of that scale; what is left gets ANY_SCALE_NUMERIC, and its values are
sent without the fraction's trailing zeros (pure; loaded by the engine's processes too)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# the engine type of a numeric whose scale is not known before it runs
ANY_SCALE_NUMERIC = "DECIMAL(38,10)"


def trimmed(value: Any) -> Any:
    """A numeric without the fraction's trailing zeros (10.0000000000 -> 10)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return value
    if not value:
        return Decimal(0)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    end = len(digits)
    while exponent < 0 and end > 1 and digits[end - 1] == 0:
        end, exponent = end - 1, exponent + 1
    return Decimal((sign, digits[:end], exponent))


def scale_of(text: str) -> int | None:
    """The display scale PostgreSQL gives a numeric constant written as ``text`` (1.50: 2,
    1e3: 0); None when it is not a finite number."""
    try:
        number = Decimal(text.strip())
    except ArithmeticError:
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)
