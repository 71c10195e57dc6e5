"""bench/gpu.sh, the one GPU benchmark command, dry-run on CPU so it cannot rot: every
measurement it makes must run and write its JSON lines (tiny-bert, a generated SST-2-shaped
set, 2 steps)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sst2_like(folder: Path, rows: int) -> Path:
    folder.mkdir()
    words = ["good", "bad", "fine", "awful", "great", "dull", "warm", "cold"]
    for name, n in (("train.tsv", rows), ("dev.tsv", 32)):
        lines = ["sentence\tlabel"] + [
            f"{' '.join(words[(i + j) % 8] for j in range(3 + i % 9))}\t{i % 2}" for i in range(n)
        ]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.slow
def test_gpu_script_dry_runs_on_cpu(tmp_path, cache_dir):
    data = _sst2_like(tmp_path / "sst2", 64)
    out = tmp_path / "rows"
    env = {**os.environ, "STEADYTUNE_CACHE": str(cache_dir)}
    run = subprocess.run(
        ["bash", "bench/gpu.sh", str(out), "--device", "cpu", "--steps", "2", "--rows", "64",
         "--trials", "2", "--model", "tiny-bert", "--data", str(data)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(x) for x in (out / "strategies.jsonl").read_text().splitlines()]
    hf = {r["hf_config"] for r in lines if r["bench"] == "hf_trainer"}
    import torch

    from trainer.precision import native_bf16

    native = native_bf16(torch.device("cpu"))
    # bf16 only where it is native: elsewhere it is emulated, and no user would set it
    assert hf == ({"defaults", "grouped", "grouped-bf16"} if native else
                  {"defaults", "grouped"})  # fmt: skip
    ours = {r["strategy"] for r in lines if r["bench"] == "steadytune"}
    assert ours == {"vanilla", "sda:5", "sdv:3"}
    summary = lines[-1]
    assert summary["bench"] == "summary" and summary["best_hf_config"] in hf
    assert set(summary["vanilla_vs_hf_samples_per_s"]) == hf
    packed = json.loads((out / "packed.jsonl").read_text().splitlines()[-1])
    assert packed["bench"] == "packed_sweep" and packed["trials"] == 2
