"""The seed race against the fixed grid, on simulated seeds with a known truth.

What it measures. A sweep either runs every configuration on all ``max`` seeds and
decides once at α (the *grid*: ``analysis._decide.decide`` on all seeds), or races them
(``sweeps.race.race_dataset``: ``start`` seeds, then ``step`` more to the survivors, a
group-sequential level per look, eliminations behind the leader). Both are the project's
own code, called as a sweep calls them; this script only draws the scores. Per scenario,
``--reps`` simulated sweeps (the same draws for both procedures, so their rates are
paired) give: the trials each used, how often each reached the right verdict, how often
each claimed ``better`` for a configuration that is not, the verdicts, the seeds per
configuration of the race and how often it ran to ``max`` seeds.

The draws. Each configuration c has a true mean μ_c and a true seed std σ_c; the scores
of one seed share its data order and head initialisation, so configurations are
correlated on a seed (ρ, ``--rho``)::

    score[c][s] = μ_c + σ_c · (√ρ · z_s + √(1 − ρ) · z_cs),   z ~ N(0, 1) independent

and with probability ``--fail-rate`` per (configuration, seed) a run collapses to the
majority-class score (0.5 accuracy on a balanced binary task, MCC 0), the real failure
mode of fine-tuning on small data (such a seed carries the ``one class`` flag); a
scenario may give one configuration a rate of its own (``hidden-tail``), a correlation
of its own (``uncorrelated``) or a grid of values (``ties``). The
default, 1 %, is "occasional": the study of docs/results-v1.md saw no collapsed seed in
its ~90 trials of healthy regimes (SST-2, CoLA at 5 epochs) and all 50 collapsed in a
regime that did not train (CoLA at 3 epochs), a failure of the setting rather than of
seeds. docs/benchmarks.md also gives the table at 0 % and 3 %: a single collapsed seed
makes a paired t-test on 5–15 seeds powerless, for the grid as for the race.

The scenarios (seed stds from docs/results-v1.md: 0.5–1.4 accuracy points):

* ``null``: five configurations, all 0.80 ± 0.010.
* ``clearly-better``: SDA K=2 +0.030 (3 seed stds), the rest equal to vanilla.
* ``one-worse``: SDV K=3 −0.050, the rest equal.
* ``observed-sst2``: the nine SST-2 configurations of docs/results-v1.md, their means and
  stds as the truth.
* ``observed-cola``: the nine CoLA (5 epochs) configurations of docs/results-v1.md, MCC
  (margin 0.02).
* ``small-margin``: SDA K=2 +0.010 at 0.012 seed std: an effect the size of the margin,
  which only more seeds resolve.
* ``ties``: the null on a discrete metric — accuracy on RTE's 277 dev pairs, scores in
  steps of 1/277, 0.65 ± 0.015 — raced from 2 seeds: equal paired differences happen.
* ``hidden-tail``: ten configurations; c1 is +0.015 when healthy but collapses one run in
  eight, so its true mean is 0.021 below vanilla's; on 3–15 seeds it is often seen only
  healthy. Run it with ``--max-failure-rate`` too (docs/analysis.md).
* ``uncorrelated``: clearly-better with ρ = 0 (re-init's seeds share nothing with
  vanilla's: docs/results-v1.md), so pairing gains nothing.
* ``many-near-equal``: ten configurations, nine within ±0.005 of vanilla: many chances
  for one to look better.

The right verdict (:func:`right_outcome`), with Δ_c = μ_c − μ_vanilla (the means of runs
that do not fail; failures hit every configuration alike) and δ the margin (0.01
accuracy, 0.02 MCC):

Where a configuration collapses more often than vanilla, its Δ_c is of expected scores,
collapses included.

* some Δ_c ≥ δ: the right outcome is ``better`` with a chosen configuration c of
  Δ_c ≥ max Δ − δ/2 and Δ_c > 0 (one as good as the best, within half a margin);
* otherwise (every Δ_c < δ: within the margin, or worse): ``equivalent`` (vanilla kept).

``unresolved`` is never right. A *false better* is a ``better`` verdict whose chosen
configuration has Δ ≤ 0 (in ``null``: any ``better``).

Stdout gets one JSON line per scenario and a summary line (``bench: summary``) with the
targets: false-better rate ≤ 0.05 for the race and the grid in ``null`` and in every
scenario; power loss (the largest grid-minus-race right rate over the scenarios where
something is better) ≤ 0.03, with the same difference where the right answer is
``equivalent`` reported beside it; no simulated race more trials than its grid; trials
ratio ≤ 0.5 in ``clearly-better``. A table goes to stderr.

    .venv/bin/python bench/race.py > /tmp/race.jsonl
    .venv/bin/python bench/race.py --quick --scenario null --scenario small-margin --start 5

Most of the time goes to the race's ~6.5 decisions per sweep; drawing the scores costs
nothing in comparison (docs/benchmarks.md has the wall time of the default run).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # one BLAS thread per process (the workers inherit it): two
    # processes whose OpenBLAS threads spin on 2 cores run each sweep 2-3x slower
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, when imported by path

from _common import emit, machine, usable_cores

from analysis._decide import Candidate, DecisionSettings, decide
from sweeps.race import ELIMINATED, config_of, race_dataset, schedule

EPS = 1e-9  # truths are differences of decimal means: 0.82 − 0.81 ≥ 0.01 must hold
CHUNK = 25  # simulated sweeps per task of a worker
VERDICTS = ("better", "equivalent", "unresolved")


# -- scenarios ---------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """One configuration's truth: its strategy (the decision's group), mean and seed std,
    and its own collapse rate (None: ``--fail-rate``, the same for every configuration)."""

    name: str
    group: str
    mean: float
    sd: float
    fail: float | None = None


@dataclass(frozen=True)
class Scenario:
    """Configurations cheapest first (vanilla first: the race's reference)."""

    name: str
    description: str
    metric: str
    configs: tuple[Config, ...]
    collapse: float  # the score of a failed seed (majority class)
    rho: float | None = None  # the seed correlation (None: ``--rho``)
    quantum: float | None = None  # scores on this grid (1/277: RTE's dev accuracy)
    start: int | None = None  # the race's first round (None: ``--start``)

    @property
    def vanilla(self) -> Config:
        return self.configs[0]

    def deltas(self, fail_rate: float = 0.0) -> dict[str, float]:
        """True Δ of every non-vanilla configuration: of healthy means where it collapses
        as often as vanilla, of expected scores (collapses included) where it does not."""
        van = self.vanilla

        def rate(c: Config) -> float:
            return fail_rate if c.fail is None else c.fail

        def expected(c: Config) -> float:
            return (1 - rate(c)) * c.mean + rate(c) * self.collapse

        return {
            c.name: (c.mean - van.mean if rate(c) == rate(van) else expected(c) - expected(van))
            for c in self.configs[1:]
        }


_FIVE = (("vanilla", "vanilla"), ("noisytune", "noisytune"), ("sda-k1", "sda"),
         ("sda-k2", "sda"), ("sdv-k3", "sdv"))  # fmt: skip


def _five(sd: float, shifts: Mapping[str, float] | None = None, base: float = 0.80):
    shifts = shifts or {}
    return tuple(Config(n, g, base + shifts.get(n, 0.0), sd) for n, g in _FIVE)


# docs/results-v1.md, "Per dataset": mean ± std over 5 seeds, cheapest first (cost_rank order)
_SST2 = (
    Config("vanilla", "vanilla", 0.8112, 0.0046),
    Config("noisytune", "noisytune", 0.8106, 0.0055),
    Config("se", "se", 0.7991, 0.0083),
    Config("sda-k1", "sda", 0.8064, 0.0055),
    Config("noisytune+sda-k1", "noisytune+sda", 0.8021, 0.0100),
    Config("sda-k2", "sda", 0.8069, 0.0062),
    Config("sda-k5", "sda", 0.8096, 0.0067),
    Config("sda-kall", "sda", 0.8135, 0.0052),
    Config("sdv-k3", "sdv", 0.8085, 0.0076),
)
_COLA = (
    Config("vanilla", "vanilla", 0.1065, 0.0206),
    Config("noisytune", "noisytune", 0.1005, 0.0142),
    Config("se", "se", 0.0064, 0.0089),
    Config("sda-k1", "sda", 0.0691, 0.0137),
    Config("noisytune+sda-k1", "noisytune+sda", 0.0756, 0.0247),
    Config("sda-k2", "sda", 0.0744, 0.0277),
    Config("sda-k5", "sda", 0.0703, 0.0214),
    Config("sda-kall", "sda", 0.0627, 0.0331),
    Config("sdv-k3", "sdv", 0.0780, 0.0295),
)


def _ten(shifts: Mapping[str, float], sd: float = 0.010, tail: str = "", base: float = 0.80):
    """Ten configurations (vanilla and nine), ``tail`` collapsing one run in eight."""
    names = ["vanilla"] + [f"c{i}" for i in range(1, 10)]
    return tuple(
        Config(n, "vanilla" if n == "vanilla" else n, base + shifts.get(n, 0.0), sd,
               fail=1 / 8 if n == tail else None)
        for n in names
    )  # fmt: skip


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("null", "all equal: 0.80 ± 0.010", "accuracy", _five(0.010), 0.5),
        Scenario(
            "clearly-better",
            "sda-k2 +0.030 (3 seed stds), the rest equal",
            "accuracy",
            _five(0.010, {"sda-k2": 0.030}),
            0.5,
        ),
        Scenario(
            "one-worse",
            "sdv-k3 −0.050, the rest equal",
            "accuracy",
            _five(0.010, {"sdv-k3": -0.050}),
            0.5,
        ),
        Scenario(
            "observed-sst2", "docs/results-v1.md SST-2 means and stds", "accuracy", _SST2, 0.5
        ),
        Scenario("observed-cola", "docs/results-v1.md CoLA (5 epochs) MCC", "mcc", _COLA, 0.0),
        Scenario(
            "small-margin",
            "sda-k2 +0.010 at 0.012 seed std",
            "accuracy",
            _five(0.012, {"sda-k2": 0.010}),
            0.5,
        ),
        Scenario(
            "ties",
            "all equal, RTE-like: 0.65 ± 0.015 in steps of 1/277, race from 2 seeds",
            "accuracy",
            _five(0.015, base=0.65),
            146 / 277,  # RTE dev's majority class: 146 of its 277 pairs
            quantum=1 / 277,
            start=2,
        ),
        Scenario(
            "hidden-tail",
            "c1 +0.015 when healthy but collapsing 1 run in 8 (true Δ −0.021), 8 equal",
            "accuracy",
            _ten({"c1": 0.015}, tail="c1"),
            0.5,
        ),
        Scenario(
            "uncorrelated",
            "sda-k2 +0.030, the rest equal, seeds uncorrelated across configurations (ρ 0)",
            "accuracy",
            _five(0.010, {"sda-k2": 0.030}),
            0.5,
            rho=0.0,
        ),
        Scenario(
            "many-near-equal",
            "nine configurations within ±0.005 of vanilla (inside the margin)",
            "accuracy",
            _ten({f"c{i}": 0.005 - 0.00125 * (i - 1) for i in range(1, 10)}),
            0.5,
        ),
    )
}


