"""How a report's numbers are written for people: one place, so the page, the figures and the
terminal agree, and a damaged report's huge value stays one short token instead of 300 digits."""

from __future__ import annotations

import math

# Scores of a real scan are shares of accuracy, a few units at most; beyond this they are printed
# in scientific notation so that a table column keeps its width.
_FIXED_UP_TO = 1e6


def signed(value: float | None, digits: int = 4) -> str:
    """``+0.1234``; ``+1.000e+308`` for a value no scan produces; ``—`` for an undefined one."""
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if abs(value) < _FIXED_UP_TO else f"{value:+.{digits - 1}e}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def order_of(count: int) -> str:
    """``10⁷`` for 8 700 000: the nearest power of ten, all a projection from a point estimate can
    claim (the two halves of one split projected 34 000 and 1 900 000 for the same groups)."""
    return "10" + str(round(math.log10(max(count, 1)))).translate(_SUPERSCRIPT)
