"""Ctrl-C and SIGTERM end `steadytune sweep` as an interruption, not as a finished sweep:
exit 130 / 143, one line naming what is unfinished and how to resume, no report, no
"done" line and no foreign `Tuner.restore` hint; the run dir is released and `resume`
finishes it, every trial once (slow: a local Ray instance, the stand-in trainer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_sweep_ray import ROOT, _kill_ray_under, grid_spec, resume_here

from sweeps.rundir import DriverLock

CLI_DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import test_sweep_fake as fake
import sweeps.driver as driver
real = driver.run_sweep
driver.run_sweep = lambda *a, **kw: real(
    *a, **{{**kw, "train_fn": fake.picklable_train(), "dashboard": False, "num_cpus": 2}})
from sweeps.cli.main import main
sys.exit(main(["sweep", {spec!r}]))
"""


def _finished(run_dir: Path) -> int:
    path = run_dir / "results.parquet"
    return len(pd.read_parquet(path)) if path.is_file() else 0


def _interrupt(tmp_path: Path, spec_path: Path, run_dir: Path, sig: int, done: int) -> str:
    """Run `steadytune sweep SPEC` (stand-in trainer) until ``done`` trials have
    finished, send ``sig``; return the driver's output once it has exited."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_TRAIN_SLEEP": "0.5"}
    log = tmp_path / f"driver-{sig}.log"
    driver = subprocess.Popen(
        [sys.executable, "-c", CLI_DRIVER.format(tests=str(ROOT / "tests"), spec=str(spec_path))],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    code = 130 if sig == signal.SIGINT else 143
    try:
        deadline = time.monotonic() + 120
        while _finished(run_dir) < done:
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.2)
        driver.send_signal(sig)
        assert driver.wait(timeout=60) == code, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
        _kill_ray_under(run_dir)
    return log.read_text()


@pytest.mark.slow
def test_an_interrupted_sweep_exits_as_interrupted_and_resumes(tmp_path, monkeypatch):
    """Ctrl-C, then SIGTERM on the sweep run again, then `resume` finishes it."""
    spec = grid_spec(tmp_path / "runs", strategies=["vanilla", "sda"], seeds=3,
                     grid={"distill.k": [1]}, max_concurrent=1)  # fmt: skip
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    run_dir = tmp_path / "runs" / "g"
    for sig, done in ((signal.SIGINT, 1), (signal.SIGTERM, 2)):
        out = _interrupt(tmp_path, spec_path, run_dir, sig, done)
        last = out.strip().splitlines()[-1]
        assert last.startswith("steadytune sweep: interrupted: ") and "unfinished" in last
        assert last.endswith(f"steadytune resume {run_dir}")
        assert "steadytune: done" not in out and "Tuner.restore" not in out
        assert not (run_dir / "report").exists()  # no partial report unless asked
        DriverLock(run_dir).acquire().release()  # the run dir is free again
        assert _finished(run_dir) < 6
    assert resume_here(monkeypatch, run_dir) == 0
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 6 and df["key"].is_unique and (df["status"] == "TERMINATED").all()
