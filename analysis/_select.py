"""Per dataset: the verdict, the configuration to use, and each strategy's K and λ.

The tidy results table becomes the decision's candidates (``analysis._decide``), one per
model of a configuration; the rule is there. Pure; no file I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis._decide import (
    DEFAULT_MARGINS,
    Candidate,
    Decision,
    DecisionSettings,
    count_flags,
    decide,
)
from analysis._load import dataset_names, long_metrics
from analysis._names import check_metric_choice
from analysis._tables import config_label, primary_metrics, t_interval
from trainer import strategies
from trainer.knobs import ordered_keys, parse_label
from trainer.strategies import HEADLINE, STRATEGIES, student_is_plain


def rule(split: str = "dev") -> str:
    """The decision rule in words, for the split the verdicts are decided on."""
    confirm = (
        "The verdict is decided on the test split itself: no rows are left to confirm a choice on."
        if split == "test"
        else "Where the data has a test split, a chosen configuration is checked on it "
        "against vanilla (paired by seed, its 1 − alpha interval): confirmed when the "
        f"interval is above 0, contradicted when below, else not confirmed — a {split} gain "
        "the held-out rows do not show may be the selection's own bias."
    ) + (
        " With `confirm: {seeds: N}` the chosen configuration and vanilla are trained "
        "again on N seeds the selection never used and the same check is made on those "
        "alone (on test where the data has it): the one check that shares no seed's luck "
        "with the choice."
    )
    return (
        f"The {split} split, the dataset's primary metric, each configuration paired with "
        "vanilla by seed. " + _RULE_BODY + " " + confirm
    )


_RULE_BODY = (
    "A configuration is better (worse) when the paired t-test, Holm-corrected over "
    "the dataset's configurations, rejects at alpha with Δ > 0 (< 0) — better by more "
    "than the minimum gain where the spec sets one (decision.min_gain) — and equivalent "
    "when the paired TOST against ±margin rejects at alpha; seeds whose differences are "
    "all equal (a tie on a discrete metric) are tested by the exact sign-flip test, "
    "whose p is never below 2^(1−n). Verdict: better if any "
    "configuration is better; equivalent if every configuration that is not worse is "
    "equivalent; else unresolved. Vanilla is chosen unless the verdict is better. Among "
    "equally good configurations (the leader by mean Δ and those shown equivalent to it "
    "by the paired TOST) one with a significantly smaller std than vanilla "
    "(Brown–Forsythe, Holm) comes first, then the cheaper one (vanilla < SE < SDA, small "
    "K first < SDV; NoisyTune after the same strategy without it; the smaller λ), then "
    "the higher mean. Each strategy's K and λ are picked by the same rule within the "
    "strategy, and the overall choice is one of those picks."
)
RULE = rule()

CONFIRMED, NOT_CONFIRMED, CONTRADICTED = "confirmed", "not confirmed", "contradicted"

SELECTION_COLUMNS = (
    "dataset",
    "scope",
    "strategy",
    "model",
    "settings",
    "metric",
    "n",
    "mean",
    "std",
    "sem",
    "label",
    "status",
    "verdict",
)


def _none(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def candidate_id(row: Mapping[str, Any]) -> str:
    """``<configuration key>:<model>``; the configuration key is the grid's (the trial key
    without the seed, recorded in ``results.parquet``), so the race and the report name a
    candidate alike."""
    return f"{row['config_key']}:{row.get('model', 'student')}"


def seed_flags(df: pd.DataFrame) -> dict[str, str]:
    """Trial key -> ``diverged`` / ``one class`` for the seeds the verdict must show."""
    out: dict[str, str] = {}
    if "key" not in df:
        return out
    if "one_class_on_dev" in df:
        for key in df.loc[df["one_class_on_dev"].fillna(False).astype(bool), "key"]:
            out[str(key)] = "one class"
    if "diverged" in df:
        for key in df.loc[df["diverged"].fillna(False).astype(bool), "key"]:
            out[str(key)] = "diverged"
    return out


@dataclass
class DatasetDecision:
    """A dataset's :class:`Decision`, what its candidate ids mean, and the test check."""

    dataset: str
    decision: Decision
    info: dict[str, dict[str, Any]]  # candidate id -> config columns, model, label
    confirmation: dict[str, Any] | None = None  # the chosen one on test, paired
    race: Any = None  # sweeps.race.DatasetRace of a raced dataset
    fresh: dict[str, Any] | None = None  # the chosen one on fresh seeds (fresh_confirmation)

    def config_label(self, config: str) -> str:
        """The label of a configuration (any of its models' labels, without the model)."""
        for cid, info in self.info.items():
            if cid.rsplit(":", 1)[0] == config:
                return config_label({**info, "model": "student"})
        return config


