"""The verdict and the K/λ choice on hand-made results tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from test_analysis_tables import table

import analysis
from analysis._sections import verdict_line
from analysis._select import confirmation_of

VANILLA = ("vanilla", None, None, None)


def _sel(df, scope="best", **kw):
    s = analysis.select(df, **kw)
    return s[s["scope"] == scope].iloc[0]


def _noise(n: int, seed: int = 0, sd: float = 0.005) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sd, n)


def test_clear_winner_is_better_and_chosen():
    df = table(
        {
            VANILLA: [0.70, 0.71, 0.72, 0.71, 0.70],
            ("sda", "1", 1.0, None): [0.80, 0.81, 0.82, 0.815, 0.805],
            ("sda", "2", 1.0, None): [0.60, 0.62, 0.64, 0.61, 0.63],
        }
    )
    best = _sel(df)
    assert (best["strategy"], best["distill.k"], best["verdict"]) == ("sda", "1", "better")
    assert best["status"] == "better"
    statuses = dict(zip(analysis.select(df)["label"], analysis.select(df)["status"], strict=True))
    assert statuses["sda K=1 dλ=1"] == "better"


def test_a_higher_mean_on_few_noisy_seeds_is_not_crowned():
    """The quickstart's failure: 3 seeds, a config 'ahead' by less than the noise."""
    van = [0.854, 0.840, 0.868]
    df = table({VANILLA: van, ("sda", "1", 1.0, None): [0.849, 0.845, 0.860]})
    best = _sel(df)
    assert best["verdict"] == "unresolved" and best["strategy"] == "vanilla"
    dd = analysis.decisions(df)["d"]
    assert dd.decision.contender is not None
    assert dd.decision.seeds_to_resolve > 3  # it says how many seeds would settle it


def test_equally_good_configs_go_to_the_cheaper_not_the_smaller_std():
    """K=2 has the higher mean and a smaller std, but neither is evidence: K=1 is cheaper."""
    base = np.array([0.70, 0.71, 0.72, 0.73, 0.74, 0.70, 0.72, 0.71])
    k1 = base + 0.05 + _noise(8, 1, 0.004)
    k2 = base + 0.052 + _noise(8, 2, 0.002)
    df = table({VANILLA: list(base), ("sda", "1", 1.0, None): list(k1),
                ("sda", "2", 1.0, None): list(k2)})  # fmt: skip
    best = _sel(df)
    assert best["verdict"] == "better"
    assert best["distill.k"] == "1"
    assert _sel(df, scope="sda")["distill.k"] == "1"


def test_k_all_is_the_most_expensive_and_numbers_sort_numerically():
    base = np.linspace(0.70, 0.76, 6)
    same = list(base + 0.05 + _noise(6, 3))  # equal runs: shown equivalent to each other
    df = table({VANILLA: list(base), ("sda", "all", 1.0, None): same,
                ("sda", "10", 1.0, None): same, ("sda", "2", 1.0, None): same})  # fmt: skip
    assert _sel(df)["distill.k"] == "2"  # 2 < 10 < all


def test_equivalent_needs_the_equivalence_test_not_a_missing_difference():
    base = np.random.default_rng(3).normal(0.80, 0.01, 12)
    close = base + _noise(12, 4, 0.001)
    df = table({VANILLA: list(base), ("noisytune", None, None, 0.15): list(close)})
    best = _sel(df)
    assert best["verdict"] == "equivalent" and best["strategy"] == "vanilla"
    # the same closeness on 3 seeds is not evidence of equivalence at a margin of 0.001
    few = table({VANILLA: list(base[:3]), ("noisytune", None, None, 0.15): list(close[:3])})
    tight = analysis.DecisionSettings(margin=0.001)
    assert _sel(few, settings=tight)["verdict"] == "unresolved"


def test_everything_worse_keeps_vanilla():
    df = table({VANILLA: [0.80, 0.81, 0.82, 0.81],
                ("se", "all", None, None): [0.60, 0.62, 0.61, 0.60]})  # fmt: skip
    df.loc[df["strategy"] == "se", "averaged_dev_accuracy"] = df["dev_accuracy"]
    df = analysis.tidy(df)
    best = _sel(df)
    assert best["strategy"] == "vanilla" and best["verdict"] == "equivalent"
    assert _sel(df, scope="se")["status"] == "worse"
    assert "worse" in analysis.decisions(df)["d"].decision.reason


def test_overall_choice_is_one_of_the_per_strategy_picks():
    base = np.linspace(0.70, 0.75, 6)
    df = table(
        {
            VANILLA: list(base),
            ("sda", "1", 1.0, None): list(base + 0.030 + _noise(6, 1, 0.002)),
            ("sda", "2", 1.0, None): list(base + 0.040 + _noise(6, 2, 0.002)),
            ("noisytune", None, None, 0.15): list(base + 0.035 + _noise(6, 3, 0.002)),
        }
    )
    sel = analysis.select(df)
    best = sel[sel["scope"] == "best"].iloc[0]
    picks = sel[sel["scope"] != "best"]
    assert best["label"] in set(picks["label"])


