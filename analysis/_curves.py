"""Learning curves over training-set size: every configuration against vanilla at each size
of a curve (a spec's ``train_size: [250, 500, 1000]``, one dataset per size whose rows
carry its ``curve``). The NoisyTune paper's claim — the gain grows as the training set
shrinks — becomes a table and a figure that can show it or refute it. Pure functions of
the tidy results (and of their comparison with vanilla); no file I/O.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis._compare import compare_to_vanilla
from analysis._names import check_name
from analysis._tables import config_label, sort_configs

CURVE_COLUMNS = (
    "curve", "dataset", "size", "label", "model", "split", "metric", "n_pairs", "mean",
    "vanilla_mean",
    "mean_diff", "diff_ci_low", "diff_ci_high", "std_ratio",
)  # fmt: skip


def curves(df: pd.DataFrame) -> list[str]:
    """The learning curves of a results table, by name."""
    if "curve" not in df.columns:
        return []
    return sorted(df["curve"].dropna().astype(str).unique())


def size_curves(
    df: pd.DataFrame, comparison: pd.DataFrame | None = None, *, split: str = "dev"
) -> pd.DataFrame:
    """Each configuration against vanilla at every size of every learning curve.

    Parameters
    ----------
    df : pandas.DataFrame
        The tidy results table (``analysis.load``).
    comparison : pandas.DataFrame, optional
        ``compare_to_vanilla(df, split=split)``, when already computed.

    Returns
    -------
    pandas.DataFrame
        One row per (curve, configuration, model, size), smallest size first, with the
        paired Δ against vanilla at that size (``mean_diff`` and its t interval), the
        std ratio (configuration / vanilla: < 1 is steadier), the pairs, the split and
        the metric (each dataset's primary). Empty where the table has no curve.
    """
    names = curves(df)
    if not names:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    comparison = compare_to_vanilla(df, split=split) if comparison is None else comparison
    sized = df[df["curve"].notna()].drop_duplicates("dataset").set_index("dataset")
    part = comparison[comparison["dataset"].isin(sized.index)]
    if part.empty:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    part = part.assign(
        curve=part["dataset"].map(sized["curve"]),
        size=part["dataset"].map(sized["data.train_size"]).astype(int),
        label=[config_label(r) for r in part.to_dict("records")],
        split=split,
    )
    part = sort_configs(part)
    order = {label: i for i, label in enumerate(dict.fromkeys(part["label"]))}
    part = part.assign(_order=part["label"].map(order)).sort_values(["curve", "_order", "size"])
    return part[list(CURVE_COLUMNS)].reset_index(drop=True)


def plot_size_curve(table: pd.DataFrame, curve: str) -> object | None:
    """Δ against vanilla (with its paired 95 % interval) and the std ratio against the
    training-set size on a log axis, one line per configuration (averaged models
    dashed), for one curve of :func:`size_curves`. ``None`` when it has fewer than two
    sizes to draw; an unknown ``curve`` raises ValueError."""
    check_name("learning curve", curve, sorted(table["curve"].dropna().unique()))
    part = table[table["curve"] == curve]
    sizes = sorted(part["size"].unique())
    if len(sizes) < 2:
        return None
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(12.0, 4.6), dpi=110, layout="constrained")
    delta_ax, ratio_ax = fig.subplots(1, 2)
    cmap = colormaps["tab10"]
    labels = list(dict.fromkeys(part["label"].str.replace(r" \[averaged\]$", "", regex=True)))
    n_lines = part.groupby(["label", "model"]).ngroups
    for i, ((label, model), line) in enumerate(part.groupby(["label", "model"], sort=False)):
        base = label.removesuffix(" [averaged]")
        style = {"color": cmap(labels.index(base) % cmap.N),
                 "linestyle": "--" if model == "averaged" else "-",
                 "marker": "s" if model == "averaged" else "o"}  # fmt: skip
        # a small shift per line so intervals at one size do not hide each other
        x = line["size"].to_numpy(float) * 10 ** ((i - (n_lines - 1) / 2) * 0.01)
        err = np.vstack([line["mean_diff"] - line["diff_ci_low"],
                         line["diff_ci_high"] - line["mean_diff"]])  # fmt: skip
        delta_ax.errorbar(x, line["mean_diff"], yerr=np.nan_to_num(err), capsize=3, label=label,
                          **style)  # fmt: skip
        ratio = line["std_ratio"].replace(math.inf, np.nan)
        ratio_ax.plot(x, ratio, label=label, **style)
    metric = f"{part['split'].iloc[0]} {part['metric'].iloc[0]}"
    delta_ax.axhline(0, color="0.3", linewidth=1)
    ratio_ax.axhline(1, color="0.3", linewidth=1)
    for ax in (delta_ax, ratio_ax):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training-set size (rows, log scale)")
        ax.grid(True, alpha=0.3)
    ratio_ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.5, not 5×10⁻¹
    ratio_ax.yaxis.set_major_formatter(plain)
    ratio_ax.yaxis.set_minor_formatter(plain)
    delta_ax.set_ylabel(f"Δ {metric} against vanilla (paired, 95 % CI)")
    ratio_ax.set_ylabel("std ratio (configuration / vanilla; < 1 steadier)")
    delta_ax.set_title(f"{curve}: gain over vanilla by training-set size", fontsize=10)
    ratio_ax.set_title(f"{curve}: spread across seeds against vanilla's", fontsize=10)
    ratio_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
