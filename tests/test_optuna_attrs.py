"""SeedGroupSearch records each candidate's seeds on its Optuna trial: no Ray, no model, fast."""

from __future__ import annotations

import json
import statistics

import optuna
import pytest

from sweeps.grid import TrialSpec, plan_sweep
from sweeps.optuna_search import FINISHED, SeedGroupSearch
from sweeps.spec import load_spec
from trainer.layout import trial_dir

SPEC = {
    "name": "attrs",
    "model": "tiny-bert",
    "datasets": [{"name": "synthetic-sentiment", "train_size": 64}],
    "strategies": ["sda"],
    "seeds": 3,
    "grid": {"distill.k": [1]},
    "defaults": {"optim": {"max_steps": 2}},
    "search": {"param": "distill.lambda", "low": 0.1, "high": 2, "n_trials": 2,
               "sampler": "random"},
}  # fmt: skip


@pytest.fixture
def spec():
    return load_spec(SPEC)


def _storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/optuna.db"


def _suggest_all(search: SeedGroupSearch, n: int) -> dict[str, TrialSpec]:
    trials = {}
    for i in range(n):
        got = search.suggest(f"t{i}")
        assert got is not FINISHED
        trials[f"t{i}"] = TrialSpec.from_dict(got["trial"])
    return trials


def _load(search: SeedGroupSearch) -> optuna.Study:
    (cell,) = search.cells
    return optuna.load_study(study_name=search.study_name(cell["key"]), storage=search.storage_url)


def test_tell_records_the_seeds_on_the_optuna_trial(spec, tmp_path):
    search = SeedGroupSearch(plan_sweep(spec), _storage(tmp_path))
    trials = _suggest_all(search, 6)  # 2 candidates × 3 seeds
    outcomes = {"t0": 0.8, "t1": 0.9, "t2": 0.7, "t3": 0.6, "t4": None, "t5": 0.5}
    for tid, value in outcomes.items():
        search.complete(tid, value, error=value is None)
    assert search.suggest("t6") is FINISHED

    study = _load(search)
    assert study.metric_names == ["dev/accuracy"]
    good, bad = sorted(study.get_trials(), key=lambda t: t.number)

    assert good.state == optuna.trial.TrialState.COMPLETE
    assert good.value == pytest.approx(0.8)
    attrs = good.user_attrs
    assert attrs["seed_values"] == {"0": 0.8, "1": 0.9, "2": 0.7}
    assert attrs["mean"] == pytest.approx(0.8)
    assert attrs["std"] == pytest.approx(statistics.stdev([0.8, 0.9, 0.7]))
    assert attrs["std"] == pytest.approx(0.1)  # sample std (ddof=1)
    assert attrs["n"] == 3
    assert attrs["metric"] == "dev/accuracy"
    assert attrs["trial_keys"] == [trials[t].key for t in ("t0", "t1", "t2")]
    assert all(trials[t].optuna_trial == good.number for t in ("t0", "t1", "t2"))

    assert bad.state == optuna.trial.TrialState.FAIL
    attrs = bad.user_attrs
    assert attrs["seed_values"] == {"0": 0.6, "1": None, "2": 0.5}
    assert attrs["mean"] == pytest.approx(0.55)
    assert attrs["std"] == pytest.approx(statistics.stdev([0.6, 0.5]))
    assert attrs["n"] == 2
    assert attrs["metric"] == "dev/accuracy"
    assert attrs["trial_keys"] == [trials[t].key for t in ("t3", "t4", "t5")]
    json.dumps(attrs)  # JSON-able as stored


def test_single_finished_seed_has_no_std(spec, tmp_path):
    search = SeedGroupSearch(plan_sweep(spec), _storage(tmp_path))
    _suggest_all(search, 3)
    for tid, value in {"t0": None, "t1": None, "t2": 0.4}.items():
        search.complete(tid, value, error=value is None)
    (trial,) = _load(search).get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["n"] == 1
    assert trial.user_attrs["mean"] == pytest.approx(0.4)
    assert trial.user_attrs["std"] is None


def test_metric_name_is_the_datasets_and_set_only_once(tmp_path, monkeypatch):
    spec = load_spec({**SPEC, "datasets": [{"name": "synthetic-sentiment", "metric": "mcc"}]})
    first = SeedGroupSearch(plan_sweep(spec), _storage(tmp_path))
    first.suggest("t0")
    assert _load(first).metric_names == ["dev/mcc"]

    def no_rename(self, names):
        raise AssertionError(f"metric names set again: {names}")

    monkeypatch.setattr(optuna.study.Study, "set_metric_names", no_rename)
    again = SeedGroupSearch(plan_sweep(spec), _storage(tmp_path))  # a second driver loads the study
    again.resume_from(str(tmp_path))
    assert len(again.candidates) == 1
    assert _load(again).metric_names == ["dev/mcc"]


def test_resumed_search_records_the_seeds_when_it_tells(spec, tmp_path):
    run_dir = tmp_path / "run"
    url = f"sqlite:///{tmp_path}/optuna.db"
    first = SeedGroupSearch(plan_sweep(spec), url)
    trials = _suggest_all(first, 3)
    first.complete("t0", 0.8, error=False)  # the driver dies before the other seeds end
    for tid, value in {"t0": 0.8, "t1": 0.9, "t2": 0.7}.items():
        d = trial_dir(run_dir, trials[tid].key)
        d.mkdir(parents=True)
        metrics = {"dev": {"accuracy": value}}
        (d / "result.json").write_text(
            json.dumps({"config": trials[tid].config, "metrics": metrics})
        )
        (d / "trial.json").write_text(json.dumps({"trial": trials[tid].to_dict()}))

    resumed = SeedGroupSearch(plan_sweep(spec), url)
    resumed.resume_from(str(run_dir))
    (trial,) = _load(resumed).get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == pytest.approx(0.8)
    attrs = trial.user_attrs
    assert attrs["seed_values"] == {"0": 0.8, "1": 0.9, "2": 0.7}
    assert attrs["mean"] == pytest.approx(0.8)
    assert attrs["std"] == pytest.approx(0.1)
    assert attrs["n"] == 3
    assert attrs["metric"] == "dev/accuracy"
    assert attrs["trial_keys"] == [trials[t].key for t in ("t0", "t1", "t2")]
    assert _load(resumed).metric_names == ["dev/accuracy"]


def test_a_candidate_asked_without_a_value_does_not_use_up_the_search(spec, tmp_path):
    """A driver killed between Optuna's ask and suggest leaves a RUNNING trial without a
    parameter: resumed, it is failed, and the search still asks its n_trials candidates."""
    url = _storage(tmp_path)
    first = SeedGroupSearch(plan_sweep(spec), url)
    (cell,) = first.cells
    first.study(cell["key"]).ask()  # the driver dies here, before suggest_float
    resumed = SeedGroupSearch(plan_sweep(spec), url)
    resumed.resume_from(str(tmp_path / "run"))
    (orphan,) = _load(resumed).get_trials()
    assert orphan.state == optuna.trial.TrialState.FAIL
    assert resumed.remaining_trials == 2 * 3  # n_trials candidates x seeds, all still to run
    emitted = [resumed.suggest(f"t{i}") for i in range(2 * 3)]
    assert FINISHED not in emitted and resumed.suggest("t6") is FINISHED
    numbers = {TrialSpec.from_dict(e["trial"]).optuna_trial for e in emitted}
    assert numbers == {1, 2}
