"""``sweep.json``: what a run directory was asked to run, and whether a spec still agrees.

The record holds the validated spec and, for every grid trial, its fully resolved trainer
config; for an Optuna search, the config of each cell (the searched knob left out). A spec
run again on the same directory is compared trial by trial against it:

* same keys, same configs, or only *new* trials (more seeds, more configurations): pure
  growth, allowed; finished trials are kept and only the new and unfinished ones run;
* anything else — a recorded trial whose config now resolves differently (``optim.lr``,
  ``model``, a data path, ``max_steps``...), a trial the spec no longer has, a changed
  search — is refused, naming the keys that differ, old → new, before Ray starts. The
  results on disk answer the old question; reusing them for the new one would be a
  silently stale result.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from sweeps.grid import SweepPlan
from sweeps.rundir import is_remote
from sweeps.spec import DecisionSpec, SweepSpec, spec_to_dict
from trainer.errors import ConfigError
from trainer.layout import RESULT_FILE, SWEEP_FILE, trial_dir
from trainer.recorded import without_added_nulls

FORMAT = 2
_SHOWN = 4  # differences listed in the one-line refusal


def build_record(plan: SweepPlan) -> dict[str, Any]:
    """The record of this spec: spec, grid keys (in order), every trial's config."""
    spec, grid_trials = plan.spec, plan.grid
    record: dict[str, Any] = {
        "format": FORMAT,
        "spec": spec_to_dict(spec),
        "grid_keys": [t.key for t in grid_trials],
        "trials": {t.key: t.config for t in grid_trials},
    }
    if spec.search is not None:
        record["search_cells"] = {cell["key"]: _cell_config(spec, cell) for cell in plan.cells}
    return record


def _cell_config(spec: SweepSpec, cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's trainer config with the seed and the searched knob taken out."""
    config = json.loads(json.dumps(cell["probe"].config))
    config.pop("seed", None)
    assert spec.search is not None
    *sections, name = spec.search.param.split(".")
    node = config
    for section in sections:
        node = node.get(section, {})
    node.pop(name, None)
    return config


def read_record(run_dir: str) -> dict[str, Any] | None:
    """The recorded sweep of ``run_dir``, or None when there is none yet."""
    if is_remote(run_dir):
        import pyarrow.fs as pafs

        fs, inner = pafs.FileSystem.from_uri(f"{run_dir}/{SWEEP_FILE}")
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            return None
        with fs.open_input_stream(inner) as f:
            text = f.read().decode()
        where = f"{run_dir}/{SWEEP_FILE}"
    else:
        path = Path(run_dir, SWEEP_FILE)
        if not path.exists():
            return None
        if not path.is_file():
            raise ConfigError(f"{path} is not a file")
        text, where = path.read_text(encoding="utf-8", errors="replace"), str(path)
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{where} is corrupt ({exc}); the trials' own results are intact: move the "
            "run directory aside with `steadytune sweep SPEC --restart`, or restore the file"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("spec"), dict):
        raise ConfigError(f"{where} is not a steadytune sweep record (no 'spec' mapping)")
    return record


def write_record(run_dir: str, record: dict[str, Any]) -> None:
    """Write ``sweep.json`` atomically (a killed driver never leaves half a record)."""
    text = json.dumps(record, indent=1, allow_nan=False)
    if is_remote(run_dir):
        import pyarrow.fs as pafs

        fs, inner = pafs.FileSystem.from_uri(f"{run_dir}/{SWEEP_FILE}")
        with fs.open_output_stream(inner) as f:
            f.write(text.encode())
        return
    target = Path(run_dir, SWEEP_FILE)
    fd, tmp = tempfile.mkstemp(prefix=".sweep-", suffix=".json", dir=run_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)


