"""Is ``torch.compile`` worth it for a trial? Eager against compiled, same rows, same steps.

Each side runs in a fresh process: the student's training steps (forward, cross-entropy,
backward, fused AdamW) on length-grouped batches of the same SST-2 rows, padded to a
multiple of ``--bucket`` tokens so the compiled graphs stay few (``dynamic=False``: one
graph per width). Inductor's on-disk caches live in ``--cache`` (``TORCHINDUCTOR_CACHE_DIR``),
shared by every process on the machine, so a second compiled run shows what a later trial
pays once the first has compiled. Reported: the first step (compilation included), the
median of the other steps, and the net seconds per trial of ``--trial-steps`` steps.

    python bench/compile.py --steps 40 --rows 1024
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_workload_arguments, emit, machine, sst2_data


def _measure(args) -> dict:
    import torch
    import torch.nn.functional as F

    from trainer.batches import TrainOrder, collate
    from trainer.loading import load_config
    from trainer.models import parameter_groups
    from trainer.prepare import prepare

    torch.set_num_threads(args.threads)
    config = load_config({"model": args.model, "data": sst2_data(args.data, args.rows)})
    prepared = prepare(config)
    model, split = prepared.model, prepared.splits["train"]
    opt = config.optim
    optimizer = torch.optim.AdamW(
        parameter_groups(model, opt.lr, opt.head_lr, opt.weight_decay), fused=True
    )
    order = TrainOrder(len(split), args.batch_size, 0, lengths=split.lengths)
    forward = torch.compile(model, dynamic=False) if args.mode == "compiled" else model
    model.train()
    torch.manual_seed(0)
    times, widths = [], set()
    for step in range(args.steps):
        inputs, labels = collate(split, order.indices(step), prepared.pad_id, torch.device("cpu"))
        width = inputs["input_ids"].shape[1]
        padded = -(-width // args.bucket) * args.bucket
        if padded != width:
            inputs = {k: F.pad(v, (0, padded - width), value=prepared.pad_id if k ==
                               "input_ids" else 0) for k, v in inputs.items()}  # fmt: skip
        widths.add(padded)
        started = time.perf_counter()
        loss = F.cross_entropy(forward(**inputs).logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    rest = times[1:]
    return {
        "bench": "compile",
        "mode": args.mode,
        "first_step_s": times[0],
        "median_step_s": statistics.median(rest),
        "total_s": sum(times),
        "widths": len(widths),
        "steps": args.steps,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.set_defaults(steps=40)
    parser.add_argument("--bucket", type=int, default=16, help="pad widths to a multiple")
    parser.add_argument("--trial-steps", type=int, default=96, help="steps of a typical trial")
    parser.add_argument("--cache", type=Path, default=None, help="inductor cache directory")
    parser.add_argument("--mode", choices=["eager", "compiled"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        emit(_measure(args))
        return
    cache = args.cache or Path(tempfile.mkdtemp(prefix="st-inductor-"))
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    argv = [
        sys.executable,
        __file__,
        "--model",
        args.model,
        "--data",
        str(args.data),
        "--rows",
        str(args.rows),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--bucket",
        str(args.bucket),
    ]
    records = {}
    for label, mode in (("eager", "eager"), ("compiled_cold", "compiled"),
                        ("compiled_warm", "compiled")):  # fmt: skip
        out = subprocess.run([*argv, "--mode", mode], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench: {mode} failed:\n{out.stderr[-3000:]}")
        records[label] = json.loads(out.stdout.strip().splitlines()[-1])
        emit({**records[label], "label": label})

    def excess(r: dict) -> float:
        """Seconds above the steady step time: compilations (one per new width) and warm-up."""
        return r["total_s"] - r["steps"] * r["median_step_s"]

    eager = records["eager"]["median_step_s"]
    summary = {"bench": "compile_summary", "inductor_cache": str(cache)}
    for label in ("compiled_cold", "compiled_warm"):
        r = records[label]
        # what a trial of --trial-steps steps gains (+) or loses (-), compilation included
        overhead = excess(r) - excess(records["eager"])
        summary[f"{label}_compile_s"] = overhead
        summary[f"{label}_step_vs_eager"] = r["median_step_s"] / eager
        summary[f"{label}_net_s_per_trial"] = (
            args.trial_steps * (eager - r["median_step_s"]) - overhead
        )
    emit(summary)


if __name__ == "__main__":
    main()
