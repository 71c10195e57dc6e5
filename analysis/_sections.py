"""The report's sections, in reading order: one function per section, returning its blocks
(headings, the prose that says how to read the numbers, the tables of
``analysis._report_tables`` and the figures). They take the tables ``build_report`` has
already computed, so each section only chooses and explains; nothing is read or written."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping

import pandas as pd

from analysis._compare import compare_to_vanilla
from analysis._curves import curves, plot_size_curve
from analysis._decide import DecisionSettings
from analysis._ensemble import ensemble_summary
from analysis._format import delta_ci
from analysis._load import dataset_names, is_confirmation, splits_of
from analysis._plots import plot_k, plot_lambda, plot_learning_curves, plot_seeds
from analysis._render import MARKDOWN, Block
from analysis._report_tables import (
    compare_view,
    confirmation_view,
    cost_view,
    curve_view,
    ensemble_view,
    fresh_text,
    incomplete_view,
    selection_view,
    stats_view,
)
from analysis._select import CONFIRMED, CONTRADICTED, NOT_CONFIRMED, DatasetDecision, rule
from analysis._sequential import ELIMINATION_RHO, SPENDING_RHO
from analysis._tables import config_label, cost_table

RACE_NOTE = (
    "**Seed race.** Seeds were raced (`race:` in the spec): after each round every "
    "configuration significantly behind the leader (paired, Holm) stopped, at a level "
    f"spending an elimination α of its own as α·t^{ELIMINATION_RHO:g} over the fraction t "
    "of the maximum seeds, and the verdict was tested at the round's group-sequential "
    f"level (α spent as α·t^{SPENDING_RHO:g}; the round the race ended at spends all that "
    "was left). The decisions shown are the race's own, at its last round's level."
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


def _text_block(lines: list[str]) -> list[Block]:
    """The lines as one text block, or none when they are blank."""
    chunk = "\n".join(lines).strip("\n")
    return [Block("text", chunk, written=True)] if chunk.strip() else []


def _intro_blocks(intro: str | None) -> list[Block]:
    """A person's Markdown as blocks: its top-level headings one level below the title (the
    report has the only ``h1``), and between them the Markdown as written, whole, so that
    lists, quotes, code and pipe tables read the same in report.md and report.html."""
    text = (intro or "").replace("\r\n", "\n").replace("\r", "\n")  # as markdown-it counts
    lines, tokens = text.split("\n"), MARKDOWN.parse(text)
    blocks, start = [], 0
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.map:
            blocks += _text_block(lines[start : tok.map[0]])
            # the heading's text is its inline token, always the next one
            level = min(int(tok.tag[1]) + 1, 3)
            blocks.append(Block(f"h{level}", tokens[i + 1].content, written=True))
            start = tok.map[1]
    return blocks + _text_block(lines[start:])


def one_class_warning(df: pd.DataFrame) -> str:
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


def diverged_warning(df: pd.DataFrame) -> str:
    """A warning counting, per configuration, the seeds whose training diverged."""
    if "diverged" not in df or not df["diverged"].any():
        return ""
    cols = ["dataset", "strategy", "settings"]
    diverged = df[df["finished"]]
    counts = diverged.groupby(cols, dropna=False)["diverged"].agg(["sum", "size"])
    counts = counts[counts["sum"] > 0]
    parts = []
    for idx, r in counts.iterrows():
        name = config_label(dict(zip(cols, idx, strict=True)), with_dataset=True)
        parts.append(f"{name}: {int(r['sum'])} of {int(r['size'])} seeds")
    return (
        "**Diverged trials:** the training loss became non-finite and the trial stopped at "
        f"that step ({'; '.join(parts)}). A diverged seed is scored by its model as it "
        "stood then (typically near chance) and enters the means, stds and tests like any "
        "other seed: it is part of the instability being measured, never dropped."
    )


_CONFIRMATION_ADVICE = {
    CONFIRMED: "",
    NOT_CONFIRMED: " (its interval includes 0): the dev gain may be the selection's own "
    "bias; treat the choice as provisional until more seeds or rows confirm it",
    CONTRADICTED: " (below vanilla on rows it was not chosen on): do not use it",
}


_FRESH_ADVICE = {
    CONFIRMED: "",
    NOT_CONFIRMED: " (its interval includes 0): the gain may have been the selection's "
    "luck; treat the choice as provisional, or confirm on more fresh seeds",
    CONTRADICTED: " (below vanilla on seeds it was not chosen on): do not use it",
}


def verdict_line(dd: DatasetDecision) -> str:
    """One line per dataset for the terminal and the report: verdict, choice, why."""
    d = dd.decision
    line = f"{dd.dataset}: {d.verdict.upper()} — use {d.chosen_label}. {d.reason}."
    if d.flags:
        line += " Seeds " + ", ".join(f"{k}: {v}" for k, v in sorted(d.flags.items())) + "."
    shown = d.chosen if d.verdict == "better" else d.contender
    if shown is not None and d.assessment(shown).failures and d.vanilla_failures:
        mine, vanilla = d.assessment(shown), d.vanilla_failures
        line += (f" Failed seeds (collapsed or diverged): {mine.label} "
                 f"{mine.failures.text(d.alpha)}; vanilla {vanilla.text(d.alpha)}.")  # fmt: skip
    if dd.confirmation:
        c = dd.confirmation
        line += (f" Test split (same seeds' models, rows held out from the choice): Δ "
                 f"{delta_ci(c['delta'], c['ci_low'], c['ci_high'], c['n'])}, "
                 f"{c['outcome']}{_CONFIRMATION_ADVICE[c['outcome']]}.")  # fmt: skip
    if dd.fresh:
        c = dd.fresh
        line += (f" Fresh seeds (trained after the choice, {c['n']} of it and of vanilla): "
                 f"{fresh_text(c)}: {c['outcome']}{_FRESH_ADVICE[c['outcome']]}.")  # fmt: skip
    elif d.verdict == "better":
        line += (" Not confirmed on fresh seeds yet: `confirm: {seeds: 10}` in the spec "
                 "trains 10 new seeds of it and of vanilla after the choice, the only "
                 "check that shares no luck with it.")  # fmt: skip
    if dd.race is not None:
        r = dd.race
        line += (f" Race: {r.trials} of {len(r.configs) * len(r.seeds)} trials, "
                 + (f"ended {r.ended}" if r.done else "still running")
                 + f"; tested at the level of its last round, {d.level:.3g}.")  # fmt: skip
    return line


def header_section(
    df: pd.DataFrame,
    title: str,
    intro: str | None,
    expected_keys: list[str] | None,
    missing: pd.DataFrame,
    raced: bool = False,
) -> list[Block]:
    """The title, what the report is over (trials, datasets, code), a person's intro,
    and a warning up front when the sweep is partial. A raced run's trials are the ones
    its races gave, not a grid's."""
    finished = int(df["finished"].sum())
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    n_optuna = int((df["finished"] & df["optuna_trial"].notna()).sum())
    n_fresh = int((df["finished"] & is_confirmation(df)).sum())
    planned = f"{finished - n_optuna - n_fresh} {'raced' if raced else 'grid'} trials finished"
    if expected_keys:
        planned += f" of {len(expected_keys)} " + ("the races gave" if raced else "planned")
    planned += f", {n_optuna} Optuna candidate trials" if n_optuna else ""
    planned += f", {n_fresh} fresh-seed confirmation trials" if n_fresh else ""
    # short hashes, keeping the '-dirty' mark: a tree changed under a running sweep shows
    full = sorted(set(df["git_commit"].dropna().astype(str))) if "git_commit" in df else []
    commits = sorted({c[:10] + ("-dirty" if c.endswith("-dirty") else "") for c in full})
    blocks = [
        Block("h1", title),
        Block(
            "text",
            f"Generated {stamp}. {planned} ({len(df) - finished} trials in the table "
            f"unfinished); datasets: "
            f"{', '.join(dataset_names(df))}."
            + (f" Code: git {', '.join(commits)}." if commits else ""),
        ),
        *_intro_blocks(intro),
    ]
    if len(missing):
        blocks.append(
            Block(
                "text",
                f"**Partial sweep:** {len(missing)} trial(s) have not finished — "
                "see *Missing* at the end. The statistics below use the finished trials.",
            )
        )
    return blocks


