"""Seed statistics on synthetic result tables with known means and variances; loading."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis
from trainer.strategies import settings_label


def knob_columns(knobs: dict) -> dict:
    """A row's knob columns and ``settings`` label, as ``sweeps.results`` writes them."""
    return {**knobs, "settings": settings_label({k: v for k, v in knobs.items() if v is not None})}


def table(configs: dict[tuple, list[float]], dataset: str = "d", metric: str = "accuracy"):
    """A results table: {(strategy, K, distill λ, noise λ): [value per seed 0, 1, ...]}."""
    rows = []
    for (strategy, k, dl, nl), values in configs.items():
        for seed, v in enumerate(values):
            if v is None:
                continue
            rows.append(
                {
                    "key": f"{strategy}-{k}-{dl}-{nl}-{seed}",
                    "dataset": dataset,
                    "strategy": strategy,
                    "seed": seed,
                    **knob_columns({"distill.k": k, "distill.lambda": dl, "noise.lambda": nl}),
                    "optuna_trial": None,
                    "primary_metric": metric,
                    "primary_dev_score": v,
                    "status": "TERMINATED",
                    f"dev_{metric}": v,
                }
            )
    return analysis.tidy(pd.DataFrame(rows))


def test_seed_stats_known_mean_and_variance():
    df = table(
        {
            ("vanilla", None, None, None): [0.70, 0.72, 0.74, 0.76],
            ("sda", "2", 1.0, None): [0.80, 0.80, 0.80, 0.80],
        }
    )
    s = analysis.seed_stats(df).set_index("strategy")
    v = s.loc["vanilla"]
    assert v["n"] == 4
    assert v["mean"] == pytest.approx(0.73)
    # values 0.70..0.76 step 0.02: sum of squared deviations 0.002, ddof=1 -> var 0.002/3
    assert v["var"] == pytest.approx(0.002 / 3)
    assert v["std"] == pytest.approx(math.sqrt(0.002 / 3))
    assert v["sem"] == pytest.approx(math.sqrt(0.002 / 3) / 2)
    low, high = stats.t.interval(0.95, 3, loc=0.73, scale=math.sqrt(0.002 / 3) / 2)
    assert (v["ci_low"], v["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert (v["min"], v["median"], v["max"]) == (0.70, pytest.approx(0.73), 0.76)
    assert v["seeds"] == (0, 1, 2, 3)
    c = s.loc["sda"]
    assert (c["mean"], c["std"]) == pytest.approx((0.8, 0))
    # four equal runs: the exact sign-flip interval excludes nothing (analysis._exact)
    assert (c["ci_low"], c["ci_high"]) == (-math.inf, math.inf)
    assert c["label"] == "sda K=2 dλ=1"


def test_bootstrap_interval_matches_scipy():
    x = np.array([0.61, 0.70, 0.66, 0.74, 0.69])
    df = table({("vanilla", None, None, None): list(x)})
    s = analysis.seed_stats(df, ci="bootstrap").iloc[0]
    ref = stats.bootstrap(
        (x,), np.mean, method="percentile", n_resamples=9999, rng=np.random.default_rng(0)
    ).confidence_interval
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_single_seed_and_missing_seeds():
    df = table(
        {
            ("vanilla", None, None, None): [0.7, 0.8, 0.9],
            ("noisytune", None, None, 0.15): [0.75, None, None],
        }
    )
    s = analysis.seed_stats(df).set_index("strategy")
    one = s.loc["noisytune"]
    assert one["n"] == 1 and one["mean"] == 0.75
    assert math.isnan(one["std"]) and math.isnan(one["ci_low"])
    assert one["missing_seeds"] == (1, 2)
    assert s.loc["vanilla", "missing_seeds"] == ()


def test_averaged_model_rows_and_filters():
    df = table({("se", "all", None, None): [0.7, 0.8]})
    df["averaged_dev_accuracy"] = [0.75, 0.85]
    df["test_accuracy"] = [0.6, 0.7]
    s = analysis.seed_stats(df)
    got = {(r.model, r.split): r.mean for r in s.itertuples()}
    assert got == {
        ("student", "dev"): pytest.approx(0.75),
        ("averaged", "dev"): pytest.approx(0.8),
        ("student", "test"): pytest.approx(0.65),
    }
    only = analysis.seed_stats(df, models=["averaged"])
    assert list(only["label"]) == ["se K=all [averaged]"]


def test_unfinished_trials_are_ignored_and_listed():
    df = table({("vanilla", None, None, None): [0.7, 0.8, 0.9]})
    df.loc[2, "status"] = "ERROR"
    df = analysis.tidy(df)
    assert analysis.seed_stats(df).iloc[0]["n"] == 2
    missing = analysis.missing_trials(df, expected_keys=[*df["key"], "planned-but-absent"])
    assert list(missing["status"]) == ["ERROR", "no result yet"]


def test_load_resolves_paths_of_another_machine(tmp_path):
    run = tmp_path / "copied-run"
    (run / "trials" / "t0").mkdir(parents=True)
    (run / "trials" / "t0" / "result.json").write_text("{}")
    df = table({("vanilla", None, None, None): [0.7]})
    df["result_path"] = ["/cluster/home/someone/runs/q/trials/t0/result.json"]
    df["logits_path"] = ["/cluster/home/someone/runs/q/trials/t0/logits.npz"]  # not copied
    df.drop(columns=["finished"]).to_parquet(run / "results.parquet")
    loaded = analysis.load(run)
    assert loaded["result_path"].iloc[0] == str(run / "trials" / "t0" / "result.json")
    assert pd.isna(loaded["logits_path"].iloc[0])
    assert loaded.attrs["run_dir"] == str(run)
    assert analysis.load(run / "results.parquet")["finished"].all()


def test_load_errors_are_user_errors(tmp_path):
    with pytest.raises(analysis.AnalysisError, match="neither a sweep run directory"):
        analysis.load(tmp_path)
    (tmp_path / "sweep.json").write_text("{}")
    with pytest.raises(analysis.AnalysisError, match="no trial of this sweep has finished"):
        analysis.load(tmp_path)


def test_cost_table_sums_runtimes_and_compares_with_vanilla():
    from analysis._tables import cost_table

    df = table(
        {
            ("vanilla", None, None, None): [0.8, 0.8],
            ("sda", "5", 1.0, None): [0.8, 0.8, 0.8],
            ("sda", "1", 1.0, None): [0.8, None],  # one seed never finished
        }
    )
    df["runtime_s"] = [60.0, 80.0, 140.0, 140.0, 140.0, 100.0]  # vanilla, sda K=5, sda K=1
    search = df.iloc[[2]].assign(key="search-0", optuna_trial=0.0, runtime_s=210.0)
    df = pd.concat([df, search], ignore_index=True)
    cost = cost_table(df).set_index(["strategy", "K"])
    assert list(cost.index) == [("vanilla", "—"), ("sda", "1"), ("sda", "5"), ("sda", "5 (search)")]
    assert cost.loc[("vanilla", "—"), "mean_s"] == 70.0
    assert cost.loc[("sda", "5"), "trials"] == 3
    assert cost.loc[("sda", "5"), "total_min"] == pytest.approx(7.0)
    assert cost.loc[("sda", "5"), "x_vanilla"] == pytest.approx(2.0)
    assert cost.loc[("sda", "5 (search)"), "x_vanilla"] == pytest.approx(3.0)
    assert cost_table(df.drop(columns="runtime_s")).empty


def test_a_table_with_the_old_primary_column_still_loads():
    """Results written before the column said what it holds (``primary``) read the same;
    a table where old and new rows meet takes each row's value from the one it has."""
    old = pd.DataFrame({"dataset": ["a", "a"], "strategy": ["vanilla"] * 2, "seed": [0, 1],
                        "primary": [0.7, None], "primary_dev_score": [None, 0.8],
                        "status": ["TERMINATED"] * 2})  # fmt: skip
    df = analysis.tidy(old)
    assert "primary" not in df.columns
    assert df["primary_dev_score"].tolist() == [0.7, 0.8] and df["finished"].all()