def dataset_candidates(
    long: pd.DataFrame, dataset: str, metric: str, split: str = "dev",
    flags: Mapping[str, str] | None = None,
) -> tuple[list[Candidate], dict[str, dict[str, Any]]]:  # fmt: skip
    """The candidates of one dataset from :func:`analysis.long_metrics` rows.

    SE's student *is* the run without SE (same seed, same steps), so SE competes as its
    averaged model only. A configuration run twice on a seed (an Optuna λ proposed
    again) counts once, with the mean of its runs.
    """
    part = long[(long["dataset"] == dataset) & (long["split"] == split)
                & (long["metric"] == metric)]  # fmt: skip
    plain_student = (part["model"] == "student") & part["strategy"].map(student_is_plain)
    part = part[~plain_student]
    flags = flags or {}
    by_id: dict[str, dict[str, Any]] = {}
    values: dict[str, dict[int, list[float]]] = {}
    seed_flags: dict[str, dict[int, str]] = {}
    for r in part.to_dict("records"):
        if r["strategy"] == "vanilla" and r["model"] != "student":
            continue
        cid = candidate_id(r)
        if cid not in by_id:
            # settings: two lrs, or SDA's two teachers, are two configurations
            info = {c: _none(r.get(c)) for c in ("dataset", "strategy", "settings", "model")}
            info["knobs"] = {k: _none(r.get(k, v)) for k, v in parse_label(r["settings"])}
            info["label"] = config_label(info)
            by_id[cid] = info
        values.setdefault(cid, {}).setdefault(int(r["seed"]), []).append(float(r["value"]))
        if str(r.get("key")) in flags:
            seed_flags.setdefault(cid, {})[int(r["seed"])] = flags[str(r.get("key"))]
    out = []
    for cid, info in by_id.items():
        out.append(
            Candidate(
                id=cid,
                label=info["label"],
                group=info["strategy"],
                values={s: sum(v) / len(v) for s, v in sorted(values[cid].items())},
                cost=strategies.cost_rank(info["strategy"], info["knobs"], info["model"]),
                is_vanilla=info["strategy"] == "vanilla",
                flags=seed_flags.get(cid, {}),
            )
        )
    return out, by_id


def _confirmation(long: pd.DataFrame, dataset: str, metric: str, chosen: str,
                  vanilla: str, confidence: float) -> dict[str, Any] | None:  # fmt: skip
    """The chosen candidate against vanilla on the test split, paired by seed, and the
    outcome: whether rows that played no part in choosing it show its gain too."""
    cands, _ = dataset_candidates(long, dataset, metric, split="test")
    by_id = {c.id: c for c in cands}
    if chosen not in by_id or vanilla not in by_id:
        return None
    x, y = by_id[chosen].values, by_id[vanilla].values
    common = sorted(set(x) & set(y))
    if not common:
        return None
    return confirmation_of([x[s] - y[s] for s in common], confidence)


def fresh_confirmation(
    fresh: pd.DataFrame, dataset: str, metric: str, chosen: str, vanilla: str,
    confidence: float, used: set[int], split: str = "dev",
) -> dict[str, Any] | None:  # fmt: skip
    """The chosen candidate against vanilla on fresh seeds (``fresh``: the long metrics
    of the confirmation trials, ``sweeps.confirm``), paired by seed; None until two
    fresh seeds of both have finished.

    The outcome is taken on the test split where the trials score one (rows and seeds
    both new to the choice), else on the selection's ``split`` (new seeds, the same
    rows); the selection split's Δ is given beside it. A seed the selection used
    (``used``: a grid grown since the confirmation ran) is no fresh seed and is left out.
    """

    def differences(on: str) -> dict[int, float]:
        cands, _ = dataset_candidates(fresh, dataset, metric, split=on)
        by_id = {c.id: c.values for c in cands}
        if chosen not in by_id or vanilla not in by_id:
            return {}
        x, y = by_id[chosen], by_id[vanilla]
        return {s: x[s] - y[s] for s in sorted(set(x) & set(y) - used)}

    on_test = differences("test") if split != "test" else {}
    outcome_split = "test" if on_test else split
    diffs = on_test if outcome_split == "test" else differences(split)
    if len(diffs) < 2:
        return None
    out = {**confirmation_of(list(diffs.values()), confidence), "split": outcome_split,
           "seeds": list(diffs)}  # fmt: skip
    if outcome_split != split:
        beside = differences(split)
        out[f"{split}_delta"] = sum(beside.values()) / len(beside) if beside else math.nan
    return out