def headline_section(
    df: pd.DataFrame,
    headline: pd.DataFrame,
    decided: dict[str, DatasetDecision],
    split: str = "dev",
) -> list[Block]:
    """The answer first: per dataset the verdict and the selected configuration against
    vanilla, then the warnings that say when not to trust it."""
    blocks = [
        Block("h2", "Headline"),
        Block(
            "text",
            "Per dataset, the configuration selected by the rule below against vanilla "
            f"({split} split, the dataset's primary metric). Δ > 0 and std ratio < 1 are the "
            "papers' claim: higher mean, smaller variance.",
        ),
        Block("table", headline),
    ]
    blocks += [Block("text", "**Verdict.** " + verdict_line(dd)) for dd in decided.values()]
    undecided = [d for d in dataset_names(df) if d not in decided]
    if undecided:
        blocks.append(
            Block(
                "text",
                f"**No verdict** for {', '.join(undecided)}: no finished vanilla run, and "
                "every comparison is against vanilla, paired by seed.",
            )
        )
    blocks += [Block("text", w) for w in trust_warnings(df)]
    return blocks


def trust_warnings(df: pd.DataFrame) -> list[str]:
    """The warnings that say when not to trust a verdict (diverged seeds, a dataset
    predicted as one class): in the report's headline and in the terminal."""
    return [w for w in (diverged_warning(df), one_class_warning(df)) if w]


