"""Sweeps on a local Ray instance, with the stand-in trainer of test_sweep_fake.py.

Each test starts its own small Ray (2 CPUs, no dashboard) and shuts it down; a driver
killed with SIGKILL leaves Ray processes behind, which the test ends by pid (those whose
command line names its own temp dir), never by a broad name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import test_sweep_fake as fake

from sweeps.driver import run_sweep
from sweeps.spec import load_spec
from trainer.layout import read_parquet_file
from trainer.loading import load_config

ROOT = Path(__file__).resolve().parents[1]


def grid_spec(storage: Path, **over) -> dict:
    return {
        "name": "g",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "strategies": ["vanilla", "se", "sda", "noisytune"],
        "seeds": 2,
        "grid": {"distill.k": [1, 2]},
        "defaults": {"optim": {"max_steps": 4}},
        "storage": str(storage),
        "max_concurrent": 2,
        "max_failures": 1,
        **over,
    }


def expected_primary(config: dict) -> float:
    return fake._score(load_config(config))


def _kill_ray_under(run_dir: Path) -> None:
    """End the Ray processes of the local instance started for ``run_dir``: those whose
    command line or open files mention its temp dir (some rename their process title)."""
    temp = run_dir / "ray"
    pointer = run_dir / "ray-temp-dir.txt"
    if pointer.is_file():
        temp = Path(pointer.read_text().strip())
    needle = str(temp)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            mentions = needle.encode() in (pid_dir / "cmdline").read_bytes()
            if not mentions:
                fds = pid_dir / "fd"
                mentions = any(needle in os.readlink(fd) for fd in fds.iterdir())
        except OSError:
            continue
        if mentions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_dir.name), signal.SIGKILL)
    if pointer.is_file():
        shutil.rmtree(temp, ignore_errors=True)


def test_grid_sweep_of_8_trials_fills_results(tmp_path):
    spec = load_spec(grid_spec(tmp_path / "runs", strategies=["vanilla", "sda", "noisytune"]))
    summary = run_sweep(
        spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train(), stream=sys.stdout
    )
    assert summary["grid"] == {"trials": 8, "errors": 0}
    df = pd.read_parquet(Path(summary["run_dir"]) / "results.parquet")
    assert len(df) == 8 and df["key"].is_unique
    assert set(df["status"]) == {"TERMINATED"}
    for col in ("dataset", "strategy", "seed", "settings", "noise.lambda", "distill.lambda",
                "distill.k",
                "primary_dev_score", "dev_accuracy", "test_mcc", "runtime_s", "trial_id",
                "logits_path", "git_commit", "version_torch"):  # fmt: skip
        assert col in df.columns, col
    vanilla = df[df.strategy == "vanilla"]
    assert vanilla[["distill.k", "distill.lambda", "noise.lambda"]].isna().all().all()
    assert set(vanilla["settings"]) == {""}
    sda = df[df.strategy == "sda"]
    assert set(sda["distill.k"]) == {"1", "2"} and sda["averaged_dev_accuracy"].notna().all()
    for row in df.itertuples():
        result = json.loads(Path(row.result_path).read_text())
        assert row.primary_dev_score == pytest.approx(expected_primary(result["config"]))
        assert Path(row.logits_path).is_file()


def test_worker_killed_mid_trial_is_retried_from_checkpoint(tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("FAKE_TRAIN_DIE_ONCE", str(marker))
    spec = load_spec(grid_spec(tmp_path / "runs", strategies=["sda"], seeds=1, grid={}))
    summary = run_sweep(spec, num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
    assert marker.exists(), "the worker never died"
    assert summary["grid"] == {"trials": 1, "errors": 0}
    df = pd.read_parquet(Path(summary["run_dir"]) / "results.parquet")
    (row,) = df.itertuples()
    result = json.loads(Path(row.result_path).read_text())
    assert result["pid"] != int(marker.read_text())  # finished in another process
    assert result["resumed_from"] is not None and result["resumed_from"] >= 1
    assert row.primary_dev_score == pytest.approx(expected_primary(result["config"]))


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import test_sweep_fake as fake
from sweeps.driver import run_sweep, load_spec
run_sweep(load_spec({spec!r}), num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
"""


