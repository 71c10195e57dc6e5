"""The on-disk layout: every file and folder of a trial directory and of a run directory.

A *trial directory* is the trainer's ``out_dir`` (``steadytune train --out``, or one
trial of a sweep); a *run directory* is a sweep's ``<storage>/<name>/``::

    <run dir>/
        .steadytune-run      RUN_MARKER: created by steadytune (sweeps.rundir.claim)
        .driver.lock         LOCK_FILE: fcntl-locked by the running driver; holds its PID
        sweep.json           SWEEP_FILE: the spec and every trial's resolved config
        results.parquet      RESULTS_FILE: one row per ended trial, derived from trials/
        ensembles.parquet    ENSEMBLES_FILE: VOTE/AVG seed ensembles (steadytune ensemble)
        optuna.db            OPTUNA_DB: the Optuna studies (default storage)
        trials/              TRIALS_DIR
            <key>/           trial_dir(run_dir, key): one trial directory, below
        tune/                TUNE_DIR: one Tune experiment per driver run:
            grid-<time>/, optuna-<time>/, race-<time>/, confirm-<time>/
                             (GRID_, OPTUNA_, RACE_, CONFIRM_EXPERIMENT)
        ray/                 RAY_DIR (0700): the local Ray instance's private dir
            r/               RAY_TEMP_SUBDIR: Ray's temp dir (logs, sockets)
        ray-temp-dir.txt     RAY_POINTER_FILE: names /tmp/st-ray-*/ where ray/r is too long
        report/              REPORT_DIR: steadytune report's output
            .steadytune-report   REPORT_MARKER
        grid/, optuna/       a remote run dir's Tune experiments (restored by name)

    <trial dir>/  (trials/<key>/, or --out)
        trial.json           TRIAL_FILE: the TrialSpec dict and Tune trial id (sweeps only)
        result.json          RESULT_FILE: the trainer's result: config, metrics, history
        logits.npz           LOGITS_FILE: the final evaluation's logits and labels
        model.safetensors    MODEL_FILE: the final weights (save_model: true)
        error.json           ERROR_FILE: why the trial failed for good (sweeps only)
        checkpoint/          CHECKPOINT_DIR: the last checkpoint, STATE_FILE inside
            state.pt
        .checkpoint-old/     OLD_CHECKPOINT_DIR: the previous one, while a new one is renamed in
        checkpoint.corrupt-<n>/  corrupt_dir(): an unreadable checkpoint, moved aside
        .steadytune-train    TRAIN_MARKER: a ``steadytune train --out`` directory

For a remote run dir (``s3://...``) a trial works in ``<Tune's trial dir>/out``
(``REMOTE_OUT_DIR``) and its ``TRIAL_OUTPUTS`` are uploaded to ``trial_uri(run_dir,
key)`` at the end.

Why this lives in ``trainer``: the trainer writes the trial directory, ``sweeps`` writes
the run directory around it, and ``analysis`` reads both — and ``analysis`` must not
import ``sweeps`` (nor Ray). ``trainer`` is the one package all three may import. This
module imports nothing but the standard library (no torch, no Ray), so the CLIs and
``analysis`` can use it at no cost. One exception: ``sweeps/local_ray.py`` spells out the
``ray/`` names again, because it also runs as a script on the standard library alone
(``tests/test_layout.py`` checks that the two agree).
"""

from __future__ import annotations

from pathlib import Path

# -- a trial directory (the trainer's out_dir) ------------------------------------
TRIAL_FILE = "trial.json"
RESULT_FILE = "result.json"
LOGITS_FILE = "logits.npz"
MODEL_FILE = "model.safetensors"
ERROR_FILE = "error.json"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"  # inside a checkpoint directory
TRAIN_MARKER = ".steadytune-train"
TENSORBOARD_DIR = "tensorboard"  # a trial's events, with the spec's callbacks.tensorboard
# what a trial on a remote run dir uploads into its trial directory at the end
TRIAL_OUTPUTS = (RESULT_FILE, LOGITS_FILE, MODEL_FILE)
# a remote run dir's trial works here, inside Tune's own trial directory
REMOTE_OUT_DIR = "out"

# -- a run directory (a sweep's <storage>/<name>) ---------------------------------
RUN_MARKER = ".steadytune-run"
LOCK_FILE = ".driver.lock"
SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.parquet"
ENSEMBLES_FILE = "ensembles.parquet"
OPTUNA_DB = "optuna.db"
MLFLOW_DB = "mlflow.db"  # MLflow's default store (SQLite), with the spec's callbacks.mlflow
TRIALS_DIR = "trials"
TUNE_DIR = "tune"
RAY_DIR = "ray"
RAY_TEMP_SUBDIR = "r"  # short: Ray's Unix socket paths hang below it (~107 bytes at most)
RAY_POINTER_FILE = "ray-temp-dir.txt"
REPORT_DIR = "report"
REPORT_MARKER = ".steadytune-report"
# Tune experiments: under tune/ with the driver's start time appended (grid-<time>/) in a
# local run dir; as they are (grid/, optuna/) in a remote one, which has no race
GRID_EXPERIMENT = "grid"
OPTUNA_EXPERIMENT = "optuna"
RACE_EXPERIMENT = "race"
CONFIRM_EXPERIMENT = "confirm"
# A Tune trial's directory under its experiment is named by the trial key and Tune's
# trial id, cut to this many characters (``sweeps._ray``)
TUNE_TRIAL_DIRNAME_MAX = 200


# -- paths --------------------------------------------------------------------------
def trials_dir(run_dir: str | Path) -> Path:
    """``<run dir>/trials`` of a local or shared run directory."""
    return Path(run_dir) / TRIALS_DIR


def trial_dir(run_dir: str | Path, key: str) -> Path:
    """``<run dir>/trials/<key>`` of a local or shared run directory."""
    return Path(run_dir) / TRIALS_DIR / key


def trial_uri(run_dir: str, key: str) -> str:
    """``<run dir>/trials/<key>`` joined with ``/``: ``Path`` would fold ``s3://``."""
    return f"{run_dir}/{TRIALS_DIR}/{key}"


def old_dir(directory: Path) -> Path:
    """Where a directory's previous version waits while a new one is renamed into place:
    ``.<name>-old`` beside it (``.checkpoint-old``)."""
    return directory.with_name(f".{directory.name}-old")


def corrupt_dir(directory: Path, n: int) -> Path:
    """The ``n``-th unreadable version of a directory, moved aside: ``<name>.corrupt-<n>``."""
    return directory.with_name(f"{directory.name}.corrupt-{n}")


OLD_CHECKPOINT_DIR = old_dir(Path(CHECKPOINT_DIR)).name


def read_parquet_file(path: str | Path):
    """A parquet file of a run dir as a DataFrame, read through *one* open.

    The tables are replaced whole while a sweep runs (temp file + ``os.replace``).
    ``pandas.read_parquet(path)`` opens the path more than once (footer, then data), so a
    replacement in between mixes two files ("Page was smaller than expected": 234 of 1,504
    reads under a tight rewrite loop, none of 1,289 through one open; the test is in
    tests/test_layout.py). Reading the bytes first pins one version. The tables are
    small (a row per trial)."""
    import io

    import pandas as pd

    return pd.read_parquet(io.BytesIO(Path(path).read_bytes()))
