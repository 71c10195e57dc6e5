"""Sweep spec validation, grid expansion and the dry run: no Ray, fast."""

from __future__ import annotations

import pytest
import yaml

from sweeps.cli.main import main
from sweeps.driver import plan_rows
from sweeps.grid import expand_grid, plan_sweep, search_cells
from sweeps.spec import load_spec
from trainer.errors import ConfigError

BASE = {
    "name": "t",
    "model": "tiny-bert",
    "datasets": [{"name": "synthetic-sentiment", "train_size": 64}],
    "strategies": ["vanilla", "se", "sda", "noisytune", "noisytune+sdv"],
    "seeds": 2,
    "grid": {"distill.lambda": [0.5, 1.0], "distill.k": [1, "all"], "noise.lambda": [0.1, 0.2]},
    "defaults": {"optim": {"max_steps": 2}},
}


def spec(**over):
    return load_spec({**BASE, **over})


def test_grid_expands_knobs_only_where_they_matter():
    trials = expand_grid(spec())
    by = {}
    for t in trials:
        by.setdefault(t.strategy, []).append(t)
    assert len(by["vanilla"]) == 2  # seeds only: no duplicate vanilla trials
    assert len(by["se"]) == 2 * 2  # K × seeds (SE has no distillation loss)
    assert len(by["sda"]) == 2 * 2 * 2  # K × distill λ × seeds
    assert len(by["noisytune"]) == 2 * 2  # noise λ × seeds
    assert len(by["noisytune+sdv"]) == 1 * 2 * 2 * 2  # K=all is not valid for SDV
    assert len({t.key for t in trials}) == len(trials)
    v = by["vanilla"][0]
    assert v.settings == {}
    assert {t.k for t in by["se"]} == {1, "all"}
    assert all("noise.lambda" not in t.settings for t in by["sda"])
    assert {t.settings["distill.lambda"] for t in by["sda"]} == {0.5, 1.0}


def test_per_dataset_k_and_epochs_and_metric():
    s = spec(datasets=[{"name": "synthetic-pairs", "k": [3], "epochs": 2, "metric": "mcc"}])
    trials = expand_grid(s)
    sda = [t for t in trials if t.strategy == "sda"]
    assert {t.k for t in sda} == {3}
    assert all(t.config["optim"]["epochs"] == 2 for t in trials)
    assert all(t.config["eval"]["primary_metric"] == "mcc" for t in trials)


def test_k_grid_per_strategy():
    s = spec(
        strategies=["vanilla", "se", "sda", "noisytune+sdv"],
        grid={"distill.k": {"se": "all", "sda": [1, 5], "noisytune+sdv": [3]}},
    )
    ks = {}
    for t in expand_grid(s):
        ks.setdefault(t.strategy, set()).add(t.k)
    assert ks == {"vanilla": {None}, "se": {"all"}, "sda": {1, 5}, "noisytune+sdv": {3}}
    # a dataset's own per-strategy K wins over the grid's
    s = spec(
        strategies=["sda"],
        datasets=[{"name": "synthetic-sentiment", "k": {"sda": [2]}}],
        grid={"distill.k": [1, 4]},
    )
    assert {t.k for t in expand_grid(s)} == {2}


