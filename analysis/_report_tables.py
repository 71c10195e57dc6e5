"""The report's tables as a reader sees them: the statistics of ``analysis._tables``,
``_compare``, ``_select`` and ``_ensemble`` with their columns named in words and every
number formatted (``analysis._format``). Only the report shows these; ``summary.csv`` and
``selection.yaml`` keep the raw values."""

from __future__ import annotations

import math

import pandas as pd

from analysis._decide import MAX_SEEDS_REPORTED
from analysis._failures import Failures
from analysis._format import delta_ci, intervals, mean_std, number, p_value, seed_list, signed
from analysis._select import DatasetDecision


def headline_table(
    selection: pd.DataFrame,
    stats: pd.DataFrame,
    decided: dict[str, DatasetDecision],
    split: str = "dev",
) -> pd.DataFrame:
    """Per dataset: the verdict, vanilla, the chosen configuration and how it compares,
    on the ``split`` the verdicts are decided on."""
    rows = []
    for sel in selection[selection["scope"] == "best"].to_dict("records"):
        ds, m = sel["dataset"], sel["metric"]
        dd = decided[ds]
        d = dd.decision
        van = stats[
            (stats["dataset"] == ds)
            & (stats["strategy"] == "vanilla")
            & (stats["model"] == "student")
            & (stats["split"] == split)
            & (stats["metric"] == m)
        ]
        row = {
            "dataset": ds,
            "metric": f"{split} {m}",
            "verdict": d.verdict,
            "vanilla": mean_std(van["mean"].iloc[0], van["std"].iloc[0], van["n"].iloc[0])
            if len(van)
            else "—",
            "selected": sel["label"],
            "selected mean ± std": mean_std(sel["mean"], sel["std"], sel["n"]),
            "Δ vs vanilla (selection split)": "(vanilla is selected)",
            "p (t, Holm)": "—",
            "std ratio": "—",
            "p (Brown–Forsythe, Holm)": "—",
            "Δ on test (same seeds)": "—",
        }
        shown = d.chosen if d.verdict == "better" else d.contender
        if shown is not None:
            a = d.assessment(shown)
            prefix = "" if d.verdict == "better" else f"{a.label}: "
            row.update({
                "Δ vs vanilla (selection split)": prefix
                + delta_ci(a.delta, a.ci_low, a.ci_high, a.n),
                "p (t, Holm)": prefix + p_value(a.p_holm),
                "std ratio": prefix + number(a.std_ratio, 2),
                "p (Brown–Forsythe, Holm)": prefix + p_value(a.bf_p_holm),
            })  # fmt: skip
        if dd.confirmation:
            c = dd.confirmation
            row["Δ on test (same seeds)"] = (
                delta_ci(c["delta"], c["ci_low"], c["ci_high"], c["n"]) + f": {c['outcome']}"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def failed_cell(f: Failures | None) -> str:
    """``1/9 (≤ 0.43)``: failed seeds of all, and the upper bound on the rate."""
    return "—" if f is None else f"{f.failed}/{f.seeds} (≤ {f.upper:.2f})"


def decision_view(decided: dict[str, DatasetDecision]) -> pd.DataFrame:
    """Every configuration against vanilla: status, the tests, and the power numbers."""
    rows = []
    for ds, dd in decided.items():
        d = dd.decision
        for a in d.assessments:
            row = {
                "dataset": ds,
                "configuration": a.label,
                "status": a.status + (" (stopped)" if a.eliminated else ""),
                "Δ [CI]": delta_ci(a.delta, a.ci_low, a.ci_high, a.n),
                "p (t, Holm)": p_value(a.p_holm),
                f"p (TOST ±{d.margin:g})": p_value(a.tost_p),
                "sd of Δ": number(a.sd_diff),
                "detectable Δ (80 %)": number(a.mde),
                "seeds to resolve": "—"
                if math.isnan(a.seeds_needed)
                else (f"> {MAX_SEEDS_REPORTED}" if math.isinf(a.seeds_needed) else
                      f"{int(a.seeds_needed)} ({a.resolves_as or 'either'})"),
                "std ratio": number(a.std_ratio, 2),
                "p (BF, Holm)": p_value(a.bf_p_holm),
                "steadier": "yes" if a.steadier else "",
                f"failed seeds (rate ≤, {100 * (1 - d.alpha):g} %)": failed_cell(a.failures),
                "held back": a.held_back,
            }  # fmt: skip
            if dd.race is not None:
                config = a.id.rsplit(":", 1)[0]
                n, why = dd.race.stopped.get(config, (dd.race.seeds_of(config), "running"))
                row["seeds (race)"] = n
                row["why it stopped"] = why
            rows.append(row)
    return pd.DataFrame(rows)


def selection_view(selection: pd.DataFrame) -> pd.DataFrame:
    """The chosen configuration and each strategy's pick, with its status vs vanilla."""
    return pd.DataFrame(
        {
            "dataset": selection["dataset"],
            "scope": selection["scope"],
            "selected": selection["label"],
            "status vs vanilla": selection["status"],
            "metric": selection["metric"],
            "mean ± std (n)": [
                mean_std(a, b, n)
                for a, b, n in zip(selection["mean"], selection["std"], selection["n"], strict=True)
            ],
        }
    )


def fresh_text(c: dict) -> str:
    """``Δ +0.012 [+0.004, +0.020] (n=10) on test``: a fresh-seed confirmation's numbers."""
    seeds = c["seeds"]
    span = f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    text = f"Δ {delta_ci(c['delta'], c['ci_low'], c['ci_high'], c['n'])} on {c['split']}, {span}"
    beside = [f"{k.removesuffix('_delta')} Δ {v:+.4f}" for k, v in c.items()
              if k.endswith("_delta") and v == v]  # fmt: skip
    return text + (f" ({'; '.join(beside)})" if beside else "")


def confirmation_view(decided: dict[str, DatasetDecision], split: str = "dev") -> pd.DataFrame:
    """Per dataset whose choice was checked, the chosen configuration's paired Δ on
    ``split`` (where it was chosen) beside its Δ on test (the same seeds' models) and on
    fresh seeds; empty when nothing was checked."""
    rows = []
    for ds, dd in decided.items():
        same, fresh = dd.confirmation, dd.fresh
        if same is None and fresh is None:
            continue
        a = dd.decision.assessment(dd.decision.chosen)
        rows.append({
            "dataset": ds,
            "selected": dd.decision.chosen_label,
            f"Δ on {split} (selection split)": delta_ci(a.delta, a.ci_low, a.ci_high, a.n),
            "Δ on test (same seeds) [CI]": "—" if same is None else
            delta_ci(same["delta"], same["ci_low"], same["ci_high"], same["n"])
            + f": {same['outcome']}",
            "Δ on fresh seeds [CI]": "—" if fresh is None
            else f"{fresh_text(fresh)}: {fresh['outcome']}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def stats_view(stats: pd.DataFrame) -> pd.DataFrame:
    """Seed statistics of some configurations (one dataset, split and metric)."""
    return pd.DataFrame(
        {
            "configuration": stats["label"],
            "n": stats["n"],
            "mean": stats["mean"].map(number),
            "std": stats["std"].map(number),
            "var": stats["var"].map(lambda v: number(v, 6)),
            "SEM": stats["sem"].map(number),
            "95% CI": intervals(stats["ci_low"], stats["ci_high"]),
            "min": stats["min"].map(number),
            "median": stats["median"].map(number),
            "max": stats["max"].map(number),
            "missing seeds": stats["missing_seeds"].map(seed_list),
        }
    )


def compare_view(cmp: pd.DataFrame) -> pd.DataFrame:
    """The paired comparisons with vanilla of one dataset."""
    return pd.DataFrame(
        {
            "configuration": cmp["label"],
            "pairs": cmp["n_pairs"],
            "mean": cmp["mean"].map(number),
            "Δ mean": cmp["mean_diff"].map(signed),
            "Δ 95% CI": intervals(cmp["diff_ci_low"], cmp["diff_ci_high"]),
            "p t": cmp["t_p"].map(p_value),
            "p t Holm": cmp["t_p_holm"].map(p_value),
            "p Wilcoxon": cmp["wilcoxon_p"].map(p_value),
            "p Wilcoxon Holm": cmp["wilcoxon_p_holm"].map(p_value),
            "std": cmp["std"].map(number),
            "vanilla std": cmp["vanilla_std"].map(number),
            "std ratio": cmp["std_ratio"].map(lambda v: number(v, 2)),
            "p Brown–Forsythe": cmp["levene_p"].map(p_value),
            "unpaired seeds": cmp["missing_pairs"].map(seed_list),
        }
    )


def curve_view(table: pd.DataFrame) -> pd.DataFrame:
    """One learning curve (``analysis._curves.size_curves``): each configuration's Δ
    against vanilla and its std ratio, size by size."""
    return pd.DataFrame(
        {
            "configuration": table["label"],
            "training rows": table["size"],
            "mean": table["mean"].map(number),
            "vanilla mean": table["vanilla_mean"].map(number),
            "Δ [95% CI] vs vanilla": [
                delta_ci(*values)
                for values in zip(
                    table["mean_diff"],
                    table["diff_ci_low"],
                    table["diff_ci_high"],
                    table["n_pairs"],
                    strict=True,
                )
            ],
            "std ratio": table["std_ratio"].map(lambda v: number(v, 2)),
        }
    )


def ensemble_view(ens: pd.DataFrame) -> pd.DataFrame:
    """Each seed ensemble's score beside the mean score of its members alone."""
    return pd.DataFrame(
        {
            "dataset": ens["dataset"],
            "configuration": ens["label"],
            "method": ens["method"].str.upper(),
            "members": ens["size"],
            "ensembles": ens["groups"],
            "metric": "dev " + ens["metric"],
            "ensemble": ens["ensemble"].map(number),
            "members mean": ens["members_mean"].map(number),
            "gain": ens["gain"].map(signed),
        }
    )


def incomplete_view(stats: pd.DataFrame, raced: set[str]) -> pd.DataFrame:
    """Configurations lacking seeds that others of their dataset have. Optuna candidates
    and the configurations of a raced dataset lack seeds by design, so they are left out."""
    lacking = stats[
        (stats["missing_seeds"].map(len) > 0)
        & ~stats["optuna"]
        & ~stats["dataset"].isin(list(raced))
    ]
    lacking = lacking[["label", "dataset", "missing_seeds"]].drop_duplicates("label")
    return pd.DataFrame(
        {
            "dataset": lacking["dataset"],
            "configuration": lacking["label"],
            "missing seeds": lacking["missing_seeds"].map(seed_list),
        }
    )


def cost_view(cost: pd.DataFrame) -> pd.DataFrame:
    """Runtime per configuration in minutes and seconds, and as a multiple of vanilla's."""
    return cost.assign(
        total_min=cost["total_min"].map(lambda v: f"{v:.1f}"),
        mean_s=cost["mean_s"].map(lambda v: f"{v:.0f}"),
        x_vanilla=cost["x_vanilla"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}×"),
    ).rename(
        columns={
            "total_min": "total (min)",
            "mean_s": "per trial (s)",
            "x_vanilla": "× vanilla",
        }
    )
