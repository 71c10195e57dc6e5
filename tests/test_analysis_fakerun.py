"""A fake sweep run directory for the analysis tests: ``results.parquet`` in the sweep's
schema, and per trial ``result.json`` (with a history), ``logits.npz`` and, for some,
``model.safetensors``. Metrics are computed from the logits, so VOTE is meaningful.
No test functions here: the analysis tests import ``make_run``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from test_analysis_tables import knob_columns

N_DEV = 60


def _trial_logits(rng: np.random.Generator, labels: np.ndarray, skill: float) -> np.ndarray:
    """Logits whose argmax is right with probability about ``skill``."""
    n = len(labels)
    logits = rng.normal(0, 1, (n, 2)).astype(np.float32)
    right = rng.uniform(size=n) < skill
    target = np.where(right, labels, 1 - labels)
    logits[np.arange(n), target] += 2.5
    return logits


def make_run(
    root: Path,
    *,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    cluster_paths: bool = True,
    save_models: bool = True,
) -> Path:
    """Write a run dir under ``root`` and return it.

    Datasets ``alpha`` (primary accuracy) and ``beta`` (primary mcc); strategies vanilla,
    se (K=all), sda (K=1, 2, all; dλ=1), noisytune (nλ=0.15), and three Optuna candidates
    of sda K=1 (dλ 0.3, 0.8, 2.0; two seeds each) on alpha. sda K=2 on beta lacks seed 4,
    one trial ERRORed and one planned trial never started. With ``cluster_paths`` the
    table's paths are absolute paths of another machine.
    """
    from trainer.metrics import classification_metrics

    run = root / "fake-run"
    run.mkdir(parents=True)
    skill = {"vanilla": 0.70, "se": 0.74, "sda": 0.76, "noisytune": 0.72}
    spread = {"vanilla": 0.08, "se": 0.04, "sda": 0.03, "noisytune": 0.06}
    configs = [
        ("vanilla", None, None, None),
        ("se", "all", None, None),
        ("sda", "1", 1.0, None),
        ("sda", "2", 1.0, None),
        ("sda", "all", 1.0, None),
        ("noisytune", None, None, 0.15),
    ]
    rows, grid_keys = [], []
    label_rng = np.random.default_rng(123)
    for dataset, metric in (("alpha", "accuracy"), ("beta", "mcc")):
        labels = label_rng.integers(0, 2, N_DEV)
        test_labels = label_rng.integers(0, 2, N_DEV)
        trials = [(c, s, None) for c in configs for s in seeds]
        if dataset == "alpha":
            trials += [
                (("sda", "1", lam, None), s, i)
                for i, lam in enumerate((0.3, 0.8, 2.0))
                for s in seeds[:2]
            ]
        for (strategy, k, dl, nl), seed, optuna in trials:
            key = f"{dataset}_{strategy}_k{k}_dl{dl}_nl{nl}_s{seed}" + (
                f"_o{optuna}" if optuna is not None else ""
            )
            if optuna is None:
                grid_keys.append(key)
            status = "TERMINATED"
            if dataset == "beta" and strategy == "sda" and k == "2" and seed == seeds[-1]:
                continue  # never started
            if dataset == "beta" and strategy == "noisytune" and seed == seeds[-1]:
                status = "ERROR"
            rng = np.random.default_rng(zlib.crc32(repr((dataset, strategy, k, dl, seed)).encode()))
            per_seed = np.random.default_rng(seed).normal(0, spread[strategy])
            sk = float(np.clip(skill[strategy] + per_seed + 0.01 * (k == "2"), 0.5, 0.99))
            dev = _trial_logits(rng, labels, sk)
            test = _trial_logits(rng, test_labels, sk - 0.02)
            out = run / "trials" / key
            out.mkdir(parents=True)
            arrays = {
                "dev_logits": dev,
                "dev_labels": labels,
                "test_logits": test,
                "test_labels": test_labels,
            }
            metrics = {
                "dev": classification_metrics(dev, labels),
                "test": classification_metrics(test, test_labels),
            }
            if strategy in ("se", "sda"):
                avg_dev = _trial_logits(rng, labels, min(sk + 0.02, 0.99))
                arrays["averaged_dev_logits"] = avg_dev
                metrics["averaged"] = {"dev": classification_metrics(avg_dev, labels)}
            np.savez_compressed(out / "logits.npz", **arrays)
            history = []
            for step in (4, 8, 12):
                frac = step / 12
                entry = {
                    "step": step,
                    "epoch": step / 12,
                    "train_loss": 0.7 - 0.3 * frac + 0.01 * seed,
                    "lr": 1e-3,
                    "dev": {m: v * (0.8 + 0.2 * frac) for m, v in metrics["dev"].items()},
                }
                if "averaged" in metrics:
                    entry["averaged"] = {
                        "dev": {
                            m: v * (0.85 + 0.15 * frac)
                            for m, v in metrics["averaged"]["dev"].items()
                        }
                    }
                history.append(entry)
            config = {
                "strategy": strategy,
                "seed": seed,
                "model": "tiny-bert",
                "data": {"name": "synthetic-sentiment"},
                "noise": {"lambda": nl or 0.15},
                "distill": {"lambda": dl or 1.0, "k": k},
                "eval": {"primary_metric": metric},
            }
            result = {
                "config": config,
                "metrics": metrics,
                "history": history,
                "label_names": ["neg", "pos"],
                "teacher_k": k,
                "versions": {},
                "git_commit": "abc1234",
                "runtime_s": 1.0,
            }
            (out / "result.json").write_text(json.dumps(result))
            model_path = None
            if save_models and strategy == "vanilla":
                import torch
                from safetensors.torch import save_file

                g = torch.Generator().manual_seed(seed)
                save_file(
                    {"w": torch.randn(2, 3, generator=g), "position_ids": torch.arange(4)},
                    out / "model.safetensors",
                    metadata={"base_model": "tiny-bert"},
                )
                model_path = out / "model.safetensors"
            base = Path("/cluster/scratch/user/runs/fake-run") if cluster_paths else run
            row = {
                "key": key,
                "dataset": dataset,
                "strategy": strategy,
                "seed": seed,
                **knob_columns({"distill.k": k, "distill.lambda": dl, "noise.lambda": nl}),
                "optuna_trial": optuna,
                "optuna_cell": "cell" if optuna is not None else None,
                "primary_metric": metric,
                "primary_dev_score": metrics["dev"][metric] if status == "TERMINATED" else None,
                "trial_id": key,
                "status": status,
                "runtime_s": 1.0,
                "git_commit": "abc1234",
                "result_path": str(base / "trials" / key / "result.json"),
                "logits_path": str(base / "trials" / key / "logits.npz"),
                "model_path": str(base / "trials" / key / "model.safetensors")
                if model_path
                else None,
                "version_torch": "2.13.0",
            }
            if status == "TERMINATED":
                for split in ("dev", "test"):
                    for m, v in metrics[split].items():
                        row[f"{split}_{m}"] = v
                for m, v in metrics.get("averaged", {}).get("dev", {}).items():
                    row[f"averaged_dev_{m}"] = v
            rows.append(row)
    pd.DataFrame(rows).to_parquet(run / "results.parquet", index=False)
    (run / "sweep.json").write_text(json.dumps({"spec": {}, "grid_keys": grid_keys}))
    return run
