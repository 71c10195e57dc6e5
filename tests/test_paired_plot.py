"""The per-seed figure is paired: one line per seed across a dataset's configurations,
read back from matplotlib's artists."""

from __future__ import annotations

import math

import pytest
from test_analysis_tables import table

from analysis import plot_seeds

VANILLA = ("vanilla", None, None, None)
SE = ("se", "all", None, None)
SDA = ("sda", "1", 1.0, None)


def seed_lines(fig) -> dict[str, list[float]]:
    """The y values of each seed's line (NaN where the line breaks), by legend label."""
    ax = fig.axes[0]
    return {
        line.get_label(): list(line.get_ydata())
        for line in ax.get_lines()
        if line.get_label().startswith("seed ")
    }


def legend_labels(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_one_line_per_seed_broken_where_a_configuration_lacks_the_seed():
    # x order: vanilla, se, sda (the report's order); sda lacks seed 1
    df = table({VANILLA: [0.80, 0.82, 0.84], SE: [0.75, 0.76, 0.77], SDA: [0.70, None, 0.74]})
    lines = seed_lines(plot_seeds(df, "d"))
    assert sorted(lines) == ["seed 0", "seed 1", "seed 2"]
    finite = {label: sum(not math.isnan(y) for y in ys) for label, ys in lines.items()}
    assert finite == {"seed 0": 3, "seed 1": 2, "seed 2": 3}
    assert lines["seed 0"] == pytest.approx([0.80, 0.75, 0.70])
    assert lines["seed 1"][:2] == pytest.approx([0.82, 0.76])
    assert math.isnan(lines["seed 1"][2])  # no interpolation to a value seed 1 never had


def test_legend_names_the_seeds_and_title_the_seed_counts():
    df = table({VANILLA: [0.80, 0.82, 0.84], SDA: [0.70, None, 0.74]})
    fig = plot_seeds(df, "d")
    assert {"seed 0", "seed 1", "seed 2"} <= set(legend_labels(fig))
    assert "n = 2–3 seeds" in fig.axes[0].get_title()
    same = plot_seeds(table({VANILLA: [0.80, 0.82, 0.84], SDA: [0.70, 0.72, 0.74]}), "d")
    assert "n = 3 seeds" in same.axes[0].get_title()


def test_configurations_are_the_x_axis():
    df = table({VANILLA: [0.80, 0.82], SE: [0.75, 0.76], SDA: [0.70, 0.74]})
    ax = plot_seeds(df, "d").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vanilla", "se K=all", "sda K=1 dλ=1"]


def test_boxes_only_for_configurations_with_eight_seeds_or_more():
    seven = [0.70 + 0.01 * s for s in range(7)]
    few = plot_seeds(table({VANILLA: seven, SDA: seven}), "d")
    assert len(few.axes[0].patches) == 0
    eight = [*seven, 0.78]
    many = plot_seeds(table({VANILLA: eight, SDA: [*seven, None]}), "d")
    assert len(many.axes[0].patches) == 1  # vanilla's box; sda has 7 seeds
    assert "n = 7–8 seeds" in many.axes[0].get_title()
    assert len(seed_lines(many)) == 8
