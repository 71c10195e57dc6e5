"""VOTE on hand-made logits, AVG of weights, ``steadytune ensemble`` on a fake run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_analysis_fakerun import N_DEV, make_run

import analysis
from sweeps.cli.main import main


def test_vote_sums_probabilities_not_logits():
    # member A is very sure of class 0 on example 0; B and C mildly prefer class 1.
    a = np.array([[10.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 3.0], [0.0, 1.0]])
    c = np.array([[0.0, 3.0], [2.0, 0.0]])
    probs = analysis.vote([a, b, c])
    p1 = 1 / (1 + np.exp(-3.0))  # softmax([0, 3])[1]
    assert probs[0] == pytest.approx(
        [1 / (1 + np.exp(-10)) + 2 * (1 - p1), np.exp(-10) / (1 + np.exp(-10)) + 2 * p1]
    )
    assert probs.sum(axis=1) == pytest.approx([3.0, 3.0])
    # summed logits would pick class 0 on example 0 (10 vs 6); summed probabilities pick 1
    assert (a + b + c)[0].argmax() == 0 and probs[0].argmax() == 1
    with pytest.raises(analysis.AnalysisError, match="different shapes"):
        analysis.vote([a, np.zeros((3, 2))])


def test_average_weights_means_floats_and_copies_integers():
    sds = [
        {"w": torch.tensor([1.0, 2.0]), "pos": torch.arange(3)},
        {"w": torch.tensor([3.0, 6.0]), "pos": torch.arange(3)},
    ]
    avg = analysis.average_weights(sds)
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0]))
    assert avg["pos"].dtype == torch.int64 and torch.equal(avg["pos"], torch.arange(3))
    with pytest.raises(analysis.AnalysisError, match="differs"):
        analysis.average_weights([sds[0], {"w": sds[1]["w"], "pos": torch.arange(1, 4)}])


def test_ensemble_cli_vote_and_avg(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path, seeds=(0, 1, 2))
    seen = {}

    def fake_evaluate_weights(config, state_dict):
        seen["state"], seen["config"] = state_dict, config
        labels = np.zeros(N_DEV, dtype=np.int64)
        return {"dev_logits": np.tile([[1.0, 0.0]], (N_DEV, 1)), "dev_labels": labels}

    import trainer.inference

    monkeypatch.setattr(trainer.inference, "evaluate_weights", fake_evaluate_weights)
    assert main(["ensemble", str(run), "--dataset", "alpha"]) == 0
    table = pd.read_parquet(run / "ensembles.parquet")
    assert set(table["dataset"]) == {"alpha"}
    # VOTE by hand for vanilla on alpha, from the members' logits
    df = analysis.load(run)
    members = df[(df["dataset"] == "alpha") & (df["strategy"] == "vanilla")]
    files = [np.load(p) for p in members["logits_path"]]
    probs = analysis.vote([f["dev_logits"] for f in files])
    expected = float((probs.argmax(1) == files[0]["dev_labels"]).mean())
    vote = table[(table["strategy"] == "vanilla") & (table["method"] == "vote")].iloc[0]
    assert vote["dev_accuracy"] == pytest.approx(expected) and vote["seeds"] == "0,1,2"
    # SDA members have averaged logits too: a VOTE of their averaged models
    assert {"student", "averaged"} <= set(table[table["strategy"] == "sda"]["model"])
    # AVG: only vanilla saved weights; evaluated once on the mean of the three seeds
    avg = table[table["method"] == "avg"]
    assert list(avg["strategy"]) == ["vanilla"] and avg["dev_accuracy"].iloc[0] == 1.0
    from safetensors.torch import load_file

    ws = [load_file(p)["w"] for p in members["model_path"]]
    assert torch.allclose(seen["state"]["w"], torch.stack(ws).mean(0))
    assert seen["config"].model == "tiny-bert"
    err = capsys.readouterr().err
    assert "AVG skipped for" in err and "save_model: true" in err
    # built again: rows replaced, not duplicated; --size cuts disjoint groups
    assert main(["ensemble", str(run), "--dataset", "alpha", "--method", "vote"]) == 0
    assert len(pd.read_parquet(run / "ensembles.parquet")) == len(table)
    assert main(["ensemble", str(run), "--size", "1"]) == 2
