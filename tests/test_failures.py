"""Failed seeds as an outcome: the bound on a failure rate, the paired test against
vanilla, and ``decision.max_failure_rate`` keeping a collapse-prone configuration from
``better`` (issue 27)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis._decide import Candidate, DecisionSettings, decide
from analysis._failures import clean_seeds_needed, failures, upper_bound


@pytest.mark.parametrize(("failed", "seeds"), [(0, 3), (0, 11), (1, 9), (4, 15), (2, 2)])
def test_upper_bound_is_the_one_sided_clopper_pearson_bound(failed, seeds):
    want = stats.binomtest(failed, seeds, alternative="less").proportion_ci(0.95, "exact").high
    assert upper_bound(failed, seeds, 0.05) == pytest.approx(want, rel=1e-9)


def test_no_failure_in_eleven_seeds_bounds_the_rate_at_a_quarter():
    assert upper_bound(0, 11, 0.05) == pytest.approx(0.238, abs=5e-4)
    assert clean_seeds_needed(0.1, 0.05) == 29
    assert upper_bound(0, 29, 0.05) < 0.1 <= upper_bound(0, 28, 0.05)


def test_the_paired_test_counts_the_seeds_where_one_of_the_two_failed():
    mine = {0: "one class", 1: "diverged", 2: "one class", 5: "one class"}
    vanilla = {5: "one class", 6: "one class"}
    f = failures(mine, list(range(8)), vanilla, list(range(8)), 0.05)
    assert (f.failed, f.seeds) == (4, 8)
    # 3 seeds only it failed, 1 only vanilla (seed 6); seed 5 both: McNemar's exact test
    assert f.above_vanilla_p == pytest.approx(stats.binomtest(3, 4, alternative="greater").pvalue)


def _pair(healthy_gain: float, collapsed: set[int], n: int, collapse: float = 0.5):
    rng = np.random.default_rng(4)
    seed = rng.normal(0, 0.007, n)
    van = 0.80 + seed + rng.normal(0, 0.007, n)
    mine = 0.80 + healthy_gain + seed + rng.normal(0, 0.007, n)
    values = {s: (collapse if s in collapsed else float(mine[s])) for s in range(n)}
    flags = {s: "one class" for s in collapsed}
    return [
        Candidate("vanilla", "vanilla", "vanilla", dict(enumerate(map(float, van))), (0,),
                  is_vanilla=True),
        Candidate("tail", "TAIL", "sda", values, (2, 1.0), flags=flags),
    ]  # fmt: skip


def test_a_collapse_prone_configuration_is_held_back_by_the_bound():
    """+0.015 when healthy, no collapse in its 12 seeds: ``better`` by the t-test; with
    ``max_failure_rate: 0.1`` 12 clean seeds do not show a rate below 0.1 (29 would)."""
    cands = _pair(0.015, set(), 12)
    assert decide(cands, metric="accuracy").verdict == "better"
    d = decide(cands, metric="accuracy", settings=DecisionSettings(max_failure_rate=0.1))
    a = d.assessment("tail")
    assert d.verdict == "unresolved" and d.chosen == "vanilla" and d.contender == "tail"
    assert a.p_holm < 0.05 and a.status == "unresolved"
    assert "not shown below 0.1" in a.held_back and "29 seeds without a failure" in d.reason
    # at 29 clean seeds it is shown
    ok = decide(_pair(0.015, set(), 29), metric="accuracy",
                settings=DecisionSettings(max_failure_rate=0.1))  # fmt: skip
    assert ok.verdict == "better" and ok.assessment("tail").failures.upper < 0.1


def test_by_default_a_rate_shown_above_vanilla_holds_better_back():
    """A regression whose collapses score close to vanilla: the mean still wins, but 5
    collapsed seeds of 12 against none of vanilla's is shown (McNemar p = 1/32)."""
    cands = _pair(0.10, {1, 3, 5, 7, 9}, 12, collapse=0.79)
    plain = decide(cands, metric="accuracy", settings=DecisionSettings(alpha=0.05))
    a = plain.assessment("tail")
    assert a.p_holm < 0.05 and a.delta > 0  # the t-test alone would say better
    assert a.failures.above_vanilla_p == pytest.approx(1 / 32)
    assert plain.verdict == "unresolved" and "fails more often than vanilla" in plain.reason
