"""Seed racing: the Ray-free race, its spec checks, and the race on Ray Tune (slow).

The Ray tests run ``examples/race.yaml`` with the stand-in trainer of
test_sweep_fake.py (``FAKE_TRAIN_SCORE=race``: NoisyTune near chance, the others close).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_sweep_fake as fake
import yaml
from test_sweep_ray import ROOT, kill_driver_when, resume_here

from analysis._compare import holm
from analysis._decide import Candidate, DecisionSettings, step_down
from analysis._sequential import Boundary, nominal_levels
from sweeps.driver import run_sweep
from sweeps.ledger import build_record, refuse_if_changed
from sweeps.race import planned_keys, race_dataset, run_decisions, schedule
from sweeps.spec import load_spec
from trainer.errors import ConfigError
from trainer.layout import read_parquet_file

SETTINGS = DecisionSettings()


def values(means: dict[str, float], n: int = 15, sd: float = 0.01, seed: int = 0) -> dict:
    """Scores per config and seed, correlated across configs on the same seed."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, sd * np.sqrt(0.5), n)
    return {c: {s: m + shared[s] + rng.normal(0, sd * np.sqrt(0.5)) for s in range(n)}
            for c, m in means.items()}  # fmt: skip


def candidates(table: dict, ready=lambda want: True):
    def at(want):
        if not ready(want):
            return None
        return [
            Candidate(
                id=f"{c}:student",
                label=c,
                group=c,
                cost=(i,),
                is_vanilla=c == "vanilla",
                values={s: table[c][s] for s in seeds},
            )
            for i, (c, seeds) in enumerate(want.items())
        ]

    return at


def race(table: dict, **kw):
    args = dict(start=3, step=2, maximum=15, metric="accuracy", settings=SETTINGS)
    args.update(kw)
    configs = list(table)
    at = args.pop("at", None) or candidates(table)
    return race_dataset(configs, "vanilla", list(range(15)), at, **args)


def trials_used(r) -> int:
    return sum(n for n, _ in r.stopped.values())


def test_schedule():
    assert schedule(3, 2, 15) == (3, 5, 7, 9, 11, 13, 15)
    assert schedule(3, 5, 10) == (3, 8, 10)
    assert schedule(4, 2, 4) == (4,)


def test_a_poor_configuration_stops_after_its_first_round():
    table = values({"vanilla": 0.80, "sda": 0.80, "poor": 0.55, "sdv": 0.801})
    r = race(table)
    assert r.done
    assert r.stopped["poor"][0] == 3 and r.stopped["poor"][1].startswith("eliminated")
    assert r.stopped["vanilla"][0] > 3  # the reference never stops early
    assert trials_used(r) < 4 * 15
    # a stopped configuration keeps the status of the look it stopped at: its seeds do
    # not grow, and a later, looser look must not test them again
    stop = next(look for look in r.looks if "poor:student" in look.eliminated)
    final = r.decision.assessment("poor:student")
    assert final.eliminated and final.status == stop.decision.assessment("poor:student").status
    assert final.status != "better" and final.delta < -0.2


def test_a_clear_winner_ends_the_race_early():
    table = values({"vanilla": 0.80, "a": 0.80, "b": 0.83, "c": 0.80})
    r = race(table)
    assert r.decision.verdict == "better" and r.decision.chosen == "b:student"
    assert r.ended == "better, with b the one left"
    assert trials_used(r) <= 0.5 * 4 * 15


def test_no_difference_runs_to_max_and_says_unresolved_or_equivalent():
    table = values({"vanilla": 0.80, "a": 0.80}, sd=0.014, seed=5)
    r = race(table, maximum=7)
    assert r.decision.verdict in ("unresolved", "equivalent")
    assert r.decision.chosen == "vanilla:student"
    if r.decision.verdict == "unresolved":
        assert r.ended == "unresolved at the maximum of 7 seeds"
        assert r.decision.seeds_to_resolve > 7  # the report says more seeds are needed


def test_the_race_waits_for_a_round_and_replays_identically():
    table = values({"vanilla": 0.80, "sda": 0.80, "poor": 0.55})
    first_round = race(
        table, at=candidates(table, ready=lambda want: max(map(len, want.values())) <= 3)
    )
    assert not first_round.done
    assert first_round.wanted == {"vanilla": [3, 4], "sda": [3, 4]}  # poor stopped at 3
    assert "vanilla_s4" in planned_keys(first_round) and "poor_s3" not in planned_keys(first_round)
    full, again = race(table), race(table)
    assert full.stopped == again.stopped and full.decision.verdict == again.decision.verdict


def test_budget_ends_a_race():
    table = values({"vanilla": 0.80, "a": 0.80, "b": 0.80})
    r = race(table, budget_trials=14)
    assert r.done and r.ended == "budget of 14 trials reached"
    assert trials_used(r) <= 14


