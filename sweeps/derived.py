"""SE trials as evaluations of the plain run: their results, written from the run's own.

SE never changes training, so a sweep trains the plain run (``vanilla``, ``noisytune``)
once per seed with every SE window it needs evaluated beside the student
(``eval.self_ensembles``; ``sweeps.grid.share_plain_runs``). Each SE trial keeps its own
directory, key and config, and its ``trial.json`` names the run it comes from
(``derived_from``). Once that run has finished, the SE trial's ``result.json`` and
``logits.npz`` are written from the run's: the student's metrics and logits as they are,
the window's (role ``se_k<K>``) as the SE trial's ``averaged`` model, and
``derived_from`` in the result, so every row says which run it came from. If the run
failed for good, each SE trial gets an ``error.json`` saying so (a failed row, not a
silently missing one); a later successful run replaces it with the result. From then on it
is a finished trial like any other: the results table, the report and the ensembles read
it unchanged. A result is written only from a finished run of the config recorded for
it, and never over an existing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.jsonio import read_json_mapping, write_json_atomic
from trainer.layout import (
    ERROR_FILE,
    LOGITS_FILE,
    RESULT_FILE,
    TRIAL_FILE,
    trial_dir,
    trials_dir,
)
from trainer.recorded import upgrade_trial
from trainer.strategies import se_role

__all__ = ["derive_finished", "derived_result"]


def _window(trial: dict[str, Any]) -> int | str:
    """The K of an SE trial (a TrialSpec dict, one of 0.1.0 included)."""
    return upgrade_trial(trial)["settings"]["distill.k"]


def derived_result(plain: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """The result of SE trial ``trial`` (a TrialSpec dict) from its plain run's result."""
    role = se_role(_window(trial))

    def as_se(entry: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in entry.items() if not k.startswith("se_k")}
        return {**kept, "averaged": entry[role]} if role in entry else kept

    return {
        **plain,
        "config": trial["config"],
        "metrics": as_se(plain["metrics"]),
        "history": [as_se(entry) for entry in plain.get("history", [])],
        "teacher_k": _window(trial),
        "derived_from": trial["derived_from"],
        # it trained nothing of its own: the sweep's cost counts the plain run once
        "runtime_s": 0.0,
    }


def _derive(run_dir: str | Path, own_dir: Path, trial: dict[str, Any]) -> bool:
    """Write one SE trial's result from its plain run if that has finished (or its
    failure, if the run failed for good); whether anything was written."""
    import numpy as np

    from sweeps.results import finished_result

    plain_dir = trial_dir(run_dir, trial["derived_from"])
    started = read_json_mapping(plain_dir / TRIAL_FILE)
    if started is None:
        return False
    plain = finished_result(plain_dir, started["trial"]["config"])
    if plain is None:
        failure = read_json_mapping(plain_dir / ERROR_FILE)
        if failure is not None:  # the run failed for good: so did its evaluations
            own = {**failure, "error": f"its plain run {trial['derived_from']} failed: "
                   f"{failure.get('error') or 'see its error_file'}"}  # fmt: skip
            write_json_atomic(own_dir / ERROR_FILE, own)
        return failure is not None
    role = se_role(_window(trial))
    if role not in plain.get("metrics", {}):
        return False  # a run of an older config that did not evaluate this window
    own, averaged = f"{role}_", "averaged_"
    with np.load(plain_dir / LOGITS_FILE) as arrays:
        # the student's arrays as they are; this window's as the averaged model's
        logits = {averaged + name[len(own):] if name.startswith(own) else name: arrays[name]
                  for name in arrays.files
                  if name.startswith(own) or not name.startswith("se_k")}  # fmt: skip
    np.savez_compressed(own_dir / LOGITS_FILE, **logits)
    write_json_atomic(own_dir / RESULT_FILE, derived_result(plain, trial))  # last: the marker
    return True


def derive_finished(run_dir: str | Path, of: str | None = None) -> list[str]:
    """Write the results (or failures) of the SE trials whose plain run has ended (only
    those of the run ``of`` when given); return their keys. Trials with a result are left
    alone."""
    trials = trials_dir(run_dir)
    if not trials.is_dir():
        return []
    written = []
    for own_dir in sorted(p for p in trials.iterdir() if p.is_dir()):
        started = read_json_mapping(own_dir / TRIAL_FILE)
        trial = (started or {}).get("trial") or {}
        source = trial.get("derived_from")
        if not source or (of is not None and source != of):
            continue
        if (own_dir / RESULT_FILE).is_file():
            continue
        if _derive(run_dir, own_dir, trial):
            written.append(trial["key"])
    return written
