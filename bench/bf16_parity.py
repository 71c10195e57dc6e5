"""Does bf16 autocast change what the student learns? fp32 against bf16, paired by seed.

The student trains in bf16 autocast by default only if this shows equal accuracy: the
same config and seed in fp32 and in bf16 (``precision``), on a real task (SST-2, 1,000
rows, MiniLM), for every seed; the paired dev-accuracy difference bf16 − fp32 with its t
interval (``scipy.stats``), and the two one-sided tests against ±``--margin``
(``statsmodels``' ``ttost_paired``). Parity holds when the CI covers 0 and lies within
the margin, i.e. TOST rejects at α/2 on each side.

    python bench/bf16_parity.py --seeds 5 --rows 1000 --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile

from _common import add_workload_arguments, emit, machine, sst2_data


def _run(args, seed: int, precision: str) -> dict:
    from trainer import load_config, train

    config = {
        "model": args.model,
        "data": sst2_data(args.data, args.rows),
        "seed": seed,
        "optim": {"epochs": args.epochs, "batch_size": args.batch_size},
        "eval": {"batch_size": 256},
        "checkpoint": {"every_steps": None},
        "device": args.device,
        "precision": precision,
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory() as out:
        result = train(load_config(config), out)
    return {
        "bench": "bf16_parity",
        "seed": seed,
        "precision": precision,
        "dev_accuracy": result["metrics"]["dev"]["accuracy"],
        "samples_per_s": result["train_samples_per_s"],
        "steps": result["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser)
    parser.set_defaults(rows=1000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--margin", type=float, default=0.003, help="±, in accuracy units")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()

    import numpy as np
    from scipy import stats
    from statsmodels.stats.weightstats import ttost_paired

    runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    for seed in range(args.seeds):
        for precision in runs:  # interleaved, so drift on the host hits both alike
            record = _run(args, seed, precision)
            emit(record)
            runs[precision].append(record)
    fp32 = np.array([r["dev_accuracy"] for r in runs["fp32"]])
    bf16 = np.array([r["dev_accuracy"] for r in runs["bf16"]])
    d = bf16 - fp32
    n = len(d)
    mean, sem = float(d.mean()), float(d.std(ddof=1) / np.sqrt(n))
    low, high = (mean, mean)  # no spread: every seed gave the same difference
    if sem > 0:
        low, high = stats.t.interval(1 - args.alpha, n - 1, loc=mean, scale=sem)
    tost_p = float(ttost_paired(bf16, fp32, -args.margin, args.margin)[0])
    emit(
        {
            "bench": "bf16_parity_summary",
            "seeds": n,
            "rows": args.rows,
            "epochs": args.epochs,
            "fp32_mean": float(fp32.mean()),
            "bf16_mean": float(bf16.mean()),
            "delta_mean": mean,
            "delta_ci": [float(low), float(high)],
            "paired_t_p": float(stats.ttest_rel(bf16, fp32).pvalue) if sem > 0 else 1.0,
            "tost_p": tost_p,
            "margin": args.margin,
            "parity": bool(low <= 0 <= high and tost_p < args.alpha),
            "speedup_bf16": float(
                np.median([r["samples_per_s"] for r in runs["bf16"]])
                / np.median([r["samples_per_s"] for r in runs["fp32"]])
            ),
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
