"""Results of sweeps as tidy pandas tables, seed statistics, selection, ensembles, reports.

Statistics are pure functions of the table ``load`` returns; ``load_histories``,
``run_ensembles`` and ``write_report`` are the functions that read or write files.
Importing this package imports pandas and numpy only (scipy, matplotlib and torch are
imported inside the functions that need them).

>>> import analysis
>>> df = analysis.load("runs/quickstart")  # doctest: +SKIP
>>> analysis.seed_stats(df, metrics=["accuracy"], splits=["dev"])  # doctest: +SKIP
>>> analysis.compare_to_vanilla(df)  # doctest: +SKIP
>>> analysis.select(df)  # doctest: +SKIP
>>> analysis.write_report("runs/quickstart")  # doctest: +SKIP
"""

from analysis._compare import compare_to_vanilla, holm, paired_test
from analysis._curves import plot_size_curve, size_curves
from analysis._decide import Decision, DecisionSettings, decide
from analysis._ensemble import average_weights, ensemble_table, run_ensembles, vote
from analysis._load import (
    CONFIRM_ROLE,
    AnalysisError,
    expected_trials,
    load,
    load_ensembles,
    load_histories,
    long_metrics,
    tidy,
)
from analysis._plots import plot_k, plot_lambda, plot_learning_curves, plot_seeds
from analysis._report import Report, build_report, write_report
from analysis._select import RULE, decisions, select, selection_dict
from analysis._tables import config_label, describe, missing_trials, seed_stats

__all__ = [
    "CONFIRM_ROLE",
    "RULE",
    "AnalysisError",
    "Decision",
    "DecisionSettings",
    "Report",
    "average_weights",
    "build_report",
    "compare_to_vanilla",
    "config_label",
    "decide",
    "decisions",
    "describe",
    "ensemble_table",
    "expected_trials",
    "holm",
    "load",
    "load_ensembles",
    "load_histories",
    "long_metrics",
    "missing_trials",
    "paired_test",
    "plot_k",
    "plot_lambda",
    "plot_learning_curves",
    "plot_seeds",
    "plot_size_curve",
    "run_ensembles",
    "seed_stats",
    "select",
    "selection_dict",
    "size_curves",
    "tidy",
    "vote",
    "write_report",
]
