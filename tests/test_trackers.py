"""The spec's ``callbacks:``: MLflow for real against a local file store, TensorBoard
events once per trial in its own directory, the wandb mapping, and the refusals."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import test_sweep_fake as fake
from test_sweep_ray import grid_spec

from sweeps.driver import run_sweep
from sweeps.grid import TrialSpec, expand_grid
from sweeps.spec import load_spec
from trainer.errors import ConfigError


def test_mlflow_and_tensorboard_record_each_trial_once(tmp_path):
    import mlflow

    spec = load_spec(grid_spec(
        tmp_path, strategies=["vanilla", "sda"], grid={"distill.k": [2]},
        callbacks={"mlflow": {}, "tensorboard": True},
    ))  # fmt: skip
    summary = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train(),
                        stream=sys.stdout)  # fmt: skip
    assert summary["grid"] == {"trials": 4, "errors": 0}

    # the defaults: a SQLite store in the run dir, the experiment named after the sweep
    store = f"sqlite:///{Path(spec.run_dir()).absolute() / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["g"], output_format="list")
    keys = {t.key for t in expand_grid(spec)}
    assert {r.info.run_name for r in runs} == keys and len(runs) == 4
    client = mlflow.MlflowClient(store)
    for run in runs:
        params, tags = run.data.params, run.data.tags
        assert tags["trial_key"] == run.info.run_name and run.info.status == "FINISHED"
        assert params["dataset"] == "synthetic-sentiment" and params["seed"] in {"0", "1"}
        assert params["strategy"] in {"vanilla", "sda"}
        assert ("distill.k" in params) is (params["strategy"] == "sda")
        assert "trial" not in params and "run_dir" not in params  # knobs, not Tune's config
        # one value per evaluation, at its optimizer step (the fake trainer reports 4)
        history = client.get_metric_history(run.info.run_id, "dev/accuracy")
        assert sorted({m.step for m in history}) == [1, 2, 3, 4]

    run_dir = Path(spec.run_dir())
    events = sorted(run_dir.rglob("events.out.tfevents.*"))
    assert {e.relative_to(run_dir).parts[:3] for e in events} == {
        ("trials", key, "tensorboard") for key in keys
    }


def test_without_callbacks_no_tensorboard_events_are_written(tmp_path):
    spec = load_spec(grid_spec(tmp_path, strategies=["vanilla"], grid={}, seeds=1))
    run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
    run_dir = Path(spec.run_dir())
    assert not list(run_dir.rglob("events.out.tfevents.*"))
    assert list((run_dir / "tune").rglob("progress.csv"))  # Tune's CSV/JSON loggers stay


def test_wandb_runs_are_named_by_trial_key_and_grouped_by_configuration(tmp_path, monkeypatch):
    from ray.air.integrations import wandb as ray_wandb

    from sweeps import _trackers

    monkeypatch.setattr(ray_wandb, "wandb", object())  # Ray's check that wandb is there
    started: dict = {}
    monkeypatch.setattr(ray_wandb.WandbLoggerCallback, "_start_logging_actor",
                        lambda self, trial, exclude, **kw: started.update(kw))  # fmt: skip
    spec = load_spec(grid_spec(tmp_path, strategies=["sda"], grid={"distill.k": [2]}, seeds=1,
                               callbacks={"wandb": {"mode": "offline"}}))  # fmt: skip
    (callback,) = [c for c in _trackers.logger_callbacks(spec.callbacks, "/r", "g")
                   if isinstance(c, _trackers.SweepWandb)]  # fmt: skip
    assert callback.project == "g" and callback.kwargs == {"mode": "offline"}
    trial = expand_grid(spec)[0]

    from types import SimpleNamespace

    tune_trial = SimpleNamespace(config={"trial": trial.to_dict(), "run_dir": "/r"})
    callback._start_logging_actor(tune_trial, [], name="run_trial_0", group="exp", config={})
    assert started["name"] == trial.key and started["group"] == "synthetic-sentiment_sda_k2_dl1"
    assert started["config"]["distill.k"] == 2 and started["config"]["seed"] == 0


def test_trial_params_are_the_knobs(tmp_path):
    from sweeps._trackers import trial_params

    spec = load_spec(grid_spec(tmp_path, strategies=["noisytune"], seeds=1,
                               grid={"noise.lambda": [0.15], "optim.lr": [1e-4]}))  # fmt: skip
    (trial,) = expand_grid(spec)
    params = trial_params(TrialSpec.from_dict(trial.to_dict()))
    assert params == {"dataset": "synthetic-sentiment", "strategy": "noisytune", "seed": 0,
                      "noise.lambda": 0.15, "model": "tiny-bert", "optim.lr": 1e-4,
                      "config_key": trial.key.removesuffix("_s0")}  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_a_tracker_whose_package_is_missing_is_refused_before_ray(tmp_path):
    spec = load_spec(grid_spec(tmp_path, callbacks={"wandb": {"project": "p"}}))
    with pytest.raises(ConfigError, match=r"^'callbacks\.wandb': the wandb package is not"):
        run_sweep(spec, dry_run=True)


@pytest.mark.parametrize(
    ("callbacks", "match"),
    [
        ({"mlfow": {}}, "mlfow"),
        ({"wandb": {"mode": "sometimes"}}, "mode"),
        ({"tensorboard": "yes please"}, "tensorboard"),
    ],
)
def test_bad_callbacks_name_the_key(tmp_path, callbacks, match):
    with pytest.raises(ConfigError, match=match):
        load_spec(grid_spec(tmp_path, callbacks=callbacks))


def test_rays_own_tools_read_a_run_dir_with_the_public_trainable(tmp_path):
    """docs/ray-tools.md: ExperimentAnalysis and Tuner.restore on a run dir's experiment,
    with nothing imported from a private module."""
    from ray import tune

    import sweeps

    spec = load_spec(grid_spec(tmp_path, strategies=["vanilla"], grid={}, seeds=2))
    run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
    (experiment,) = sorted((Path(spec.run_dir()) / "tune").glob("grid-*"))
    frame = tune.ExperimentAnalysis(str(experiment)).dataframe()
    assert sorted(frame["config/trial/key"]) == sorted(t.key for t in expand_grid(spec))
    assert frame["objective"].notna().all()
    tuner = tune.Tuner.restore(str(experiment), trainable=sweeps.trainable(cpu=1))
    grid = tuner.get_results()
    assert len(grid) == 2 and all(r.error is None for r in grid)
    assert {r.config["trial"]["key"] for r in grid} == set(frame["config/trial/key"])
