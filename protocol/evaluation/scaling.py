"""Exact arithmetic, and turning a measured value into the integer the predicate compares.

    >>> from decimal import Decimal
    >>> scale(Decimal("0.0015395"), rounding_decimals=6, value_decimals=8)
    (Decimal('0.001540'), 154000)
    >>> scale(Decimal("2.5"), rounding_decimals=36, value_decimals=0)[1]
    2

``scale``: round the value to ``rounding_decimals`` places (round-half-even), then multiply by
``10**value_decimals`` and round half-even to an integer. Both steps are exact up to
``ROUNDING.prec`` significant digits; beyond it ``decimal.InvalidOperation`` is raised.
``EXACT`` is the context entries compute in: any operation that would have to round raises
``decimal.Inexact`` instead of silently losing digits.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

EXACT = Context(
    prec=200,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
ROUNDING = Context(
    prec=400,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def scale(value: Decimal, *, rounding_decimals: int, value_decimals: int) -> tuple[Decimal, int]:
    """``(rounded, scaled)``: the value rounded to ``rounding_decimals`` and the scaled integer."""
    with localcontext(ROUNDING):
        rounded = value.quantize(Decimal(1).scaleb(-rounding_decimals), rounding=ROUND_HALF_EVEN)
        scaled = rounded.scaleb(value_decimals).to_integral_value(rounding=ROUND_HALF_EVEN)
    return rounded, int(scaled)
