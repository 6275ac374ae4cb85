"""How a report's numbers are written for people: one place, so the page, the figures and the
terminal agree, and a damaged report's huge value stays one short token instead of 300 digits."""

from __future__ import annotations

# Scores of a real scan are shares of accuracy, a few units at most; beyond this they are printed
# in scientific notation so that a table column keeps its width.
_FIXED_UP_TO = 1e6


def signed(value: float | None, digits: int = 4) -> str:
    """``+0.1234``; ``+1.000e+308`` for a value no scan produces; ``—`` for an undefined one."""
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if abs(value) < _FIXED_UP_TO else f"{value:+.{digits - 1}e}"
