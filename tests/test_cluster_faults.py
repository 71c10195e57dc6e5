"""A sweep on a two-node Ray cluster on this machine, and the loss of a node mid-sweep.

The head and a worker node are started with ``ray start`` (1 CPU each, token auth on,
own temp dirs); a trial takes 1 CPU, so two trials run at once only across both nodes.
The sweep's storage is one directory both nodes see. When a trial on the worker node
has saved a checkpoint, the worker node's processes (raylet, object store, workers) are
SIGKILLed by pid: the sweep must finish with every trial once in ``results.parquet``,
the interrupted trial resumed from its checkpoint on the head, and what finished on the
worker kept.

The driver runs in a subprocess, as ``steadytune sweep --address`` would. The trainer
is wrapped to note which node each attempt ran on (``ST_TEST_NODE``, set per node).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import ray_cluster
import test_sweep_fake as fake

from trainer.loading import load_config


def marking(train):
    """Wrap a ``trainer.train``-like function: every attempt leaves
    ``<marks>/<node>-<key>-<pid>.json`` = {"start": resumed step or None, "step": last
    checkpointed step}, and the result says which node finished it."""

    def train_on_node(config, out_dir, report=None, progress=False):
        node = os.environ.get("ST_TEST_NODE", "driver")
        marks = Path(os.environ["ST_TEST_MARKS"])
        state = Path(out_dir, "checkpoint", "state.json")
        start = json.loads(state.read_text())["step"] if state.is_file() else None
        mark = marks / f"{node}-{Path(out_dir).name}-{os.getpid()}.json"
        mark.write_text(json.dumps({"start": start, "step": None}))

        def _report(metrics, ckpt):
            if report is not None:
                report(metrics, ckpt)
            if ckpt is not None:
                mark.write_text(json.dumps({"start": start, "step": metrics.get("step")}))

        result = train(config, out_dir, report=_report, progress=progress)
        result["node"] = node
        Path(out_dir, "node.txt").write_text(node)
        return result

    return train_on_node


def picklable_marking_fake():
    """The marking stand-in trainer, pickled by value (Ray workers cannot import tests)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return marking(fake.picklable_train())


STEPS = 6  # per trial, FAKE_TRAIN_SLEEP s each

DRIVER = """
import json, sys
import test_cluster_faults as t
from sweeps.driver import run_sweep
from sweeps.spec import load_spec
summary = run_sweep(load_spec(json.loads(sys.argv[1])), address=sys.argv[2],
                    train_fn=t.picklable_marking_fake())
print("SUMMARY " + json.dumps(summary))
"""


@pytest.fixture
def two_nodes(tmp_path):
    """Head + one worker node, 1 CPU each, token auth on (a token of the test's own)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    # the trainer runs in the nodes' workers, which inherit the environment of `ray start`
    env = ray_cluster.clean_env(ST_TEST_MARKS=str(marks), FAKE_TRAIN_SLEEP="0.5", **auth)
    cluster = ray_cluster.Cluster(env)
    try:
        cluster.start_head(num_cpus=1, dashboard=False, env={"ST_TEST_NODE": "head"})
        worker = cluster.add_worker(num_cpus=1, env={"ST_TEST_NODE": "worker"})
        cluster.wait_for_nodes(2)
        yield cluster, worker, marks
    finally:
        cluster.stop()


def _marks(marks: Path) -> list[dict]:
    out = []
    for path in marks.glob("*.json"):
        node, rest = path.stem.split("-", 1)
        key, pid = rest.rsplit("-", 1)
        try:
            out.append({"node": node, "key": key, "pid": int(pid), **json.loads(path.read_text())})
        except json.JSONDecodeError:  # being written
            continue
    return out


@pytest.mark.slow
def test_worker_node_killed_mid_sweep_loses_nothing(two_nodes, tmp_path):
    cluster, worker, marks = two_nodes
    spec = {
        "name": "nodes",
        "model": "tiny-bert",
        "datasets": [{"name": "synthetic-sentiment", "train_size": 32}],
        "strategies": ["vanilla", "sda"],
        "seeds": 3,
        "defaults": {"optim": {"max_steps": STEPS}},
        "resources": {"cpu": 1},
        "storage": str(tmp_path / "shared"),  # the one directory both nodes write
        "max_failures": 2,
    }
    run_dir = tmp_path / "shared" / "nodes"
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(spec), cluster.address],
        cwd=tmp_path, env=cluster.env,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # wait until the worker node has finished a trial and checkpointed another one,
        # then kill that node
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            steps = [m["step"] or 0 for m in _marks(marks) if m["node"] == "worker"]
            if STEPS in steps and any(2 <= s < STEPS for s in steps):
                break
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.1)
        else:
            pytest.fail("the worker node never finished a trial and checkpointed another")
        worker_pids = worker.pids()
        assert worker_pids, "no processes found for the worker node"
        worker.kill()
        before_kill = _marks(marks)
        killed_at = {m["key"]: m["step"] for m in before_kill if m["node"] == "worker"}
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
    output = (tmp_path / "driver.log").read_text()
    assert driver.returncode == 0, output[-3000:]
    summary = json.loads(output.split("SUMMARY ", 1)[1].splitlines()[0])
    assert summary["grid"] == {"trials": 6, "errors": 0}

    # every trial exactly once, all finished
    df = pd.read_parquet(run_dir / "results.parquet")
    assert len(df) == 6 and df["key"].is_unique, df[["key", "status"]]
    assert set(df["status"]) == {"TERMINATED"}

    attempts = _marks(marks)
    assert {m["node"] for m in before_kill} == {"head", "worker"}, "trials did not spread"
    finished_on = {row.key: Path(row.result_path).parent.joinpath("node.txt").read_text()
                   for row in df.itertuples()}  # fmt: skip
    for row in df.itertuples():
        result = json.loads(Path(row.result_path).read_text())
        assert row.primary_dev_score == pytest.approx(fake._score(load_config(result["config"])))
        runs = [m for m in attempts if m["key"] == row.key]
        # never started from scratch twice: a retry resumes from the checkpoint
        assert sum(m["start"] is None for m in runs) == 1, runs
    interrupted = [k for k, step in killed_at.items() if finished_on[k] == "head"]
    assert interrupted, f"no trial was interrupted on the worker: {killed_at}"
    for key in interrupted:
        result = json.loads((run_dir / "trials" / key / "result.json").read_text())
        assert result["resumed_from"] is not None and result["resumed_from"] >= 1, result
    # what finished on the worker before it died is kept, not run again
    done_on_worker = [k for k, node in finished_on.items() if node == "worker"]
    assert done_on_worker, "no trial had finished on the worker node"
    for key in done_on_worker:
        assert all(m["node"] == "worker" for m in attempts if m["key"] == key)
    # the worker node's processes are gone
    assert not [p for p in worker_pids if Path(f"/proc/{p}").exists()]
