"""Seed statistics per configuration: n, mean, std, variance, SEM, 95 % CI, min/median/max.

Pure functions of the tidy results table (``analysis.load``); no file I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._load import (
    CONFIG_COLUMNS,
    AnalysisError,
    attach_knobs,
    dataset_names,
    long_metrics,
)
from analysis._names import check_names
from trainer.knobs import parse_label, sort_value
from trainer.strategies import HEADLINE, knob

GROUP_COLUMNS = (*CONFIG_COLUMNS, "model", "split", "metric")
STAT_COLUMNS = (
    "n",
    "mean",
    "std",
    "var",
    "sem",
    "ci_low",
    "ci_high",
    "min",
    "median",
    "max",
    "seeds",
)


def config_label(
    row: dict | pd.Series, *, with_dataset: bool = False, without: Sequence[str] = ()
) -> str:
    """A short name for a configuration: ``sda K=2 dλ=1``, ``noisytune nλ=0.15``,
    ``sda K=all dλ=1 optim.lr=2e-05``: its strategy and its knobs (the ``settings`` label)
    by their short names (``trainer.knobs.Knob.label``), less the keys in ``without``."""
    parts = [str(row["dataset"])] if with_dataset else []
    parts.append(str(row["strategy"]))
    settings = row.get("settings")
    for key, value in parse_label(settings if isinstance(settings, str) else ""):
        if key not in without:
            parts.append(f"{knob(key).name}={value}")
    model = row.get("model")
    if model not in (None, "student") and not (isinstance(model, float) and math.isnan(model)):
        parts.append(f"[{model}]")
    return " ".join(parts)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN for fewer than 2 values); values
    that are all equal get the exact sign-flip interval (``analysis._exact``), unbounded
    at small n rather than a point."""
    from scipy import stats

    from analysis._exact import flat, half_width

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return (math.nan, math.nan)
    sem = stats.sem(x)
    if flat(x, np.abs(x).max())[0]:
        half = float(half_width(len(x), 1 - confidence))
        return (float(x.mean()) - half, float(x.mean()) + half)
    low, high = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=sem)
    return (float(low), float(high))


