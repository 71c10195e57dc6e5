"""A packed sweep through ``steadytune sweep``: aggregate throughput and Ray's overhead.

Runs N vanilla trials (one per seed) of the same model and rows with C at a time (on a
GPU: each trial asks for 1/C of it), then reports aggregate samples/s, trials/hour, the
tokenisation cache hits, Ray's overhead per trial and, with a GPU, its utilisation
sampled by ``nvidia-smi`` every second.

The wall time splits three ways, from the ``started_at``/``finished_at`` each
``result.json`` records around ``trainer.train``:

* ``startup_s``: from the command to the first trial's training (the driver's imports,
  Ray's start, the preflight, Tune's set-up, the first worker's imports) — once a sweep;
* ``shutdown_s``: from the last trial's end to the command's (Ray's shutdown);
* ``ray_overhead_per_trial_s``: in between, the time the C trial slots were not inside
  ``trainer.train`` (reporting, the results callback, scheduling the next trial on the
  reused worker, a later worker's imports), divided by the trials — what each further
  trial costs beyond its own training and evaluation.

    python bench/packed_sweep.py --trials 4 --concurrent 2 --steps 20
    python bench/packed_sweep.py --device cuda --trials 16 --concurrent 16 --steps 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from _common import add_workload_arguments, emit, machine, sst2_data

from trainer.layout import RESULTS_FILE


def _gpu_sampler(samples: list[float], stop: threading.Event) -> None:
    while not stop.wait(1.0):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode == 0 and out.stdout.strip():
            samples.append(float(out.stdout.split()[0]))


def _done_summary(stdout: str) -> dict:
    """The driver's closing ``steadytune: done {...}`` line (its GPU share, its wall)."""
    import ast

    for line in reversed(stdout.splitlines()):
        if line.startswith("steadytune: done "):
            return ast.literal_eval(line.removeprefix("steadytune: done "))
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument(
        "--gpu-auto", action="store_true",
        help="resources.gpu: auto (sized from the model and the GPU) instead of 1/concurrent",
    )  # fmt: skip
    args = parser.parse_args()

    gpu: float | str = 1.0 / args.concurrent if args.device == "cuda" else 0
    if args.gpu_auto and args.device == "cuda":
        gpu = "auto"
    # the --threads cores are shared by the concurrent trials; each trains on its share
    # (the sweep gives a trial as many torch threads as its resources.cpu)
    trial_cores = max(1, args.threads // args.concurrent) if args.device == "cpu" else 1
    spec = {
        "name": "bench-packed",
        "model": args.model,
        "datasets": [{**sst2_data(args.data, args.rows), "id": "sst2", "metric": "accuracy"}],
        "strategies": ["vanilla"],
        "seeds": args.trials,
        "defaults": {
            "device": args.device,
            "optim": {"max_steps": args.steps, "batch_size": args.batch_size},
            "eval": {"every_steps": args.steps, "batch_size": 256},
            "checkpoint": {"every_steps": None},
        },
        "resources": {"cpu": trial_cores, "gpu": gpu},
        "max_concurrent": args.concurrent,
    }  # fmt: skip
    storage = Path(tempfile.mkdtemp(prefix="st-bench-"))
    spec["storage"] = str(storage)
    spec_path = storage / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))

    samples: list[float] = []
    stop = threading.Event()
    sampler = None
    if args.device == "cuda" and shutil.which("nvidia-smi"):
        sampler = threading.Thread(target=_gpu_sampler, args=(samples, stop), daemon=True)
        sampler.start()
    steadytune = Path(sys.executable).with_name("steadytune")
    launched_at = time.time()
    started = time.perf_counter()
    out = subprocess.run(
        [str(steadytune), "sweep", str(spec_path), "--no-report", "--no-dashboard"],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    ended_at = launched_at + wall
    stop.set()
    if out.returncode != 0:
        sys.exit(f"bench: the sweep failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    summary = _done_summary(out.stdout)

    import pandas as pd

    table = pd.read_parquet(storage / "bench-packed" / RESULTS_FILE)
    results = [json.loads(Path(p).read_text()) for p in table["result_path"]]
    inside = sum(r["finished_at"] - r["started_at"] for r in results)
    first_start = min(r["started_at"] for r in results)
    last_end = max(r["finished_at"] for r in results)
    trained = sum(r["steps"] for r in results) * args.batch_size
    emit(
        {
            "bench": "packed_sweep",
            "model": args.model,
            "device": args.device,
            "trials": len(results),
            "concurrent": args.concurrent,
            "gpu_per_trial": gpu,
            "gpu_per_trial_resolved": summary.get("gpu_per_trial"),
            "steps": args.steps,
            "wall_s": wall,
            "aggregate_samples_per_s": trained / wall,
            "trials_per_hour": len(results) / wall * 3600,
            "mean_trial_train_samples_per_s": sum(r["train_samples_per_s"] for r in results)
            / len(results),
            "startup_s": first_start - launched_at,
            "shutdown_s": ended_at - last_end,
            "ray_overhead_per_trial_s": ((last_end - first_start) * args.concurrent - inside)
            / len(results),
            "mean_trial_runtime_s": inside / len(results),
            "tokenization_cache_hits": sum(bool(r["tokenization_cache_hit"]) for r in results),
            "gpu_utilization_mean": sum(samples) / len(samples) if samples else None,
            "machine": machine(),
        }
    )
    shutil.rmtree(storage, ignore_errors=True)


if __name__ == "__main__":
    main()