def test_a_budget_stop_spends_all_the_alpha_left():
    """The look a budget makes the last is tested at the level that spends what the
    earlier looks left, not at its interim level (issue 27: RTE's last look was at
    0.0016, 3 % of α)."""
    looks = schedule(3, 2, 15)
    table = values({"vanilla": 0.80, "a": 0.81, "b": 0.80}, seed=0)
    # 3 configurations: 9 trials at 3 seeds, 15 at 5, 21 at 7; a budget of 20 ends at 5
    r = race(table, budget_trials=20)
    assert r.ended == "budget of 20 trials reached" and r.looks[-1].n == 5
    last = nominal_levels(0.05, looks[:2], total=15)[-1]
    interim = nominal_levels(0.05, looks)[1]
    assert r.looks[-1].level == pytest.approx(last) and last > 5 * interim
    assert r.looks[0].level == pytest.approx(nominal_levels(0.05, looks)[0])  # as planned
    # what spends it: the same seeds at the interim level do not show 'a' better
    assert r.decision.verdict == "better" and r.decision.chosen == "a:student"
    unbudgeted = race(
        table, maximum=15, at=candidates(table, lambda w: max(map(len, w.values())) <= 5)
    )
    assert unbudgeted.looks[-1].n == 5 and unbudgeted.looks[-1].decision.verdict != "better"


def test_the_boundary_of_a_holm_step_is_the_boundary_of_its_share_of_alpha():
    """Holm's first step over m = 4 tests at the boundary of α/4, not the boundary of α
    divided by 4 (Maurer & Bretz 2013)."""
    look = Boundary(schedule(3, 2, 15), 5)
    assert look.now(0.05 / 4) != pytest.approx(look.now(0.05) / 4, rel=0.02)
    p = [look.now(0.05 / 4) * 0.99, 0.9, 0.9, 0.9]
    assert list(step_down(p, 0.05, look)) == [True, False, False, False]
    p[0] = look.now(0.05 / 4) * 1.01
    assert not step_down(p, 0.05, look).any()
    # at one look it is Holm's own step-down
    q = [0.004, 0.02, 0.03, 0.2]
    assert list(step_down(q, 0.05)) == list(holm(q) < 0.05)


# -- the spec ---------------------------------------------------------------------
def race_spec(storage: Path, **over) -> dict:
    raw = yaml.safe_load((ROOT / "examples" / "race.yaml").read_text())
    raw.update(model="tiny-bert", storage=str(storage), defaults={"optim": {"max_steps": 3}})
    raw["datasets"][0]["train_size"] = 32
    raw.update(over)
    return raw


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"strategies": ["sda", "noisytune"]}, "'strategies' parameter must include 'vanilla'"),
        ({"seeds": 3}, "'seeds' parameter must be left out"),
        ({"seeds": [0, 1, 2]}, "must list at least race.max = 7 seeds"),
        ({"race": {"start": 5, "max": 3}}, "'race.max' parameter must be at least 'start' (5)"),
        ({"race": {"start": 1}}, "'race.start' parameter"),
        ({"decision": {"alpha": 0.7}}, "'decision.alpha' parameter"),
        ({"decision": {"margin": -0.01}}, "'decision.margin' parameter"),
        ({"search": {"param": "distill.lambda", "low": 0.1, "high": 1.0},
          "grid": {"distill.k": [1]}}, "'search' parameter must be left out"),
    ],
)  # fmt: skip
def test_bad_race_specs_are_one_line_errors(tmp_path, over, message):
    with pytest.raises(ConfigError) as err:
        load_spec(race_spec(tmp_path, **over))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_seed_pool_and_record(tmp_path):
    spec = load_spec(race_spec(tmp_path))
    assert spec.seed_list == list(range(7))
    assert load_spec(race_spec(tmp_path, seeds=[5, 6, 7, 8, 9, 10, 11, 12])).seed_list == [
        5, 6, 7, 8, 9, 10, 11
    ]  # fmt: skip


