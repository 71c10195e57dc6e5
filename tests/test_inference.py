"""Saved weights evaluated again reproduce the trial's own logits (the AVG ensemble path)."""

from __future__ import annotations

import numpy as np
from safetensors.torch import load_file

from trainer import load_config, train
from trainer.inference import evaluate_weights
from trainer.loading import merge


def test_evaluate_saved_weights_reproduces_logits(tiny_config, tmp_path):
    config = load_config(merge(tiny_config, {"save_model": True, "optim": {"max_steps": 6}}))
    train(config, tmp_path / "run")
    out = evaluate_weights(config, load_file(tmp_path / "run" / "model.safetensors"))
    with np.load(tmp_path / "run" / "logits.npz") as saved:
        np.testing.assert_allclose(out["dev_logits"], saved["dev_logits"], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["dev_labels"], saved["dev_labels"])
