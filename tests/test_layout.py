"""trainer/layout.py: the one place that names a trial's and a run's files and folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sweeps import local_ray
from trainer import layout


def test_importing_the_layout_loads_neither_torch_nor_ray():
    code = "import sys, trainer.layout; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_local_ray_spells_the_ray_names_as_the_layout_does():
    # local_ray.py runs as a stdlib-only script and cannot import trainer.layout
    assert local_ray.PRIVATE_DIR_NAME == layout.RAY_DIR
    assert local_ray.RAY_TEMP_SUBDIR == layout.RAY_TEMP_SUBDIR
    assert local_ray.POINTER_FILE == layout.RAY_POINTER_FILE


def test_path_helpers(tmp_path: Path):
    assert layout.trials_dir(tmp_path) == tmp_path / "trials"
    assert layout.trial_dir(str(tmp_path), "k") == tmp_path / "trials" / "k"
    assert layout.trial_uri("s3://bucket/run", "k") == "s3://bucket/run/trials/k"
    ckpt = tmp_path / layout.CHECKPOINT_DIR
    assert layout.old_dir(ckpt) == tmp_path / ".checkpoint-old"
    assert layout.OLD_CHECKPOINT_DIR == ".checkpoint-old"
    assert layout.corrupt_dir(ckpt, 2) == tmp_path / "checkpoint.corrupt-2"
    assert set(layout.TRIAL_OUTPUTS) == {"result.json", "logits.npz", "model.safetensors"}


def test_every_name_is_a_plain_distinct_entry():
    names = {k: v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)}
    assert all(v and "/" not in v for v in names.values()), names
    trial = ("TRIAL_FILE", "RESULT_FILE", "LOGITS_FILE", "MODEL_FILE", "ERROR_FILE",
             "CHECKPOINT_DIR", "OLD_CHECKPOINT_DIR", "TRAIN_MARKER")  # fmt: skip
    run = ("RUN_MARKER", "LOCK_FILE", "SWEEP_FILE", "RESULTS_FILE", "ENSEMBLES_FILE",
           "OPTUNA_DB", "TRIALS_DIR", "TUNE_DIR", "RAY_DIR", "RAY_POINTER_FILE", "REPORT_DIR",
           "GRID_EXPERIMENT", "OPTUNA_EXPERIMENT")  # fmt: skip
    for group in (trial, run):
        assert len({names[k] for k in group}) == len(group)


def test_a_table_read_while_the_sweep_replaces_it_is_one_version(tmp_path):
    """``results.parquet`` is replaced whole after every trial; a reader polling it
    mid-sweep (the report, a test, a user's notebook) must get one version, never a mix
    of two (what ``pandas.read_parquet(path)`` can return: it opens the path twice)."""
    import threading

    import pandas as pd

    from sweeps.results import _write_table
    from trainer.layout import read_parquet_file

    path = tmp_path / "results.parquet"
    frame = lambda n: pd.DataFrame({"key": [f"t{i}" for i in range(n)], "v": range(n)})  # noqa: E731
    _write_table(str(path), frame(1))
    done = threading.Event()

    def rewrite() -> None:
        n = 1
        while not done.is_set():
            n = n % 40 + 1
            _write_table(str(path), frame(n))

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(400):
            df = read_parquet_file(path)  # raises on a mixed read
            assert sorted(df["v"]) == list(range(len(df)))  # rows of one version
    finally:
        done.set()
        writer.join()
