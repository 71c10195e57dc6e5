"""The check that a dataset or metric asked for is one the results hold.

A misspelt name (``plot_k(df, "sst2")`` on a run whose dataset is ``sst-2``) used to give
``None`` or an empty table, which reads exactly like "the grid has nothing to show"; the
check turns it into a one-line error that lists the names there are. Names are known from
every row of the table, finished or not, so a dataset whose trials all failed is known
(and has nothing to plot) rather than unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from analysis._load import AnalysisError, metric_columns

# load_histories() keeps the results' names here: a dataset without a single history
# (every trial failed) is still known to the learning curves
DATASETS_ATTR = "known_datasets"
METRICS_ATTR = "known_metrics"


def known_datasets(df: pd.DataFrame) -> list[str]:
    """The datasets of a results or histories table (and those its ``attrs`` carry)."""
    names = set(df["dataset"].dropna().astype(str)) if "dataset" in df.columns else set()
    return sorted(names | set(df.attrs.get(DATASETS_ATTR, ())))


def known_metrics(df: pd.DataFrame) -> list[str]:
    """The metrics of a table: its metric columns (``averaged_dev_mcc`` is ``mcc``), a
    long table's ``metric`` column, the datasets' primary metrics, and ``attrs``."""
    names = {col.removeprefix("averaged_").split("_", 1)[1] for col in metric_columns(df)}
    for col in ("metric", "primary_metric"):
        if col in df.columns:
            names |= set(df[col].dropna().astype(str))
    return sorted(names | set(df.attrs.get(METRICS_ATTR, ())))


def check_name(kind: str, value: object, known: Iterable[str]) -> None:
    """Raise :class:`AnalysisError` (a ``ValueError``) unless ``value`` is in ``known``."""
    known = list(known)
    if str(value) not in known:
        raise AnalysisError(
            f"{kind} {value!r} is not in these results (known: {', '.join(known) or 'none'})"
        )


def check_names(
    df: pd.DataFrame, *, dataset: str | None = None, metrics: Iterable[str] = ()
) -> None:
    """Check a dataset name and metric names against the table (``None``: not asked)."""
    if dataset is not None:
        check_name("dataset", dataset, known_datasets(df))
    metrics = list(metrics)
    if metrics:
        known = known_metrics(df)
        for metric in metrics:
            check_name("metric", metric, known)


def check_metric_choice(df: pd.DataFrame, metric: str | Mapping[str, str] | None) -> None:
    """Check the ``metric`` argument of the comparison and the decisions: one metric for
    every dataset, or a mapping from dataset to metric (both sides checked)."""
    if isinstance(metric, Mapping):
        for dataset, name in metric.items():
            check_names(df, dataset=dataset, metrics=[name])
    elif metric is not None:
        check_names(df, metrics=[metric])
