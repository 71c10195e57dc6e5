"""The one fine-tuning loop every strategy runs through.

Read top to bottom: data, model, NoisyTune perturbation, optimizer, the strategy's
parts (a teacher for SDA/SDV, an averaged model for SE), resume, then one loop:
forward, distillation loss, backward, clip, teacher records θ_t, step, averaged
model records θ_{t+1}, evaluate / checkpoint / report. A strategy never copies the
loop; it only decides which of those parts exist.

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

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.averaging import flatten_parameters_
from trainer.batches import TrainOrder, collate
from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.config import TrainConfig, config_to_dict
from trainer.data import load_splits
from trainer.errors import ConfigError
from trainer.inference import predict_logits
from trainer.jsonio import to_json_safe, write_json_atomic
from trainer.metrics import classification_metrics
from trainer.models import (
    check_model_limits,
    check_model_resolvable,
    load_classifier,
    load_tokenizer,
    parameter_groups,
)
from trainer.noisytune import perturb
from trainer.provenance import git_commit, library_versions
from trainer.teachers import AveragedTeacher, EmaTeacher, SelfEnsemble, VotingTeacher
from trainer.tokenized import tokenize_splits

__all__ = ["Reporter", "default_cache_dir", "train"]

Reporter = Callable[[dict[str, Any], Path | None], None]
"""Called with (metrics, checkpoint directory) at every evaluation and checkpoint."""

CHECKPOINT_DIR = "checkpoint"
RESULT_FILE = "result.json"
LOGITS_FILE = "logits.npz"
_NOISE_SEED_OFFSET = 0x5EED  # the noise generator must not share the dropout stream
# What resuming reads from a checkpoint; a state without one of these is corrupt.
_STATE_KEYS = (
    "step",
    "model",
    "optimizer",
    "scheduler",
    "teacher",
    "ensemble",
    "rng",
    "history",
    "loss_sum",
    "loss_count",
    "elapsed_s",
    "resumed_from",
)


def default_cache_dir() -> Path:
    return Path(os.environ.get("STEADYTUNE_CACHE", Path.home() / ".cache" / "steadytune"))


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("The 'device' parameter is 'cuda' but no CUDA device is visible.")
    return torch.device(config.device)


def _autocast(device: torch.device, bf16: bool):
    """A context factory: bf16 autocast on ``device``, or nothing (fp32)."""
    if not bf16:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _student_in_bf16(config: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast on CUDA by default (and on CPU when asked); fp32 otherwise."""
    return config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")