def test_sdv_with_k_all_is_refused_not_replaced():
    """Before: {sdv: [all]} silently ran SDV with the default K = 1."""
    for grid, key in (({"distill.k": {"sda": [1], "sdv": ["all"]}}, "'grid.distill.k.sdv'"),
                      ({"distill.k": {"sda": ["all"], "sdv": [2, "all"]}}, "'grid.distill.k.sdv'"),
                      ({"distill.k": ["all"]}, "'grid.distill.k'")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            spec(strategies=["vanilla", "sda", "sdv"], grid=grid)
        assert key in str(err.value) and "integer K values" in str(err.value)
    # a K list shared by every strategy keeps its integers for SDV
    s = spec(strategies=["sda", "sdv"], grid={"distill.k": [2, "all"]})
    ks = {(t.strategy, t.k) for t in expand_grid(s)}
    assert ks == {("sda", 2), ("sda", "all"), ("sdv", 2)}


@pytest.mark.parametrize(
    ("grid", "needles"),
    [
        ({"distill.k": {"sda": [1]}},
         ["'grid.distill.k'", "every strategy of this spec that reads", "none for ['se']"]),
        ({"distill.k": {"sda": [1], "se": [1], "vanilla": [1]}},
         ["'grid.distill.k.vanilla'", "must name strategies that read 'distill.k'"]),
        ({"distill.k": {"sda": [0], "se": [1]}},
         ["'grid.distill.k.sda[0]' parameter must be an int >= 1 or 'all'. Got 0 instead."]),
        ({"distill.k": {"sdx": [1]}}, ["'grid.distill.k.sdx' parameter must name strategies",
                                       "'sda'", "'sdx' is not one"]),
        ({"distill.lambda": {"sda": [-1.0]}},
         ["'grid.distill.lambda.sda[0]' parameter must be greater than or equal to 0"]),
    ],
)  # fmt: skip
def test_bad_per_strategy_k_grids(grid, needles):
    with pytest.raises(ConfigError) as err:
        spec(strategies=["vanilla", "se", "sda"], grid=grid)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_seed_list_and_single_values():
    s = spec(seeds=[7, 11], strategies="sda", grid={"distill.lambda": 1.0})
    assert [t.seed for t in expand_grid(s)] == [7, 11]


def test_search_leaves_searched_strategies_to_optuna():
    s = spec(
        grid={"distill.k": [1, 2]},
        search={"param": "distill.lambda", "low": 0.1, "high": 2, "n_trials": 3,
                "seeds_per_candidate": 2},
    )  # fmt: skip
    grid = expand_grid(s)
    assert {t.strategy for t in grid} == {"vanilla", "se", "noisytune"}
    cells = search_cells(s)
    assert {(c["strategy"], c["settings"]["distill.k"]) for c in cells} == {
        ("sda", 1), ("sda", 2), ("noisytune+sdv", 1), ("noisytune+sdv", 2),
    }  # fmt: skip
    rows = {r["strategy"]: r for r in plan_rows(plan_sweep(s))}
    assert rows["sda"]["trials"] == 2 * 3 * 2


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ({"strategies": ["vanila"]}, ["'strategies[0]'", "did you mean 'vanilla'", "vanila"]),
        ({"grid": {"distill.k": [0]}}, ["'grid.distill.k[0]' parameter must be an int >= 1"]),
        ({"grid": {"distill.k": ["some"]}}, ["'grid.distill.k[0]'", "'all'. Got 'some'"]),
        ({"grid": {"teacher": [1]}}, ["'grid.teacher' parameter is not a trainer setting",
                                      "the config has no key 'teacher'"]),
        ({"grid": {"distill.lamda": [1]}}, ["'grid.distill.lamda' parameter",
                                            "no key 'lamda' (did you mean 'lambda'?)"]),
        ({"grid": {"optim.lr": [2e-5, -1]}}, ["'grid.optim.lr[1]' parameter must be greater "
                                              "than 0. Got -1 instead."]),
        ({"grid": {"optim.lr": [True]}}, ["'grid.optim.lr[0]' parameter must be a number, "
                                          "not a boolean"]),
        ({"grid": {"seed": [1, 2]}}, ["'grid.seed' parameter must not be swept"]),
        ({"grid": {"reinit.layers": [1, 2]}}, ["'grid.reinit.layers' parameter must be a setting "
                                               "one of the spec's strategies reads"]),
        ({"search": {"param": "optim.lrr", "low": 1, "high": 2}},
         ["'search.param' parameter is not a trainer setting", "did you mean 'lr'"]),
        ({"search": {"param": "optim.lr", "low": 0, "high": 1e-4}},
         ["'search.low' parameter must be greater than 0 (a value of optim.lr)"]),
        ({"resources": {"gpu": "half"}}, ["'resources.gpu", "'auto'", "half"]),
        ({"resources": {"gpu": 1.5}}, ["'resources.gpu'", "whole number"]),
        ({"seeds": 0}, ["'seeds' parameter must be a number of seeds from 1 to 1000", "Got 0"]),
        ({"seeds": [0, -1]}, ["'seeds[1]' parameter must be greater than or equal to 0"]),
        ({"seeds": [3, 3]}, ["'seeds' parameter must list each value once; 3 is there twice"]),
        ({"datasets": []}, ["'datasets'", "at least 1"]),
        ({"datasets": [{"name": "imdb"}]}, ["'datasets[0].name'", "'synthetic-sentiment'"]),
        ({"datasets": [{"data": {"name": "imdb"}}]}, ["'datasets[0].data.name'"]),
        ({"datasets": [{"name": "synthetic-sentiment", "metric": "f1"}]},
         ["'datasets[0].metric'", "'macro_f1'"]),
        ({"defaults": {"seed": 3}}, ["'defaults.seed' parameter must be left out",
                                     "cannot be a default"]),
        ({"max_failures": -1}, ["'max_failures'", "greater than or equal to 0"]),
        ({"name": "a b"}, ["'name'", "regular expression", "Got 'a b' instead."]),
        ({"grid": {}, "search": {"param": "optim.group_by_length", "low": 0, "high": 1}},
         ["'search.param' parameter must be a trainer setting that takes numbers"]),
        ({"grid": {}, "search": {"param": "distill.lambda", "low": 2, "high": 1}},
         ["'search.high' parameter must be greater than 'low' (2.0). Got 1.0 instead."]),
        ({"search": {"param": "noise.lambda", "low": 0.1, "high": 1}, "grid": {"noise.lambda": 1}},
         ["'grid.noise.lambda'", "search.param"]),
        ({"strategies": ["vanilla"], "grid": {},
          "search": {"param": "distill.lambda", "low": 0.1, "high": 1}},
         ["matters for none", "'sda'"]),
        ({"storage": 3}, ["'storage'", "valid string"]),
    ],
)  # fmt: skip
def test_invalid_specs_name_key_and_allowed_values(override, needles):
    with pytest.raises(ConfigError) as err:
        spec(**override)
    for needle in needles:
        assert needle in str(err.value), (needle, str(err.value))