# -- the truth ---------------------------------------------------------------------
def right_outcome(deltas: Mapping[str, float], margin: float) -> tuple[str, frozenset[str]]:
    """The right verdict for true Δs (configuration -> true mean − vanilla's) at ``margin``.

    If some Δ ≥ margin, ``("better", ok)``: a ``better`` verdict is right when its chosen
    configuration is in ``ok``, those with Δ ≥ max Δ − margin/2 and Δ > 0. Otherwise every
    configuration is within the margin or below it and the right verdict is
    ``("equivalent", {})``: vanilla is kept.
    """
    best = max(deltas.values(), default=-math.inf)
    if best >= margin - EPS:
        ok = frozenset(c for c, d in deltas.items() if d >= best - margin / 2 - EPS and d > EPS)
        return "better", ok
    return "equivalent", frozenset()


def is_right(verdict: str, chosen: str, deltas: Mapping[str, float], margin: float) -> bool:
    """Whether a (verdict, chosen configuration) is the right outcome (:func:`right_outcome`)."""
    want, ok = right_outcome(deltas, margin)
    return verdict == want and (want != "better" or chosen in ok)


def is_false_better(verdict: str, chosen: str, deltas: Mapping[str, float]) -> bool:
    """A ``better`` verdict for a configuration that is truly no better than vanilla."""
    return verdict == "better" and deltas.get(chosen, 0.0) <= EPS