def confirmation_of(differences: list[float], confidence: float) -> dict[str, Any]:
    """The paired test-split Δ of a chosen configuration, its interval, and the outcome:
    confirmed only when the whole interval is above 0. A false "confirmed" for a
    configuration with no gain has chance (1 − confidence) / 2 only when the differences
    are independent of the choice (fresh seeds); the same seeds' models carry the luck
    they were chosen for (``bench/confirm.py`` measures how much)."""
    low, high = t_interval(differences, confidence)
    outcome = CONFIRMED if low > 0 else CONTRADICTED if high < 0 else NOT_CONFIRMED
    return {"n": len(differences), "delta": sum(differences) / len(differences),
            "ci_low": low, "ci_high": high, "confidence": confidence,
            "outcome": outcome}  # fmt: skip


def decisions(
    df: pd.DataFrame,
    *,
    metric: str | dict[str, str] | None = None,
    settings: DecisionSettings | None = None,
    races: Mapping[str, Any] | None = None,
) -> dict[str, DatasetDecision]:
    """The decision of every dataset that has a vanilla run.

    ``races`` maps a raced dataset to its ``sweeps.race.DatasetRace``: its decision is
    the race's last look (taken at that look's group-sequential level), not a fresh test
    at α — testing again at α after the race chose when to stop would inflate the error.

    ``metric`` is one metric for every dataset or a dict from dataset to metric (default:
    each dataset's primary metric); a dataset or metric not in ``df`` raises ValueError.
    """
    check_metric_choice(df, metric)
    settings = settings or DecisionSettings()
    long = long_metrics(df)
    fresh = long_metrics(df, confirmation=True)
    flags = seed_flags(df)
    primaries = primary_metrics(df)
    out: dict[str, DatasetDecision] = {}
    for dataset in dataset_names(long):
        m = metric.get(dataset) if isinstance(metric, dict) else metric
        m = m or primaries.get(dataset, "accuracy")
        cands, info = dataset_candidates(long, dataset, m, split=settings.split, flags=flags)
        if not any(c.is_vanilla for c in cands):
            continue
        race = (races or {}).get(dataset)
        if race is not None and race.decision is not None:
            decision = race.decision
            # the race replays from results rows; the report also reads the logits
            decision.flags = count_flags(cands)
        else:
            decision = decide(cands, metric=m, settings=settings.of(dataset))
        vanilla = next(c.id for c in cands if c.is_vanilla)
        confirmation = None
        confidence = 1 - settings.of(dataset).alpha
        if decision.chosen != vanilla and settings.split != "test":  # nothing to confirm on
            confirmation = _confirmation(long, dataset, m, decision.chosen, vanilla,
                                         confidence)  # fmt: skip
        on_fresh = None
        if decision.chosen != vanilla and len(fresh):
            used = {s for c in cands for s in c.values}
            on_fresh = fresh_confirmation(fresh, dataset, m, decision.chosen, vanilla,
                                          confidence, used, settings.split)  # fmt: skip
        out[dataset] = DatasetDecision(dataset, decision, info, confirmation, race, on_fresh)
    return out


def _stats(values: list[float]) -> tuple[float, float, float]:
    import numpy as np

    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    std = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return float(v.mean()), std, std / math.sqrt(len(v)) if len(v) > 1 else math.nan


def select(
    df: pd.DataFrame,
    *,
    metric: str | dict[str, str] | None = None,
    settings: DecisionSettings | None = None,
    decided: Mapping[str, DatasetDecision] | None = None,
) -> pd.DataFrame:
    """The configuration to use per dataset, and the K and λ to use per strategy.

    Per dataset one row with ``scope == "best"`` (the chosen configuration: vanilla
    unless the verdict is ``better``) and one row per strategy (its pick), each with
    ``n``, ``mean``, ``std``, ``sem`` on the decision's split (dev unless
    ``settings.split`` says otherwise), its ``status`` against vanilla and the
    dataset's ``verdict``. The rule is :data:`RULE`. A ``metric`` (dataset or metric of a
    dict) not in ``df`` raises ValueError, as in :func:`decisions`.
    """
    check_metric_choice(df, metric)
    settings = settings or DecisionSettings()
    decided = decided if decided is not None else decisions(df, metric=metric, settings=settings)
    long = long_metrics(df)
    rows = []
    for dataset, dd in decided.items():
        d = dd.decision
        part = long[(long["dataset"] == dataset) & (long["split"] == settings.split)
                    & (long["metric"] == d.metric)]  # fmt: skip
        values: dict[str, list[float]] = {}
        for r in part.to_dict("records"):
            values.setdefault(candidate_id(r), []).append(float(r["value"]))
        statuses = {a.id: a.status for a in d.assessments}
        scopes = [("best", d.chosen), *sorted(d.picks.items(), key=lambda kv: _order(kv[0]))]
        for scope, cid in scopes:
            info = dd.info[cid]
            mean, std, sem = _stats(values.get(cid, []))
            rows.append({
                "dataset": dataset, "scope": scope, "strategy": info["strategy"],
                "model": info["model"], "settings": info["settings"], **info["knobs"],
                "metric": d.metric, "n": len(values.get(cid, [])), "mean": mean, "std": std,
                "sem": sem, "label": info["label"],
                "status": "reference" if info["strategy"] == "vanilla" else statuses[cid],
                "verdict": d.verdict,
            })  # fmt: skip
    knobs = ordered_keys({k for r in rows for k in r} - set(SELECTION_COLUMNS), HEADLINE)
    at = SELECTION_COLUMNS.index("settings") + 1
    return pd.DataFrame(rows, columns=[*SELECTION_COLUMNS[:at], *knobs, *SELECTION_COLUMNS[at:]])


