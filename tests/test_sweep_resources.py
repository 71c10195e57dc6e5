"""GPU packing: the auto fraction and the refusal of requests no node can meet."""

from __future__ import annotations

import pytest

from sweeps.resources import (
    auto_gpu_fraction,
    check_feasible,
    estimate_gpu_memory_gb,
    resolve_gpu,
)
from trainer.errors import ConfigError

CPU_NODE = {"Alive": True, "Resources": {"CPU": 16.0}}
GPU_NODE = {"Alive": True, "Resources": {"CPU": 16.0, "GPU": 1.0}}
DEAD_GPU_NODE = {"Alive": False, "Resources": {"CPU": 16.0, "GPU": 8.0}}


def test_small_models_pack_several_trials_per_gpu():
    minilm = estimate_gpu_memory_gb("minilm-l6", 5, 32)
    large = estimate_gpu_memory_gb("roberta-large", "all", 32)
    assert minilm < large
    assert auto_gpu_fraction(minilm, 80.0) == 0.125  # eight MiniLM trials on an H100
    assert auto_gpu_fraction(large, 16.0) == 1.0
    assert auto_gpu_fraction(large, 80.0) in (0.125, 0.25)


def test_teacher_snapshots_cost_memory():
    assert estimate_gpu_memory_gb("minilm-l6", 5, 32) > estimate_gpu_memory_gb("minilm-l6", 1, 32)
    assert estimate_gpu_memory_gb("minilm-l6", 1, 32) > estimate_gpu_memory_gb(
        "minilm-l6", None, 32
    )


def _trials_with(**spec):
    from sweeps.grid import expand_grid
    from sweeps.spec import load_spec

    base = {"name": "g", "model": "minilm-l6", "seeds": 1, "strategies": ["vanilla", "sdv"],
            "datasets": [{"name": "synthetic-sentiment", "train_size": 32}]}  # fmt: skip
    return expand_grid(load_spec({**base, **spec}))


def test_auto_without_gpus_runs_on_cpu_and_numbers_pass_through():
    assert resolve_gpu("auto", _trials_with(), gpus_in_cluster=0) == 0.0
    assert resolve_gpu(0.25, _trials_with(), gpus_in_cluster=0) == 0.25


def test_auto_is_sized_by_the_most_demanding_trial_not_the_first(monkeypatch):
    """Vanilla comes first in the grid; SDV K=8 keeps eight snapshots."""
    import sweeps.resources as resources

    trials = _trials_with(grid={"distill.k": [8]})
    assert trials[0].strategy == "vanilla"
    monkeypatch.setattr(resources, "cluster_gpu_memory_gb", lambda: 4.0)
    vanilla_alone = resolve_gpu("auto", trials[:1], gpus_in_cluster=1)
    assert resolve_gpu("auto", trials, gpus_in_cluster=1) > vanilla_alone
    assert resources.most_demanding_gb(trials) == estimate_gpu_memory_gb("minilm-l6", 8, 32)


def test_auto_reads_each_trials_own_batch_size():
    from sweeps.resources import most_demanding_gb

    trials = _trials_with(strategies=["vanilla"], defaults={"optim": {"batch_size": 256}})
    assert most_demanding_gb(trials) == estimate_gpu_memory_gb("minilm-l6", None, 256)


def test_feasible_requests_pass():
    check_feasible(2, 0, [CPU_NODE])
    check_feasible(2, 0.25, [CPU_NODE, GPU_NODE])
    check_feasible(2, 1, [GPU_NODE])


@pytest.mark.parametrize(
    ("cpu", "gpu", "nodes"),
    [
        (1, 0.25, [CPU_NODE]),  # a fraction needs a node with a GPU
        (1, 2, [GPU_NODE, GPU_NODE]),  # two GPUs on one node, not across nodes
        (32, 0, [CPU_NODE]),
        (1, 1, [CPU_NODE, DEAD_GPU_NODE]),  # dead nodes do not count
    ],
)
def test_infeasible_requests_are_refused_before_any_trial(cpu, gpu, nodes):
    with pytest.raises(ConfigError, match=r"'resources' per trial .* cannot be met by any node"):
        check_feasible(cpu, gpu, nodes)
