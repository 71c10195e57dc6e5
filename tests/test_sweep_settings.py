"""A grid over any dotted trainer setting, and an Optuna search of one (``optim.lr``),
end to end on a local Ray with the stand-in trainer of test_sweep_fake.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import test_sweep_fake as fake
from test_sweep_ray import expected_primary, grid_spec

from analysis import compare_to_vanilla, load, seed_stats
from sweeps.driver import run_sweep
from sweeps.grid import expand_grid, search_cells
from sweeps.spec import load_spec


def test_a_grid_over_optim_lr_is_a_product_where_it_matters(tmp_path):
    spec = load_spec(grid_spec(tmp_path, strategies=["vanilla", "sda", "reinit"],
                               grid={"optim.lr": [2e-5, 5e-5], "distill.k": [1, 2],
                                     "reinit.layers": [1, 2]}))  # fmt: skip
    trials = expand_grid(spec)
    by_strategy = pd.Series([t.strategy for t in trials]).value_counts().to_dict()
    # lr for all; K only for sda; reinit.layers only for reinit; 2 seeds each
    assert by_strategy == {"vanilla": 2 * 2, "sda": 2 * 2 * 2, "reinit": 2 * 2 * 2}
    for t in trials:
        assert t.config["optim"]["lr"] == t.settings["optim.lr"]
        assert ("reinit.layers" in t.settings) is (t.strategy == "reinit")
        assert f"optim.lr={t.settings['optim.lr']:g}" in t.key
    assert len({t.key for t in trials}) == len(trials)


def test_grid_sweep_over_optim_lr_keeps_each_lr_its_own_configuration(tmp_path):
    spec = load_spec(
        grid_spec(
            tmp_path / "runs",
            strategies=["vanilla", "sda"],
            grid={"optim.lr": [2e-5, 1e-4], "distill.k": [1, "all"]},
        )
    )
    summary = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train(),
                        stream=sys.stdout)  # fmt: skip
    assert summary["grid"] == {"trials": 2 * 2 + 2 * 2 * 2, "errors": 0}
    run_dir = Path(summary["run_dir"])
    df = pd.read_parquet(run_dir / "results.parquet")
    assert sorted(df["optim.lr"].unique()) == [2e-5, 1e-4]
    assert set(df.loc[df["strategy"] == "vanilla", "settings"]) == {
        "optim.lr=2e-05", "optim.lr=0.0001"
    }  # fmt: skip
    assert "distill.k=all distill.lambda=1 optim.lr=2e-05" in set(df["settings"])
    for col in ("pretrained_model", "optim.head_lr", "optim.batch_size", "data.train_size"):
        assert df[col].notna().all(), col
    # K is an ordered categorical (1 < all); grid trials have no Optuna trial number
    k = df["distill.k"]
    assert isinstance(k.dtype, pd.CategoricalDtype) and k.cat.ordered
    assert list(k.cat.categories) == ["1", "all"]
    assert str(df["optuna_trial"].dtype) == "Int64"
    for row in df.to_dict("records"):
        config = json.loads(Path(row["result_path"]).read_text())["config"]
        assert config["optim"]["lr"] == row["optim.lr"]
        assert row["primary_dev_score"] == pytest.approx(expected_primary(config))
    # the analysis never pools two lrs: one summary row per (strategy, K, lr), and each
    # lr is its own unit of decision, SDA compared with the vanilla of the same lr
    results = load(run_dir)
    assert set(results["dataset"]) == {"synthetic-sentiment [optim.lr=2e-05]",
                                       "synthetic-sentiment [optim.lr=0.0001]"}  # fmt: skip
    compared = compare_to_vanilla(results)
    compared = compared[(compared["model"] == "student") & (compared["split"] == "dev")
                        & (compared["metric"] == "accuracy")]  # fmt: skip
    assert len(compared) == 2 * 2  # (lr, K) pairs
    for row in compared.to_dict("records"):
        same_lr = df[(df["strategy"] == "vanilla") & (df["optim.lr"] == row["optim.lr"])]
        assert row["vanilla_mean"] == pytest.approx(same_lr["primary_dev_score"].mean())
        assert row["n_pairs"] == 2
    table = seed_stats(results)
    dev = table[(table["split"] == "dev") & (table["metric"] == "accuracy")
                & (table["model"] == "student")]  # fmt: skip
    assert len(dev) == 2 + 2 * 2 and set(dev["n"]) == {2}
    assert dev["config_key"].is_unique


def test_optuna_searches_optim_lr(tmp_path):
    spec = load_spec(grid_spec(
        tmp_path / "runs", strategies=["vanilla", "sda"], grid={"distill.k": [1]},
        search={"param": "optim.lr", "low": 1e-6, "high": 1e-3, "log": True, "n_trials": 3,
                "sampler": "random", "sampler_seed": 1},
    ))  # fmt: skip
    cells = search_cells(spec)
    assert [c["strategy"] for c in cells] == ["vanilla", "sda"]  # lr matters for both
    assert expand_grid(spec) == []  # every strategy is searched, none left to the grid
    summary = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train(),
                        stream=sys.stdout)  # fmt: skip
    df = pd.read_parquet(Path(summary["run_dir"]) / "results.parquet")
    assert len(df) == 2 * 3 * 2 and df["key"].is_unique
    assert df["optuna_trial"].notna().all()
    lrs = df.groupby(["strategy", "optuna_trial"])["optim.lr"].agg(["nunique", "first"])
    assert (lrs["nunique"] == 1).all()  # both seeds of a candidate share its lr
    assert ((lrs["first"] >= 1e-6) & (lrs["first"] <= 1e-3)).all()
    assert lrs.groupby("strategy")["first"].nunique().eq(3).all()
    for row in df.itertuples():
        config = json.loads(Path(row.result_path).read_text())["config"]
        assert row.primary_dev_score == pytest.approx(expected_primary(config))
        assert row.settings.endswith(f"optim.lr={config['optim']['lr']:g}")


def test_a_race_cannot_sweep_a_setting_vanilla_reads(tmp_path):
    from trainer.errors import ConfigError

    raw = grid_spec(tmp_path, race={"start": 3, "max": 5}, grid={"optim.lr": [2e-5, 5e-5]})
    del raw["seeds"]
    with pytest.raises(ConfigError, match=r"'grid.optim.lr' parameter must not sweep 'optim.lr'"):
        load_spec(raw)


def test_tune_starts_the_longest_trials_first(tmp_path):
    """More steps first, then a teacher's run, then a plain run carrying SE windows, then
    the rest in grid order (seeds stay in order within a configuration)."""
    from sweeps.driver import longest_first
    from sweeps.grid import expand_grid

    spec = load_spec({
        "name": "order", "model": "tiny-bert", "storage": str(tmp_path), "seeds": 2,
        "datasets": [{"name": "synthetic-sentiment", "train_size": 64},
                     {"id": "long", "name": "synthetic-sentiment", "train_size": 256}],
        "strategies": ["vanilla", "se", "noisytune", "sda"],
        "grid": {"distill.k": ["all"]},
        "defaults": {"optim": {"epochs": 1, "batch_size": 16}},
    })  # fmt: skip
    order = [
        (t.dataset, t.strategy, t.seed)
        for t in longest_first([t for t in expand_grid(spec) if not t.derived_from])
    ]
    per_dataset = [(s, seed) for _, s, seed in order[:6]]
    assert {d for d, _, _ in order[:6]} == {"long"}
    assert per_dataset == [("sda", 0), ("sda", 1), ("vanilla", 0), ("vanilla", 1),
                           ("noisytune", 0), ("noisytune", 1)]  # fmt: skip


def test_a_setting_may_be_swept_per_strategy(tmp_path):
    """``distill.average: {sda: [window, ema]}`` gives SDA both teachers and leaves the
    other strategies' at the default; the EMA point has no K, so the K list does not
    multiply it (one EMA configuration, not one per K)."""
    spec = load_spec(grid_spec(tmp_path, strategies=["vanilla", "sda", "noisytune+sda"],
                               grid={"distill.k": {"sda": [5, "all"], "noisytune+sda": [1]},
                                     "distill.average": {"sda": ["window", "ema"]}}))  # fmt: skip
    trials = expand_grid(spec)
    configs = {(t.strategy, t.k, t.settings.get("distill.average")) for t in trials}
    assert configs == {
        ("vanilla", None, None),
        ("sda", 5, "window"), ("sda", "all", "window"), ("sda", None, "ema"),
        ("noisytune+sda", 1, None),
    }  # fmt: skip
    ema = [t for t in trials if t.settings.get("distill.average") == "ema"]
    assert [t.seed for t in ema] == [0, 1]  # one EMA trial per seed
    assert all("distill.average=ema" in t.key and "_k" not in t.key for t in ema)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"distill.average": {"sdx": ["ema"]}},
         r"'grid.distill.average.sdx' parameter must name strategies of this spec"),
        ({"distill.average": {"vanilla": ["ema"]}},
         r"'grid.distill.average.vanilla' parameter must name strategies that read "
         r"'distill.average'; 'vanilla' does not"),
        ({"distill.average": {"sda": ["mean"]}}, r"'grid.distill.average.sda\[0\]' parameter"),
        ({"optim.lr": {"sda": []}}, r"'grid.optim.lr.sda' parameter must list at least one"),
    ],
)  # fmt: skip
def test_a_per_strategy_setting_names_the_bad_entry(tmp_path, grid, message):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_spec(grid_spec(tmp_path, strategies=["vanilla", "sda"], grid=grid))


def test_a_race_may_sweep_a_setting_only_for_other_strategies(tmp_path):
    """Vanilla stays one configuration, so the race pairs every other with it; a
    per-strategy list that gives vanilla values is refused like a shared one."""
    from trainer.errors import ConfigError

    raw = grid_spec(tmp_path, race={"start": 3, "max": 5},
                    grid={"distill.k": [1], "optim.lr": {"sda": [2e-5, 5e-5]}})  # fmt: skip
    del raw["seeds"]
    trials = expand_grid(load_spec(raw))
    assert {t.settings.get("optim.lr") for t in trials if t.strategy == "vanilla"} == {None}
    assert {t.settings["optim.lr"] for t in trials if t.strategy == "sda"} == {2e-5, 5e-5}
    raw["grid"] = {"distill.k": [1], "optim.lr": {"vanilla": [2e-5], "sda": [5e-5]}}
    with pytest.raises(ConfigError, match=r"'grid.optim.lr' parameter must not sweep 'optim.lr'"):
        load_spec(raw)
