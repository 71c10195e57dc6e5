"""Shared fixtures: a private HOME and Ray temp dir for the session (tests leave nothing
outside their temp dirs: Ray writes its auth token under ~/.ray and lock files under its
temp dir), a cache directory for the whole session (tokenised data and the generated
tiny BERT are made once) and a small, fast trial config."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile

import pytest

# Tests never reach the Hugging Face Hub (this project's machines have no network): with
# the flag set before transformers is imported, a hub id fails at once instead of after
# five retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("HOME", "RAY_TMPDIR")}
    os.environ["HOME"] = str(home)
    ray_tmp = tempfile.mkdtemp(prefix="st-raytmp-", dir="/tmp")  # short: Unix socket paths
    os.environ["RAY_TMPDIR"] = ray_tmp
    yield home
    shutil.rmtree(ray_tmp, ignore_errors=True)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("steadytune-cache")


@pytest.fixture
def tiny_config(cache_dir):
    """A trial of 12 optimizer steps of tiny-bert on synthetic-sentiment, evaluated twice."""
    return copy.deepcopy(
        {
            "model": "tiny-bert",
            "data": {"name": "synthetic-sentiment", "train_size": 192},
            "strategy": "vanilla",
            "seed": 0,
            "optim": {"max_steps": 12, "batch_size": 16, "lr": 2e-3, "head_lr": 2e-3},
            "eval": {"every_steps": 6},
            "checkpoint": {"every_steps": 4},
            "cache_dir": str(cache_dir),
        }
    )
