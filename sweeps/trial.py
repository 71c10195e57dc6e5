"""One trial, Ray-free: resume from a checkpoint directory, train, turn the result into
flat metrics. ``sweeps._ray.run_trial`` is the thin Tune wrapper around ``run_trial_body``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer.layout import CHECKPOINT_DIR, LOGITS_FILE, MODEL_FILE, RESULT_FILE

TrainFn = Callable[..., dict]
ReportFn = Callable[[dict, "Path | None"], None]


def flatten_metrics(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"dev": {"accuracy": .9}}`` -> ``{"dev/accuracy": .9}``; keeps numbers and strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            flat[name] = value
    return flat


def place_checkpoint(checkpoint_dir: Path | None, out_dir: Path) -> None:
    """Make ``out_dir/checkpoint`` hold exactly Tune's checkpoint (or nothing).

    Used for remote run dirs, where the trial's directory is local to a worker and
    Tune's uploaded checkpoint is the truth; the trainer resumes from
    ``out_dir/checkpoint``.
    """
    target = out_dir / CHECKPOINT_DIR
    if target.exists():
        shutil.rmtree(target)
    if checkpoint_dir is not None:
        shutil.copytree(checkpoint_dir, target)


def final_metrics(result: dict[str, Any], out_dir: Path, primary_metric: str) -> dict[str, Any]:
    """What the trial reports last: all metrics flat, the objective, paths and provenance.

    ``status`` ("finished" or "diverged") and ``diverged_at_step`` (None unless diverged)
    go with them: a diverged seed keeps its metrics, and the results table must say why
    they are poor. A result without a status predates divergence detection: it finished.
    """
    metrics = result.get("metrics", {})
    flat = flatten_metrics(metrics)
    model = out_dir / MODEL_FILE
    return {
        **flat,
        "objective": metrics.get("dev", {}).get(primary_metric),
        "status": str(result.get("status", "finished")),
        "diverged_at_step": result.get("diverged_at_step"),
        "runtime_s": result.get("runtime_s"),
        "git_commit": result.get("git_commit"),
        "versions": json.dumps(result.get("versions") or {}, sort_keys=True),
        "result_path": str(out_dir / RESULT_FILE),
        "logits_path": str(out_dir / LOGITS_FILE),
        "model_path": str(model) if model.exists() else None,
        "done": True,
    }


def run_trial_body(
    trial: dict[str, Any],
    out_dir: Path,
    report: ReportFn,
    train_fn: TrainFn | None = None,
) -> dict[str, Any]:
    """Train one trial in ``out_dir`` (the trainer resumes from ``out_dir/checkpoint``,
    put there by ``place_checkpoint``); return the final metrics.

    ``report(metrics, checkpoint_dir)`` receives the trainer's intermediate reports,
    already flattened.
    """
    from trainer import load_config

    if train_fn is None:
        from trainer import train as train_fn

    out_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(trial["config"])

    def _report(metrics: dict, ckpt: Path | None) -> None:
        report(flatten_metrics(metrics), ckpt)

    result = train_fn(config, out_dir, report=_report)
    return final_metrics(result, out_dir, trial["primary_metric"])
