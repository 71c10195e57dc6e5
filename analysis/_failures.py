"""Failed seeds as an outcome of their own: how often a configuration collapses or diverges.

A seed *fails* when its run diverged (the training loss went non-finite: ``diverged``) or
collapsed (its model predicts one class — one tag, one score — for all of dev: ``one
class``); ``analysis._select.seed_flags`` marks both. A mean-based t-test counts such a
seed as one low score, and on a few seeds a configuration that collapses one run in
eight is usually seen only healthy (issue 27: chosen as ``better`` in 14–20 % of
simulated sweeps whose true mean is below vanilla's). So the decision also counts them:

* the failure rate of each configuration, with its one-sided 1 − α Clopper–Pearson upper
  bound (no failure in 11 seeds: rate ≤ 0.24 at 95 %);
* the paired exact test of "fails more often than vanilla": McNemar's, the binomial test
  of the seeds where exactly one of the two failed (``scipy.stats.binomtest``).

``decision.max_failure_rate`` (docs/analysis.md, docs/decisions.md) makes a
configuration ``better`` only when its failure rate is *shown* below the bound; by
default (None) only when it is not shown above vanilla's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

FLAGS = ("diverged", "one class")  # the flags that make a seed failed


@dataclass(frozen=True)
class Failures:
    """A configuration's failed seeds against vanilla's."""

    failed: int  # of its seeds
    seeds: int
    upper: float  # one-sided 1 − α upper bound on its failure rate
    above_vanilla_p: float  # exact McNemar p of "fails more often than vanilla" (paired)

    @property
    def rate(self) -> float:
        return self.failed / self.seeds if self.seeds else math.nan

    def text(self, alpha: float) -> str:
        """ "1 of 9 seeds failed (rate ≤ 0.43, 95 %)"."""
        return (
            f"{self.failed} of {self.seeds} seeds failed "
            f"(rate ≤ {self.upper:.2f}, {100 * (1 - alpha):g} %)"
        )


def upper_bound(failed: int, seeds: int, alpha: float) -> float:
    """The one-sided 1 − α Clopper–Pearson upper bound on a rate of ``failed`` in ``seeds``
    (``scipy.stats.binomtest(...).proportion_ci`` for alternative "less", in closed form)."""
    from scipy.special import betaincinv

    if seeds == 0 or failed >= seeds:
        return 1.0
    return float(betaincinv(failed + 1, seeds - failed, 1 - alpha))


def failures(
    flags: Mapping[int, str],
    seeds: list[int],
    vanilla_flags: Mapping[int, str],
    common: list[int],
    alpha: float,
) -> Failures:
    """The failures of a configuration's ``seeds`` (its flags), and the paired test
    against vanilla on the ``common`` seeds."""
    from scipy.stats import binomtest

    failed = sum(flags.get(s) in FLAGS for s in seeds)
    mine = sum(flags.get(s) in FLAGS and vanilla_flags.get(s) not in FLAGS for s in common)
    theirs = sum(vanilla_flags.get(s) in FLAGS and flags.get(s) not in FLAGS for s in common)
    p = binomtest(mine, mine + theirs, 0.5, alternative="greater").pvalue if mine else 1.0
    return Failures(failed, len(seeds), upper_bound(failed, len(seeds), alpha), float(p))


def blocks_better(f: Failures, alpha: float, max_rate: float | None) -> str:
    """Why a configuration's failures keep it from ``better`` ("" when they do not)."""
    if max_rate is not None:
        if f.upper < max_rate:
            return ""
        clean = clean_seeds_needed(max_rate, alpha)
        return (f"its failure rate is not shown below {max_rate:g} ({f.text(alpha)}; "
                f"{clean} seeds without a failure would show it)")  # fmt: skip
    if f.above_vanilla_p < alpha:
        return f"it fails more often than vanilla ({f.text(alpha)}, p={f.above_vanilla_p:.2g})"
    return ""


def clean_seeds_needed(max_rate: float, alpha: float) -> int:
    """Seeds without a failure that show a rate below ``max_rate``: the smallest n with
    (1 − max_rate)^n < α (0.1 at α 0.05: 29)."""
    return math.floor(math.log(alpha) / math.log(1 - max_rate)) + 1
