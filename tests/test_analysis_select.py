"""The K/λ rule on hand-made ties."""

from __future__ import annotations

import pytest
import yaml
from test_analysis_tables import table

import analysis


def _sel(df, scope="best"):
    s = analysis.select(df)
    return s[s["scope"] == scope].iloc[0]


def test_clear_winner():
    df = table(
        {
            ("vanilla", None, None, None): [0.70, 0.71, 0.72],
            ("sda", "1", 1.0, None): [0.80, 0.81, 0.82],
            ("sda", "2", 1.0, None): [0.60, 0.62, 0.64],
        }
    )
    best = _sel(df)
    assert (best["strategy"], best["teacher_k"], best["ties"]) == ("sda", "1", ("sda K=1 dλ=1",))


def test_tie_within_one_sem_goes_to_smaller_std():
    # best mean 0.80 (K=all, SEM 0.02); K=2 mean 0.79 is within one SEM and steadier
    df = table(
        {
            ("sda", "all", 1.0, None): [0.76, 0.80, 0.84],
            ("sda", "2", 1.0, None): [0.785, 0.79, 0.795],
            ("sda", "1", 1.0, None): [0.70, 0.70, 0.70],
        }
    )
    best = _sel(df)
    assert best["teacher_k"] == "2"
    assert set(best["ties"]) == {"sda K=2 dλ=1", "sda K=all dλ=1"}
    assert best["ties"][0] == "sda K=2 dλ=1"


def test_equal_std_goes_to_smaller_k_and_all_is_largest():
    # same values for K=all and K=4: the tie is broken by K, and 'all' > 4
    df = table(
        {("sda", "all", 1.0, None): [0.79, 0.80, 0.81], ("sda", "4", 1.0, None): [0.79, 0.80, 0.81]}
    )
    assert _sel(df)["teacher_k"] == "4"
    df = table(
        {
            ("sda", "all", 1.0, None): [0.79, 0.80, 0.81],
            ("sda", "10", 1.0, None): [0.79, 0.80, 0.81],
            ("sda", "2", 1.0, None): [0.79, 0.80, 0.81],
        }
    )
    assert _sel(df)["teacher_k"] == "2"  # numeric, not string, order: 2 < 10 < all


def test_lambda_chosen_the_same_way_and_outside_one_sem_is_no_tie():
    df = table(
        {
            ("sda", "1", 0.5, None): [0.79, 0.80, 0.81],
            ("sda", "1", 2.0, None): [0.79, 0.80, 0.81],
            ("sda", "1", 1.0, None): [0.70, 0.71, 0.72],
        }
    )
    best = _sel(df, scope="sda")
    assert best["distill_lambda"] == 0.5 and len(best["ties"]) == 2


def test_too_few_seeds_are_not_candidates_unless_nothing_else():
    df = table(
        {("sda", "1", 1.0, None): [0.95, None, None], ("sda", "2", 1.0, None): [0.80, 0.81, 0.82]}
    )
    assert _sel(df)["teacher_k"] == "2"
    df = table({("sda", "1", 1.0, None): [0.95], ("sda", "2", 1.0, None): [0.8]})
    assert _sel(df)["teacher_k"] == "1"


def test_selection_yaml_round_trip():
    df = table(
        {
            ("vanilla", None, None, None): [0.70, 0.71, 0.72],
            ("noisytune+sda", "all", 1.0, 0.15): [0.80, 0.81, 0.82],
        }
    )
    data = yaml.safe_load(yaml.safe_dump(analysis.selection_dict(analysis.select(df))))
    best = data["datasets"]["d"]["best"]
    assert best | {"ties": None} == best | {
        "strategy": "noisytune+sda",
        "model": "student",
        "k": "all",
        "distill_lambda": 1.0,
        "noise_lambda": 0.15,
        "metric": "accuracy",
        "n": 3,
        "ties": None,
    }
    assert best["summary"] == "0.8100 ± 0.0100 (n=3)"
    assert "within one SEM" in data["rule"]
    assert set(data["datasets"]["d"]["per_strategy"]) == {"vanilla", "noisytune+sda"}


def test_self_ensemble_competes_as_its_averaged_model_only():
    """SE's student is vanilla's run; only SE's averaged model is SE's result."""
    vanilla = [0.80, 0.81, 0.82]
    df = table({("vanilla", None, None, None): vanilla, ("se", "all", None, None): vanilla})
    averaged = {0: 0.70, 1: 0.72, 2: 0.74}
    df.loc[df["strategy"] == "se", "averaged_dev_accuracy"] = df["seed"].map(averaged)
    df = analysis.tidy(df)
    se = _sel(df, scope="se")
    assert se["model"] == "averaged" and se["mean"] == pytest.approx(0.72)
    assert _sel(df)["ties"] == ("vanilla",)  # SE's student no longer ties with vanilla
