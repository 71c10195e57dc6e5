"""Learning curves over training-set size: ``train_size: [...]`` in a spec's dataset becomes
one dataset per size with nested subsets and shared held-out rows, decided on its own; the
report draws Δ and the std ratio against the size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_analysis_tables import knob_columns

import analysis
from analysis._load import dataset_names
from sweeps.grid import expand_grid
from sweeps.spec import load_spec
from trainer.data import load_splits
from trainer.errors import ConfigError

SPEC = {
    "name": "curve",
    "model": "tiny-bert",
    "datasets": [{"id": "sent", "name": "synthetic-sentiment", "train_size": [200, 50, 100]}],
    "strategies": ["vanilla", "noisytune"],
    "seeds": 2,
}


def _files(tmp_path) -> dict:
    """400 training rows and a dev file, with no test split of their own."""
    for name, n in (("train", 400), ("dev", 40)):
        rows = "".join(f"row {i} of {name},{i % 2}\n" for i in range(n))
        (tmp_path / f"{name}.csv").write_text("text,label\n" + rows)
    return {"train": str(tmp_path / "train.csv"), "dev": str(tmp_path / "dev.csv")}


def test_a_list_of_sizes_is_one_dataset_per_size_with_nested_subsets(tmp_path):
    entry = {"id": "rows", "files": _files(tmp_path), "train_size": [200, 50, 100],
             "test_from_train": 40, "metric": "mcc"}  # fmt: skip
    spec = load_spec({**SPEC, "datasets": [entry]})
    assert [d.label for d in spec.datasets] == ["rows@50", "rows@100", "rows@200"]
    assert {d.curve for d in spec.datasets} == {"rows"}
    assert all(d.metric == "mcc" for d in spec.datasets)
    splits = [load_splits(d.data) for d in spec.datasets]
    texts = [set(s.train["text"]) for s in splits]
    assert [len(s.train) for s in splits] == [50, 100, 200]
    assert texts[0] < texts[1] < texts[2]  # the same subset_seed: each inside the next
    held_out = [list(s.test["text"]) for s in splits]
    assert held_out[0] == held_out[1] == held_out[2] and len(held_out[0]) == 40
    assert not set(held_out[0]) & texts[2]  # never trained on, at any size
    trials = expand_grid(spec)
    assert len(trials) == 3 * 2 * 2
    assert {t.curve for t in trials} == {"rows"}
    assert {t.config["data"]["train_size"] for t in trials} == {50, 100, 200}


def test_a_dataset_of_one_size_is_no_curve():
    spec = load_spec({**SPEC, "datasets": [{"name": "synthetic-sentiment", "train_size": 64}]})
    assert [(d.label, d.curve) for d in spec.datasets] == [("synthetic-sentiment", None)]


@pytest.mark.parametrize(
    ("sizes", "needle"),
    [([50, 50], "'datasets[0].train_size' parameter must list each size once"),
     ([1, 50], "'datasets[0].train_size[0]' parameter must be greater than or equal to 2"),
     ([True, 50], "'datasets[0].train_size[0]' parameter must be a number, not a boolean"),
     ([], "'datasets[0].train_size' parameter must have at least 1 item")],
)  # fmt: skip
def test_bad_sizes_are_one_line_naming_the_key(sizes, needle):
    raw = {**SPEC, "datasets": [{**SPEC["datasets"][0], "train_size": sizes}]}
    with pytest.raises(ConfigError) as err:
        load_spec(raw)
    assert needle in str(err.value) and "\n" not in str(err.value)


def _curve_table() -> pd.DataFrame:
    """Vanilla and NoisyTune at three sizes; NoisyTune's gain 0.06 at 50 rows, 0.03 at
    100, 0.0 at 200, over 4 seeds with a spread of 0.01."""
    rows, rng = [], np.random.default_rng(0)
    for size, gain in ((50, 0.06), (100, 0.03), (200, 0.0)):
        base = 0.6 + 0.1 * np.log10(size) + rng.normal(0, 0.01, 4)
        for strategy, shift, knobs in (
            ("vanilla", 0.0, {}),
            ("noisytune", gain, {"noise.lambda": 0.15}),
        ):
            for seed, v in enumerate(base + shift + rng.normal(0, 0.002, 4)):
                rows.append({
                    "key": f"sent@{size}-{strategy}-{seed}", "dataset": f"sent@{size}",
                    "curve": "sent", "data.train_size": size, "strategy": strategy,
                    "seed": seed, **knob_columns(knobs), "primary_metric": "accuracy",
                    "primary_dev_score": v, "status": "TERMINATED", "dev_accuracy": v,
                })  # fmt: skip
    rows.append({**rows[0], "key": "other", "dataset": "other", "curve": None})
    return analysis.tidy(pd.DataFrame(rows))


def test_size_curves_say_the_gain_by_size_and_the_report_draws_them():
    df = _curve_table()
    table = analysis.size_curves(df)
    assert list(table["size"]) == [50, 100, 200]
    assert set(table["label"]) == {"noisytune nλ=0.15"} and set(table["curve"]) == {"sent"}
    assert list(table["mean_diff"].round(2)) == [0.06, 0.03, 0.0]
    assert (table["diff_ci_low"] < table["mean_diff"]).all() and (table["n_pairs"] == 4).all()
    assert analysis.plot_size_curve(table, "sent") is not None
    with pytest.raises(ValueError, match="learning curve 'nope'"):
        analysis.plot_size_curve(table, "nope")
    report = analysis.build_report(df)
    headings = [b.content for b in report.blocks if b.kind == "h2"]
    assert "Learning curve sent: against vanilla by training-set size" in headings
    # a curve's sizes read smallest first, not as strings sort ("sent@100" < "sent@50")
    sections = [h.split()[1] for h in headings if h.startswith("Dataset ")]
    assert sections == ["other", "sent@50", "sent@100", "sent@200"]
    assert list(dict.fromkeys(analysis.seed_stats(df)["dataset"])) == sections
    swept = dataset_names(df.assign(dataset=df["dataset"] + " [optim.lr=2e-05]"))
    assert swept[1:] == [f"sent@{n} [optim.lr=2e-05]" for n in (50, 100, 200)]
    assert any(b.kind == "figure" and b.name == "sent-sizes" for b in report.blocks)
    assert analysis.size_curves(df[df["curve"].isna()]).empty
