"""A run directory answers exactly the spec it was run with, and survives damage.

Changed specs are refused (and a pure growth runs only the new trials), two drivers
cannot share a run dir, ``results.parquet`` is rebuilt from the trial directories, a
foreign directory is never adopted, and resuming never unpickles anything from the run
dir. Sweeps run on a small local Ray with the stand-in trainer of test_sweep_fake.py.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import test_sweep_fake as fake
from test_bad_input import snapshot
from test_sweep_ray import ROOT, _kill_ray_under

from sweeps.cli.main import main
from sweeps.driver import run_sweep
from sweeps.results import record_trial
from sweeps.rundir import DriverLock, check_owned
from sweeps.spec import load_spec
from trainer.errors import ConfigError, UserInputError
from trainer.layout import RESULTS_FILE, RUN_MARKER

pytestmark = pytest.mark.slow


def spec_dict(storage: Path, **over) -> dict:
    return {
        "name": "r",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "strategies": ["vanilla", "sda"],
        "seeds": 2,
        "defaults": {"optim": {"max_steps": 3}},
        "storage": str(storage),
        "max_concurrent": 2,
        **over,
    }


def sweep(spec: dict, **kw) -> dict:
    return run_sweep(
        load_spec(spec), num_cpus=2, dashboard=False, train_fn=fake.picklable_train(), **kw
    )


def results(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / RESULTS_FILE)


def result_times(run_dir: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in run_dir.glob("trials/*/result.json")}


def test_changed_spec_refused_growth_runs_only_new_trials_restart_moves_aside(tmp_path):
    storage = tmp_path / "runs"
    run_dir = storage / "r"
    sweep(spec_dict(storage))
    assert len(results(run_dir)) == 4
    assert (run_dir / RUN_MARKER).is_file()
    first = result_times(run_dir)

    # a changed recorded config: refused before Ray, naming old -> new, nothing touched
    before = snapshot(run_dir)
    for change, needle in (
        ({"defaults": {"optim": {"max_steps": 3, "lr": 1e-4}}}, "optim.lr: 2e-05 -> 0.0001"),
        ({"model": "minilm-l6"}, "model: 'tiny-bert' -> 'minilm-l6'"),
        ({"datasets": [{"name": "synthetic-sentiment", "train_size": 40}]}, "data.train_size"),
        ({"strategies": ["vanilla"]}, "no longer in the spec"),
    ):
        with pytest.raises(ConfigError, match="--restart") as err:
            sweep(spec_dict(storage, **change))
        assert needle in str(err.value)
        assert snapshot(run_dir) == before

    # pure growth: the dry run says what is new, the run trains only that
    grown = spec_dict(storage, seeds=3, strategies=["vanilla", "sda", "noisytune"])
    out = io.StringIO()
    sweep(grown, dry_run=True, stream=out)
    assert "holds 4 finished trial(s) of these; 5 to run, 5 of them new" in out.getvalue()
    sweep(grown)
    df = results(run_dir)
    assert len(df) == 9 and df["key"].is_unique and set(df["status"]) == {"TERMINATED"}
    after = result_times(run_dir)
    assert {k: after[k] for k in first} == first  # the finished trials were not run again

    # --restart: the old run dir is moved aside whole, the new spec starts afresh
    changed = spec_dict(storage, defaults={"optim": {"max_steps": 3, "lr": 1e-4}})
    sweep(changed, restart=True)
    (old,) = storage.glob("r.old-*")
    assert len(results(old)) == 9 and len(results(run_dir)) == 4
    config = json.loads(next(run_dir.glob("trials/*/result.json")).read_text())["config"]
    assert config["optim"]["lr"] == 1e-4


def test_results_parquet_is_derived_and_rebuilt(tmp_path, capsys):
    storage = tmp_path / "runs"
    run_dir = storage / "r"
    sweep(spec_dict(storage))
    table = run_dir / RESULTS_FILE
    full = results(run_dir).sort_values("key").reset_index(drop=True)

    table.write_bytes(table.read_bytes()[:100])  # truncated
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    rebuilt = results(run_dir).sort_values("key").reset_index(drop=True)
    pd.testing.assert_frame_equal(rebuilt[full.columns], full, check_dtype=False)

    # a trial ends while the table is corrupt: its row and every other one are there
    table.write_bytes(b"garbage")
    record_trial(str(run_dir), full["key"].iloc[0])
    assert len(results(run_dir)) == 4

    # missing, then resumed: rebuilt, and with nothing left to run Ray is not started
    table.unlink()
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert len(results(run_dir)) == 4


def _without(tree, setting: str):
    """``tree`` with every ``setting`` key removed: as recorded before it existed."""
    if isinstance(tree, dict):
        return {k: _without(v, setting) for k, v in tree.items() if k != setting}
    if isinstance(tree, list):
        return [_without(v, setting) for v in tree]
    return tree


def test_a_run_dir_recorded_before_a_setting_existed_resumes_with_nothing_rerun(tmp_path, capsys):
    """An upgrade that adds a setting (here data.test_from_train, None: off) keeps every
    finished trial of an older run dir: no refusal, nothing run again."""
    storage = tmp_path / "runs"
    run_dir = storage / "r"
    sweep(spec_dict(storage))
    first = result_times(run_dir)
    rewritten = 0
    for path in [run_dir / "sweep.json", *run_dir.glob("trials/*/*.json")]:
        text = path.read_text()
        if "test_from_train" in text:
            path.write_text(json.dumps(_without(json.loads(text), "test_from_train")))
            rewritten += 1
    assert rewritten >= 1 + 2 * len(first)  # the ledger, each trial's record and result
    first = result_times(run_dir)
    capsys.readouterr()
    assert main(["resume", str(run_dir), "--no-report"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert result_times(run_dir) == first
    assert len(results(run_dir)) == 4


def test_foreign_directory_is_never_adopted(tmp_path):
    victim = tmp_path / "victim" / "r"
    (victim / "report").mkdir(parents=True)
    mine = victim / "report" / "report.html"
    mine.write_text("<p>mine</p>")
    with pytest.raises(ConfigError, match="did not create"):
        sweep(spec_dict(tmp_path / "victim"))
    assert mine.read_text() == "<p>mine</p>" and not (victim / RUN_MARKER).exists()
    # a run dir of steadytune 0.1 (no marker, a sweep.json) is adopted, not refused
    legacy = tmp_path / "legacy"
    (legacy / "trials").mkdir(parents=True)
    (legacy / "sweep.json").write_text("{}")
    check_owned(legacy, RUN_MARKER, "the run directory")


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import test_sweep_fake as fake
from sweeps.driver import run_sweep, load_spec
run_sweep(load_spec({spec!r}), num_cpus=2, dashboard=False, train_fn=fake.picklable_train())
"""


