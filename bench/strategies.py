"""Our trainer per strategy, and against the HF Trainer baseline, side by side in one run.

Each measurement runs in a fresh process (so peak memory is its own) on the same rows:
samples/s and step time of the training loop (evaluation and checkpoints excluded), and
peak memory; the whole set is repeated round-robin and the medians are compared. With
``--with-hf`` the HF Trainer runs first in each of its configurations (defaults,
length-grouped, and length-grouped bf16 where bf16 is native: ``bench/hf_trainer.py``),
and the last line gives the ratios against each and against the fastest of them, the
best-configured peer.

    python bench/strategies.py --with-hf --steps 30 --rows 1024
    python bench/strategies.py --strategies vanilla sda:5 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import add_workload_arguments, emit, machine, sst2_data
from hf_trainer import HF_CONFIGS

HERE = Path(__file__).resolve().parent
DEFAULT_STRATEGIES = ["vanilla", "noisytune", "se", "sda:1", "sda:5", "sda:all", "sdv:3"]


def _config(args, strategy: str) -> dict:
    name, _, k = strategy.partition(":")
    return {
        "model": args.model,
        "data": sst2_data(args.data, args.rows),
        "strategy": name,
        "seed": 0,
        "distill": {
            "k": (k if k == "all" else int(k)) if k else None,
            "teacher_precision": args.teacher_precision,
        },
        "optim": {
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "group_by_length": not args.no_group_by_length,
        },
        "eval": {"every_steps": args.steps, "batch_size": 256},
        "checkpoint": {"every_steps": None},
        "device": args.device,
        "precision": args.precision,
        "threads": args.threads,
    }


def _run_one(args, strategy: str) -> dict:
    from trainer import load_config, train

    with tempfile.TemporaryDirectory() as out:
        result = train(load_config(_config(args, strategy)), out)
    return {
        "bench": "steadytune",
        "strategy": strategy,
        "model": args.model,
        "device": args.device,
        "precision": args.precision,
        "teacher_precision": args.teacher_precision,
        "teacher_bf16": result["teacher_bf16"],
        "group_by_length": not args.no_group_by_length,
        "rows": args.rows,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "samples_per_s": result["train_samples_per_s"],
        "step_time_s": result["train_time_s"] / result["steps"],
        "step_cpu_s": result["train_cpu_s"] / result["steps"],
        "peak_memory_mib": result["peak_memory_mib"],
        "tokenization_cache_hit": result["tokenization_cache_hit"],
        "machine": machine(),
    }


def _subprocess(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{out.stderr[-3000:]}")
    record = json.loads(out.stdout.strip().splitlines()[-1])
    emit(record)
    return record


def _hf_configs(device: str) -> list[str]:
    """HF Trainer's configurations worth timing here: bf16 only where it is native (CUDA,
    CPUs with AMX or AVX512-BF16). Elsewhere torch emulates it, ~15x slower than fp32 on
    this project's AVX2 machine, and no speed-aware user would set it."""
    import torch

    from trainer.precision import native_bf16

    native = native_bf16(torch.device(device))
    return [c for c in HF_CONFIGS if native or "bf16" not in c]


def _median(records: list[dict]) -> dict:
    """The record of median step time (with an odd count, a real measurement)."""
    ordered = sorted(records, key=lambda r: r["step_time_s"])
    return ordered[(len(ordered) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument("--teacher-precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument("--no-group-by-length", action="store_true")
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES)
    parser.add_argument(
        "--with-hf",
        action="store_true",
        help="run the HF Trainer first, in each of its configurations",
    )
    parser.add_argument("--repeats", type=int, default=3, help="round-robin repeats; medians")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure in this process
    args = parser.parse_args()

    if args.one:
        emit(_run_one(args, args.one))
        return
    common = ["--model", args.model, "--data", str(args.data), "--rows", str(args.rows),
              "--steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--device", args.device, "--threads", str(args.threads)]  # fmt: skip
    # Round-robin repeats, median per side: a shared or throttled host drifts over minutes,
    # and interleaving spreads that drift over every side alike.
    hf_configs = _hf_configs(args.device) if args.with_hf else []
    hf_runs: dict[str, list[dict]] = {c: [] for c in hf_configs}
    runs: dict[str, list[dict]] = {s: [] for s in args.strategies}
    for _ in range(args.repeats):
        for hf_config, records in hf_runs.items():
            records.append(_subprocess([str(HERE / "hf_trainer.py"), *common,
                                        "--hf-config", hf_config]))  # fmt: skip
        for strategy in args.strategies:
            extra = ["--precision", args.precision, "--teacher-precision",
                     args.teacher_precision, "--one", strategy]  # fmt: skip
            if args.no_group_by_length:
                extra.append("--no-group-by-length")
            runs[strategy].append(_subprocess([str(HERE / "strategies.py"), *common, *extra]))
    hf = {c: _median(records) for c, records in hf_runs.items()}
    ours = {strategy: _median(records) for strategy, records in runs.items()}
    summary: dict = {
        "bench": "summary",
        "device": args.device,
        "precision": args.precision,
        "repeats": args.repeats,
        "hf_configs": hf_configs,
        "median_step_time_s": {s: r["step_time_s"] for s, r in ours.items()},
    }
    for c, r in hf.items():
        summary["median_step_time_s"][f"hf_{c}"] = r["step_time_s"]
    vanilla = ours.get("vanilla")
    if hf and vanilla:
        # against each HF configuration; the best-configured one is the fastest
        summary["vanilla_vs_hf_samples_per_s"] = {
            c: vanilla["samples_per_s"] / r["samples_per_s"] for c, r in hf.items()
        }
        best = max(hf, key=lambda c: hf[c]["samples_per_s"])
        summary["best_hf_config"] = best
        summary["vanilla_vs_best_hf_samples_per_s"] = (
            vanilla["samples_per_s"] / hf[best]["samples_per_s"]
        )
    if vanilla:
        for field in ("step_time_s", "step_cpu_s"):
            summary[f"{field}_vs_vanilla"] = {s: r[field] / vanilla[field] for s, r in ours.items()}
    emit(summary)


if __name__ == "__main__":
    main()
