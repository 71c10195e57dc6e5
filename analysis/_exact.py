"""Exact sign-flip results for seeds whose values are all equal.

A t-test divides by the spread of the values; when every seed moves by the same amount —
a discrete metric on a small dev set, three seeds each one RTE example better — the
spread is 0, t is infinite, and p = 0 would pass any level (issue 27). The exact
sign-flip (randomisation) test needs no spread: under the null each seed's difference
is as likely negative as positive, and n differences of one sign are the most extreme of
the 2^n sign patterns, two of them (all +, all −) for a two-sided test. So n equal
nonzero differences give p = 2^(1−n) (0.25 at 3 seeds, 0.0156 at 7), never 0, and the
interval of the values that test does not reject is every value while that p is above
the level (nothing can be excluded) and the common value itself once it is below.
``tests/test_decide.py`` pins these against ``scipy.stats.permutation_test``.
"""

from __future__ import annotations

import numpy as np

# Differences of scores like k/277 are equal only up to a rounding of the last bit of
# a float ((k+1)/277 − k/277 varies by ~1e-17 from k to k): a spread this small relative
# to the values is no spread. Real score differences are at least 1/(rows of dev).
FLAT = 1e-9


def flat(values: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Whether each row of ``values`` (seeds in columns) is all one value, up to float
    rounding (:data:`FLAT` of ``scale``, at least 1: metrics live near [−1, 1])."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    spread = values.max(axis=1) - values.min(axis=1)
    return spread <= FLAT * np.maximum(1.0, np.asarray(scale, dtype=float))


def two_sided_p(n: int | np.ndarray) -> np.ndarray:
    """p of n equal nonzero differences (two-sided)."""
    return np.power(2.0, 1 - np.asarray(n, dtype=float))


def one_sided_p(n: int | np.ndarray) -> np.ndarray:
    """p of n equal differences on the alternative's side (one-sided)."""
    return np.power(2.0, -np.asarray(n, dtype=float))


def half_width(n: int | np.ndarray, level: float) -> np.ndarray:
    """Half-width of the interval around n equal values at ``level`` (1 − confidence):
    unbounded while the test cannot reject (p ≥ level), 0 once it can."""
    return np.where(two_sided_p(n) >= level, np.inf, 0.0)


def seeds_to_reject(levels: np.ndarray, counts: np.ndarray, sides: int = 2) -> float:
    """The smallest of ``counts`` whose n equal differences the exact test rejects at
    that n's level (``levels``, one per count): 2^(1−n) two-sided, 2^(−n) one-sided."""
    p = two_sided_p(counts) if sides == 2 else one_sided_p(counts)
    hit = np.flatnonzero(p < levels)
    return float(counts[hit[0]]) if len(hit) else np.inf
