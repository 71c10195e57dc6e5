"""The report of a run: the statistics and figures assembled as a list of blocks, rendered to
Markdown (figures as PNG files beside it) and to one self-contained HTML file (figures
embedded as base64), plus ``summary.csv`` and ``selection.yaml``.

``build_report`` is pure (DataFrames in, blocks and tables out); ``write_report`` is the
one function that reads a run directory and writes the files.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis._compare import compare_to_vanilla
from analysis._decide import MAX_SEEDS_REPORTED, DecisionSettings
from analysis._ensemble import ensemble_summary
from analysis._select import RULE, DatasetDecision, candidate_id, decisions, select, selection_dict
from analysis._tables import (
    cost_table,
    missing_trials,
    primary_metrics,
    seed_stats,
)

RACE_NOTE = (
    "**Seed race.** Seeds were raced (`race:` in the spec): after each round every "
    "configuration significantly behind the leader (paired, Holm, at α per round) "
    "stopped, and the verdict was tested at the round's group-sequential level "
    "(alpha spent as α·t³ over the fraction t of the maximum seeds). The decisions "
    "shown are the race's own, at its last round's level."
)

STATISTICS = """\
- Seeds are the unit of replication: each configuration's statistics are over its finished
  seeds. std and variance use ddof = 1; SEM = std/√n; the 95 % CI of a mean is Student-t
  with n − 1 degrees of freedom (`--bootstrap`: a seeded percentile bootstrap of the mean,
  `scipy.stats.bootstrap`, 9999 resamples).
- Comparison with vanilla is paired by seed (same seed ⇒ same data order and head
  initialisation), on the seeds both have; seeds only one side has are listed as missing
  pairs. Δ = mean of the per-seed differences with its t interval; p-values of the paired
  t-test (`scipy.stats.ttest_rel`) and of the Wilcoxon signed-rank test
  (`scipy.stats.wilcoxon`, undefined when every difference is 0), Holm-corrected across the
  configurations of a dataset. Variance: std ratio (configuration / vanilla; < 1 is
  steadier) and the Brown–Forsythe test (`scipy.stats.levene(center="median")`).
