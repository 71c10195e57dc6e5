"""Paired comparison with vanilla: p-values against direct scipy calls, Holm, missing pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from test_analysis_tables import table

import analysis

VANILLA = [0.70, 0.74, 0.69, 0.78, 0.72, 0.66]
SDA = [0.75, 0.76, 0.74, 0.79, 0.77, 0.73]
NOISY = [0.71, 0.70, 0.73, 0.80, 0.70, None]  # seed 5 missing


def test_p_values_match_scipy():
    df = table(
        {
            ("vanilla", None, None, None): VANILLA,
            ("sda", "1", 1.0, None): SDA,
            ("noisytune", None, None, 0.15): NOISY,
        }
    )
    cmp = analysis.compare_to_vanilla(df).set_index("strategy")
    x, y = np.array(SDA), np.array(VANILLA)
    row = cmp.loc["sda"]
    assert row["n_pairs"] == 6 and row["missing_pairs"] == ()
    assert row["mean_diff"] == pytest.approx((x - y).mean())
    assert row["t_p"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert row["levene_p"] == pytest.approx(stats.levene(x, y, center="median").pvalue)
    assert row["std_ratio"] == pytest.approx(x.std(ddof=1) / y.std(ddof=1))
    d = x - y
    low, high = stats.t.interval(0.95, 5, loc=d.mean(), scale=stats.sem(d))
    assert (row["diff_ci_low"], row["diff_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    # the noisy run lacks seed 5: only 5 pairs, and it says so
    noisy = cmp.loc["noisytune"]
    assert noisy["n_pairs"] == 5 and noisy["missing_pairs"] == (5,)
    xn, yn = np.array(NOISY[:5]), np.array(VANILLA[:5])
    assert noisy["t_p"] == pytest.approx(stats.ttest_rel(xn, yn).pvalue)
    # Holm across the two configurations of the dataset
    p = sorted([row["t_p"], noisy["t_p"]])
    holm = {p[0]: min(1, 2 * p[0]), p[1]: min(1, max(2 * p[0], p[1]))}
    assert row["t_p_holm"] == pytest.approx(holm[row["t_p"]])
    assert noisy["t_p_holm"] == pytest.approx(holm[noisy["t_p"]])


def test_holm_by_hand():
    # m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5
    got = analysis.holm([0.03, 0.5, 0.01, 0.02])
    assert got == pytest.approx([0.06, 0.5, 0.04, 0.06])
    with_nan = analysis.holm([0.01, math.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1])
    assert with_nan[2] == pytest.approx(0.04)
    assert analysis.holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # monotone: 0.4 -> 0.6
    assert analysis.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped


def test_identical_runs_and_too_few_pairs():
    same = analysis.paired_test([0.7, 0.8, 0.9], [0.7, 0.8, 0.9])
    assert same["t_p"] == 1.0 and math.isnan(same["wilcoxon_p"]) and same["std_ratio"] == 1.0
    one = analysis.paired_test([0.7], [0.6])
    assert one["n_pairs"] == 1 and math.isnan(one["t_p"]) and math.isnan(one["levene_p"])


def test_no_vanilla_no_rows():
    df = table({("sda", "1", 1.0, None): SDA})
    assert analysis.compare_to_vanilla(df).empty