def _levels(
    decided: Mapping[str, DatasetDecision], settings: DecisionSettings, metrics: set[str]
) -> str:
    """α, the equivalence margin and any minimum gain as each dataset was decided: one
    clause when every dataset shares them, else one per dataset (a report over runs whose
    specs set them differently)."""

    def terms(alpha: float, margin: str, gain: float) -> str:
        return f"α = {alpha:g}; equivalence margin {margin}" + (
            f"; minimum gain {gain:g}" if gain else ""
        )

    per = {
        dataset: terms(dd.decision.alpha, f"{dd.decision.metric} ±{dd.decision.margin:g}",
                       settings.of(dataset).min_gain)
        for dataset, dd in decided.items()
    }  # fmt: skip
    if not per:
        margins = ", ".join(f"{m} ±{settings.margin_for(m):g}" for m in sorted(metrics))
        return terms(settings.alpha, margins or "—", settings.min_gain)
    if len(set(per.values())) == 1:
        return next(iter(per.values()))
    return "per dataset: " + "; ".join(f"{d}: {t}" for d, t in per.items())


def decision_section(
    selection: pd.DataFrame,
    decision_table: pd.DataFrame,
    decided: dict[str, DatasetDecision],
    settings: DecisionSettings,
    metrics: set[str],
    raced: bool,
) -> list[Block]:
    """How the choice was made: the rule, what it chose, every configuration's tests and
    power, and the chosen one's check on the test split."""
    blocks = [
        Block("h2", "Decision: strategy, K and λ"),
        Block(
            "text",
            f"**Rule.** {rule(settings.split)} {_levels(decided, settings, metrics)}. "
            "Written to `selection.yaml`.",
        ),
    ]
    if settings.split != "dev":
        blocks.append(
            Block(
                "text",
                f"**Split.** The spec decides on the `{settings.split}` split "
                "(`decision.split`), not on dev: every verdict, pick and table of this "
                f"section reads `{settings.split}`.",
            )
        )
    if raced:
        blocks.append(Block("text", RACE_NOTE))
    blocks += [
        Block("table", selection_view(selection)),
        Block("h3", "Every configuration against vanilla, with power"),
        Block(
            "text",
            f"The {settings.split} split, paired by seed. *detectable Δ*: the smallest |Δ| "
            "the paired t-test would find with 80 % power at this n (at α/m, Holm's first "
            "step); *seeds to resolve*: the seeds that would settle the observed Δ at its "
            "observed spread, as better/worse or as equivalent. A status is from the "
            "tests, never from the point estimate.",
        ),
    ]
    if len(decision_table):
        blocks.append(Block("table", decision_table))
    confirmations = confirmation_view(decided, settings.split)
    if not confirmations.empty:
        blocks += [
            Block("h3", "Checks of the choice: the same seeds' models on test, and fresh seeds"),
            Block(
                "text",
                f"The configuration was selected on {settings.split}, so its "
                f"{settings.split} Δ is biased upwards. The paired Δ on the test split "
                "re-scores the same seeds' models on rows that played no part in the "
                "selection: it removes the bias of the rows, not of the seeds — a lucky "
                "seed helps on both splits. Fresh seeds (`confirm: {seeds: N}`: the chosen "
                "configuration and vanilla trained again on seeds the selection never "
                "used, scored on test where the data has it) are the independent check: "
                "confirmed when their paired interval is above 0, contradicted when below.",
            ),
            Block("table", confirmations),
        ]
    return blocks


