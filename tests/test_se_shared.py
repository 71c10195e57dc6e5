"""No trial spent twice: SE trials are evaluations of the plain run (sweeps/derived.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sweeps.driver import run_sweep
from sweeps.grid import expand_grid
from sweeps.preflight import deepest_path
from sweeps.spec import load_spec
from trainer import train
from trainer.loading import load_config


def _spec(storage: Path, cache: Path, **over) -> dict:
    return {
        "name": "shared",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 96, "max_length": 32}],
        "strategies": ["vanilla", "se"],
        "seeds": 2,
        "defaults": {"optim": {"max_steps": 6, "batch_size": 16, "lr": 2e-3, "head_lr": 2e-3},
                     "eval": {"every_steps": 3}, "cache_dir": str(cache)},
        "storage": str(storage),
        "max_concurrent": 2,
        **over,
    }  # fmt: skip


def test_se_windows_ride_on_the_plain_run(tmp_path, cache_dir):
    spec = load_spec(_spec(tmp_path, cache_dir, strategies=["se", "noisytune+se"],
                           grid={"distill.k": [2, "all"]}))  # fmt: skip
    trials = expand_grid(spec)
    trained = [t for t in trials if t.derived_from is None]
    assert sorted(t.strategy for t in trained) == ["noisytune"] * 2 + ["vanilla"] * 2
    for t in trained:
        assert t.config["eval"]["self_ensembles"] == [2, "all"]
    derived = [t for t in trials if t.derived_from]
    assert len(derived) == 2 * 2 * 2
    keys = {t.key for t in trained}
    assert all(t.derived_from in keys for t in derived)
    # a race or a remote run dir keeps SE trained on its own
    assert all(t.derived_from is None for t in expand_grid(spec, share=False))


def test_vanilla_and_se_train_once_per_seed_and_match_a_separate_se_run(tmp_path, cache_dir):
    spec = load_spec(_spec(tmp_path / "runs", cache_dir))
    summary = run_sweep(spec, num_cpus=2, dashboard=False, stream=sys.stdout)
    assert summary["grid"] == {"trials": 2, "errors": 0}  # two trainings
    run_dir = Path(summary["run_dir"])
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 4 and set(df["status"]) == {"TERMINATED"}
    se = df[df["strategy"] == "se"].set_index("seed")
    vanilla = df[df["strategy"] == "vanilla"].set_index("seed")
    assert (se["derived_from"] == vanilla["key"]).all()
    assert (se["runtime_s"] == 0).all() and (vanilla["runtime_s"] > 0).all()  # counted once
    assert vanilla["derived_from"].isna().all()
    # the student of SE is the plain run; its averaged model is a separate SE run's, exactly
    for seed in (0, 1):
        assert se.loc[seed, "dev_accuracy"] == vanilla.loc[seed, "dev_accuracy"]
        shared = json.loads(Path(se.loc[seed, "result_path"]).read_text())
        alone = train(load_config(shared["config"]), tmp_path / f"alone-{seed}")
        for model in ("dev", "test", "averaged"):
            assert shared["metrics"][model] == alone["metrics"][model], model
        assert se.loc[seed, "averaged_dev_accuracy"] == alone["metrics"]["averaged"]["dev"][
            "accuracy"]  # fmt: skip
        with (
            np.load(se.loc[seed, "logits_path"]) as logits,
            np.load(tmp_path / f"alone-{seed}" / "logits.npz") as reference,
        ):
            assert sorted(logits.files) == sorted(reference.files)
            for name in reference.files:
                np.testing.assert_array_equal(logits[name], reference[name])
    # a resumed sweep finds everything done and trains nothing
    again = run_sweep(spec, num_cpus=2, dashboard=False, stream=sys.stdout)
    assert "grid" not in again  # "every trial ... has finished; nothing to run"
    # every path the run created is within the bound the dry run checks (issue 28)
    run_dir = summary["run_dir"]
    bound = max(deepest_path(run_dir, t.key) for t in expand_grid(spec))
    created = [p for p in Path(run_dir).rglob("*") if "ray" not in p.relative_to(run_dir).parts]
    assert len(created) > 20 and any("tune" in str(p) for p in created)
    assert max(len(str(p).encode()) for p in created) <= bound


def test_an_se_trial_fails_with_its_plain_run_and_recovers_with_it(tmp_path):
    from sweeps.derived import derive_finished
    from trainer.layout import trial_dir

    run_dir = tmp_path / "run"
    plain = {"key": "d_vanilla_s0", "config": {"strategy": "vanilla"}}
    se = {"key": "d_se_kall_s0", "config": {"strategy": "se"}, "teacher_k": "all",
          "derived_from": "d_vanilla_s0"}  # fmt: skip
    for trial in (plain, se):
        trial_dir(run_dir, trial["key"]).mkdir(parents=True)
        (trial_dir(run_dir, trial["key"]) / "trial.json").write_text(json.dumps({"trial": trial}))
    assert derive_finished(run_dir) == []  # the plain run has not ended
    (trial_dir(run_dir, plain["key"]) / "error.json").write_text(json.dumps({"error": "OOM"}))
    assert derive_finished(run_dir) == [se["key"]]
    failure = json.loads((trial_dir(run_dir, se["key"]) / "error.json").read_text())
    assert failure["error"] == "its plain run d_vanilla_s0 failed: OOM"
    # resumed, the plain run finishes: the SE trial gets its result after all
    metrics = {"dev": {"accuracy": 0.8}, "se_kall": {"dev": {"accuracy": 0.81}}}
    (trial_dir(run_dir, plain["key"]) / "result.json").write_text(
        json.dumps({"config": plain["config"], "metrics": metrics, "history": []})
    )
    np.savez(trial_dir(run_dir, plain["key"]) / "logits.npz", dev_logits=np.zeros((2, 2)),
             se_kall_dev_logits=np.ones((2, 2)), dev_labels=np.zeros(2))  # fmt: skip
    assert derive_finished(run_dir) == [se["key"]]
    result = json.loads((trial_dir(run_dir, se["key"]) / "result.json").read_text())
    assert result["metrics"] == {"dev": {"accuracy": 0.8}, "averaged": {"dev": {"accuracy": 0.81}}}
    assert result["derived_from"] == plain["key"] and result["config"] == se["config"]
    with np.load(trial_dir(run_dir, se["key"]) / "logits.npz") as logits:
        assert sorted(logits.files) == ["averaged_dev_logits", "dev_labels", "dev_logits"]
        assert logits["averaged_dev_logits"].sum() == 4
    assert derive_finished(run_dir) == []  # written once
