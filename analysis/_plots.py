"""Figures per dataset. matplotlib is imported inside each function and figures are made
with ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), so importing ``analysis``
stays cheap and nothing opens a window. Each function returns a Figure, or ``None`` when
the data hold nothing to plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._load import long_metrics
from analysis._tables import config_label, k_order, seed_stats, sort_configs

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "mcc": "MCC"}


def _axis_label(split: str, metric: str) -> str:
    unit = "Matthews correlation, −1…1" if metric == "mcc" else "fraction, 0…1"
    return f"{split} {METRIC_NAMES.get(metric, metric)} ({unit})"


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def plot_seeds(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Box plot plus one point per seed, for every configuration (and averaged model)."""
    long = long_metrics(df)
    long = long[(long["dataset"] == dataset) & (long["metric"] == metric)]
    long = long[long["split"] == split]
    if long.empty:
        return None
    long = long.assign(label=[config_label(r) for r in long.to_dict("records")])
    order = list(dict.fromkeys(sort_configs(long)["label"]))
    fig, (ax,) = _figure(9, 1.2 + 0.42 * len(order))
    data = [long.loc[long["label"] == lab, "value"].to_numpy() for lab in order]
    positions = np.arange(len(order))[::-1]
    ax.boxplot(
        data,
        positions=positions,
        orientation="horizontal",
        widths=0.6,
        showfliers=False,
        medianprops={"color": "black"},
        boxprops={"color": "0.4"},
        whiskerprops={"color": "0.4"},
        capprops={"color": "0.4"},
    )
    rng = np.random.default_rng(0)
    strategies = list(dict.fromkeys(sort_configs(long)["strategy"]))
    colors = _colors(strategies)
    for pos, lab in zip(positions, order, strict=True):
        part = long[long["label"] == lab]
        jitter = rng.uniform(-0.15, 0.15, len(part))
        ax.scatter(
            part["value"],
            pos + jitter,
            s=22,
            zorder=3,
            alpha=0.85,
            color=colors[part["strategy"].iloc[0]],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.scatter([part["value"].mean()], [pos], marker="D", s=30, color="black", zorder=4)
    ax.set_yticks(positions, order)
    ax.set_xlabel(_axis_label(split, metric))
    n = long.groupby("label")["seed"].nunique()
    ax.set_title(
        f"{dataset}: {split} {METRIC_NAMES.get(metric, metric)} across seeds "
        f"(● one seed, ◆ mean; {n.min()}–{n.max()} seeds per configuration)",
        fontsize=10,
    )
    return fig


def plot_k(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Mean ± std across seeds against K, one line per strategy (and λ, model)."""
    grid = df[df["optuna_trial"].isna()] if "optuna_trial" in df.columns else df
    stats = seed_stats(grid, metrics=[metric], splits=[split])
    stats = stats[(stats["dataset"] == dataset) & stats["teacher_k"].notna()]
    if stats.empty:
        return None
    ks = sorted(stats["teacher_k"].unique(), key=k_order)
    x_of = {k: i for i, k in enumerate(ks)}
    fig, (ax,) = _figure(9.5, 4.8)
    vanilla = seed_stats(grid, metrics=[metric], splits=[split], models=["student"])
    vanilla = vanilla[(vanilla["dataset"] == dataset) & (vanilla["strategy"] == "vanilla")]
    if not vanilla.empty:
        v = vanilla.iloc[0]
        ax.axhline(v["mean"], color="0.3", linestyle=":", label=f"vanilla mean (n={v['n']})")
        if not math.isnan(v["std"]):
            ax.axhspan(
                v["mean"] - v["std"],
                v["mean"] + v["std"],
                color="0.5",
                alpha=0.15,
                label="vanilla ± std",
            )
    stats = sort_configs(stats)
    stats = stats.assign(
        line=[
            config_label({**r, "teacher_k": None, "model": None}) for r in stats.to_dict("records")
        ]
    )
    colors = _colors(list(dict.fromkeys(stats["line"])))
    n_series = stats.groupby(["line", "model"]).ngroups
    for i, ((line, model), part) in enumerate(stats.groupby(["line", "model"], sort=False)):
        part = part.assign(_k=part["teacher_k"].map(k_order)).sort_values("_k")
        offset = (i - (n_series - 1) / 2) * 0.03
        x = np.array([x_of[k] for k in part["teacher_k"]]) + offset
        ax.errorbar(
            x,
            part["mean"],
            yerr=part["std"].fillna(0),
            marker="o" if model == "student" else "s",
            capsize=4,
            color=colors[line],
            linestyle="--" if model == "averaged" else "-",
            label=line if model == "student" else f"{line} [averaged]",
        )
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("K (teacher size / averaging window, optimizer steps)")
    ax.set_ylabel(_axis_label(split, metric))
    ax.set_title(
        f"{dataset}: {METRIC_NAMES.get(metric, metric)} vs K (mean ± std across seeds)", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_lambda(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Each trial's score against λ (distill λ and noise λ panels); Optuna candidates as ×,
    grid trials as ●, and the mean ± std per λ value per strategy/K, against vanilla's
    mean (dashed). λ spanning a decade or more is drawn on a log axis."""
    long = long_metrics(df)
    long = long[
        (long["dataset"] == dataset)
        & (long["metric"] == metric)
        & (long["split"] == split)
        & (long["model"] == "student")
    ]
    panels = [
        (c, t)
        for c, t in (
            ("distill_lambda", "distill λ (weight of the MSE to the teacher)"),
            ("noise_lambda", "noise λ (NoisyTune, × std of each matrix)"),
        )
        if long[c].nunique() > 1
    ]
    if not panels:
        return None
    fig, axes = _figure(max(8.0, 6.0 * len(panels)), 4.8, ncols=len(panels))
    vanilla = long.loc[long["strategy"] == "vanilla", "value"]
    optuna = long["optuna_trial"].notna() if "optuna_trial" in long else False
    long = long.assign(_optuna=optuna)
    for ax, (col, title) in zip(axes, panels, strict=True):
        part = long[long[col].notna()]
        part = part.assign(line=[config_label({**r, col: None}) for r in part.to_dict("records")])
        part = sort_configs(part)
        colors = _colors(list(dict.fromkeys(part["line"])))
        for name, line in part.groupby("line", sort=False):
            color = colors[name]
            for is_optuna, pts in line.groupby("_optuna"):
                ax.scatter(
                    pts[col],
                    pts["value"],
                    s=18,
                    alpha=0.5,
                    color=color,
                    marker="x" if is_optuna else "o",
                )
            agg = line.groupby(col)["value"].agg(["mean", "std"]).reset_index().sort_values(col)
            ax.errorbar(
                agg[col],
                agg["mean"],
                yerr=agg["std"].fillna(0),
                color=color,
                capsize=3,
                marker="D",
                markersize=4,
                label=name,
            )
        if len(vanilla):
            ax.axhline(vanilla.mean(), color="gray", linestyle="--", label="vanilla mean")
        values = part[col].astype(float)
        if values.min() > 0 and values.max() / values.min() >= 10:
            ax.set_xscale("log")  # λ searches run on a log scale; show them on one
        ax.set_xlabel(title)
        ax.set_ylabel(_axis_label(split, metric))
        ax.legend(fontsize=8, loc="best")
    n_opt = int(long["_optuna"].sum())
    fig.suptitle(
        f"{dataset}: {METRIC_NAMES.get(metric, metric)} vs λ (● grid trial, × Optuna "
        f"candidate trial [{n_opt}]; lines: mean ± std per λ)",
        fontsize=10,
    )
    return fig


def _mean_band(ax, agg: pd.DataFrame, color, label: str) -> None:
    """A mean-per-step line with a ± std band (no band where a step has one seed)."""
    ax.plot(agg["step"], agg["mean"], color=color, marker=".", label=label)
    std = agg["std"].fillna(0)
    ax.fill_between(agg["step"], agg["mean"] - std, agg["mean"] + std, color=color, alpha=0.15)


def plot_learning_curves(
    histories: pd.DataFrame,
    dataset: str,
    metric: str = "accuracy",
    configs: Sequence[dict] | None = None,
    split: str = "dev",
) -> object | None:
    """Mean ± std across seeds of the dev metric and of the training loss against the
    optimizer step, for the given configurations (dicts of the configuration columns
    and ``model``; default: every configuration's student)."""
    h = histories[(histories["dataset"] == dataset)] if not histories.empty else histories
    if h.empty:
        return None
    h = h.assign(label=[config_label(r) for r in h.to_dict("records")])
    if configs is not None:
        wanted = {config_label(c) for c in configs}
        h = h[h["label"].isin(wanted)]
    else:
        h = h[h["model"] == "student"]
    scores = h[(h["metric"] == metric) & (h["split"] == split)]
    if scores.empty:
        return None
    fig, axes = _figure(12, 4.3, ncols=2)
    labels = list(dict.fromkeys(sort_configs(scores)["label"]))
    colors = _colors(labels)
    for lab in labels:
        part = scores[scores["label"] == lab]
        agg = part.groupby("step")["value"].agg(["mean", "std", "count"]).reset_index()
        c = colors[lab]
        _mean_band(axes[0], agg, c, f"{lab} (n={agg['count'].max()})")
        loss = (
            part.drop_duplicates(["key", "step"])
            .groupby("step")["train_loss"]
            .agg(["mean", "std"])
            .reset_index()
        )
        if loss["mean"].notna().any():
            _mean_band(axes[1], loss, c, lab)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_xlabel("optimizer step")
    axes[0].set_ylabel(_axis_label(split, metric))
    axes[0].set_title(
        f"{dataset}: {split} {METRIC_NAMES.get(metric, metric)} (mean ± std across seeds)",
        fontsize=10,
    )
    axes[0].legend(fontsize=8, loc="best")
    axes[1].set_xlabel("optimizer step")
    axes[1].set_ylabel("training loss (mean since previous evaluation)")
    axes[1].set_title(f"{dataset}: training loss (mean ± std across seeds)", fontsize=10)
    if axes[1].lines:
        axes[1].legend(fontsize=8, loc="best")
    return fig


def figure_png(fig) -> bytes:
    """The figure as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
