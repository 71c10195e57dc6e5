"""A dataset or metric the results do not hold is a one-line error naming it and the known
names, from every public entry point; a known name with nothing to show is ``None`` or an
empty table. And the Missing table carries a failed trial's error line and error file."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_analysis_fakerun import make_run
from test_analysis_tables import table

import analysis
from sweeps.results import trial_row
from trainer.errors import UserInputError
from trainer.layout import ERROR_FILE, TRIAL_FILE

# every public function of analysis that takes a dataset and/or a metric name
BY_DATASET = {
    "plot_seeds": lambda df, h, dataset, metric: analysis.plot_seeds(df, dataset, metric),
    "plot_k": lambda df, h, dataset, metric: analysis.plot_k(df, dataset, metric),
    "plot_lambda": lambda df, h, dataset, metric: analysis.plot_lambda(df, dataset, metric),
    "plot_learning_curves": lambda df, h, dataset, metric: analysis.plot_learning_curves(
        h, dataset, metric
    ),
    "compare_to_vanilla": lambda df, h, dataset, metric: analysis.compare_to_vanilla(
        df, metric={dataset: metric}
    ),
    "decisions": lambda df, h, dataset, metric: analysis.decisions(df, metric={dataset: metric}),
    "select": lambda df, h, dataset, metric: analysis.select(df, metric={dataset: metric}),
}
BY_METRIC = {
    **BY_DATASET,
    "seed_stats": lambda df, h, dataset, metric: analysis.seed_stats(df, metrics=[metric]),
    "compare_to_vanilla(str)": lambda df, h, dataset, metric: analysis.compare_to_vanilla(
        df, metric=metric
    ),
    "decisions(str)": lambda df, h, dataset, metric: analysis.decisions(df, metric=metric),
    "select(str)": lambda df, h, dataset, metric: analysis.select(df, metric=metric),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fake run (datasets alpha and beta) and its histories."""
    df = analysis.load(make_run(tmp_path_factory.mktemp("names"), save_models=False))
    return df, analysis.load_histories(df)


@pytest.mark.parametrize("name", sorted(BY_DATASET))
def test_unknown_dataset_is_named_with_the_known_ones(run, name):
    df, histories = run
    with pytest.raises(ValueError) as err:
        BY_DATASET[name](df, histories, "sst2", "accuracy")
    assert str(err.value) == "dataset 'sst2' is not in these results (known: alpha, beta)"
    assert isinstance(err.value, UserInputError)  # the CLI prints it and exits 2


@pytest.mark.parametrize("name", sorted(BY_METRIC))
def test_unknown_metric_is_named_with_the_known_ones(run, name):
    df, histories = run
    with pytest.raises(ValueError) as err:
        BY_METRIC[name](df, histories, "alpha", "acc")
    assert str(err.value) == (
        "metric 'acc' is not in these results (known: accuracy, macro_f1, mcc)"
    )


def test_known_names_still_work(run):
    df, histories = run
    assert analysis.plot_k(df, "alpha", "accuracy") is not None
    assert analysis.plot_learning_curves(histories, "beta", "mcc") is not None
    picked = analysis.select(df, metric={"beta": "mcc"}).groupby("dataset")["metric"].unique()
    assert picked.map(list).to_dict() == {"alpha": ["accuracy"], "beta": ["mcc"]}


def _with_failed_dataset(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus a dataset ``gamma`` whose one trial failed: known, nothing to show."""
    failed = {"key": "gamma-vanilla-0", "dataset": "gamma", "strategy": "vanilla", "seed": 0,
              "status": "ERROR", "primary_metric": "accuracy"}  # fmt: skip
    return analysis.tidy(pd.concat([df, pd.DataFrame([failed])], ignore_index=True))


def test_known_dataset_with_nothing_to_show_is_none_or_empty():
    df = table({("vanilla", None, None, None): [0.80, 0.82], ("se", "all", None, None): [0.8, 0.9]})
    assert analysis.plot_lambda(df, "d") is None  # no λ swept
    no_k = table({("vanilla", None, None, None): [0.8], ("noisytune", None, None, 0.15): [0.7]})
    assert analysis.plot_k(no_k, "d") is None  # no K swept
    df = _with_failed_dataset(df)
    assert analysis.plot_seeds(df, "gamma") is None
    assert analysis.plot_k(df, "gamma") is None
    compared = analysis.compare_to_vanilla(df, metric={"gamma": "accuracy"})
    assert set(compared["dataset"]) == {"d"}
    assert "gamma" not in analysis.decisions(df, metric={"gamma": "accuracy"})


def test_learning_curves_know_a_dataset_without_histories(run):
    df, _ = run
    histories = analysis.load_histories(_with_failed_dataset(df))
    assert "gamma" not in set(histories["dataset"])
    assert analysis.plot_learning_curves(histories, "gamma", "accuracy") is None


def _trial_dir(root, key: str, seed: int, error: dict | None):
    trial = {"key": key, "dataset": "d", "strategy": "vanilla", "seed": seed,
             "settings": {},
             "primary_metric": "accuracy", "config": {"seed": seed}, "group": "grid",
             "optuna_trial": None}  # fmt: skip
    out = root / key
    out.mkdir()
    (out / TRIAL_FILE).write_text(json.dumps({"trial": trial, "trial_id": f"t{seed}"}))
    if error is not None:
        (out / ERROR_FILE).write_text(json.dumps(error))
    else:  # finished
        result = {"config": trial["config"], "metrics": {"dev": {"accuracy": 0.8}}}
        (out / "result.json").write_text(json.dumps(result))
    return out


def test_missing_trials_carry_the_error_line_and_error_file(tmp_path):
    error = {"trial_id": "t1", "error": "RuntimeError: CUDA out of memory",
             "error_file": "/ray/session/trial_t1/error.txt"}  # fmt: skip
    rows = [
        trial_row(_trial_dir(tmp_path, "d-vanilla-0", 0, None)),
        trial_row(_trial_dir(tmp_path, "d-vanilla-1", 1, error)),
    ]
    df = analysis.tidy(pd.DataFrame(rows))
    missing = analysis.missing_trials(df, expected_keys=[*df["key"], "d-vanilla-2"])
    failed, planned = missing.to_dict("records")
    assert (failed["key"], failed["status"]) == ("d-vanilla-1", "ERROR")
    assert failed["error"] == "RuntimeError: CUDA out of memory"
    assert failed["error_file"] == "/ray/session/trial_t1/error.txt"
    assert (planned["status"], planned["error"], planned["error_file"]) == ("no result yet", "", "")


def test_missing_trials_without_error_columns_leave_them_empty():
    df = table({("vanilla", None, None, None): [0.7, 0.8]})
    df.loc[1, "status"] = "ERROR"
    missing = analysis.missing_trials(analysis.tidy(df))
    assert missing[["error", "error_file"]].to_dict("records") == [{"error": "", "error_file": ""}]
