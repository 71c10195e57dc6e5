"""What the figures draw, read back from matplotlib's axes."""

from __future__ import annotations

import pytest
from test_analysis_tables import table

from analysis import plot_lambda


def _search(lambdas):
    configs = {("vanilla", None, None, None): [0.80, 0.82, 0.84]}
    configs |= {("sda", "1", lam, None): [0.70, 0.72, 0.74] for lam in lambdas}
    return table(configs)


def test_lambda_plot_shows_vanilla_mean_and_a_log_axis_over_a_decade():
    fig = plot_lambda(_search([0.1, 0.5, 2.0, 5.0]), "d")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [tuple(line.get_ydata()) for line in dashed] == [(pytest.approx(0.82),) * 2]


def test_lambda_plot_keeps_a_linear_axis_within_a_decade():
    assert plot_lambda(_search([0.5, 1.0, 2.0]), "d").axes[0].get_xscale() == "linear"