def test_bad_defaults_are_reported_with_the_key():
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        expand_grid(spec(defaults={"optim": {"lr": -1}}))


def test_missing_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_spec(bad)


def test_relative_data_files_resolve_against_the_spec(tmp_path):
    (tmp_path / "d").mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({**BASE, "datasets": [{"files": {"train": "d/t.csv", "dev": "d/v.csv"}}]})
    )
    s = load_spec(path)
    assert s.datasets[0].data.files.train == (tmp_path / "d" / "t.csv").resolve()


def test_data_dir_key_and_cli_override(tmp_path):
    data, other = tmp_path / "data", tmp_path / "other"
    data.mkdir(), other.mkdir()
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "s.yaml"
    entry = {"files": {"train": "t.csv", "dev": "v.csv"}}
    for folder in (data, other):  # a dry run may check that the files are there
        for name in ("t.csv", "v.csv"):
            (folder / name).write_text("text,label\na,0\nb,1\n")
    path.write_text(yaml.safe_dump({**BASE, "data_dir": "../data", "datasets": [entry]}))
    assert load_spec(path).datasets[0].data.files.train == data / "t.csv"
    assert load_spec(path, data_dir=other).datasets[0].data.files.dev == other / "v.csv"
    assert main(["sweep", str(path), "--dry-run", "--data-dir", str(other)]) == 0
    with pytest.raises(ConfigError, match=r"--data-dir .*missing.* is not a directory"):
        load_spec(path, data_dir=tmp_path / "missing")
    path.write_text(yaml.safe_dump({**BASE, "data_dir": "../nowhere", "datasets": [entry]}))
    with pytest.raises(ConfigError, match=r"'data_dir' .*nowhere.* is not a directory"):
        load_spec(path)


def test_dry_run_cli_prints_table_and_starts_nothing(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "storage": str(tmp_path / "runs")}))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "noisytune+sdv" in out and "total" in out and "rough cost" in out
    assert not (tmp_path / "runs").exists()


def test_cli_invalid_spec_exits_2_with_message(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "strategies": ["nope"]}))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert "'strategies[0]'" in capsys.readouterr().err


def test_examples_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "examples"
    for name in ("quickstart.yaml", "glue-sst2.yaml", "local-files.yaml"):
        s = load_spec(root / name)
        assert expand_grid(s) or s.search
