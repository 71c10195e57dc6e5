"""Shared fixtures: a cache directory for the whole session (tokenised data and the
generated tiny BERT are made once) and a small, fast trial config."""

from __future__ import annotations

import copy

import pytest


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
