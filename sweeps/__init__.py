"""Sweeps of the trainer on Ray Tune: spec, grid, Optuna λ search, cluster jobs, resume.

Importing this package is cheap (the CLI's ``--help`` imports it); the public names
are loaded on first use, and Ray only by ``sweeps._ray`` and the commands that run
something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps._ray import trainable
    from sweeps.driver import run_sweep
    from sweeps.grid import TrialSpec, expand_grid
    from sweeps.spec import SweepSpec, load_spec

__all__ = ["SweepSpec", "TrialSpec", "expand_grid", "load_spec", "run_sweep", "trainable"]

_WHERE = {
    "SweepSpec": "sweeps.spec",
    "load_spec": "sweeps.spec",
    "TrialSpec": "sweeps.grid",
    "expand_grid": "sweeps.grid",
    "run_sweep": "sweeps.driver",
    "trainable": "sweeps._ray",  # imports Ray
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