def recorded_trial_configs(run_dir: str, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Key -> config of the trials the run dir holds: from the record, or — for a run
    directory of steadytune 0.1, whose record had keys only — from the trials' results."""
    if "trials" in record:
        return dict(record["trials"])
    configs = {}
    for key in record.get("grid_keys") or []:
        path = trial_dir(run_dir, key) / RESULT_FILE
        try:
            configs[key] = json.loads(path.read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # never finished: nothing of it can be reused, nothing to compare
    return configs


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(
            _flat(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
        )
    return flat


def _config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each setting ``new`` runs otherwise than ``old`` was recorded with, as
    ``key: old -> new``; a setting added since, left None, is no change
    (``trainer.recorded``)."""
    a, b = _flat(old), _flat(without_added_nulls(new, old))
    return [
        f"{key}: {a.get(key, '(unset)')!r} -> {b.get(key, '(unset)')!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, "(unset)") != b.get(key, "(unset)")
    ]


def differences(run_dir: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What makes ``new`` not a pure growth of ``old`` (empty: compatible), most common
    first; each entry is one short phrase."""
    found: Counter[str] = Counter()
    old_trials = recorded_trial_configs(run_dir, old)
    new_trials = new["trials"]
    for key, config in old_trials.items():
        if key in new_trials:
            found.update(_config_changes(config, new_trials[key]))
    gone = [key for key in old.get("grid_keys") or old_trials if key not in new_trials]
    if gone:
        found[f"{len(gone)} recorded trial(s) are no longer in the spec (e.g. {gone[0]})"] += 1
    found.update(_search_changes(old, new))
    found.update(_race_changes(old, new))
    found.update(_confirm_changes(old, new))
    return [change for change, _ in found.most_common()]


def _search_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = old["spec"].get("search"), new["spec"].get("search")
    if before is None:
        return []  # a search added to a grid is growth
    if after is None:
        return ["search: the recorded Optuna search was removed"]
    changes = []
    for name in sorted(set(before) | set(after)):
        if name == "n_trials" and after.get(name, 0) >= before.get(name, 0):
            continue  # more candidates: growth
        if before.get(name) != after.get(name):
            changes.append(f"search.{name}: {before.get(name)!r} -> {after.get(name)!r}")
    old_cells, new_cells = old.get("search_cells") or {}, new.get("search_cells") or {}
    for key, config in old_cells.items():
        if key not in new_cells:
            changes.append(f"the search cell {key} is no longer in the spec")
        else:
            changes.extend(_config_changes(config, new_cells[key]))
    return changes


def _race_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A race replays its decisions from the results: any change to how it decides
    (its rounds, α, the margin) would replay other decisions than the ones that chose
    which trials ran. Only a larger ``budget_trials`` is growth."""
    before = old["spec"].get("race")
    if before is None:
        return []
    after = new["spec"].get("race") or {}
    changes = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        if name == "budget_trials" and (now is None or (was is not None and now >= was)):
            continue
        if was != now:
            changes.append(f"race.{name}: {was!r} -> {now!r}")
    if not after:
        changes.append("race: the recorded seed race was removed")
    added = sorted(set(new.get("grid_keys") or []) - set(old.get("grid_keys") or []))
    if after and added:  # a new configuration would change every round's Holm family
        changes.append(f"{len(added)} trial(s) added to a seed race (e.g. {added[0]}); a race "
                       "decides over the configurations it started with")  # fmt: skip
    # a setting the recorded spec lacks was added since, and the run was decided by its
    # default (``decision.split``: dev)
    defaults = DecisionSpec().model_dump()
    decision_before, decision_after = (
        {**defaults, **(old["spec"].get("decision") or {})},
        {**defaults, **(new["spec"].get("decision") or {})},
    )
    for name in sorted(set(decision_before) | set(decision_after)):
        if decision_before.get(name) != decision_after.get(name):
            changes.append(
                f"decision.{name}: {decision_before.get(name)!r} -> {decision_after.get(name)!r}"
            )
    return changes


def _confirm_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Confirmation seeds may be added (growth); fewer, or none, would leave trials on
    disk that the report tests but the spec no longer asks for."""
    before = (old["spec"].get("confirm") or {}).get("seeds")
    after = (new["spec"].get("confirm") or {}).get("seeds")
    if before is None or (after is not None and after >= before):
        return []
    if after is None:
        return ["confirm: the recorded confirmation on fresh seeds was removed"]
    return [f"confirm.seeds: {before!r} -> {after!r}"]


def refuse_if_changed(run_dir: str, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """Raise the one-line refusal when ``new`` is not a pure growth of ``old``."""
    if old is None:
        return
    changes = differences(run_dir, old, new)
    if not changes:
        return
    shown = "; ".join(changes[:_SHOWN]) + (
        f"; and {len(changes) - _SHOWN} more" if len(changes) > _SHOWN else ""
    )
    raise ConfigError(
        f"{run_dir} holds a sweep run with a different spec ({shown}); its results answer "
        "that spec, not this one. Give the spec another 'name' or use --run-dir, or rerun "
        "with --restart to move the old run directory aside (it is never deleted)"
    )