def test_one_driver_per_run_dir_and_a_killed_drivers_lock_is_taken_over(tmp_path, capsys):
    storage = tmp_path / "runs"
    run_dir = storage / "r"
    spec = spec_dict(storage, defaults={"optim": {"max_steps": 6}})
    env = {**os.environ, "FAKE_TRAIN_SLEEP": "0.5", "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER.format(tests=str(ROOT / "tests"), spec=spec)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lock = run_dir / ".driver.lock"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lock.is_file() and lock.read_text()):
            time.sleep(0.1)
        assert lock.read_text(), "the first driver never took the lock"
        capsys.readouterr()
        assert main(["sweep", _spec_file(tmp_path, spec)]) == 2
        err = capsys.readouterr().err
        assert f"PID {driver.pid}" in err and len(err.strip().splitlines()) == 1
        with pytest.raises(UserInputError, match=f"PID {driver.pid}"):
            DriverLock(run_dir).acquire()
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    # the kernel dropped the dead driver's lock: the next driver takes it over and
    # finishes the sweep, every trial exactly once
    try:
        sweep(spec)
    finally:
        _kill_ray_under(run_dir)
    df = results(run_dir)
    assert len(df) == 4 and df["key"].is_unique and set(df["status"]) == {"TERMINATED"}


def _spec_file(tmp_path: Path, spec: dict) -> str:
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


class _Payload:
    """Unpickling this writes a file: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_resume_of_a_local_run_dir_unpickles_nothing(tmp_path):
    storage = tmp_path / "runs"
    run_dir = storage / "r"
    sweep(spec_dict(storage))
    marker = tmp_path / "executed"
    # what an attacker would plant: Tune experiment state whose unpickling runs code
    for experiment in ("grid", "optuna", *[p.name for p in (run_dir / "tune").iterdir()]):
        for name in ("tuner.pkl", "trainable.pkl", "params.pkl"):
            target = (run_dir / "tune" / experiment if experiment not in ("grid", "optuna")
                      else run_dir / experiment)  # fmt: skip
            target.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(pickle.dumps(_Payload(marker)))
    grown = spec_dict(storage, seeds=3)
    sweep(grown)
    assert len(results(run_dir)) == 6
    assert not marker.exists(), "resume unpickled a file from the run directory"