- With few seeds (3–5) these tests have little power: read the intervals, not only the
  p-values."""


@dataclass
class Block:
    """One piece of the report: a heading, a paragraph (Markdown), a table or a figure."""

    kind: str  # "h1" | "h2" | "h3" | "text" | "table" | "figure"
    content: Any
    name: str = ""  # figure file stem


@dataclass
class Report:
    blocks: list[Block] = field(default_factory=list)
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)
    selection_yaml: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)  # dataset -> analysis.DatasetDecision
    decision_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)
    out_dir: Path | None = None  # set by write_report

    def add(self, kind: str, content: Any, name: str = "") -> None:
        self.blocks.append(Block(kind, content, name))


# -- formatting ---------------------------------------------------------------------
def _f(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def _intervals(low: pd.Series, high: pd.Series) -> list[str]:
    """``[low, high]`` per row, formatted like every other number in the report."""
    return [f"[{_f(a)}, {_f(b)}]" for a, b in zip(low, high, strict=True)]


def _p(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _pm(mean: Any, std: Any, n: Any = None) -> str:
    s = f"{_f(mean)} ± {_f(std)}"
    return s if n is None else f"{s} (n={int(n)})"


def _seeds(v: Any) -> str:
    return ", ".join(map(str, v)) if v else "—"


def _delta_ci(delta: Any, low: Any, high: Any, n: Any) -> str:
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "—"
    return f"{delta:+.4f} [{_f(low)}, {_f(high)}] (n={int(n)})"


def headline_table(
    selection: pd.DataFrame,
    stats: pd.DataFrame,
    decided: dict[str, DatasetDecision],
) -> pd.DataFrame:
    """Per dataset: the verdict, vanilla, the chosen configuration and how it compares."""
    rows = []
    for sel in selection[selection["scope"] == "best"].to_dict("records"):
        ds, m = sel["dataset"], sel["metric"]
        dd = decided[ds]
        d = dd.decision
        van = stats[
            (stats["dataset"] == ds)
            & (stats["strategy"] == "vanilla")
            & (stats["model"] == "student")
            & (stats["split"] == "dev")
            & (stats["metric"] == m)
        ]
        row = {
            "dataset": ds,
            "metric": f"dev {m}",
            "verdict": d.verdict,
            "vanilla": _pm(van["mean"].iloc[0], van["std"].iloc[0], van["n"].iloc[0])
            if len(van)
            else "—",
            "selected": sel["label"],
            "selected mean ± std": _pm(sel["mean"], sel["std"], sel["n"]),
            "Δ vs vanilla (selection split)": "(vanilla is selected)",
            "p (t, Holm)": "—",
            "std ratio": "—",
            "p (Brown–Forsythe, Holm)": "—",
            "Δ on test (unbiased)": "—",
        }
        shown = d.chosen if d.verdict == "better" else d.contender
        if shown is not None:
            a = d.assessment(shown)
            prefix = "" if d.verdict == "better" else f"{a.label}: "
            row.update({
                "Δ vs vanilla (selection split)": prefix
                + _delta_ci(a.delta, a.ci_low, a.ci_high, a.n),
                "p (t, Holm)": prefix + _p(a.p_holm),
                "std ratio": prefix + _f(a.std_ratio, 2),
                "p (Brown–Forsythe, Holm)": prefix + _p(a.bf_p_holm),
            })  # fmt: skip
        if dd.confirmation:
            c = dd.confirmation
            row["Δ on test (unbiased)"] = _delta_ci(c["delta"], c["ci_low"], c["ci_high"], c["n"])
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_line(dd: DatasetDecision) -> str:
    """One line per dataset for the terminal and the report: verdict, choice, why."""
    d = dd.decision
    line = f"{dd.dataset}: {d.verdict.upper()} — use {d.chosen_label}. {d.reason}."
    if d.flags:
        line += " Seeds " + ", ".join(f"{k}: {v}" for k, v in sorted(d.flags.items())) + "."
    if dd.race is not None:
        r = dd.race
        line += (f" Race: {r.trials} of {len(r.configs) * len(r.seeds)} trials, "
                 + (f"ended {r.ended}" if r.done else "still running")
                 + f"; tested at the level of its last round, {d.level:.3g}.")  # fmt: skip
    return line


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
                "Δ [CI]": _delta_ci(a.delta, a.ci_low, a.ci_high, a.n),
                "p (t, Holm)": _p(a.p_holm),
                f"p (TOST ±{d.margin:g})": _p(a.tost_p),
                "sd of Δ": _f(a.sd_diff),
                "detectable Δ (80 %)": _f(a.mde),
                "seeds to resolve": "—"
                if math.isnan(a.seeds_needed)
                else (f"> {MAX_SEEDS_REPORTED}" if math.isinf(a.seeds_needed) else
                      f"{int(a.seeds_needed)} ({a.resolves_as or 'either'})"),
                "std ratio": _f(a.std_ratio, 2),
                "p (BF, Holm)": _p(a.bf_p_holm),
                "steadier": "yes" if a.steadier else "",
            }  # fmt: skip
            if dd.race is not None:
                config = a.id.rsplit(":", 1)[0]
                n, why = dd.race.stopped.get(config, (dd.race.seeds_of(config), "running"))
                row["seeds (race)"] = n
                row["why it stopped"] = why
            rows.append(row)
    return pd.DataFrame(rows)


def _stats_view(stats: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "configuration": stats["label"],
            "n": stats["n"],
            "mean": stats["mean"].map(_f),
            "std": stats["std"].map(_f),
            "var": stats["var"].map(lambda v: _f(v, 6)),
            "SEM": stats["sem"].map(_f),
            "95% CI": _intervals(stats["ci_low"], stats["ci_high"]),
            "min": stats["min"].map(_f),
            "median": stats["median"].map(_f),
            "max": stats["max"].map(_f),
            "missing seeds": stats["missing_seeds"].map(_seeds),
        }
    )


def _compare_view(cmp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "configuration": cmp["label"],
            "pairs": cmp["n_pairs"],
            "mean": cmp["mean"].map(_f),
            "Δ mean": cmp["mean_diff"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
            "Δ 95% CI": _intervals(cmp["diff_ci_low"], cmp["diff_ci_high"]),
            "p t": cmp["t_p"].map(_p),
            "p t Holm": cmp["t_p_holm"].map(_p),
            "p Wilcoxon": cmp["wilcoxon_p"].map(_p),
            "p Wilcoxon Holm": cmp["wilcoxon_p_holm"].map(_p),
            "std": cmp["std"].map(_f),
            "vanilla std": cmp["vanilla_std"].map(_f),
            "std ratio": cmp["std_ratio"].map(lambda v: _f(v, 2)),
            "p Brown–Forsythe": cmp["levene_p"].map(_p),
            "unpaired seeds": cmp["missing_pairs"].map(_seeds),
        }
    )


def _pipe_table(chunk: str) -> pd.DataFrame:
    """A Markdown pipe table written by hand (an intro's) as a DataFrame, so it renders as a
    table in HTML as well as in Markdown."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")] for line in chunk.splitlines()
    ]
    body = [r for r in rows[1:] if not all(set(c) <= set(":- ") for c in r)]
    return pd.DataFrame(body, columns=rows[0])


