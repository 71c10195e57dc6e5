"""Every example file the README points to validates as what it claims to be."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.driver import plan_rows
from sweeps.grid import expand_grid, plan_sweep
from sweeps.spec import load_spec
from trainer import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_CONFIGS = {"train-tiny.yaml"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_validates(path, tmp_path):
    if path.name in TRAIN_CONFIGS:
        assert load_config(path).model == "tiny-bert"
    else:
        # specs reading ../shared/data validate without it: files are checked at load time
        has_data_dir = "data_dir" in yaml.safe_load(path.read_text())
        rows = plan_rows(plan_sweep(load_spec(path, data_dir=tmp_path if has_data_dir else None)))
        assert sum(row["trials"] for row in rows) > 0


def test_study_specs_hold_the_issue_grid(tmp_path):
    """docs/results-v1.md's design: 10 strategy/K cells × 5 seeds per dataset, 8 × 3 λ search."""
    grid = load_spec(EXAMPLES / "study-glue-low.yaml", data_dir=tmp_path)
    trials = expand_grid(grid)
    assert len(trials) == 2 * 10 * 5
    cells = {(t.dataset, t.strategy, t.k) for t in trials}
    assert {k for _, s, k in cells if s == "sda"} == {1, 2, 5, "all"}
    assert {k for _, s, k in cells if s == "sdv"} == {1, 3}
    assert {k for _, s, k in cells if s == "noisytune+sda"} == {1}
    assert all(t.config["data"]["train_size"] == 1000 for t in trials)
    assert {t.config["data"]["files"]["train"] for t in trials} == {
        str(tmp_path / "sst2" / "train.tsv"),
        str(tmp_path / "glue_cola" / "train.tsv"),
    }
    search = load_spec(EXAMPLES / "study-sst2-lambda.yaml", data_dir=tmp_path)
    assert (search.search.n_trials, len(search.candidate_seeds)) == (8, 3)


def test_cola_follow_up_is_the_grid_cola_cells_at_five_epochs(tmp_path):
    """study-cola-5ep.yaml reruns study-glue-low's CoLA cells unchanged but for epochs."""

    def cola_trials(name):
        trials = expand_grid(load_spec(EXAMPLES / name, data_dir=tmp_path))
        return [t for t in trials if t.config["data"]["files"]["train"].endswith("cola/train.tsv")]

    def without_epochs(config):
        return {**config, "optim": {k: v for k, v in config["optim"].items() if k != "epochs"}}

    three, five = cola_trials("study-glue-low.yaml"), cola_trials("study-cola-5ep.yaml")
    assert len(five) == len(three) == 50
    assert {t.config["optim"]["epochs"] for t in five} == {5}
    assert [without_epochs(t.config) for t in five] == [without_epochs(t.config) for t in three]


def test_local_files_example_runs_as_written(tmp_path, capsys):
    """Its data ships in examples/data, its resources fit a CPU machine, and a new run
    directory is reported as new (an Optuna cell's trials are not 'new' ones missing)."""
    from sweeps.cli.main import main

    spec = EXAMPLES / "local-files.yaml"
    code = main(["sweep", str(spec), "--dry-run", "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"run directory: {tmp_path / 'run'} (new)" in " ".join(out.split())
    trials = expand_grid(load_spec(spec))
    assert {t.config["data"]["files"]["train"] for t in trials} == {
        str(EXAMPLES / "data" / "train.csv")
    }


def test_study2_specs_race_the_issue_configurations(tmp_path):
    """docs/results.md (v2): the ten configurations of issue 18 per dataset, raced from 3
    seeds by 2 to 15, on v1's fixed training subsets with held-out test rows."""
    from sweeps.grid import config_key

    expected = {
        ("vanilla", None, None), ("noisytune", None, None), ("se", "all", None),
        ("sda", 5, "window"), ("sda", "all", "window"), ("sda", None, "ema"), ("sdv", 3, None),
        ("reinit", None, None), ("llrd", None, None), ("noisytune+sda", "all", None),
    }  # fmt: skip
    v1 = {t.dataset: t.config["data"] for t in expand_grid(
        load_spec(EXAMPLES / "study-glue-low.yaml", data_dir=tmp_path))}  # fmt: skip
    for name, dataset, v1_name in [("study2-sst2.yaml", "sst2-1k", "sst2-1k"),
                                   ("study2-cola.yaml", "cola-1k-5ep", "cola-1k")]:  # fmt: skip
        spec = load_spec(EXAMPLES / name, data_dir=tmp_path)
        assert (spec.race.start, spec.race.step, spec.race.max) == (3, 2, 15)
        trials = expand_grid(spec)
        configs = {(t.strategy, t.k, t.settings.get("distill.average")) for t in trials}
        assert configs == expected, name
        assert len({config_key(t) for t in trials}) == 10
        assert {t.dataset for t in trials} == {dataset}
        for t in trials:
            data = dict(t.config["data"])
            assert data.pop("test_from_train") >= 1000  # and the rest: v1 rows
            assert data == {k: v for k, v in v1[v1_name].items() if k != "test_from_train"}
            assert t.config["distill"]["lambda"] == 1.0
            assert t.config["optim"]["layer_decay"] == (0.9 if t.strategy == "llrd" else 1.0)


def test_study2_rte_is_cut_to_four_configurations_on_the_full_training_set(tmp_path):
    spec = load_spec(EXAMPLES / "study2-rte.yaml", data_dir=tmp_path)
    trials = expand_grid(spec)
    assert {(t.strategy, t.k) for t in trials} == {
        ("vanilla", None), ("noisytune", None), ("reinit", None), ("sda", "all")
    }  # fmt: skip
    assert {t.config["data"]["train_size"] for t in trials} == {None}
    assert {t.config["optim"]["epochs"] for t in trials} == {3}
    assert spec.race.budget_trials == 20


def test_the_companions_study_races_six_configurations_at_three_nested_sizes(tmp_path):
    spec = load_spec(EXAMPLES / "noisytune-companions.yaml", data_dir=tmp_path)
    assert [d.label for d in spec.datasets] == ["sst2@200", "sst2@500", "sst2@1000"]
    assert {d.data.test_from_train_after for d in spec.datasets} == {1000}
    trials = expand_grid(spec)
    configs = {(t.dataset, t.strategy) for t in trials}
    assert len(configs) == 3 * 6
    recadam = next(t for t in trials if t.strategy == "noisytune+recadam")
    assert recadam.config["recadam"] == {"gamma": 5000.0, "k": 0.1, "t0": 40,
                                         "anneal": "sigmoid", "weight": 1.0}  # fmt: skip
    assert next(t for t in trials if t.strategy == "mixout").settings == {"mixout.p": 0.7}
    assert all(t.config["optim"]["max_steps"] == 120 for t in trials)


def test_the_task_examples_say_their_task_and_metric(tmp_path):
    expected = (("stsb.yaml", "regression", "pearson_spearman"),
                ("conll-ner.yaml", "token_classification", "entity_f1"))  # fmt: skip
    for name, task, metric in expected:
        spec = load_spec(EXAMPLES / name, data_dir=tmp_path)
        (dataset,) = spec.datasets
        assert (dataset.data.resolved_task, dataset.primary_metric) == (task, metric)
        assert spec.race.budget_trials == 20  # the 45 minutes of docs/results-tasks.md
        assert {t.strategy for t in expand_grid(spec)} == {"vanilla", "noisytune", "sda",
                                                           "reinit"}  # fmt: skip
