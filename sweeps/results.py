"""``results.parquet``: one row per finished (or finally failed) trial.

For a local or shared run directory the table is *derived data*: ``rebuild_results``
makes it from the trial directories, ``trials/<key>/trial.json`` (the trial spec, written
when the trial starts), ``result.json`` (the trainer's) and ``error.json`` (written by the
driver when a trial fails for good). It is rebuilt whenever a trial ends, when a sweep or
``steadytune report`` starts, and whenever it is missing, unreadable or behind the trial
directories, so a truncated file or a driver that died between a trial's end and its row
loses nothing. For a remote run dir (``s3://``), where listing the trials is costly, rows
are upserted from the driver's callbacks as before.

The file is rewritten whole (the table is small: one row per trial) to a temporary name
and renamed over the old one, so no reader sees a half-written file; but
``pandas.read_parquet(path)`` opens the path twice and can mix two versions mid-sweep,
so every reader here goes through ``trainer.layout.read_parquet_file`` (one open).
Rows are keyed by the trial key, so every trial appears exactly once.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from sweeps.derived import derive_finished
from sweeps.grid import TrialSpec, config_key
from sweeps.rundir import is_remote
from trainer.jsonio import read_json_mapping, read_result
from trainer.knobs import sort_value
from trainer.layout import (
    ERROR_FILE,
    RESULT_FILE,
    RESULTS_FILE,
    TRIAL_FILE,
    read_parquet_file,
    trial_dir,
    trials_dir,
)
from trainer.metrics import METRIC_NAMES
from trainer.recorded import same_config, upgrade_table, upgrade_trial
from trainer.strategies import knob, settings_label

# Trial statuses in the table: Tune's, plus DIVERGED (finished, with a non-finite loss).
FINISHED, DIVERGED, FAILED = "TERMINATED", "DIVERGED", "ERROR"


def make_row(
    trial: dict[str, Any], metrics: dict[str, Any], *, trial_id: str, status: str
) -> dict[str, Any]:
    """A results row from the trial spec (``TrialSpec.to_dict()``) and its last metrics.

    A DIVERGED trial keeps its metrics (its model as it stood when the loss went
    non-finite): on small data a diverged seed is part of the variance a user asks about.
    """
    trial = upgrade_trial(trial)
    row: dict[str, Any] = {
        "key": trial["key"],
        "dataset": trial["dataset"],
        "strategy": trial["strategy"],
        "seed": trial["seed"],
        "optuna_trial": trial.get("optuna_trial"),
        "optuna_cell": trial["group"] if trial.get("group", "grid") != "grid" else None,
        "primary_metric": trial["primary_metric"],
        # the dev score of the dataset's primary metric (named in primary_metric): what the
        # decisions, the race and Optuna compare
        "primary_dev_score": metrics.get("objective"),
        "trial_id": trial_id,
        "status": status,
        # the plain run an SE row is an evaluation of (sweeps.derived); None: its own run
        "derived_from": trial.get("derived_from"),
        # the learning curve the dataset is a size of (its data.train_size), or None
        "curve": trial.get("curve"),
        # "confirm": a fresh-seed confirmation trial (sweeps.confirm), never selected on
        "role": trial.get("role"),
    }
    names = ("runtime_s", "diverged_at_step", "git_commit", "result_path", "logits_path",
             "model_path")  # fmt: skip
    for name in names:
        row[name] = metrics.get(name)
    versions = metrics.get("versions")
    if isinstance(versions, str) and versions:
        for lib, ver in json.loads(versions).items():
            row[f"version_{lib}"] = ver
    for name, value in metrics.items():
        # a model's metric on a split: "dev/accuracy", "averaged/test/mcc", "de/entity_f1"
        if (
            "/" in name
            and name.rsplit("/", 1)[1] in METRIC_NAMES
            and isinstance(value, (int, float))
        ):
            row[name.replace("/", "_")] = value
    row.update(setting_columns(trial))
    if status == FAILED:
        row["primary_dev_score"] = None
    return row


# Settings every row records whether a knob of its configuration or not, so tables from
# several sweeps can be told apart and sliced: dotted keys of the trainer config.
RECORDED_SETTINGS = ("optim.lr", "optim.head_lr", "optim.epochs", "optim.max_steps",
                     "optim.batch_size", "data.train_size")  # fmt: skip


def setting_columns(trial: dict[str, Any]) -> dict[str, Any]:
    """The columns of the trial's settings: the pretrained model, the recorded settings,
    each knob of its configuration under its dotted key (K as text: an int or 'all'),
    their ``settings`` label (``trainer.strategies.settings_label``: what analysis groups
    by) and the ``config_key`` (the trial key without the seed: what the decision
    compares)."""
    spec = TrialSpec.from_dict(trial)
    columns: dict[str, Any] = {"pretrained_model": spec.config.get("model")}
    for dotted in RECORDED_SETTINGS:
        node: Any = spec.config
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        columns[dotted] = node
    for key, value in spec.settings.items():
        columns[key] = str(value) if knob(key).categorical else value
    columns["settings"] = settings_label(spec.settings)
    columns["config_key"] = config_key(spec)
    return columns


def _typed(frame):
    """Column types a user slices by: a categorical knob an ordered categorical (K: 1 <
    2 < … < all), the Optuna trial number an integer (nullable: grid trials have none)."""
    import pandas as pd

    frame = upgrade_table(frame.copy())
    for key in (c for c in frame.columns if knob(c).categorical):
        values = [None if pd.isna(v) else str(v) for v in frame[key].astype(object)]
        order = sorted({v for v in values if v is not None}, key=sort_value)
        frame[key] = pd.Categorical(values, categories=order, ordered=True)
    if "optuna_trial" in frame:
        frame["optuna_trial"] = pd.to_numeric(frame["optuna_trial"]).astype("Int64")
    return frame


def _write_table(path: str, frame) -> None:
    """Write ``frame`` sorted by key; atomically (temp file + rename) on a file system."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _typed(frame.sort_values("key", kind="stable").reset_index(drop=True))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "://" in path:
        # object stores replace an object atomically on upload
        pq.write_table(table, path)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".parquet", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def upsert_rows(path: str, rows: list[dict[str, Any]], rebuild_from: str | None = None) -> None:
    """Replace the rows with the same ``key`` (or append), and write the table.

    An unreadable old table never crashes the driver's callback (which would lose this
    row too): with ``rebuild_from`` (a local run dir) it is rebuilt from the trial
    directories, else it is replaced by the new rows, with a warning.
    """
    import pandas as pd

    if not rows:
        return
    new = pd.DataFrame(rows)
    try:
        old = read_results(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        if rebuild_from is not None:
            rebuild_results(rebuild_from)
            return
        print(f"steadytune: {path} is unreadable ({exc}); writing it anew", file=sys.stderr)
        old = None
    if old is not None and len(old):
        old = old[~old["key"].isin(new["key"])]
        frame = pd.concat([old, new], ignore_index=True) if len(old) else new
    else:
        frame = new
    _write_table(path, frame)


def record_trial(run_dir: str, key: str) -> None:
    """Upsert the row of one ended trial of a local run dir (read from its directory),
    and those of the SE trials it is the plain run of (``sweeps.derived``)."""
    keys = [key, *derive_finished(run_dir, of=key)]
    rows = [trial_row(trial_dir(run_dir, k)) for k in keys]
    rows = [row for row in rows if row is not None]
    if rows:
        upsert_rows(str(Path(run_dir) / RESULTS_FILE), rows, rebuild_from=run_dir)


def finished_result(trial_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The trainer's result in ``trial_dir`` if it was run with exactly ``config``: a
    result is never reused for a config it was not run with."""
    result = read_json_mapping(trial_dir / RESULT_FILE)
    if result is None or not same_config(result.get("config"), config):
        return None
    return result


def trial_row(trial_dir: Path) -> dict[str, Any] | None:
    """The results row of one trial directory, or None while the trial has not ended.

    A ``result.json`` whose config is not the trial's own is not this trial's result
    (never reused for a config it was not run with): the trial counts as not ended.
    """
    from sweeps.trial import final_metrics

    started = read_json_mapping(trial_dir / TRIAL_FILE)
    if started is None or not isinstance(started.get("trial"), dict):
        return None
    trial = started["trial"]
    trial_id = started.get("trial_id") or ""
    result = finished_result(trial_dir, trial.get("config"))
    if result is not None:
        metrics = final_metrics(result, trial_dir, trial["primary_metric"])
        status = DIVERGED if result.get("status") == "diverged" else FINISHED
        return make_row(trial, metrics, trial_id=trial_id, status=status)
    failure = read_json_mapping(trial_dir / ERROR_FILE)
    if failure is not None:
        row = make_row(trial, {}, trial_id=failure.get("trial_id") or trial_id, status=FAILED)
        row["error"] = failure.get("error")
        row["error_file"] = failure.get("error_file")
        return row
    return None


def damaged_results(run_dir: str | Path) -> list[Path]:
    """The ``result.json`` files of a run dir's trials that cannot be read as a result
    (truncated, not JSON, no config): never trusted — the trial counts as unfinished,
    and the trainer moves the file aside and trains it anew when it runs again."""
    trials = trials_dir(run_dir)
    if not trials.is_dir():
        return []
    paths = sorted(d / RESULT_FILE for d in trials.iterdir() if d.is_dir())
    return [path for path in paths if path.is_file() and read_result(path) is None]


def warn_damaged(run_dir: str | Path, stream: Any = None) -> list[Path]:
    """One line on ``stream`` (stderr) per damaged result (:func:`damaged_results`)."""
    found = damaged_results(run_dir)
    for path in found:
        print(f"steadytune: {path} is damaged (not a result's JSON object): the trial counts "
              "as unfinished; `steadytune resume` moves the file aside and trains it anew",
              file=stream or sys.stderr)  # fmt: skip
    return found


def described_keys(run_dir: str | Path) -> set[str]:
    """The keys of the trial directories that describe themselves (a ``trial.json``)."""
    trials = trials_dir(run_dir)
    if not trials.is_dir():
        return set()
    return {d.name for d in trials.iterdir() if read_json_mapping(d / TRIAL_FILE) is not None}


def collect_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of every trial of a local run directory that has ended (SE trials whose
    plain run finished get their result written first)."""
    trials = trials_dir(run_dir)
    if not trials.is_dir():
        return []
    derive_finished(run_dir)
    rows = (trial_row(d) for d in sorted(trials.iterdir()) if d.is_dir())
    return [row for row in rows if row is not None]


def rebuild_results(run_dir: str | Path) -> int:
    """Write ``results.parquet`` of a local run dir from its trial directories (when the
    old table cannot be read). Returns the number of rows; with no ended trial to
    describe, the old file is left as it is rather than replaced by an empty one."""
    import pandas as pd

    if is_remote(run_dir):
        raise ValueError("rebuild_results reads trial directories: local run dirs only")
    rows = collect_rows(run_dir)
    if rows:
        _write_table(str(Path(run_dir) / RESULTS_FILE), pd.DataFrame(rows))
    return len(rows)


def ensure_results(run_dir: str | Path) -> int:
    """Bring ``results.parquet`` up to date with the trial directories; return its rows.

    Every trial directory that describes an ended trial gives its row (a missing, stale
    or unreadable table is rewritten). Rows of the old table whose trial directory does
    not describe itself (a run of steadytune 0.1, a table copied without its trials) are
    kept: a rebuild never loses a row. A trial directory that describes itself but gives
    no row (its ``result.json`` damaged since, or set aside) drops its old row: the
    directory is the truth, and a stale row would count a result nobody can read.
    """
    import pandas as pd

    rows = collect_rows(run_dir)
    path = Path(run_dir) / RESULTS_FILE
    try:
        current = read_results(str(path))
    except Exception:  # a truncated or foreign file: derived data, made anew
        current = None
    frame = pd.DataFrame(rows)
    if current is not None and len(current):
        derived = {r["key"] for r in rows} | described_keys(run_dir)
        kept = current[~current["key"].isin(derived)]
        frame = pd.concat([frame, kept], ignore_index=True) if rows else kept
    if frame.empty:
        if current is not None and len(current):  # every old row was stale
            path.unlink(missing_ok=True)
        return 0
    have = set() if current is None else set(zip(current["key"], current["status"], strict=True))
    stale = have != set(zip(frame["key"], frame["status"], strict=True))
    if current is None or stale or set(current.columns) != set(frame.columns):
        _write_table(str(path), frame)
    return len(frame)


def read_results(path: str):
    """The results table (one of 0.1.0 with its columns upgraded), or ``None`` when no
    trial has finished yet."""
    import pandas as pd
    import pyarrow.fs as pafs

    if "://" in path:
        fs, inner = pafs.FileSystem.from_uri(path)
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            return None
        return upgrade_table(pd.read_parquet(path))
    return upgrade_table(read_parquet_file(path)) if Path(path).is_file() else None