def _native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (CUDA; CPUs with AMX or AVX512-BF16)."""
    if device.type == "cuda":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _teacher_in_bf16(config: TrainConfig, device: torch.device) -> bool:
    """The teacher runs in bf16 when asked, or by default where bf16 is native."""
    wanted = config.distill.teacher_precision
    return wanted == "bf16" or (wanted == "auto" and _native_bf16(device))


def _build_strategy(config: TrainConfig, model: nn.Module, flat: torch.Tensor):
    """(teacher, self-ensemble) for the strategy; either may be None."""
    base, k = config.base_strategy, config.teacher_k
    if base == "sda" and config.distill.average == "ema":
        return EmaTeacher(model, flat, config.distill.ema_decay), None
    if base == "sda":
        return AveragedTeacher(model, flat, k), None
    if base == "sdv":
        return VotingTeacher(model, flat, k), None
    if base == "se":
        return None, SelfEnsemble(model, flat, k)
    return None, None


def _evaluate(models: dict[str, nn.Module], splits, config, pad_id, device, autocast):
    """Metrics and logits of each model ('student', 'averaged') on dev and test."""
    metrics: dict[str, Any] = {}
    logits: dict[str, np.ndarray] = {}
    for role, model in models.items():
        for split_name in ("dev", "test"):
            if split_name not in splits:
                continue
            split = splits[split_name]
            out = predict_logits(model, split, config.eval.batch_size, pad_id, device, autocast)
            scores = classification_metrics(out, split.labels)
            prefix = "" if role == "student" else f"{role}_"
            logits[f"{prefix}{split_name}_logits"] = out
            if role == "student":
                metrics[split_name] = scores
            else:
                metrics.setdefault(role, {})[split_name] = scores
    return metrics, logits


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
    result = json.loads(path.read_text())
    if result.get("config") != to_json_safe(resolved):
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
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_to_dict(config)
    finished_before = _finished_result(out_dir, resolved)
    if finished_before is not None:
        return finished_before
    # Ray gives a 1-CPU trial OMP_NUM_THREADS=1, a shell gives torch all cores: the config
    # decides instead, as the numbers depend on it.
    torch.set_num_threads(config.threads)
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    device = _device(config)
    autocast = _autocast(device, _student_in_bf16(config, device))
    teacher_bf16 = _teacher_in_bf16(config, device)
    teacher_autocast = _autocast(device, teacher_bf16)

    # -- model checks (its config only: cheap), data ---------------------------------
    model_path = check_model_resolvable(config.model, cache_dir)
    check_model_limits(model_path, config.data.max_length, name=config.model)
    text_splits = load_splits(config.data)
    tokenizer = load_tokenizer(model_path)
    splits, cache_hit = tokenize_splits(text_splits, tokenizer, config.data.max_length, cache_dir)
    pad_id = tokenizer.pad_token_id or 0

    # -- model, NoisyTune ------------------------------------------------------------
    model = load_classifier(model_path, len(text_splits.label_names), config.seed)
    if config.uses_noise:
        noise = config.noise
        perturb(
            model,
            noise.lam,
            distribution=noise.distribution,
            scope=noise.scope,
            exclude=noise.exclude,
            generator=torch.Generator().manual_seed(config.seed + _NOISE_SEED_OFFSET),
        )
    model.to(device)
    flat = flatten_parameters_(model)

    # -- optimizer and schedule -----------------------------------------------------
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

    # -- strategy parts --------------------------------------------------------------
    teacher, ensemble = _build_strategy(config, model, flat)
    # the model evaluated as 'averaged': SE's ensemble, or a teacher that holds one
    # (SDA's; SDV's teacher is snapshots, its averaged_model() is None)
    averaged = ensemble if ensemble is not None else teacher
    distill_lam = config.distill.lam

    # -- resume ----------------------------------------------------------------------
    step, history, elapsed_before, resumed_from = 0, [], 0.0, []
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    recovered: list[dict[str, str]] = []  # unreadable checkpoints, moved aside
    state = load_checkpoint(out_dir / CHECKPOINT_DIR, _STATE_KEYS, recovered)
    if state is not None:
        if state["config"] != resolved:
            raise ConfigError(
                f"{out_dir} holds a checkpoint of a different config; use another --out "
                "or delete it to start over."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if teacher is not None:
            teacher.load_state_dict(state["teacher"])
        if ensemble is not None:
            ensemble.load_state_dict(state["ensemble"])
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
                "format": 1,
                "config": resolved,
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "teacher": teacher.state_dict() if teacher is not None else None,
                "ensemble": ensemble.state_dict() if ensemble is not None else None,
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

    def evaluated() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Metrics and logits of the student and, where the strategy has one, its average."""
        models = {"student": model}
        averaged_model = averaged.averaged_model() if averaged is not None else None
        if averaged_model is not None:
            models["averaged"] = averaged_model
        return _evaluate(models, splits, config, pad_id, device, autocast)

    def evaluate() -> None:
        """Evaluate, record the history entry, checkpoint and report."""
        nonlocal last_logits, loss_count
        metrics, last_logits = evaluated()
        entry = {
            "step": step,
            "epoch": step / order.steps_per_epoch,
            "train_loss": float(loss_sum) / loss_count if loss_count else None,
            "lr": scheduler.get_last_lr()[0],
            **metrics,
        }
        loss_sum.zero_()
        loss_count = 0
        history.append(entry)
        if bar is not None:
            train_loss = "-" if entry["train_loss"] is None else f"{entry['train_loss']:.3f}"
            bar.set_postfix(loss=train_loss, dev=entry["dev"][config.eval.primary_metric])
        ckpt = checkpoint()
        if report is not None:
            report(entry, ckpt)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"{config.strategy} seed {config.seed}")

    diverged_at: int | None = None  # the 1-based step whose loss was not finite
    # throughput of this session's training steps (evaluation and checkpoints excluded)
    loop_started, side_time, samples_seen = time.perf_counter(), 0.0, 0
    loop_cpu_started, side_cpu = time.process_time(), 0.0
    model.train()
    while step < total_steps:
        batch_indices = order.indices(step)
        samples_seen += len(batch_indices)
        inputs, labels = collate(train_split, batch_indices, pad_id, device)

        # forward
        with autocast():
            logits = model(**inputs).logits
        loss = F.cross_entropy(logits.float(), labels)
        # distillation: λ·MSE(student logits, teacher logits)
        if teacher is not None:
            with teacher_autocast():
                target = teacher.logits(inputs)
            if target is not None:
                loss = loss + distill_lam * F.mse_loss(logits.float(), target)

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
        # the teacher remembers θ_t, the parameters this step started from
        if teacher is not None:
            teacher.record(flat)
        # update
        optimizer.step()
        scheduler.step()
        step += 1
        if ensemble is not None:
            ensemble.record(flat)
        loss_sum += loss.detach()
        loss_count += 1
        if bar is not None:
            bar.update(1)

        # evaluate, checkpoint, report
        finished = step == total_steps
        side_started, side_cpu_started = time.perf_counter(), time.process_time()
        if step % eval_every == 0 or finished:
            evaluate()
        elif ckpt_every is not None and step % ckpt_every == 0:
            ckpt = checkpoint()
            if report is not None:
                report({"step": step, "epoch": step / order.steps_per_epoch}, ckpt)
        side_time += time.perf_counter() - side_started
        side_cpu += time.process_time() - side_cpu_started
    train_time = time.perf_counter() - loop_started - side_time
    train_cpu = time.process_time() - loop_cpu_started - side_cpu
    if bar is not None:
        bar.close()
    # a diverged run ends here, evaluated as it stands (unless this step was just evaluated)
    if diverged_at is not None and (not history or history[-1]["step"] != step):
        evaluate()

    if not last_logits:  # resumed after the final evaluation's checkpoint: nothing left to run
        _, last_logits = evaluated()

    # -- outputs ---------------------------------------------------------------------
    final = history[-1]
    labels_out = {
        f"{name}_labels": splits[name].labels for name in ("dev", "test") if name in splits
    }
    np.savez_compressed(out_dir / LOGITS_FILE, **last_logits, **labels_out)
    if config.save_model:
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        save_file(weights, out_dir / "model.safetensors", metadata={"base_model": model_path})
    result = {
        "config": resolved,
        "status": "finished" if diverged_at is None else "diverged",
        "diverged_at_step": diverged_at,
        "metrics": {k: v for k, v in final.items() if k in ("dev", "test", "averaged")},
        "primary_metric": config.eval.primary_metric,
        "history": history,
        "label_names": text_splits.label_names,
        "teacher_k": config.teacher_k,
        "teacher_bf16": teacher is not None and teacher_bf16,
        "steps": step,
        "n_train": len(train_split),
        "n_parameters": int(flat.numel()),
        "model_path": model_path,
        "device": str(device),
        "tokenization_cache_hit": cache_hit,
        "train_time_s": train_time,
        "train_samples_per_s": samples_seen / train_time if train_time > 0 else None,
        "train_cpu_s": train_cpu,  # CPU time of those steps: steadier than wall time on a busy host
        "peak_memory_mib": _peak_memory_mib(device),
        "resumed_from_steps": resumed_from,
        "recovered_checkpoints": recovered,
        "threads": _threads(),
        "versions": library_versions(),
        "git_commit": git_commit(),
        "runtime_s": elapsed_before + time.perf_counter() - started,
    }
    result = to_json_safe(result)
    write_json_atomic(out_dir / RESULT_FILE, result)
    # finished (diverged or not): the resume state has served its purpose
    if not config.checkpoint.keep_final:
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    return result
