"""Confirmation on fresh seeds (``confirm: {seeds: N}``, sweeps/confirm.py): the spec
key, which trials a decided run asks for, the test on them, and a sweep on Ray (slow).

The stand-in trainer of test_sweep_fake.py with ``FAKE_TRAIN_SCORE=better`` makes SDA
0.03 better than vanilla on every seed, so a grid or a race chooses it and its fresh
seeds confirm it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import test_sweep_fake as fake
import yaml
from test_race import _fake_trial, race_spec

import analysis
from analysis._render import render_markdown
from analysis._select import CONFIRMED, CONTRADICTED, NOT_CONFIRMED, fresh_confirmation
from sweeps.confirm import confirmation_trials
from sweeps.grid import config_key, expand_grid, plan_sweep
from sweeps.ledger import build_record, refuse_if_changed
from sweeps.race import seed_race
from sweeps.results import ensure_results
from sweeps.spec import load_spec
from trainer.errors import ConfigError


def grid_spec(storage: Path, **over) -> dict:
    """examples/race.yaml as a 3-seed grid (tiny model, 3 steps) with 3 fresh seeds."""
    raw = race_spec(storage, confirm={"seeds": 3}, seeds=3)
    del raw["race"]
    raw.update(over)
    return raw


# -- the spec ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"confirm": {"seeds": True}}, "'confirm.seeds' parameter"),
        ({"confirm": {"seeds": 1}}, "'confirm.seeds' parameter"),
        ({"confirm": {"seeds": 101}}, "'confirm.seeds' parameter"),
        ({"confirm": {"seeds": 2.5}}, "'confirm.seeds' parameter"),
        ({"confirm": {"sedes": 3}}, "confirm.sedes"),
        ({"search": {"param": "distill.lambda", "low": 0.1, "high": 1.0},
          "grid": {"distill.k": [1], "noise.lambda": [5.0]}},
         "'search' parameter must be left out when 'confirm' is set"),
    ],
)  # fmt: skip
def test_bad_confirm_specs_are_one_line_errors(tmp_path, over, message):
    with pytest.raises(ConfigError) as err:
        load_spec(grid_spec(tmp_path, **over))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_fresh_seeds_follow_every_seed_the_selection_may_use(tmp_path):
    assert load_spec(grid_spec(tmp_path)).confirm_seeds == [3, 4, 5]
    assert load_spec(grid_spec(tmp_path, seeds=[0, 9, 4])).confirm_seeds == [10, 11, 12]
    raced = load_spec(race_spec(tmp_path, confirm={"seeds": 2}))  # race.max 7: seeds 0-6
    assert raced.confirm_seeds == [7, 8]
    assert load_spec(race_spec(tmp_path)).confirm_seeds == []


def test_a_remote_run_dir_cannot_confirm(tmp_path):
    from sweeps.driver import run_sweep

    spec = load_spec({**grid_spec(tmp_path), "storage": "s3://bucket/runs"})
    with pytest.raises(ConfigError, match="confirm: a confirmation needs a local"):
        run_sweep(spec, dry_run=True)


def test_more_fresh_seeds_is_growth_fewer_or_none_is_refused(tmp_path):
    def record(**over):
        return build_record(plan_sweep(load_spec(grid_spec(tmp_path, **over))))

    old = record()
    refuse_if_changed(str(tmp_path), old, record(confirm={"seeds": 5}))
    without = build_record(plan_sweep(load_spec({**grid_spec(tmp_path), "confirm": None})))
    refuse_if_changed(str(tmp_path), without, old)  # a confirmation added to a run
    with pytest.raises(ConfigError, match=r"confirm.seeds: 3 -> 2"):
        refuse_if_changed(str(tmp_path), old, record(confirm={"seeds": 2}))
    with pytest.raises(ConfigError, match="confirmation on fresh seeds was removed"):
        refuse_if_changed(str(tmp_path), old, without)


# -- which trials a decided run asks for (no Ray) ---------------------------------
def _run_grid(tmp_path: Path, monkeypatch, **over):
    monkeypatch.setenv("FAKE_TRAIN_SCORE", "better")
    spec = load_spec(grid_spec(tmp_path, **over))
    run_dir = tmp_path / "run"
    trials = expand_grid(spec)
    return spec, run_dir, trials


def test_nothing_is_confirmed_before_the_selection_has_ended(tmp_path, monkeypatch):
    spec, run_dir, trials = _run_grid(tmp_path, monkeypatch)
    for trial in trials[:-1]:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    assert confirmation_trials(spec, str(run_dir), trials) == []


def test_a_grids_choice_and_vanilla_get_fresh_seeds_kept_out_of_the_selection(
    tmp_path, monkeypatch
):
    spec, run_dir, trials = _run_grid(tmp_path, monkeypatch)
    for trial in trials:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    before = analysis.decisions(analysis.load(run_dir))["synthetic-sentiment"]
    assert before.decision.verdict == "better" and "sda" in before.decision.chosen
    assert before.fresh is None

    wanted = confirmation_trials(spec, str(run_dir), trials)
    by_config = {}
    for t in wanted:
        by_config.setdefault(config_key(t), []).append(t.seed)
        assert t.role == "confirm" and t.config["seed"] == t.seed
        assert t.key.endswith(f"_confirm_s{t.seed}")
    chosen = before.decision.chosen.rsplit(":", 1)[0]
    vanilla = next(config_key(t) for t in trials if t.strategy == "vanilla")
    assert by_config == {chosen: [3, 4, 5], vanilla: [3, 4, 5]}
    for trial in wanted:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    assert confirmation_trials(spec, str(run_dir), trials) == wanted  # the same, replayed

    df = analysis.load(run_dir)
    assert set(df.loc[df["role"] == "confirm", "seed"]) == {3, 4, 5}
    after = analysis.decisions(df)["synthetic-sentiment"]
    # the selection is made on its own seeds alone, exactly as before
    assert after.decision.assessments == before.decision.assessments
    assert after.fresh["outcome"] == CONFIRMED and after.fresh["split"] == "test"
    assert after.fresh["seeds"] == [3, 4, 5] and after.fresh["n"] == 3
    assert 0.025 < after.fresh["delta"] < 0.06  # SDA (student or teacher) +0.03 or more
    assert set(analysis.seed_stats(df)["n"]) == {3}  # no fresh seed in any statistic

    report = analysis.build_report(df, plots=False, expected_keys=[t.key for t in trials])
    md = render_markdown(report)
    assert "Fresh seeds (trained after the choice, 3 of it and of vanilla)" in md
    assert "on test, seeds 3–5 (dev Δ +0.0" in md
    assert "fresh-seed confirmation trials" in md
    yml = report.selection_yaml["datasets"]["synthetic-sentiment"]["fresh_confirmation"]
    assert yml["outcome"] == CONFIRMED and yml["seeds"] == [3, 4, 5]
    assert report.missing.empty


def test_a_choice_without_fresh_seeds_is_told_how_to_get_them(tmp_path, monkeypatch):
    spec, run_dir, trials = _run_grid(tmp_path, monkeypatch, confirm=None)
    for trial in trials:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    assert confirmation_trials(spec, str(run_dir), trials) == []  # not asked for
    md = render_markdown(analysis.build_report(analysis.load(run_dir), plots=False))
    assert "Not confirmed on fresh seeds yet: `confirm: {seeds: 10}`" in md


def test_a_vanilla_choice_asks_for_no_confirmation(tmp_path, monkeypatch):
    spec, run_dir, trials = _run_grid(
        tmp_path, monkeypatch, strategies=["vanilla", "noisytune"], grid={"noise.lambda": [5.0]}
    )
    for trial in trials:
        _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    decided = analysis.decisions(analysis.load(run_dir))["synthetic-sentiment"]
    assert decided.decision.verdict != "better"
    assert confirmation_trials(spec, str(run_dir), trials) == []


def test_a_race_confirms_after_its_end_on_seeds_past_its_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRAIN_SCORE", "better")
    spec = load_spec(race_spec(tmp_path, confirm={"seeds": 2}))
    run_dir = tmp_path / "run"
    trials = expand_grid(spec)
    for _ in range(len(trials)):
        race, _ = seed_race(spec, str(run_dir), trials)
        if race.finished():
            break
        assert confirmation_trials(spec, str(run_dir), trials) == []  # still racing
        for trial in race.wanted_trials():
            _fake_trial(run_dir, trial)
    ensure_results(run_dir)
    wanted = confirmation_trials(spec, str(run_dir), trials)
    assert sorted({t.seed for t in wanted}) == [7, 8]
    assert sorted({t.strategy for t in wanted}) == ["sda", "vanilla"]


def test_a_chosen_se_average_is_confirmed_with_the_plain_runs_it_averages(tmp_path):
    """In a grid SE is an evaluation of the plain run: its fresh seeds are too."""
    from sweeps.confirm import _trials_of

    spec = load_spec(grid_spec(tmp_path, strategies=["vanilla", "noisytune+se"],
                               grid={"noise.lambda": [0.1], "distill.k": [2]}))  # fmt: skip
    trials = expand_grid(spec)
    se = next(t for t in trials if t.strategy == "noisytune+se")
    out = {t.key: t for t in _trials_of(spec, trials, config_key(se))}
    derived = [t for t in out.values() if t.derived_from]
    assert [t.strategy for t in derived] == ["noisytune+se"] * 3
    for t in derived:
        carrier = out[t.derived_from]
        assert carrier.strategy == "noisytune" and carrier.seed == t.seed
        assert carrier.config["eval"]["self_ensembles"]


# -- the test on fresh seeds --------------------------------------------------------
def _long(diffs: dict[int, float], splits=("dev", "test")) -> pd.DataFrame:
    rows = []
    for split in splits:
        for seed, d in diffs.items():
            for config, value in (("v", 0.8), ("c", 0.8 + d)):
                rows.append({"dataset": "d", "strategy": "vanilla" if config == "v" else "sda",
                             "settings": "", "config_key": config, "seed": seed, "key": "k",
                             "model": "student", "split": split, "metric": "accuracy",
                             "value": value})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("diffs", "outcome"),
    [
        ({10: 0.02, 11: 0.03, 12: 0.025, 13: 0.028}, CONFIRMED),
        ({10: 0.02, 11: -0.03, 12: 0.01, 13: -0.01}, NOT_CONFIRMED),
        ({10: -0.02, 11: -0.03, 12: -0.025, 13: -0.028}, CONTRADICTED),
        # three seeds each one example of 277 better: a tie, p = 2^(1-3), not confirmed
        ({10: 1 / 277, 11: 1 / 277, 12: 1 / 277}, NOT_CONFIRMED),
    ],
)
def test_fresh_outcomes(diffs, outcome):
    c = fresh_confirmation(_long(diffs), "d", "accuracy", "c:student", "v:student", 0.95, set())
    assert c["outcome"] == outcome and c["split"] == "test" and c["n"] == len(diffs)


def test_fresh_confirmation_leaves_out_seeds_the_selection_used_and_needs_two():
    diffs = {3: -0.5, 10: 0.02, 11: 0.03, 12: 0.025}
    c = fresh_confirmation(_long(diffs), "d", "accuracy", "c:student", "v:student", 0.95, {3})
    assert c["seeds"] == [10, 11, 12] and c["outcome"] == CONFIRMED
    assert fresh_confirmation(_long({10: 0.02}), "d", "accuracy", "c:student", "v:student",
                              0.95, set()) is None  # fmt: skip


def test_without_a_test_split_fresh_seeds_are_scored_on_the_selection_split():
    c = fresh_confirmation(_long({10: 0.02, 11: 0.03}, splits=("dev",)), "d", "accuracy",
                           "c:student", "v:student", 0.95, set())  # fmt: skip
    assert c["split"] == "dev" and "dev_delta" not in c
    both = fresh_confirmation(_long({10: 0.02, 11: 0.03}), "d", "accuracy", "c:student",
                              "v:student", 0.95, set())  # fmt: skip
    assert math.isclose(both["dev_delta"], 0.025)


# -- on Ray Tune (slow) -----------------------------------------------------------
@pytest.mark.slow
def test_a_sweep_confirms_its_choice_on_fresh_seeds_and_a_rerun_runs_nothing(
    tmp_path, monkeypatch, capsys
):
    from sweeps.driver import run_sweep

    monkeypatch.setenv("FAKE_TRAIN_SCORE", "better")
    spec = load_spec(grid_spec(tmp_path))
    summary = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
    run_dir = Path(summary["run_dir"])
    assert "confirm" in summary
    out = capsys.readouterr().out
    assert "confirming the choice on fresh seeds 3–5: 6 trial(s)" in out
    df = analysis.load(run_dir)
    confirm = df[df["role"] == "confirm"]
    assert len(confirm) == 6 and confirm["finished"].all()
    again = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
    assert "confirm" not in again and "nothing to run" in capsys.readouterr().out
    analysis.write_report(run_dir, plots=False)
    selection = yaml.safe_load((run_dir / "report" / "selection.yaml").read_text())
    fresh = selection["datasets"]["synthetic-sentiment"]["fresh_confirmation"]
    assert fresh["outcome"] == CONFIRMED and fresh["n"] == 3