def test_selection_yaml_has_the_verdict_and_vanilla_unless_better():
    df = table({VANILLA: [0.70, 0.71, 0.72],
                ("noisytune+sda", "all", 1.0, 0.15): [0.80, 0.815, 0.82]})  # fmt: skip
    decided = analysis.decisions(df)
    data = yaml.safe_load(
        yaml.safe_dump(analysis.selection_dict(analysis.select(df, decided=decided), decided))
    )
    ds = data["datasets"]["d"]
    assert ds["verdict"] in ("better", "unresolved")
    if ds["verdict"] != "better":
        assert ds["best"]["strategy"] == "vanilla"
        assert ds["contender"] == "noisytune+sda K=all dλ=1 nλ=0.15"
        assert isinstance(ds["seeds_to_resolve"], int)
    assert data["decision"]["alpha"] == 0.05 and data["decision"]["margin"]["accuracy"] == 0.01
    assert "Holm" in data["rule"] and "TOST" in data["rule"]


def test_self_ensemble_competes_as_its_averaged_model_only():
    """SE's student is vanilla's run; only SE's averaged model is SE's result."""
    vanilla = [0.80, 0.81, 0.82]
    df = table({VANILLA: vanilla, ("se", "all", None, None): vanilla})
    averaged = {0: 0.70, 1: 0.72, 2: 0.74}
    df.loc[df["strategy"] == "se", "averaged_dev_accuracy"] = df["seed"].map(averaged)
    df = analysis.tidy(df)
    se = _sel(df, scope="se")
    assert se["model"] == "averaged" and se["mean"] == pytest.approx(0.72)
    labels = [a.label for a in analysis.decisions(df)["d"].decision.assessments]
    assert labels == ["se K=all [averaged]"]


def test_test_split_confirms_the_chosen_configuration():
    base = np.linspace(0.70, 0.75, 6)
    df = table({VANILLA: list(base), ("sda", "1", 1.0, None): list(base + 0.05)})
    df["test_accuracy"] = df["dev_accuracy"] - 0.01
    df.loc[df["strategy"] == "sda", "test_accuracy"] -= 0.03  # smaller gain on test
    dd = analysis.decisions(df)["d"]
    assert dd.decision.verdict == "better"
    assert dd.confirmation["delta"] == pytest.approx(0.02)
    assert dd.confirmation["n"] == 6
    assert dd.confirmation["outcome"] == "confirmed"
    line = verdict_line(dd)
    assert "Test split (same seeds' models, rows held out from the choice): Δ +0.0200" in line


@pytest.mark.parametrize(
    ("test_gain", "outcome", "advice"),
    [(0.0, "not confirmed", "provisional"), (-0.03, "contradicted", "do not use it")],
)
def test_a_dev_gain_the_test_split_does_not_show_is_said_so(test_gain, outcome, advice):
    """CoLA in the study v2: reinit better on dev, its test interval across 0. A verdict
    that says only BETTER would be overconfident; the line, the headline and
    selection.yaml say what the held-out rows show."""
    base = np.linspace(0.70, 0.75, 8)
    df = table({VANILLA: list(base), ("reinit", None, None, None): list(base + 0.05)})
    df["test_accuracy"] = df["dev_accuracy"]
    reinit = df["strategy"] == "reinit"
    df.loc[reinit, "test_accuracy"] += test_gain - 0.05 + _noise(8, 5, 0.01)
    decided = analysis.decisions(df)
    dd = decided["d"]
    assert dd.decision.verdict == "better"
    assert dd.confirmation["outcome"] == outcome
    line = verdict_line(dd)
    assert f", {outcome} (" in line and advice in line
    headline = analysis.build_report(df, plots=False).headline
    assert headline.iloc[0]["Δ on test (same seeds)"].endswith(f": {outcome}")
    data = analysis.selection_dict(analysis.select(df, decided=decided), decided)
    assert data["datasets"]["d"]["test_confirmation"]["outcome"] == outcome


def test_a_configuration_with_no_test_gain_is_confirmed_at_most_half_alpha():
    """By simulation: no true gain on test, so "confirmed" is a false positive; it must
    come at most (1 − confidence) / 2 of the time at every seed count."""
    rng = np.random.default_rng(18)
    for n in (3, 5, 13):
        confirmed = sum(
            confirmation_of(list(rng.normal(0.0, 0.02, n)), 0.95)["outcome"] == "confirmed"
            for _ in range(4000)
        )
        assert confirmed / 4000 < 0.025 + 3 * (0.025 * 0.975 / 4000) ** 0.5, (n, confirmed)
    # and a real gain of one sd is confirmed at about its power, 0.91, at 13 seeds
    hits = sum(
        confirmation_of(list(rng.normal(0.02, 0.02, 13)), 0.95)["outcome"] == "confirmed"
        for _ in range(1000)
    )
    assert hits > 850