def _one_class_warning(df: pd.DataFrame) -> str:
    """A warning naming the datasets where finished trials predict one class on dev."""
    if "one_class_on_dev" not in df:
        return ""
    done = df[df["finished"] & df["one_class_on_dev"].notna()]
    counts = done.groupby("dataset")["one_class_on_dev"].agg(["sum", "size"])
    counts = counts[counts["sum"] > 0]
    if counts.empty:
        return ""
    parts = [f"{ds}: {int(r['sum'])} of {int(r['size'])}" for ds, r in counts.iterrows()]
    return (
        "**Degenerate trials:** finished trials whose model predicts a single class for "
        f"every dev example ({'; '.join(parts)}). Such a trial is the constant predictor "
        "(MCC 0, accuracy = the majority share): where most trials of a dataset are, its "
        "comparison and selection say nothing about the strategies."
    )


def _diverged_warning(df: pd.DataFrame) -> str:
    """A warning counting, per configuration, the seeds whose training diverged."""
    if "diverged" not in df or not df["diverged"].any():
        return ""
    cols = [c for c in ("dataset", "strategy", "teacher_k", "distill_lambda", "noise_lambda")
            if c in df]  # fmt: skip
    diverged = df[df["finished"]]
    counts = diverged.groupby(cols, dropna=False)["diverged"].agg(["sum", "size"])
    counts = counts[counts["sum"] > 0]
    parts = []
    for idx, r in counts.iterrows():
        values = dict(zip(cols, idx if isinstance(idx, tuple) else (idx,), strict=True))
        knobs = [
            f"{k}={values[k]}" for k in cols[2:] if values[k] is not None and not pd.isna(values[k])
        ]
        name = " ".join([str(values["dataset"]), str(values["strategy"]), *knobs])
        parts.append(f"{name}: {int(r['sum'])} of {int(r['size'])} seeds")
    return (
        "**Diverged trials:** the training loss became non-finite and the trial stopped at "
        f"that step ({'; '.join(parts)}). A diverged seed is scored by its model as it "
        "stood then (typically near chance) and enters the means, stds and tests like any "
        "other seed: it is part of the instability being measured, never dropped."
    )


