"""Token authentication on a two-node cluster: ``steadytune submit`` without the
cluster's token is refused with a message that says what to do; with it, the sweep runs
(real trainer, tiny-bert) over both nodes and fills ``results.parquet``.

The CLI runs in subprocesses with ``HOME`` set to an empty directory, so a token in the
developer's ``~/.ray/auth_token`` can neither help nor be touched.
"""

from __future__ import annotations

import secrets
import subprocess
import sys

import pandas as pd
import pytest
import ray_cluster
import yaml


@pytest.fixture
def auth_cluster(tmp_path):
    token = secrets.token_hex(16)
    env = ray_cluster.clean_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    cluster = ray_cluster.Cluster(env)
    try:
        cluster.start_head(num_cpus=1)
        cluster.add_worker(num_cpus=1)
        yield cluster, token
    finally:
        cluster.stop()


def steadytune(args: list[str], home, **env: str) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli.main", *args],
        env=ray_cluster.clean_env(HOME=str(home), **env), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_submit_needs_the_token(auth_cluster, tmp_path):
    cluster, token = auth_cluster
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "auth", "model": "tiny-bert", "strategies": ["vanilla", "sda"], "seeds": 1,
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "defaults": {"device": "cpu", "cache_dir": str(tmp_path / "cache"),
                     "optim": {"max_steps": 2, "batch_size": 16}},
        "resources": {"cpu": 1}, "storage": str(tmp_path / "runs"),
    }))  # fmt: skip
    home = tmp_path / "home"
    submit = ["submit", str(spec), "--address", cluster.dashboard_url]

    refused = steadytune(submit, home)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert "token authentication" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr

    wrong = steadytune(submit, home, RAY_AUTH_TOKEN="not-" + token)
    assert wrong.returncode == 2 and "RAY_AUTH_TOKEN" in wrong.stderr, wrong.stderr[-2000:]

    done = steadytune([*submit, "--wait"], home, RAY_AUTH_TOKEN=token)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "SUCCEEDED" in done.stdout
    df = pd.read_parquet(tmp_path / "runs" / "auth" / "results.parquet")
    assert len(df) == 2 and df["key"].is_unique and set(df["status"]) == {"TERMINATED"}
    assert not any(home.iterdir()), "the CLI wrote into HOME"
