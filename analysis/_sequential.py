"""Group-sequential significance levels: how strict each look of a seed race must be.

A race looks at its seeds after every round (``start``, ``start + step``, …, ``max``
seeds). Testing at α at every look would claim "better" far more often than α under the
null, so each look gets a *nominal* level from an alpha-spending function (Lan & DeMets
1983): the probability of a false claim spent by the time a fraction ``t = n / max`` of
the seeds is in is ``α · t^ρ`` (the Kim–DeMets power family). The boundaries are exact for
the z statistics of a sequence of looks at accumulating data, whose correlation is
``sqrt(n_i / n_j)``: the probability of crossing at look k and at no earlier look equals
the α spent between looks k−1 and k, computed with scipy's multivariate normal CDF.

The levels are applied to the paired t-tests of the race (a nominal p-value threshold per
look), the usual practice for small samples; ``bench/race.py`` measures the error rates
this gives on simulated seeds rather than trusting the asymptotics.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

# ρ = 5 spends almost nothing early (a look at a third of the seeds spends α/243) and
# keeps 0.045 of α = 0.05 for a 7-look race's last look, so a race that runs to max loses
# little power against the fixed grid, yet a large effect still stops it halfway;
# docs/analysis.md ("Racing seeds") and docs/decisions.md say why this one (ρ = 3 lost
# 0.047 of power where the effect is the margin's size).
SPENDING_RHO = 5.0
# A race's eliminations spend an α of their own, linearly (ρ = 1, Pocock-like: a look at
# a fifth of the seeds may spend a fifth of it). Eliminating a configuration that is not
# worse loses power but claims nothing to a user, so it may spend early; testing it at α
# every round (F-Race's practice) would spend α once per look.
ELIMINATION_RHO = 1.0


def spent(alpha: float, fractions: np.ndarray, rho: float = SPENDING_RHO) -> np.ndarray:
    """Cumulative α spent at each information fraction (the last one spends all of α)."""
    out = alpha * np.minimum(1.0, fractions) ** rho
    out[-1] = alpha
    return out


@functools.lru_cache(maxsize=256)
def nominal_levels(
    alpha: float, looks: tuple[int, ...], rho: float = SPENDING_RHO, total: int | None = None
) -> tuple:
    """Two-sided nominal p-value thresholds, one per look, for seed counts ``looks``.

    ``looks`` is increasing (e.g. ``(3, 5, 7, 9)``); a single look gets α itself. The
    information fraction of a look is n / ``total`` (default: the last look's n), and the
    last look spends all the α left: ``looks`` cut short after look k with ``total`` the
    planned maximum gives the levels of a race that stops there (a budget stop) — the
    same levels as planned before k, and at k all that is left. The result is
    deterministic (the CDF's quasi-Monte Carlo stream is seeded) and cached.
    """
    from scipy.optimize import brentq
    from scipy.stats import multivariate_normal, norm

    if not looks or list(looks) != sorted(set(looks)) or looks[0] < 1:
        raise ValueError(f"looks must be increasing seed counts >= 1, got {looks}")
    t = np.asarray(looks, dtype=float) / max(total or looks[-1], looks[-1])
    cumulative = spent(alpha, t, rho)

    def inside(limits: np.ndarray) -> float:
        """P(|Z_j| < limits_j at every look j so far) under the null."""
        k = len(limits)
        if k == 1:
            return float(2 * norm.cdf(limits[0]) - 1)
        tk = t[:k]
        corr = np.sqrt(np.minimum.outer(tk, tk) / np.maximum.outer(tk, tk))
        mvn = multivariate_normal(mean=np.zeros(k), cov=corr, allow_singular=True,
                                  maxpts=20_000 * k)  # fmt: skip
        return float(mvn.cdf(limits, lower_limit=-limits, rng=np.random.default_rng(0)))

    bounds: list[float] = []
    for k in range(len(looks)):
        # the bound at look k makes P(a crossing by look k) exactly the α spent by then
        target = 1.0 - cumulative[k]
        prev = np.asarray(bounds)

        def gap(c: float, prev: np.ndarray = prev, target: float = target) -> float:
            return inside(np.append(prev, c)) - target

        bounds.append(0.0 if gap(0.0) > 0 else brentq(gap, 0.0, 12.0, xtol=1e-5))
    return tuple(float(2 * norm.sf(c)) for c in bounds)


@dataclass(frozen=True)
class Boundary:
    """The nominal levels of one look: at which p a test of local level α rejects there.

    A decision made once (a grid) tests at α itself: :data:`SINGLE_LOOK`. A race's look
    ``k`` of ``looks`` tests at the group-sequential boundary of α — and Holm's step-down
    over a race's configurations tests its j-th smallest p at the boundary *of α/(m − j)*
    (the graphical group-sequential Holm procedure, Maurer & Bretz 2013), which is not the
    boundary of α divided by m (at m = 4 that would cross at 0.0139 per hypothesis, not
    0.0125). ``final``: the race ends at this look (``max`` or a budget stop), which then
    spends all the α its earlier looks left.
    """

    looks: tuple[int, ...] = ()
    k: int = 0
    final: bool = False
    rho: float = SPENDING_RHO

    def now(self, alpha: float) -> float:
        """This look's level for a test of local level ``alpha``."""
        if not self.looks:
            return alpha
        cut = self.looks[: self.k + 1] if self.final else self.looks
        return nominal_levels(alpha, cut, self.rho, self.looks[-1])[self.k]

    def at_n(self, n: np.ndarray, alpha: float) -> np.ndarray:
        """The level a look at ``n`` seeds would use (the first look with at least n;
        beyond the last, the last's: what "seeds to resolve" is computed at)."""
        n = np.asarray(n)
        if not self.looks:
            return np.full(n.shape, alpha, dtype=float)
        levels = np.asarray(nominal_levels(alpha, self.looks, self.rho))
        return levels[np.minimum(np.searchsorted(self.looks, n), len(self.looks) - 1)]

    def look_at(self, n: float) -> float:
        """The seed count of the first look with at least ``n`` seeds (``n`` itself
        beyond the last look, or for a decision made once): where a race would see it."""
        if not self.looks or not math.isfinite(n) or n > self.looks[-1]:
            return n
        return float(self.looks[int(np.searchsorted(self.looks, n))])


SINGLE_LOOK = Boundary()
