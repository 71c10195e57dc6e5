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

from analysis._load import knob_columns, long_metrics
from analysis._names import check_names
from analysis._tables import config_label, seed_stats, sort_configs
from trainer.knobs import sort_value
from trainer.strategies import knob

METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "mcc": "MCC",
                "pearson_spearman": "Pearson/Spearman mean", "pearson": "Pearson r",
                "spearman": "Spearman ρ", "entity_f1": "entity F1",
                "token_accuracy": "word accuracy"}  # fmt: skip
_CORRELATIONS = ("mcc", "pearson_spearman", "pearson", "spearman")


def _axis_label(split: str, metric: str) -> str:
    unit = "correlation, −1…1" if metric in _CORRELATIONS else "fraction, 0…1"
    return f"{split} {METRIC_NAMES.get(metric, metric)} ({unit})"


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _colors(names: Sequence[str], palette: str = "tab10") -> dict[str, tuple]:
    """One colour of a qualitative colormap per name, cycling past its end."""
    from matplotlib import colormaps

    cmap = colormaps[palette]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


BOX_MIN_SEEDS = 8  # below this a box's quartiles are two or three points: draw the points


def _seed_count(counts: pd.Series) -> str:
    """``n = 3 seeds``, or ``n = 3–5 seeds`` when configurations ran different numbers."""
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low} seeds" if low == high else f"n = {low}–{high} seeds"


def _seed_table(long: pd.DataFrame) -> pd.DataFrame:
    """Configurations (rows, in report order) × seeds (columns) of values, NaN where a
    configuration lacks a seed; a seed run twice (an Optuna λ proposed again) is its mean."""
    long = long.assign(label=[config_label(r) for r in long.to_dict("records")])
    order = list(dict.fromkeys(sort_configs(long)["label"]))
    table = long.pivot_table(index="label", columns="seed", values="value", aggfunc="mean")
    return table.reindex(order)


def _boxes(ax, table: pd.DataFrame) -> None:
    """Box plots of the configurations holding at least :data:`BOX_MIN_SEEDS` seeds."""
    counts = table.notna().sum(axis=1).to_numpy()
    positions = [i for i, n in enumerate(counts) if n >= BOX_MIN_SEEDS]
    if not positions:
        return
    data = [table.iloc[i].dropna().to_numpy() for i in positions]
    ax.boxplot(
        data,
        positions=positions,
        widths=0.5,
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": "0.92", "edgecolor": "0.5"},
        medianprops={"color": "black"},
        whiskerprops={"color": "0.5"},
        capprops={"color": "0.5"},
        zorder=1,
    )