# -- one simulated sweep -------------------------------------------------------------
@dataclass(frozen=True)
class Options:
    seed: int = 0
    rho: float = 0.5
    fail_rate: float = 0.01
    start: int = 3
    step: int = 2
    maximum: int = 15
    alpha: float = 0.05
    max_failure_rate: float | None = None
    min_gain: float = 0.0
    budget_trials: int | None = None  # the race's ``race.budget_trials`` (per sweep)

    def settings(self) -> DecisionSettings:
        return DecisionSettings(
            alpha=self.alpha, max_failure_rate=self.max_failure_rate, min_gain=self.min_gain
        )  # margin: the metric's default


def draw(scenario: Scenario, rng: np.random.Generator, opts: Options):
    """(scores, failed): arrays configurations × seeds (:mod:`bench.race` docstring)."""
    n_c, n_s = len(scenario.configs), opts.maximum
    mean = np.array([c.mean for c in scenario.configs])[:, None]
    sd = np.array([c.sd for c in scenario.configs])[:, None]
    rho = opts.rho if scenario.rho is None else scenario.rho
    shared = rng.standard_normal(n_s)[None, :]
    own = rng.standard_normal((n_c, n_s))
    scores = mean + sd * (math.sqrt(rho) * shared + math.sqrt(1 - rho) * own)
    if scenario.quantum:  # a metric over a finite dev set takes a grid of values
        scores = np.round(scores / scenario.quantum) * scenario.quantum
    rates = np.array([opts.fail_rate if c.fail is None else c.fail for c in scenario.configs])
    failed = rng.random((n_c, n_s)) < rates[:, None]
    return np.where(failed, scenario.collapse, scores), failed


