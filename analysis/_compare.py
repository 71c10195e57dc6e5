"""Each configuration against vanilla on the same dataset, paired by seed.

The same seed gives the same data order and classification-head initialisation for
every strategy (docs/decisions.md, "Seeds"), so a configuration's seed-s run and
vanilla's seed-s run form a pair. Pure functions; no file I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._exact import flat, two_sided_p
from analysis._load import CONFIG_COLUMNS, attach_knobs, long_metrics
from analysis._names import check_metric_choice
from analysis._tables import config_label, sort_configs, t_interval

COMPARE_COLUMNS = (
    *CONFIG_COLUMNS,
    "model",
    "split",
    "metric",
    "label",
    "n_pairs",
    "missing_pairs",
    "mean",
    "vanilla_mean",
    "mean_diff",
    "diff_ci_low",
    "diff_ci_high",
    "t_p",
    "wilcoxon_p",
    "t_p_holm",
    "wilcoxon_p_holm",
    "std",
    "vanilla_std",
    "std_ratio",
    "levene_p",
)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN p-values are kept as NaN and not counted among the m hypotheses. Equivalent to
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    values = p[ok]
    order = np.argsort(values, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * values[order]))
    result = np.empty(m)
    result[order] = adjusted
    out[ok] = result
    return out


def paired_test(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> dict:
    """Paired comparison of x against y (same seeds, same order).

    ``mean_diff`` = mean(x − y) with its t interval; ``t_p`` from
    ``scipy.stats.ttest_rel``; ``wilcoxon_p`` from ``scipy.stats.wilcoxon`` (NaN when
    every difference is zero or there are fewer than 2 pairs); ``std_ratio`` =
    std(x)/std(y) (ddof=1) and ``levene_p`` from ``scipy.stats.levene(center="median")``
    (the Brown–Forsythe test of equal variances; needs 3 pairs or more).
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    d = x - y
    out = {
        "n_pairs": n,
        "mean": float(x.mean()) if n else math.nan,
        "vanilla_mean": float(y.mean()) if n else math.nan,
        "mean_diff": float(d.mean()) if n else math.nan,
        "diff_ci_low": math.nan,
        "diff_ci_high": math.nan,
        "t_p": math.nan,
        "wilcoxon_p": math.nan,
        "std": float(x.std(ddof=1)) if n > 1 else math.nan,
        "vanilla_std": float(y.std(ddof=1)) if n > 1 else math.nan,
        "std_ratio": math.nan,
        "levene_p": math.nan,
    }
    if n < 2:
        return out
    out["diff_ci_low"], out["diff_ci_high"] = t_interval(d, confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero-variance differences
        if not flat(d, np.abs(np.concatenate([x, y])).max())[0]:
            out["t_p"] = float(stats.ttest_rel(x, y).pvalue)
        elif not flat(np.array([d.mean(), 0.0]))[0]:  # every pair moves by one amount:
            out["t_p"] = float(two_sided_p(n))  # no spread for a t-test; the exact p
        else:
            out["t_p"] = 1.0  # identical runs
        if np.any(d != 0):
            out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue)
        if out["vanilla_std"] > 0:
            out["std_ratio"] = out["std"] / out["vanilla_std"]
        elif out["std"] == 0:
            out["std_ratio"] = 1.0
        else:
            out["std_ratio"] = math.inf
        # with 2 values per group the deviations from the median are equal: no test
        if n >= 3 and np.ptp(np.concatenate([x, y])) > 0:
            out["levene_p"] = float(stats.levene(x, y, center="median").pvalue)
    return out


def compare_to_vanilla(
    df: pd.DataFrame,
    *,
    metric: str | dict[str, str] | None = None,
    split: str = "dev",
    models: Sequence[str] = ("student", "averaged"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Every non-vanilla configuration against vanilla (student) on the same dataset.

    Parameters
    ----------
    df : pandas.DataFrame
        The tidy results table (``analysis.load``).
    metric : str or dict, optional
        The metric compared; a dict maps dataset to metric. Default: each dataset's
        primary metric.
    split : str
        ``dev`` or ``test``.
    models : sequence of str
        Which models of a configuration to compare (``student``, ``averaged``).

    Returns
    -------
    pandas.DataFrame
        One row per (configuration, model) with ``n_pairs`` (seeds present for both),
        ``missing_pairs`` (seeds present for only one of them), the paired statistics of
        :func:`paired_test`, and ``t_p_holm``/``wilcoxon_p_holm``: Holm-corrected across
        the rows of the same dataset. Datasets without a vanilla run have no rows.

    Raises
    ------
    ValueError
        ``metric`` (or a dataset or metric of the dict) is not in ``df``.
    """
    from analysis._tables import primary_metrics

    check_metric_choice(df, metric)
    long = long_metrics(df)
    long = long[long["split"] == split]
    metric_of = (
        metric
        if isinstance(metric, dict)
        else {d: metric for d in long["dataset"].unique()}
        if metric
        else primary_metrics(df)
    )
    rows = []
    for dataset, ds in long.groupby("dataset", sort=True):
        m = metric_of.get(dataset, "accuracy")
        ds = ds[ds["metric"] == m]
        ref = ds[(ds["strategy"] == "vanilla") & (ds["model"] == "student")]
        if ref.empty:
            continue
        ref = ref.groupby("seed")["value"].mean()
        others = ds[(ds["strategy"] != "vanilla") & ds["model"].isin(list(models))]
        for key, group in others.groupby([*CONFIG_COLUMNS, "model"], dropna=False, sort=False):
            row = dict(zip([*CONFIG_COLUMNS, "model"], key, strict=True))
            # one value per seed (a config run twice, e.g. an Optuna candidate proposed again)
            values = group.groupby("seed")["value"].mean()
            common = sorted(set(values.index) & set(ref.index))
            unpaired = sorted(set(values.index) ^ set(ref.index))
            row.update(split=split, metric=m, missing_pairs=tuple(int(s) for s in unpaired))
            row.update(
                paired_test(values.loc[common].to_numpy(), ref.loc[common].to_numpy(), confidence)
            )
            row["label"] = config_label(row)
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    out = pd.DataFrame(rows)
    out["t_p_holm"] = math.nan
    out["wilcoxon_p_holm"] = math.nan
    for _, idx in out.groupby("dataset").groups.items():
        out.loc[idx, "t_p_holm"] = holm(out.loc[idx, "t_p"].to_numpy())
        out.loc[idx, "wilcoxon_p_holm"] = holm(out.loc[idx, "wilcoxon_p"].to_numpy())
    return attach_knobs(sort_configs(out)[list(COMPARE_COLUMNS)].reset_index(drop=True), df)
