"""Checkpoints: an interrupted run, resumed, ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from trainer import ConfigError, load_config, train
from trainer.loading import merge


class Interrupted(Exception):
    pass


def _die_at_step_8(metrics, checkpoint_dir):
    """A reporter that interrupts the run at step 8, after its checkpoint at step 8."""
    if metrics["step"] == 8:
        raise Interrupted


def _comparable(result: dict) -> dict:
    return {k: result[k] for k in ("metrics", "history", "steps", "config")}


def assert_same_logits(a: Path, b: Path) -> None:
    """The ``logits.npz`` of two run directories hold the same arrays, bit for bit."""
    with np.load(a / "logits.npz") as x, np.load(b / "logits.npz") as y:
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])


# RecAdam's γ keeps lr·γ <= 1 at tiny_config's lr, and its t0 puts the anneal mid-run
RECADAM = {"recadam": {"gamma": 100.0, "k": 1.0, "t0": 6}}


@pytest.mark.parametrize(
    ("strategy", "extra"),
    [("sda", {}), ("sdv", {}), ("noisytune+se", {}), ("recadam", RECADAM),
     ("noisytune+recadam+sda", RECADAM), ("mixout", {}), ("noisytune+recadam+mixout+sdv", RECADAM)],
)  # fmt: skip
def test_resume_after_interruption_is_exact(tiny_config, tmp_path, strategy, extra):
    config = load_config(merge(tiny_config, {"strategy": strategy, "distill": {"k": 2}, **extra}))
    reference = train(config, tmp_path / "reference")

    with pytest.raises(Interrupted):
        train(config, tmp_path / "resumed", report=_die_at_step_8)
    assert not (tmp_path / "resumed" / "result.json").exists()
    resumed = train(config, tmp_path / "resumed")
    assert resumed["resumed_from_steps"] == [8]
    assert _comparable(resumed) == _comparable(reference)
    assert_same_logits(tmp_path / "reference", tmp_path / "resumed")


def test_checkpoint_of_another_config_is_refused(tiny_config, tmp_path):
    train(load_config(tiny_config), tmp_path / "run")
    other = load_config(merge(tiny_config, {"seed": 1}))
    with pytest.raises(ConfigError, match="different config"):
        train(other, tmp_path / "run")


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("strategy", "extra"), [("sda", {}), ("recadam+sda", RECADAM), ("mixout+sda", {})]
)
def test_sigkill_mid_run_then_same_command_resumes_exactly(tiny_config, tmp_path, strategy, extra):
    config = merge(
        tiny_config,
        {
            **extra,
            "strategy": strategy,
            "distill": {"k": 3},
            "optim": {"max_steps": 40},
            "eval": {"every_steps": 10},
            "checkpoint": {"every_steps": 2},
        },
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    reference = _cli(["train", str(path), "--out", str(tmp_path / "ref"), "--no-progress"])
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()

    args = ["train", str(path), "--out", str(tmp_path / "killed"), "--no-progress"]
    victim = _cli(args)
    state = tmp_path / "killed" / "checkpoint" / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "the run finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed" / "result.json").exists()

    again = _cli(args)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    ref = json.loads((tmp_path / "ref" / "result.json").read_text())
    got = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert got["resumed_from_steps"] and got["resumed_from_steps"][0] > 0
    assert _comparable(got) == _comparable(ref)


def test_finished_run_drops_its_checkpoint_and_is_not_trained_again(tiny_config, tmp_path):
    config = load_config(tiny_config)
    first = train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint").exists()
    result_file = tmp_path / "run" / "result.json"
    written = result_file.stat().st_mtime_ns
    assert train(config, tmp_path / "run") == json.loads(result_file.read_text()) == first
    assert result_file.stat().st_mtime_ns == written  # returned, not retrained


def test_keep_final_keeps_the_last_checkpoint(tiny_config, tmp_path):
    config = load_config(merge(tiny_config, {"checkpoint": {"keep_final": True}}))
    train(config, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint" / "state.pt").is_file()


def _drop_test_from_train(config: dict) -> dict:
    """``config`` as steadytune recorded it before ``data.test_from_train`` existed."""
    assert config["data"].pop("test_from_train") is None
    return config


def test_a_run_recorded_before_a_setting_existed_is_resumed_and_reused(tiny_config, tmp_path):
    """An upgrade that adds a setting (None: off) keeps a run dir's checkpoint and result;
    a recorded run of any other value of it is still refused."""
    config = load_config(tiny_config)

    with pytest.raises(Interrupted):
        train(config, tmp_path / "run", report=_die_at_step_8)
    state_file = tmp_path / "run" / "checkpoint" / "state.pt"
    state = torch.load(state_file, weights_only=True)
    _drop_test_from_train(state["config"])
    torch.save(state, state_file)
    resumed = train(config, tmp_path / "run")
    assert resumed["resumed_from_steps"] == [8]

    result_file = tmp_path / "run" / "result.json"
    recorded = json.loads(result_file.read_text())
    _drop_test_from_train(recorded["config"])
    result_file.write_text(json.dumps(recorded))
    assert train(config, tmp_path / "run")["metrics"] == resumed["metrics"]  # reused

    recorded["config"]["data"]["test_from_train"] = 5
    result_file.write_text(json.dumps(recorded))
    with pytest.raises(ConfigError, match="different config"):
        train(config, tmp_path / "run")
