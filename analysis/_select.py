"""Picking strategy, K and λ per dataset, by one documented rule. Pure; no file I/O."""

from __future__ import annotations

import math

import pandas as pd

from analysis._tables import k_order, primary_metrics, seed_stats, sort_configs
from sweeps.spec import base_strategy

RULE = (
    "Highest mean of the dataset's primary dev metric across seeds; every configuration "
    "whose mean is within one SEM (of the best configuration) of the best mean ties with it; "
    "among ties the smaller std across seeds wins, then the smaller K (no K < 1 < 2 < … < "
    "'all': the cheaper teacher), then the smaller λ. Configurations with fewer than "
    "{min_seeds} finished seeds are considered only if no configuration has that many."
)

SELECTION_COLUMNS = (
    "dataset",
    "scope",
    "strategy",
    "model",
    "teacher_k",
    "distill_lambda",
    "noise_lambda",
    "metric",
    "n",
    "mean",
    "std",
    "sem",
    "label",
    "ties",
)


def _lam(v: object) -> float:
    return -1.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def pick(candidates: pd.DataFrame, min_seeds: int = 3) -> tuple[pd.Series, list[str]]:
    """Apply the rule to rows of :func:`analysis.seed_stats` (one dataset, one metric).

    Returns the chosen row and the labels of the configurations it tied with (itself
    included).
    """
    pool = candidates[candidates["n"] >= min_seeds]
    if pool.empty:
        pool = candidates
    best = pool.loc[pool["mean"].idxmax()]
    margin = best["sem"] if pd.notna(best["sem"]) else 0.0
    ties = pool[pool["mean"] >= best["mean"] - margin - 1e-12].copy()
    ties["_std"] = ties["std"].fillna(math.inf)
    ties["_k"] = ties["teacher_k"].map(k_order)
    ties["_dl"] = ties["distill_lambda"].map(_lam)
    ties["_nl"] = ties["noise_lambda"].map(_lam)
    ties["_m"] = ties["model"].map({"student": 0}).fillna(1)
    ties["_mean"] = -ties["mean"]
    ties = ties.sort_values(["_std", "_k", "_dl", "_nl", "_m", "_mean", "label"], kind="stable")
    return ties.iloc[0], list(ties["label"])


def select(
    df: pd.DataFrame,
    *,
    metric: str | dict[str, str] | None = None,
    models: tuple[str, ...] = ("student", "averaged"),
    min_seeds: int = 3,
) -> pd.DataFrame:
    """The configuration to use per dataset, and the K and λ to use per strategy.

    Parameters
    ----------
    df : pandas.DataFrame
        The tidy results table (``analysis.load``); dev metrics are used.
    metric : str or dict, optional
        The metric to maximise (dict: per dataset); default each dataset's primary one.
    models : tuple of str
        Which models of a configuration are candidates: ``student`` and ``averaged``
        (SE's averaged model, SDA's teacher) — a configuration's averaged model is a
        model you can deploy too.
    min_seeds : int
        See :data:`RULE`.

    Returns
    -------
    pandas.DataFrame
        Per dataset one row with ``scope == "best"`` (over all strategies, vanilla
        included) and one row per strategy (``scope`` = the strategy: its best K and λ),
        with the chosen configuration, ``n``, ``mean``, ``std``, ``sem`` and ``ties``
        (labels of the configurations within one SEM of the best mean, the chosen one
        first).
    """
    metric_of = metric if isinstance(metric, dict) else None
    primaries = primary_metrics(df)
    stats = seed_stats(df, splits=["dev"], models=list(models))
    # SE never touches training: its student *is* the run without SE (same seed, same
    # steps), so SE competes as its averaged model only, never as a copy of vanilla
    se_student = (stats["model"] == "student") & (stats["strategy"].map(base_strategy) == "se")
    stats = stats[~se_student]
    rows = []
    for dataset in sorted(stats["dataset"].unique()):
        m = (metric_of or {}).get(dataset) or (metric if isinstance(metric, str) else None)
        m = m or primaries.get(dataset, "accuracy")
        cand = stats[(stats["dataset"] == dataset) & (stats["metric"] == m)]
        if cand.empty:
            continue
        scopes = [("best", cand)] + [
            (s, cand[cand["strategy"] == s]) for s in sort_configs(cand)["strategy"].unique()
        ]
        for scope, pool in scopes:
            chosen, ties = pick(pool, min_seeds)
            row = {c: chosen[c] for c in SELECTION_COLUMNS if c in chosen.index}
            row.update(dataset=dataset, scope=scope, ties=tuple(ties), metric=m)
            rows.append(row)
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def _plain(v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, float):
        return round(v, 6)
    return v


def selection_dict(selection: pd.DataFrame, min_seeds: int = 3) -> dict:
    """``selection.yaml``'s content: the rule, then per dataset the best configuration
    and per strategy its K and λ (each with mean, std, n)."""
    out: dict = {"rule": RULE.format(min_seeds=min_seeds), "split": "dev", "datasets": {}}
    for r in selection.to_dict("records"):
        entry = {
            "strategy": r["strategy"],
            "model": r["model"],
            "k": _plain(r["teacher_k"]),
            "distill_lambda": _plain(r["distill_lambda"]),
            "noise_lambda": _plain(r["noise_lambda"]),
            "metric": r["metric"],
            "mean": _plain(r["mean"]),
            "std": _plain(r["std"]),
            "n": int(r["n"]),
            "summary": f"{r['mean']:.4f} ± {r['std']:.4f} (n={int(r['n'])})",
            "ties": list(r["ties"]),
        }
        ds = out["datasets"].setdefault(r["dataset"], {"best": None, "per_strategy": {}})
        if r["scope"] == "best":
            ds["best"] = entry
        else:
            ds["per_strategy"][r["scope"]] = entry
    return out
