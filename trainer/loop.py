"""The one fine-tuning loop every strategy runs through.

Read top to bottom: data and model (``trainer/prepare.py``), the strategy's parts
(``trainer/parts.py``: NoisyTune's perturbation, SDA/SDV's teacher, SE's average),
optimizer, resume, then one loop: forward, the parts' extra loss, backward, clip, the
parts see θ_t, step, the parts see θ_{t+1}, evaluate / checkpoint / report. A strategy
never copies the loop; it only brings parts whose hooks the loop calls.

Everything that influences the numbers comes from the config and its seed: the head
initialisation and dropout from ``torch.manual_seed(seed)``, the data order from
``(seed, epoch)``, the noise from its own generator. A run resumed from a checkpoint
continues bit for bit as if never interrupted.

Bit-exactness — the same numbers from the same config — holds for the same config
(seed and ``threads`` included: the intra-op thread count changes how float sums are
split, so 1 and 2 threads give different results), the same library versions (torch,
transformers, tokenizers), the same device and, on CPU, the same instruction set (oneDNN
and MKL pick kernels by AVX2/AVX-512/AMX). ``result.json`` records the versions, the
thread counts, the device and the git commit; the CPU model is the one thing to note
by hand when comparing runs across machines.

A non-finite training loss stops the run at that step, before its backward pass, so the
parameters are those of the last finite step: that model is evaluated once and the
result says ``"status": "diverged"``. A diverged seed is a result, not a missing one.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer.averaging import flatten_parameters_
from trainer.batches import TrainOrder, collate
from trainer.checkpoint import CorruptResultWarning, load_checkpoint, save_aside, save_checkpoint
from trainer.config import TrainConfig
from trainer.errors import ConfigError
from trainer.inference import predict_logits, target_arrays
from trainer.jsonio import read_result, to_json_safe, write_json_atomic
from trainer.layout import CHECKPOINT_DIR, LOGITS_FILE, MODEL_FILE, RESULT_FILE
from trainer.loading import config_to_dict
from trainer.messages import parameter_message
from trainer.metrics import score
from trainer.models import parameter_groups
from trainer.parts import StrategyPart, build_parts
from trainer.precision import autocast as autocast_for
from trainer.precision import student_in_bf16
from trainer.prepare import prepare
from trainer.provenance import git_commit, library_versions
from trainer.recorded import same_config

__all__ = ["Reporter", "train"]

Reporter = Callable[[dict[str, Any], Path | None], None]
"""Called with (metrics, checkpoint directory) at every evaluation and checkpoint."""

# The entries of a history record that are not a model's metrics.
_HISTORY_KEYS = ("step", "epoch", "train_loss", "lr")
# What resuming reads from a checkpoint; a state without one of these is corrupt.
_STATE_KEYS = (
    "step",
    "model",
    "optimizer",
    "scheduler",
    "parts",
    "rng",
    "history",
    "loss_sum",
    "loss_count",
    "elapsed_s",
    "resumed_from",
)


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            parameter_message(
                "device", "must be 'cpu' or 'auto': no CUDA device is visible", "cuda"
            )
        )
    return torch.device(config.device)


# What an evaluation scores. The test split and the extra evaluation splits (cross-lingual
# test sets) are scored once, by the final evaluation: the learning curves, the race and
# Optuna read dev only, test is the split a selection is confirmed on, and scoring it at
# every evaluation was a quarter of a short trial's time.
_INTERMEDIATE_SPLITS = ("dev",)


def _evaluate(models: dict[str, nn.Module], prepared, config, device, autocast, split_names):
    """Metrics and logits of each model ('student', 'averaged', ...) on ``split_names``."""
    metrics: dict[str, Any] = {}
    logits: dict[str, np.ndarray] = {}
    splits, names = prepared.splits, prepared.text_splits.label_names
    for role, model in models.items():
        for split_name in split_names:
            if split_name not in splits:
                continue
            split = splits[split_name]
            out = predict_logits(
                model, split, config.eval.batch_size, prepared.pad_id, device, autocast
            )
            scores = score(out, split.targets, split.target_offsets, names)
            prefix = "" if role == "student" else f"{role}_"
            logits[f"{prefix}{split_name}_logits"] = out
            if role == "student":
                metrics[split_name] = scores
            else:
                metrics.setdefault(role, {})[split_name] = scores
    return metrics, logits


def _eval_models(student: nn.Module, parts: dict[str, StrategyPart]) -> dict[str, nn.Module]:
    """The student and, by role, the models the parts hold (SE's or SDA's average)."""
    models = {"student": student}
    for part in parts.values():
        models.update(part.eval_models())
    return models


class _TrainClock:
    """Wall and CPU time of this session's training steps, without the evaluations and
    checkpoints run :meth:`aside`, and the samples those steps saw."""

    def __init__(self) -> None:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        self.aside_s = self.aside_cpu_s = 0.0
        self.samples = 0

    @contextmanager
    def aside(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.aside_s += time.perf_counter() - wall
            self.aside_cpu_s += time.process_time() - cpu

    def training(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds) spent training so far."""
        wall = time.perf_counter() - self.started - self.aside_s
        return wall, time.process_time() - self.cpu_started - self.aside_cpu_s


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _threads() -> dict[str, int | str | None]:
    """The thread counts the numbers depend on, and the environment that sets defaults."""
    return {
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
    }


