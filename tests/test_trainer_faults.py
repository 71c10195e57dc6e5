"""What the trainer does when things go wrong: divergence, a damaged checkpoint, a model
that cannot hold the config, and the provenance that makes numbers comparable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_resume import assert_same_logits

from sweeps.trial import final_metrics
from trainer import ConfigError, load_config, train
from trainer.checkpoint import CorruptCheckpointWarning, load_checkpoint, save_checkpoint
from trainer.jsonio import to_json_safe, write_json_atomic
from trainer.loading import merge
from trainer.metrics import classification_metrics
from trainer.models import check_model_limits, check_model_resolvable


class Interrupted(Exception):
    pass


def _strict_json(path) -> dict:
    """Parse as standard JSON: a bare NaN/Infinity is an error, as in jq or JavaScript."""

    def refuse(constant: str):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def _comparable(result: dict) -> dict:
    return {k: result[k] for k in ("metrics", "history", "steps", "config", "status")}


def _die_at_step_8(metrics, checkpoint_dir):
    if metrics["step"] == 8:
        raise Interrupted


# -- divergence ---------------------------------------------------------------------


def test_non_finite_logits_predict_the_finite_class():
    logits = np.array([[np.nan, 1.0], [1.0, np.nan], [np.inf, np.nan], [np.nan, np.nan]])
    scores = classification_metrics(logits.astype(np.float32), np.array([1, 0, 0, 0]))
    assert scores["accuracy"] == 1.0  # plain argmax picks the first NaN: 0 of 4 right


def test_json_safe_turns_non_finite_into_null_and_numpy_into_python(tmp_path):
    payload = {"a": float("nan"), "b": [np.float32(np.inf), (np.int64(3), -float("inf"))]}
    safe = to_json_safe(payload)
    assert safe == {"a": None, "b": [None, [3, None]]}
    assert type(safe["b"][1][0]) is int
    write_json_atomic(tmp_path / "x.json", payload)
    assert _strict_json(tmp_path / "x.json") == safe
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left


@pytest.mark.parametrize(
    "overrides",
    [
        {"optim": {"lr": 1e10, "head_lr": 1e10}},
        {"strategy": "noisytune", "noise": {"lambda": 1e30}},
    ],
    ids=["lr", "noise"],
)
def test_divergence_stops_evaluates_and_says_so(tiny_config, tmp_path, overrides):
    config = load_config(merge(tiny_config, {**overrides, "save_model": True}))
    reports: list[dict] = []
    result = train(config, tmp_path / "run", report=lambda m, _: reports.append(m))

    assert result["status"] == "diverged"
    at = result["diverged_at_step"]
    assert 1 <= at <= 12 and result["steps"] == at - 1
    if "noise" in overrides:
        assert at == 1  # the perturbed model's very first loss is not finite
    assert _strict_json(tmp_path / "run" / "result.json") == result
    # the diverged seed has metrics (from the last finite parameters) and logits
    for split in ("dev", "test"):
        assert 0.0 <= result["metrics"][split]["accuracy"] <= 1.0
    assert result["history"][-1]["step"] == at - 1 and reports[-1]["step"] == at - 1
    # each step is in the history once, even when the last one was evaluated before the
    # divergence (and the final scoring then replaces that entry, test included)
    steps = [h["step"] for h in result["history"]]
    assert len(steps) == len(set(steps)) and "test" in result["history"][-1]
    with np.load(tmp_path / "run" / "logits.npz") as logits:
        assert {"dev_logits", "test_logits", "dev_labels"} <= set(logits.files)
    # stopped before backward/step: no NaN reached the parameters
    weights = load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    assert not (tmp_path / "run" / "checkpoint").exists()  # a diverged run is finished

    flat = final_metrics(result, tmp_path / "run", "accuracy")
    assert flat["status"] == "diverged" and flat["diverged_at_step"] == at
    assert flat["dev/accuracy"] == result["metrics"]["dev"]["accuracy"]


def test_a_normal_run_is_finished_and_records_its_provenance(tiny_config, tmp_path):
    config = load_config(merge(tiny_config, {"threads": 1}))
    result = train(config, tmp_path / "run")
    assert _strict_json(tmp_path / "run" / "result.json") == result
    assert result["status"] == "finished" and result["diverged_at_step"] is None
    assert result["recovered_checkpoints"] == []
    assert result["versions"]["torch"] is not None and "git_commit" in result
    threads = result["threads"]
    assert set(threads) == {"intra_op", "inter_op", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    assert threads["intra_op"] == 1 and threads["inter_op"] >= 1
    flat = final_metrics(result, tmp_path / "run", "accuracy")
    assert flat["status"] == "finished" and flat["diverged_at_step"] is None


# -- damaged checkpoints ------------------------------------------------------------


def test_truncated_checkpoint_is_moved_aside_and_the_run_restarts_exactly(tiny_config, tmp_path):
    config = load_config(tiny_config)
    reference = train(config, tmp_path / "reference")
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(config, out, report=_die_at_step_8)
    state = out / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])

    # the restart is itself interrupted: the recovery must survive into the next checkpoint
    with (
        pytest.warns(CorruptCheckpointWarning, match="checkpoint/state.pt"),
        pytest.raises(Interrupted),
    ):
        train(config, out, report=_die_at_step_8)
    resumed = train(config, out)

    assert resumed["resumed_from_steps"] == [8]  # from the fresh start's own checkpoint
    [record] = resumed["recovered_checkpoints"]
    assert record["path"] == str(state) and "\n" not in record["error"]
    assert (out / "checkpoint.corrupt-1" / "state.pt").is_file()  # kept, never deleted
    assert _comparable(resumed) == _comparable(reference)
    assert_same_logits(tmp_path / "reference", out)


def test_foreign_checkpoint_falls_back_to_the_old_one(tiny_config, tmp_path):
    config = load_config(tiny_config)
    reference = train(config, tmp_path / "reference")
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(config, out, report=_die_at_step_8)
    # as if killed between save_checkpoint's renames, with a foreign file in the new place
    os.rename(out / "checkpoint", out / ".checkpoint-old")
    (out / "checkpoint").mkdir()
    torch.save({"config": "not a dict", "step": 3}, out / "checkpoint" / "state.pt")

    with pytest.warns(CorruptCheckpointWarning):
        resumed = train(config, out)
    assert resumed["resumed_from_steps"] == [8]
    assert [r["path"] for r in resumed["recovered_checkpoints"]] == [
        str(out / "checkpoint" / "state.pt")
    ]
    assert _comparable(resumed) == _comparable(reference)


def test_load_checkpoint_treats_missing_keys_and_garbage_as_corrupt(tmp_path):
    directory = tmp_path / "checkpoint"
    save_checkpoint({"config": {}, "step": 1}, directory)
    recovered: list[dict] = []
    with pytest.warns(CorruptCheckpointWarning, match="missing keys"):
        assert load_checkpoint(directory, ("step", "model"), recovered) is None
    assert not directory.exists() and (tmp_path / "checkpoint.corrupt-1").is_dir()

    directory.mkdir()
    (directory / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(CorruptCheckpointWarning):
        assert load_checkpoint(directory, (), recovered) is None
    assert (tmp_path / "checkpoint.corrupt-2" / "state.pt").is_file()
    assert [r["path"] for r in recovered] == [str(directory / "state.pt")] * 2

    save_checkpoint({"config": {"seed": 0}, "step": 2}, directory)
    assert load_checkpoint(directory, ("step",)) == {"config": {"seed": 0}, "step": 2}


# -- the model must fit the config, checked before anything heavy loads ----------------


def _forbid_loading(monkeypatch) -> None:
    def fail(*_args, **_kwargs):
        raise AssertionError("loaded data or tokenizer before checking the model")

    monkeypatch.setattr("trainer.prepare.load_splits", fail)
    monkeypatch.setattr("trainer.prepare.load_tokenizer", fail)


def test_max_length_beyond_the_position_embeddings_is_a_config_error(
    tiny_config, tmp_path, monkeypatch
):
    _forbid_loading(monkeypatch)
    config = load_config(merge(tiny_config, {"data": {"max_length": 1024}}))
    with pytest.raises(ConfigError, match=r"'data.max_length'.*at most 512.*Got 1024") as err:
        train(config, tmp_path / "run")
    assert "\n" not in str(err.value)
    at_limit = load_config(merge(tiny_config, {"data": {"max_length": 512}}))
    check_model_limits(at_limit, check_model_resolvable("tiny-bert", tiny_config["cache_dir"]))


def test_unresolvable_model_is_a_one_line_config_error(tiny_config, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    for name in (str(tmp_path / "empty"), str(tmp_path / "missing")):
        with pytest.raises(ConfigError, match="could not be loaded") as err:
            check_model_resolvable(name, tmp_path)
        assert "\n" not in str(err.value)
    _forbid_loading(monkeypatch)
    with pytest.raises(ConfigError, match="could not be loaded"):
        train(load_config(merge(tiny_config, {"model": str(tmp_path / "empty")})), tmp_path / "o")


def test_unknown_hub_id_offline_exits_2_with_one_line(tiny_config, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(merge(tiny_config, {"model": "no-such-org/no-such-model"})))
    out = subprocess.run(
        [sys.executable, "-m", "sweeps.cli.main", "train", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "no-such-org/no-such-model" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


# -- threads: part of the config, so the environment cannot change the numbers ---------


def test_same_config_same_numbers_whatever_omp_num_threads(tiny_config, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(merge(tiny_config, {"threads": 1})))
    results = []
    for omp in ("1", "2"):
        out = tmp_path / f"omp{omp}"
        run = subprocess.run(
            [sys.executable, "-m", "sweeps.cli.main", "train", str(path), "--out", str(out),
             "--no-progress"],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": omp},
            timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        results.append(_strict_json(out / "result.json"))
    a, b = results
    assert a["threads"]["intra_op"] == b["threads"]["intra_op"] == 1
    assert (a["threads"]["OMP_NUM_THREADS"], b["threads"]["OMP_NUM_THREADS"]) == ("1", "2")
    assert a["metrics"] == b["metrics"] and a["history"] == b["history"]


def test_divergence_right_after_an_evaluation_rescores_that_step(tiny_config, tmp_path):
    """Evaluated every step, the last finite step was already scored on dev; the final
    scoring replaces that entry (with test, keeping its training loss), not repeats it."""
    config = load_config(
        merge(tiny_config, {"optim": {"lr": 1e10, "head_lr": 1e10}, "eval": {"every_steps": 1}})
    )
    result = train(config, tmp_path / "run")
    at = result["diverged_at_step"]
    assert at is not None and at >= 2  # step 1 was finite and evaluated
    steps = [h["step"] for h in result["history"]]
    assert steps == list(range(1, at))
    assert all("test" not in h for h in result["history"][:-1])
    last = result["history"][-1]
    assert "test" in last and last["train_loss"] is not None
    assert result["metrics"]["test"] == last["test"]
