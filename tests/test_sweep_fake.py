"""A stand-in for ``trainer.train`` with the same contract, for the sweep tests.

Deterministic metrics from the config alone (so an interrupted and resumed trial ends
with the same metrics), a checkpoint directory per step, resume from
``out_dir/checkpoint``, and hooks to be slow or to kill its own worker once.
No test functions here: the sweep tests import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def _score(config) -> float:
    knobs = (config.strategy, config.seed, config.distill.lam, config.noise.lam, config.teacher_k)
    key = "|".join(str(v) for v in knobs)
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    # a smooth bump in distill λ, and one in the lr (flat at its default, 2e-5), so an
    # Optuna search of either has something to find
    lr_term = -0.05 * np.log10(config.optim.lr / 2e-5) ** 2
    return 0.5 + 0.3 * h * 0.2 + 0.2 * np.exp(-((config.distill.lam - 0.7) ** 2)) + lr_term


def _unit(*parts) -> float:
    key = "|".join(str(v) for v in parts)
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF - 0.5


def _race_score(config) -> float:
    """``FAKE_TRAIN_SCORE=race``: seed noise shared by every configuration (same data
    order and head), a small part of each configuration's own, and NoisyTune made
    deliberately poor (near chance): what a seed race should stop after one round."""
    base = 0.55 if config.strategy.startswith("noisytune") else 0.80
    own = (config.strategy, config.teacher_k, config.distill.lam, config.seed)
    return base + 0.02 * _unit("seed", config.seed) + 0.004 * _unit(*own)


def _better_score(config) -> float:
    """``FAKE_TRAIN_SCORE=better``: as ``race``, but SDA 0.03 above the others on every
    seed (old or fresh): a choice a confirmation on fresh seeds confirms."""
    gain = 0.03 if config.strategy == "sda" else 0.0
    return _race_score(config) + gain


_SCORES = {"race": _race_score, "better": _better_score}


def fake_train(config, out_dir, report=None, progress=False):
    out_dir = Path(out_dir)
    steps = int(config.optim.max_steps or 4)
    sleep = float(os.environ.get("FAKE_TRAIN_SLEEP", "0"))
    die_marker = os.environ.get("FAKE_TRAIN_DIE_ONCE")  # a path: first process to pass step 2 dies
    start, resumed_from = 0, None
    ckpt = out_dir / "checkpoint"
    if (ckpt / "state.json").is_file():
        start = resumed_from = json.loads((ckpt / "state.json").read_text())["step"]
    for step in range(start + 1, steps + 1):
        time.sleep(sleep)
        tmp = out_dir / f".ckpt-{step}"
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "state.json").write_text(json.dumps({"step": step}))
        if ckpt.exists():
            shutil.rmtree(ckpt)
        tmp.rename(ckpt)
        acc = _score(config) * step / steps
        if report is not None:
            report({"step": step, "dev": {"accuracy": acc}}, ckpt)
        if die_marker and step == 2 and not Path(die_marker).exists():
            Path(die_marker).write_text(str(os.getpid()))
            os._exit(1)  # the worker process dies mid-trial
    acc = _SCORES.get(os.environ.get("FAKE_TRAIN_SCORE", ""), _score)(config)
    metrics = {
        "dev": {"accuracy": acc, "macro_f1": acc - 0.01, "mcc": 2 * acc - 1},
        "test": {"accuracy": acc - 0.02, "macro_f1": acc - 0.03, "mcc": 2 * acc - 1.04},
    }
    if config.teacher_k is not None:
        metrics["averaged"] = {"dev": {"accuracy": acc + 0.01}, "test": {"accuracy": acc}}
    np.savez(out_dir / "logits.npz", dev=np.zeros((2, 2)), dev_labels=np.zeros(2))
    result = {
        "config": config.model_dump(mode="json", by_alias=True),
        "metrics": metrics,
        "history": [],
        "versions": {"torch": "fake", "steadytune": "0.1.0"},
        "git_commit": "abc123",
        "runtime_s": 0.01,
        "resumed_from": resumed_from,
        "pid": os.getpid(),
    }
    (out_dir / "result.json").write_text(json.dumps(result))
    return result


def picklable_train():
    """``fake_train``, pickled by value so Ray workers need not import this test module."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return fake_train
