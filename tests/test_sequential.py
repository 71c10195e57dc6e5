"""Group-sequential nominal levels (analysis/_sequential.py): their shape, and by simulation
that the boundaries keep the chance of any false crossing over all looks at α."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from analysis._sequential import SPENDING_RHO, nominal_levels, spent

ALPHA = 0.05
LOOKS = (3, 5, 7, 9, 11, 13, 15)  # a race: start 3, step 2, max 15


@pytest.fixture(scope="module")
def levels() -> tuple:
    return nominal_levels(ALPHA, LOOKS)  # seconds (7-dimensional normal CDFs): once


def test_single_look_is_alpha():
    (level,) = nominal_levels(ALPHA, (5,))
    assert level == pytest.approx(ALPHA, rel=1e-4)
    assert nominal_levels(0.01, (9,))[0] == pytest.approx(0.01, rel=1e-4)


def test_levels_shape(levels):
    assert len(levels) == len(LOOKS)
    assert all(0 < lv < ALPHA for lv in levels)
    assert all(a < b for a, b in itertools.pairwise(levels))
    assert levels[-1] > levels[0]
    # the first look has nothing before it: its level is the α spent by then, α·t^ρ
    t0 = LOOKS[0] / LOOKS[-1]
    assert levels[0] == pytest.approx(ALPHA * t0**SPENDING_RHO, rel=1e-4)
    # the last look keeps most of α (SPENDING_RHO spends little early) but not all of it
    assert 0.6 * ALPHA < levels[-1] < ALPHA


def test_spent():
    out = spent(ALPHA, np.array([0.2, 0.5, 1.0]))
    np.testing.assert_allclose(out, ALPHA * np.array([0.2, 0.5, 1.0]) ** SPENDING_RHO)
    assert spent(ALPHA, np.array([0.5, 0.9]))[-1] == ALPHA  # the last look spends all of α
    assert spent(ALPHA, np.array([0.5, 1.5]), rho=1.0)[0] == pytest.approx(0.5 * ALPHA)


def _crossings(levels, looks, reps: int, seed: int) -> np.ndarray:
    """Under the null, for each rep the first look whose |z| crosses its two-sided nominal
    level (len(looks) when none does): z_k = (sum of the first n_k N(0,1) increments) /
    sqrt(n_k), the statistics of a sequence of looks at accumulating seeds."""
    rng = np.random.default_rng(seed)
    sums = np.cumsum(rng.standard_normal((reps, looks[-1])), axis=1)
    n = np.asarray(looks)
    z = sums[:, n - 1] / np.sqrt(n)
    bounds = stats.norm.isf(np.asarray(levels) / 2)
    crossed = np.abs(z) > bounds
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1), len(looks))


def _binomial_ok(count: int, reps: int, p: float) -> bool:
    """count is plausible for a binomial(reps, p): a two-sided exact test does not reject at
    0.001 (the simulation is seeded, so this is a fixed check; the bound is what it
    tolerates, about 3.3 binomial standard errors)."""
    return stats.binomtest(count, reps, p).pvalue > 1e-3


def test_boundaries_keep_alpha_over_all_looks(levels):
    reps = 40_000
    first = _crossings(levels, LOOKS, reps, seed=1)
    # overall: a false crossing at any look happens with probability α
    crossed = int((first < len(LOOKS)).sum())
    assert _binomial_ok(crossed, reps, ALPHA), crossed / reps
    # and by each look exactly the α spent by then, α·(n_k / n_max)^ρ
    target = spent(ALPHA, np.asarray(LOOKS, dtype=float) / LOOKS[-1])
    for k, tk in enumerate(target):
        by_k = int((first <= k).sum())
        assert _binomial_ok(by_k, reps, tk), (LOOKS[k], by_k / reps, tk)


def test_naive_testing_at_every_look_inflates_alpha():
    reps = 40_000
    first = _crossings([ALPHA] * len(LOOKS), LOOKS, reps, seed=2)
    assert (first < len(LOOKS)).mean() > 0.08


def test_short_race_by_simulation():
    looks = (3, 5, 7)
    first = _crossings(nominal_levels(ALPHA, looks), looks, 40_000, seed=3)
    assert _binomial_ok(int((first < len(looks)).sum()), 40_000, ALPHA)


@pytest.mark.parametrize("looks", [(5, 3), (3, 3), (3, 5, 4), (0, 3), (-1,), (0,)])
def test_invalid_looks(looks):
    with pytest.raises(ValueError, match="increasing"):
        nominal_levels(ALPHA, looks)


def test_no_looks():
    with pytest.raises(ValueError):
        nominal_levels(ALPHA, ())


def test_deterministic():
    looks = (3, 5, 7, 9)
    a = nominal_levels(ALPHA, looks)
    assert nominal_levels(ALPHA, looks) == a
    nominal_levels.cache_clear()
    b = nominal_levels(ALPHA, looks)
    assert b == a  # exactly: the CDF's quasi-Monte Carlo stream is seeded
    assert nominal_levels(ALPHA, looks, rho=1.0) != a  # the spending function matters