def _order(strategy: str) -> int:
    return STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES)


def _plain(v: object) -> object:
    v = _none(v)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    if isinstance(v, float):
        # six significant digits: a learning rate of 1.5e-6 stays 1.5e-6, not 2e-06
        return float(f"{v:.6g}") if math.isfinite(v) else None
    return v


def selection_dict(
    selection: pd.DataFrame,
    decided: Mapping[str, DatasetDecision] | None = None,
    settings: DecisionSettings | None = None,
) -> dict:
    """``selection.yaml``'s content: the rule and settings, then per dataset the verdict,
    the chosen configuration (``best``), each strategy's pick, and the test check."""
    settings = settings or DecisionSettings()
    margins = {m: settings.margin_for(m) for m in DEFAULT_MARGINS}
    out: dict = {
        "rule": rule(settings.split),
        "split": settings.split,
        "decision": {"alpha": settings.alpha, "margin": margins},
        "datasets": {},
    }
    for r in selection.to_dict("records"):
        entry = {
            "strategy": r["strategy"],
            "model": r["model"],
            # the configuration's knobs by dotted key, as a trainer config's --set takes them
            "settings": {k: _plain(r[k]) for k, _ in parse_label(r["settings"] or "")},
            "metric": r["metric"],
            "status": r["status"],
            "mean": _plain(r["mean"]),
            "std": _plain(r["std"]),
            "n": int(r["n"]),
            "summary": f"{r['mean']:.4f} ± {r['std']:.4f} (n={int(r['n'])})",
        }
        ds = out["datasets"].setdefault(
            r["dataset"], {"verdict": r["verdict"], "best": None, "per_strategy": {}}
        )
        if r["scope"] == "best":
            ds["best"] = entry
        else:
            ds["per_strategy"][r["scope"]] = entry
    for dataset, dd in (decided or {}).items():
        if dataset not in out["datasets"]:
            continue
        d = dd.decision
        ds = out["datasets"][dataset]
        ds["reason"] = d.reason
        ds["alpha"] = d.alpha
        ds["margin"] = d.margin
        if settings.of(dataset).min_gain:
            ds["min_gain"] = settings.of(dataset).min_gain
        if d.verdict == "unresolved" and d.contender:
            ds["contender"] = dd.info[d.contender]["label"]
            ds["seeds_to_resolve"] = (
                int(d.seeds_to_resolve) if math.isfinite(d.seeds_to_resolve) else None
            )
        if d.flags:
            ds["flagged_seeds"] = dict(d.flags)
        # failed (collapsed or diverged) seeds of the chosen configuration or the
        # contender, and of vanilla, with the upper bound on each rate
        shown = d.chosen if d.verdict == "better" else d.contender
        counted = [(a.label, a.failures) for a in d.assessments if a.id == shown]
        ds["failed_seeds"] = {
            label: {"failed": f.failed, "seeds": f.seeds, "rate_upper": _plain(f.upper)}
            for label, f in [*counted, ("vanilla", d.vanilla_failures)] if f is not None
        }  # fmt: skip
        if settings.of(dataset).max_failure_rate is not None:
            ds["max_failure_rate"] = settings.of(dataset).max_failure_rate
        if dd.confirmation:
            c = dd.confirmation
            ds["test_confirmation"] = {
                "delta": _plain(c["delta"]), "ci_low": _plain(c["ci_low"]),
                "ci_high": _plain(c["ci_high"]), "n": c["n"], "outcome": c["outcome"],
            }  # fmt: skip
        if dd.fresh:
            c = dd.fresh
            ds["fresh_confirmation"] = {
                "split": c["split"], "seeds": [int(x) for x in c["seeds"]],
                "delta": _plain(c["delta"]), "ci_low": _plain(c["ci_low"]),
                "ci_high": _plain(c["ci_high"]), "n": c["n"], "outcome": c["outcome"],
            }  # fmt: skip
        if dd.race is not None:
            ds["race"] = {
                "ended": dd.race.ended,
                "seeds": {dd.config_label(c): n for c, (n, _) in dd.race.stopped.items()},
            }
    return out