def test_diverged_seeds_show_in_the_verdict():
    base = [0.80, 0.81, 0.82, 0.81]
    df = table({VANILLA: base, ("sda", "1", 1.0, None): [0.81, 0.50, 0.82, 0.81]})
    df.loc[(df["strategy"] == "sda") & (df["seed"] == 1), "status"] = "DIVERGED"
    df = analysis.tidy(df)
    d = analysis.decisions(df)["d"].decision
    assert d.flags == {"diverged": 1}


def test_no_vanilla_no_verdict():
    df = table({("sda", "1", 1.0, None): [0.8, 0.81, 0.82]})
    assert analysis.decisions(df) == {}
    assert analysis.select(df).empty


def test_summary_statuses_in_the_report():
    base = np.linspace(0.70, 0.75, 6)
    df = table({VANILLA: list(base), ("sda", "1", 1.0, None): list(base + 0.05)})
    rep = analysis.build_report(df, plots=False)
    status = rep.summary.set_index("strategy")["status"]
    assert status["vanilla"] == "reference" and status["sda"] == "better"
    assert isinstance(rep.decision_table, pd.DataFrame) and len(rep.decision_table) == 1


def test_configurations_that_differ_only_in_a_setting_keep_their_own_labels():
    """SDA with its window teacher and with its EMA teacher (or two lrs) are two
    candidates; the decision tables must not print them under one name."""
    rows = []
    for average, shift in (("window", 0.0), ("ema", 0.03)):
        part = table({VANILLA: [0.70, 0.71, 0.72, 0.71], ("sda", "1", 1.0, None): [
            0.70 + shift, 0.71 + shift, 0.72 + shift, 0.715 + shift]})  # fmt: skip
        sda = part["strategy"] == "sda"
        part.loc[sda, "settings"] += f" distill.average={average}"
        part.loc[sda, "key"] = part.loc[sda, "key"] + average
        rows.append(part if average == "window" else part[sda])
    df = pd.concat(rows, ignore_index=True).assign(config_key=None)  # keyed again, with settings
    df = analysis.tidy(df)
    labels = {a.label for a in analysis.decisions(df)["d"].decision.assessments}
    assert labels == {"sda K=1 dλ=1 distill.average=window", "sda K=1 dλ=1 distill.average=ema"}


def test_selection_yaml_keeps_a_small_setting_to_six_significant_digits():
    """selection.yaml's settings are for --set: a λ of 1.5e-6 must not round to 2e-06."""
    base = [0.70, 0.71, 0.72, 0.71, 0.70]
    df = table({VANILLA: base, ("sda", 1, 1.5e-6, None): [v + 0.001 for v in base]})
    data = analysis.selection_dict(analysis.select(df))
    assert data["datasets"]["d"]["per_strategy"]["sda"]["settings"]["distill.lambda"] == 1.5e-6


def test_each_dataset_is_decided_by_its_own_settings():
    """A report over two runs whose specs set the margin and the minimum gain differently
    decides each dataset by its own (issue 27: the first run's margins were stated for
    every dataset)."""
    from dataclasses import replace

    from analysis._decide import DecisionSettings
    from analysis._sections import _levels

    base = [0.70, 0.71, 0.72, 0.71, 0.70, 0.72]
    gain = [v + 0.012 + e for v, e in zip(base, _noise(6, 5, 0.002), strict=True)]
    df = pd.concat([table({VANILLA: base, ("sda", "1", 1.0, None): gain}, dataset=name)
                    for name in ("rte", "sst2")])  # fmt: skip
    own = DecisionSettings(margin=0.02, min_gain=0.01)
    settings = replace(DecisionSettings(), by_dataset=(("sst2", own),))
    assert settings.of("sst2") is own and settings.of("rte") is settings
    assert settings.of("sst2 [optim.lr=2e-05]") is own  # a report's name for a swept lr
    dec = analysis.decisions(df, settings=settings)
    assert dec["rte"].decision.verdict == "better" and dec["rte"].decision.margin == 0.01
    # +0.012 is not shown above a minimum gain of 0.01 on 6 seeds
    assert dec["sst2"].decision.verdict != "better" and dec["sst2"].decision.margin == 0.02
    text = _levels(dec, settings, {"accuracy"})
    assert text == (
        "per dataset: rte: α = 0.05; equivalence margin accuracy ±0.01; "
        "sst2: α = 0.05; equivalence margin accuracy ±0.02; minimum gain 0.01"
    )
    sel = analysis.selection_dict(analysis.select(df, settings=settings, decided=dec), dec,
                                  settings)  # fmt: skip
    assert sel["datasets"]["sst2"]["margin"] == 0.02 and sel["datasets"]["sst2"]["min_gain"] == 0.01
    assert sel["datasets"]["rte"]["margin"] == 0.01 and "min_gain" not in sel["datasets"]["rte"]