def kill_driver_when(tmp_path: Path, spec: dict, run_dir: Path, ready, what: str,
                     env: dict | None = None, timeout: float = 90) -> None:  # fmt: skip
    """Run a sweep driver (stand-in trainer) in a subprocess and SIGKILL it as soon as
    ``ready()`` holds; then end the Ray processes it leaves behind."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    log_path = tmp_path / "driver.log"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER.format(tests=str(ROOT / "tests"), spec=spec)],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                break
            assert driver.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail(f"{what} in time")
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
        time.sleep(1)
        _kill_ray_under(run_dir)


def resume_here(monkeypatch, run_dir: Path) -> int:
    """``steadytune resume RUN_DIR`` in this process, so the stand-in trainer is used."""
    import sweeps.driver as driver_mod
    from sweeps.cli.main import main

    real = driver_mod.run_sweep
    monkeypatch.setattr(
        driver_mod, "run_sweep",
        lambda *a, **kw: real(*a, **{**kw, "train_fn": fake.picklable_train(), "dashboard": False,
                                     "num_cpus": 2}),
    )  # fmt: skip
    return main(["resume", str(run_dir)])


def test_driver_sigkill_then_resume_runs_every_trial_once(tmp_path, monkeypatch):
    """Grid + Optuna (3 candidates × 2 seeds): kill the driver during the search, resume."""
    spec = grid_spec(
        tmp_path / "runs",
        strategies=["vanilla", "sda"],
        grid={"distill.k": [1]},
        search={"param": "distill.lambda", "low": 0.1, "high": 2.0, "n_trials": 3,
                "seeds_per_candidate": 2},
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "g"

    def an_optuna_trial_finished() -> bool:
        results = run_dir / "results.parquet"
        return results.is_file() and read_parquet_file(results)["optuna_trial"].notna().sum() >= 1

    kill_driver_when(tmp_path, spec, run_dir, an_optuna_trial_finished,
                     "no Optuna trial finished", env={"FAKE_TRAIN_SLEEP": "0.4"})  # fmt: skip
    before = pd.read_parquet(run_dir / "results.parquet")
    assert len(before) < 2 + 6

    monkeypatch.setenv("FAKE_TRAIN_SLEEP", "0")
    assert resume_here(monkeypatch, run_dir) == 0

    df = pd.read_parquet(run_dir / "results.parquet")
    assert df["key"].is_unique and len(df) == 2 + 3 * 2
    assert set(df["status"]) == {"TERMINATED"}
    # every trial exactly once, metrics as an uninterrupted run gives them
    for row in df.itertuples():
        result = json.loads(Path(row.result_path).read_text())
        assert row.primary_dev_score == pytest.approx(expected_primary(result["config"]))
    search = df[df["optuna_trial"].notna()]
    assert sorted(search.groupby("optuna_trial").size().tolist()) == [2, 2, 2]
    # the resumed search proposes new λ values, not the seeded sampler's first ones again
    assert search.groupby("optuna_trial")["distill.lambda"].first().is_unique
    # the study got the seed mean of each candidate
    with sqlite3.connect(run_dir / "optuna.db") as db:
        rows = db.execute(
            "SELECT t.number, t.state, v.value FROM trials t "
            "LEFT JOIN trial_values v ON v.trial_id = t.trial_id"
        ).fetchall()
    complete = {n: v for n, state, v in rows if state == "COMPLETE"}
    assert len(complete) == 3
    for number, value in complete.items():
        seeds = search[search["optuna_trial"] == number]["primary_dev_score"]
        assert value == pytest.approx(seeds.mean())