def bootstrap_interval(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (``scipy.stats.bootstrap``), seeded."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return (math.nan, math.nan)
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def describe(values: Sequence[float], *, ci: str = "t", confidence: float = 0.95) -> dict:
    """The statistics of one configuration's seed values (std and variance with ddof=1)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if ci not in ("t", "bootstrap"):
        raise AnalysisError(f"ci must be 't' or 'bootstrap', got {ci!r}")
    low, high = (t_interval if ci == "t" else bootstrap_interval)(x, confidence)
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    return {
        "n": n,
        "mean": float(x.mean()) if n else math.nan,
        "std": std,
        "var": std**2,
        "sem": std / math.sqrt(n) if n > 1 else math.nan,
        "ci_low": low,
        "ci_high": high,
        "min": float(x.min()) if n else math.nan,
        "median": float(np.median(x)) if n else math.nan,
        "max": float(x.max()) if n else math.nan,
    }


def seed_stats(
    df: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    ci: str = "t",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Statistics across seeds for every configuration, model, split and metric.

    Parameters
    ----------
    df : pandas.DataFrame
        The tidy results table (``analysis.load``); unfinished trials are ignored.
    metrics, splits, models : sequence of str, optional
        Keep only these metrics (``accuracy``, ``macro_f1``, ``mcc``), splits (``dev``,
        ``test``) and models (``student``, ``averaged``); default all present.
    ci : {"t", "bootstrap"}
        Student-t interval of the mean, or a seeded percentile bootstrap
        (``scipy.stats.bootstrap``, 9999 resamples).
    confidence : float
        Confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, strategy, settings, config_key, model, split, metric)
        with its knob columns (``distill.k``, ``noise.lambda``, ...), ``n``, ``mean``,
        ``std`` (ddof=1), ``var``, ``sem``,
        ``ci_low``, ``ci_high``, ``min``, ``median``, ``max``, ``seeds`` (the seeds, as
        a tuple), ``missing_seeds`` (seeds other configurations of the dataset have but
        this one lacks; Optuna candidates are compared with Optuna candidates only),
        ``optuna`` (the configuration is an Optuna λ candidate) and ``label``.

    Raises
    ------
    ValueError
        A name in ``metrics`` that no column of ``df`` holds (a misspelt metric would
        otherwise give an empty table).
    """
    check_names(df, metrics=metrics or ())
    long = long_metrics(df)
    if metrics is not None:
        long = long[long["metric"].isin(list(metrics))]
    if splits is not None:
        long = long[long["split"].isin(list(splits))]
    if models is not None:
        long = long[long["model"].isin(list(models))]
    columns = [*GROUP_COLUMNS, *STAT_COLUMNS, "missing_seeds", "optuna", "label"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    # Optuna candidates run on fewer seeds by design: their seeds are counted apart
    long = long.assign(optuna=long["optuna_trial"].notna() if "optuna_trial" in long else False)
    all_seeds = long.groupby(["dataset", "optuna"])["seed"].agg(lambda s: set(s.tolist()))
    all_seeds = all_seeds.to_dict()
    rows = []
    for key, group in long.groupby(list(GROUP_COLUMNS), dropna=False, sort=False):
        row = dict(zip(GROUP_COLUMNS, key, strict=True))
        group = group.sort_values("seed")
        row.update(describe(group["value"].to_numpy(), ci=ci, confidence=confidence))
        seeds = tuple(int(s) for s in group["seed"])
        row["seeds"] = seeds
        row["optuna"] = bool(group["optuna"].any())
        row["missing_seeds"] = tuple(
            sorted(all_seeds[(row["dataset"], row["optuna"])] - set(seeds))
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    out["label"] = [config_label(r) for r in out.to_dict("records")]
    out = attach_knobs(sort_configs(out)[columns].reset_index(drop=True), df)
    return out


def _knob_order(label: object) -> tuple:
    """Sort key of a ``settings`` label: each headline knob's value in registry order
    (small K first, 'all' last; absent first), then the other settings as written."""
    values = dict(parse_label(label if isinstance(label, str) else ""))
    head = tuple(sort_value(values[k]) if k in values else (-2, 0.0) for k in HEADLINE)
    rest = tuple((k, sort_value(v)) for k, v in values.items() if k not in HEADLINE)
    return (*head, rest)


def sort_configs(df: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by dataset (reading order: a curve's sizes smallest first), strategy
    (vanilla first), knobs (K small first, then λ, then the other settings), model (the
    student first)."""
    from trainer.strategies import STRATEGIES

    order = {s: i for i, s in enumerate(STRATEGIES)}
    datasets = {d: i for i, d in enumerate(dataset_names(df))}
    models = df["model"] if "model" in df else pd.Series("student", index=df.index)
    settings = df["settings"] if "settings" in df else pd.Series("", index=df.index)
    keys = [
        (datasets[str(d)], order.get(s, len(order)), _knob_order(label), int(m != "student"))
        for d, s, label, m in zip(df["dataset"], df["strategy"], settings, models, strict=True)
    ]
    ranked = sorted(range(len(keys)), key=keys.__getitem__)
    return df.iloc[ranked]


def primary_metrics(df: pd.DataFrame) -> dict[str, str]:
    """The primary metric name of each dataset (from the sweep spec, via the table)."""
    if "primary_metric" not in df.columns or df.empty:
        return {}
    return (
        df.dropna(subset=["primary_metric"]).groupby("dataset")["primary_metric"].first().to_dict()
    )


def _text(value: object) -> str:
    """A table cell as text, ``""`` where the table has no value."""
    return "" if pd.isna(value) else str(value)


def missing_trials(df: pd.DataFrame, expected_keys: Sequence[str] | None = None) -> pd.DataFrame:
    """What a partial sweep lacks: one row per trial that has not finished.

    ``status`` is the trial's status in the table (``ERROR``, ``RUNNING``, ...) or
    ``no result yet`` for a planned grid trial (``expected_keys``, from ``sweep.json``)
    that has no row yet (not started, or running). ``error`` is a failed trial's one-line
    error and ``error_file`` the path of Ray's full traceback, both as its ``error.json``
    recorded them (``sweeps.results.trial_row``); empty where the table has none (a trial
    not failed, or a remote run dir, whose rows come from Tune's last result).
    """
    rows = []
    cols = ["key", "dataset", "strategy", "seed", "status", "error", "error_file"]
    unfinished = df[~df["finished"]] if "finished" in df.columns else df.iloc[:0]
    for r in unfinished.to_dict("records"):
        status = r.get("status") or "unknown"
        if status == "TERMINATED":
            status = "finished without a primary metric"
        row = {c: r.get(c) for c in ("key", "dataset", "strategy", "seed")} | {"status": status}
        row["seed"] = None if row["seed"] is None or pd.isna(row["seed"]) else int(row["seed"])
        row |= {c: _text(r.get(c)) for c in ("error", "error_file")}
        rows.append(row)
    if expected_keys is not None:
        seen = set(df["key"].dropna()) if "key" in df.columns else set()
        blank = {"dataset": None, "strategy": None, "seed": None, "error": "", "error_file": ""}
        for key in expected_keys:
            if key not in seen:
                rows.append({"key": key, **blank, "status": "no result yet"})
    return pd.DataFrame(rows, columns=cols, dtype=object)


def cost_table(df: pd.DataFrame) -> pd.DataFrame:
    """What each configuration costs: finished trials, their summed and mean runtime
    (Ray's ``runtime_s``: data, model, training, evaluation, checkpoints; not time
    queued), and the mean against vanilla's on the same dataset. All Optuna candidates
    of a (dataset, strategy, K) cell are one row, K marked "(search)". An SE trial
    evaluated from its plain run (``derived_from``) costs 0: its training is that run's."""
    columns = ["dataset", "strategy", "K", "trials", "total_min", "mean_s", "x_vanilla"]
    done = df[df["finished"]] if "finished" in df.columns else df
    if "runtime_s" not in done.columns or done["runtime_s"].isna().all():
        return pd.DataFrame(columns=columns)
    done = sort_configs(done)
    searched = done["optuna_trial"].notna().map({True: " (search)", False: ""})
    done = done.assign(
        K=(done["distill.k"] if "distill.k" in done else pd.Series(None, index=done.index))
        .fillna("—")
        .astype(str)
        + searched,
        runtime=pd.to_numeric(done["runtime_s"], errors="coerce"),
    )
    grouped = done.groupby(["dataset", "strategy", "K"], sort=False)["runtime"]
    out = pd.DataFrame(
        {"trials": grouped.count(), "total_min": grouped.sum() / 60, "mean_s": grouped.mean()}
    ).reset_index()
    vanilla = out[out["strategy"] == "vanilla"].groupby("dataset")["mean_s"].first()
    out["x_vanilla"] = out["mean_s"] / out["dataset"].map(vanilla)
    return out[columns]
