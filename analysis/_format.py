"""How the report writes a value in a table cell or a sentence: one function per kind of
value, so that a mean, a p-value or an interval reads the same in every table (``—`` for a
missing value, ``∞`` for an unbounded one)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def number(v: Any, digits: int = 4) -> str:
    """A statistic at fixed precision."""
    if _missing(v):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def signed(v: Any) -> str:
    """A difference, with its sign always shown (a gain reads ``+``)."""
    return "—" if pd.isna(v) else f"{v:+.4f}"


def intervals(low: pd.Series, high: pd.Series) -> list[str]:
    """``[low, high]`` per row."""
    return [f"[{number(a)}, {number(b)}]" for a, b in zip(low, high, strict=True)]


def p_value(v: Any) -> str:
    """A p-value; below 0.001 only its bound, the digits there mean nothing at these n."""
    if _missing(v):
        return "—"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def mean_std(mean: Any, std: Any, n: Any = None) -> str:
    """``mean ± std``, with the seed count when given."""
    s = f"{number(mean)} ± {number(std)}"
    return s if n is None else f"{s} (n={int(n)})"


def seed_list(v: Any) -> str:
    """Seeds as ``0, 3, 4``."""
    return ", ".join(map(str, v)) if v else "—"


def delta_ci(delta: Any, low: Any, high: Any, n: Any) -> str:
    """A paired Δ with its interval and the pairs it is over."""
    if _missing(delta):
        return "—"
    return f"{delta:+.4f} [{number(low)}, {number(high)}] (n={int(n)})"