def _rng(opts: Options, scenario: Scenario, rep: int) -> np.random.Generator:
    """One stream per (seed, scenario, repetition): results do not depend on --jobs."""
    return np.random.default_rng([opts.seed, zlib.crc32(scenario.name.encode()), rep])


def candidates_from(scenario: Scenario, scores: np.ndarray, failed: np.ndarray):
    """``candidates_at`` for :func:`race_dataset` (and the grid): every value is drawn."""
    index = {c.name: i for i, c in enumerate(scenario.configs)}

    def at(want: Mapping[str, Sequence[int]]) -> list[Candidate]:
        out = []
        for name, seeds in want.items():
            i = index[name]
            c = scenario.configs[i]
            out.append(
                Candidate(
                    id=f"{name}:student",
                    label=name,
                    group=c.group,
                    values={s: float(scores[i, s]) for s in seeds},
                    cost=(i,),
                    is_vanilla=i == 0,
                    flags={s: "one class" for s in seeds if failed[i, s]},
                )
            )
        return out

    return at


def simulate(scenario: Scenario, rep: int, opts: Options) -> dict[str, Any]:
    """One sweep, both ways, on the same draws; the outcome as a small record."""
    scores, failed = draw(scenario, _rng(opts, scenario, rep), opts)
    at = candidates_from(scenario, scores, failed)
    names = [c.name for c in scenario.configs]
    seeds = list(range(opts.maximum))
    settings = opts.settings()
    grid = decide(at({c: seeds for c in names}), metric=scenario.metric, settings=settings,
                  power=False)  # fmt: skip
    race = race_dataset(
        names, scenario.vanilla.name, seeds, at, start=scenario.start or opts.start,
        step=opts.step, maximum=opts.maximum, metric=scenario.metric, settings=settings,
        budget_trials=opts.budget_trials, with_power=False,
    )  # fmt: skip
    decision = race.decision
    return {
        "rep": rep,
        "grid_verdict": grid.verdict,
        "grid_chosen": config_of(grid.chosen),
        "grid_trials": len(names) * opts.maximum,
        "race_verdict": decision.verdict,
        "race_chosen": config_of(decision.chosen),
        "race_trials": sum(n for n, _ in race.stopped.values()),
        "seeds": {c: race.stopped[c][0] for c in names},  # KeyError: a config left out
        "eliminated": sorted(
            c for c, (_, why) in race.stopped.items() if why.startswith(ELIMINATED)
        ),
        "last_n": race.looks[-1].n,
        "looks": len(race.looks),
        "failed_seeds": int(failed.sum()),
    }