def build_report(
    df: pd.DataFrame,
    *,
    histories: pd.DataFrame | None = None,
    ensembles: pd.DataFrame | None = None,
    expected_keys: list[str] | None = None,
    title: str = "steadytune report",
    intro: str | None = None,
    ci: str = "t",
    plots: bool = True,
    settings: DecisionSettings | None = None,
    races: dict[str, Any] | None = None,
) -> Report:
    """Every table and figure of the report, from the results (and optional histories,
    ensembles and the planned trial keys). Pure: nothing is read or written.

    ``settings`` are the spec's ``decision:`` (default α 0.05 and the metric's margin);
    ``races`` the replayed races of a raced run (``sweeps.race.run_decisions``), whose
    decisions are taken as the races took them.

    ``intro`` is Markdown written by a person (a study's findings), placed after the
    generated summary line: blank-line-separated paragraphs, ``#``-headings, lists
    and pipe tables (rendered as tables in HTML too)."""
    from analysis._plots import plot_k, plot_lambda, plot_learning_curves, plot_seeds

    rep = Report()
    metric_of = primary_metrics(df)
    stats = seed_stats(df, ci=ci)
    rep.summary = stats
    rep.comparison = compare_to_vanilla(df)
    settings = settings or DecisionSettings()
    rep.decisions = decisions(df, settings=settings, races=races)
    rep.selection = select(df, decided=rep.decisions)
    rep.selection_yaml = selection_dict(rep.selection, rep.decisions, settings)
    rep.headline = headline_table(rep.selection, stats, rep.decisions)
    rep.decision_table = decision_view(rep.decisions)
    status_of = {
        (ds, a.id): a.status for ds, dd in rep.decisions.items() for a in dd.decision.assessments
    }
    stats = stats.assign(
        status=[
            "reference"
            if r["strategy"] == "vanilla"
            else status_of.get((r["dataset"], candidate_id(r)), "—")
            for r in stats.to_dict("records")
        ]
    )
    rep.summary = stats
    rep.missing = missing_trials(df, expected_keys)
    finished = int(df["finished"].sum())

    rep.add("h1", title)
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    n_optuna = int((df["finished"] & df["optuna_trial"].notna()).sum())
    planned = f"{finished - n_optuna} grid trials finished"
    if expected_keys:
        planned += f" of {len(expected_keys)} planned"
    planned += f", {n_optuna} Optuna candidate trials" if n_optuna else ""
    # short hashes, keeping the '-dirty' mark: a tree changed under a running sweep shows
    full = sorted(set(df["git_commit"].dropna().astype(str))) if "git_commit" in df else []
    commits = sorted({c[:10] + ("-dirty" if c.endswith("-dirty") else "") for c in full})
    rep.add(
        "text",
        f"Generated {stamp}. {planned} ({len(df) - finished} trials in the table "
        f"unfinished); datasets: "
        f"{', '.join(sorted(df['dataset'].astype(str).unique()))}."
        + (f" Code: git {', '.join(commits)}." if commits else ""),
    )
    for chunk in (intro or "").strip().split("\n\n"):
        chunk = chunk.strip()
        heading = chunk.split(" ", 1)
        if chunk.startswith("#") and "\n" not in chunk and set(heading[0]) == {"#"}:
            level = min(len(heading[0]) + 1, 3)  # the intro's '#' sits below the title
            rep.add(f"h{level}", heading[1] if len(heading) > 1 else "")
        elif chunk and all(line.lstrip().startswith("|") for line in chunk.splitlines()):
            rep.add("table", _pipe_table(chunk))
        elif chunk:
            rep.add("text", chunk)
    if len(rep.missing):
        rep.add(
            "text",
            f"**Partial sweep:** {len(rep.missing)} trial(s) have not finished — "
            "see *Missing* at the end. The statistics below use the finished trials.",
        )

    rep.add("h2", "Headline")
    rep.add(
        "text",
        "Per dataset, the configuration selected by the rule below against vanilla "
        "(dev split, the dataset's primary metric). Δ > 0 and std ratio < 1 are the papers' "
        "claim: higher mean, smaller variance.",
    )
    rep.add("table", rep.headline)
    for dd in rep.decisions.values():
        rep.add("text", "**Verdict.** " + verdict_line(dd))
    undecided = sorted(set(df["dataset"].astype(str)) - set(rep.decisions))
    if undecided:
        rep.add(
            "text",
            f"**No verdict** for {', '.join(undecided)}: no finished vanilla run, and every "
            "comparison is against vanilla, paired by seed.",
        )
    for warning in (_diverged_warning(df), _one_class_warning(df)):
        if warning:
            rep.add("text", warning)

    rep.add("h2", "Decision: strategy, K and λ")
    margins = ", ".join(f"{m} ±{settings.margin_for(m):g}" for m in sorted(set(metric_of.values())))
    rep.add(
        "text",
        f"**Rule.** {RULE} α = {settings.alpha:g}; equivalence margins: {margins or '—'}. "
        "Written to `selection.yaml`.",
    )
    if races:
        rep.add("text", RACE_NOTE)
    sel_view = pd.DataFrame(
        {
            "dataset": rep.selection["dataset"],
            "scope": rep.selection["scope"],
            "selected": rep.selection["label"],
            "status vs vanilla": rep.selection["status"],
            "metric": rep.selection["metric"],
            "mean ± std (n)": [
                _pm(a, b, n)
                for a, b, n in zip(
                    rep.selection["mean"], rep.selection["std"], rep.selection["n"], strict=True
                )
            ],
        }
    )
    rep.add("table", sel_view)
    rep.add("h3", "Every configuration against vanilla, with power")
    rep.add(
        "text",
        "Dev split, paired by seed. *detectable Δ*: the smallest |Δ| the paired t-test "
        "would find with 80 % power at this n (at α/m, Holm's first step); *seeds to "
        "resolve*: the seeds that would settle the observed Δ at its observed spread, as "
        "better/worse or as equivalent. A status is from the tests, never from the point "
        "estimate.",
    )
    if len(rep.decision_table):
        rep.add("table", rep.decision_table)
    confirmations = [(ds, dd) for ds, dd in rep.decisions.items() if dd.confirmation is not None]
    if confirmations:
        rep.add("h3", "Confirmation on the test split")
        rep.add(
            "text",
            "The configuration was selected on dev, so its dev Δ is biased upwards; the "
            "paired Δ on the test split, which played no part in the selection, is the "
            "unbiased estimate of its gain.",
        )
        rep.add(
            "table",
            pd.DataFrame(
                [
                    {
                        "dataset": ds,
                        "selected": dd.decision.chosen_label,
                        "Δ on dev (selection split)": _delta_ci(
                            *(
                                getattr(dd.decision.assessment(dd.decision.chosen), k)
                                for k in ("delta", "ci_low", "ci_high", "n")
                            )
                        ),
                        "Δ on test (unbiased) [CI]": _delta_ci(
                            dd.confirmation["delta"],
                            dd.confirmation["ci_low"],
                            dd.confirmation["ci_high"],
                            dd.confirmation["n"],
                        ),
                    }
                    for ds, dd in confirmations
                ]
            ),
        )

    for dataset in sorted(df["dataset"].astype(str).unique()):
        m = metric_of.get(dataset, "accuracy")
        rep.add("h2", f"Dataset {dataset} (primary metric: {m})")
        for split in ("dev", "test"):
            part = stats[
                (stats["dataset"] == dataset) & (stats["metric"] == m) & (stats["split"] == split)
            ]
            if part.empty:
                continue
            rep.add("h3", f"Seed statistics, {split} {m}")
            rep.add(
                "text",
                "`[averaged]`: SE's averaged model / SDA's teacher of the same run. "
                "All metrics, splits and models are in `summary.csv`.",
            )
            rep.add("table", _stats_view(part))
        cmp = rep.comparison[rep.comparison["dataset"] == dataset]
        rep.add("h3", f"Against vanilla, paired by seed (dev {m})")
        if cmp.empty:
            rep.add(
                "text",
                "No vanilla run (or no other configuration) on this dataset: nothing to compare.",
            )
        else:
            rep.add("table", _compare_view(cmp))
        if plots:
            rep.add("h3", "Figures")
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset)
            figures = [
                ("seeds", plot_seeds(df, dataset, m)),
                ("k", plot_k(df, dataset, m)),
                ("lambda", plot_lambda(df, dataset, m)),
            ]
            if histories is not None and not histories.empty:
                best = rep.selection[rep.selection["dataset"] == dataset]
                configs = [r for r in best[best["scope"] != "best"].to_dict("records")]
                figures.append(
                    ("curves", plot_learning_curves(histories, dataset, m, configs=configs))
                )
            for name, fig in figures:
                if fig is not None:
                    rep.add("figure", fig, name=f"{safe}-{name}")
                elif name == "lambda":
                    rep.add(
                        "text",
                        "No λ plot: neither distill λ nor noise λ takes more than "
                        "one value on this dataset.",
                    )
                elif name == "k":
                    rep.add(
                        "text",
                        "No K plot: no strategy with a teacher or averaging "
                        "window on this dataset.",
                    )
            if histories is not None and not histories.empty:
                rep.add(
                    "text",
                    "Learning curves: each strategy's selected K and λ (the "
                    "per-strategy rows of the selection).",
                )

    ens = ensemble_summary(ensembles, df, metric_of) if ensembles is not None else None
    rep.add("h2", "Seed ensembles (VOTE, AVG)")
    if ens is None or ens.empty:
        rep.add(
            "text",
            "None built yet: run `steadytune ensemble RUN_DIR` (VOTE needs the "
            "trials' logits; AVG needs `save_model: true`).",
        )
    else:
        rep.add(
            "text",
            "VOTE: sum of the members' softmax probabilities; AVG: the mean of the "
            "members' weights, evaluated once. *members* is the mean single-model score "
            "of the same seeds; *gain* = ensemble − members.",
        )
        rep.add(
            "table",
            pd.DataFrame(
                {
                    "dataset": ens["dataset"],
                    "configuration": ens["label"],
                    "method": ens["method"].str.upper(),
                    "members": ens["size"],
                    "ensembles": ens["groups"],
                    "metric": "dev " + ens["metric"],
                    "ensemble": ens["ensemble"].map(_f),
                    "members mean": ens["members_mean"].map(_f),
                    "gain": ens["gain"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
                }
            ),
        )

    rep.add("h2", "Missing")
    # a raced dataset's configurations lack the seeds the race did not give them
    raced = stats["dataset"].isin(list(races or {}))
    incomplete = stats[(stats["missing_seeds"].map(len) > 0) & ~stats["optuna"] & ~raced]
    incomplete = incomplete[["label", "dataset", "missing_seeds"]].drop_duplicates("label")
    if rep.missing.empty and incomplete.empty:
        rep.add(
            "text",
            "Nothing: every planned trial finished and every configuration has "
            "every seed of its dataset"
            + (" (of a raced dataset: every seed the race gave it)." if races else "."),
        )
    if len(rep.missing):
        rep.add("text", f"{len(rep.missing)} trial(s) have no finished result:")
        rep.add("table", rep.missing.fillna("—"))
    if len(incomplete):
        rep.add(
            "text",
            "Configurations lacking seeds that other configurations of the "
            "dataset have (their comparisons use the seeds both sides have):",
        )
        rep.add(
            "table",
            pd.DataFrame(
                {
                    "dataset": incomplete["dataset"],
                    "configuration": incomplete["label"],
                    "missing seeds": incomplete["missing_seeds"].map(_seeds),
                }
            ),
        )
    if histories is not None and histories.attrs.get("missing"):
        rep.add(
            "text",
            "No `result.json` found (no learning curve) for: "
            + ", ".join(map(str, histories.attrs["missing"])),
        )

    cost = cost_table(df)
    if not cost.empty:
        rep.add("h2", "Cost")
        total_h = cost["total_min"].sum() / 60
        rep.add(
            "text",
            f"{int(cost['trials'].sum())} finished trials ran for {total_h:.2f} h in all "
            "(summed trial runtimes as Ray measured them: data, model, training, evaluation, "
            "checkpoints; concurrent trials overlap in wall time).",
        )
        rep.add(
            "table",
            cost.assign(
                total_min=cost["total_min"].map(lambda v: f"{v:.1f}"),
                mean_s=cost["mean_s"].map(lambda v: f"{v:.0f}"),
                x_vanilla=cost["x_vanilla"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}×"),
            ).rename(
                columns={
                    "total_min": "total (min)",
                    "mean_s": "per trial (s)",
                    "x_vanilla": "× vanilla",
                }
            ),
        )

    rep.add("h2", "Statistics used")
    rep.add("text", STATISTICS)
    return rep


# -- rendering ----------------------------------------------------------------------
def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(empty)_"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(False)]
    return "\n".join(lines)


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    parts = []
    for b in report.blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append("#" * int(b.kind[1]) + " " + b.content)
        elif b.kind == "text":
            parts.append(b.content)
        elif b.kind == "table":
            parts.append(markdown_table(b.content))
        elif b.kind == "figure":
            parts.append(f"![{b.name}]({figure_dir}/{b.name}.png)")
    return "\n\n".join(parts) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1300px;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
code{background:#f5f5f5;padding:0 .2em}
"""


def _inline_md(text: str) -> str:
    """The little Markdown the report's paragraphs use: **bold**, *italic*, `code`, lists,
    fenced code blocks."""
    import re

    if text.startswith("```"):  # a fenced code block, as it is
        body = text.split("\n", 1)[1] if "\n" in text else ""
        return f"<pre><code>{html.escape(body.removesuffix('```').rstrip())}</code></pre>"
    out = []
    for para in text.split("\n- "):
        t = html.escape(para.strip().removeprefix("- "))
        t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
        t = re.sub(r"\*(.+?)\*", r"<i>\1</i>", t)
        t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
        out.append(t)
    if text.lstrip().startswith("- "):
        return "<ul>" + "".join(f"<li>{t}</li>" for t in out) + "</ul>"
    return "<p>" + "<br>".join(out) + "</p>"


def render_html(report: Report, pngs: dict[str, bytes]) -> str:
    body = []
    for b in report.blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{html.escape(b.content)}</{b.kind}>")
        elif b.kind == "text":
            body.append(_inline_md(b.content))
        elif b.kind == "table":
            body.append(b.content.to_html(index=False, border=0, na_rep="—"))
        elif b.kind == "figure":
            data = base64.b64encode(pngs[b.name]).decode("ascii")
            body.append(f'<img alt="{html.escape(b.name)}" src="data:image/png;base64,{data}">')
    title = next((b.content for b in report.blocks if b.kind == "h1"), "steadytune report")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _load_runs(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[str] | None, Any]:
    """The results, planned keys and ensembles of one run, or of several side by side
    (e.g. a study's grid sweep and its λ search). A trial key in two runs is refused:
    its seed would count twice."""
    from analysis._load import AnalysisError, expected_trials, load, load_ensembles

    frames, expected, ensembles, owner = [], [], [], {}
    for run_dir in run_dirs:
        df = load(run_dir)
        key_col = "key" if df["key"].notna().any() else "trial_id"
        for key in df[key_col].dropna().astype(str):
            if key in owner:
                raise AnalysisError(
                    f"trial {key!r} is in both {owner[key]} and {run_dir}: "
                    "report runs that share no trial"
                )
            owner[key] = run_dir
        frames.append(df)
        planned = expected_trials(run_dir)
        expected = None if planned is None or expected is None else expected + planned
        found = load_ensembles(run_dir)
        if found is not None:
            ensembles.append(found)
    if len(frames) == 1:
        df = frames[0]
    else:
        df = pd.concat(frames, ignore_index=True)
        df.attrs["run_dir"] = str(run_dirs[0])
    return df, expected, (pd.concat(ensembles, ignore_index=True) if ensembles else None)


def write_report(
    run_dir: str | Path | list[str | Path],
    out_dir: str | Path | None = None,
    *,
    ci: str = "t",
    plots: bool = True,
    title: str | None = None,
    intro: str | None = None,
    markdown: str | Path | None = None,
) -> Report:
    """Analyse a run directory (or several) and write ``report.md`` (with
    ``figures/*.png``), ``report.html`` (self-contained), ``summary.csv`` and
    ``selection.yaml``.

    Parameters
    ----------
    run_dir : str or Path, or a list of them
        The sweep's run directory (``results.parquet``, ``trials/``, optional
        ``sweep.json`` and ``ensembles.parquet``); several are reported as one (they
        must share no trial).
    out_dir : str or Path, optional
        Where to write; default ``<first run_dir>/report``.
    ci : {"t", "bootstrap"}
        The confidence interval of the seed means.
    plots : bool
        Draw the figures.
    title, intro : str, optional
        The report's title (default: from the run directory) and Markdown placed after
        the generated summary (a study's written findings).
    markdown : str or Path, optional
        Also write the Markdown report here, its figures in ``<stem>-figures/`` beside
        it (how ``docs/results.md`` is published).

    Returns
    -------
    Report
        With ``headline``, ``summary``, ``comparison``, ``selection``, ``missing``.
    """
    import yaml

    from analysis._load import load_histories
    from analysis._plots import figure_png
    from sweeps.race import planned_keys, run_decisions

    run_dirs = [Path(d) for d in (run_dir if isinstance(run_dir, list) else [run_dir])]
    df, expected, ensembles = _load_runs(run_dirs)
    settings, races = None, {}
    for d in run_dirs:
        found, raced = run_decisions(d)
        settings = settings or found
        races.update(raced)
    if races and expected is not None:  # a race plans only the trials it gives
        raced_keys = {k for r in races.values() for c in r.configs for k in planned_keys(r)
                      if k.startswith(f"{c}_s")}  # fmt: skip
        all_raced = {f"{c}_s{s}" for r in races.values() for c in r.configs for s in r.seeds}
        expected = [k for k in expected if k not in all_raced] + sorted(raced_keys)
    histories = load_histories(df) if plots else None
    report = build_report(
        df,
        histories=histories,
        ensembles=ensembles,
        expected_keys=expected,
        title=title or f"steadytune report: {', '.join(d.resolve().name for d in run_dirs)}",
        intro=intro,
        ci=ci,
        plots=plots,
        settings=settings,
        races=races or None,
    )
    out = Path(out_dir) if out_dir is not None else run_dirs[0] / "report"
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    pngs = {}
    for b in report.blocks:
        if b.kind == "figure":
            pngs[b.name] = figure_png(b.content)
            (figures / f"{b.name}.png").write_bytes(pngs[b.name])
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, pngs), encoding="utf-8")
    if markdown is not None:
        _write_markdown_copy(report, pngs, Path(markdown))
    summary = report.summary.copy()
    for col in ("seeds", "missing_seeds"):
        summary[col] = summary[col].map(lambda s: " ".join(map(str, s)))
    summary.to_csv(out / "summary.csv", index=False)
    (out / "selection.yaml").write_text(
        yaml.safe_dump(report.selection_yaml, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    report.out_dir = out
    return report


def _write_markdown_copy(report: Report, pngs: dict[str, bytes], path: Path) -> None:
    """``path`` and ``<stem>-figures/*.png`` beside it (stale figures removed)."""
    figure_dir = path.parent / f"{path.stem}-figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    for old in figure_dir.glob("*.png"):
        if old.stem not in pngs:
            old.unlink()
    for name, png in pngs.items():
        (figure_dir / f"{name}.png").write_bytes(png)
    path.write_text(render_markdown(report, figure_dir=figure_dir.name), encoding="utf-8")
