"""Shared pieces of the benchmark scripts: the rows both sides train on, the machine,
and one JSON line per measurement."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def sst2_data(data_dir: Path, rows: int, max_length: int = 128) -> dict[str, Any]:
    """The trainer's data section for the first-drawn ``rows`` SST-2 training rows.

    Both the HF Trainer baseline and our trainer read their rows through this, so the
    two sides see exactly the same examples.
    """
    data_dir = Path(data_dir)
    if not (data_dir / "train.tsv").is_file():
        sys.exit(f"bench: no SST-2 at {data_dir} (pass --data DIR with train.tsv and dev.tsv)")
    return {
        "files": {"train": str(data_dir / "train.tsv"), "dev": str(data_dir / "dev.tsv")},
        "text": "sentence",
        "train_size": rows,
        "subset_seed": 0,
        "max_length": max_length,
    }


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. under taskset or cgroups)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def add_workload_arguments(parser) -> None:
    """Model, rows, steps, batch size, device and threads: the same flags in every script.

    ``--threads`` goes into the trainer config (its ``threads``, default 1), so a
    measurement runs on the cores it claims to, not on 1 thread by default.
    """
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dir with SST-2 TSVs")
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=usable_cores(),
        help="torch intra-op threads (default: the usable cores)",
    )


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def emit(record: dict[str, Any]) -> None:
    """One measurement: one JSON line on stdout."""
    print(json.dumps(record), flush=True)