def _finished_result(out_dir: Path, resolved: dict[str, Any]) -> dict[str, Any] | None:
    """The result of a run of this config that already finished in ``out_dir``, or None.

    ``result.json`` is written last, so its presence means the run is complete: running it
    again (a retried trial, a resumed sweep, the same command twice) returns it instead of
    training anew. A finished run of another config is refused, as its checkpoint would be.
    """
    path = out_dir / RESULT_FILE
    if not path.is_file() or not (out_dir / LOGITS_FILE).is_file():
        return None
    result = read_result(path)
    if result is None:
        target = save_aside(path)
        warnings.warn(
            f"{path} is damaged (not a result's JSON object); moved it to {target.name} "
            "and training anew",
            CorruptResultWarning,
            stacklevel=2,
        )
        return None
    if not same_config(result.get("config"), to_json_safe(resolved)):
        raise ConfigError(
            f"{out_dir} holds the result of a different config; use another --out or "
            "delete it to start over."
        )
    return result


def train(
    config: TrainConfig,
    out_dir: str | Path,
    report: Reporter | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune one model under ``config`` and write its results to ``out_dir``.

    Parameters
    ----------
    config
        The validated trial configuration.
    out_dir
        Where ``result.json``, ``logits.npz``, the checkpoint and (with
        ``save_model``) ``model.safetensors`` go. If it already holds a checkpoint of
        this config, training resumes from it; if it holds this config's finished
        result, that result is returned and nothing is trained.
    report
        Optional callback ``(metrics, checkpoint_dir)``, called after every evaluation
        and every periodic checkpoint (Ray Tune plugs in here).
    progress
        Show a progress bar (tqdm) on stderr.

    Returns
    -------
    dict
        The content of ``result.json``.
    """
    started, started_at = time.perf_counter(), time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_to_dict(config)
    finished_before = _finished_result(out_dir, resolved)
    if finished_before is not None:
        return finished_before
    # Ray gives a 1-CPU trial OMP_NUM_THREADS=1, a shell gives torch all cores: the config
    # decides instead, as the numbers depend on it.
    torch.set_num_threads(config.threads)
    device = _device(config)
    autocast = autocast_for(device, student_in_bf16(config, device))

    # -- data and model; the strategy's parts, which may change the model first -------
    prepared = prepare(config)
    splits, pad_id, model, task = prepared.splits, prepared.pad_id, prepared.model, prepared.task
    final_splits = tuple(prepared.text_splits.evaluated())
    parts = build_parts(config, device)
    for part in parts.values():
        part.setup(model)
    model.to(device)
    flat = flatten_parameters_(model)

    # -- optimizer and schedule; the parts see them with the model before step 0 -------
    from transformers import get_linear_schedule_with_warmup

    opt = config.optim
    train_split = splits["train"]
    order = TrainOrder(
        len(train_split),
        opt.batch_size,
        config.seed,
        lengths=train_split.lengths if opt.group_by_length else None,
    )
    total_steps = opt.max_steps or math.ceil(opt.epochs * order.steps_per_epoch)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, opt.lr, opt.head_lr, opt.weight_decay, opt.layer_decay),
        betas=opt.betas,
        eps=opt.eps,
        fused=device.type in ("cpu", "cuda"),  # fused kernels exist for both; ~9x faster on CPU
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(opt.warmup_ratio * total_steps), total_steps
    )
    eval_every = config.eval.every_steps or order.steps_per_epoch
    ckpt_every = config.checkpoint.every_steps
    for part in parts.values():
        part.on_fit_start(model, flat, optimizer)

    # -- resume ----------------------------------------------------------------------
    step, history, elapsed_before, resumed_from = 0, [], 0.0, []
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    recovered: list[dict[str, str]] = []  # unreadable checkpoints, moved aside
    state = load_checkpoint(out_dir / CHECKPOINT_DIR, _STATE_KEYS, recovered)
    if state is not None:
        if not same_config(state["config"], resolved):
            raise ConfigError(
                f"{out_dir} holds a checkpoint of a different config; use another --out "
                "or delete it to start over."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for name, part in parts.items():
            part.load_state_dict(state["parts"][name])
        step, history = state["step"], state["history"]
        loss_sum.fill_(state["loss_sum"])
        loss_count = state["loss_count"]
        elapsed_before = state["elapsed_s"]
        resumed_from = [*state["resumed_from"], step]
        recovered = [*state.get("recovered_checkpoints", []), *recovered]
        _set_rng_state(state["rng"], device)
    else:
        torch.manual_seed(config.seed)  # dropout stream: independent of the steps above

    def checkpoint() -> Path:
        return save_checkpoint(
            {
                "format": 2,
                "config": resolved,
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "parts": {name: part.state_dict() for name, part in parts.items()},
                "rng": _rng_state(device),
                "history": history,
                "loss_sum": float(loss_sum),
                "loss_count": loss_count,
                "elapsed_s": elapsed_before + time.perf_counter() - started,
                "resumed_from": resumed_from,
                "recovered_checkpoints": recovered,
            },
            out_dir / CHECKPOINT_DIR,
        )

    last_logits: dict[str, np.ndarray] = {}

    def evaluate(final: bool = False) -> None:
        """Evaluate the student and its parts' models, record the history entry,
        checkpoint and report. The final evaluation writes no checkpoint unless it is to be
        kept (``checkpoint.keep_final``): the result follows at once, and a run killed
        before it resumes from the previous checkpoint to the same numbers; writing the
        model and optimizer state (~0.3 GB for MiniLM) only to delete it was the largest
        fixed cost of a short trial."""
        nonlocal last_logits, loss_count
        names = final_splits if final else _INTERMEDIATE_SPLITS
        metrics, last_logits = _evaluate(_eval_models(model, parts), prepared, config, device,
                                         autocast, names)  # fmt: skip
        train_loss = float(loss_sum) / loss_count if loss_count else None
        if history and history[-1]["step"] == step:
            # a diverged run's final scoring of the step just evaluated: it replaces the
            # entry (and keeps its training loss) rather than repeating the step
            train_loss = history.pop()["train_loss"]
        entry = {
            "step": step,
            "epoch": step / order.steps_per_epoch,
            "train_loss": train_loss,
            "lr": scheduler.get_last_lr()[0],
            **metrics,
        }
        loss_sum.zero_()
        loss_count = 0
        history.append(entry)
        if bar is not None:
            train_loss = "-" if entry["train_loss"] is None else f"{entry['train_loss']:.3f}"
            bar.set_postfix(loss=train_loss, dev=entry["dev"][config.eval.primary_metric])
        ckpt = checkpoint() if not final or config.checkpoint.keep_final else None
        if report is not None:
            report(entry, ckpt)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"{config.strategy} seed {config.seed}")

    diverged_at: int | None = None  # the 1-based step whose loss was not finite
    clock = _TrainClock()
    model.train()
    while step < total_steps:
        batch_indices = order.indices(step)
        clock.samples += len(batch_indices)
        inputs, labels = collate(train_split, batch_indices, pad_id, device)

        # forward; the task's loss and the parts' extra terms (distillation: λ·MSE(student,
        # teacher outputs))
        with autocast():
            logits = model(**inputs).logits
        loss = task.loss(logits, labels)
        for part in parts.values():
            extra = part.extra_loss(inputs, logits, labels)
            if extra is not None:
                loss = loss + extra

        # termination on divergence: before backward and step, θ is the last finite one
        # (on CUDA this waits for the forward pass, once a step)
        if not torch.isfinite(loss):
            diverged_at = step + 1
            break

        # backward
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # clip the gradient
        if opt.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt.max_grad_norm)
        # the parts see θ_t, the parameters this step started from (a teacher remembers it)
        for part in parts.values():
            part.on_before_optimizer_step(flat)
        # update; the parts see θ_{t+1} (an averaged model records it) while the
        # optimizer still holds this step's learning rates
        optimizer.step()
        for part in parts.values():
            part.on_train_batch_end(flat)
        scheduler.step()
        step += 1
        loss_sum += loss.detach()
        loss_count += 1
        if bar is not None:
            bar.update(1)

        # evaluate, checkpoint, report: not training time
        finished = step == total_steps
        with clock.aside():
            if step % eval_every == 0 or finished:
                evaluate(final=finished)
            elif ckpt_every is not None and step % ckpt_every == 0:
                ckpt = checkpoint()
                if report is not None:
                    report({"step": step, "epoch": step / order.steps_per_epoch}, ckpt)
    train_time, train_cpu = clock.training()
    if bar is not None:
        bar.close()
    # a diverged run ends here, scored on every split as it stands
    if diverged_at is not None:
        evaluate(final=True)

    if not last_logits:  # resumed from a kept final checkpoint: nothing left to run
        _, last_logits = _evaluate(_eval_models(model, parts), prepared, config, device,
                                   autocast, final_splits)  # fmt: skip

    # -- outputs ---------------------------------------------------------------------
    final = history[-1]
    labels_out = {
        key: array
        for name in final_splits
        for key, array in target_arrays(name, splits[name]).items()
    }
    if task.per_token:  # the tag of each id, for the seed ensembles' entity F1
        labels_out["label_names"] = np.asarray(prepared.text_splits.label_names)
    np.savez_compressed(out_dir / LOGITS_FILE, **last_logits, **labels_out)
    if config.save_model:
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        save_file(weights, out_dir / MODEL_FILE, metadata={"base_model": prepared.model_path})
    part_fields: dict[str, Any] = {"teacher_bf16": False}
    for part in parts.values():
        part_fields.update(part.result_fields())
    result = {
        "config": resolved,
        "status": "finished" if diverged_at is None else "diverged",
        "diverged_at_step": diverged_at,
        "metrics": {k: v for k, v in final.items() if k not in _HISTORY_KEYS},
        "task": task.name,
        "primary_metric": config.eval.primary_metric,
        "history": history,
        "label_names": prepared.text_splits.label_names,
        "teacher_k": config.teacher_k,
        **part_fields,
        "steps": step,
        "n_train": len(train_split),
        "n_parameters": int(flat.numel()),
        "model_path": prepared.model_path,
        "device": str(device),
        "tokenization_cache_hit": prepared.cache_hit,
        "train_time_s": train_time,
        "train_samples_per_s": clock.samples / train_time if train_time > 0 else None,
        "train_cpu_s": train_cpu,  # CPU time of those steps: steadier than wall time on a busy host
        "peak_memory_mib": _peak_memory_mib(device),
        "resumed_from_steps": resumed_from,
        "recovered_checkpoints": recovered,
        "threads": _threads(),
        "versions": library_versions(),
        "git_commit": git_commit(),
        "runtime_s": elapsed_before + time.perf_counter() - started,
        # when this session of train() ran (Unix seconds): a sweep's idle time between
        # trials is its wall time less the trials' own (bench/packed_sweep.py)
        "started_at": started_at,
        "finished_at": time.time(),
    }
    result = to_json_safe(result)
    write_json_atomic(out_dir / RESULT_FILE, result)
    # finished (diverged or not): the resume state has served its purpose
    if not config.checkpoint.keep_final:
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    return result