def test_a_changed_race_is_refused_a_larger_budget_is_growth(tmp_path):
    from sweeps.grid import plan_sweep

    def record(**over):
        spec = load_spec(race_spec(tmp_path, **over))
        return build_record(plan_sweep(spec))

    old = record(race={"start": 3, "step": 2, "max": 7, "budget_trials": 10})
    refuse_if_changed(str(tmp_path), old, record(race={"start": 3, "step": 2, "max": 7,
                                                         "budget_trials": 12}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"race.start: 3 -> 5"):
        refuse_if_changed(str(tmp_path), old, record(race={"start": 5, "step": 2, "max": 7}))
    with pytest.raises(ConfigError, match=r"added to a seed race"):
        more = record(strategies=["vanilla", "sda", "noisytune", "se"],
                      race={"start": 3, "step": 2, "max": 7, "budget_trials": 10})  # fmt: skip
        refuse_if_changed(str(tmp_path), old, more)
    with pytest.raises(ConfigError, match=r"decision.alpha: 0.05 -> 0.01"):
        refuse_if_changed(str(tmp_path), old, record(decision={"alpha": 0.01},
                          race={"start": 3, "step": 2, "max": 7, "budget_trials": 10}))  # fmt: skip
    # a race recorded before decision.split existed was decided on dev: it resumes
    legacy = {**old, "spec": {**old["spec"], "decision": {"alpha": 0.05}}}
    refuse_if_changed(str(tmp_path), legacy, old)
    with pytest.raises(ConfigError, match=r"decision.split: 'dev' -> 'test'"):
        refuse_if_changed(str(tmp_path), legacy, record(decision={"split": "test"},
                          race={"start": 3, "step": 2, "max": 7, "budget_trials": 10}))  # fmt: skip


def _fake_trial(run_dir: Path, trial) -> None:
    """A finished trial directory, as the Ray trainable leaves it."""
    from trainer import load_config
    from trainer.layout import TRIAL_FILE, trial_dir

    out = trial_dir(str(run_dir), trial.key)
    out.mkdir(parents=True, exist_ok=True)
    (out / TRIAL_FILE).write_text(json.dumps({"trial": trial.to_dict(), "trial_id": "t"}))
    fake.fake_train(load_config(trial.config), out)


def test_a_run_dirs_race_replays_from_its_trial_directories(tmp_path, monkeypatch):
    """The path of `steadytune report` and of a resumed race, without Ray: the race read
    back from the run directory's trial files, round by round."""
    from sweeps.grid import expand_grid, plan_sweep
    from sweeps.ledger import write_record
    from sweeps.race import seed_race

    monkeypatch.setenv("FAKE_TRAIN_SCORE", "race")
    spec = load_spec(race_spec(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_record(str(run_dir), build_record(plan_sweep(spec)))
    trials = expand_grid(spec)
    for _ in range(len(trials)):
        race, _outcomes = seed_race(spec, str(run_dir), trials)
        wanted = [t for t in race.wanted_trials() if not (run_dir / "trials" / t.key).exists()]
        if race.finished() or not wanted:
            break
        for trial in wanted:
            _fake_trial(run_dir, trial)
    settings, _, races = run_decisions(run_dir)
    assert settings == spec.decision.settings()
    (dataset_race,) = races.values()
    assert dataset_race.done and dataset_race.decision is not None
    poor = next(c for c in dataset_race.stopped if "noisytune" in c)
    assert dataset_race.stopped[poor][0] == 3 and "eliminated" in dataset_race.stopped[poor][1]


# -- on Ray Tune (slow) -----------------------------------------------------------
def _finished_keys(run_dir: Path) -> set[str]:
    df = pd.read_parquet(run_dir / "results.parquet")
    assert df["key"].is_unique
    return set(df.loc[df["status"] == "TERMINATED", "key"])


def _race_outcome(run_dir: Path) -> dict:
    settings, _, races = run_decisions(run_dir)
    assert settings is not None
    return {ds: (r.ended, r.stopped, r.decision.verdict, r.decision.chosen)
            for ds, r in races.items()}  # fmt: skip


@pytest.mark.slow
def test_race_example_on_ray_then_sigkill_and_resume_decides_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRAIN_SCORE", "race")
    # uninterrupted
    spec = race_spec(tmp_path / "a")
    summary = run_sweep(load_spec(spec), num_cpus=2, dashboard=False,
                        train_fn=fake.picklable_train())  # fmt: skip
    run_a = Path(summary["run_dir"])
    done_a = _finished_keys(run_a)
    outcome = _race_outcome(run_a)
    stopped = outcome["synthetic-sentiment"][1]
    poor = next(c for c in stopped if "noisytune" in c)
    assert stopped[poor][0] == 3 and "eliminated" in stopped[poor][1]
    assert len(done_a) < 21  # the grid at max (7 seeds × 3 configurations)
    assert sum(1 for k in done_a if "noisytune" in k) == 3
    # the driver is SIGKILLed mid-race, then `steadytune resume` finishes it
    spec_b = race_spec(tmp_path / "b")
    run_b = tmp_path / "b" / "race"

    def into_round_two() -> bool:
        results = run_b / "results.parquet"
        return results.is_file() and len(read_parquet_file(results)) >= 10

    slow = {"FAKE_TRAIN_SLEEP": "0.3", "FAKE_TRAIN_SCORE": "race"}
    kill_driver_when(tmp_path, spec_b, run_b, into_round_two,
                     "the race did not reach its second round", env=slow, timeout=120)  # fmt: skip
    assert len(pd.read_parquet(run_b / "results.parquet")) < len(done_a)
    assert resume_here(monkeypatch, run_b) == 0
    assert _finished_keys(run_b) == done_a  # the same trials, each once
    assert _race_outcome(run_b) == outcome  # the same decisions
    for key in done_a:
        result = json.loads((run_b / "trials" / key / "result.json").read_text())
        assert result["config"]["seed"] == int(key.rsplit("_s", 1)[1])
    # the report of a raced run: seeds per configuration and why each stopped
    selection = yaml.safe_load((run_b / "report" / "selection.yaml").read_text())
    assert selection["datasets"]["synthetic-sentiment"]["race"]["seeds"]["noisytune nλ=5"] == 3
    md = (run_b / "report" / "report.md").read_text()
    assert "why it stopped" in md and "Seed race." in md
    assert f"{len(done_a)} raced trials finished of {len(done_a)} the races gave" in md
