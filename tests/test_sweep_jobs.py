"""``submit`` / ``status`` / ``logs`` / ``stop`` against a real local Ray head.

The head is started by the test (``ray start --head`` on 127.0.0.1, its own temp dir,
see ``tests/ray_cluster.py``) and stopped by the test: its processes are ended by pid
(those that mention its temp dir), never with a machine-wide ``ray stop``.
"""

from __future__ import annotations

import pandas as pd
import pytest
import ray_cluster
import yaml

from sweeps import jobs
from sweeps.cli.main import main


@pytest.fixture
def ray_head():
    cluster = ray_cluster.Cluster(ray_cluster.clean_env())
    try:
        cluster.start_head(num_cpus=2)
        yield cluster.dashboard_url
    finally:
        cluster.stop()


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


def test_submit_applies_set_overrides_before_it_uploads(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "job", "model": "tiny-bert", "strategies": ["vanilla"], "seeds": 3,
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
    }))  # fmt: skip
    (tmp_path / "job").mkdir()  # submit's own temp dir
    written = jobs.prepare_upload(spec, tmp_path / "job", overrides=["seeds=5"])
    assert written["seeds"] == 5
    assert yaml.safe_load((tmp_path / "job" / "spec.yaml").read_text())["seeds"] == 5
    # a bad override is refused here, before anything is submitted: one line, exit 2
    assert main(["submit", str(spec), "--set", "seedz=5", "--address", "http://127.0.0.1:9"]) == 2


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