def _figure_blocks(
    df: pd.DataFrame,
    dataset: str,
    metric: str,
    selection: pd.DataFrame,
    histories: pd.DataFrame | None,
) -> list[Block]:
    """A dataset's figures, and a line for each figure its grid gives nothing to draw."""
    blocks = [Block("h3", "Figures")]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset)
    figures = [
        ("seeds", plot_seeds(df, dataset, metric)),
        ("k", plot_k(df, dataset, metric)),
        ("lambda", plot_lambda(df, dataset, metric)),
    ]
    curves = histories is not None and not histories.empty
    if curves:
        best = selection[selection["dataset"] == dataset]
        configs = best[best["scope"] != "best"].to_dict("records")
        figures.append(
            ("curves", plot_learning_curves(histories, dataset, metric, configs=configs))
        )
    for name, fig in figures:
        if fig is not None:
            blocks.append(Block("figure", fig, name=f"{safe}-{name}"))
        elif name == "lambda":
            blocks.append(
                Block(
                    "text",
                    "No λ plot: no numeric knob (distill λ, noise λ, …) takes more than one "
                    "value on this dataset.",
                )
            )
        elif name == "k":
            blocks.append(
                Block(
                    "text",
                    "No K plot: no strategy with a teacher or averaging window on this dataset.",
                )
            )
    if curves:
        blocks.append(
            Block(
                "text",
                "Learning curves: each strategy's selected K and λ (the per-strategy rows "
                "of the selection).",
            )
        )
    return blocks


def dataset_section(
    df: pd.DataFrame,
    dataset: str,
    metric: str,
    stats: pd.DataFrame,
    comparison: pd.DataFrame,
    selection: pd.DataFrame,
    histories: pd.DataFrame | None,
    plots: bool,
) -> list[Block]:
    """One dataset in detail: seed statistics per split, the paired comparison with
    vanilla (on dev, and on each extra evaluation split: a cross-lingual test set per
    language) and (``plots``) its figures."""
    blocks = [Block("h2", f"Dataset {dataset} (primary metric: {metric})")]
    rows = df[df["dataset"] == dataset]
    splits = splits_of(rows)
    for split in splits:
        part = stats[
            (stats["dataset"] == dataset) & (stats["metric"] == metric) & (stats["split"] == split)
        ]
        if part.empty:
            continue
        blocks += [
            Block("h3", f"Seed statistics, {split} {metric}"),
            Block(
                "text",
                "`[averaged]`: SE's averaged model / SDA's teacher of the same run. "
                "All metrics, splits and models are in `summary.csv`.",
            ),
            Block("table", stats_view(part)),
        ]
    extras = [s for s in splits if s not in ("dev", "test")]
    compared = {"dev": comparison, **{s: compare_to_vanilla(rows, split=s) for s in extras}}
    for split, table in compared.items():
        cmp = table[table["dataset"] == dataset]
        blocks.append(Block("h3", f"Against vanilla, paired by seed ({split} {metric})"))
        if cmp.empty:
            blocks.append(
                Block(
                    "text",
                    "No vanilla run (or no other configuration) on this dataset: nothing to "
                    "compare.",
                )
            )
        else:
            blocks.append(Block("table", compare_view(cmp)))
    if plots:
        blocks += _figure_blocks(df, dataset, metric, selection, histories)
    return blocks


