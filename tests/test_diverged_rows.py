"""A diverged seed stays in the results: counted in the report, never dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis._load import tidy
from analysis._sections import diverged_warning
from sweeps.results import DIVERGED, trial_row


def _trial_dir(tmp: Path, key: str, seed: int, status: str, acc: float) -> Path:
    config = {"seed": seed, "strategy": "sda"}
    trial = {"key": key, "dataset": "d", "strategy": "sda", "seed": seed,
             "settings": {"distill.k": 1, "distill.lambda": 1.0}, "primary_metric": "accuracy",
             "config": config, "group": "grid", "optuna_trial": None}  # fmt: skip
    out = tmp / key
    out.mkdir()
    (out / "trial.json").write_text(json.dumps({"trial": trial, "trial_id": "t"}))
    result = {"config": config, "metrics": {"dev": {"accuracy": acc}}, "status": status,
              "diverged_at_step": 3 if status == "diverged" else None}  # fmt: skip
    (out / "result.json").write_text(json.dumps(result))
    return out


def test_diverged_trial_keeps_its_metrics_and_is_counted(tmp_path):
    rows = [
        trial_row(_trial_dir(tmp_path, "a", 0, "finished", 0.9)),
        trial_row(_trial_dir(tmp_path, "b", 1, "diverged", 0.5)),
    ]
    assert rows[1]["status"] == DIVERGED and rows[1]["primary_dev_score"] == 0.5
    assert rows[1]["diverged_at_step"] == 3
    df = tidy(pd.DataFrame(rows))
    assert df["finished"].all()  # the diverged seed enters the statistics
    assert df["diverged"].tolist() == [False, True]
    warning = diverged_warning(df)
    assert "d sda K=1 dλ=1: 1 of 2 seeds" in warning
    assert "never dropped" in warning


def test_a_result_of_another_config_is_not_the_trials_result(tmp_path):
    out = _trial_dir(tmp_path, "a", 0, "finished", 0.9)
    result = json.loads((out / "result.json").read_text())
    result["config"] = {"seed": 0, "strategy": "vanilla"}
    (out / "result.json").write_text(json.dumps(result))
    assert trial_row(out) is None