def _warm(opts: Options) -> None:
    """The race's group-sequential levels (a few seconds, cached per process)."""
    from analysis._sequential import nominal_levels

    for start in {opts.start, *(s.start for s in SCENARIOS.values() if s.start)}:
        nominal_levels(opts.alpha, schedule(start, opts.step, opts.maximum))


def run_chunk(task: tuple[str, int, int, Options]) -> tuple[str, list[dict[str, Any]]]:
    name, first, stop, opts = task
    scenario = SCENARIOS[name]
    return name, [simulate(scenario, rep, opts) for rep in range(first, stop)]


def run_all(
    names: Sequence[str], reps: int, opts: Options, jobs: int
) -> dict[str, list[dict[str, Any]]]:
    """Every scenario's ``reps`` sweeps, in chunks over ``jobs`` processes (1: here)."""
    tasks = [(n, a, min(a + CHUNK, reps), opts) for a in range(0, reps, CHUNK) for n in names]
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    if jobs <= 1:
        results: Iterable = map(run_chunk, tasks)
        for name, rows in results:
            out[name].extend(rows)
    else:
        import multiprocessing as mp

        # spawn: no fork of a process holding BLAS or torch threads
        with mp.get_context("spawn").Pool(jobs, initializer=_warm, initargs=(opts,)) as pool:
            for name, rows in pool.imap_unordered(run_chunk, tasks):
                out[name].extend(rows)
    for rows in out.values():
        rows.sort(key=lambda r: r["rep"])
    return out


# -- summaries -----------------------------------------------------------------------
def _dist(values: Iterable[str], n: int) -> dict[str, float]:
    counts = Counter(values)
    return {v: counts.get(v, 0) / n for v in VERDICTS}


def scenario_record(scenario: Scenario, rows: Sequence[Mapping[str, Any]], opts: Options):
    """One scenario's JSON line from its simulated sweeps."""
    n = len(rows)
    margin = opts.settings().margin_for(scenario.metric)
    deltas = scenario.deltas(opts.fail_rate)
    want, ok = right_outcome(deltas, margin)
    names = [c.name for c in scenario.configs]
    grid_right = [is_right(r["grid_verdict"], r["grid_chosen"], deltas, margin) for r in rows]
    race_right = [is_right(r["race_verdict"], r["race_chosen"], deltas, margin) for r in rows]
    grid_only = sum(g and not r for g, r in zip(grid_right, race_right, strict=True))
    race_only = sum(r and not g for g, r in zip(grid_right, race_right, strict=True))
    # the paired standard error of grid right − race right (same draws for both)
    loss_se = math.sqrt(max(grid_only + race_only - (grid_only - race_only) ** 2 / n, 0)) / n
    # where the race lost a sweep the grid got right
    lost = Counter()
    for r, g, rr in zip(rows, grid_right, race_right, strict=True):
        if not g or rr:
            continue
        if want == "better" and ok and ok <= set(r["eliminated"]):
            lost["right_config_eliminated"] += 1
        elif r["race_verdict"] == "better":
            lost["better_for_another"] += 1
        elif r["race_verdict"] == "equivalent":
            lost["stopped_equivalent"] += 1
        elif r["last_n"] == opts.maximum:
            lost["unresolved_at_max"] += 1
        else:
            lost["other"] += 1
    grid_trials = float(np.mean([r["grid_trials"] for r in rows]))
    race_trials = float(np.mean([r["race_trials"] for r in rows]))
    return {
        "bench": "race",
        "scenario": scenario.name,
        "description": scenario.description,
        "metric": scenario.metric,
        "margin": margin,
        "configs": names,
        "true_delta": {c: round(d, 6) for c, d in deltas.items()},
        "right_verdict": want,
        "right_chosen": sorted(ok),
        "reps": n,
        "grid_trials": grid_trials,
        "race_trials": race_trials,
        "trials_ratio": race_trials / grid_trials,
        "max_sweep_trials_ratio": max(r["race_trials"] / r["grid_trials"] for r in rows),
        "right_rate_grid": sum(grid_right) / n,
        "right_rate_race": sum(race_right) / n,
        "power_loss": (sum(grid_right) - sum(race_right)) / n,
        "power_loss_se": loss_se,
        "right_grid_only": grid_only,
        "right_race_only": race_only,
        "race_lost": dict(lost),
        "false_better_grid": sum(
            is_false_better(r["grid_verdict"], r["grid_chosen"], deltas) for r in rows
        )
        / n,
        "false_better_race": sum(
            is_false_better(r["race_verdict"], r["race_chosen"], deltas) for r in rows
        )
        / n,
        "verdicts_grid": _dist((r["grid_verdict"] for r in rows), n),
        "verdicts_race": _dist((r["race_verdict"] for r in rows), n),
        "chosen_when_better_grid": dict(
            Counter(r["grid_chosen"] for r in rows if r["grid_verdict"] == "better")
        ),
        "chosen_when_better_race": dict(
            Counter(r["race_chosen"] for r in rows if r["race_verdict"] == "better")
        ),
        "race_seeds_per_config": {c: float(np.mean([r["seeds"][c] for r in rows])) for c in names},
        "race_mean_looks": float(np.mean([r["looks"] for r in rows])),
        "race_at_max_rate": sum(r["last_n"] == opts.maximum for r in rows) / n,
        "sweeps_with_failed_seed": sum(r["failed_seeds"] > 0 for r in rows) / n,
    }