def plot_seeds(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Every seed across the configurations of a dataset, paired: one thin line per seed.

    Every configuration of a dataset runs the same seeds (same data order and head), so
    a seed's line shows how each configuration moves *that* run, which the spread of
    unpaired points hides. x is the configuration (and averaged model), y the metric;
    points are coloured by seed (legend), ◆ is the mean. A seed a configuration lacks
    breaks its line there (no interpolation); configurations with 8 seeds or more also
    get a box. The title gives the seeds per configuration.

    Returns ``None`` when the dataset has no finished value of the metric on ``split``;
    an unknown ``dataset`` or ``metric`` raises ValueError.
    """
    check_names(df, dataset=dataset, metrics=[metric])
    long = long_metrics(df)
    long = long[(long["dataset"] == dataset) & (long["metric"] == metric)]
    long = long[long["split"] == split]
    if long.empty:
        return None
    table = _seed_table(long)
    x = np.arange(len(table))
    fig, (ax,) = _figure(max(6.0, 2.5 + 0.6 * len(table)), 4.8)
    _boxes(ax, table)
    seeds = [int(s) for s in table.columns]
    colors = _colors([str(s) for s in seeds], "tab10" if len(seeds) <= 10 else "tab20")
    dodge = min(0.04, 0.4 / len(seeds))  # tied values of different seeds stay visible
    for i, seed in enumerate(seeds):
        ax.plot(
            x + (i - (len(seeds) - 1) / 2) * dodge,
            table[seed].to_numpy(),  # NaN where the seed is missing: the line breaks
            color=colors[str(seed)],
            linewidth=0.8,
            alpha=0.8,
            marker="o",
            markersize=4.5,
            label=f"seed {seed}",
            zorder=2,
        )
    ax.scatter(x, table.mean(axis=1), marker="D", s=36, color="black", zorder=3, label="mean")
    ax.set_xticks(x, table.index, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(table) - 0.5)
    ax.set_ylabel(_axis_label(split, metric))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=1 + len(seeds) // 16)
    ax.set_title(
        # two lines: a narrow figure (few configurations) would clip one long line
        f"{dataset}: {split} {METRIC_NAMES.get(metric, metric)} per seed\npaired across "
        f"configurations ({_seed_count(table.notna().sum(axis=1))}; ◆ mean)",
        fontsize=10,
    )
    return fig


def plot_k(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Mean ± std across seeds against K, one line per strategy (and λ, model).

    Returns ``None`` when no configuration of the dataset has a K (no teacher or averaging
    window swept) or none has finished; an unknown ``dataset`` or ``metric`` raises
    ValueError.
    """
    check_names(df, dataset=dataset, metrics=[metric])
    grid = df[df["optuna_trial"].isna()] if "optuna_trial" in df.columns else df
    stats = seed_stats(grid, metrics=[metric], splits=[split])
    if "distill.k" not in stats.columns:
        return None
    stats = stats[(stats["dataset"] == dataset) & stats["distill.k"].notna()]
    if stats.empty:
        return None
    ks = sorted(stats["distill.k"].unique(), key=sort_value)
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
            config_label({**r, "model": None}, without=("distill.k",))
            for r in stats.to_dict("records")
        ]
    )
    colors = _colors(list(dict.fromkeys(stats["line"])))
    n_series = stats.groupby(["line", "model"]).ngroups
    for i, ((line, model), part) in enumerate(stats.groupby(["line", "model"], sort=False)):
        part = part.assign(_k=part["distill.k"].map(sort_value)).sort_values("_k")
        offset = (i - (n_series - 1) / 2) * 0.03
        x = np.array([x_of[k] for k in part["distill.k"]]) + offset
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
    ax.set_xlabel(knob("distill.k").about)
    ax.set_ylabel(_axis_label(split, metric))
    ax.set_title(
        f"{dataset}: {METRIC_NAMES.get(metric, metric)} vs K (mean ± std across seeds)", fontsize=10
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_lambda(
    df: pd.DataFrame, dataset: str, metric: str = "accuracy", split: str = "dev"
) -> object | None:
    """Each trial's score against each numeric knob that varies (a panel per knob: the
    distillation and noise λs, and any other number a sweep varies, such as
    ``recadam.gamma`` or ``optim.lr``); Optuna candidates as ×, grid trials as ●, and the
    mean ± std per value per configuration, against vanilla's mean (dashed). Values
    spanning a decade or more are drawn on a log axis.

    Returns ``None`` when no numeric knob takes more than one value among the dataset's
    finished trials; an unknown ``dataset`` or ``metric`` raises ValueError.
    """
    check_names(df, dataset=dataset, metrics=[metric])
    long = long_metrics(df)
    long = long[
        (long["dataset"] == dataset)
        & (long["metric"] == metric)
        & (long["split"] == split)
        & (long["model"] == "student")
    ]
    numeric = [c for c in knob_columns(long) if not knob(c).categorical
               and pd.to_numeric(long[c], errors="coerce").notna().any()]  # fmt: skip
    panels = [(c, knob(c).about or c) for c in numeric if long[c].nunique() > 1]
    if not panels:
        return None
    fig, axes = _figure(max(8.0, 6.0 * len(panels)), 4.8, ncols=len(panels))
    vanilla = long.loc[long["strategy"] == "vanilla", "value"]
    optuna = long["optuna_trial"].notna() if "optuna_trial" in long else False
    long = long.assign(_optuna=optuna)
    for ax, (col, title) in zip(axes, panels, strict=True):
        part = long[long[col].notna()]
        part = part.assign(line=[config_label(r, without=(col,)) for r in part.to_dict("records")])
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
        f"{dataset}: {METRIC_NAMES.get(metric, metric)} vs "
        f"{', '.join(knob(c).name for c, _ in panels)} (● grid trial, × Optuna "
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
    and ``model``; default: every configuration's student).

    Returns ``None`` when the dataset has no history of the metric on ``split`` (none of
    its trials finished, or their ``result.json`` is not here); an unknown ``dataset`` or
    ``metric`` raises ValueError (names known from ``histories`` and, for a table from
    :func:`analysis.load_histories`, from the results it was read for).
    """
    check_names(histories, dataset=dataset, metrics=[metric])
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