def curves_section(df: pd.DataFrame, table: pd.DataFrame, plots: bool) -> list[Block]:
    """Each learning curve over training-set size: Δ against vanilla and the std ratio,
    size by size, in a table and (``plots``) a figure."""
    blocks: list[Block] = []
    for curve in curves(df):
        part = table[table["curve"] == curve]
        metric = (f"{part['split'].iloc[0]} {part['metric'].iloc[0]}" if len(part)
                  else "the primary metric")  # fmt: skip
        blocks += [
            Block("h2", f"Learning curve {curve}: against vanilla by training-set size"),
            Block(
                "text",
                f"Each size is a dataset of its own above, with its own verdict; the "
                f"smaller training subsets lie inside the larger ones, and held-out test "
                f"rows are the same for every size. Δ is paired by seed, on {metric}; "
                "a std ratio below 1 is steadier than vanilla. The NoisyTune paper's claim "
                "is that its gain grows as the training set shrinks: read each "
                "configuration's Δ from the largest size up.",
            ),
        ]
        if part.empty:
            blocks.append(Block("text", "No size of this curve has vanilla and another "
                                        "configuration to compare yet."))  # fmt: skip
            continue
        blocks.append(Block("table", curve_view(part)))
        fig = plot_size_curve(table, curve) if plots else None
        if fig is not None:
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in curve)
            blocks.append(Block("figure", fig, name=f"{safe}-sizes"))
    return blocks


def ensembles_section(
    ensembles: pd.DataFrame | None, df: pd.DataFrame, metric_of: Mapping[str, str]
) -> list[Block]:
    """The seed ensembles built so far against their members, or how to build them."""
    ens = ensemble_summary(ensembles, df, metric_of) if ensembles is not None else None
    blocks = [Block("h2", "Seed ensembles (VOTE, AVG)")]
    if ens is None or ens.empty:
        blocks.append(
            Block(
                "text",
                "None built yet: run `steadytune ensemble RUN_DIR` (VOTE needs the "
                "trials' logits; AVG needs `save_model: true`).",
            )
        )
        return blocks
    return [
        *blocks,
        Block(
            "text",
            "VOTE: sum of the members' softmax probabilities; AVG: the mean of the "
            "members' weights, evaluated once. *members* is the mean single-model score "
            "of the same seeds; *gain* = ensemble − members.",
        ),
        Block("table", ensemble_view(ens)),
    ]


def missing_section(
    stats: pd.DataFrame,
    missing: pd.DataFrame,
    raced: set[str],
    histories: pd.DataFrame | None,
) -> list[Block]:
    """What the statistics lack: unfinished trials, configurations short of seeds (a
    raced dataset's are short by design and not listed), trials without a history."""
    blocks = [Block("h2", "Missing")]
    incomplete = incomplete_view(stats, raced)
    if missing.empty and incomplete.empty:
        blocks.append(
            Block(
                "text",
                "Nothing: every planned trial finished and every configuration has "
                "every seed of its dataset"
                + (" (of a raced dataset: every seed the race gave it)." if raced else "."),
            )
        )
    if len(missing):
        blocks += [
            Block("text", f"{len(missing)} trial(s) have no finished result:"),
            Block("table", missing.fillna("—")),
        ]
    if len(incomplete):
        blocks += [
            Block(
                "text",
                "Configurations lacking seeds that other configurations of the "
                "dataset have (their comparisons use the seeds both sides have):",
            ),
            Block("table", incomplete),
        ]
    if histories is not None and histories.attrs.get("missing"):
        blocks.append(
            Block(
                "text",
                "No `result.json` found (no learning curve) for: "
                + ", ".join(map(str, histories.attrs["missing"])),
            )
        )
    return blocks


def cost_section(df: pd.DataFrame) -> list[Block]:
    """What the sweep cost, per configuration; nothing when no runtime was recorded."""
    cost = cost_table(df)
    if cost.empty:
        return []
    total_h = cost["total_min"].sum() / 60
    return [
        Block("h2", "Cost"),
        Block(
            "text",
            f"{int(cost['trials'].sum())} finished trials ran for {total_h:.2f} h in all "
            "(summed trial runtimes as Ray measured them: data, model, training, "
            "evaluation, checkpoints; concurrent trials overlap in wall time).",
        ),
        Block("table", cost_view(cost)),
    ]


def statistics_section() -> list[Block]:
    """The methods, so a reader can check what every number is."""
    return [Block("h2", "Statistics used"), Block("text", STATISTICS)]