TARGETS = {
    "false_better_rate": 0.05,
    "false_better_rate_grid": 0.05,
    "power_loss": 0.03,
    "clearly_better_trials_ratio": 0.5,
}


def summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The last line: the headline numbers and whether each target is met (None: the
    scenario it needs was not run)."""
    by = {r["scenario"]: r for r in records}
    null = by.get("null")
    ratios = {r["scenario"]: r["trials_ratio"] for r in records}
    # power: where something is better (the target); where the right answer is
    # "equivalent" the loss is reported beside it
    losses = {r["scenario"]: r["power_loss"] for r in records if r["right_verdict"] == "better"}
    worst = max(losses, key=losses.get) if losses else None
    equal = {r["scenario"]: r["power_loss"] for r in records if r["right_verdict"] != "better"}
    max_ratio = max((r["max_sweep_trials_ratio"] for r in records), default=None)
    cb = by.get("clearly-better")

    def at_most(value, bound):
        return None if value is None else bool(value <= bound)

    out = {
        "bench": "summary",
        "name": "race",
        "false_better_rate": null["false_better_race"] if null else None,
        "false_better_rate_grid": null["false_better_grid"] if null else None,
        "false_better_rate_max": max((r["false_better_race"] for r in records), default=None),
        "false_better_rate_grid_max": max((r["false_better_grid"] for r in records), default=None),
        "power_loss": losses[worst] if worst else None,
        "power_loss_se": by[worst]["power_loss_se"] if worst else None,
        "power_loss_scenario": worst,
        "power_loss_by_scenario": losses,
        "right_rate_loss_where_equivalent": equal,
        "right_rate_grid_by_scenario": {r["scenario"]: r["right_rate_grid"] for r in records},
        "right_rate_race_by_scenario": {r["scenario"]: r["right_rate_race"] for r in records},
        "trials_ratio_by_scenario": ratios,
        "trials_ratio": float(np.mean(list(ratios.values()))) if ratios else None,
        "max_sweep_trials_ratio": max_ratio,
    }
    out["targets"] = {
        "false_better_rate<=0.05": at_most(out["false_better_rate"], 0.05),
        "false_better_rate_grid<=0.05": at_most(out["false_better_rate_grid"], 0.05),
        "false_better_rate_every_scenario<=0.05": at_most(out["false_better_rate_max"], 0.05),
        "false_better_rate_grid_every_scenario<=0.05": at_most(
            out["false_better_rate_grid_max"], 0.05
        ),
        "power_loss<=0.03": at_most(out["power_loss"], 0.03),
        "race_never_more_trials_than_grid": at_most(max_ratio, 1.0),
        "clearly_better_trials_ratio<=0.5": at_most(cb["trials_ratio"] if cb else None, 0.5),
    }
    return out


def print_table(records: Sequence[Mapping[str, Any]], file=sys.stderr) -> None:
    """The per-scenario numbers for a person (stdout stays JSON lines)."""

    def pct(x: float) -> str:
        return f"{100 * x:5.1f}"

    def verdicts(d: Mapping[str, float]) -> str:
        return "/".join(f"{100 * d[v]:.0f}" for v in VERDICTS)

    head = (f"{'scenario':<15} {'right':<9} {'trials race/grid':>17} {'ratio':>5} "
            f"{'right% grid':>11} {'race':>5} {'false+% grid':>12} {'race':>5} "
            f"{'b/e/u% grid':>11} {'race':>9} {'at max%':>7}")  # fmt: skip
    print(head, file=file)
    print("-" * len(head), file=file)
    for r in records:
        print(
            f"{r['scenario']:<15} {r['right_verdict']:<9} "
            f"{r['race_trials']:>8.1f}/{r['grid_trials']:<8.0f} {r['trials_ratio']:>5.2f} "
            f"{pct(r['right_rate_grid']):>11} {pct(r['right_rate_race']):>5} "
            f"{pct(r['false_better_grid']):>12} {pct(r['false_better_race']):>5} "
            f"{verdicts(r['verdicts_grid']):>11} {verdicts(r['verdicts_race']):>9} "
            f"{pct(r['race_at_max_rate']):>7}",
            file=file,
        )
    for r in records:
        seeds = ", ".join(f"{c} {n:.1f}" for c, n in r["race_seeds_per_config"].items())
        print(f"  {r['scenario']}: race seeds per config: {seeds}", file=file)


# -- command line --------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=1000, help="simulated sweeps per scenario")
    p.add_argument("--quick", action="store_true", help="200 sweeps per scenario")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=min(2, usable_cores()), help="processes")
    p.add_argument("--rho", type=float, default=0.5, help="correlation of configs on a seed")
    p.add_argument("--fail-rate", type=float, default=0.01, help="P(a run collapses)")
    p.add_argument("--start", type=int, default=3)
    p.add_argument("--step", type=int, default=2)
    p.add_argument("--max", type=int, default=15, dest="maximum")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument(
        "--max-failure-rate",
        type=float,
        default=None,
        help="decision.max_failure_rate (default: none, as a spec's)",
    )
    p.add_argument("--min-gain", type=float, default=0.0, help="decision.min_gain")
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        dest="budget_trials",
        help="race.budget_trials: the race stops before a round that passes it",
    )
    p.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                   help="repeatable; default: all")  # fmt: skip
    args = p.parse_args(argv)
    if args.quick:
        args.reps = 200
    if not 0 <= args.rho <= 1 or not 0 <= args.fail_rate <= 1:
        p.error("--rho and --fail-rate are probabilities in [0, 1]")
    if args.reps < 1 or args.start < 2 or args.step < 1 or args.maximum < args.start:
        p.error("need --reps >= 1, 2 <= --start <= --max and --step >= 1")
    if args.max_failure_rate is not None and not 0 < args.max_failure_rate < 1:
        p.error("--max-failure-rate is a rate in (0, 1)")
    if not args.min_gain >= 0:
        p.error("--min-gain is at least 0")
    if args.budget_trials is not None and args.budget_trials < 1:
        p.error("--budget is at least 1 trial")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    opts = Options(seed=args.seed, rho=args.rho, fail_rate=args.fail_rate, start=args.start,
                   step=args.step, maximum=args.maximum, alpha=args.alpha,
                   max_failure_rate=args.max_failure_rate, min_gain=args.min_gain,
                   budget_trials=args.budget_trials)  # fmt: skip
    names = args.scenario or list(SCENARIOS)
    t0 = time.perf_counter()
    rows = run_all(names, args.reps, opts, args.jobs)
    wall = time.perf_counter() - t0
    records = [scenario_record(SCENARIOS[n], rows[n], opts) for n in names]
    for r in records:
        emit(r)
    out = summary(records)
    out.update(
        reps=args.reps, seed=args.seed, jobs=args.jobs, rho=args.rho, fail_rate=args.fail_rate,
        start=args.start, step=args.step, max=args.maximum, alpha=args.alpha,
        max_failure_rate=args.max_failure_rate, min_gain=args.min_gain,
        budget_trials=args.budget_trials, wall_s=round(wall, 2),
        sweeps_per_s=round(args.reps * len(names) / wall, 1),
        machine=machine(),
    )  # fmt: skip
    emit(out)
    print_table(records)
    print(f"{args.reps * len(names)} simulated sweeps in {wall:.1f} s on {args.jobs} "
          f"process(es); targets: {out['targets']}", file=sys.stderr)  # fmt: skip
    return out


if __name__ == "__main__":
    main()
