"""``submit`` / ``status`` / ``logs`` / ``stop`` against a real local Ray head.

The head is started by the test (``ray start --head`` on 127.0.0.1, its own temp dir)
and stopped by the test: its processes are ended by pid (those that mention its temp
dir), never with a machine-wide ``ray stop``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweeps import jobs
from sweeps.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _end_processes_mentioning(needle: str) -> None:
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            hit = needle.encode() in (pid_dir / "cmdline").read_bytes() or any(
                needle in os.readlink(fd) for fd in (pid_dir / "fd").iterdir()
            )
        except OSError:
            continue
        if hit:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_dir.name), signal.SIGKILL)


@pytest.fixture
def ray_head():
    temp = tempfile.mkdtemp(prefix="st-head-", dir="/tmp")
    port, dash = _free_port(), _free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--num-cpus=2",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        check=True, env=env, cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{dash}"
    finally:
        _end_processes_mentioning(temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_submit_rejects_data_too_large_to_upload(tmp_path, monkeypatch):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "a,0\n" * 1000)
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "big", "model": "tiny-bert", "strategies": ["vanilla"], "seeds": 1,
        "datasets": [{"files": {"train": "train.csv", "dev": "train.csv"}}],
    }))  # fmt: skip
    monkeypatch.setattr(jobs, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(jobs.JobError, match="--shared-data"):
        jobs.prepare_upload(spec, tmp_path / "job")
    # with a generous limit the file travels, its path rewritten into the job's dir
    monkeypatch.setattr(jobs, "MAX_UPLOAD_BYTES", 10**9)
    written = jobs.prepare_upload(spec, tmp_path / "job")
    assert written["datasets"][0]["files"]["train"] == "data/0-train.csv"
    assert (tmp_path / "job" / "data" / "0-train.csv").is_file()


@pytest.mark.slow
def test_submit_status_logs_against_a_local_head(ray_head, tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "job", "model": "tiny-bert", "strategies": ["vanilla", "sda"], "seeds": 1,
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "defaults": {"device": "cpu", "optim": {"max_steps": 2, "batch_size": 16}},
        "storage": str(tmp_path / "runs"), "max_concurrent": 2,
    }))  # fmt: skip
    assert main(["submit", str(spec), "--address", ray_head]) == 0
    job_id = capsys.readouterr().out.strip().splitlines()[-1]
    assert jobs.wait(job_id, ray_head, timeout_s=300) == "SUCCEEDED", jobs.logs(job_id, ray_head)
    assert main(["status", job_id, "--address", ray_head]) == 0
    assert "status: SUCCEEDED" in capsys.readouterr().out
    assert main(["logs", job_id, "--address", ray_head]) == 0
    assert "steadytune: done" in capsys.readouterr().out
    df = pd.read_parquet(tmp_path / "runs" / "job" / "results.parquet")
    assert len(df) == 2 and set(df["status"]) == {"TERMINATED"}
    assert main(["stop", job_id, "--address", ray_head]) == 0
    assert main(["status", "nope", "--address", ray_head]) == 2
