"""Per-trial resources: GPU fractions, ``gpu: auto``, and the feasibility check.

Trials of small models share a GPU through Ray's fractional ``GPU`` resource: four
trials asking for 0.25 run side by side on one device. Ray only does the bookkeeping;
the fraction must leave room in memory, which is what ``auto`` estimates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError

# Parameter counts of the trainer's model aliases (and common hub ids), in millions.
KNOWN_PARAMS_M = {
    "tiny-bert": 2.1,  # mostly its 30,522 x 64 embedding
    "minilm-l6": 22.7,
    "sentence-transformers/all-MiniLM-L6-v2": 22.7,
    "bert-base-uncased": 110.0,
    "google-bert/bert-base-uncased": 110.0,
    "roberta-base": 125.0,
    "bert-large-uncased": 335.0,
    "roberta-large": 355.0,
}
_DEFAULT_PARAMS_M = 125.0  # an unknown model is assumed to be base-sized
_FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # what auto picks from: several trials per GPU, evenly


def model_params_m(model: str) -> float:
    """Millions of parameters, from the alias table or a local ``config.json``."""
    if model in KNOWN_PARAMS_M:
        return KNOWN_PARAMS_M[model]
    config = Path(model) / "config.json"
    if config.is_file():
        c = json.loads(config.read_text())
        h, n, v = c.get("hidden_size"), c.get("num_hidden_layers"), c.get("vocab_size")
        if h and n and v:
            return (12 * n * h * h + v * h) / 1e6
    return _DEFAULT_PARAMS_M


def estimate_gpu_memory_gb(model: str, teacher_k: int | str | None, batch_size: int) -> float:
    """A deliberately generous estimate of one trial's peak GPU memory.

    fp32 weights + grads + Adam moments (16 bytes/param), one extra copy per teacher
    snapshot (K, capped at 8 for 'all' which the trainer keeps as a running average),
    activations of ~64 KiB per example per million parameters, and 1 GiB of CUDA context.
    """
    params = model_params_m(model) * 1e6
    copies = 0 if teacher_k is None else (1 if teacher_k == "all" else min(int(teacher_k), 8))
    weights = params * (16 + 4 * (copies + 1))
    activations = batch_size * model_params_m(model) * 64 * 1024
    return (weights + activations) / 2**30 + 1.0


def auto_gpu_fraction(need_gb: float, gpu_memory_gb: float) -> float:
    """The smallest of 1/8, 1/4, 1/2, 1 GPU that holds ``need_gb`` (1 if nothing smaller)."""
    for fraction in _FRACTIONS:
        if need_gb <= fraction * gpu_memory_gb * 0.9:
            return fraction
    return 1.0


def cluster_gpu_memory_gb() -> float | None:
    """Memory of the GPUs trials will get: the driver's device, else ask one GPU worker."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).total_memory / 2**30
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    import ray

    @ray.remote(num_gpus=0.01, num_cpus=0)
    def _probe() -> float:
        import torch

        return torch.cuda.get_device_properties(0).total_memory / 2**30

    try:
        return float(ray.get(_probe.remote(), timeout=120))
    except Exception:
        return None


def most_demanding_gb(trials: Iterable[Any]) -> float:
    """The estimate of the hungriest of ``trials`` (``sweeps.grid.TrialSpec``s), each by
    its own resolved config: model, teacher snapshots (its K) and batch size. One GPU
    request serves every trial of a Tune experiment, so it must fit the largest."""
    return max(
        (estimate_gpu_memory_gb(t.config["model"], t.k, t.config["optim"]["batch_size"])
         for t in trials),
        default=0.0,
    )  # fmt: skip


def resolve_gpu(requested: float | str, trials: Iterable[Any], gpus_in_cluster: float) -> float:
    """The GPU request per trial: ``requested``, or the ``auto`` fraction that holds the
    most demanding of ``trials`` (0 without GPUs)."""
    if requested != "auto":
        return float(requested)
    if gpus_in_cluster <= 0:
        return 0.0
    memory = cluster_gpu_memory_gb() or 16.0
    return auto_gpu_fraction(most_demanding_gb(trials), memory)


def check_feasible(cpu: float, gpu: float, nodes: list[dict[str, Any]]) -> None:
    """Refuse a per-trial request that no single alive node can meet (Ray would wait forever).

    ``nodes`` is ``ray.nodes()``: dicts with ``Alive`` and ``Resources``.
    """
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    for res in alive:
        if res.get("CPU", 0) >= cpu and res.get("GPU", 0) >= (math.ceil(gpu) if gpu else 0):
            return
    have = ", ".join(f"{{CPU: {r.get('CPU', 0):g}, GPU: {r.get('GPU', 0):g}}}" for r in alive)
    what = f"resources {{cpu: {cpu:g}, gpu: {gpu:g}}}"
    hint = (
        " A GPU fraction needs a node with at least one GPU; use gpu: 0 to run on CPUs."
        if gpu
        else ""
    )
    raise ConfigError(
        f"'resources' per trial {what} cannot be met by any node of the cluster "
        f"(nodes: [{have or 'none'}]).{hint}"
    )
